"""Reporting a key compromised, from the portal and from the helpdesk admin.

One confirmed POST revokes the key at once: its secret is erased, reminders stop, the
helpdesk gets an urgent mail and the merchant is told to roll the key in the Stripe
dashboard and submit the new one. Each allowed case sits next to its denied ones, and a
revoked key is never sent to Stripe again.
"""

import html
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config import celery_app
from credentials.models import Credential, LifecycleState, Mode, VerificationState
from credentials.providers import stripe as stripe_provider
from credentials.services.helpdesk import followups_send_due
from credentials.services.lifecycle import (
    REVOKE_WHAT_TO_DO,
)
from credentials.services.notifications import HELPDESK_REMINDER
from credentials.services.rechecks import (
    credential_reverify,
    reverifications_queue_due,
)
from credentials.services.verification import VerifyResult, credential_verify
from mail.models import OutgoingEmail
from mail.services import emails_send_due
from tests.factories import CredentialFactory, UserFactory, fake_key
from tests.helpers import (
    history_rows,
    merchant_url,
    mode_card,
    page_text,
    raw_secret_column,
    reload,
)

STRIPE_ROLL_WHERE = "the Stripe dashboard (Developers → API keys → ⋯ → Roll key)"

HELPDESK_MAIL = "helpdesk_key_revoked"
MERCHANT_MAIL = "merchant_key_revoked"
REASON = "A contractor's laptop with our .env file was stolen."


@pytest.fixture
def merchant(merchant):
    merchant.contact_email = "accounts@democoffee.test"
    merchant.save(update_fields=["contact_email"])
    return merchant


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def key(merchant, owner, secret, now):
    """A verified test key, unacknowledged, whose follow-up reminder is queued and unsent."""
    credential = CredentialFactory(
        merchant=merchant,
        mode=Mode.TEST,
        secret_value=secret,
        submitted_by=owner,
        submitted_at=now - timedelta(days=2),
        verification_state=VerificationState.VERIFIED,
        checked_at=now - timedelta(days=2),
        account_id="acct_1DemoCoffee",
        followup_due_at=now - timedelta(minutes=1),
        next_reverify_at=now + timedelta(hours=20),
    )
    assert followups_send_due(now=now) == 1
    assert OutgoingEmail.objects.get(kind=HELPDESK_REMINDER).state == OutgoingEmail.State.PENDING
    return reload(credential)


@pytest.fixture
def live_key(merchant, owner):
    return CredentialFactory(
        merchant=merchant,
        mode=Mode.LIVE,
        submitted_by=owner,
        verification_state=VerificationState.VERIFIED,
    )


@pytest.fixture
def viewer(db):
    """A staff member who may look at the helpdesk queue but not change it."""
    user = UserFactory(email="auditor@demo.test", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="credentials", codename="view_credential")
    )
    return user


def revoke_url(credential, merchant=None) -> str:
    merchant = merchant or credential.merchant
    return reverse("credentials:revoke", kwargs={"slug": merchant.slug, "pk": credential.pk})


def admin_revoke_url(credential) -> str:
    return reverse("admin:credentials_credential_revoke", args=[credential.pk])


def admin_change_url(credential) -> str:
    return reverse("admin:credentials_credential_change", args=[credential.pk])


def lifecycle_mails() -> list[OutgoingEmail]:
    return list(OutgoingEmail.objects.filter(kind__in=[HELPDESK_MAIL, MERCHANT_MAIL]))


def assert_unchanged(credential: Credential, secret: str) -> None:
    """Assert the key is still active with its secret, and nothing was revoked or sent."""
    credential = reload(credential)
    assert credential.lifecycle_state == LifecycleState.ACTIVE
    assert credential.secret == secret
    assert credential.revoked_by is None
    assert credential.revoked_reason == ""
    assert credential.followup_due_at is not None
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REVOKED).exists()
    assert lifecycle_mails() == []
    assert OutgoingEmail.objects.get(kind=HELPDESK_REMINDER).state == OutgoingEmail.State.PENDING


