"""Kashier's key form in Chromium: the page's script reaches the server's verdict, in the
server's words, for every refusal; a merchant switches to Kashier, submits, and follows the
worker's check against the fake Kashier to its answer; a refused submission is summed up and
asks for the secrets again; no serious accessibility violation, and no horizontal scroll on a
phone. Also the Stripe page's permission checklist, which follows the integrations ticked."""

import re
import secrets

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from playwright.sync_api import expect

from credentials.models import Credential, Mode, VerificationState
from credentials.providers.kashier import REASONS
from credentials.providers.kashier_keys import (
    MAX_KEY_LENGTH,
    parse_merchant_id,
    parse_payment_api_key,
    parse_secret_key,
)
from merchants.models import Integration
from tests.browser.conftest import WAIT_MS, sign_in
from tests.browser.test_accessibility import report, serious_violations
from tests.browser.test_phone_width import wider_than_the_screen
from tests.factories import CredentialFactory, fake_key
from tests.fake_kashier import MERCHANT_ID, fake_payment_api_key, fake_secret_key

PARSERS = {
    "merchant_id": parse_merchant_id,
    "secret_key": parse_secret_key,
    "payment_api_key": parse_payment_api_key,
}
KEY_FIELDS = tuple(PARSERS)
NARROW_PHONE = {"width": 375, "height": 812}


def server_message(field: str, value: str) -> str:
    """Return what the server says about `value` in `field`: its refusal, or "" when it takes
    the value (the one source of the words)."""
    try:
        PARSERS[field](value)
    except ValidationError as refusal:
        return refusal.messages[0]
    return ""


def _values() -> list[tuple[str, str]]:
    """Return (field, value) pairs: every refusal each field makes, and values it takes."""
    secret, payment_api_key = fake_secret_key(), fake_payment_api_key()
    encrypted = "gAAAAAB" + "x" * 90 + "=="
    anywhere = [
        "a" * (MAX_KEY_LENGTH + 1),
        secret[:-1] + "é",
        f"“{secret}”",
        f'"{secret}"',
        f"'{payment_api_key}'",
        f"`{MERCHANT_ID}`",
        "Bearer " + secret,
        "bearer\t" + payment_api_key,
        # Whitespace to Python, not to JavaScript's \s.
        "Bearer\x1c" + secret,
        secret.replace("$", "\\$"),
        fake_key("sk_live_"),
        fake_key("RK_TEST_"),
        fake_key("pk_test_"),
        encrypted,
        secret[:40] + " " + secret[40:],
        secret[:40] + "\t" + secret[40:],
        secret[:40] + "\x00" + secret[40:],
        secret[:40] + "\x1f" + secret[40:],
        payment_api_key + "\x7f",
        secret[:40] + "\u2028" + secret[40:],
        "\ufeff" + secret,
        "my kashier key",
    ]
    own = {
        "secret_key": [
            secret,
            secret.upper(),
            f"{secrets.token_hex(16)}${secrets.token_hex(16)}",
            f"\u00a0 {secret}\u3000",
            payment_api_key,
            MERCHANT_ID,
            "mid-1-2",
            secrets.token_hex(16),
            secrets.token_hex(16) + "$",
            f"{secrets.token_hex(16)}${secrets.token_hex(15)}a",
            "my-kashier-secret",
            f"{secrets.token_hex(15)}${secrets.token_hex(48)}",
            f"{secrets.token_hex(16)}${secrets.token_hex(47)}xz",
            f"{secrets.token_hex(16)}:{secrets.token_hex(48)}",
            f"{secrets.token_hex(16)}$${secrets.token_hex(48)}",
        ],
        "payment_api_key": [
            payment_api_key,
            payment_api_key.upper(),
            f" {payment_api_key}\u2003",
            secret,
            f"{secrets.token_hex(16)}${secrets.token_hex(8)}",
            secrets.token_hex(16) + "$",
            MERCHANT_ID,
            "11111",
            payment_api_key[:-1],
            payment_api_key.replace("-", ""),
            "g" + payment_api_key[1:],
        ],
        "merchant_id": [
            MERCHANT_ID,
            "mid-3552-454",
            "Mid-0-1",
            f"\u00a0{MERCHANT_ID} ",
            secret,
            payment_api_key,
            secrets.token_hex(16) + "$",
            "3552-454",
            "MID-3552",
            "MID_3552_454",
            "MID-35a2-454",
            "MID-3552-454-1",
            "ABC",
        ],
    }
    return [(field, value) for field in KEY_FIELDS for value in anywhere + own[field]]


