"""Invitations: the mail and its single-use link, accepting as a new or an existing user, and
every way a link can stop working (expired, used, revoked, replaced, tampered).

Each flow goes through the real views: the link exchanges its token for the invitation and
sends the browser on to the invitation page; a new person enters a code mailed to the invited
address. Links that no longer work show a page that says why, with status 200, and create
nothing.
"""

import hashlib
import re
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from teams.models import Invitation, Membership
from tests.conftest import PASSWORD
from tests.factories import InvitationFactory, MembershipFactory, UserFactory, default_role
from tests.helpers import page_html, page_text

User = get_user_model()

INVITEE = "newbie@demo.test"
NEW_PASSWORD = "plum-quarry-lantern-61"

# The sentence each dead link's page leads with.
INVALID = "This invitation link does not work"
EXPIRED = "This invitation has expired"
USED = "This invitation was already used"
REVOKED = "This invitation was withdrawn"


class FailingEmailBackend:
    """A mail backend whose server is down."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


def invite_url(merchant):
    return reverse("teams:invite", kwargs={"slug": merchant.slug})


def team_url(merchant):
    return reverse("teams:team", kwargs={"slug": merchant.slug})


def link(token):
    return reverse("teams:invitation", kwargs={"token": token})


def accept_url():
    return reverse("teams:invitation_accept")


# What the invitation page offers a new person while the invitation can be accepted.
OFFERS_ACCOUNT = "Send me a code"


def open_link(client, token):
    """Open the link as a browser does: it sends on to the invitation page, which is returned."""
    response = client.get(link(token))
    assert response.status_code == 302
    assert response["Location"] == accept_url()
    return client.get(accept_url())


def code_from(message) -> str:
    (code,) = re.findall(r"\b(\d{6})\b", message.body)
    return code


def request_code(client) -> str:
    """Ask the invitation page for a code (mailed on commit); return the code from the mail."""
    mails_before = len(mail.outbox)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(accept_url(), {"action": "send_code"})
    assert response.status_code == 302
    assert len(mail.outbox) == mails_before + 1, "no code was mailed"
    return code_from(mail.outbox[-1])


def token_from(message) -> str:
    """Return the token of the invitation link in `message` (text and HTML agree)."""
    tokens = set(re.findall(r"http://testserver/invitations/([^/\s\"<]+)/", message.body))
    for content, _mimetype in message.alternatives:
        tokens |= set(re.findall(r"http://testserver/invitations/([^/\s\"<]+)/", content))
    assert len(tokens) == 1, f"expected one invitation link, found {tokens}"
    return tokens.pop()


def invite(client, merchant, capture, *, email=INVITEE, role="developer"):
    """Invite `email` through the page; return the response (mail sent on commit)."""
    with capture(execute=True):
        return client.post(invite_url(merchant), {"email": email, "role": default_role(role).pk})


@pytest.fixture
def sent(merchant, owner_client, django_capture_on_commit_callbacks):
    """An invitation to INVITEE as Developer, sent by the Owner: (invitation, token)."""
    response = invite(owner_client, merchant, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    return Invitation.objects.get(email=INVITEE), token_from(mail.outbox[0])


def join_as_new_user(client, token, password=NEW_PASSWORD, **extra):
    """Open the link, have a code mailed, and create the account with it."""
    open_link(client, token)
    data = {
        "action": "create",
        "code": request_code(client),
        "full_name": "New Person",
        "password1": password,
        "password2": password,
        **extra,
    }
    return client.post(accept_url(), data)


def post_new_account(client, password=NEW_PASSWORD, **extra):
    """Post the new-account form of the invitation page, with a made-up code."""
    data = {
        "action": "create",
        "code": "123456",
        "full_name": "New Person",
        "password1": password,
        "password2": password,
        **extra,
    }
    return client.post(accept_url(), data)


def nothing_created(merchant) -> bool:
    return (
        not User.objects.filter(email__iexact=INVITEE).exists()
        and not Membership.objects.filter(merchant=merchant, user__email__iexact=INVITEE).exists()
    )


# Sending -------------------------------------------------------------------------------


def test_inviting_by_email_mails_the_invitee_a_link_to_the_invitation_page(
    merchant, owner_client, django_capture_on_commit_callbacks
):
    response = invite(owner_client, merchant, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response["Location"] == team_url(merchant)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [INVITEE]
    assert "Demo Coffee Co" in message.subject or "Demo Coffee Co" in message.body
    assert "Developer" in message.body
    token = token_from(message)
    assert len(token) >= 40  # 32 random bytes, URL-safe
    invitation = Invitation.objects.get()
    assert invitation.merchant == merchant
    assert invitation.role == default_role("developer")
    assert invitation.state == Invitation.State.PENDING
    assert invitation.sent_at is not None


def test_the_invitation_expires_ten_days_after_it_is_sent(sent):
    invitation, _token = sent

    assert invitation.expires_at - invitation.created_at == timedelta(days=10)


def test_only_the_sha256_of_the_token_is_stored_never_the_token(sent):
    invitation, token = sent

    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    row = Invitation.objects.filter(pk=invitation.pk).values().get()
    assert not [column for column, value in row.items() if token in str(value)]
    for event in AuditEvent.objects.all():
        assert token not in f"{event.target} {event.details} {event.actor_email}"


def test_a_member_without_invite_permission_cannot_invite(
    merchant, member_factory, client_for, django_capture_on_commit_callbacks
):
    developer = member_factory(merchant, "developer")

    response = invite(client_for(developer), merchant, django_capture_on_commit_callbacks)

    assert response.status_code == 403
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_inviting_into_another_merchant_is_not_found(
    merchant, other_merchant, owner_client, django_capture_on_commit_callbacks
):
    response = invite(owner_client, other_merchant, django_capture_on_commit_callbacks)

    assert response.status_code == 404
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_inviting_an_existing_member_is_refused_with_a_message(
    merchant, owner_client, member_factory, django_capture_on_commit_callbacks
):
    member_factory(merchant, "support", email=INVITEE)

    response = invite(owner_client, merchant, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert f"{INVITEE} is already a member of Demo Coffee Co." in page_text(response)
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_inviting_a_member_of_another_merchant_is_allowed(
    merchant, other_merchant, owner_client, member_factory, django_capture_on_commit_callbacks
):
    member_factory(other_merchant, "owner", email=INVITEE)

    response = invite(owner_client, merchant, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert Invitation.objects.filter(merchant=merchant, email=INVITEE).exists()


def test_inviting_the_same_address_twice_while_pending_is_refused_suggesting_resend(
    merchant, owner_client, sent, django_capture_on_commit_callbacks
):
    response = invite(
        owner_client, merchant, django_capture_on_commit_callbacks, email=INVITEE.upper()
    )

    assert response.status_code == 200
    body = page_text(response)
    assert f"{INVITEE} already has a pending invitation." in body
    assert "Resend it from the team page" in body
    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 1


def test_an_expired_open_invitation_is_replaced_by_a_new_one(
    merchant, owner_client, sent, django_capture_on_commit_callbacks
):
    old, old_token = sent
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = invite(owner_client, merchant, django_capture_on_commit_callbacks, role="support")

    assert response.status_code == 302
    new = Invitation.objects.open().get(merchant=merchant, email=INVITEE)
    assert new.pk != old.pk
    assert new.role == default_role("support")
    assert new.state == Invitation.State.PENDING
    new_token = token_from(mail.outbox[-1])
    assert new_token != old_token
    assert OFFERS_ACCOUNT not in page_text(open_link(Client(), old_token))
    assert OFFERS_ACCOUNT in page_text(open_link(Client(), new_token))


# Accepting as a new user ---------------------------------------------------------------


def test_an_anonymous_new_person_opening_the_link_is_offered_a_code_then_a_password_form(
    sent, client
):
    _invitation, token = sent

    response = open_link(client, token)

    assert response.status_code == 200
    body = page_text(response)
    assert "Join Demo Coffee Co" in body
    assert "Developer" in body
    assert f"a 6-digit code will be mailed to {INVITEE}" in body
    assert OFFERS_ACCOUNT in body
    assert 'name="password1"' not in page_html(response)

    request_code(client)
    form = page_html(client.get(accept_url()))

    assert mail.outbox[-1].to == [INVITEE]
    assert 'name="code"' in form
    assert 'name="password1"' in form
    assert 'name="password2"' in form
    assert "Create account and join" in form


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Xq7#vb", "This password is too short. It must contain at least 8 characters."),
        ("password", "This password is too common."),
        ("4829105736", "This password is entirely numeric."),
        (INVITEE, "The password is too similar to the email address."),
    ],
    ids=["too-short", "too-common", "numeric", "similar-to-email"],
)
def test_djangos_password_validators_refuse_a_weak_password_and_nothing_is_created(
    merchant, sent, client, password, message
):
    invitation, token = sent

    response = join_as_new_user(client, token, password=password)

    assert response.status_code == 200
    assert message in page_text(response)
    assert nothing_created(merchant)
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.PENDING
    assert "_auth_user_id" not in client.session


def test_two_different_passwords_are_refused_and_nothing_is_created(merchant, sent, client):
    _invitation, token = sent

    open_link(client, token)
    code = request_code(client)
    response = client.post(
        accept_url(),
        {"code": code, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"},
    )

    assert response.status_code == 200
    assert "The two passwords differ" in page_text(response)
    assert nothing_created(merchant)


def test_a_new_person_with_a_good_password_becomes_a_signed_in_member_with_the_invited_role(
    merchant, sent, client
):
    invitation, token = sent

    response = join_as_new_user(client, token)

    assert response.status_code == 302
    assert response["Location"] == merchant.get_absolute_url()
    user = User.objects.get(email=INVITEE)
    assert user.full_name == "New Person"
    assert user.check_password(NEW_PASSWORD)
    assert int(client.session["_auth_user_id"]) == user.pk
    membership = Membership.objects.get(user=user, merchant=merchant)
    assert membership.role == default_role("developer")
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.ACCEPTED
    assert invitation.accepted_by == user
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Welcome to Demo Coffee Co." in page_text(page)


def test_a_posted_email_is_ignored_the_account_takes_the_invitations_address(
    merchant, sent, client
):
    _invitation, token = sent

    join_as_new_user(client, token, email="intruder@demo.test")

    assert User.objects.filter(email=INVITEE).exists()
    assert not User.objects.filter(email="intruder@demo.test").exists()


# Accepting as an existing user ---------------------------------------------------------


def test_an_existing_user_is_asked_to_sign_in_then_joins_with_one_post(merchant, sent, client):
    invitation, token = sent
    existing = UserFactory(email=INVITEE)

    anonymous_page = open_link(client, token)
    assert anonymous_page.status_code == 200
    body = page_html(anonymous_page)
    assert "You already have an account" in body
    assert f"{reverse('login')}?next={accept_url()}" in body.replace("%2F", "/")
    assert 'name="password1"' not in body
    assert OFFERS_ACCOUNT not in body

    signed_in = client.post(
        reverse("login"), {"username": INVITEE, "password": PASSWORD, "next": accept_url()}
    )
    assert signed_in["Location"] == accept_url()
    join_page = client.get(accept_url())
    assert "Join Demo Coffee Co" in page_text(join_page)
    assert not Membership.objects.filter(user=existing, merchant=merchant).exists()

    response = client.post(accept_url(), {"action": "join"})

    assert response.status_code == 302
    assert response["Location"] == merchant.get_absolute_url()
    membership = Membership.objects.get(user=existing, merchant=merchant)
    assert membership.role == default_role("developer")
    invitation.refresh_from_db()
    assert invitation.accepted_by == existing


def test_an_anonymous_post_for_an_existing_account_creates_nothing(merchant, sent, client):
    invitation, token = sent
    existing = UserFactory(email=INVITEE)

    open_link(client, token)
    response = post_new_account(client)

    assert response.status_code == 200
    assert "sign in to accept" in page_text(response)
    assert User.objects.filter(email__iexact=INVITEE).count() == 1
    assert not existing.check_password(NEW_PASSWORD)
    assert not Membership.objects.filter(user=existing).exists()
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.PENDING


def test_a_user_signed_in_with_another_email_is_told_the_invitation_is_for_someone_else(
    merchant, sent, client_for
):
    invitation, token = sent
    stranger = UserFactory(email="stranger@demo.test")
    client = client_for(stranger)

    page = open_link(client, token)
    assert page.status_code == 200
    assert (
        f"You are signed in as stranger@demo.test, but this invitation is for {INVITEE}"
        in page_text(page)
    )
    assert OFFERS_ACCOUNT not in page_text(page)

    response = client.post(accept_url(), {"action": "join"}, follow=True)

    assert response.status_code == 200
    assert f"This invitation is for {INVITEE}; you are signed in as stranger@demo.test." in (
        page_text(response)
    )
    assert not Membership.objects.filter(user=stranger, merchant=merchant).exists()
    assert nothing_created(merchant)
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.PENDING


# Links that no longer work -------------------------------------------------------------


def _assert_dead_link(client, token, sentence):
    users_before = User.objects.count()
    memberships_before = Membership.objects.count()

    page = open_link(client, token)
    posted = post_new_account(client)
    code_asked = client.post(accept_url(), {"action": "send_code"})

    for response in (page, posted, code_asked):
        assert response.status_code == 200
        assert sentence in page_text(response)
        assert 'name="password1"' not in page_html(response)
        assert OFFERS_ACCOUNT not in page_text(response)
    assert User.objects.count() == users_before
    assert Membership.objects.count() == memberships_before


def test_an_expired_link_says_it_expired_and_creates_nothing(merchant, sent, client):
    invitation, token = sent
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    _assert_dead_link(client, token, EXPIRED)


def test_a_link_works_until_just_before_ten_days_have_passed(merchant, sent, client, monkeypatch):
    invitation, token = sent
    almost = invitation.expires_at - timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: almost)

    response = open_link(client, token)

    assert OFFERS_ACCOUNT in page_text(response)


def test_a_link_opened_after_ten_days_says_it_expired(merchant, sent, client, monkeypatch):
    invitation, token = sent
    later = invitation.created_at + timedelta(days=10, seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)

    _assert_dead_link(client, token, EXPIRED)


def test_a_used_link_says_it_was_used_and_works_only_once(merchant, sent, client):
    _invitation, token = sent
    join_as_new_user(client, token)

    _assert_dead_link(Client(), token, USED)
    assert Membership.objects.filter(merchant=merchant, user__email=INVITEE).count() == 1


def test_a_used_link_cannot_be_used_again_by_the_same_signed_in_user(merchant, sent, client):
    _invitation, token = sent
    join_as_new_user(client, token)

    open_link(client, token)
    response = client.post(accept_url(), {"action": "join"})

    assert response.status_code == 200
    assert USED in page_text(response)
    assert Membership.objects.filter(merchant=merchant, user__email=INVITEE).count() == 1


def test_a_revoked_link_says_it_was_withdrawn_and_creates_nothing(
    merchant, owner_client, sent, client
):
    invitation, token = sent

    revoke = owner_client.post(
        reverse("teams:invitation_revoke", kwargs={"slug": merchant.slug, "pk": invitation.pk})
    )

    assert revoke.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.REVOKED
    _assert_dead_link(client, token, REVOKED)


def _changed_one_character(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "tamper",
    [
        _changed_one_character,
        lambda token: token[:-1],
        lambda token: token[: len(token) // 2],
        lambda token: secrets.token_urlsafe(32),
        lambda token: token + "x",
        lambda token: "x" * 300,
    ],
    ids=["one-character-changed", "last-character-cut", "truncated", "random", "extended", "long"],
)
def test_a_tampered_link_says_it_does_not_work_and_creates_nothing(merchant, sent, client, tamper):
    invitation, token = sent

    _assert_dead_link(client, tamper(token), INVALID)

    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.PENDING


def test_a_tampered_link_refuses_a_signed_in_invitee_too(merchant, sent, client_for):
    _invitation, token = sent
    invitee = UserFactory(email=INVITEE)

    client = client_for(invitee)
    open_link(client, token)
    open_link(client, _changed_one_character(token))
    response = client.post(accept_url(), {"action": "join"})

    assert response.status_code == 200
    assert INVALID in page_text(response)
    assert not Membership.objects.filter(user=invitee).exists()


# Resend and revoke ---------------------------------------------------------------------


def resend(client, merchant, invitation, capture):
    with capture(execute=True):
        return client.post(
            reverse("teams:invitation_resend", kwargs={"slug": merchant.slug, "pk": invitation.pk})
        )


def test_resend_mails_a_new_link_and_the_old_one_stops_working(
    merchant, owner_client, sent, client, django_capture_on_commit_callbacks
):
    invitation, old_token = sent

    response = resend(owner_client, merchant, invitation, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert len(mail.outbox) == 2
    assert mail.outbox[1].to == [INVITEE]
    new_token = token_from(mail.outbox[1])
    assert new_token != old_token
    followed = owner_client.get(response["Location"])
    assert "the old link no longer works" in page_text(followed)
    _assert_dead_link(client, old_token, INVALID)
    assert OFFERS_ACCOUNT in page_text(open_link(client, new_token))


def test_resend_gives_an_expired_invitation_another_ten_days(
    merchant, owner_client, sent, client, django_capture_on_commit_callbacks
):
    invitation, _token = sent
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(days=1)
    )

    resend(owner_client, merchant, invitation, django_capture_on_commit_callbacks)

    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.PENDING
    assert invitation.expires_at > timezone.now() + timedelta(days=9, hours=23)
    response = join_as_new_user(client, token_from(mail.outbox[-1]))
    assert response.status_code == 302


def test_a_member_without_invite_permission_cannot_resend_or_revoke(
    merchant, sent, member_factory, client_for, django_capture_on_commit_callbacks
):
    invitation, token = sent
    client = client_for(member_factory(merchant, "developer"))

    resent = resend(client, merchant, invitation, django_capture_on_commit_callbacks)
    revoked = client.post(
        reverse("teams:invitation_revoke", kwargs={"slug": merchant.slug, "pk": invitation.pk})
    )

    assert resent.status_code == 403
    assert revoked.status_code == 403
    assert len(mail.outbox) == 1
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.PENDING
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()


def test_another_merchants_invitation_cannot_be_resent_or_revoked(
    merchant,
    other_merchant,
    other_owner,
    owner_client,
    django_capture_on_commit_callbacks,
):
    foreign = InvitationFactory(merchant=other_merchant, invited_by=other_owner)

    # Through this merchant's address, and through the other merchant's.
    for slug in (merchant.slug, other_merchant.slug):
        kwargs = {"slug": slug, "pk": foreign.pk}
        with django_capture_on_commit_callbacks(execute=True):
            resent = owner_client.post(reverse("teams:invitation_resend", kwargs=kwargs))
        revoked = owner_client.post(reverse("teams:invitation_revoke", kwargs=kwargs))
        assert resent.status_code == 404
        assert revoked.status_code == 404

    assert mail.outbox == []
    foreign.refresh_from_db()
    assert foreign.state == Invitation.State.PENDING


def test_a_revoked_invitation_cannot_be_resent(
    merchant, owner_client, sent, django_capture_on_commit_callbacks
):
    invitation, _token = sent
    owner_client.post(
        reverse("teams:invitation_revoke", kwargs={"slug": merchant.slug, "pk": invitation.pk})
    )

    response = resend(owner_client, merchant, invitation, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    followed = owner_client.get(response["Location"])
    assert "This invitation was already used or revoked." in page_text(followed)


# A mail server that is down ------------------------------------------------------------


def test_a_failing_mail_backend_keeps_the_invitation_and_resend_works_once_it_is_back(
    merchant, owner_client, settings, client, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.FailingEmailBackend"

    response = invite(owner_client, merchant, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    invitation = Invitation.objects.get(email=INVITEE)
    assert invitation.sent_at is None
    assert mail.outbox == []
    team = page_text(owner_client.get(team_url(merchant)))
    assert INVITEE in team
    assert "mail not sent" in team

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    resend(owner_client, merchant, invitation, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    invitation.refresh_from_db()
    assert invitation.sent_at is not None
    assert "mail not sent" not in page_text(owner_client.get(team_url(merchant)))
    assert join_as_new_user(client, token_from(mail.outbox[0])).status_code == 302
    assert Membership.objects.filter(merchant=merchant, user__email=INVITEE).exists()


def test_an_invitation_for_the_owner_role_is_accepted_with_that_role(
    merchant, owner_client, client, django_capture_on_commit_callbacks
):
    invite(owner_client, merchant, django_capture_on_commit_callbacks, role="owner")

    join_as_new_user(client, token_from(mail.outbox[0]))

    assert Membership.objects.get(user__email=INVITEE).role == default_role("owner")


def test_an_existing_member_accepting_an_old_invitation_keeps_one_membership(
    merchant, sent, client_for
):
    _invitation, token = sent
    invitee = UserFactory(email=INVITEE)
    MembershipFactory(user=invitee, merchant=merchant, role=default_role("support"))

    client = client_for(invitee)
    open_link(client, token)
    response = client.post(accept_url(), {"action": "join"})

    assert response.status_code == 302
    assert Membership.objects.filter(user=invitee, merchant=merchant).count() == 1
