"""Password change and reset for merchant users: Django's views in the portal's pages.

A change keeps this browser signed in under a new session key and signs every other session
out; a reset mails a link (built from SITE_URL) to an existing address and answers exactly the
same for an unknown one; both are audited.
"""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from audit.refusals import Refused
from teams.services.passwords import user_password_change
from tests.conftest import PASSWORD
from tests.helpers import page_html, page_text, reload

Action = AuditEvent.Action
NEW_PASSWORD = "a brand new passphrase 42"
CHANGE = reverse("password_change")
RESET = reverse("password_reset")


def signed_in_client(user, password=PASSWORD) -> Client:
    """Return a client signed in through the sign-in page, as a browser would be."""
    client = Client()
    response = client.post(reverse("login"), {"username": user.email, "password": password})
    assert response.status_code == 302, "the sign-in failed"
    return client


def is_signed_in(client) -> bool:
    """Return True if the client's session still opens a page that needs signing in."""
    return client.get(reverse("merchants:dashboard")).status_code == 200


def reset_link(message) -> str:
    (link,) = re.findall(r"https?://\S+/accounts/password/reset/\S+/", message.body)
    return link


def change(client, old=PASSWORD, new=NEW_PASSWORD):
    return client.post(CHANGE, {"old_password": old, "new_password1": new, "new_password2": new})


# Change --------------------------------------------------------------------------------


def test_changing_the_password_keeps_this_session_under_a_new_key(owner):
    client = signed_in_client(owner)
    key_before = client.cookies["sessionid"].value

    response = change(client)

    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    assert client.cookies["sessionid"].value != key_before
    assert is_signed_in(client)
    assert "Your password is changed" in page_text(client.get(response["Location"]))
    assert reload(owner).check_password(NEW_PASSWORD)


def test_changing_the_password_signs_every_other_session_out(owner, member_factory):
    colleague = member_factory(owner.memberships.get().merchant, "developer")
    here, elsewhere = signed_in_client(owner), signed_in_client(owner)
    colleague_client = signed_in_client(colleague)

    change(here)

    assert not is_signed_in(elsewhere)
    assert is_signed_in(here)
    assert is_signed_in(colleague_client)


def test_the_old_password_no_longer_signs_in(owner):
    change(signed_in_client(owner))

    old = Client().post(reverse("login"), {"username": owner.email, "password": PASSWORD})
    new = Client().post(reverse("login"), {"username": owner.email, "password": NEW_PASSWORD})

    assert old.status_code == 200
    assert new.status_code == 302


def test_a_wrong_current_password_changes_nothing(owner):
    client, elsewhere = signed_in_client(owner), signed_in_client(owner)

    response = change(client, old="not the password")

    assert response.status_code == 200
    assert "incorrect" in page_text(response)
    assert reload(owner).check_password(PASSWORD)
    assert is_signed_in(elsewhere)
    assert not AuditEvent.objects.filter(action=Action.PASSWORD_CHANGED).exists()


def test_a_weak_new_password_is_refused_with_the_reason(owner):
    response = change(signed_in_client(owner), new="12345678")

    assert response.status_code == 200
    assert "too common" in page_text(response)
    assert reload(owner).check_password(PASSWORD)


def test_a_password_change_is_audited(owner):
    change(signed_in_client(owner))

    event = AuditEvent.objects.get(action=Action.PASSWORD_CHANGED)
    assert event.actor == owner
    assert event.ip == "127.0.0.1"
    assert NEW_PASSWORD not in str(event.details) + event.target


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(CHANGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_nobody_changes_someone_elses_password_through_the_service(owner, other_owner):
    with pytest.raises(Refused):
        user_password_change(user=owner, password=NEW_PASSWORD, actor=other_owner)

    assert reload(owner).check_password(PASSWORD)
    assert AuditEvent.objects.get(action=Action.ACTION_REFUSED).actor == other_owner


def test_the_top_bar_links_to_the_password_change(owner_client):
    body = page_html(owner_client.get(reverse("merchants:dashboard")))

    assert f'href="{CHANGE}"' in body


# Reset ---------------------------------------------------------------------------------


def test_the_sign_in_page_links_to_the_reset(client):
    body = page_html(client.get(reverse("login")))

    assert f'href="{RESET}"' in body
    assert "Forgot your password?" in body


def test_a_reset_mails_a_link_to_an_existing_address(owner, client):
    response = client.post(RESET, {"email": "Owner@Demo.test"})

    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == [owner.email]
    assert reset_link(message).startswith("http://testserver/accounts/password/reset/")
    assert PASSWORD not in message.body


def test_a_reset_answers_the_same_for_an_unknown_address(owner):
    known = Client().post(RESET, {"email": owner.email}, follow=True)
    unknown = Client().post(RESET, {"email": "nobody@demo.test"}, follow=True)

    assert len(mail.outbox) == 1
    assert known.redirect_chain == unknown.redirect_chain
    assert known.status_code == unknown.status_code == 200
    assert page_text(known) == page_text(unknown)


def test_the_reset_link_is_built_from_site_url_never_the_host_header(owner, client, settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.SITE_URL = "https://keyhouse.example"

    client.post(RESET, {"email": owner.email}, HTTP_HOST="attacker.example")

    assert reset_link(mail.outbox[0]).startswith("https://keyhouse.example/accounts/")
    assert "attacker.example" not in mail.outbox[0].body


def test_the_reset_link_sets_a_new_password_and_ends_every_session(owner, client):
    elsewhere = signed_in_client(owner)
    client.post(RESET, {"email": owner.email})

    form_page = client.get(reset_link(mail.outbox[0]), follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_complete")
    assert reload(owner).check_password(NEW_PASSWORD)
    assert not is_signed_in(elsewhere)
    event = AuditEvent.objects.get(action=Action.PASSWORD_RESET)
    assert event.actor == owner


def test_the_reset_link_keeps_its_token_out_of_the_page_address(owner, client):
    client.post(RESET, {"email": owner.email})
    link = reset_link(mail.outbox[0])
    token = link.rstrip("/").rsplit("/", 1)[1]

    form_page = client.get(link, follow=True)

    assert token not in form_page.redirect_chain[-1][0]
    assert "Choose a new password" in page_text(form_page)


def test_a_reset_link_works_once(owner, client):
    client.post(RESET, {"email": owner.email})
    link = reset_link(mail.outbox[0])
    form_page = client.get(link, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    again = Client().get(link, follow=True)

    assert "This link does not work any more" in page_text(again)
    assert not AuditEvent.objects.filter(action=Action.PASSWORD_RESET).count() > 1


def test_a_made_up_reset_link_does_not_work(owner, client):
    response = client.get(
        reverse("password_reset_confirm", kwargs={"uidb64": "MQ", "token": "made-up-token"})
    )

    assert "This link does not work any more" in page_text(response)
    assert reload(owner).check_password(PASSWORD)