def assert_revoked(credential: Credential, *, by, reason: str, before) -> Credential:
    """Assert the key was revoked at once by `by`, its secret erased and its clocks stopped."""
    credential = reload(credential)
    assert credential.lifecycle_state == LifecycleState.REVOKED
    assert raw_secret_column(credential) is None
    assert credential.secret is None
    assert credential.revoked_by == by
    assert credential.revoked_reason == reason
    assert before <= credential.lifecycle_changed_at <= timezone.now()
    assert credential.followup_due_at is None
    assert credential.next_reverify_at is None
    # The history keeps what it needs.
    assert credential.secret_hint.startswith("sk_test_…")
    assert credential.fingerprint
    assert credential.verification_state == VerificationState.VERIFIED
    return credential


# From the portal: the allowed cases


@pytest.mark.parametrize("role", ["owner", "administrator"])
def test_member_who_may_revoke_gets_a_confirmation_page_that_changes_nothing(
    merchant, key, secret, member_factory, client_for, role
):
    member = member_factory(merchant, role)

    response = client_for(member).get(revoke_url(key))

    assert response.status_code == 200
    body = page_text(response)
    assert f"Report {key.secret_hint} compromised?" in body
    assert "Revoke this key now" in body
    assert "roll the key in the Stripe dashboard" in body
    assert secret not in body
    assert_unchanged(key, secret)


@pytest.mark.parametrize("role", ["owner", "administrator"])
def test_member_who_may_revoke_revokes_the_key_at_once_with_one_post(
    merchant, key, member_factory, client_for, role
):
    member = member_factory(merchant, role)
    before = timezone.now()

    response = client_for(member).post(revoke_url(key), {"reason": REASON})

    assert response.status_code == 302
    assert response.url == merchant_url("credentials:merchant", merchant)
    assert_revoked(key, by=member, reason=REASON, before=before)


def test_revoking_cancels_the_pending_reminder_and_no_more_follow_ups_come(owner_client, key, now):
    owner_client.post(revoke_url(key), {"reason": REASON})

    reminder = OutgoingEmail.objects.get(kind=HELPDESK_REMINDER)
    assert reminder.state == OutgoingEmail.State.CANCELLED
    assert followups_send_due(now=now + timedelta(days=30)) == 0
    assert OutgoingEmail.objects.filter(kind=HELPDESK_REMINDER).count() == 1
    emails_send_due()
    assert not [m for m in mail.outbox if "reminder" in m.subject.lower()]


def test_revocation_is_audited_with_who_and_why_but_no_secret(owner_client, owner, key, secret):
    owner_client.post(revoke_url(key), {"reason": REASON})

    event = AuditEvent.objects.get(action=AuditEvent.Action.KEY_REVOKED)
    assert event.actor == owner
    assert event.merchant == key.merchant
    assert event.target == f"test key {key.secret_hint}"
    assert event.details == {"reason": REASON, "by": "merchant"}
    assert event.ip == "127.0.0.1"
    body = secret.split("_", 2)[2]
    assert body[:-4] not in f"{event.target} {event.details}"


def test_helpdesk_gets_an_urgent_mail_with_high_priority_headers(
    owner_client, owner, merchant, key, secret
):
    owner_client.post(revoke_url(key), {"reason": REASON})

    queued = OutgoingEmail.objects.get(kind=HELPDESK_MAIL)
    assert queued.urgent is True
    assert queued.to == [django_settings.HELPDESK_EMAIL]
    emails_send_due()
    [sent] = [m for m in mail.outbox if m.to == [django_settings.HELPDESK_EMAIL]]
    assert sent.subject.startswith("[URGENT]")
    assert sent.subject == (
        f"[URGENT] {merchant.name}: test key {key.secret_hint} reported compromised and revoked"
    )
    assert sent.extra_headers["X-Priority"] == "1"
    assert sent.extra_headers["Importance"] == "high"
    message = sent.message()
    assert message["X-Priority"] == "1"
    assert message["Importance"] == "high"
    [(html_body, _)] = sent.alternatives
    admin_url = django_settings.SITE_URL + admin_change_url(key)
    for body in (sent.body, html.unescape(html_body)):
        assert merchant.name in body
        assert key.secret_hint in body
        assert REASON in body
        assert owner.email in body
        assert "acct_1DemoCoffee" in body
        assert admin_url in body
        assert secret not in body


def test_helpdesk_is_alerted_before_the_merchant_is_told(owner_client, key):
    owner_client.post(revoke_url(key), {"reason": REASON})

    emails_send_due()

    assert [sent.to == [django_settings.HELPDESK_EMAIL] for sent in mail.outbox] == [True, False]
    assert mail.outbox[0].subject.startswith("[URGENT]")


