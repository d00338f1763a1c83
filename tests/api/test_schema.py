"""The API's OpenAPI 3 schema at /api/schema/ and its Swagger UI at /api/docs/: public (they
hold no data), complete, and served from this site alone under its strict
Content-Security-Policy."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.urls import URLPattern, get_resolver, reverse

from api.views import ServiceAccountView
from tests.config.test_headers import STRICT_POLICY, inline_code, policy


@pytest.fixture
def schema(client, db):
    response = client.get(reverse("api:schema"), headers={"accept": "application/json"})
    assert response.status_code == 200
    return response.json()


def api_routes() -> dict[str, type]:
    """Return the OpenAPI path of every routed API view, with its view class."""
    (api,) = [
        entry for entry in get_resolver().url_patterns if getattr(entry, "namespace", "") == "api"
    ]
    routes = {}
    for entry in api.url_patterns:
        view = getattr(entry.callback, "view_class", None)
        if isinstance(entry, URLPattern) and view and issubclass(view, ServiceAccountView):
            path = "/api/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(entry.pattern))
            routes[path] = view
    return routes


def test_the_schema_is_valid_openapi_3_and_public(schema):
    assert schema["openapi"].startswith("3.")
    schemathesis.openapi.from_dict(schema).validate()


def test_the_schema_documents_every_endpoint_and_only_those(schema):
    routes = api_routes()

    assert len(routes) == 3
    assert set(schema["paths"]) == set(routes)
    assert all(set(operations) == {"get"} for operations in schema["paths"].values())


def test_the_schema_describes_the_bearer_scheme_and_every_operation_needs_it(schema):
    scheme = schema["components"]["securitySchemes"]["serviceToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "Authorization: Bearer kh_" in scheme["description"]
    for path, operations in schema["paths"].items():
        assert operations["get"]["security"] == [{"serviceToken": []}], path


def test_every_operation_documents_its_refusals_with_the_error_shape(schema):
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in schema["paths"].items():
        responses = operations["get"]["responses"]
        expected = {"200", "401", "403", "429"} | ({"404"} if "{merchant_slug}" in path else set())
        assert expected <= set(responses), path
        for status in expected - {"200"}:
            assert responses[status]["content"]["application/json"]["schema"] == error
    assert schema["components"]["schemas"]["ErrorDetail"]["required"] == ["code", "message"]


def test_the_schema_and_the_docs_need_no_token(client, db):
    assert client.get(reverse("api:schema")).status_code == 200
    assert client.get(reverse("api:docs")).status_code == 200


class Assets(HTMLParser):
    """Collect the addresses a page loads: scripts, stylesheets, icons, images."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("script", "img") and attributes.get("src"):
            self.found.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.found.append(attributes["href"])


def test_the_docs_load_only_this_sites_own_files_and_nothing_inline(client, db):
    response = client.get(reverse("api:docs"))
    html = response.content.decode()
    parser = Assets()
    parser.feed(html)

    assert response.status_code == 200
    assert parser.found
    for address in parser.found:
        # A path on this site: no scheme, no other host (`//cdn…`).
        assert not urlsplit(address).netloc, address
        assert address.startswith("/"), address
    assert inline_code(html) == []
    static = [address for address in parser.found if address.startswith("/static/")]
    assert len(static) == 4  # Swagger UI's style, two scripts and the icon
    for address in static:
        assert finders.find(address.removeprefix("/static/")), f"{address} is not served"


def test_the_docs_keep_the_sites_strict_policy(client, db):
    response = client.get(reverse("api:docs"))

    assert policy(response) == STRICT_POLICY


def test_the_docs_script_is_served_here_and_points_at_the_schema(client, db):
    response = client.get(reverse("api:docs"), {"script": ""})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert reverse("api:schema") in response.content.decode()
    assert policy(response) == STRICT_POLICY
