"""Helpers shared by the test modules: reading pages, reloading rows, counting queries, and
proving that nothing leaked or changed.

Fixtures live in `tests/conftest.py`, test data in `tests/factories.py`; these are plain
functions a test calls.
"""

import html
import re
import time

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP, hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from credentials.models import Credential
from merchants.models import Merchant
from teams.models import Invitation, Membership, Role
from teams.rules import role_permission_names

# How long a stretch of a secret's body proves a leak: a key's hint shows its last four.
SECRET_FRAGMENT_LENGTH = 12


def reload(obj):
    """Return `obj` as the next request loads it: its row read again, nothing cached on it
    (such as a user's answers to `has_perm`)."""
    return type(obj)._default_manager.get(pk=obj.pk)


def merchant_url(name: str, merchant, **kwargs) -> str:
    """Return the address of the portal page `name` of `merchant`."""
    return reverse(name, kwargs={"slug": merchant.slug, **kwargs})


def page_html(response) -> str:
    """Return the page as sent: its HTML, for attributes, links and forms."""
    return response.content.decode()


def page_text(response) -> str:
    """Return the page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page_html(response))).split())


def mode_card(body: str, mode: str) -> str:
    """Return the card of one mode (test or live) on the merchant page."""
    match = re.search(rf'<article class="[^"]*\bmode-{mode}\b[^"]*">(.*?)</article>', body, re.S)
    assert match, f"no {mode} mode card on the page"
    return match.group(1)


def history_rows(body: str) -> list[str]:
    """Return the rows of the key history table, top to bottom, as text."""
    match = re.search(r'<section class="[^"]*\bhistory\b[^"]*">(.*?)</section>', body, re.S)
    assert match, "no key history on the page"
    rows = re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)[1:]  # without the header
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def secret_fragments(secret: str) -> list[str]:
    """Return every SECRET_FRAGMENT_LENGTH-character stretch of a key's body (after
    `sk_test_`, or the whole of a Kashier key): hints show four characters, so only longer
    stretches prove a leak."""
    # A Stripe key's body follows its prefix; a Kashier key has no prefix.
    parts = str(secret).split("_", 2)
    body = parts[2] if len(parts) == 3 else str(secret)
    length = SECRET_FRAGMENT_LENGTH
    return [body[start : start + length] for start in range(len(body) - length + 1)]


def assert_no_secret(text: str, secret: str) -> None:
    """Assert that `text` holds neither `secret` nor any long stretch of it."""
    assert str(secret) not in text, "the secret is in the text"
    leaked = [fragment for fragment in secret_fragments(secret) if fragment in text]
    assert not leaked, "part of the secret is in the text"


def queries_for(client, address: str) -> int:
    """Return how many queries a successful GET of `address` runs.

    The baseline for `django_assert_max_num_queries`, which then holds the same page with more
    rows to it.
    """
    with CaptureQueriesContext(connection) as queries:
        response = client.get(address)
    assert response.status_code == 200
    return len(queries)


def raw_secret_column(credential: Credential):
    """Return what the database holds in the secret column, bypassing the field."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM credentials_credential WHERE id = %s", [credential.pk])
        return cursor.fetchone()[0]


# Audited, and changing nothing: sign-ins and refusals.
_AUDITED_WITHOUT_CHANGE = (
    AuditEvent.Action.SIGNED_IN,
    AuditEvent.Action.ACTION_REFUSED,
    AuditEvent.Action.ACCESS_DENIED,
)


def stored_state() -> dict:
    """Return every row a portal page could change, to prove a refused attempt changed nothing.

    Users, merchants, keys (their secret left out), memberships, roles with their permissions,
    invitations, and the audit trail's record of changes (sign-ins and refusals are audited
    too, and change nothing).
    """

    def rows(model, *exclude):
        columns = [f.attname for f in model._meta.concrete_fields if f.name not in exclude]
        return list(model._default_manager.order_by("pk").values_list(*columns))

    return {
        "users": rows(get_user_model(), "last_login"),
        "merchants": rows(Merchant),
        "credentials": rows(Credential, "secret"),
        "memberships": rows(Membership),
        "roles": [
            (*row, sorted(role_permission_names(role)))
            for row, role in zip(rows(Role), Role.objects.order_by("pk"), strict=True)
        ],
        "invitations": rows(Invitation),
        "audit": list(
            AuditEvent.objects.exclude(action__in=_AUDITED_WITHOUT_CHANGE)
            .order_by("pk")
            .values_list("action", "target")
        ),
    }


# Two-factor sign-in: a device, its codes, and a session verified by it.


def totp_device(user) -> TOTPDevice:
    """Return the user's confirmed TOTP device, giving them one if they have none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Test app", confirmed=True)


def _time_step(device: TOTPDevice) -> int:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return totp.t()


def totp_code(device: TOTPDevice) -> str:
    """Return a code the device accepts now and has not accepted before.

    The current time step's code, or the next step's when the current one was used: the
    device accepts one step either side, so two codes in a row work without waiting.
    """
    device.refresh_from_db()
    step = max(_time_step(device), device.last_t + 1)
    return str(hotp(device.bin_key, step, device.digits)).zfill(device.digits)


def wrong_totp_code(device: TOTPDevice) -> str:
    """Return a 6-digit code the device does not accept now (one from an hour ago)."""
    now = _time_step(device)
    accepted = {hotp(device.bin_key, now + delta, device.digits) for delta in (-1, 0, 1, 2)}
    past = now - 3600 // device.step
    while hotp(device.bin_key, past, device.digits) in accepted:
        past -= 1
    return str(hotp(device.bin_key, past, device.digits)).zfill(device.digits)


def verify_session(client, user) -> TOTPDevice:
    """Sign `client` in as `user` with a session verified by their TOTP device (given one if
    they have none), as after a sign-in with email, password and code."""
    device = totp_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device
