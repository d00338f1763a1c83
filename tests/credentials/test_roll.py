"""Rolling a key: a newer key for the same merchant, provider and mode replaces the current one.

Keys are submitted through the portal and verified by credential_verify with the real SDK
against the fake Stripe. The current key stays active until its replacement is verified;
then it is superseded and its secret erased, while its hint, fingerprint and history stay.
A rejected replacement leaves the current key in use, and the merchant is told so.
"""

import html
import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from credentials.fingerprints import secret_fingerprint
from credentials.models import Credential, LifecycleState, Mode, VerificationState
from credentials.providers import stripe as stripe_provider
from credentials.providers.stripe import REASONS as STRIPE_REASONS
from credentials.services.checking import REASONS as SHARED_REASONS
from credentials.services.notifications import credential_topic
from credentials.services.verification import VerifyOutcome, credential_verify
from mail.models import OutgoingEmail
from tests.factories import fake_key
from tests.helpers import history_rows, mode_card, raw_secret_column, reload

# Our own sentences: those every provider shares, and Stripe's.
REASONS = {**SHARED_REASONS, **STRIPE_REASONS}

MERCHANT_MAIL = "merchant_verification_result"


def submit(client, merchant, secret: str, *, publishable: str = ""):
    """Post `secret` (with a publishable key of its mode) through the portal's submit form."""
    mode = "live" if "_live_" in secret else "test"
    return client.post(
        reverse("credentials:submit", kwargs={"slug": merchant.slug}),
        {
            "publishable_key": publishable or fake_key(f"pk_{mode}_"),
            "secret_key": secret,
            "requested_integrations": ["online_payments"],
            "note": "",
        },
    )


def stored(merchant, secret: str) -> Credential:
    """Return the active credential of `merchant` holding `secret`."""
    return Credential.objects.active().get(
        merchant=merchant, fingerprint=secret_fingerprint(secret)
    )


@pytest.fixture
def submit_verified(owner_client, merchant, fake_stripe):
    """Return a function submitting `secret` through the portal and verifying it."""

    def make(secret: str) -> Credential:
        assert submit(owner_client, merchant, secret).status_code == 302
        credential = stored(merchant, secret)
        assert credential_verify(credential_id=credential.pk).state == VerificationState.VERIFIED
        return reload(credential)

    return make