def test_merchant_is_told_to_roll_the_key_in_stripe_and_submit_the_new_one(
    owner_client, owner, merchant, key, secret
):
    owner_client.post(revoke_url(key), {"reason": REASON})

    emails_send_due()
    [sent] = [m for m in mail.outbox if django_settings.HELPDESK_EMAIL not in m.to]
    assert sorted(sent.to) == sorted([owner.email, merchant.contact_email])
    assert sent.subject == (
        f"Your Stripe test key {key.secret_hint} was revoked: roll it in Stripe now"
    )
    submit_url = django_settings.SITE_URL + reverse(
        "credentials:submit", kwargs={"slug": merchant.slug}
    )
    assert REVOKE_WHAT_TO_DO.format(roll_where=STRIPE_ROLL_WHERE) in sent.body
    assert "Roll the key in the Stripe dashboard" in sent.body
    assert f"Submit the new key: {submit_url}" in sent.body
    assert "has no active test key" in sent.body
    [(html_body, _)] = sent.alternatives
    assert f'href="{submit_url}"' in html_body
    assert "X-Priority" not in sent.extra_headers
    for part in (sent.subject, sent.body, html_body):
        assert secret not in part


def test_merchant_page_then_shows_the_mode_has_no_active_key_and_the_key_revoked(
    owner_client, merchant, key, live_key
):
    response = owner_client.post(revoke_url(key), {"reason": REASON}, follow=True)

    assert response.status_code == 200
    assert f"The key {key.secret_hint} is revoked and erased" in page_text(response)
    body = response.content.decode()
    test_card = mode_card(body, "test")
    assert "No active test key" in test_card
    assert f"{key.secret_hint}</code> was revoked on" in test_card
    assert (
        "Roll it in the Stripe dashboard (Developers → API keys) and submit the new key."
        in test_card
    )
    assert reverse("credentials:submit", kwargs={"slug": merchant.slug}) in test_card
    assert "Report compromised" not in test_card
    # The live key is untouched.
    assert live_key.secret_hint in mode_card(body, "live")
    assert reload(live_key).lifecycle_state == LifecycleState.ACTIVE
    [row] = [row for row in history_rows(body) if row.startswith(key.secret_hint)]
    assert "Revoked" in row


def test_merchant_page_offers_report_compromised_only_to_who_may_revoke(
    merchant, key, member_factory, client_for
):
    owner_page = client_for(member_factory(merchant, "owner")).get(
        merchant_url("credentials:merchant", merchant)
    )
    developer_page = client_for(member_factory(merchant, "developer")).get(
        merchant_url("credentials:merchant", merchant)
    )

    assert revoke_url(key) in owner_page.content.decode()
    assert "Report compromised" in owner_page.content.decode()
    assert revoke_url(key) not in developer_page.content.decode()
    assert "Report compromised" not in developer_page.content.decode()


def test_key_in_use_can_be_reported_compromised_while_its_replacement_is_pending(
    merchant, key, owner, member_factory, client_for
):
    # A leaked key is often rolled in a hurry: the replacement may still be waiting for
    # Stripe (so it is the mode's current key) when the old one must be revoked.
    replacement = CredentialFactory(merchant=merchant, mode=Mode.TEST, submitted_by=owner)
    owner_page = (
        client_for(owner).get(merchant_url("credentials:merchant", merchant)).content.decode()
    )
    developer = member_factory(merchant, "developer")
    developer_page = (
        client_for(developer).get(merchant_url("credentials:merchant", merchant)).content.decode()
    )

    assert replacement.secret_hint in mode_card(owner_page, "test")
    assert revoke_url(key) in owner_page
    assert revoke_url(replacement) in owner_page
    assert revoke_url(key) not in developer_page
    assert "Report compromised" not in developer_page


def test_history_offers_no_report_for_keys_no_longer_active(owner_client, merchant, owner):
    retired = CredentialFactory(
        merchant=merchant, submitted_by=owner, secret=None, lifecycle_state=LifecycleState.REVOKED
    )

    body = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    assert retired.secret_hint in body
    assert revoke_url(retired) not in body


# From the portal: the denied cases


