"""Inventory models (sites, resources, groups) and the monitoring state kept about them."""

from inventory.models.inventory import GroupMembership, Resource, ResourceGroup, Site
from inventory.models.status import ObservationRollup, ObservationSample, ResourceStatus

__all__ = [
    "GroupMembership",
    "ObservationRollup",
    "ObservationSample",
    "Resource",
    "ResourceGroup",
    "ResourceStatus",
    "Site",
]