def card_text(card: str) -> str:
    """Return a mode card's HTML as a reader sees it."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", card)).split())


def merchant_mail(credential: Credential) -> OutgoingEmail:
    return OutgoingEmail.objects.get(topic=credential_topic(credential.pk), kind=MERCHANT_MAIL)


# Roll with the new key verified


def test_current_key_stays_active_and_verified_while_its_replacement_is_pending(
    owner_client, merchant, submit_verified
):
    old_secret, new_secret = fake_key("sk_test_"), fake_key("sk_test_")
    old = submit_verified(old_secret)

    response = submit(owner_client, merchant, new_secret)

    assert response.status_code == 302
    new = stored(merchant, new_secret)
    assert new.verification_state == VerificationState.PENDING
    old = reload(old)
    assert old.lifecycle_state == LifecycleState.ACTIVE
    assert old.verification_state == VerificationState.VERIFIED
    assert old.secret == old_secret
    assert old.replaced_by is None


def test_current_key_stays_active_while_its_replacement_is_being_verified(
    owner_client, merchant, submit_verified, monkeypatch
):
    old = submit_verified(fake_key("sk_test_"))
    new_secret = fake_key("sk_test_")
    submit(owner_client, merchant, new_secret)
    new = stored(merchant, new_secret)
    seen_while_verifying = []
    ask_stripe = stripe_provider.stripe_account_facts

    def ask_and_look(secret):
        seen_while_verifying.append(
            (
                reload(new).verification_state,
                reload(old).lifecycle_state,
                raw_secret_column(old) is not None,
            )
        )
        return ask_stripe(secret)

    monkeypatch.setattr(stripe_provider, "stripe_account_facts", ask_and_look)

    credential_verify(credential_id=new.pk)

    assert seen_while_verifying == [(VerificationState.VERIFYING, LifecycleState.ACTIVE, True)]


def test_verified_replacement_supersedes_the_old_key_and_erases_its_secret(
    owner_client, merchant, submit_verified
):
    old_secret, new_secret = fake_key("sk_test_"), fake_key("sk_test_")
    old = submit_verified(old_secret)
    hint, fingerprint, account = old.secret_hint, old.fingerprint, old.account_id
    submit(owner_client, merchant, new_secret)
    new = stored(merchant, new_secret)

    result = credential_verify(credential_id=new.pk)

    assert result.state == VerificationState.VERIFIED
    old, new = reload(old), reload(new)
    assert old.lifecycle_state == LifecycleState.SUPERSEDED
    assert old.lifecycle_changed_at is not None
    assert old.replaced_by == new
    assert raw_secret_column(old) is None
    assert old.secret is None
    # What the history needs stays.
    assert old.secret_hint == hint == f"sk_test_…{old_secret[-4:]}"
    assert old.fingerprint == fingerprint == secret_fingerprint(old_secret)
    assert old.verification_state == VerificationState.VERIFIED
    assert old.account_id == account
    assert old.submitted_by.email == "owner@demo.test"
    # Nothing more is scheduled for a retired key.
    assert old.followup_due_at is None
    assert old.next_reverify_at is None
    assert new.lifecycle_state == LifecycleState.ACTIVE
    assert new.secret == new_secret
    assert raw_secret_column(new) not in (None, new_secret)


def test_supersession_is_audited_by_hint_without_the_secret(
    owner_client, merchant, submit_verified
):
    old_secret, new_secret = fake_key("sk_test_"), fake_key("sk_test_")
    old = submit_verified(old_secret)
    submit(owner_client, merchant, new_secret)
    new = stored(merchant, new_secret)

    credential_verify(credential_id=new.pk)

    event = AuditEvent.objects.get(action=AuditEvent.Action.KEY_SUPERSEDED)
    assert event.merchant == merchant
    assert event.target == f"test key {old.secret_hint}"
    assert event.details == {"replaced_by": new.secret_hint}
    for secret in (old_secret, new_secret):
        assert secret not in f"{event.target} {event.details}"


def test_merchant_mail_for_the_replacement_says_which_key_it_replaces(
    owner_client, merchant, submit_verified
):
    old = submit_verified(fake_key("sk_test_"))
    new_secret = fake_key("sk_test_")
    submit(owner_client, merchant, new_secret)
    new = stored(merchant, new_secret)

    credential_verify(credential_id=new.pk)

    email = merchant_mail(new)
    assert email.to == ["owner@demo.test"]
    assert email.subject == f"Your Stripe test key {new.secret_hint} is verified"
    replaces = f"It replaces the key {old.secret_hint}, which is now retired and erased"
    assert replaces in email.body_text
    assert f"It replaces the key <code>{old.secret_hint}</code>" in html.unescape(email.body_html)
    # The first key's own mail said nothing about replacing anything.
    assert "replaces" not in merchant_mail(old).body_text


def test_merchant_page_shows_the_replacement_as_current_and_both_in_history_newest_first(
    owner_client, merchant, submit_verified
):
    old = submit_verified(fake_key("sk_test_"))
    new = submit_verified(fake_key("sk_test_"))

    response = owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug}))

    assert response.status_code == 200
    body = response.content.decode()
    test_card = mode_card(body, "test")
    assert new.secret_hint in test_card
    assert "Verified" in test_card
    assert old.secret_hint not in test_card
    rows = history_rows(body)
    assert len(rows) == 2
    assert rows[0].startswith(new.secret_hint)
    assert "Active" in rows[0]
    assert rows[1].startswith(old.secret_hint)
    assert f"Replaced by a newer key by {new.secret_hint}" in rows[1]
    assert "owner@demo.test" in rows[1]


def test_rolling_twice_keeps_the_whole_history_each_pointing_to_its_replacement(
    owner_client, merchant, submit_verified
):
    first = submit_verified(fake_key("sk_test_"))
    second = submit_verified(fake_key("sk_test_"))
    third = submit_verified(fake_key("sk_test_"))

    assert reload(first).replaced_by == second
    assert reload(second).replaced_by == third
    assert list(Credential.objects.active().filter(merchant=merchant)) == [third]
    body = owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug}))
    rows = history_rows(body.content.decode())
    assert [row.split()[0] for row in rows] == [
        third.secret_hint,
        second.secret_hint,
        first.secret_hint,
    ]


# Roll with the new key rejected


def test_rejected_replacement_leaves_the_old_key_active_verified_and_its_secret_kept(
    owner_client, merchant, submit_verified, fake_stripe
):
    old_secret, new_secret = fake_key("sk_test_"), fake_key("sk_test_")
    old = submit_verified(old_secret)
    submit(owner_client, merchant, new_secret)
    new = stored(merchant, new_secret)
    fake_stripe.reject(new_secret)

    result = credential_verify(credential_id=new.pk)

    assert result.state == VerificationState.REJECTED
    new, old = reload(new), reload(old)
    assert new.verification_state == VerificationState.REJECTED
    assert new.verification_reason == REASONS["invalid_api_key"]
    assert old.lifecycle_state == LifecycleState.ACTIVE
    assert old.verification_state == VerificationState.VERIFIED
    assert old.secret == old_secret
    assert old.replaced_by is None
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.KEY_SUPERSEDED).exists()


def test_merchant_mail_for_a_rejected_replacement_says_the_old_key_stays_in_use(
    owner_client, merchant, submit_verified, fake_stripe
):
    old = submit_verified(fake_key("sk_test_"))
    new_secret = fake_key("sk_test_")
    submit(owner_client, merchant, new_secret)
    new = stored(merchant, new_secret)
    fake_stripe.reject(new_secret)

    credential_verify(credential_id=new.pk)

    email = merchant_mail(new)
    assert email.subject.startswith("Action needed: Stripe did not accept your test key")
    stays = f"Your previous key {old.secret_hint} stays in use until a new one is verified."
    assert stays in email.body_text
    assert stays.replace(old.secret_hint, f"<code>{old.secret_hint}</code>") in html.unescape(
        email.body_html
    )
    assert "replaces" not in email.body_text


def test_rejected_first_key_mail_mentions_no_previous_key(owner_client, merchant, fake_stripe):
    secret = fake_key("sk_test_")
    submit(owner_client, merchant, secret)
    credential = stored(merchant, secret)
    fake_stripe.reject(secret)

    credential_verify(credential_id=credential.pk)

    assert "previous key" not in merchant_mail(credential).body_text


def test_merchant_page_after_a_rejected_replacement_shows_the_old_key_still_in_use(
    owner_client, merchant, submit_verified, fake_stripe
):
    old = submit_verified(fake_key("sk_test_"))
    new_secret = fake_key("sk_test_")
    submit(owner_client, merchant, new_secret)
    new = stored(merchant, new_secret)
    fake_stripe.reject(new_secret)
    credential_verify(credential_id=new.pk)

    response = owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug}))

    body = response.content.decode()
    test_card = mode_card(body, "test")
    assert f"{old.secret_hint} Secret key Verified" in card_text(test_card)
    assert "Verified" in test_card
    # The card says the roll failed and which key stays in use.
    assert f"The roll failed: Stripe rejected the new key {new.secret_hint}" in card_text(test_card)
    assert f"so {old.secret_hint} stays in use." in card_text(test_card)
    # The key in use is the one offered for a compromise report, and for the next roll.
    assert reverse("credentials:revoke", kwargs={"slug": merchant.slug, "pk": old.pk}) in test_card
    assert reverse("credentials:revoke", kwargs={"slug": merchant.slug, "pk": new.pk}) not in body
    assert f"?replaces={old.pk}" in test_card
    assert "Needs attention" not in body
    rows = history_rows(body)
    assert rows[0].startswith(new.secret_hint)
    assert "Rejected by Stripe Not in use (Stripe rejected it)" in rows[0]
    assert "Report compromised" not in rows[0]
    assert rows[1].startswith(old.secret_hint)
    assert "Verified Active" in rows[1]
    # One key is active in the history: the one in use.
    assert sum(" Active" in row for row in rows) == 1


def test_merchant_page_shows_a_rejected_first_key_as_the_current_key(
    owner_client, merchant, fake_stripe
):
    secret = fake_key("sk_test_")
    submit(owner_client, merchant, secret)
    credential = stored(merchant, secret)
    fake_stripe.reject(secret)
    credential_verify(credential_id=credential.pk)

    response = owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug}))

    test_card = mode_card(response.content.decode(), "test")
    assert credential.secret_hint in test_card
    assert "Rejected by Stripe" in test_card
    assert "Needs attention" in response.content.decode()


def test_merchant_page_follows_a_pending_replacement_of_a_key_stripe_no_longer_accepts(
    owner_client, merchant, submit_verified
):
    old = submit_verified(fake_key("sk_test_"))
    Credential.objects.filter(pk=old.pk).update(verification_state=VerificationState.REJECTED)
    new_secret = fake_key("sk_test_")
    submit(owner_client, merchant, new_secret)

    response = owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug}))

    test_card = mode_card(response.content.decode(), "test")
    assert stored(merchant, new_secret).secret_hint in test_card
    assert "Waiting to be verified" in test_card
    assert old.secret_hint not in test_card


# Modes are rolled separately


def test_roll_in_test_mode_does_not_touch_the_live_key(owner_client, merchant, submit_verified):
    live_secret = fake_key("sk_live_")
    live = submit_verified(live_secret)
    old_test = submit_verified(fake_key("sk_test_"))

    new_test = submit_verified(fake_key("sk_test_"))

    live = reload(live)
    assert live.mode == Mode.LIVE
    assert live.lifecycle_state == LifecycleState.ACTIVE
    assert live.verification_state == VerificationState.VERIFIED
    assert live.secret == live_secret
    assert live.replaced_by is None
    assert reload(old_test).replaced_by == new_test
    assert list(new_test.replaced.all()) == [reload(old_test)]
    assert live.secret_hint not in merchant_mail(new_test).body_text


def test_roll_of_another_merchants_key_is_independent(
    merchant, other_merchant, other_owner, client_for, submit_verified
):
    ours = submit_verified(fake_key("sk_test_"))
    theirs_secret = fake_key("sk_test_")
    assert submit(client_for(other_owner), other_merchant, theirs_secret).status_code == 302
    theirs = stored(other_merchant, theirs_secret)

    credential_verify(credential_id=theirs.pk)

    ours = reload(ours)
    assert ours.lifecycle_state == LifecycleState.ACTIVE
    assert ours.replaced_by is None


# Duplicates during and after a roll


def test_same_secret_cannot_be_submitted_again_while_it_is_active(
    owner_client, merchant, submit_verified
):
    secret = fake_key("sk_test_")
    submit_verified(secret)

    response = submit(owner_client, merchant, secret)

    assert response.status_code == 200
    assert "This secret key is already stored for this merchant in test mode" in html.unescape(
        response.content.decode()
    )
    assert Credential.objects.filter(merchant=merchant).count() == 1


def test_same_secret_can_be_submitted_again_once_it_was_superseded(
    owner_client, merchant, submit_verified
):
    old_secret = fake_key("sk_test_")
    old = submit_verified(old_secret)
    submit_verified(fake_key("sk_test_"))
    assert reload(old).lifecycle_state == LifecycleState.SUPERSEDED

    response = submit(owner_client, merchant, old_secret)

    assert response.status_code == 302
    again = stored(merchant, old_secret)
    assert again.pk != old.pk
    assert again.secret == old_secret
    assert again.verification_state == VerificationState.PENDING
    assert reload(old).secret is None


# A key replaced before Stripe answered about it


def test_a_pending_key_replaced_by_a_newer_verified_one_ends_not_verified(
    owner_client, merchant, fake_stripe
):
    first_secret, second_secret = fake_key("sk_test_"), fake_key("sk_test_")
    submit(owner_client, merchant, first_secret)
    submit(owner_client, merchant, second_secret)
    first, second = stored(merchant, first_secret), stored(merchant, second_secret)

    credential_verify(credential_id=second.pk)

    first = reload(first)
    assert first.lifecycle_state == LifecycleState.SUPERSEDED
    assert first.verification_state == VerificationState.NOT_VERIFIED
    assert first.verification_next_attempt_at is None
    # Its task, delivered late, finds nothing to verify and changes nothing.
    assert credential_verify(credential_id=first.pk).state == VerifyOutcome.SKIPPED
    assert reload(first).verification_state == VerificationState.NOT_VERIFIED
    assert fake_stripe.requests_for(first_secret) == []
    body = owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug}))
    rows = history_rows(body.content.decode())
    assert rows[1].startswith(first.secret_hint)
    assert f"Not verified Replaced by a newer key by {second.secret_hint}" in rows[1]


def test_a_key_replaced_while_stripe_is_asked_about_it_ends_not_verified(
    owner_client, merchant, fake_stripe, monkeypatch
):
    first_secret, second_secret = fake_key("sk_test_"), fake_key("sk_test_")
    submit(owner_client, merchant, first_secret)
    submit(owner_client, merchant, second_secret)
    first, second = stored(merchant, first_secret), stored(merchant, second_secret)
    ask = stripe_provider.stripe_account_facts

    def ask_while_the_newer_key_is_verified(secret):
        if secret == first_secret:
            assert credential_verify(credential_id=second.pk).state == VerifyOutcome.VERIFIED
        return ask(secret)

    monkeypatch.setattr(
        stripe_provider, "stripe_account_facts", ask_while_the_newer_key_is_verified
    )

    result = credential_verify(credential_id=first.pk)

    assert result.state == VerifyOutcome.SKIPPED
    first = reload(first)
    assert first.lifecycle_state == LifecycleState.SUPERSEDED
    assert first.replaced_by == second
    assert first.verification_state == VerificationState.NOT_VERIFIED
    assert first.verification_claimed_at is None
    assert not OutgoingEmail.objects.filter(
        topic=credential_topic(first.pk), kind=MERCHANT_MAIL
    ).exists()
    body = owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug}))
    assert "Being verified" not in body.content.decode()