@pytest.mark.parametrize("role", ["developer", "support", "view-only"])
def test_member_without_revoke_permission_gets_403_and_nothing_changes(
    merchant, key, secret, member_factory, client_for, role
):
    client = client_for(member_factory(merchant, role))

    assert client.get(revoke_url(key)).status_code == 403
    assert client.post(revoke_url(key), {"reason": REASON}).status_code == 403

    assert_unchanged(key, secret)
    denials = AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED)
    assert denials.count() == 2


def test_owner_of_another_merchant_gets_404_and_nothing_changes(
    key, secret, other_merchant, other_owner, client_for
):
    client = client_for(other_owner)

    # Through the key's own merchant, which is not theirs, and through their own merchant.
    for url in (revoke_url(key), revoke_url(key, merchant=other_merchant)):
        assert client.get(url).status_code == 404
        assert client.post(url, {"reason": REASON}).status_code == 404

    assert_unchanged(key, secret)


def test_anonymous_visitor_is_sent_to_log_in_and_nothing_changes(client, key, secret):
    response = client.post(revoke_url(key), {"reason": REASON})

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert_unchanged(key, secret)


@pytest.mark.parametrize("prefix", ["sk_live_", "sk_test_", "rk_live_"])
def test_reason_containing_a_key_is_refused_with_a_message_and_nothing_changes(
    owner_client, key, secret, prefix
):
    pasted = fake_key(prefix)

    response = owner_client.post(revoke_url(key), {"reason": f"It leaked: {pasted} oops"})

    assert response.status_code == 200
    body = page_text(response)
    assert "Describe what happened without pasting the key itself." in body
    assert pasted not in body
    assert pasted.split("_", 2)[2][:-4] not in body
    assert_unchanged(key, secret)


def test_reason_containing_an_encrypted_value_is_refused_with_a_message_not_an_error(
    owner_client, key, secret
):
    token = raw_secret_column(key)

    response = owner_client.post(revoke_url(key), {"reason": f"found this in a dump: {token}"})

    assert response.status_code == 200
    assert "Describe what happened without pasting the key itself." in page_text(response)
    assert token not in page_text(response)
    assert_unchanged(key, secret)


def test_reason_containing_the_revoked_key_itself_is_refused(owner_client, key, secret):
    response = owner_client.post(revoke_url(key), {"reason": f"this one: {secret}"})

    assert response.status_code == 200
    assert secret not in page_text(response)
    assert_unchanged(key, secret)


@pytest.mark.parametrize(
    "retired",
    [
        {"lifecycle_state": LifecycleState.REVOKED},
        {"lifecycle_state": LifecycleState.SUPERSEDED},
    ],
    ids=["revoked", "superseded"],
)
def test_revoking_a_key_no_longer_active_shows_a_message_and_changes_nothing(
    owner_client, merchant, owner, retired
):
    earlier = timezone.now() - timedelta(days=1)
    credential = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        secret=None,
        lifecycle_changed_at=earlier,
        **retired,
    )

    page = owner_client.get(revoke_url(credential))
    response = owner_client.post(revoke_url(credential), {"reason": REASON})

    assert page.status_code == 200
    assert "This key is no longer active" in page_text(page)
    assert "Revoke this key now" not in page_text(page)
    assert response.status_code == 200
    assert "This key is no longer active" in page_text(response)
    credential = reload(credential)
    assert credential.lifecycle_state == retired["lifecycle_state"]
    assert credential.lifecycle_changed_at == earlier
    assert credential.revoked_reason == ""
    assert credential.revoked_by is None
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REVOKED).exists()
    assert lifecycle_mails() == []


def test_posting_twice_revokes_once_and_mails_once(owner_client, owner, key):
    first = owner_client.post(revoke_url(key), {"reason": REASON})
    second = owner_client.post(revoke_url(key), {"reason": "again"})

    assert first.status_code == 302
    assert second.status_code == 200
    assert reload(key).revoked_reason == REASON
    assert AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REVOKED).count() == 1
    assert sorted(email.kind for email in lifecycle_mails()) == [HELPDESK_MAIL, MERCHANT_MAIL]


# From the admin


def test_helpdesk_gets_a_confirmation_page_in_the_admin_that_changes_nothing(
    helpdesk_user, client_for, key, secret
):
    response = client_for(helpdesk_user).get(admin_revoke_url(key))

    assert response.status_code == 200
    body = page_text(response)
    assert f"Report {key.secret_hint} (Demo Coffee Co) compromised?" in body
    assert 'value="Revoke this key now"' in response.content.decode()
    assert secret not in body
    assert_unchanged(key, secret)


