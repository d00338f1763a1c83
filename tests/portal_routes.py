"""The merchant portal's routes, read from the URL configuration, for tests that visit them all.

Every pattern that takes a merchant `slug` is a portal route, so a new merchant page is
covered by the portal access test (`tests/test_portal_access.py`) as soon as it is routed.
"""

from dataclasses import dataclass

import pytest
from django.urls import URLResolver, get_resolver, reverse

MERCHANT_KWARG = "slug"

# Which object of the merchant the `pk` of each route names. A route missing here fails: a
# made-up pk would turn every answer into a 404 that proves nothing.
PK_KINDS = {
    "credentials:detail": "credential",
    "credentials:status": "credential",
    "credentials:revoke": "credential",
    "teams:member": "membership",
    "teams:member_remove": "membership",
    "teams:role_edit": "role",
    "teams:role_delete": "role",
    "teams:invitation_resend": "invitation",
    "teams:invitation_revoke": "invitation",
}


@dataclass(frozen=True)
class PortalRoute:
    """A routed pattern that takes a merchant slug: its full name, pattern and URL kwargs."""

    name: str | None
    route: str
    kwargs: frozenset[str]

    def __str__(self):
        return self.name or self.route


def portal_routes() -> list[PortalRoute]:
    """Return every pattern of the URL configuration that takes a merchant slug."""
    found = []

    def walk(patterns, namespace: str, route: str, kwargs: frozenset[str]):
        for entry in patterns:
            entry_route = route + str(entry.pattern)
            entry_kwargs = kwargs | frozenset(entry.pattern.regex.groupindex)
            if isinstance(entry, URLResolver):
                inner = namespace
                if entry.namespace:
                    inner = ":".join(filter(None, (namespace, entry.namespace)))
                walk(entry.url_patterns, inner, entry_route, entry_kwargs)
            elif MERCHANT_KWARG in entry_kwargs:
                name = ":".join(filter(None, (namespace, entry.name))) if entry.name else None
                found.append(PortalRoute(name=name, route=entry_route, kwargs=entry_kwargs))

    walk(get_resolver().url_patterns, "", "", frozenset())
    return found


def route_address(
    route: PortalRoute, *, merchant_slug: str, object_pks: dict[str, int], who: str
) -> str:
    """Return the address of `route` for a merchant, its `pk` set to one of its real objects.

    A route without a name, with a pk kind not in PK_KINDS or with another kwarg fails the
    test (`who` names it in the message): the test must learn what belongs there.
    """
    if route.name is None:
        pytest.fail(f"Name the portal route {route.route!r} so {who} can reverse it.")
    values = {MERCHANT_KWARG: merchant_slug}
    if "pk" in route.kwargs:
        if route.name not in PK_KINDS:
            pytest.fail(f"{route}: teach {who} which object its pk names (PK_KINDS).")
        values["pk"] = object_pks[PK_KINDS[route.name]]
    unknown = route.kwargs - values.keys()
    if unknown:
        pytest.fail(f"{route}: teach {who} how to fill {sorted(unknown)}.")
    return reverse(route.name, kwargs={kwarg: values[kwarg] for kwarg in route.kwargs})
