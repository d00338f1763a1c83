"""Who may call the API (placeholder until the API lands)."""

from rest_framework.permissions import BasePermission


class IsServiceAccount(BasePermission):
    def has_permission(self, request, view):
        return False
