"""The merchant's pages in Chromium, with the worker verifying keys against the fake Stripe:
a submission followed to its outcome without reloading, rolling a key (verified and
rejected), reporting one compromised, inviting someone who accepts, a custom role, and a
member's role change."""

import re

from playwright.sync_api import expect

from credentials.models import VerificationState
from teams.permissions import INVITE_MEMBERS
from tests.browser.conftest import WAIT_MS, sign_in
from tests.e2e.waiting import wait_until
from tests.factories import (
    CredentialFactory,
    MembershipFactory,
    UserFactory,
    default_role,
    fake_key,
)
from tests.helpers import reload

PASSWORD = "a long and unguessable passphrase 42"


def submit_keys(page, *, secret: str) -> None:
    """Fill the key form that `page` shows with `secret` (and a publishable key of its mode)."""
    mode = "live" if "_live_" in secret else "test"
    page.get_by_label("Publishable key").fill(fake_key(f"pk_{mode}_"))
    page.get_by_label("Restricted key (recommended) or secret key").fill(secret)
    page.get_by_role("button", name="Submit keys").click()
    page.wait_for_url(re.compile(r"/keys/\d+/\?submitted=1$"))


def verified_key(merchant, owner):
    """A verified test key in use, which the fake Stripe accepts."""
    return CredentialFactory(
        merchant=merchant, submitted_by=owner, verification_state=VerificationState.VERIFIED
    )


def mode_card(page, mode: str = "test"):
    return page.locator(f"article.mode-{mode}")


def test_a_submission_shows_stripes_answer_without_reloading(browser_page, demo):
    sign_in(browser_page, demo.owner)
    browser_page.goto(f"/m/{demo.merchant.slug}/keys/new/")

    submit_keys(browser_page, secret=fake_key("sk_test_"))

    status = browser_page.locator("#key-status")
    # The page asks for the status by itself; nothing here reloads it.
    expect(status.locator("[data-verification-state]")).to_have_text("Verified", timeout=WAIT_MS)
    expect(status).not_to_contain_text("Keys received")
    expect(status.locator("dd.key-status")).to_have_text("Active")
    expect(browser_page.locator("#key-status-news")).to_contain_text("Stripe answered: Verified")


def test_rolling_a_key_replaces_it_once_the_new_one_is_verified(browser_page, demo):
    old = verified_key(demo.merchant, demo.owner)
    sign_in(browser_page, demo.owner)
    browser_page.goto(f"/m/{demo.merchant.slug}/")

    mode_card(browser_page).get_by_role("link", name="Roll key").click()
    expect(browser_page.get_by_role("heading", level=1)).to_have_text(
        f"Roll the test key {old.secret_hint}"
    )
    expect(browser_page.locator("#roll-notice")).to_contain_text(old.secret_hint)
    submit_keys(browser_page, secret=fake_key("sk_test_"))

    expect(browser_page.locator("#key-status [data-verification-state]")).to_have_text(
        "Verified", timeout=WAIT_MS
    )
    browser_page.goto(f"/m/{demo.merchant.slug}/")
    expect(mode_card(browser_page)).not_to_contain_text(old.secret_hint)
    history = browser_page.locator("section.history")
    expect(history.get_by_role("row").filter(has_text=old.secret_hint)).to_contain_text(
        "Replaced by a newer key"
    )


def test_a_rejected_roll_leaves_the_old_key_in_use_and_says_so(browser_page, demo, fake_stripe):
    old = verified_key(demo.merchant, demo.owner)
    new_secret = fake_key("sk_test_")
    fake_stripe.reject(new_secret)
    sign_in(browser_page, demo.owner)
    browser_page.goto(f"/m/{demo.merchant.slug}/")
    mode_card(browser_page).get_by_role("link", name="Roll key").click()

    submit_keys(browser_page, secret=new_secret)

    status = browser_page.locator("#key-status")
    expect(status.locator("[data-verification-state]")).to_have_text(
        "Rejected by Stripe", timeout=WAIT_MS
    )
    expect(status.locator("dd.key-status")).to_have_text("Not in use (Stripe rejected it)")
    expect(status).not_to_contain_text("will now be verified")
    expect(status.get_by_role("link", name="Report compromised")).to_have_count(0)
    browser_page.goto(f"/m/{demo.merchant.slug}/")
    card = mode_card(browser_page)
    expect(card).to_contain_text("The roll failed: Stripe rejected the new key")
    expect(card).to_contain_text(f"so {old.secret_hint} stays in use.")
    expect(browser_page.locator("h1 .state")).to_have_text("Verified")


def test_reporting_a_key_compromised_revokes_it_and_the_merchant_needs_attention(
    browser_page, demo
):
    key = verified_key(demo.merchant, demo.owner)
    sign_in(browser_page, demo.owner)
    browser_page.goto(f"/m/{demo.merchant.slug}/")

    mode_card(browser_page).get_by_role("link", name="Report compromised").click()
    browser_page.get_by_label(re.compile(r"^What happened")).fill("Pasted in a public chat.")
    browser_page.get_by_role("button", name="Revoke this key now").click()

    message = browser_page.locator(".message-warning")
    expect(message).to_contain_text(f"Warning: The key {key.secret_hint} is revoked and erased.")
    expect(browser_page.locator("h1 .state")).to_have_text("Needs attention")
    expect(mode_card(browser_page)).to_contain_text("No active test key")


