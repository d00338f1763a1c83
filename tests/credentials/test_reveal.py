"""A helpdesk lead reveals a stored secret in the admin: a POST with a reason, shown once, audited.

Everybody else (plain helpdesk staff, merchants) is refused, and the refusal is audited as an
access denied for the lead's permission (by `audit.refusals`, as every refusal is); no
admin page but the one answering the reveal ever carries the secret. Superusers pass every
permission check, so a platform admin may reveal too, audited like a lead.
"""

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from credentials.models import LifecycleState, VerificationState
from credentials.services.reveal import credential_reveal
from teams.helpdesk import HELPDESK_LEAD_GROUP, helpdesk_groups_ensure
from teams.permissions import HELPDESK_REVEAL_SECRETS
from tests.factories import CredentialFactory, UserFactory, fake_key
from tests.helpers import totp_code, totp_device, wrong_totp_code

Action = AuditEvent.Action
REASON = "Merchant asked us to configure the terminal integration, ticket 4711"
# What the audit trail records of a refused reveal: the refusal and the permission missing.
REFUSAL = {"reason": "Your account does not allow this.", "permission": HELPDESK_REVEAL_SECRETS}


def reveal_url(credential) -> str:
    return reverse("admin:credentials_credential_reveal", args=[credential.pk])


def change_url(credential) -> str:
    return reverse("admin:credentials_credential_change", args=[credential.pk])


def secret_fragments(secret: str) -> list[str]:
    """Return every 12-character stretch of the secret's body (after `sk_test_`).

    The hint shows the last four characters, so only longer stretches prove a leak.
    """
    body = secret.split("_", 2)[2]
    return [body[start : start + 12] for start in range(len(body) - 11)]


def assert_no_secret(text: str, secret: str):
    assert secret not in text
    leaked = [fragment for fragment in secret_fragments(secret) if fragment in text]
    assert not leaked, "part of the secret is in the text"


def code(user) -> str:
    """Return a fresh code from the user's authenticator app: the step-up a reveal asks for."""
    return totp_code(totp_device(user))


def reveal(client, credential, reason: str = REASON, **extra):
    """POST the reveal form as the client's staff user, with a fresh code from their app."""
    user = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    return client.post(reveal_url(credential), {"reason": reason, "otp_token": code(user)}, **extra)


def template_of(response) -> str:
    """Return the name of the page's own template (the first one rendered)."""
    return response.templates[0].name


def audit_text(event: AuditEvent) -> str:
    return f"{event.target} {event.details} {event.actor_email}"


def events(action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


@pytest.fixture
def lead(db):
    groups = helpdesk_groups_ensure()
    user = UserFactory(email="lead@demo.test", is_staff=True)
    user.groups.add(groups[HELPDESK_LEAD_GROUP])
    return user


@pytest.fixture
def credential(merchant, owner, secret):
    return CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        secret_value=secret,
        verification_state=VerificationState.VERIFIED,
    )


@pytest.fixture
def lead_client(lead, client_for):
    return client_for(lead)


@pytest.fixture
def helpdesk_client(helpdesk_user, client_for):
    return client_for(helpdesk_user)


# The lead reveals


def test_lead_gets_a_reveal_form_asking_why_without_the_secret(lead_client, credential, secret):
    response = lead_client.get(reveal_url(credential))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="reason"' in body
    assert 'method="post"' in body
    assert credential.secret_hint in body
    assert_no_secret(body, secret)


def test_lead_posting_a_reason_sees_the_secret_on_a_page_that_is_not_cached(
    lead_client, credential, secret
):
    response = reveal(lead_client, credential, REASON)

    assert response.status_code == 200
    assert template_of(response) == "admin/credentials/credential/revealed.html"
    assert secret in response.content.decode()
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control
    assert "private" in cache_control
    assert "max-age" not in cache_control or "max-age=0" in cache_control
    assert response["Pragma"] == "no-cache"


