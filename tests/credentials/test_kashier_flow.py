"""Kashier keys through the whole flow: submitted in the portal, verified against the fake
Kashier hosts, rolled, revoked, checked again, verified again, flagged and revealed.

Keys are posted to the real submit page (`?provider=kashier`, or `?replaces=<id>` for a roll)
and verified by credential_verify against `tests/fake_kashier.py`, one real HTTP server per
mode. The broker, the only thing that leaves the process, is replaced by a recorder. Every
refusal is checked for its message beside its field, for nothing saved, and for the refused
secrets being absent from the page.
"""

import html
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.refusals import Refused
from config import celery_app
from credentials.fields import decrypt_stored_value
from credentials.fingerprints import secret_fingerprint
from credentials.models import (
    Credential,
    HelpdeskFlag,
    Kind,
    LifecycleState,
    Mode,
    Provider,
    VerificationState,
)
from credentials.providers.kashier import PAYMENT_API_KEY_CHECKED
from credentials.providers.kashier import REASONS as KASHIER_REASONS
from credentials.services.checking import REASONS as SHARED_REASONS
from credentials.services.lifecycle import (
    credential_verify_again,
)
from credentials.services.notifications import HELPDESK_SUBMISSION, credential_topic
from credentials.services.rechecks import (
    ReverifyOutcome,
    credential_reverify,
)
from credentials.services.reveal import credential_reveal
from credentials.services.submission import VERIFY_TASK
from credentials.services.verification import credential_verify
from mail.models import OutgoingEmail
from teams.helpdesk import HELPDESK_LEAD_GROUP, helpdesk_groups_ensure
from tests.factories import UserFactory, fake_key
from tests.fake_kashier import (
    MERCHANT_ID,
    account_reply,
    error_reply,
    fake_payment_api_key,
    fake_secret_key,
    refused_reply,
)
from tests.helpers import (
    assert_no_secret,
    merchant_url,
    mode_card,
    page_html,
    page_text,
    reload,
    totp_code,
    totp_device,
    wrong_totp_code,
)

MERCHANT_MAIL = "merchant_verification_result"
KASHIER_DASHBOARD = "the Kashier merchant dashboard (Integrate now → API keys)"
REVEAL_REASON = "Merchant asked us to configure the hosted checkout, ticket 4712"


@pytest.fixture
def merchant(merchant):
    merchant.contact_email = "accounts@democoffee.test"
    merchant.save(update_fields=["contact_email"])
    return merchant


@pytest.fixture(autouse=True)
def sent_tasks(monkeypatch):
    """Record what would be published to the broker (the only thing that leaves the process)."""
    sent = []

    def send_task(name, args=None, kwargs=None, **options):
        sent.append((name, tuple(args or ())))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return sent


def kashier_keys() -> dict[str, str]:
    """Return a made-up pair of Kashier keys, named as the form's fields."""
    return {"secret_key": fake_secret_key(), "payment_api_key": fake_payment_api_key()}


@pytest.fixture
def keys():
    return kashier_keys()


def submit_url(merchant, **query) -> str:
    url = merchant_url("credentials:submit", merchant)
    return f"{url}?{urlencode(query)}" if query else url


def revoke_url(credential) -> str:
    return merchant_url("credentials:revoke", credential.merchant, pk=credential.pk)


def admin_change_url(credential) -> str:
    return reverse("admin:credentials_credential_change", args=[credential.pk])


@pytest.fixture
def post_kashier(django_capture_on_commit_callbacks):
    """Return a function posting Kashier keys to the submit page (a roll with `replaces`);
    what the submission queues after commit is published (to `sent_tasks`)."""

    def post(client, merchant, keys, *, replaces=None, **fields):
        query = {"replaces": replaces.pk} if replaces else {"provider": "kashier"}
        data = {
            "merchant_id": MERCHANT_ID,
            **keys,
            "mode": "test",
            "requested_integrations": ["online_payments"],
            "note": "",
            **fields,
        }
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(submit_url(merchant, **query), data)

    return post


def stored(merchant, secret_key: str) -> Credential:
    """Return the active Kashier key of `merchant` whose secret key is `secret_key`."""
    return Credential.objects.active().get(
        merchant=merchant, provider=Provider.KASHIER, fingerprint=secret_fingerprint(secret_key)
    )


@pytest.fixture
def submit_kashier(owner_client, merchant, post_kashier):
    """Return a function submitting Kashier keys as the owner; it returns the stored key."""

    def submit(keys, *, replaces=None, **fields) -> Credential:
        response = post_kashier(owner_client, merchant, keys, replaces=replaces, **fields)
        assert response.status_code == 302
        return stored(merchant, keys["secret_key"])

    return submit


@pytest.fixture
def verify(django_capture_on_commit_callbacks):
    """Return a function verifying a key as the worker does: its mails (and the flags of
    other merchants' copies) are sent after commit."""

    def run(credential: Credential):
        with django_capture_on_commit_callbacks(execute=True):
            return credential_verify(credential_id=credential.pk)

    return run


@pytest.fixture
def verified_kashier(submit_kashier, fake_kashier, verify):
    """Return a function submitting Kashier keys as the owner, accepted by the host of their
    mode, and verifying them."""

    def make(keys, *, mode="test", replaces=None) -> Credential:
        fake_kashier[mode].accept(keys["secret_key"])
        credential = submit_kashier(keys, mode=mode, replaces=replaces)
        assert verify(credential).state == VerificationState.VERIFIED
        return reload(credential)

    return make


@pytest.fixture
def submitted(submit_kashier, keys):
    """Kashier test keys, submitted by the owner and waiting to be verified."""
    return submit_kashier(keys)


