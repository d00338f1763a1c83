"""Fixtures of the API tests: service accounts with their tokens and a client that calls with
one (plain helpers are in `tests/api/helpers.py`).

The `merchant` (Demo Coffee Co) is served by `integrator`, which holds every scope; the
`other_merchant` (Demo Bakery Co) is not: the cross-tenant case of every test.
"""

import itertools

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from integrations.scopes import Scope
from integrations.services.accounts import service_account_create
from tests.api.helpers import api_client

ALL_SCOPES = list(Scope.values)
_names = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_rate_counters():
    """Start every test with no calls counted: the rate counters live in the cache, which
    outlives a test's database. Only the test settings' cache in this process is cleared,
    never a Redis shared with anything else (a test using Redis uses a key prefix of its own)."""
    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


@pytest.fixture
def service_account(db):
    """Return a function creating a service account (every scope, no merchant unless told)
    through the service, as the admin does; it returns (account, token)."""

    def make(*, scopes=ALL_SCOPES, name=None, **options):
        account, token, _ = service_account_create(
            name=name or f"integration-{next(_names)}", scopes=scopes, actor=None, **options
        )
        return account, token

    return make


@pytest.fixture
def integrator(service_account, merchant):
    """(account, token) of a service account with every scope, serving `merchant` only."""
    return service_account(name="pos-backend", merchants=[merchant])


@pytest.fixture
def integrator_client(integrator):
    return api_client(integrator[1])
