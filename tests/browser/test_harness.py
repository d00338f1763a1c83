"""The browser harness itself: signing in through the real forms, and the worker at work."""

import re

from playwright.sync_api import expect

from credentials.models import Credential, VerificationState
from tests.browser.conftest import sign_in
from tests.e2e.waiting import wait_until
from tests.factories import fake_key
from tests.helpers import reload


def test_a_merchant_signs_in_with_a_password_and_sees_only_their_merchants(browser_page, demo):
    sign_in(browser_page, demo.owner)

    main = browser_page.get_by_role("main")
    expect(main.get_by_role("link", name=demo.merchant.name)).to_be_visible()
    expect(main.get_by_text(demo.other_merchant.name)).to_have_count(0)


def test_staff_sign_in_with_a_code_and_land_on_the_helpdesk_admin(browser_page, demo):
    sign_in(browser_page, demo.agent)

    expect(browser_page).to_have_url(re.compile(r"/admin/$"))
    expect(browser_page.get_by_role("heading", name="Submissions and merchants")).to_be_visible()


def test_a_merchant_signing_in_to_the_admin_is_not_let_in(browser_page, demo):
    browser_page.goto("/admin/")

    expect(browser_page).to_have_url(re.compile(r"/admin/login/"))


def test_keys_submitted_in_the_browser_are_verified_by_the_worker_and_mailed(
    browser_page, demo, browser_worker, mailoutbox
):
    sign_in(browser_page, demo.owner)
    browser_page.goto(f"/m/{demo.merchant.slug}/keys/new/")
    browser_page.get_by_label("Publishable key").fill(fake_key("pk_test_"))
    browser_page.get_by_label("Restricted key (recommended) or secret key").fill(
        fake_key("sk_test_")
    )
    browser_page.get_by_role("button", name="Submit keys").click()
    browser_page.wait_for_url(re.compile(r"/keys/\d+/"))

    credential = Credential.objects.get(merchant=demo.merchant)
    wait_until(
        lambda: reload(credential).verification_state == VerificationState.VERIFIED,
        what="the worker to verify the key",
    )
    browser_worker.wait_until_idle()
    assert demo.owner.email in {address for mail in mailoutbox for address in mail.to}