def raw_secret_columns(credential: Credential) -> tuple:
    """Return what the database holds in both secret columns, bypassing the fields."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, extra_secret FROM credentials_credential WHERE id = %s",
            [credential.pk],
        )
        return cursor.fetchone()


def assert_no_kashier_secret(text: str, keys: dict[str, str]) -> None:
    """Assert that neither secret, nor a long stretch of either, is in `text`.

    The Payment API key is a UUID: also without its dashes and in either case, as code that
    normalises it would write it.
    """
    for value in (text, html.unescape(text)):
        assert_no_secret(value, keys["secret_key"])
        payment = keys["payment_api_key"]
        for form in (payment, payment.replace("-", "")):
            assert_no_secret(value.lower(), form.lower())


def field_error(response, field: str) -> str:
    """Return the error shown beside `field`, as a reader sees it."""
    match = re.search(
        rf'<p class="field-error[^"]*" id="id_{field}_error"[^>]*>(.*?)</p>',
        page_html(response),
        re.S,
    )
    assert match, f"no error paragraph beside {field}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def mails_about(credential: Credential) -> dict[str, OutgoingEmail]:
    return {
        email.kind: email
        for email in OutgoingEmail.objects.filter(topic=credential_topic(credential.pk))
    }


def mail_parts(email: OutgoingEmail) -> list[str]:
    return [email.subject, email.body_text, email.body_html]


def make_retry_due(credential: Credential) -> None:
    """Move time forward for this key: its back-off has passed."""
    Credential.objects.filter(pk=credential.pk).update(
        verification_next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def make_due(credential: Credential) -> None:
    """Move time forward for this key: its daily check is due."""
    Credential.objects.filter(pk=credential.pk).update(
        next_reverify_at=timezone.now() - timedelta(minutes=1)
    )


def submitted_events() -> int:
    return AuditEvent.objects.filter(action=AuditEvent.Action.KEY_SUBMITTED).count()


# Submitting through the portal: each refusal


def _with_space(keys):
    return keys["secret_key"][:20] + " " + keys["secret_key"][20:]


def _with_line_break(keys):
    return keys["payment_api_key"][:9] + "\n" + keys["payment_api_key"][9:]


REFUSALS = [
    pytest.param(
        "secret_key",
        lambda keys: keys["payment_api_key"],
        "This is the Payment API key; paste it in the Payment API key field, and put the "
        "secret key here",
        id="uuid-as-secret-key",
    ),
    pytest.param(
        "payment_api_key",
        lambda keys: keys["secret_key"],
        "This is the secret key; paste it in the secret key field, and put the Payment API key "
        "here",
        id="secret-key-as-payment-api-key",
    ),
    pytest.param(
        "secret_key",
        lambda keys: fake_key("sk_live_"),
        "This is a Stripe key, not a Kashier secret key.",
        id="stripe-key-as-secret-key",
    ),
    pytest.param(
        "payment_api_key",
        lambda keys: fake_key("rk_test_"),
        "This is a Stripe key, not a Kashier Payment API key.",
        id="stripe-key-as-payment-api-key",
    ),
    pytest.param(
        "secret_key",
        lambda keys: f"Bearer {keys['secret_key']}",
        "Remove “Bearer ” from the start and paste only the secret key",
        id="bearer-prefix",
    ),
    pytest.param(
        "secret_key",
        lambda keys: f'"{keys["secret_key"]}"',
        "This has quotation marks around it. Remove the quotation marks",
        id="quoted",
    ),
    pytest.param(
        "payment_api_key",
        lambda keys: f"'{keys['payment_api_key']}'",
        "This has quotation marks around it. Remove the quotation marks",
        id="quoted-payment-api-key",
    ),
    pytest.param(
        "secret_key",
        lambda keys: keys["secret_key"].replace("$", "\\$"),
        "This has a backslash before the $ sign, the way .env files escape it.",
        id="escaped-dollar",
    ),
    pytest.param(
        "secret_key",
        _with_space,
        "This contains a space, line break or other invisible character inside the secret key.",
        id="space-inside",
    ),
    pytest.param(
        "payment_api_key",
        _with_line_break,
        "This contains a space, line break or other invisible character inside the Payment "
        "API key.",
        id="line-break-inside",
    ),
    pytest.param(
        "merchant_id",
        lambda keys: "MID-3552",
        "This is not a Kashier merchant ID, which looks like MID-1234-567",
        id="bad-merchant-id",
    ),
    pytest.param(
        "mode",
        lambda keys: "",
        "Choose Test or Live: the mode the keys were copied in",
        id="missing-mode",
    ),
]


@pytest.mark.parametrize(("field", "value", "says"), REFUSALS)
def test_refused_kashier_submission_says_why_beside_the_field_and_saves_nothing(
    owner_client, merchant, keys, post_kashier, sent_tasks, field, value, says
):
    posted = {field: value(keys)}

    response = post_kashier(owner_client, merchant, keys, **posted)

    assert response.status_code == 200
    assert "Submit Kashier keys" in page_text(response)
    assert says in field_error(response, field)
    assert Credential.objects.count() == 0
    assert submitted_events() == 0
    assert sent_tasks == []
    # Neither the refused value nor either secret comes back in the page.
    assert_no_kashier_secret(page_html(response), keys)
    if field in ("secret_key", "payment_api_key"):
        assert_no_secret(page_html(response), posted[field])
        assert_no_secret(page_text(response), posted[field])


@pytest.mark.parametrize("field", ["payment_api_key", "secret_key"])
def test_a_kashier_secret_pasted_into_the_note_too_is_refused_there_and_not_shown_again(
    owner_client, merchant, keys, post_kashier, sent_tasks, field
):
    note = f"Here it is again in case: {keys[field]} thanks"

    response = post_kashier(owner_client, merchant, keys, note=note)

    assert response.status_code == 200
    assert "Remove the key from the note" in field_error(response, "note")
    assert Credential.objects.count() == 0
    assert sent_tasks == []
    assert_no_kashier_secret(page_html(response), keys)


def test_valid_kashier_keys_are_stored_encrypted_under_the_merchant_id_and_queued(
    owner, owner_client, merchant, keys, post_kashier, sent_tasks
):
    response = post_kashier(owner_client, merchant, keys, merchant_id="mid-3552-454", mode="live")

    credential = Credential.objects.get()
    assert response.status_code == 302
    assert response.url == credential.get_absolute_url() + "?submitted=1"
    secret, payment = keys["secret_key"], keys["payment_api_key"]
    assert credential.provider == Provider.KASHIER
    assert credential.mode == Mode.LIVE
    assert credential.kind == Kind.SECRET
    assert credential.public_key == "MID-3552-454"
    assert credential.secret_hint == f"{secret[:4]}…{secret[-4:]}"
    assert credential.verification_state == VerificationState.PENDING
    assert credential.submitted_by == owner
    assert (credential.secret, credential.extra_secret) == (secret, payment)
    # Both columns hold Fernet tokens of their secret, never the secret itself.
    for column, plaintext in zip(raw_secret_columns(credential), (secret, payment), strict=True):
        assert column.startswith("gAAAAA")
        assert plaintext not in column
        assert decrypt_stored_value(column) == plaintext
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_SUBMITTED)
    assert (event.actor, event.merchant) == (owner, merchant)
    assert event.target == f"live key {credential.secret_hint}"
    assert event.details == {"provider": "kashier", "mode": "live", "kind": "secret"}
    assert_no_kashier_secret(f"{event.target} {event.details}", keys)
    assert sent_tasks == [(VERIFY_TASK, (credential.pk,))]


def test_key_page_after_submitting_shows_the_merchant_id_and_the_payment_api_key_as_format_checked(
    owner_client, merchant, keys, post_kashier
):
    response = post_kashier(owner_client, merchant, keys)

    page = owner_client.get(response.url)

    assert page.status_code == 200
    text = page_text(page)
    credential = Credential.objects.get()
    assert "Keys received" in text
    assert f"Your test key {credential.secret_hint} is stored encrypted" in text
    assert "will now be verified with Kashier" in text
    assert f"Merchant ID {MERCHANT_ID}" in text
    assert (
        "Payment API key Format checked (stored encrypted, never shown again) — "
        f"{PAYMENT_API_KEY_CHECKED}"
    ) in text
    assert_no_kashier_secret(page_html(page), keys)


def test_developer_may_submit_kashier_keys(
    merchant, member_factory, client_for, keys, post_kashier
):
    developer = member_factory(merchant, "developer")

    response = post_kashier(client_for(developer), merchant, keys)

    assert response.status_code == 302
    assert Credential.objects.get().submitted_by == developer


@pytest.mark.parametrize("role", ["support", "view-only"])
def test_member_without_submit_permission_gets_403_for_kashier_keys_and_nothing_is_saved(
    merchant, member_factory, client_for, keys, post_kashier, sent_tasks, role
):
    client = client_for(member_factory(merchant, role))

    assert client.get(submit_url(merchant, provider="kashier")).status_code == 403
    response = post_kashier(client, merchant, keys)

    assert response.status_code == 403
    assert Credential.objects.count() == 0
    assert submitted_events() == 0
    assert sent_tasks == []
    assert_no_kashier_secret(page_html(response), keys)


def test_owner_of_another_merchant_gets_404_for_kashier_keys_and_nothing_is_saved(
    other_owner, client_for, merchant, keys, post_kashier, sent_tasks
):
    client = client_for(other_owner)

    assert client.get(submit_url(merchant, provider="kashier")).status_code == 404
    response = post_kashier(client, merchant, keys)

    assert response.status_code == 404
    assert Credential.objects.count() == 0
    assert sent_tasks == []
    assert_no_kashier_secret(page_html(response), keys)


# Verification against the fake Kashier hosts


def test_keys_kashier_accepts_are_verified_and_the_key_page_says_so(
    owner_client, submitted, keys, fake_kashier, verify
):
    fake_kashier.test.accept(keys["secret_key"])

    result = verify(submitted)

    credential = reload(submitted)
    assert result.state == VerificationState.VERIFIED
    assert credential.verification_code == "verified"
    assert credential.verification_reason == KASHIER_REASONS["verified"]
    assert (credential.account_id, credential.account_name) == (
        MERCHANT_ID,
        "Fake Kashier merchant",
    )
    # Asked once, on the host of the mode chosen, and only read.
    assert [mode for mode, _ in fake_kashier.requests_for(keys["secret_key"])] == ["test"]
    assert fake_kashier.non_get_requests == []
    page = owner_client.get(credential.get_absolute_url())
    text = page_text(page)
    assert f"Verified — {KASHIER_REASONS['verified']}" in text
    assert f"Kashier account {MERCHANT_ID} (Fake Kashier merchant)" in text
    assert_no_kashier_secret(page_html(page), keys)


def test_verified_kashier_keys_are_mailed_to_both_sides_naming_kashier_and_the_merchant_id(
    owner, submitted, keys, fake_kashier, verify
):
    fake_kashier.test.accept(keys["secret_key"])

    verify(submitted)

    hint = submitted.secret_hint
    mails = mails_about(submitted)
    assert set(mails) == {MERCHANT_MAIL, HELPDESK_SUBMISSION}
    told = mails[MERCHANT_MAIL]
    assert told.to == [owner.email]
    assert told.subject == f"Your Kashier test key {hint} is verified"
    assert f"Kashier accepted the test key {hint}" in told.body_text
    assert f"Kashier account: {MERCHANT_ID} (Fake Kashier merchant)" in told.body_text
    helpdesk = mails[HELPDESK_SUBMISSION]
    assert helpdesk.to == [django_settings.HELPDESK_EMAIL]
    assert helpdesk.subject == f"[Keyhouse] Demo Coffee Co: test key {hint} verified"
    assert "Demo Coffee Co submitted Kashier keys." in helpdesk.body_text
    assert f"Merchant ID: {MERCHANT_ID}" in helpdesk.body_text
    for email in (told, helpdesk):
        for part in mail_parts(email):
            assert_no_kashier_secret(part, keys)


def test_merchant_id_in_another_case_from_kashier_is_the_same_merchant_and_verified(
    submitted, keys, fake_kashier, verify
):
    fake_kashier.test.accept(keys["secret_key"], merchant_id=MERCHANT_ID.lower())

    assert verify(submitted).state == VerificationState.VERIFIED


def test_key_kashier_accepts_for_another_merchant_id_is_rejected_saying_so(
    owner_client, submitted, keys, fake_kashier, verify
):
    fake_kashier.test.accept(keys["secret_key"], merchant_id="MID-9999-111")

    result = verify(submitted)

    credential = reload(submitted)
    assert result.state == VerificationState.REJECTED
    assert credential.verification_code == "merchant_id_mismatch"
    assert credential.verification_reason == KASHIER_REASONS["merchant_id_mismatch"]
    assert credential.account_id == ""
    assert "MID-9999-111" not in page_text(owner_client.get(credential.get_absolute_url()))
    assert "belongs to another merchant ID" in mails_about(credential)[MERCHANT_MAIL].body_text


def test_key_both_hosts_refuse_is_rejected_as_not_accepted(
    owner_client, submitted, keys, fake_kashier, verify
):
    result = verify(submitted)

    credential = reload(submitted)
    assert result.state == VerificationState.REJECTED
    assert credential.verification_code == "invalid_secret_key"
    assert credential.verification_reason == KASHIER_REASONS["invalid_secret_key"]
    # The live host was asked too, to tell a key of the other mode from no key at all.
    modes = sorted(mode for mode, _ in fake_kashier.requests_for(keys["secret_key"]))
    assert modes == ["live", "test"]
    text = page_text(owner_client.get(credential.get_absolute_url()))
    assert "Rejected by Kashier" in text
    assert KASHIER_REASONS["invalid_secret_key"] in text
    told = mails_about(credential)[MERCHANT_MAIL]
    assert told.subject == (
        f"Action needed: Kashier did not accept your test key {credential.secret_hint}"
    )
    for part in mail_parts(told):
        assert_no_kashier_secret(part, keys)


@pytest.mark.parametrize(
    ("chosen", "accepting", "code", "says"),
    [
        ("test", "live", "wrong_mode_live", "This is a live key, not a test key"),
        ("live", "test", "wrong_mode_test", "This is a test key, not a live key"),
    ],
    ids=["live-key-submitted-as-test", "test-key-submitted-as-live"],
)
def test_key_only_the_other_modes_host_accepts_is_rejected_saying_which_mode_it_is(
    owner_client, submit_kashier, keys, fake_kashier, verify, chosen, accepting, code, says
):
    fake_kashier[accepting].accept(keys["secret_key"])
    credential = submit_kashier(keys, mode=chosen)

    result = verify(credential)

    credential = reload(credential)
    assert result.state == VerificationState.REJECTED
    assert credential.verification_code == code
    assert credential.verification_reason.startswith(says)
    assert says in page_text(owner_client.get(credential.get_absolute_url()))
    assert says in mails_about(credential)[MERCHANT_MAIL].body_text


def test_kashier_answering_500_leaves_the_key_pending_with_a_retry_and_counts_the_attempt(
    submitted, keys, fake_kashier, settings
):
    settings.VERIFY_RETRY_BASE_SECONDS = 60
    # Kashier's message echoes the key: it must never be kept.
    fake_kashier.test.on(keys["secret_key"], error_reply(500, f"bad {keys['secret_key']}"))
    before = timezone.now()

    result = credential_verify(credential_id=submitted.pk)

    credential = reload(submitted)
    assert result.state == VerificationState.PENDING
    assert 30 <= result.retry_in <= 60
    assert credential.verification_state == VerificationState.PENDING
    assert credential.verification_attempts == 1
    assert credential.verification_code == "kashier_error"
    assert credential.verification_reason == SHARED_REASONS["retrying"].format(
        provider="Kashier", what="an error on Kashier's side"
    )
    assert credential.verification_next_attempt_at >= before + timedelta(seconds=30)
    assert_no_kashier_secret(credential.verification_reason, keys)
    # An outage is no verdict: the other host is not asked, and nobody is mailed yet.
    assert [mode for mode, _ in fake_kashier.requests_for(keys["secret_key"])] == ["test"]
    assert not OutgoingEmail.objects.exists()


def test_kashier_answering_500_then_accepting_verifies_the_key_on_the_next_attempt(
    submitted, keys, fake_kashier, verify
):
    fake_kashier.test.on(keys["secret_key"], [error_reply(500), account_reply()])
    assert verify(submitted).state == VerificationState.PENDING
    make_retry_due(submitted)

    result = verify(submitted)

    assert result.state == VerificationState.VERIFIED
    assert reload(submitted).verification_attempts == 2


def test_kashier_down_at_every_attempt_marks_the_key_unreachable_and_tells_the_helpdesk(
    submitted, keys, fake_kashier, verify, settings
):
    fake_kashier.test.on(keys["secret_key"], error_reply(503))
    for attempt in range(1, settings.VERIFY_MAX_ATTEMPTS):
        assert verify(submitted).state == VerificationState.PENDING
        assert reload(submitted).verification_attempts == attempt
        assert not OutgoingEmail.objects.exists()
        make_retry_due(submitted)

    result = verify(submitted)

    credential = reload(submitted)
    assert result.state == VerificationState.UNREACHABLE
    assert credential.verification_attempts == settings.VERIFY_MAX_ATTEMPTS
    assert credential.verification_reason == SHARED_REASONS["unreachable"].format(
        provider="Kashier",
        attempts=settings.VERIFY_MAX_ATTEMPTS,
        what="an error on Kashier's side",
    )
    assert len(fake_kashier.requests_for(keys["secret_key"])) == settings.VERIFY_MAX_ATTEMPTS
    mails = mails_about(credential)
    helpdesk = mails[HELPDESK_SUBMISSION]
    assert helpdesk.subject.endswith("not verified: Kashier could not be reached")
    assert "Outcome: Kashier could not be reached" in helpdesk.body_text
    told = mails[MERCHANT_MAIL]
    assert told.subject == f"We could not verify your Kashier test key {credential.secret_hint} yet"
    assert "The helpdesk has been told" in told.body_text


def test_kashier_answering_too_slowly_is_a_transient_failure_retried_later(
    submitted, keys, fake_kashier, settings
):
    settings.KASHIER_TIMEOUT_SECONDS = 0.3
    fake_kashier.test.on(keys["secret_key"], account_reply(delay=1.0))

    result = credential_verify(credential_id=submitted.pk)

    credential = reload(submitted)
    assert result.state == VerificationState.PENDING
    assert result.retry_in is not None
    assert credential.verification_code == "timed_out"
    assert credential.verification_reason == SHARED_REASONS["retrying"].format(
        provider="Kashier", what="no answer in time"
    )
    assert not OutgoingEmail.objects.exists()


# Rolling a Kashier key


def test_roll_page_of_a_kashier_key_asks_for_kashier_keys_whatever_the_provider_asked(
    owner_client, merchant, verified_kashier, keys
):
    old = verified_kashier(keys)

    response = owner_client.get(submit_url(merchant, replaces=old.pk, provider="stripe"))

    assert response.status_code == 200
    body = page_html(response)
    assert f"Roll the test key {old.secret_hint}" in page_text(response)
    assert "These keys replace the Kashier test key" in page_text(response)
    for field in ("merchant_id", "secret_key", "payment_api_key", "mode"):
        assert f'name="{field}"' in body
    assert 'name="publishable_key"' not in body
    assert_no_kashier_secret(body, keys)


def test_rolled_kashier_key_is_superseded_once_the_new_one_is_verified_with_both_secrets_erased(
    owner_client, merchant, verified_kashier, post_kashier, fake_kashier, verify, keys
):
    old = verified_kashier(keys)
    new_keys = kashier_keys()
    fake_kashier.test.accept(new_keys["secret_key"])

    response = post_kashier(owner_client, merchant, new_keys, replaces=old)

    assert response.status_code == 302
    new = stored(merchant, new_keys["secret_key"])
    assert new.provider == Provider.KASHIER
    # Until the new key is verified, the old one stays in use with both its secrets.
    assert reload(old).lifecycle_state == LifecycleState.ACTIVE
    assert None not in raw_secret_columns(old)

    assert verify(new).state == VerificationState.VERIFIED

    old, new = reload(old), reload(new)
    assert old.lifecycle_state == LifecycleState.SUPERSEDED
    assert old.replaced_by == new
    assert raw_secret_columns(old) == (None, None)
    assert (old.secret, old.extra_secret) == (None, None)
    assert old.secret_hint == f"{keys['secret_key'][:4]}…{keys['secret_key'][-4:]}"
    assert new.lifecycle_state == LifecycleState.ACTIVE
    assert (new.secret, new.extra_secret) == (new_keys["secret_key"], new_keys["payment_api_key"])
    replaces = f"It replaces the key {old.secret_hint}, which is now retired and erased"
    assert replaces in mails_about(new)[MERCHANT_MAIL].body_text


def test_roll_with_keys_of_the_other_mode_is_refused_beside_the_mode_choice_and_nothing_saved(
    owner_client, merchant, verified_kashier, post_kashier, keys, sent_tasks
):
    old = verified_kashier(keys)
    new_keys = kashier_keys()
    sent_tasks.clear()

    response = post_kashier(owner_client, merchant, new_keys, replaces=old, mode="live")

    assert response.status_code == 200
    assert f"You are rolling the test key {old.secret_hint}, but this is a live key." in (
        field_error(response, "mode")
    )
    assert list(Credential.objects.all()) == [old]
    assert submitted_events() == 1
    assert sent_tasks == []
    old = reload(old)
    assert old.lifecycle_state == LifecycleState.ACTIVE
    assert (old.secret, old.extra_secret) == (keys["secret_key"], keys["payment_api_key"])
    assert_no_kashier_secret(page_html(response), new_keys)


# Revoking a Kashier key


REVOKE_REASON = "The keys were pasted in a public chat"


def test_owner_revoking_a_kashier_key_erases_both_secrets_and_is_told_to_roll_it_at_kashier(
    owner_client, merchant, verified_kashier, keys
):
    credential = verified_kashier(keys)

    response = owner_client.post(revoke_url(credential), {"reason": REVOKE_REASON}, follow=True)

    assert response.status_code == 200
    text = page_text(response)
    assert f"The key {credential.secret_hint} is revoked and erased." in text
    assert f"Now roll it in {KASHIER_DASHBOARD} and submit the new key." in text
    assert f"Roll it in {KASHIER_DASHBOARD} and submit the new key." in text
    credential = reload(credential)
    assert credential.lifecycle_state == LifecycleState.REVOKED
    assert raw_secret_columns(credential) == (None, None)
    event = AuditEvent.objects.get(action=AuditEvent.Action.KEY_REVOKED)
    assert event.details == {"reason": REVOKE_REASON, "by": "merchant"}


def test_revocation_mails_name_kashier_and_no_secret(owner_client, verified_kashier, keys):
    credential = verified_kashier(keys)

    owner_client.post(revoke_url(credential), {"reason": REVOKE_REASON})

    mails = mails_about(credential)
    told, alert = mails["merchant_key_revoked"], mails["helpdesk_key_revoked"]
    assert told.subject == (
        f"Your Kashier test key {credential.secret_hint} was revoked: roll it in Kashier now"
    )
    assert f"the merchant has been told to roll it in {KASHIER_DASHBOARD}" in " ".join(
        alert.body_text.split()
    )
    for email in (told, alert):
        for part in mail_parts(email):
            assert_no_kashier_secret(part, keys)


def test_merchant_mail_about_a_revoked_kashier_key_says_to_roll_it_in_the_kashier_dashboard(
    owner_client, verified_kashier, keys
):
    credential = verified_kashier(keys)

    owner_client.post(revoke_url(credential), {"reason": REVOKE_REASON})

    told = mails_about(credential)["merchant_key_revoked"]
    what_to_do = told.body_text.split("What to do now:", 1)[1]
    assert "1. Roll the key in the Kashier merchant dashboard" in what_to_do
    assert "Stripe" not in what_to_do


def test_helpdesk_revoking_a_kashier_key_in_the_admin_is_told_to_have_it_rolled_at_kashier(
    helpdesk_user, client_for, verified_kashier, keys
):
    credential = verified_kashier(keys)

    response = client_for(helpdesk_user).post(
        reverse("admin:credentials_credential_revoke", args=[credential.pk]),
        {"reason": REVOKE_REASON},
        follow=True,
    )

    assert response.status_code == 200
    assert raw_secret_columns(credential) == (None, None)
    [message] = [str(message) for message in response.context["messages"]]
    assert message.startswith(f"{credential.secret_hint} revoked and erased")
    assert "Kashier" in message
    assert "Stripe" not in message


def test_developer_cannot_revoke_a_kashier_key_and_both_secrets_stay(
    merchant, member_factory, client_for, verified_kashier, keys
):
    credential = verified_kashier(keys)
    client = client_for(member_factory(merchant, "developer"))

    response = client.post(revoke_url(credential), {"reason": REVOKE_REASON})

    assert response.status_code == 403
    credential = reload(credential)
    assert credential.lifecycle_state == LifecycleState.ACTIVE
    assert (credential.secret, credential.extra_secret) == (
        keys["secret_key"],
        keys["payment_api_key"],
    )


# The daily re-check


def test_kashier_key_still_accepted_at_its_daily_check_stays_verified(
    verified_kashier, keys, fake_kashier
):
    credential = verified_kashier(keys)
    asked = len(fake_kashier.requests_for(keys["secret_key"]))
    make_due(credential)

    outcome = credential_reverify(credential_id=credential.pk)

    assert outcome == ReverifyOutcome.STILL_VALID
    checked = reload(credential)
    assert checked.verification_state == VerificationState.VERIFIED
    assert checked.checked_at > credential.checked_at
    assert checked.next_reverify_at > timezone.now()
    assert len(fake_kashier.requests_for(keys["secret_key"])) == asked + 1
    assert not OutgoingEmail.objects.filter(kind__contains="no_longer_valid").exists()


def test_kashier_key_not_yet_due_is_not_checked(verified_kashier, keys, fake_kashier):
    credential = verified_kashier(keys)
    asked = len(fake_kashier.requests_for(keys["secret_key"]))

    assert credential_reverify(credential_id=credential.pk) == ReverifyOutcome.NOT_DUE
    assert len(fake_kashier.requests_for(keys["secret_key"])) == asked


def test_kashier_key_refused_at_its_daily_check_is_rejected_and_both_sides_are_told(
    owner, merchant, verified_kashier, keys, fake_kashier
):
    credential = verified_kashier(keys)
    fake_kashier.test.on(keys["secret_key"], refused_reply())
    make_due(credential)

    outcome = credential_reverify(credential_id=credential.pk)

    assert outcome == ReverifyOutcome.REJECTED
    credential = reload(credential)
    assert credential.verification_state == VerificationState.REJECTED
    assert credential.verification_code == "invalid_secret_key"
    assert credential.verification_reason == SHARED_REASONS["no_longer_valid"].format(
        provider="Kashier", reason=KASHIER_REASONS["invalid_secret_key"]
    )
    assert credential.lifecycle_state == LifecycleState.ACTIVE
    mails = mails_about(credential)
    told = mails["merchant_key_no_longer_valid"]
    assert sorted(told.to) == sorted([owner.email, merchant.contact_email])
    assert told.subject == (
        f"Action needed: Kashier no longer accepts your test key {credential.secret_hint}"
    )
    assert "Kashier no longer accepts this key" in told.body_text
    alert = mails["helpdesk_key_no_longer_valid"]
    assert alert.subject.endswith("no longer works at Kashier")
    for email in (told, alert):
        for part in mail_parts(email):
            assert_no_kashier_secret(part, keys)


# The helpdesk's "Verify again"


def test_helpdesk_verifies_a_rejected_kashier_key_again_and_it_is_verified_once_kashier_accepts(
    helpdesk_user,
    client_for,
    submitted,
    keys,
    fake_kashier,
    verify,
    sent_tasks,
    django_capture_on_commit_callbacks,
):
    assert verify(submitted).state == VerificationState.REJECTED
    client = client_for(helpdesk_user)
    assert "Verify again" in page_text(client.get(admin_change_url(submitted)))
    sent_tasks.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:credentials_credential_verify_again", args=[submitted.pk]),
            follow=True,
        )

    assert "is being verified again" in page_text(response)
    assert reload(submitted).verification_state == VerificationState.PENDING
    assert sent_tasks == [(VERIFY_TASK, (submitted.pk,))]
    event = AuditEvent.objects.get(action=AuditEvent.Action.KEY_VERIFY_AGAIN)
    assert event.actor == helpdesk_user
    fake_kashier.test.accept(keys["secret_key"])
    assert verify(submitted).state == VerificationState.VERIFIED
    outcomes = OutgoingEmail.objects.filter(
        topic=credential_topic(submitted.pk), kind=MERCHANT_MAIL
    ).order_by("pk")
    hint = submitted.secret_hint
    assert [email.subject for email in outcomes] == [
        f"Action needed: Kashier did not accept your test key {hint}",
        f"Your Kashier test key {hint} is verified",
    ]


@pytest.mark.parametrize("who", ["owner", "plain staff"])
def test_anyone_but_the_helpdesk_is_refused_verifying_a_kashier_key_again(
    owner, submitted, fake_kashier, verify, who
):
    verify(submitted)
    actor = owner if who == "owner" else UserFactory(is_staff=True)

    with pytest.raises(Refused):
        credential_verify_again(credential=submitted, actor=actor)

    assert reload(submitted).verification_state == VerificationState.REJECTED
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED).count() == 1


def test_verify_again_of_a_verified_kashier_key_is_refused_without_naming_another_provider(
    helpdesk_user, verified_kashier, keys
):
    credential = verified_kashier(keys)

    with pytest.raises(ValidationError) as refusal:
        credential_verify_again(credential=credential, actor=helpdesk_user)

    [message] = refusal.value.messages
    assert message.startswith("Only an active key that")
    assert "Stripe" not in message
    assert reload(credential).verification_state == VerificationState.VERIFIED
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.KEY_VERIFY_AGAIN).exists()


# Duplicates


def test_same_kashier_secret_key_twice_for_one_merchant_and_mode_is_refused_beside_the_secret_key(
    owner_client, merchant, submit_kashier, post_kashier, keys, sent_tasks
):
    first = submit_kashier(keys)
    again = {"secret_key": keys["secret_key"], "payment_api_key": fake_payment_api_key()}
    sent_tasks.clear()

    response = post_kashier(owner_client, merchant, again)

    assert response.status_code == 200
    says = field_error(response, "secret_key")
    assert (
        f"This secret key is already stored for this merchant in test mode ({first.secret_hint})"
    ) in says
    assert f"roll it in {KASHIER_DASHBOARD}" in says
    assert list(Credential.objects.all()) == [first]
    assert submitted_events() == 1
    assert sent_tasks == []
    assert_no_kashier_secret(page_html(response), again)


def test_same_kashier_secret_key_in_the_other_mode_is_not_a_duplicate(
    owner_client, merchant, submit_kashier, post_kashier, keys
):
    submit_kashier(keys)

    response = post_kashier(owner_client, merchant, keys, mode="live")

    assert response.status_code == 302
    assert sorted(Credential.objects.values_list("mode", flat=True)) == ["live", "test"]


def test_same_kashier_secret_key_at_another_merchant_is_flagged_to_the_helpdesk_on_both(
    merchant,
    other_merchant,
    owner_client,
    other_owner,
    client_for,
    post_kashier,
    fake_kashier,
    verify,
    keys,
):
    fake_kashier.test.accept(keys["secret_key"])
    assert post_kashier(client_for(other_owner), other_merchant, keys).status_code == 302
    theirs = stored(other_merchant, keys["secret_key"])
    verify(theirs)
    assert reload(theirs).helpdesk_flags == []

    # Accepted for our merchant: another merchant's keys are not its business.
    assert post_kashier(owner_client, merchant, keys).status_code == 302
    ours = stored(merchant, keys["secret_key"])
    verify(ours)

    flag = [HelpdeskFlag.DUPLICATE_ELSEWHERE]
    assert reload(ours).helpdesk_flags == flag
    assert reload(theirs).helpdesk_flags == flag
    assert "another merchant" not in mails_about(ours)[MERCHANT_MAIL].body_text


# Revealing both secrets to a helpdesk lead


@pytest.fixture
def lead(db):
    groups = helpdesk_groups_ensure()
    user = UserFactory(email="lead@demo.test", is_staff=True)
    user.groups.add(groups[HELPDESK_LEAD_GROUP])
    return user


def reveal_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REVEALED))


def test_lead_with_a_fresh_code_gets_both_kashier_secrets_labelled_and_the_reveal_is_audited(
    lead, submitted, keys
):
    revealed = credential_reveal(
        credential=submitted,
        actor=lead,
        reason=REVEAL_REASON,
        otp_token=totp_code(totp_device(lead)),
    )

    assert revealed == [
        ("Secret key", keys["secret_key"]),
        ("Payment API key", keys["payment_api_key"]),
    ]
    [event] = reveal_events()
    assert event.actor == lead
    assert event.target == f"test key {submitted.secret_hint}"
    assert event.details == {"reason": REVEAL_REASON}
    assert_no_kashier_secret(f"{event.target} {event.details} {event.actor_email}", keys)


def test_lead_with_a_wrong_code_is_refused_the_kashier_secrets(lead, submitted, keys):
    with pytest.raises(PermissionDenied, match="A fresh code is needed"):
        credential_reveal(
            credential=submitted,
            actor=lead,
            reason=REVEAL_REASON,
            otp_token=wrong_totp_code(totp_device(lead)),
        )

    assert reveal_events() == []
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REVEAL_REFUSED)
    assert_no_kashier_secret(f"{event.target} {event.details}", keys)


@pytest.mark.parametrize("who", ["helpdesk_user", "owner"])
def test_anyone_but_a_lead_is_refused_the_kashier_secrets_and_the_refusal_is_audited(
    request, submitted, keys, who
):
    actor = request.getfixturevalue(who)

    with pytest.raises(PermissionDenied):
        credential_reveal(
            credential=submitted,
            actor=actor,
            reason=REVEAL_REASON,
            otp_token=totp_code(totp_device(actor)),
        )

    assert reveal_events() == []
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED)
    assert event.actor == actor
    assert_no_kashier_secret(f"{event.target} {event.details}", keys)


def test_lead_sees_both_kashier_secrets_on_the_reveal_answer_and_on_no_other_admin_page(
    lead, client_for, submitted, keys
):
    client = client_for(lead)
    reveal = reverse("admin:credentials_credential_reveal", args=[submitted.pk])

    response = client.post(
        reveal, {"reason": REVEAL_REASON, "otp_token": totp_code(totp_device(lead))}
    )

    text = page_text(response)
    assert f"Secret key: {keys['secret_key']}" in text
    assert f"Payment API key: {keys['payment_api_key']}" in text
    for page in (admin_change_url(submitted), reveal):
        assert_no_kashier_secret(page_html(client.get(page)), keys)


# Kashier and Stripe keys side by side


def submit_stripe(client, merchant, secret: str, *, replaces=None):
    query = {"replaces": replaces.pk} if replaces else {}
    return client.post(
        submit_url(merchant, **query),
        {
            "publishable_key": fake_key("pk_test_"),
            "secret_key": secret,
            "requested_integrations": ["online_payments"],
            "note": "",
        },
    )


@pytest.fixture
def verified_stripe(owner_client, merchant, fake_stripe, verify):
    """Return a function submitting a Stripe test key as the owner and verifying it."""

    def make(secret: str, *, replaces=None) -> Credential:
        assert submit_stripe(owner_client, merchant, secret, replaces=replaces).status_code == 302
        credential = Credential.objects.active().get(
            merchant=merchant, provider=Provider.STRIPE, fingerprint=secret_fingerprint(secret)
        )
        assert verify(credential).state == VerificationState.VERIFIED
        return reload(credential)

    return make


def test_rolling_the_kashier_key_leaves_the_stripe_key_of_the_same_mode_in_use(
    verified_stripe, verified_kashier, keys
):
    stripe_secret = fake_key("sk_test_")
    stripe_key = verified_stripe(stripe_secret)
    old = verified_kashier(keys)

    new = verified_kashier(kashier_keys(), replaces=old)

    assert reload(old).replaced_by == new
    stripe_key = reload(stripe_key)
    assert stripe_key.lifecycle_state == LifecycleState.ACTIVE
    assert stripe_key.verification_state == VerificationState.VERIFIED
    assert stripe_key.secret == stripe_secret
    assert stripe_key.replaced_by is None


def test_rolling_the_stripe_key_leaves_the_kashier_key_of_the_same_mode_in_use(
    verified_stripe, verified_kashier, keys
):
    kashier = verified_kashier(keys)
    old = verified_stripe(fake_key("sk_test_"))

    new = verified_stripe(fake_key("sk_test_"), replaces=old)

    assert reload(old).replaced_by == new
    kashier = reload(kashier)
    assert kashier.lifecycle_state == LifecycleState.ACTIVE
    assert kashier.replaced_by is None
    assert (kashier.secret, kashier.extra_secret) == (keys["secret_key"], keys["payment_api_key"])


def provider_section(body: str, provider: str) -> str:
    """Return one provider's section of the merchant page."""
    match = re.search(rf'<section class="keys keys-{provider}">(.*?)</section>', body, re.S)
    assert match, f"no {provider} section on the merchant page"
    return match.group(1)


