"""The key form in the browser: each mistake shows the server's own message as it is typed,
the valid state is never shown beside an error, aria-invalid follows the error, the server's
errors are summed up with focus on the summary, and a valid pair leads to the receipt."""

import re

import pytest
from django.core.exceptions import ValidationError
from playwright.sync_api import expect

from credentials.models import Credential
from credentials.providers.stripe_keys import (
    check_same_mode,
    parse_publishable_key,
    parse_secret_key,
)
from tests.browser.conftest import sign_in
from tests.factories import fake_key

PARSERS = {"publishable_key": parse_publishable_key, "secret_key": parse_secret_key}


def server_message(field: str, value: str) -> str:
    """Return what the server says about `value` in `field` (the one source of the words)."""
    with pytest.raises(ValidationError) as refusal:
        PARSERS[field](value)
    return refusal.value.messages[0]


MISTAKES = {
    "not-a-key": ("publishable_key", "my publishable key"),
    "secret-in-publishable": ("publishable_key", fake_key("sk_test_")),
    "restricted-in-publishable": ("publishable_key", fake_key("rk_live_")),
    "publishable-in-secret": ("secret_key", fake_key("pk_test_")),
    "only-the-prefix": ("publishable_key", "pk_live_"),
    "too-short": ("secret_key", "sk_test_abc123"),
    "space-inside": ("secret_key", "sk_test_abcdefghijkl mnopqrstuvwxyz0123"),
    "quoted": ("publishable_key", f'"{fake_key("pk_test_")}"'),
    "curly-quotes": ("secret_key", f"“{fake_key('sk_test_')}”"),
    "other-characters": ("secret_key", "sk_live_abcdefghijkl-mnopqrstuvwxyz0123"),
    "encrypted-value": ("secret_key", "gAAAAABmZ2VuY3J5cHRlZF92YWx1ZV9ub3RfYV9rZXk="),
    "too-long": ("publishable_key", "pk_test_" + "a" * 260),
}


def open_key_form(page, demo):
    sign_in(page, demo.owner)
    page.goto(f"/m/{demo.merchant.slug}/keys/new/")
    return page.locator("#key-form")


def assert_error_shown(page, field: str, message: str):
    expect(page.locator(f"#id_{field}_error")).to_have_text(message)
    box = page.locator(f"#field-{field}")
    expect(box).to_have_class(re.compile(r"\bhas-error\b"))
    expect(box).not_to_have_class(re.compile(r"\bvalid\b"))
    expect(page.locator(f"#id_{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#id_{field}")).to_have_attribute(
        "aria-describedby", re.compile(rf"\bid_{field}_error\b")
    )


def assert_valid_shown(page, field: str):
    box = page.locator(f"#field-{field}")
    expect(box).to_have_class(re.compile(r"\bvalid\b"))
    expect(box).not_to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator(f"#id_{field}_error")).to_have_text("")
    expect(page.locator(f"#id_{field}")).not_to_have_attribute("aria-invalid", "true")


@pytest.mark.parametrize("mistake", MISTAKES.values(), ids=MISTAKES.keys())
def test_each_mistake_shows_the_servers_message_as_it_is_typed(browser_page, demo, mistake):
    field, value = mistake
    open_key_form(browser_page, demo)

    browser_page.locator(f"#id_{field}").fill(value)

    assert_error_shown(browser_page, field, server_message(field, value))


def test_fixing_a_mistake_shows_the_valid_state_and_clears_the_error(browser_page, demo):
    open_key_form(browser_page, demo)
    field = browser_page.locator("#id_publishable_key")

    field.fill("pk_test_abc")
    assert_error_shown(
        browser_page, "publishable_key", server_message("publishable_key", "pk_test_abc")
    )
    field.fill(fake_key("pk_test_"))

    assert_valid_shown(browser_page, "publishable_key")


def test_keys_of_different_modes_show_the_mismatch_and_neither_key_as_valid(browser_page, demo):
    open_key_form(browser_page, demo)
    publishable, secret = fake_key("pk_test_"), fake_key("sk_live_")

    browser_page.locator("#id_publishable_key").fill(publishable)
    assert_valid_shown(browser_page, "publishable_key")
    browser_page.locator("#id_secret_key").fill(secret)

    with pytest.raises(ValidationError) as refusal:
        check_same_mode(
            publishable=parse_publishable_key(publishable), secret=parse_secret_key(secret)
        )
    assert_error_shown(browser_page, "secret_key", refusal.value.messages[0])
    expect(browser_page.locator("#field-publishable_key")).not_to_have_class(
        re.compile(r"\bvalid\b")
    )
    expect(browser_page.locator(".field.valid")).to_have_count(0)


def test_a_refused_submission_sums_up_the_errors_with_focus_and_asks_for_the_secret_again(
    browser_page, demo
):
    open_key_form(browser_page, demo)
    browser_page.locator("#id_publishable_key").fill(fake_key("pk_test_"))
    browser_page.locator("#id_secret_key").fill(fake_key("sk_live_"))
    live_message = browser_page.locator("#id_secret_key_error").inner_text()

    browser_page.get_by_role("button", name="Submit keys").click()

    summary = browser_page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_text(
        f"Restricted key (recommended) or secret key: {live_message}"
    )
    expect(browser_page.locator("#id_secret_key_error")).to_have_text(live_message)
    expect(browser_page.locator("#id_secret_key")).to_have_value("")
    expect(browser_page.get_by_text("Paste the secret again")).to_be_visible()
    summary.get_by_role("link").click()
    expect(browser_page.locator("#id_secret_key")).to_be_focused()
    assert not Credential.objects.exists()


def test_a_valid_pair_is_submitted_and_the_receipt_shows_the_hint(browser_page, demo):
    open_key_form(browser_page, demo)
    secret = fake_key("sk_test_")
    browser_page.locator("#id_publishable_key").fill(fake_key("pk_test_"))
    browser_page.locator("#id_secret_key").fill(secret)
    assert_valid_shown(browser_page, "publishable_key")
    assert_valid_shown(browser_page, "secret_key")

    browser_page.get_by_role("button", name="Submit keys").click()

    expect(browser_page).to_have_url(re.compile(r"/keys/\d+/"))
    expect(browser_page.get_by_text(f"sk_test_…{secret[-4:]}").first).to_be_visible()
    expect(browser_page.get_by_text(secret)).to_have_count(0)


def test_the_browser_tells_the_server_its_zone_once(browser_page, demo):
    # The first page after signing in sends it.
    with browser_page.expect_response(re.compile(r"/account/time-zone/detected/$")) as sent:
        sign_in(browser_page, demo.owner)

    assert sent.value.status == 204
    zone = browser_page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    browser_page.goto("/account/")
    expect(browser_page.locator("#time-zone-detected")).to_have_count(0)
    demo.owner.refresh_from_db()
    assert demo.owner.time_zone == zone