def test_admin_change_page_offers_report_compromised_for_an_active_key(
    helpdesk_user, client_for, key
):
    body = client_for(helpdesk_user).get(admin_change_url(key)).content.decode()

    assert admin_revoke_url(key) in body
    assert "Report compromised" in body


def test_helpdesk_revokes_in_the_admin_with_the_same_effects(
    helpdesk_user, client_for, owner, merchant, key, secret, now
):
    client = client_for(helpdesk_user)
    before = timezone.now()

    response = client.post(admin_revoke_url(key), {"reason": REASON})

    assert response.status_code == 302
    assert response.url == admin_change_url(key)
    assert_revoked(key, by=helpdesk_user, reason=REASON, before=before)
    assert OutgoingEmail.objects.get(kind=HELPDESK_REMINDER).state == OutgoingEmail.State.CANCELLED
    assert followups_send_due(now=now + timedelta(days=30)) == 0
    event = AuditEvent.objects.get(action=AuditEvent.Action.KEY_REVOKED)
    assert event.actor == helpdesk_user
    assert event.details == {"reason": REASON, "by": "helpdesk"}
    emails_send_due()
    [urgent] = [m for m in mail.outbox if m.to == [django_settings.HELPDESK_EMAIL]]
    assert urgent.subject.startswith("[URGENT]")
    assert urgent.extra_headers["X-Priority"] == "1"
    assert urgent.extra_headers["Importance"] == "high"
    assert "helpdesk@demo.test" in urgent.body
    [told] = [m for m in mail.outbox if m.to != [django_settings.HELPDESK_EMAIL]]
    # The merchant is told; the agent who revoked it is not a recipient of the merchant's mail.
    assert sorted(told.to) == sorted([owner.email, merchant.contact_email])
    assert REVOKE_WHAT_TO_DO.format(roll_where=STRIPE_ROLL_WHERE) in told.body
    for sent in mail.outbox:
        assert secret not in sent.body


def test_platform_admin_revoking_in_the_admin_acts_as_the_helpdesk(
    client_for, owner, merchant, key
):
    # A superuser passes every merchant's permission check too, but is not one of its team.
    superuser = UserFactory(email="platform-admin@demo.test", is_staff=True, is_superuser=True)

    response = client_for(superuser).post(admin_revoke_url(key), {"reason": REASON})

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=AuditEvent.Action.KEY_REVOKED)
    assert event.details == {"reason": REASON, "by": "helpdesk"}
    emails_send_due()
    [told] = [m for m in mail.outbox if m.to != [django_settings.HELPDESK_EMAIL]]
    assert sorted(told.to) == sorted([owner.email, merchant.contact_email])


def test_admin_change_page_after_revocation_shows_who_revoked_it_and_why(
    helpdesk_user, client_for, key
):
    client = client_for(helpdesk_user)
    client.post(admin_revoke_url(key), {"reason": REASON})

    response = client.get(admin_change_url(key))

    body = page_text(response)
    assert response.status_code == 200
    assert "Revoked" in body
    assert "helpdesk@demo.test" in body
    assert REASON in body
    assert admin_revoke_url(key) not in body
    assert "revoked and erased" in body  # the message after the redirect


def test_helpdesk_reason_containing_a_key_is_refused_in_the_admin(
    helpdesk_user, client_for, key, secret
):
    pasted = fake_key("sk_live_")

    response = client_for(helpdesk_user).post(admin_revoke_url(key), {"reason": pasted})

    assert response.status_code == 200
    assert "Describe what happened without pasting the key itself." in page_text(response)
    assert pasted not in page_text(response)
    assert_unchanged(key, secret)


def test_admin_revoke_of_a_key_no_longer_active_shows_a_message(
    helpdesk_user, client_for, merchant, owner
):
    credential = CredentialFactory(
        merchant=merchant, submitted_by=owner, secret=None, lifecycle_state=LifecycleState.REVOKED
    )
    client = client_for(helpdesk_user)

    page = client.get(admin_revoke_url(credential))
    response = client.post(admin_revoke_url(credential), {"reason": REASON})

    assert page.status_code == 200
    assert "This key is no longer active (revoked)" in page_text(page)
    assert response.status_code == 200
    assert "no longer active" in page_text(response)
    assert reload(credential).revoked_by is None
    assert lifecycle_mails() == []


