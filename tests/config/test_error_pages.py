"""Error pages (issue #12, finding 4): what a visitor reads on a 400, 403, 404 and 500, that no
error page is stored, and that an error report (Django's debug page, the admins' error mail)
never shows a key or a password, even with DEBUG on."""

import logging
import sys

import pytest
from django.http import HttpResponseNotFound
from django.test import Client
from django.urls import reverse
from django.views.debug import technical_500_response

from config.middleware import PrivatePagesMiddleware
from tests.factories import fake_key
from tests.helpers import assert_no_secret, merchant_url, page_text

PASSWORD = "a-made-up-password-4711"
BROKER_PASSWORD = "a-made-up-broker-password"


def cache_directives(response) -> set[str]:
    return {part.strip() for part in response.headers.get("Cache-Control", "").split(",")}


@pytest.fixture
def live_secret():
    return fake_key("sk_live_")


def _charge(secret_key: str, note: str):
    """Fail the way code handling a key might: the key in arguments, locals, a dict and the
    exception's message."""
    pasted = f"the merchant pasted {secret_key} into the note"
    stripe_call = {"api_key": secret_key, "account": "acct_123"}
    account_password = PASSWORD  # noqa: F841 - a local the report must hide
    raise ValueError(f"Stripe refused {secret_key} ({note}, {pasted}, {stripe_call})")


def _crash_report(rf, secret, *, accept: str):
    request = rf.post(
        "/m/demo-coffee-co/keys/new/",
        {
            "publishable_key": fake_key("pk_live_"),
            "secret_key": secret,
            "note": f"my key is {secret}",
            "password": PASSWORD,
        },
        HTTP_ACCEPT=accept,
    )
    try:
        _charge(secret, note=f"from the form: {secret}")
    except ValueError:
        return technical_500_response(request, *sys.exc_info())
    pytest.fail("the view did not fail")


# Error reports hide secrets, even with DEBUG on.


@pytest.mark.parametrize("accept", ["text/html", "text/plain"])
def test_debug_page_of_a_500_shows_no_key_and_no_password(rf, settings, live_secret, accept):
    settings.DEBUG = True
    settings.CELERY_BROKER_URL = f"redis://:{BROKER_PASSWORD}@127.0.0.1:6379/0"

    response = _crash_report(rf, live_secret, accept=accept)
    report = response.content.decode()

    assert response.status_code == 500
    assert "ValueError" in report  # still a useful report
    assert "acct_123" in report
    assert_no_secret(report, live_secret)
    assert PASSWORD not in report
    assert BROKER_PASSWORD not in report
    assert settings.SECRET_KEY not in report
    assert settings.FIELD_ENCRYPTION_KEY[0] not in report


def test_debug_page_of_a_400_shows_no_key_and_no_password(settings, db, live_secret):
    settings.DEBUG = True

    response = Client().post(
        reverse("login"),
        {"username": "owner@demo.test", "password": PASSWORD, "note": f"key {live_secret}"},
        HTTP_HOST="not-an-allowed-host.test",
    )
    report = response.content.decode()

    assert response.status_code == 400
    assert "DisallowedHost" in report
    assert_no_secret(report, live_secret)
    assert PASSWORD not in report


def test_error_mail_to_the_admins_shows_no_key(rf, settings, mailoutbox, live_secret):
    settings.ADMINS = [("Ops", "ops@keyhouse.test")]
    request = rf.post("/m/demo-coffee-co/keys/new/", {"secret_key": live_secret})
    try:
        _charge(live_secret, note="in a worker")
    except ValueError:
        logging.getLogger("django.request").error(
            "Internal Server Error", exc_info=True, extra={"status_code": 500, "request": request}
        )

    mails = [mail for mail in mailoutbox if "ops@keyhouse.test" in mail.to]
    assert mails, "no error mail was sent"
    for mail in mails:
        assert_no_secret(mail.subject + mail.body, live_secret)
        for content, _type in getattr(mail, "alternatives", []):
            assert_no_secret(content, live_secret)


# What a visitor reads, and no error page is stored.


def test_bad_request_page_says_what_went_wrong_and_what_to_do(client, db):
    response = client.get("/", HTTP_HOST="not-an-allowed-host.test")
    text = page_text(response)

    assert response.status_code == 400
    assert "This request could not be read" in text
    assert "Go back, reload the page and send it again" in text
    assert {"private", "no-store"} <= cache_directives(response)


def test_forbidden_page_is_not_stored(client_for, merchant, member_factory):
    view_only = client_for(member_factory(merchant, "view-only"))

    response = view_only.get(merchant_url("credentials:submit", merchant))

    assert response.status_code == 403
    assert "You are not allowed to do this" in page_text(response)
    assert {"private", "no-store"} <= cache_directives(response)


def test_not_found_page_is_not_stored(owner_client, other_merchant):
    response = owner_client.get(merchant_url("credentials:merchant", other_merchant))

    assert response.status_code == 404
    assert "Page not found" in page_text(response)
    assert {"private", "no-store"} <= cache_directives(response)


@pytest.fixture
def crashing_dashboard(monkeypatch):
    def crash(self, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("merchants.views.DashboardView.get_context_data", crash)


def test_server_error_page_does_not_promise_that_retrying_helps(crashing_dashboard, owner, db):
    client = Client(raise_request_exception=False)
    client.force_login(owner)

    response = client.get(reverse("merchants:dashboard"))
    text = page_text(response)

    assert response.status_code == 500
    assert "Something went wrong on our side" in text
    assert "will most likely fail the same way" in text
    assert "try again" not in text.lower()
    assert "the database went away" not in text
    assert {"private", "no-store"} <= cache_directives(response)


def test_error_page_is_not_stored_even_when_the_failed_page_chose_caching(rf):
    def cached_page_that_fails(request):
        response = HttpResponseNotFound("gone")
        response["Cache-Control"] = "public, max-age=600"
        return response

    response = PrivatePagesMiddleware(cached_page_that_fails)(rf.get("/"))

    assert cache_directives(response) == {"private", "no-store"}
