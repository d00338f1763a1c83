"""The merchant portal's routes, read from the URL configuration, for tests that visit them all.

Every pattern that takes a merchant `slug` is a portal route, so a new merchant page is
covered by the portal access test (`tests/test_portal_access.py`) as soon as it is routed.
A route whose query chooses another form (the submit page's `?provider=kashier`) is covered
once per query too (`QUERY_VARIANTS`), so a new provider's page is covered as soon as it is
registered.
"""

from dataclasses import dataclass, replace

import pytest
from django.urls import URLResolver, get_resolver, reverse

from credentials.providers import DEFAULT_PROVIDER, PROVIDERS

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

# The queries that make a route another page, by route name, each with the text only that
# page shows (proof that the query reached the view).
QUERY_VARIANTS = {
    "credentials:submit": {
        f"provider={code}": f"Submit {provider.label} keys"
        for code, provider in PROVIDERS.items()
        if code != DEFAULT_PROVIDER
    },
}


@dataclass(frozen=True)
class PortalRoute:
    """A routed pattern that takes a merchant slug: its full name, pattern and URL kwargs."""

    name: str | None
    route: str
    kwargs: frozenset[str]
    # A query from QUERY_VARIANTS, and the text its page shows ("" for the route itself).
    query: str = ""
    shows: str = ""

    def __str__(self):
        name = self.name or self.route
        return f"{name}?{self.query}" if self.query else name


def portal_routes(*, query_variants: bool = False) -> list[PortalRoute]:
    """Return every pattern of the URL configuration that takes a merchant slug, and with
    `query_variants` each route again with each of its QUERY_VARIANTS."""
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
                if query_variants:
                    found.extend(
                        replace(found[-1], query=query, shows=shows)
                        for query, shows in QUERY_VARIANTS.get(name, {}).items()
                    )

    walk(get_resolver().url_patterns, "", "", frozenset())
    return found


def route_address(
    route: PortalRoute, *, merchant_slug: str, object_pks: dict[str, int], who: str
) -> str:
    """Return the address of `route` for a merchant, its `pk` set to one of its real objects,
    and its query if it has one.

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
    path = reverse(route.name, kwargs={kwarg: values[kwarg] for kwarg in route.kwargs})
    return f"{path}?{route.query}" if route.query else path