# What the page shows on a field: its message, its state, and the input's aria attributes.
_SHOWN = """name => {
    const input = document.getElementById("id_" + name);
    const box = document.getElementById("field-" + name);
    return {
        value: input.value,
        error: document.getElementById("id_" + name + "_error").textContent,
        hasError: box.classList.contains("has-error"),
        valid: box.classList.contains("valid"),
        ariaInvalid: input.getAttribute("aria-invalid"),
        describedBy: (input.getAttribute("aria-describedby") || "").split(" "),
    };
}"""


def shown_verdict(page, field: str) -> dict:
    return page.evaluate(_SHOWN, field)


def verdict_mismatch(shown: dict, field: str, expected: str) -> str:
    """Return how the page's verdict on `field` differs from the server's `expected` message
    ("" for a value it takes), or "" when they agree."""
    if expected:
        agrees = (
            shown["error"] == expected
            and shown["hasError"]
            and not shown["valid"]
            and shown["ariaInvalid"] == "true"
            and f"id_{field}_error" in shown["describedBy"]
        )
    else:
        agrees = (
            shown["error"] == ""
            and shown["valid"]
            and not shown["hasError"]
            and shown["ariaInvalid"] is None
            and f"id_{field}_error" not in shown["describedBy"]
        )
    if agrees:
        return ""
    return f"server: {expected or 'accepted'!r}; page: {shown!r}"


def open_kashier_form(page, demo):
    sign_in(page, demo.owner)
    page.goto(
        reverse("credentials:submit", kwargs={"slug": demo.merchant.slug}) + "?provider=kashier"
    )
    return page.locator("#key-form")


def fill_kashier_form(page, *, merchant_id: str, secret_key: str, payment_api_key: str):
    page.get_by_label("Merchant ID (MID)").fill(merchant_id)
    page.get_by_label("Secret key").fill(secret_key)
    page.get_by_label("Payment API key").fill(payment_api_key)
    page.get_by_role("radio", name="Test").check()


@pytest.fixture
def kashier_app(fake_kashier, live_app):
    """The live app with the fake Kashier hosts (test and live) its worker verifies with.

    Set up before the worker, so that it is stopped only after the worker is idle.
    """
    return fake_kashier


def test_the_script_gives_the_servers_verdict_in_its_words_for_each_value(browser_page, demo):
    open_kashier_form(browser_page, demo)
    mismatches = []

    for field, value in _values():
        browser_page.locator(f"#id_{field}").fill(value)
        shown = shown_verdict(browser_page, field)
        # The server is sent what the input holds (a text input drops line breaks).
        mismatch = verdict_mismatch(shown, field, server_message(field, shown["value"]))
        if mismatch:
            mismatches.append(f"{field} {value!r}: {mismatch}")

    assert not mismatches, "\n".join(mismatches)


def test_only_an_edited_field_is_checked_and_emptying_it_shows_neither_state(browser_page, demo):
    open_kashier_form(browser_page, demo)
    merchant_id = browser_page.get_by_label("Merchant ID (MID)")

    merchant_id.fill("ABC")

    expect(browser_page.locator("#field-secret_key")).not_to_have_class(re.compile("has-error"))
    expect(browser_page.locator("#field-merchant_id")).to_have_class(re.compile(r"\bhas-error\b"))
    merchant_id.fill("")
    expect(browser_page.locator("#field-merchant_id")).not_to_have_class(
        re.compile(r"\b(has-error|valid)\b")
    )
    expect(merchant_id).not_to_have_attribute("aria-invalid", "true")
    expect(browser_page.locator("#id_merchant_id_error")).to_have_text("")