def test_reveal_is_audited_with_who_which_key_and_why_and_no_secret(
    lead, lead_client, credential, secret
):
    reveal(lead_client, credential, REASON, REMOTE_ADDR="203.0.113.9")

    [event] = events(Action.KEY_REVEALED)
    assert event.actor == lead
    assert event.actor_email == "lead@demo.test"
    assert event.merchant_id == credential.merchant_id
    assert credential.secret_hint in event.target
    assert event.details["reason"] == REASON
    assert event.ip == "203.0.113.9"
    assert_no_secret(audit_text(event), secret)
    assert not events(Action.ACCESS_DENIED)


def test_the_secret_is_shown_once_a_later_visit_to_the_reveal_page_asks_again(
    lead_client, credential, secret
):
    reveal(lead_client, credential, REASON)

    response = lead_client.get(reveal_url(credential))

    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()
    assert_no_secret(response.content.decode(), secret)


def test_every_reveal_writes_its_own_audit_event(lead_client, credential):
    reveal(lead_client, credential, REASON)
    reveal(lead_client, credential, "Second look for the terminal vendor")

    assert [event.details["reason"] for event in events(Action.KEY_REVEALED)] == [
        "Second look for the terminal vendor",
        REASON,
    ]


@pytest.mark.parametrize(
    "reason",
    [
        pytest.param("", id="empty"),
        pytest.param("need it", id="seven characters"),
        pytest.param("need   it \n", id="short once whitespace is collapsed"),
    ],
)
def test_a_reason_shorter_than_ten_characters_is_refused_and_nothing_is_revealed(
    lead_client, credential, secret, reason
):
    response = reveal(lead_client, credential, reason)

    assert response.status_code == 200
    assert template_of(response) == "admin/credentials/credential/reveal.html"
    body = response.content.decode()
    assert "at least 10 characters" in body
    assert_no_secret(body, secret)
    assert not events(Action.KEY_REVEALED)


def pasted_key(pasted: str, secret: str) -> str:
    """Return what someone pasted into the reason: a key, or a ciphertext copied from the
    database (which the audit trail refuses as well)."""
    if pasted == "the stored secret":
        return secret
    if pasted == "a stored ciphertext":
        return Fernet(Fernet.generate_key()).encrypt(secret.encode()).decode()
    return fake_key("rk_live_")


PASTED = ["the stored secret", "another key", "a stored ciphertext"]


@pytest.mark.parametrize("pasted", PASTED)
def test_a_reason_containing_a_key_is_refused_and_neither_key_is_revealed_nor_audited(
    lead_client, credential, secret, pasted
):
    key = pasted_key(pasted, secret)

    response = reveal(lead_client, credential, f"Merchant mailed us {key} and asks to check it")

    assert response.status_code == 200
    body = response.content.decode()
    assert "without pasting a key" in body
    assert_no_secret(body, secret)
    assert key not in body
    assert not events(Action.KEY_REVEALED)
    for event in AuditEvent.objects.all():
        assert key not in audit_text(event)
        assert_no_secret(audit_text(event), secret)


# Step-up: a fresh code from the lead's authenticator app, not only the signed-in session

CODE_REFUSAL = "A fresh code is needed to reveal a secret."


def test_reveal_form_asks_for_a_code_from_the_authenticator_app(lead_client, credential):
    body = lead_client.get(reveal_url(credential)).content.decode()

    assert 'name="otp_token"' in body


@pytest.mark.parametrize("typed", ["missing", "wrong", "letters"])
def test_lead_without_a_valid_code_is_refused_sees_why_and_the_refusal_is_audited(
    lead, lead_client, credential, secret, typed
):
    otp_token = {"missing": "", "wrong": wrong_totp_code(totp_device(lead)), "letters": "abcdef"}

    response = lead_client.post(
        reveal_url(credential), {"reason": REASON, "otp_token": otp_token[typed]}
    )

    assert response.status_code == 200
    assert template_of(response) == "admin/credentials/credential/reveal.html"
    body = response.content.decode()
    assert CODE_REFUSAL in body
    assert REASON in body  # the reason is kept for the next try
    assert_no_secret(body, secret)
    assert not events(Action.KEY_REVEALED)
    [event] = events(Action.KEY_REVEAL_REFUSED)
    assert event.actor == lead
    assert event.merchant_id == credential.merchant_id
    assert event.details["reason"].startswith(CODE_REFUSAL)
    assert otp_token[typed] not in audit_text(event) or not otp_token[typed]


