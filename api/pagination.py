"""Cursor pagination: pages that neither skip nor repeat a row while rows are added, in the
order each view declares (`ordering`, a unique column), PAGE_SIZE rows unless the call asks
for `page_size` (up to MAX_PAGE_SIZE)."""

from django.core.exceptions import ValidationError
from rest_framework import exceptions, pagination
from rest_framework.settings import api_settings

from api.exceptions import InvalidCursor, InvalidPageSize

MAX_PAGE_SIZE = 200


class CursorPagination(pagination.CursorPagination):
    ordering = "pk"
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_size_query_description = f"Rows per page, 1 to {MAX_PAGE_SIZE}."

    def get_ordering(self, request, queryset, view):
        return (getattr(view, "ordering", self.ordering),)

    def get_page_size(self, request):
        # Read at each call, as the throttle's rate is: a changed setting applies at once.
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return api_settings.PAGE_SIZE
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
            raise InvalidPageSize(
                f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}; leave it out "
                f"for {api_settings.PAGE_SIZE} rows a page."
            )
        return int(value)

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {
                    **link,
                    "description": "The next page's address; null on the last page.",
                    "example": "https://keyhouse.example/api/v1/merchants/?cursor=cD00ODY%3D",
                },
                "previous": {
                    **link,
                    "description": "The previous page's address; null on the first page.",
                    "example": "https://keyhouse.example/api/v1/merchants/?cursor=cj0xJnA9NDg3",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=MAX_PAGE_SIZE)
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "Where the page starts: leave it out for the first page, then follow the "
                    "`next` and `previous` links as given."
                )
        return parameters

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        """Return the cursor the call sent (None for the first page); refuse one that was not
        made here, or whose position is no value of the ordering column (InvalidCursor)."""
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise InvalidCursor() from None
        if cursor is None or cursor.position is None:
            return cursor
        # The position goes into the query as a value of the ordering column: one it cannot
        # hold (a word for an id, a number too big, a NUL byte PostgreSQL refuses) would fail
        # there, as a server error.
        if "\x00" in cursor.position:
            raise InvalidCursor()
        name = self.ordering[0].lstrip("-")
        field = self.model._meta.pk if name == "pk" else self.model._meta.get_field(name)
        try:
            field.run_validators(field.to_python(cursor.position))
        except ValidationError:
            raise InvalidCursor() from None
        return cursor
