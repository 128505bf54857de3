"""Pagination used by every list endpoint; append-only lists use cursor pagination instead."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SequenceCursorPagination(CursorPagination):
    """Stable under concurrent appends: the cursor is a position in an ever-growing sequence."""

    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000
    ordering = "seq"