def test_an_invited_person_accepts_and_joins_with_the_role_chosen(
    open_page, demo, mailoutbox, browser_worker
):
    owner_page = open_page()
    sign_in(owner_page, demo.owner)
    owner_page.goto(f"/m/{demo.merchant.slug}/team/invite/")
    # The least powerful role is chosen until someone picks another.
    expect(owner_page.get_by_role("radio", name=re.compile(r"^View only"))).to_be_checked()
    owner_page.get_by_label("Email address").fill("newcomer@example.test")
    owner_page.get_by_role("radio", name=re.compile(r"^Developer")).check()
    owner_page.get_by_role("button", name="Send invitation").click()
    expect(owner_page.locator(".message-success")).to_contain_text(
        "Invitation sent to newcomer@example.test as Developer"
    )

    wait_until(lambda: mails_to("newcomer@example.test", mailoutbox), what="the invitation")
    invitation_mail = mails_to("newcomer@example.test", mailoutbox)[0]
    (link,) = set(re.findall(r"(/invitations/[^/\s]+/)", invitation_mail))
    newcomer = open_page()
    newcomer.goto(link)
    newcomer.get_by_role("button", name="Send me a code").click()
    wait_until(lambda: len(mails_to("newcomer@example.test", mailoutbox)) == 2, what="the code")
    (code,) = re.findall(r"\b(\d{6})\b", mails_to("newcomer@example.test", mailoutbox)[1])
    newcomer.get_by_label("Code from the mail").fill(code)
    newcomer.get_by_label("Your name").fill("Nia Newcomer")
    newcomer.get_by_label("Password", exact=True).fill(PASSWORD)
    newcomer.get_by_label("Password again").fill(PASSWORD)
    newcomer.get_by_role("button", name="Create account and join").click()

    expect(newcomer.locator(".message-success")).to_contain_text(
        f"Welcome to {demo.merchant.name}."
    )
    owner_page.goto(f"/m/{demo.merchant.slug}/team/")
    expect(owner_page.get_by_role("row").filter(has_text="newcomer@example.test")).to_contain_text(
        "Developer"
    )


def mails_to(address: str, outbox) -> list[str]:
    return [message.body for message in outbox if address in message.to]


def test_revoking_an_invitation_asks_first(browser_page, demo):
    from tests.factories import InvitationFactory

    InvitationFactory(merchant=demo.merchant, invited_by=demo.owner, email="late@example.test")
    sign_in(browser_page, demo.owner)
    browser_page.goto(f"/m/{demo.merchant.slug}/team/")

    browser_page.get_by_role("row").filter(has_text="late@example.test").get_by_role(
        "link", name="Revoke"
    ).click()
    expect(browser_page.get_by_role("heading", level=1)).to_have_text(
        "Revoke the invitation to late@example.test?"
    )
    browser_page.get_by_role("button", name="Revoke the invitation").click()

    expect(browser_page.locator(".message-success")).to_contain_text(
        "Invitation to late@example.test revoked."
    )


def test_a_custom_role_needs_view_keys_to_submit_keys_and_is_then_created(browser_page, demo):
    sign_in(browser_page, demo.owner)
    browser_page.goto(f"/m/{demo.merchant.slug}/roles/new/")
    browser_page.get_by_label("Name").fill("Key sender")
    browser_page.get_by_role("checkbox", name=re.compile(r"^View merchant")).check()
    browser_page.get_by_role("checkbox", name=re.compile(r"^Submit and roll keys")).check()

    browser_page.get_by_role("button", name="Save role").click()

    expect(browser_page.get_by_text(re.compile("Include “View keys” with"))).not_to_have_count(0)
    browser_page.get_by_role("checkbox", name=re.compile(r"^View keys")).check()
    browser_page.get_by_role("button", name="Save role").click()
    expect(browser_page.locator(".message-success")).to_contain_text("Role “Key sender” created.")
    row = browser_page.get_by_role("row").filter(has_text="Key sender")
    expect(row).to_have_count(1)


def test_an_owner_changes_a_members_role(browser_page, demo):
    member = UserFactory(email="dev@example.test")
    MembershipFactory(user=member, merchant=demo.merchant, role=default_role("developer"))
    sign_in(browser_page, demo.owner)
    browser_page.goto(f"/m/{demo.merchant.slug}/team/")

    browser_page.get_by_role("row").filter(has_text="dev@example.test").get_by_role(
        "link", name="Change role"
    ).click()
    expect(browser_page.get_by_role("radio", name=re.compile(r"^Developer"))).to_be_checked()
    browser_page.get_by_role("radio", name=re.compile(r"^Support")).check()
    browser_page.get_by_role("button", name="Save role").click()

    expect(browser_page.locator(".message-success")).to_contain_text(
        "dev@example.test is now Support."
    )
    expect(browser_page.get_by_role("row").filter(has_text="dev@example.test")).to_contain_text(
        "Support"
    )
    assert not reload(member).has_perm(INVITE_MEMBERS, demo.merchant)