def test_merchant_page_shows_a_kashier_keys_section_and_a_stripe_keys_section(
    owner_client, merchant, verified_stripe, verified_kashier, keys
):
    stripe_key = verified_stripe(fake_key("sk_test_"))
    kashier = verified_kashier(keys)

    body = page_html(owner_client.get(merchant_url("credentials:merchant", merchant)))

    kashier_section = provider_section(body, "kashier")
    stripe_section = provider_section(body, "stripe")
    assert "<h2>Kashier keys</h2>" in kashier_section
    assert "<h2>Stripe keys</h2>" in stripe_section
    assert kashier.secret_hint in mode_card(kashier_section, "test")
    assert stripe_key.secret_hint not in kashier_section
    assert stripe_key.secret_hint in mode_card(stripe_section, "test")
    assert kashier.secret_hint not in stripe_section
    assert_no_kashier_secret(body, keys)


def test_merchant_with_only_stripe_keys_is_offered_to_submit_kashier_keys(
    owner_client, merchant, verified_stripe
):
    verified_stripe(fake_key("sk_test_"))

    response = owner_client.get(merchant_url("credentials:merchant", merchant))

    assert 'class="keys keys-kashier"' not in page_html(response)
    assert "No Kashier keys. Submit Kashier keys" in page_text(response)
    assert f'href="{submit_url(merchant)}?provider=kashier"' in page_html(response)


def test_helpdesk_queue_lists_kashier_and_stripe_keys_together_without_their_secrets(
    helpdesk_user, client_for, verified_kashier, keys, verified_stripe
):
    kashier = verified_kashier(keys)
    stripe_key = verified_stripe(fake_key("sk_test_"))
    client = client_for(helpdesk_user)

    response = client.get(reverse("admin:credentials_credential_changelist"))

    assert response.status_code == 200
    text = page_text(response)
    for credential, provider_mode in ((kashier, "Kashier · Test"), (stripe_key, "Stripe · Test")):
        row = re.search(
            rf'<tr>(?:(?!</tr>).)*value="{credential.pk}"(?:(?!</tr>).)*</tr>',
            page_html(response),
            re.S,
        )
        assert row, f"{provider_mode} key not in the default queue"
        assert provider_mode in row.group(0)
        assert credential.secret_hint in row.group(0)
    assert_no_kashier_secret(page_html(response), keys)
    assert "Verified" in text
