"""Bad input never makes a server error: every portal page that takes a POST (the submit
page once per provider), and the admin's forms that write, are sent bounded batches of
hostile values in each of their fields. A submit page stores a key only for a body its
provider's form accepts.

A seeded generator, not a property-based search: the same bodies every run, so a failure
reproduces, and a bound that keeps the suite quick. Each answer must be a page (2xx), a
redirect (3xx) or a refusal (4xx), never a 500, and never echo a key that was sent.
"""

import random
import re
from urllib.parse import parse_qs, urlencode

import pytest
from django.http import QueryDict
from django.urls import resolve, reverse

from credentials.models import Credential
from credentials.providers import DEFAULT_PROVIDER, PROVIDERS
from tests.factories import fake_key
from tests.fake_kashier import MERCHANT_ID, fake_payment_api_key, fake_secret_key
from tests.portal_routes import portal_routes
from tests.test_portal_access import _tenant, address

pytestmark = pytest.mark.django_db

BODIES_PER_FORM = 12
SEED = 20261130

NASTY = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x02\x1b[31m",
    "\u200b",
    "\ufeff",
    "x" * 5000,
    "é" * 300,
    "😀" * 100,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00",
    "-1",
    "0",
    "99999999999999999999",
    "1e309",
    "null",
    "[]",
    "{}",
    "true",
    "\uff33\uff2b\uff3f\uff2c\uff29\uff36\uff25\uff3f",  # SK_LIVE_ in full width
)


def hostile_values(generator: random.Random, secret: str, kashier_keys: list[str]) -> list[str]:
    """Return the values to try: the fixed nasty ones, key-shaped ones (Stripe's and
    Kashier's), and random mixes."""
    kashier_secret, payment_api_key = kashier_keys
    keyish = [
        secret,
        f"sk_live_ {secret[8:]}",
        f"SK_LIVE_\u200b{secret[8:]}",
        "gAAAAA" + "A" * 40,
        *kashier_keys,
        kashier_secret.replace("$", "\\$"),
        f"Bearer {kashier_secret}",
        kashier_secret.split("$")[0],
        f"\u200b{payment_api_key}",
        MERCHANT_ID,
        f"{MERCHANT_ID}\u00ad",
        "live",
    ]
    mixed = [
        "".join(generator.choice(NASTY + tuple(keyish)) for _ in range(generator.randint(1, 4)))
        for _ in range(6)
    ]
    return list(NASTY) + keyish + mixed


def field_names(html: str) -> set[str]:
    """Return the names of the inputs, selects and text areas of a page's forms."""
    names = set(re.findall(r'<(?:input|select|textarea)[^>]*\sname="([^"]+)"', html))
    return names - {"csrfmiddlewaretoken"}


def bodies(names: set[str], generator: random.Random, secret: str, kashier_keys: list[str]):
    values = hostile_values(generator, secret, kashier_keys)
    for _ in range(BODIES_PER_FORM):
        yield {
            name: (
                [generator.choice(values) for _ in range(generator.randint(0, 3))]
                if generator.random() < 0.2
                else generator.choice(values)
            )
            for name in sorted(names)
            if generator.random() < 0.9
        }


def _takes_post(route) -> bool:
    kwargs = {kwarg: ("any" if kwarg == "slug" else 1) for kwarg in route.kwargs}
    view_class = resolve(reverse(route.name, kwargs=kwargs)).func.view_class
    return "post" in view_class.http_method_names and hasattr(view_class, "post")


POST_ROUTES = [
    route for route in portal_routes(query_variants=True) if route.name and _takes_post(route)
]

# A body each provider's submit page stores a key for.
VALID_KEYS = {
    "stripe": lambda: {"publishable_key": fake_key("pk_test_"), "secret_key": fake_key("rk_test_")},
    "kashier": lambda: {
        "merchant_id": MERCHANT_ID,
        "secret_key": fake_secret_key(),
        "payment_api_key": fake_payment_api_key(),
        "mode": "test",
    },
}


def submit_provider(route) -> str:
    """Return the code of the provider whose keys the submit page `route` takes."""
    return parse_qs(route.query).get("provider", [DEFAULT_PROVIDER])[0]


def provider_form_accepts(route, body: dict) -> bool:
    """Return True if the form of the submit page `route` accepts `body` as posted."""
    form_class = PROVIDERS[submit_provider(route)].form_class
    return form_class(data=QueryDict(urlencode(body, doseq=True))).is_valid()


@pytest.mark.parametrize("route", POST_ROUTES, ids=str)
def test_no_portal_form_answers_hostile_input_with_a_server_error(
    route, merchant, owner, client_for
):
    tenant = _tenant(merchant, owner)
    url = address(route, tenant)
    client = client_for(owner)
    client.raise_request_exception = False
    generator = random.Random(f"{SEED}:{route}")
    secret = fake_key("sk_live_")
    kashier_keys = [fake_secret_key(), fake_payment_api_key()]
    names = field_names(client.get(url).content.decode()) or {"reason", "note", "email", "role"}
    takes_keys = route.name == "credentials:submit"

    for body in bodies(names, generator, secret, kashier_keys):
        keys_before = Credential.objects.count()
        response = client.post(url, body)

        assert response.status_code < 500, (route, body)
        page = response.content.decode(errors="replace")
        assert secret[8:] not in page, (route, body)
        # A Kashier secret key's hint shows its first four and last four characters.
        assert kashier_keys[0][4:-4] not in page, (route, body)
        if takes_keys and Credential.objects.count() != keys_before:
            assert provider_form_accepts(route, body), (route, body)

    if takes_keys:
        # The check above sees a key being stored: a valid body is.
        valid = {**VALID_KEYS[submit_provider(route)](), "requested_integrations": ["invoicing"]}
        keys_before = Credential.objects.count()
        assert provider_form_accepts(route, valid)
        assert client.post(url, valid).status_code == 302
        assert Credential.objects.count() == keys_before + 1
        assert Credential.objects.latest("pk").provider == submit_provider(route)


ADMIN_FORMS = (
    "admin:merchants_merchant_add",
    "admin:teams_user_add",
    "admin:integrations_serviceaccount_add",
)


@pytest.mark.parametrize("name", ADMIN_FORMS)
def test_no_admin_form_answers_hostile_input_with_a_server_error(name, superuser, client_for):
    client = client_for(superuser)
    client.raise_request_exception = False
    url = reverse(name)
    generator = random.Random(f"{SEED}:{name}")
    secret = fake_key("sk_live_")
    kashier_keys = [fake_secret_key(), fake_payment_api_key()]
    names = field_names(client.get(url).content.decode())

    for body in bodies(names, generator, secret, kashier_keys):
        response = client.post(url, body)

        assert response.status_code < 500, (name, body)
        page = response.content.decode(errors="replace")
        assert secret[8:] not in page, (name, body)
        assert kashier_keys[0][4:-4] not in page, (name, body)