def test_a_merchant_switches_to_kashier_submits_and_sees_kashiers_answer(
    kashier_app, browser_page, demo
):
    secret, payment_api_key = fake_secret_key(), fake_payment_api_key()
    kashier_app.test.accept(secret, merchant_id=MERCHANT_ID)
    sign_in(browser_page, demo.owner)
    browser_page.goto(reverse("credentials:submit", kwargs={"slug": demo.merchant.slug}))

    providers = browser_page.get_by_role("navigation", name="Provider")
    providers.get_by_role("link", name="Kashier").click()
    expect(browser_page).to_have_url(re.compile(r"\?provider=kashier$"))
    expect(browser_page.get_by_role("heading", level=1)).to_have_text("Submit Kashier keys")
    expect(providers.get_by_role("link", name="Kashier")).to_have_attribute("aria-current", "page")
    expect(browser_page.locator("#provider-help")).to_contain_text(
        "Where to find your Kashier keys"
    )
    fill_kashier_form(
        browser_page, merchant_id=MERCHANT_ID, secret_key=secret, payment_api_key=payment_api_key
    )
    for field in KEY_FIELDS:
        expect(browser_page.locator(f"#field-{field}")).to_have_class(re.compile(r"\bvalid\b"))
    integrations = browser_page.get_by_role("group", name="Integrations to switch on")
    for box in integrations.get_by_role("checkbox").all():
        box.uncheck()
    integrations.get_by_label("Online payments").check()
    integrations.get_by_label("Invoicing").check()
    browser_page.get_by_role("button", name="Submit keys").click()

    expect(browser_page).to_have_url(re.compile(r"/keys/\d+/\?submitted=1$"))
    status = browser_page.locator("#key-status")
    expect(status.locator("[data-verification-state]")).to_have_text("Verified", timeout=WAIT_MS)
    expect(status).to_contain_text(REASONS["verified"])
    expect(status).to_contain_text(MERCHANT_ID)
    payment_api_key_fact = status.locator("dt", has_text="Payment API key").locator(
        "xpath=following-sibling::dd[1]"
    )
    expect(payment_api_key_fact).to_contain_text("Format checked")
    expect(status).to_contain_text("Online payments, Invoicing")
    for value in (secret, payment_api_key):
        expect(browser_page.get_by_text(value)).to_have_count(0)
    credential = Credential.objects.get(merchant=demo.merchant)
    assert (credential.provider, credential.mode, credential.public_key) == (
        "kashier",
        Mode.TEST,
        MERCHANT_ID,
    )
    assert [mode for mode, _ in kashier_app.requests_for(secret)] == ["test"]


def test_a_refused_submission_sums_up_the_error_asks_for_the_secrets_again_and_keeps_the_mid(
    browser_page, demo
):
    open_kashier_form(browser_page, demo)
    fill_kashier_form(
        browser_page,
        merchant_id=MERCHANT_ID,
        # A UUID: the Payment API key, in the secret key's field.
        secret_key=fake_payment_api_key(),
        payment_api_key=fake_payment_api_key(),
    )
    typed_message = browser_page.locator("#id_secret_key_error").inner_text()

    browser_page.get_by_role("button", name="Submit keys").click()

    summary = browser_page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_text(f"Secret key: {typed_message}")
    expect(browser_page.locator("#id_secret_key_error")).to_have_text(typed_message)
    expect(browser_page.locator("#id_secret_key")).to_have_value("")
    expect(browser_page.locator("#id_payment_api_key")).to_have_value("")
    expect(browser_page.locator("#id_secret_key_again")).to_be_visible()
    expect(browser_page.locator("#id_payment_api_key_again")).to_be_visible()
    expect(browser_page.locator("#id_merchant_id")).to_have_value(MERCHANT_ID)
    expect(browser_page.get_by_role("radio", name="Test")).to_be_checked()
    summary.get_by_role("link").click()
    expect(browser_page.locator("#id_secret_key")).to_be_focused()
    assert not Credential.objects.exists()


