"""The inventory as a CMDB-shaped export, built with django-import-export.

import-export's ``ModelResource`` is used for the read-only direction: it turns the resources an
admin can see into a tablib dataset with the columns ``cmdb_sync`` reads (name, owner,
environment, tier, platform, primary_site, dr_site), in CSV or JSON. A CMDB team can start from it,
and re-importing it is a no-op (tested). The import direction does not use import-export: see
``inventory.cmdb.admin_import`` and docs/cmdb.md for why.
"""

from __future__ import annotations

from typing import Any

from import_export import fields, resources, widgets

from inventory.models import Resource, Site

FORMATS = {"csv": "text/csv", "json": "application/json"}


class CmdbExportResource(resources.ModelResource):
    """Sites by name (the import refers to them by name), never the connection settings."""

    primary_site = fields.Field(
        attribute="primary_site",
        column_name="primary_site",
        widget=widgets.ForeignKeyWidget(Site, "name"),
    )
    dr_site = fields.Field(
        attribute="dr_site", column_name="dr_site", widget=widgets.ForeignKeyWidget(Site, "name")
    )

    class Meta:
        model = Resource
        fields = ("name", "owner", "environment", "tier", "platform", "primary_site", "dr_site")
        export_order = fields


def export_text(queryset: Any, fmt: str) -> str:
    """The resources in ``queryset`` as CSV or JSON text (``fmt`` is "csv" or "json")."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use csv or json")
    dataset = CmdbExportResource().export(
        queryset=queryset.select_related("primary_site", "dr_site").order_by("name")
    )
    return dataset.csv if fmt == "csv" else dataset.json
