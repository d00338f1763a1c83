"""The helpdesk's day in a real browser (issue #14): the queue opens on what waits, filters,
acknowledges one submission or several, fits 1280 pixels; the lead reveals a secret and copies
it with the Copy button."""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from credentials.models import Credential, HelpdeskFlag, LifecycleState, Mode, VerificationState
from tests.browser.conftest import sign_in
from tests.factories import CredentialFactory, fake_key
from tests.helpers import totp_code, totp_device

QUEUE = "/admin/credentials/credential/"


def waiting_keys(demo, count: int = 3) -> list[Credential]:
    """Verified submissions nobody acknowledged, the first one overdue."""
    now = timezone.now()
    return [
        CredentialFactory(
            merchant=demo.merchant,
            submitted_by=demo.owner,
            mode=Mode.TEST,
            verification_state=VerificationState.VERIFIED,
            followup_due_at=now + timedelta(hours=number * 3 - 2),
        )
        for number in range(count)
    ]


def queue_row(page, credential):
    return page.locator("#result_list tbody tr").filter(has_text=credential.secret_hint)


def test_agent_opens_the_queue_on_what_waits_and_reaches_all_keys_from_the_filter(
    browser_page, demo
):
    waiting = waiting_keys(demo, 2)
    retired = CredentialFactory(
        merchant=demo.merchant,
        submitted_by=demo.owner,
        secret=None,
        lifecycle_state=LifecycleState.SUPERSEDED,
        verification_state=VerificationState.VERIFIED,
    )
    sign_in(browser_page, demo.agent)

    browser_page.get_by_role("link", name="2 waiting").click()

    expect(browser_page.locator("#result_list tbody tr")).to_have_count(2)
    expect(queue_row(browser_page, waiting[0])).to_contain_text("overdue 2 h")
    expect(queue_row(browser_page, retired)).to_have_count(0)
    browser_page.locator("#changelist-filter").get_by_role("link", name="All keys").click()
    expect(queue_row(browser_page, retired)).to_contain_text("Verified (replaced)")
    expect(browser_page.locator("#result_list tbody tr")).to_have_count(3)


def test_queue_columns_fit_a_1280_pixel_screen_beside_the_filters(browser_page, demo):
    for credential in waiting_keys(demo, 2):
        credential.helpdesk_flags = [HelpdeskFlag.DUPLICATE_ELSEWHERE]
        credential.save(update_fields=["helpdesk_flags"])
    sign_in(browser_page, demo.agent)

    browser_page.goto(QUEUE)

    expect(browser_page.locator("#result_list")).to_be_visible()
    fits = browser_page.evaluate(
        """() => {
            const table = document.querySelector('#result_list');
            const results = table.closest('.results');
            return document.documentElement.scrollWidth <= window.innerWidth
                && table.getBoundingClientRect().width <= results.clientWidth;
        }"""
    )
    assert fits, "the queue is wider than the screen"
    flag = browser_page.locator("#result_list img.keyhouse-flag-icon").first
    expect(flag).to_have_attribute("alt", re.compile("same key is active at another merchant"))


def test_agent_acknowledges_a_submission_from_its_page(browser_page, demo):
    credential = waiting_keys(demo, 1)[0]
    sign_in(browser_page, demo.agent)
    browser_page.goto(QUEUE)

    queue_row(browser_page, credential).get_by_role("link", name=credential.secret_hint).click()
    expect(browser_page.get_by_role("button", name="Save")).to_have_count(0)
    browser_page.get_by_role("button", name="Acknowledge (stop reminders)").click()

    expect(browser_page.locator(".messagelist")).to_contain_text("Acknowledged: no more reminders.")
    expect(browser_page.get_by_text("Acknowledged by helpdesk@demo.test")).to_be_visible()
    credential.refresh_from_db()
    assert credential.acknowledged_by == demo.agent


def test_agent_bulk_acknowledges_the_selected_submissions_and_is_told_how_many(browser_page, demo):
    waiting = waiting_keys(demo, 3)
    sign_in(browser_page, demo.agent)
    browser_page.goto(QUEUE)

    for credential in waiting[:2]:
        queue_row(browser_page, credential).locator("input.action-select").check()
    browser_page.select_option("select[name=action]", "acknowledge_selected")
    browser_page.get_by_role("button", name="Go").click()

    expect(browser_page.locator(".messagelist")).to_have_text("2 submissions acknowledged.")
    expect(browser_page.locator("#result_list tbody tr")).to_have_count(1)
    expect(queue_row(browser_page, waiting[2])).to_have_count(1)
    assert Credential.objects.filter(acknowledged_by=demo.agent).count() == 2


def test_agent_who_may_not_reveal_is_offered_no_reveal(browser_page, demo):
    credential = waiting_keys(demo, 1)[0]
    sign_in(browser_page, demo.agent)

    browser_page.goto(f"{QUEUE}{credential.pk}/change/")

    expect(browser_page.get_by_role("link", name="Reveal secret…")).to_have_count(0)


def test_lead_reveals_a_secret_and_copies_it_with_the_copy_button(browser_page, demo, live_app):
    secret = fake_key("sk_test_")
    credential = CredentialFactory(
        merchant=demo.merchant,
        submitted_by=demo.owner,
        secret_value=secret,
        verification_state=VerificationState.VERIFIED,
    )
    browser_page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=live_app.url
    )
    sign_in(browser_page, demo.lead)
    browser_page.goto(f"{QUEUE}{credential.pk}/change/")

    browser_page.get_by_role("link", name="Reveal secret…").click()
    browser_page.get_by_label("Why do you need it?").fill("Reinstalling the merchant's plugin.")
    browser_page.get_by_label("A fresh code from your authenticator app").fill(
        totp_code(totp_device(demo.lead))
    )
    browser_page.get_by_role("button", name="Reveal once").click()
    expect(browser_page.locator("#keyhouse-secret")).to_have_text(secret)
    browser_page.get_by_role("button", name="Copy").click()

    expect(browser_page.get_by_role("status")).to_contain_text("Copied")
    assert browser_page.evaluate("navigator.clipboard.readText()") == secret
    browser_page.get_by_role("link", name="Back to the submission").click()
    expect(browser_page.get_by_text(secret)).to_have_count(0)