def test_the_kashier_pages_have_no_serious_accessibility_violation(browser_page, demo):
    secret = fake_secret_key()
    credential = CredentialFactory(
        merchant=demo.merchant,
        submitted_by=demo.owner,
        provider="kashier",
        secret_value=secret,
        secret_hint=f"{secret[:4]}…{secret[-4:]}",
        public_key=MERCHANT_ID,
        extra_secret=fake_payment_api_key(),
        verification_state=VerificationState.VERIFIED,
        verification_reason=REASONS["verified"],
        account_id=MERCHANT_ID,
        account_name="Fake Kashier merchant",
    )
    open_kashier_form(browser_page, demo)
    found = {"empty": serious_violations(browser_page)}

    fill_kashier_form(
        browser_page,
        merchant_id=fake_secret_key(),
        secret_key="Bearer " + fake_secret_key(),
        payment_api_key="11111",
    )
    browser_page.get_by_label("Payment API key").blur()
    found["as you type"] = serious_violations(browser_page)
    browser_page.get_by_role("button", name="Submit keys").click()
    expect(browser_page.locator(".error-summary")).to_be_focused()
    found["refused by the server"] = serious_violations(browser_page)
    browser_page.goto(credential.get_absolute_url())
    expect(browser_page.locator("#key-status")).to_contain_text("Format checked")
    found["key page"] = serious_violations(browser_page)

    found = {where: violations for where, violations in found.items() if violations}
    assert not found, report(found)


def test_the_kashier_submit_page_has_no_horizontal_scroll_on_a_narrow_phone(open_page, demo):
    page = open_page(NARROW_PHONE)
    sign_in(page, demo.owner)
    address = (
        reverse("credentials:submit", kwargs={"slug": demo.merchant.slug}) + "?provider=kashier"
    )

    empty = wider_than_the_screen(page, [address])
    fill_kashier_form(
        page,
        merchant_id=fake_secret_key(),
        secret_key=fake_secret_key().replace("$", "\\$"),
        payment_api_key=fake_secret_key(),
    )
    page.get_by_role("button", name="Submit keys").click()
    expect(page.locator(".error-summary")).to_be_focused()
    measured = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")

    assert not empty, empty
    assert measured[0] <= measured[1], f"refused: {measured[0]}px wide on {measured[1]}px"


def test_the_stripe_checklist_shows_the_chosen_integrations_permissions_or_all_of_them(
    browser_page, demo
):
    sign_in(browser_page, demo.owner)
    browser_page.goto(reverse("credentials:submit", kwargs={"slug": demo.merchant.slug}))
    integrations = browser_page.get_by_role("group", name="Integrations to switch on")
    groups = browser_page.locator("#permission-checklist .permission-group")
    for box in integrations.get_by_role("checkbox").all():
        box.uncheck()

    expect(groups.filter(visible=True)).to_have_count(len(Integration.choices))
    integrations.get_by_label("Invoicing").check()
    expect(groups.filter(visible=True)).to_have_count(1)
    expect(groups.filter(visible=True)).to_have_attribute("data-integration", Integration.INVOICING)
    integrations.get_by_label("Payouts and reporting").check()
    expect(groups.filter(visible=True)).to_have_count(2)
    integrations.get_by_label("Invoicing").uncheck()
    integrations.get_by_label("Payouts and reporting").uncheck()
    expect(groups.filter(visible=True)).to_have_count(len(Integration.choices))
