"""Write the README's screenshots: the helpdesk queue, the merchant page and the key form, at
1280x800 and 390x844, into docs/screenshots/.

Not part of the suite (the file name is not test_*.py); run it by name, after a change to
those pages, and commit the PNGs:

    .venv/bin/python -m pytest -p no:cacheprovider tests/browser/screenshots.py

The data is made the way a merchant makes it: keys typed into the portal's form, verified
(or rejected) by the worker through the fake Stripe.
"""

import re
from pathlib import Path

from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, sign_in
from tests.factories import fake_key

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"1280": DESKTOP, "390": PHONE}


def submit(page, merchant, *, publishable: str, secret: str, note: str = "") -> None:
    """Submit a key pair through the portal's form, as the signed-in page's user."""
    page.goto(reverse("credentials:submit", kwargs={"slug": merchant.slug}))
    page.get_by_label("Publishable key").fill(publishable)
    page.get_by_label("Restricted key (recommended) or secret key").fill(secret)
    if note:
        page.get_by_label(re.compile("note", re.I)).fill(note)
    page.get_by_role("button", name="Submit keys").click()
    page.wait_for_url(re.compile(r"/keys/\d+/"))


def test_write_the_readme_screenshots(open_page, demo, browser_worker):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    owner_page = open_page()
    sign_in(owner_page, demo.owner)
    submit(
        owner_page,
        demo.merchant,
        publishable=fake_key("pk_test_"),
        secret=fake_key("sk_test_"),
        note="Please start with the webshop.",
    )
    # Keys ending in bad0 are rejected by the fake Stripe.
    submit(
        owner_page,
        demo.merchant,
        publishable=fake_key("pk_live_"),
        secret=fake_key("sk_live_")[:-4] + "bad0",
    )
    other_page = open_page()
    sign_in(other_page, demo.other_owner)
    submit(
        other_page,
        demo.other_merchant,
        publishable=fake_key("pk_live_"),
        secret=fake_key("sk_live_"),
    )
    browser_worker.wait_until_idle()

    for width, size in SIZES.items():
        page = open_page(size)
        sign_in(page, demo.owner)
        page.goto(reverse("credentials:merchant", kwargs={"slug": demo.merchant.slug}))
        page.screenshot(path=OUTPUT / f"merchant-page-{width}.png", full_page=True)

        page.goto(reverse("credentials:submit", kwargs={"slug": demo.merchant.slug}))
        page.get_by_label("Publishable key").fill(fake_key("pk_test_"))
        # A publishable key in the secret field: the form says so as it is typed.
        secret_field = page.get_by_label("Restricted key (recommended) or secret key")
        secret_field.fill(fake_key("pk_test_"))
        secret_field.blur()
        expect(secret_field).to_have_attribute("aria-invalid", "true")
        page.screenshot(path=OUTPUT / f"key-form-{width}.png", full_page=True)

        helpdesk = open_page(size)
        sign_in(helpdesk, demo.agent)
        helpdesk.goto(reverse("admin:credentials_credential_changelist"))
        helpdesk.screenshot(path=OUTPUT / f"helpdesk-queue-{width}.png", full_page=True)
