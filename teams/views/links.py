"""Addresses the team pages send people back to."""

from django.urls import reverse


def team_url(merchant) -> str:
    return reverse("teams:team", kwargs={"slug": merchant.slug})


def roles_url(merchant) -> str:
    return reverse("teams:roles", kwargs={"slug": merchant.slug})
