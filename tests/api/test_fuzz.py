"""Hostile calls never break the API: whatever the slug, provider, mode, cursor, page size or
Authorization header, the answer is the schema's (never a server error, never an HTML page).

Schemathesis generates calls from the API's own schema (a bounded, deterministic number per
operation) and checks each answer against it; Hypothesis adds addresses and headers no
schema describes.
"""

import json
from urllib.parse import quote

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credentials.models import Mode
from tests.api.helpers import bearer, error_of, kashier_key, stripe_key

EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


# A cursor is opaque: a string the API did not make is a valid string by the schema, and
# refused (400 invalid_cursor) all the same.
CONFIG = schemathesis.Config.from_dict(
    {
        # Calls the schema allows and calls it does not (a page_size of 0, a mode of "x").
        "generation": {"mode": "all"},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "429"]
            }
        },
    }
)


def served_schema() -> dict:
    """Return the schema /api/schema/ serves, made as its view makes it, without a request:
    it is read at collection, where a failing request would stop the whole run
    (tests/api/test_schema.py checks the one served)."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))


schema = schemathesis.openapi.from_dict(served_schema(), config=CONFIG)
# Calls go to the application in this process, as a server would pass them.
schema.app = get_wsgi_application()


# The token of the test being run, for the auth provider below.
CURRENT = {}


@pytest.fixture
def served(merchant, integrator, settings):
    """(merchant, token): a merchant with verified keys of both providers in both modes, and
    the token of an account with every scope serving it, at a rate no fuzzing run reaches."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"service_account": "100000/minute"},
    }
    for mode in Mode.values:
        stripe_key(merchant, mode=mode)
        kashier_key(merchant, mode=mode)
    CURRENT["token"] = integrator[1]
    yield merchant, integrator[1]
    CURRENT.clear()


@pytest.fixture
def connection_kept():
    """Keep the test's database connection between the calls schemathesis makes through the
    WSGI application, as Django's test client does: the signal handler that closes
    connections after each request would end the test's transaction (on PostgreSQL)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.auth(refresh_interval=None)
class ServiceToken:
    """The current test's token as schemathesis's own auth: its check that a call without a
    valid token is refused (ignored_auth) then knows which header to take away or spoil."""

    def get(self, case, context):
        return CURRENT.get("token", "")

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), **bearer(data)}


@schema.parametrize()
@EXAMPLES
def test_every_answer_matches_the_schema(case, served, connection_kept):
    merchant, _ = served

    case.call_and_validate()
    # The same call for the merchant that exists, so that answers with data are checked too.
    if "merchant_slug" in (case.path_parameters or {}):
        case.path_parameters["merchant_slug"] = merchant.slug
        case.call_and_validate()


hostile_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=120
) | st.sampled_from(["..", ".", "%00", "\x00", "a/b", "stripe%2F..", "' OR 1=1 --", "ﬁ", " "])


def assert_json_answer(response, *statuses):
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        error_of(response)
    else:
        assert response["Content-Type"] == "application/json"


@given(slug=hostile_text, provider=hostile_text, mode=hostile_text)
@EXAMPLES
def test_hostile_addresses_get_a_json_answer(client, served, slug, provider, mode):
    _, token = served
    segments = [quote(part, safe="") for part in (slug, provider, mode)]

    credentials = client.get(f"/api/v1/merchants/{segments[0]}/credentials/", headers=bearer(token))
    secret = client.get(
        f"/api/v1/merchants/{segments[0]}/credentials/{segments[1]}/{segments[2]}/secret/",
        headers=bearer(token),
    )

    assert_json_answer(credentials, 404)
    assert_json_answer(secret, 404)


@given(cursor=hostile_text, page_size=hostile_text)
@EXAMPLES
def test_hostile_cursors_and_page_sizes_get_a_json_answer(client, served, cursor, page_size):
    merchant, token = served

    for address in ("/api/v1/merchants/", f"/api/v1/merchants/{merchant.slug}/credentials/"):
        response = client.get(
            address, {"cursor": cursor, "page_size": page_size}, headers=bearer(token)
        )

        assert_json_answer(response, 200, 400)


latin_1_text = st.text(
    st.characters(max_codepoint=255, exclude_categories=["Cs"]), max_size=200
) | st.sampled_from(["Bearer kh_", "Bearer kh_aaaaaaaaaa_", "bearer\tkh_x", "Bearer \x00"])


@given(header=latin_1_text)
@EXAMPLES
def test_hostile_authorization_headers_are_refused_with_a_json_401(client, served, header):
    response = client.get("/api/v1/merchants/", headers={"authorization": header})

    assert_json_answer(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