def test_staff_who_may_only_view_keys_gets_403_in_the_admin_and_nothing_changes(
    viewer, client_for, key, secret
):
    client = client_for(viewer)

    assert client.get(admin_change_url(key)).status_code == 200
    assert admin_revoke_url(key) not in client.get(admin_change_url(key)).content.decode()
    assert client.get(admin_revoke_url(key)).status_code == 403
    assert client.post(admin_revoke_url(key), {"reason": REASON}).status_code == 403

    assert_unchanged(key, secret)


def test_merchant_owner_without_staff_status_cannot_use_the_admin_revoke(owner_client, key, secret):
    response = owner_client.post(admin_revoke_url(key), {"reason": REASON})

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert_unchanged(key, secret)


def test_admin_revoke_of_an_unknown_key_is_404(helpdesk_user, client_for, db):
    response = client_for(helpdesk_user).get(
        reverse("admin:credentials_credential_revoke", args=[987654])
    )

    assert response.status_code == 404


# Never checked with Stripe again


def test_key_revoked_while_pending_is_never_verified(owner_client, merchant, owner, fake_stripe):
    secret = fake_key("sk_test_")
    pending = CredentialFactory(merchant=merchant, submitted_by=owner, secret_value=secret)
    owner_client.post(revoke_url(pending), {"reason": REASON})

    result = credential_verify(credential_id=pending.pk)

    assert result == VerifyResult(state="skipped")
    assert fake_stripe.requests_for(secret) == []
    # Not left "waiting to be verified" for ever: nothing will verify it now.
    assert reload(pending).verification_state == VerificationState.NOT_VERIFIED
    assert not OutgoingEmail.objects.filter(kind="merchant_verification_result").exists()


def test_revoked_key_is_never_re_verified(owner_client, key, secret, fake_stripe, monkeypatch):
    owner_client.post(revoke_url(key), {"reason": REASON})
    sent = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, **options: sent.append(name))
    later = timezone.now() + timedelta(days=30)
    # Even with a re-check date forced into the past.
    Credential.objects.filter(pk=key.pk).update(next_reverify_at=timezone.now() - timedelta(1))

    assert reverifications_queue_due(now=later) == 0
    assert credential_reverify(credential_id=key.pk, now=later) == "not_due"

    assert sent == []
    assert fake_stripe.requests_for(secret) == []
    assert reload(key).verification_state == VerificationState.VERIFIED
    assert not OutgoingEmail.objects.filter(kind__contains="no_longer_valid").exists()


def test_key_revoked_while_stripe_is_asked_about_it_ends_not_verified_and_nothing_is_mailed(
    owner_client, merchant, owner, fake_stripe, monkeypatch
):
    secret = fake_key("sk_test_")
    pending = CredentialFactory(merchant=merchant, submitted_by=owner, secret_value=secret)
    ask = stripe_provider.stripe_account_facts

    def ask_while_it_is_revoked(value):
        assert owner_client.post(revoke_url(pending), {"reason": REASON}).status_code == 302
        return ask(value)

    monkeypatch.setattr(stripe_provider, "stripe_account_facts", ask_while_it_is_revoked)

    result = credential_verify(credential_id=pending.pk)

    assert result == VerifyResult(state="skipped")
    revoked = reload(pending)
    assert revoked.lifecycle_state == LifecycleState.REVOKED
    # Settled by the revocation: never left "being verified", and no claim left to go stale.
    assert revoked.verification_state == VerificationState.NOT_VERIFIED
    assert revoked.verification_claimed_at is None
    assert revoked.verification_next_attempt_at is None
    assert not OutgoingEmail.objects.filter(kind="merchant_verification_result").exists()
    row = history_rows(owner_client.get(merchant.get_absolute_url()).content.decode())[0]
    assert "Not verified Revoked" in row
    assert "Being verified" not in row


def test_revoking_a_verified_key_keeps_what_stripe_said(owner_client, key):
    owner_client.post(revoke_url(key), {"reason": REASON})

    revoked = reload(key)
    assert revoked.verification_state == VerificationState.VERIFIED
    assert revoked.account_id == "acct_1DemoCoffee"
