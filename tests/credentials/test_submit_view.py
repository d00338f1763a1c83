"""Submitting keys through the portal: what is accepted, each refusal, and who may submit.

Every refusal is checked through the real view: the page says what is wrong, nothing is
saved, and the secret that was posted is nowhere in the page.
"""

import html
import json
import re
from html.parser import HTMLParser

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from audit.refusals import Refused
from credentials.models import Credential, Kind, LifecycleState, VerificationState
from credentials.providers.stripe import StripeProvider
from credentials.providers.stripe_keys import (
    MESSAGES,
    browser_rules,
    check_same_mode,
    parse_publishable_key,
    parse_secret_key,
)
from credentials.providers.stripe_permissions import checklist
from credentials.services.submission import credential_submit
from teams.permissions import SUBMIT_KEYS
from tests.factories import CredentialFactory, fake_key


def submit_url(merchant):
    return reverse("credentials:submit", kwargs={"slug": merchant.slug})


@pytest.fixture
def keys():
    return {"publishable_key": fake_key("pk_test_"), "secret_key": fake_key("sk_test_")}


def post_keys(client, merchant, **fields):
    data = {"requested_integrations": ["online_payments"], "note": "", **fields}
    return client.post(submit_url(merchant), data)


class _FormValues(HTMLParser):
    """Collect what the rendered form would send back: input values, checked boxes, notes."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and "name" in attrs:
            if attrs.get("type") == "checkbox" and "checked" not in attrs:
                return
            self.values.setdefault(attrs["name"], []).append(attrs.get("value") or "")
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.values[self._textarea] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea][0] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None


def form_values(response) -> dict[str, list[str]]:
    parser = _FormValues()
    parser.feed(response.content.decode())
    return parser.values


def rendered_value(response, name) -> str:
    # A textarea starts with a newline that browsers (and Django) drop.
    return "".join(form_values(response).get(name, [""])).removeprefix("\n")


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def assert_not_in_page(response, value):
    """Assert that neither `value` nor any long run of its letters and digits is shown.

    Only the last four characters of a key may be shown (in its hint), so each run is checked
    without them.
    """
    raw = response.content.decode()
    for page in (raw, html.unescape(raw)):
        assert value not in page
        assert value.strip() not in page
        for run in re.findall(r"[A-Za-z0-9]{12,}", value):
            assert run[:-4] not in page


def assert_refused(response, *, says, hidden=()):
    """Assert a re-rendered form with the message `says`, nothing saved, `hidden` not shown."""
    assert response.status_code == 200
    assert "Submit Stripe keys" in page_text(response)
    assert says in page_text(response)
    assert Credential.objects.count() == 0
    for value in hidden:
        assert_not_in_page(response, value)


def with_inner(char, prefix="sk_test_"):
    return fake_key(prefix, 16) + char + fake_key("", 16)


def fernet_token() -> str:
    return Fernet(Fernet.generate_key()).encrypt(fake_key("sk_live_").encode()).decode()


# Accepted submissions


def test_owner_submits_keys_and_sees_only_the_hint(owner_client, merchant, keys):
    response = post_keys(owner_client, merchant, **keys)

    credential = Credential.objects.get()
    assert response.status_code == 302
    assert response.url == credential.get_absolute_url() + "?submitted=1"
    page = owner_client.get(response.url)
    body = page.content.decode()
    assert "Keys received" in body
    assert f"sk_test_…{keys['secret_key'][-4:]}" in body
    assert keys["secret_key"] not in body
    assert credential.secret == keys["secret_key"]
    assert credential.verification_state == VerificationState.PENDING
    assert credential.mode == "test"
    assert credential.submitted_by.email == "owner@demo.test"


def test_surrounding_whitespace_is_trimmed_and_the_keys_are_accepted(owner_client, merchant, keys):
    response = post_keys(
        owner_client,
        merchant,
        publishable_key=f"  {keys['publishable_key']}\n",
        secret_key=f"\t {keys['secret_key']} \r\n",
    )

    assert response.status_code == 302
    credential = Credential.objects.get()
    assert credential.public_key == keys["publishable_key"]
    assert credential.secret == keys["secret_key"]


@pytest.mark.parametrize("mode", ["test", "live"])
def test_restricted_key_is_accepted_with_kind_restricted_and_its_hint(owner_client, merchant, mode):
    secret = fake_key(f"rk_{mode}_", 28) + "abcd"

    response = post_keys(
        owner_client, merchant, publishable_key=fake_key(f"pk_{mode}_"), secret_key=secret
    )

    assert response.status_code == 302
    credential = Credential.objects.get()
    assert credential.kind == Kind.RESTRICTED
    assert credential.mode == mode
    assert credential.secret_hint == f"rk_{mode}_…abcd"
    assert credential.secret == secret


def test_live_keys_are_accepted_in_live_mode(owner_client, merchant):
    secret = fake_key("sk_live_")

    response = post_keys(
        owner_client, merchant, publishable_key=fake_key("pk_live_"), secret_key=secret
    )

    assert response.status_code == 302
    credential = Credential.objects.get()
    assert credential.mode == "live"
    assert credential.kind == Kind.SECRET
    assert credential.secret_hint == f"sk_live_…{secret[-4:]}"


def test_keys_with_exactly_24_characters_after_the_prefix_are_accepted(owner_client, merchant):
    keys = {"publishable_key": fake_key("pk_test_", 24), "secret_key": fake_key("sk_test_", 24)}

    response = post_keys(owner_client, merchant, **keys)

    assert response.status_code == 302
    assert Credential.objects.get().secret == keys["secret_key"]


def test_keys_of_exactly_255_characters_are_accepted(owner_client, merchant):
    keys = {
        "publishable_key": fake_key("pk_live_", 255 - 8),
        "secret_key": fake_key("sk_live_", 255 - 8),
    }

    response = post_keys(owner_client, merchant, **keys)

    assert response.status_code == 302
    credential = Credential.objects.get()
    assert credential.public_key == keys["publishable_key"]
    assert credential.secret == keys["secret_key"]


def test_integrations_and_note_chosen_are_stored(owner_client, merchant, keys):
    response = post_keys(
        owner_client,
        merchant,
        **keys,
        requested_integrations=["invoicing", "subscriptions"],
        note="Please switch on invoicing first.",
    )

    assert response.status_code == 302
    credential = Credential.objects.get()
    assert sorted(credential.requested_integrations) == ["invoicing", "subscriptions"]
    assert credential.note == "Please switch on invoicing first."


# Refusals of the key values


@pytest.mark.parametrize("field", ["publishable_key", "secret_key"])
@pytest.mark.parametrize("char", [" ", "\n", "\t"], ids=["space", "newline", "tab"])
def test_key_with_inner_whitespace_is_refused_and_nothing_saved(
    owner_client, merchant, keys, field, char
):
    prefix = "pk_test_" if field == "publishable_key" else "sk_test_"
    posted = {**keys, field: with_inner(char, prefix)}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(
        response,
        says="This contains a space, line break or other invisible character inside the key",
        hidden=[posted["secret_key"], posted[field]],
    )


@pytest.mark.parametrize("field", ["publishable_key", "secret_key"])
@pytest.mark.parametrize(
    "make",
    [
        lambda prefix: with_inner("é", prefix),
        lambda prefix: "“" + fake_key(prefix) + "”",
        lambda prefix: with_inner("\u0430", prefix),  # U+0430: Cyrillic, looks like "a"
        lambda prefix: prefix.replace("k", "\u043a") + fake_key("", 32),  # Cyrillic "к"
    ],
    ids=["accented", "curly-quotes", "cyrillic-in-body", "cyrillic-in-prefix"],
)
def test_key_with_non_ascii_characters_is_refused_and_nothing_saved(
    owner_client, merchant, keys, field, make
):
    posted = {**keys, field: make("pk_test_" if field == "publishable_key" else "sk_test_")}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(
        response,
        says="This contains characters that Stripe keys never have",
        hidden=[posted["secret_key"], posted[field]],
    )


@pytest.mark.parametrize("field", ["publishable_key", "secret_key"])
@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f"], ids=["nul", "soh", "esc", "del"])
def test_key_with_control_character_is_refused_with_our_message_and_nothing_saved(
    owner_client, merchant, keys, field, char
):
    prefix = "pk_test_" if field == "publishable_key" else "sk_test_"
    posted = {**keys, field: with_inner(char, prefix)}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(
        response,
        says="This contains a space, line break or other invisible character inside the key",
        hidden=[posted["secret_key"], posted[field]],
    )
    assert "Null characters are not allowed" not in page_text(response)


def test_secret_key_in_the_publishable_field_is_refused_and_not_shown_again(owner_client, merchant):
    secret_in_wrong_field = fake_key("sk_live_")
    secret = fake_key("sk_live_")

    response = post_keys(
        owner_client, merchant, publishable_key=secret_in_wrong_field, secret_key=secret
    )

    assert_refused(
        response,
        says="This is a secret key; paste it in the secret key field",
        hidden=[secret_in_wrong_field, secret],
    )
    assert rendered_value(response, "publishable_key") == ""


def test_publishable_key_in_the_secret_field_is_refused_and_nothing_saved(owner_client, merchant):
    publishable = fake_key("pk_test_")
    publishable_in_wrong_field = fake_key("pk_test_")

    response = post_keys(
        owner_client,
        merchant,
        publishable_key=publishable,
        secret_key=publishable_in_wrong_field,
    )

    assert_refused(
        response,
        says="This is a publishable key; paste it in the publishable key field",
        hidden=[publishable_in_wrong_field],
    )
    assert rendered_value(response, "publishable_key") == publishable


def test_keys_swapped_between_both_fields_are_refused_for_each_field(owner_client, merchant):
    secret = fake_key("rk_test_")
    publishable = fake_key("pk_test_")

    response = post_keys(owner_client, merchant, publishable_key=secret, secret_key=publishable)

    assert_refused(
        response,
        says="This is a restricted key; paste it in the secret key field",
        hidden=[secret],
    )
    assert "This is a publishable key; paste it in the publishable key field" in (
        page_text(response)
    )
    assert rendered_value(response, "publishable_key") == ""


@pytest.mark.parametrize(
    ("publishable_prefix", "secret_prefix", "says"),
    [
        (
            "pk_test_",
            "sk_live_",
            "The secret key is a live key but the publishable key is a test key",
        ),
        (
            "pk_live_",
            "sk_test_",
            "The secret key is a test key but the publishable key is a live key",
        ),
        (
            "pk_test_",
            "rk_live_",
            "The restricted key is a live key but the publishable key is a test key",
        ),
    ],
)
def test_keys_of_different_modes_are_refused_saying_which_is_which(
    owner_client, merchant, publishable_prefix, secret_prefix, says
):
    secret = fake_key(secret_prefix)

    response = post_keys(
        owner_client, merchant, publishable_key=fake_key(publishable_prefix), secret_key=secret
    )

    assert_refused(response, says=says, hidden=[secret])
    assert "Use both keys from the same mode" in page_text(response)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("MySecretKeyFromStripe", "This is not a Stripe secret key: it should start with sk_"),
        ("sk_prod_" + "a1" * 16, "This is not a Stripe secret key: it should start with sk_"),
        ("whsec_" + "b2" * 16, "This is not a Stripe secret key: it should start with sk_"),
        ("sk_test_", "This is only the beginning of a key (“sk_test_”)"),
    ],
    ids=["random-text", "sk_prod-prefix", "webhook-secret", "prefix-only"],
)
def test_secret_that_is_not_a_stripe_key_is_refused_and_nothing_saved(
    owner_client, merchant, keys, value, says
):
    response = post_keys(
        owner_client, merchant, publishable_key=keys["publishable_key"], secret_key=value
    )

    # A bare prefix is no secret, and the message names it.
    assert_refused(response, says=says, hidden=[value] if value != "sk_test_" else [])


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("stripe", "This is not a Stripe publishable key: it should start with pk_test_ or"),
        ("pk_prod_" + "c3" * 16, "This is not a Stripe publishable key: it should start with"),
        ("pk_live_", "This is only the beginning of a key (“pk_live_”)"),
    ],
    ids=["random-text", "pk_prod-prefix", "prefix-only"],
)
def test_publishable_that_is_not_a_stripe_key_is_refused_and_nothing_saved(
    owner_client, merchant, keys, value, says
):
    response = post_keys(
        owner_client, merchant, publishable_key=value, secret_key=keys["secret_key"]
    )

    assert_refused(response, says=says, hidden=[keys["secret_key"]])


@pytest.mark.parametrize("field", ["publishable_key", "secret_key"])
@pytest.mark.parametrize("quote", ['"', "'"], ids=["double", "single"])
def test_key_in_quotation_marks_is_refused_saying_to_remove_them(
    owner_client, merchant, keys, field, quote
):
    posted = {**keys, field: quote + keys[field] + quote}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(
        response,
        says="This has quotation marks around the key. Remove the quotation marks",
        hidden=[keys["secret_key"], posted[field]],
    )


@pytest.mark.parametrize("field", ["publishable_key", "secret_key"])
def test_encrypted_value_is_refused_in_either_field_and_nothing_saved(
    owner_client, merchant, keys, field
):
    token = fernet_token()
    assert token.startswith("gAAAA")
    posted = {**keys, field: token}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(
        response,
        says="This looks like an encrypted value, not a Stripe key",
        hidden=[token, posted["secret_key"]],
    )


@pytest.mark.parametrize("field", ["publishable_key", "secret_key"])
def test_key_with_23_characters_after_the_prefix_is_refused_as_too_short(
    owner_client, merchant, keys, field
):
    prefix = "pk_test_" if field == "publishable_key" else "sk_test_"
    posted = {**keys, field: fake_key(prefix, 23)}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(
        response,
        says="This key is too short: Stripe keys have at least 24 letters and digits",
        hidden=[posted["secret_key"], posted[field]],
    )
    assert "this one has 23" in page_text(response)


@pytest.mark.parametrize("field", ["publishable_key", "secret_key"])
def test_key_over_255_characters_is_refused_with_our_message(owner_client, merchant, keys, field):
    prefix = "pk_live_" if field == "publishable_key" else "sk_live_"
    posted = {**keys, field: fake_key(prefix, 256 - 8)}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(
        response,
        says="This is 256 characters long, more than any Stripe key (255 at most)",
        hidden=[posted["secret_key"], posted[field]],
    )
    assert "Ensure this value has at most" not in page_text(response)


@pytest.mark.parametrize("field", ["publishable_key", "secret_key"])
@pytest.mark.parametrize("char", ["-", "_", "."])
def test_key_with_other_than_letters_and_digits_after_the_prefix_is_refused(
    owner_client, merchant, keys, field, char
):
    prefix = "pk_test_" if field == "publishable_key" else "sk_test_"
    posted = {**keys, field: with_inner(char, prefix)}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(
        response,
        says=f"After “{prefix}” a Stripe key has only letters and digits",
        hidden=[posted["secret_key"], posted[field]],
    )


# Refusals of the other fields


@pytest.mark.parametrize(
    ("missing", "says"),
    [
        ("publishable_key", "Paste the publishable key: it starts with pk_test_ or pk_live_."),
        (
            "secret_key",
            "Paste the restricted key (rk_test_ or rk_live_) or the secret key (sk_…).",
        ),
    ],
)
def test_missing_key_is_refused_saying_what_to_paste(owner_client, merchant, keys, missing, says):
    posted = {**keys, missing: "  "}

    response = post_keys(owner_client, merchant, **posted)

    assert_refused(response, says=says, hidden=[keys["secret_key"]])


def test_empty_form_is_refused_with_a_message_for_each_field(owner_client, merchant):
    response = owner_client.post(submit_url(merchant), {})

    assert_refused(response, says="Paste the publishable key")
    assert "Paste the restricted key" in page_text(response)
    assert "Choose at least one integration" in page_text(response)


def test_submission_without_an_integration_is_refused_and_nothing_saved(
    owner_client, merchant, keys
):
    response = post_keys(owner_client, merchant, **keys, requested_integrations=[])

    assert_refused(
        response,
        says="Choose at least one integration so the helpdesk knows what to set up.",
        hidden=[keys["secret_key"]],
    )
    assert rendered_value(response, "publishable_key") == keys["publishable_key"]


def test_unknown_integration_is_refused_and_not_shown(owner_client, merchant, keys):
    response = post_keys(
        owner_client, merchant, **keys, requested_integrations=["online_payments", "crypto_mining"]
    )

    assert_refused(response, says="Choose integrations from the list.", hidden=[keys["secret_key"]])
    assert "crypto_mining" not in page_text(response)


@pytest.mark.parametrize(
    "make_note",
    [
        lambda secret: f"Our key is {secret}, thanks",
        lambda secret: f"old_key_{secret}",
        lambda secret: f"See\n{secret}\n" + "x" * 2000,
    ],
    ids=["in-a-sentence", "after-an-underscore", "in-a-note-also-too-long"],
)
@pytest.mark.parametrize("prefix", ["sk_live_", "rk_test_"])
def test_note_containing_a_secret_key_is_refused_and_not_shown_again(
    owner_client, merchant, prefix, make_note
):
    secret_in_note = fake_key(prefix)
    keys = {"publishable_key": fake_key("pk_test_"), "secret_key": fake_key("sk_test_")}
    note = make_note(secret_in_note)

    response = post_keys(owner_client, merchant, **keys, note=note)

    assert_refused(
        response,
        says="Remove the key from the note",
        hidden=[secret_in_note, keys["secret_key"]],
    )
    assert rendered_value(response, "note") == ""
    assert rendered_value(response, "publishable_key") == keys["publishable_key"]


def test_note_over_2000_characters_is_refused_but_shown_again(owner_client, merchant, keys):
    note = "Please call before switching on.\n" + "n" * (2001 - 33)
    assert len(note) == 2001

    response = post_keys(owner_client, merchant, **keys, note=note)

    assert_refused(
        response,
        says="Keep the note under 2000 characters (it has 2001).",
        hidden=[keys["secret_key"]],
    )
    assert rendered_value(response, "note") == note


# What the page keeps after a refusal


def test_valid_publishable_key_integrations_and_note_are_kept_after_the_secret_is_refused(
    owner_client, merchant
):
    publishable = fake_key("pk_live_")
    refused_secret = fake_key("sk_live_", 10)

    response = post_keys(
        owner_client,
        merchant,
        publishable_key=publishable,
        secret_key=refused_secret,
        requested_integrations=["in_person", "invoicing"],
        note="Terminal in the shop first.",
    )

    assert_refused(response, says="This key is too short", hidden=[refused_secret])
    values = form_values(response)
    assert values["publishable_key"] == [publishable]
    assert values["secret_key"] == [""]
    assert sorted(values["requested_integrations"]) == ["in_person", "invoicing"]
    assert rendered_value(response, "note") == "Terminal in the shop first."


# Duplicates


def test_secret_already_active_for_this_merchant_and_mode_is_refused_as_a_duplicate(
    owner_client, merchant, keys
):
    first = post_keys(owner_client, merchant, **keys)
    assert first.status_code == 302

    response = post_keys(
        owner_client,
        merchant,
        publishable_key=fake_key("pk_test_"),
        secret_key=keys["secret_key"],
    )

    assert response.status_code == 200
    assert "This secret key is already stored for this merchant in test mode" in (
        page_text(response)
    )
    assert f"sk_test_…{keys['secret_key'][-4:]}" in page_text(response)
    assert Credential.objects.count() == 1
    assert_not_in_page(response, keys["secret_key"])


def test_secret_active_for_another_merchant_is_accepted(
    owner_client, merchant, other_merchant, other_owner, client_for, keys
):
    CredentialFactory(merchant=other_merchant, secret_value=keys["secret_key"])

    response = post_keys(owner_client, merchant, **keys)

    assert response.status_code == 302
    assert Credential.objects.filter(merchant=merchant).count() == 1
    assert Credential.objects.count() == 2


def test_secret_of_a_superseded_credential_is_accepted_again(owner_client, merchant, keys):
    CredentialFactory(
        merchant=merchant,
        secret_value=keys["secret_key"],
        secret=None,
        lifecycle_state=LifecycleState.SUPERSEDED,
    )

    response = post_keys(owner_client, merchant, **keys)

    assert response.status_code == 302
    assert Credential.objects.active().get().secret == keys["secret_key"]
    assert Credential.objects.count() == 2


# Who may submit


def test_owner_sees_the_empty_form(owner_client, merchant):
    response = owner_client.get(submit_url(merchant))

    assert response.status_code == 200
    values = form_values(response)
    assert values["publishable_key"] == [""]
    assert values["secret_key"] == [""]
    assert values["requested_integrations"] == ["online_payments"]


def test_developer_can_submit_keys(merchant, member_factory, client_for, keys):
    developer = member_factory(merchant, "developer")
    client = client_for(developer)

    assert client.get(submit_url(merchant)).status_code == 200
    response = post_keys(client, merchant, **keys)

    assert response.status_code == 302
    assert Credential.objects.get().submitted_by == developer


@pytest.mark.parametrize("role", ["support", "view-only"])
def test_member_without_submit_permission_gets_403_and_nothing_is_saved(
    merchant, member_factory, client_for, keys, role
):
    client = client_for(member_factory(merchant, role))

    assert client.get(submit_url(merchant)).status_code == 403
    response = post_keys(client, merchant, **keys)

    assert response.status_code == 403
    assert Credential.objects.count() == 0
    assert_not_in_page(response, keys["secret_key"])


@pytest.mark.parametrize("role", ["support", "view-only"])
def test_the_service_itself_refuses_a_member_without_submit_permission_and_audits_it(
    merchant, member_factory, keys, role
):
    member = member_factory(merchant, role)

    with pytest.raises(Refused):
        credential_submit(
            merchant=merchant,
            keys=StripeProvider().submitted_keys(
                {
                    "publishable_key": parse_publishable_key(keys["publishable_key"]),
                    "secret_key": parse_secret_key(keys["secret_key"]),
                }
            ),
            requested_integrations=["online_payments"],
            note="",
            actor=member,
        )

    assert Credential.objects.count() == 0
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED)
    assert (event.actor, event.merchant) == (member, merchant)
    assert event.target == "credential_submit"
    assert event.details["permission"] == SUBMIT_KEYS
    assert keys["secret_key"] not in str(event.details)


def test_anonymous_visitor_is_redirected_to_log_in_and_nothing_is_saved(client, merchant, keys):
    url = submit_url(merchant)

    get = client.get(url)
    post = post_keys(client, merchant, **keys)

    for response in (get, post):
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/?next=")
    assert Credential.objects.count() == 0


def test_owner_of_another_merchant_gets_404_and_nothing_is_saved(
    other_owner, client_for, merchant, keys
):
    client = client_for(other_owner)

    assert client.get(submit_url(merchant)).status_code == 404
    response = post_keys(client, merchant, **keys)

    assert response.status_code == 404
    assert Credential.objects.count() == 0
    assert_not_in_page(response, keys["secret_key"])


def test_no_field_carries_a_browser_maxlength_that_would_cut_a_paste_silently(
    owner_client, merchant
):
    body = owner_client.get(submit_url(merchant)).content.decode()

    assert "maxlength" not in body


# The summary of errors, the secret asked for again, and one source of the messages


def error_summary(response) -> str:
    match = re.search(r'<div class="error-summary".*?</div>', response.content.decode(), re.S)
    return match[0] if match else ""


def test_a_refused_submission_sums_up_each_error_with_a_link_to_its_field(
    owner_client, merchant, keys
):
    response = post_keys(
        owner_client,
        merchant,
        publishable_key="pk_test_abc",
        secret_key=keys["publishable_key"],
        requested_integrations=[],
    )

    summary = error_summary(response)
    assert 'tabindex="-1"' in summary
    assert 'href="#id_publishable_key"' in summary
    assert 'href="#id_secret_key"' in summary
    assert 'href="#id_requested_integrations"' in summary
    with pytest.raises(ValidationError) as refusal:
        parse_publishable_key("pk_test_abc")
    assert refusal.value.messages[0] in html.unescape(summary)
    assert "keyhouse/js/form-errors.js" in response.content.decode()


def test_the_empty_form_has_no_summary_and_does_not_ask_for_the_secret_again(
    owner_client, merchant
):
    response = owner_client.get(submit_url(merchant))

    assert error_summary(response) == ""
    assert "Paste the secret again" not in page_text(response)


def test_a_refused_submission_asks_for_the_secret_again_without_showing_it(
    owner_client, merchant, keys
):
    response = post_keys(
        owner_client, merchant, publishable_key="pk_test_abc", secret_key=keys["secret_key"]
    )

    assert "Paste the secret again" in page_text(response)
    assert rendered_value(response, "secret_key") == ""
    assert_not_in_page(response, keys["secret_key"])
    # The request is part of what describes the secret's field.
    assert 'aria-describedby="id_secret_key_again' in response.content.decode()


def test_no_secret_sent_is_not_asked_for_again_but_refused_as_missing(owner_client, merchant, keys):
    response = post_keys(owner_client, merchant, publishable_key=keys["publishable_key"])

    assert "Paste the restricted key (rk_test_ or rk_live_)" in page_text(response)
    assert "Paste the secret again" not in page_text(response)


def test_keys_of_different_modes_are_refused_beside_the_secret_field(owner_client, merchant, keys):
    response = post_keys(
        owner_client,
        merchant,
        publishable_key=keys["publishable_key"],
        secret_key=fake_key("sk_live_"),
    )

    assert "Use both keys from the same mode" in response.context["form"].errors["secret_key"][0]
    assert 'href="#id_secret_key"' in error_summary(response)


def test_a_field_refused_by_the_server_is_marked_invalid_and_described_by_its_error(
    owner_client, merchant, keys
):
    response = post_keys(
        owner_client, merchant, publishable_key="pk_test_abc", secret_key=keys["secret_key"]
    )

    body = response.content.decode()
    field = re.search(r'<input[^>]*name="publishable_key"[^>]*>', body)[0]
    assert 'aria-invalid="true"' in field
    assert "id_publishable_key_error" in field
    assert 'id="id_publishable_key_error"' in body
    assert 'id="id_publishable_key_helptext"' in body


def test_the_page_gives_its_script_the_servers_own_messages(owner_client, merchant):
    response = owner_client.get(submit_url(merchant))

    exported = re.search(
        r'<script id="key-form-rules" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    rules = json.loads(exported[1])
    # The key rules and messages, the restricted-key checklist and the secret-key policy.
    assert {name: rules[name] for name in browser_rules()} == browser_rules()
    assert rules["permissions"] == checklist()
    assert rules["secret_key_policy"] == "allow"
    assert set(browser_rules()["messages"]) == set(MESSAGES)


def test_every_message_the_script_can_show_is_one_the_server_gives(keys):
    """Each message the catalogue holds is reached by the server's own parser."""
    refusals = {
        "publishable_key": [
            "x" * 300,
            "pk_test_é",
            "my key",
            "pk_test_ab cd",
            "'pk_test_abc'",
            "gAAAAABtoken",
            "nothing",
            fake_key("sk_test_"),
            "pk_test_",
            "pk_test_abc-def",
            "pk_test_abc",
        ],
        "secret_key": [keys["publishable_key"]],
    }
    parsers = {"publishable_key": parse_publishable_key, "secret_key": parse_secret_key}
    given = set()
    for field, values in refusals.items():
        for value in values:
            with pytest.raises(ValidationError) as refusal:
                parsers[field](value)
            given.add(refusal.value.messages[0])
    with pytest.raises(ValidationError) as refusal:
        check_same_mode(
            publishable=parse_publishable_key(keys["publishable_key"]),
            secret=parse_secret_key(fake_key("sk_live_")),
        )
    given.add(refusal.value.messages[0])

    assert len(given) == len(MESSAGES)


def test_the_other_merchants_owner_gets_no_summary_but_a_404(
    client_for, other_owner, merchant, keys
):
    response = post_keys(client_for(other_owner), merchant, publishable_key="pk_test_abc")

    assert response.status_code == 404
    assert error_summary(response) == ""