def test_a_code_is_accepted_once_a_replayed_code_reveals_nothing(lead, lead_client, credential):
    used = code(lead)
    first = lead_client.post(reveal_url(credential), {"reason": REASON, "otp_token": used})

    replayed = lead_client.post(reveal_url(credential), {"reason": REASON, "otp_token": used})

    assert template_of(first) == "admin/credentials/credential/revealed.html"
    assert template_of(replayed) == "admin/credentials/credential/reveal.html"
    assert CODE_REFUSAL in replayed.content.decode()
    assert len(events(Action.KEY_REVEALED)) == 1
    assert len(events(Action.KEY_REVEAL_REFUSED)) == 1


def test_another_staff_members_code_does_not_reveal(lead, lead_client, helpdesk_user, credential):
    others = code(helpdesk_user)

    response = lead_client.post(reveal_url(credential), {"reason": REASON, "otp_token": others})

    assert CODE_REFUSAL in response.content.decode()
    assert not events(Action.KEY_REVEALED)


def test_a_refused_reason_does_not_use_up_the_code(lead, lead_client, credential, secret):
    fresh = code(lead)
    lead_client.post(reveal_url(credential), {"reason": "short", "otp_token": fresh})

    response = lead_client.post(reveal_url(credential), {"reason": REASON, "otp_token": fresh})

    assert secret in response.content.decode()


def test_service_refuses_a_lead_without_a_device(lead, credential):
    with pytest.raises(PermissionDenied, match="authenticator app"):
        credential_reveal(credential=credential, actor=lead, reason=REASON, otp_token="123456")

    assert len(events(Action.KEY_REVEAL_REFUSED)) == 1
    assert not events(Action.KEY_REVEALED)


def test_service_refuses_a_lead_whose_code_is_wrong(lead, credential):
    device = totp_device(lead)

    with pytest.raises(PermissionDenied, match=CODE_REFUSAL):
        credential_reveal(
            credential=credential, actor=lead, reason=REASON, otp_token=wrong_totp_code(device)
        )

    assert not events(Action.KEY_REVEALED)


# Plain helpdesk staff are refused, and audited


def test_plain_helpdesk_staff_get_403_for_the_reveal_form(helpdesk_client, credential, secret):
    response = helpdesk_client.get(reveal_url(credential))

    assert response.status_code == 403
    assert_no_secret(response.content.decode(), secret)


def test_plain_helpdesk_staff_posting_a_reason_get_403_and_the_refusal_is_audited(
    helpdesk_user, helpdesk_client, credential, secret
):
    response = reveal(helpdesk_client, credential, REASON)

    assert response.status_code == 403
    assert_no_secret(response.content.decode(), secret)
    assert not events(Action.KEY_REVEALED)
    [event] = events(Action.ACCESS_DENIED)
    assert event.actor == helpdesk_user
    assert event.merchant_id == credential.merchant_id
    assert event.target == "POST admin:credentials_credential_reveal"
    assert event.details == REFUSAL
    assert_no_secret(audit_text(event), secret)


@pytest.mark.parametrize("pasted", PASTED)
def test_plain_helpdesk_staff_pasting_a_key_as_reason_get_403_and_the_audit_holds_no_key(
    helpdesk_user, helpdesk_client, credential, secret, pasted
):
    key = pasted_key(pasted, secret)

    response = helpdesk_client.post(reveal_url(credential), {"reason": f"Please check {key} now"})

    assert response.status_code == 403
    assert not events(Action.KEY_REVEALED)
    [event] = events(Action.ACCESS_DENIED)
    assert event.actor == helpdesk_user
    assert event.details == REFUSAL
    assert key not in audit_text(event)
    assert_no_secret(audit_text(event), secret)


