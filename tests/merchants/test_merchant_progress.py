"""What the merchant sees of its onboarding: the status of its keys and the helpdesk's progress."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from credentials.models import Credential, LifecycleState, Mode, VerificationState
from credentials.selectors import OnboardingStatus, merchant_onboarding_status
from credentials.services.helpdesk import credential_acknowledge, followups_send_due
from tests.factories import CredentialFactory
from tests.helpers import merchant_url

PENDING = VerificationState.PENDING
VERIFYING = VerificationState.VERIFYING
VERIFIED = VerificationState.VERIFIED
REJECTED = VerificationState.REJECTED
UNREACHABLE = VerificationState.UNREACHABLE


def shown_status(html: str) -> tuple[str, str] | None:
    """Return (code, label) of the onboarding status badge on the merchant page, if any."""
    match = re.search(r'<span class="state status-([a-z_]+)">([^<]+)</span>', html)
    return (match.group(1), match.group(2)) if match else None


def mode_card(html: str, mode: str) -> str:
    match = re.search(rf'<article class="[^"]*\bmode-{mode}\b[^"]*">(.*?)</article>', html, re.S)
    assert match, f"no {mode} mode card on the page"
    return " ".join(match.group(1).split())


def key(state=PENDING, *, acknowledged=False) -> Credential:
    """An unsaved credential: the status depends only on these two facts."""
    return Credential(
        verification_state=state, acknowledged_at=timezone.now() if acknowledged else None
    )


# merchant_onboarding_status


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        pytest.param([], OnboardingStatus.AWAITING_KEYS, id="no keys"),
        pytest.param([None, None], OnboardingStatus.AWAITING_KEYS, id="no key in either mode"),
        pytest.param([key(PENDING)], OnboardingStatus.KEYS_SUBMITTED, id="pending"),
        pytest.param([key(VERIFYING)], OnboardingStatus.KEYS_SUBMITTED, id="verifying"),
        pytest.param([key(REJECTED)], OnboardingStatus.NEEDS_ATTENTION, id="rejected"),
        pytest.param([key(UNREACHABLE)], OnboardingStatus.NEEDS_ATTENTION, id="unreachable"),
        pytest.param([key(VERIFIED)], OnboardingStatus.VERIFIED, id="verified"),
        pytest.param(
            [key(VERIFIED, acknowledged=True)], OnboardingStatus.ENABLED, id="acknowledged"
        ),
        pytest.param(
            [key(VERIFIED, acknowledged=True), None],
            OnboardingStatus.ENABLED,
            id="acknowledged, other mode empty",
        ),
        pytest.param(
            [key(VERIFIED, acknowledged=True), key(VERIFIED)],
            OnboardingStatus.VERIFIED,
            id="one of two acknowledged",
        ),
        pytest.param(
            [key(VERIFIED, acknowledged=True), key(PENDING)],
            OnboardingStatus.KEYS_SUBMITTED,
            id="acknowledged and pending",
        ),
        pytest.param(
            [key(VERIFIED, acknowledged=True), key(REJECTED)],
            OnboardingStatus.NEEDS_ATTENTION,
            id="acknowledged and rejected",
        ),
        pytest.param(
            [key(PENDING), key(UNREACHABLE)],
            OnboardingStatus.NEEDS_ATTENTION,
            id="pending and unreachable",
        ),
        pytest.param(
            [key(REJECTED, acknowledged=True)],
            OnboardingStatus.NEEDS_ATTENTION,
            id="rejected even once acknowledged",
        ),
    ],
)
def test_onboarding_status_follows_the_current_keys(current, expected):
    assert merchant_onboarding_status(current_credentials=current) == expected


def test_onboarding_status_accepts_the_values_of_the_current_keys_by_mode():
    current = {Mode.TEST: key(VERIFIED, acknowledged=True), Mode.LIVE: None}

    status = merchant_onboarding_status(current_credentials=current.values())

    assert status == OnboardingStatus.ENABLED


def test_onboarding_status_codes_and_labels_are_what_the_page_shows():
    assert [
        OnboardingStatus.AWAITING_KEYS,
        OnboardingStatus.KEYS_SUBMITTED,
        OnboardingStatus.NEEDS_ATTENTION,
        OnboardingStatus.VERIFIED,
        OnboardingStatus.ENABLED,
    ] == [
        ("awaiting_keys", "Awaiting keys"),
        ("keys_submitted", "Keys submitted"),
        ("needs_attention", "Needs attention"),
        ("verified", "Verified"),
        ("enabled", "Enabled"),
    ]


# The status on the merchant page


def test_merchant_page_without_keys_says_awaiting_keys(merchant, owner_client):
    body = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    assert shown_status(body) == OnboardingStatus.AWAITING_KEYS


@pytest.mark.parametrize(
    ("state", "acknowledged", "expected"),
    [
        (PENDING, False, OnboardingStatus.KEYS_SUBMITTED),
        (VERIFYING, False, OnboardingStatus.KEYS_SUBMITTED),
        (REJECTED, False, OnboardingStatus.NEEDS_ATTENTION),
        (UNREACHABLE, False, OnboardingStatus.NEEDS_ATTENTION),
        (VERIFIED, False, OnboardingStatus.VERIFIED),
        (VERIFIED, True, OnboardingStatus.ENABLED),
    ],
)
def test_merchant_page_shows_the_onboarding_status_of_the_current_key(
    merchant, owner, owner_client, helpdesk_user, state, acknowledged, expected
):
    credential = CredentialFactory(merchant=merchant, submitted_by=owner, verification_state=state)
    if acknowledged:
        credential_acknowledge(credential=credential, actor=helpdesk_user)

    body = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    assert shown_status(body) == expected


def test_merchant_page_status_ignores_a_replaced_key(merchant, owner, owner_client):
    CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        verification_state=REJECTED,
        secret=None,
        lifecycle_state=LifecycleState.SUPERSEDED,
        submitted_at=timezone.now() - timedelta(days=2),
    )
    CredentialFactory(merchant=merchant, submitted_by=owner, verification_state=VERIFIED)

    body = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    assert shown_status(body) == OnboardingStatus.VERIFIED


def test_merchant_page_needs_both_current_keys_acknowledged_to_say_enabled(
    merchant, owner, owner_client, helpdesk_user
):
    test = CredentialFactory(merchant=merchant, submitted_by=owner, verification_state=VERIFIED)
    CredentialFactory(
        merchant=merchant, submitted_by=owner, mode=Mode.LIVE, verification_state=VERIFIED
    )
    credential_acknowledge(credential=test, actor=helpdesk_user)

    body = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    assert shown_status(body) == OnboardingStatus.VERIFIED


def test_view_only_member_sees_no_onboarding_status(merchant, owner, member_factory, client_for):
    CredentialFactory(merchant=merchant, submitted_by=owner, verification_state=VERIFIED)
    viewer = member_factory(merchant, "view-only")

    response = client_for(viewer).get(merchant_url("credentials:merchant", merchant))

    assert response.status_code == 200
    assert shown_status(response.content.decode()) is None


def test_member_of_another_merchant_gets_404_and_no_status(
    merchant, owner, other_owner, client_for
):
    CredentialFactory(merchant=merchant, submitted_by=owner, verification_state=VERIFIED)

    response = client_for(other_owner).get(merchant_url("credentials:merchant", merchant))

    assert response.status_code == 404
    assert shown_status(response.content.decode()) is None


# The helpdesk's progress on the merchant page


@pytest.fixture
def decided(merchant, owner):
    """A verified test key the helpdesk was told about, its follow-up due now."""
    now = timezone.now()
    return CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        verification_state=VERIFIED,
        helpdesk_notified_at=now - timedelta(seconds=settings.FOLLOWUP_AFTER),
        followup_due_at=now,
    )


def test_merchant_page_says_the_helpdesk_was_told_before_any_reminder(
    merchant, owner_client, decided
):
    card = mode_card(
        owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode(), "test"
    )

    assert "reminded automatically if nobody picks it up" in card
    assert "reminded them" not in card


def test_merchant_page_shows_that_the_helpdesk_was_reminded_once(merchant, owner_client, decided):
    followups_send_due(now=decided.followup_due_at)

    card = mode_card(
        owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode(), "test"
    )

    assert "Keyhouse reminded them 1 time," in card
    assert "No need to phone." in card


def test_merchant_page_counts_each_reminder(merchant, owner_client, decided):
    followups_send_due(now=decided.followup_due_at)
    followups_send_due(now=decided.followup_due_at + timedelta(seconds=settings.FOLLOWUP_AFTER))

    card = mode_card(
        owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode(), "test"
    )

    assert "Keyhouse reminded them 2 times," in card


def test_merchant_page_says_picked_up_once_the_helpdesk_acknowledged(
    merchant, owner_client, decided, helpdesk_user
):
    followups_send_due(now=decided.followup_due_at)
    credential_acknowledge(credential=decided, actor=helpdesk_user)

    card = mode_card(
        owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode(), "test"
    )

    assert "Helpdesk: picked up on" in card
    assert "reminded them" not in card


def test_merchant_page_of_a_key_still_being_verified_promises_to_tell_the_helpdesk(
    merchant, owner, owner_client
):
    CredentialFactory(merchant=merchant, submitted_by=owner)

    card = mode_card(
        owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode(), "test"
    )

    assert "Helpdesk: will be told once Stripe has answered." in card


# A mode left without a key


def test_onboarding_status_needs_attention_when_a_mode_lost_its_key_whatever_the_other_says():
    current = [key(VERIFIED, acknowledged=True), None]

    status = merchant_onboarding_status(current_credentials=current, emptied_modes=1)

    assert status == OnboardingStatus.NEEDS_ATTENTION


def test_after_revoking_the_only_key_of_a_mode_the_merchant_needs_attention(
    merchant, owner, owner_client
):
    live = CredentialFactory(
        merchant=merchant,
        mode=Mode.LIVE,
        submitted_by=owner,
        verification_state=VERIFIED,
        acknowledged_at=timezone.now(),
    )
    CredentialFactory(
        merchant=merchant,
        mode=Mode.TEST,
        submitted_by=owner,
        verification_state=VERIFIED,
        acknowledged_at=timezone.now(),
    )
    page = merchant_url("credentials:merchant", merchant)
    assert shown_status(owner_client.get(page).content.decode()) == OnboardingStatus.ENABLED

    owner_client.post(
        merchant_url("credentials:revoke", merchant, pk=live.pk), {"reason": "Leaked."}
    )

    html = owner_client.get(page).content.decode()
    assert shown_status(html) == OnboardingStatus.NEEDS_ATTENTION
    assert "No active live key" in mode_card(html, "live")


def test_a_mode_never_given_a_key_does_not_need_attention(merchant, owner, owner_client):
    CredentialFactory(
        merchant=merchant, mode=Mode.TEST, submitted_by=owner, verification_state=VERIFIED
    )

    html = owner_client.get(merchant_url("credentials:merchant", merchant)).content.decode()

    assert shown_status(html) == OnboardingStatus.VERIFIED
