"""Cursor pagination (placeholder until the API lands)."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    ordering = "pk"
