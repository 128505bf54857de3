"""Reads of executions, limited to what the user may see (the request's scope)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from approvals import selectors as approval_selectors
from executions.models import Execution


def executions_for(user: Any) -> QuerySet[Execution]:
    visible_requests = approval_selectors.requests_for(user)
    return (
        Execution.objects.filter(request__in=visible_requests)
        .select_related("request", "started_by")
        .prefetch_related("steps__resource")
    )