# A platform admin (superuser) passes every permission check: allowed, and audited


def test_superuser_outside_the_lead_group_may_reveal_and_is_audited(
    superuser, client_for, credential, secret
):
    client = client_for(superuser)

    assert client.get(reveal_url(credential)).status_code == 200
    response = reveal(client, credential, REASON)

    assert response.status_code == 200
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    [event] = events(Action.KEY_REVEALED)
    assert event.actor == superuser
    assert event.details["reason"] == REASON


# Merchants never reach the admin


@pytest.mark.parametrize("method", ["get", "post"])
def test_merchant_owner_is_answered_not_found_and_nothing_is_revealed(
    owner_client, credential, secret, method
):
    url = reveal_url(credential)

    response = getattr(owner_client, method)(url, {"reason": REASON})

    assert response.status_code == 404
    assert_no_secret(response.content.decode(), secret)
    assert not events(Action.KEY_REVEALED)


def test_anonymous_visitor_is_sent_to_the_admin_login(client, credential, secret):
    response = client.post(reveal_url(credential), {"reason": REASON, "otp_token": "123456"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not events(Action.KEY_REVEALED)


# The change page offers the reveal only to whoever may use it


def test_change_page_offers_reveal_to_the_lead(lead_client, credential):
    body = lead_client.get(change_url(credential)).content.decode()

    assert "Reveal secret…" in body
    assert reveal_url(credential) in body


def test_change_page_offers_no_reveal_to_plain_helpdesk_staff(helpdesk_client, credential):
    response = helpdesk_client.get(change_url(credential))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Reveal secret" not in body
    assert reveal_url(credential) not in body


@pytest.mark.parametrize("state", [LifecycleState.SUPERSEDED, LifecycleState.REVOKED])
def test_change_page_offers_no_reveal_of_an_erased_key_even_to_the_lead(
    lead_client, merchant, state
):
    retired = CredentialFactory(merchant=merchant, secret=None, lifecycle_state=state)

    body = lead_client.get(change_url(retired)).content.decode()

    assert reveal_url(retired) not in body


# Superseded and revoked keys have no secret to reveal


@pytest.mark.parametrize("state", [LifecycleState.SUPERSEDED, LifecycleState.REVOKED])
def test_lead_cannot_reveal_an_erased_key_and_is_told_why(lead_client, merchant, state):
    retired = CredentialFactory(merchant=merchant, secret=None, lifecycle_state=state)

    form = lead_client.get(reveal_url(retired))
    response = reveal(lead_client, retired, REASON)

    for page in (form, response):
        assert page.status_code == 200
        assert "its secret was erased and cannot be revealed" in page.content.decode()
    assert template_of(response) == "admin/credentials/credential/reveal.html"
    assert "secret" not in response.context_data
    assert not events(Action.KEY_REVEALED)


def test_a_key_revoked_after_the_form_was_opened_is_not_revealed(lead, merchant, secret):
    credential = CredentialFactory(merchant=merchant, secret_value=secret)
    credential.lifecycle_state = LifecycleState.REVOKED
    credential.secret = None
    credential.save(update_fields=["lifecycle_state", "secret"])
    credential.lifecycle_state = LifecycleState.ACTIVE  # the stale copy the form was built from

    with pytest.raises(ValidationError, match="no longer active"):
        credential_reveal(credential=credential, actor=lead, reason=REASON, otp_token=code(lead))

    assert not events(Action.KEY_REVEALED)


def test_unknown_key_is_404(lead_client):
    url = reverse("admin:credentials_credential_reveal", args=[987654])

    assert lead_client.get(url).status_code == 404


# The service: the same rules without the admin in front


def test_service_returns_the_secret_to_the_lead_and_audits_it(lead, credential, secret):
    assert credential_reveal(
        credential=credential, actor=lead, reason=REASON, otp_token=code(lead)
    ) == [("Secret key", secret)]

    [event] = events(Action.KEY_REVEALED)
    assert event.actor == lead
    assert_no_secret(audit_text(event), secret)


def test_service_refuses_a_merchant_owner_and_audits_the_refusal(owner, credential, secret):
    with pytest.raises(PermissionDenied):
        credential_reveal(credential=credential, actor=owner, reason=REASON, otp_token="")

    [event] = events(Action.ACCESS_DENIED)
    assert event.actor == owner
    assert event.merchant_id == credential.merchant_id
    assert event.target == "credential_reveal"
    assert event.details == REFUSAL
    assert_no_secret(audit_text(event), secret)
    assert not events(Action.KEY_REVEALED)


def test_service_refuses_a_non_staff_user_even_holding_the_permission(lead, credential):
    lead.is_staff = False
    lead.save(update_fields=["is_staff"])

    with pytest.raises(PermissionDenied):
        credential_reveal(credential=credential, actor=lead, reason=REASON, otp_token=code(lead))

    assert len(events(Action.ACCESS_DENIED)) == 1
    assert not events(Action.KEY_REVEALED)


def test_service_refuses_an_inactive_lead(lead, credential):
    lead.is_active = False
    lead.save(update_fields=["is_active"])

    with pytest.raises(PermissionDenied):
        credential_reveal(credential=credential, actor=lead, reason=REASON, otp_token=code(lead))

    assert len(events(Action.ACCESS_DENIED)) == 1
    assert not events(Action.KEY_REVEALED)


def test_service_refuses_staff_without_the_permission_and_audits_the_refusal(
    helpdesk_user, credential, secret
):
    with pytest.raises(PermissionDenied):
        credential_reveal(credential=credential, actor=helpdesk_user, reason=REASON, otp_token="")

    [event] = events(Action.ACCESS_DENIED)
    assert event.actor == helpdesk_user
    assert event.details == REFUSAL
    assert not events(Action.KEY_REVEALED)


def test_service_refuses_a_short_reason_from_the_lead_without_auditing_a_reveal(lead, credential):
    with pytest.raises(ValidationError, match="at least 10 characters"):
        credential_reveal(credential=credential, actor=lead, reason="because", otp_token="")

    assert not events(Action.KEY_REVEALED)


# Only the page answering the reveal carries the secret


ADMIN_PAGES = {
    "credential changelist": lambda c: reverse("admin:credentials_credential_changelist"),
    "credential search": lambda c: (
        reverse("admin:credentials_credential_changelist") + f"?q={c.merchant.slug}"
    ),
    "credential change": change_url,
    "credential history": lambda c: reverse("admin:credentials_credential_history", args=[c.pk]),
    "revoke page": lambda c: reverse("admin:credentials_credential_revoke", args=[c.pk]),
    "reveal form": reveal_url,
    "audit trail": lambda c: reverse("admin:audit_auditevent_changelist"),
    "revealed event": lambda c: reverse(
        "admin:audit_auditevent_change",
        args=[AuditEvent.objects.get(action=Action.KEY_REVEALED).pk],
    ),
}


@pytest.mark.parametrize("page", ADMIN_PAGES)
@pytest.mark.parametrize("viewer", ["lead", "helpdesk_user", "superuser"])
def test_no_admin_page_but_the_reveal_answer_carries_the_secret_even_after_a_reveal(
    request, client_for, lead_client, credential, secret, viewer, page
):
    reveal(lead_client, credential, REASON)
    client = client_for(request.getfixturevalue(viewer))

    response = client.get(ADMIN_PAGES[page](credential))

    refused = viewer == "helpdesk_user" and page == "reveal form"
    assert response.status_code == (403 if refused else 200)
    assert_no_secret(response.content.decode(), secret)
