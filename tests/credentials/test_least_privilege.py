"""Least privilege for Stripe keys, as merchants and the helpdesk meet it: the submit page's
advice and checklist, a restricted key submitted through the portal and verified by the worker
(what it is missing, on the key's page, in both mails and in the admin), the daily re-check
catching permissions switched on or off, and STRIPE_SECRET_KEY_POLICY end to end.

The provider on its own (probes, reasons, flags per policy) is tested in
`test_stripe_restricted.py`; these go through the portal, the services and the admin.
"""

import html
import json
import re
from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from credentials.models import Credential, HelpdeskFlag, Kind, VerificationState
from credentials.providers.stripe import (
    REASONS,
    SECRET_KEY_ADVICE,
    SECRET_KEY_REFUSED,
    StripeProvider,
)
from credentials.providers.stripe_keys import parse_publishable_key, parse_secret_key
from credentials.providers.stripe_permissions import NEEDS, PERMISSIONS, permissions_for
from credentials.services.notifications import HELPDESK_SUBMISSION, credential_topic
from credentials.services.rechecks import (
    ReverifyOutcome,
    credential_reverify,
)
from credentials.services.submission import SubmissionRefused, credential_submit
from credentials.services.verification import credential_verify
from mail.models import OutgoingEmail
from merchants.models import Integration
from tests.factories import fake_key
from tests.helpers import assert_no_secret, page_html, page_text, reload

MERCHANT_MAIL = "merchant_verification_result"
NOTE = "Reporting only reads; nothing is charged from Keyhouse."

# Chosen in the opposite order to the page's checkboxes: the gaps still come in the
# manifest's order.
INTEGRATIONS = [Integration.SUBSCRIPTIONS, Integration.ONLINE_PAYMENTS]
# What INTEGRATIONS need, in the manifest's order.
NEEDED = (
    "rak_charge_read",
    "rak_payment_intent_read",
    "rak_customer_read",
    "rak_subscription_read",
    "rak_product_read",
    "rak_price_read",
)
GRANTED_SOME = ("rak_payment_intent_read", "rak_product_read")
MISSING_SOME = ["rak_charge_read", "rak_customer_read", "rak_subscription_read", "rak_price_read"]


def submit_url(merchant) -> str:
    return reverse("credentials:submit", kwargs={"slug": merchant.slug})


def admin_change_url(credential) -> str:
    return reverse("admin:credentials_credential_change", args=[credential.pk])


def label(name: str) -> str:
    """Return how the merchant and the helpdesk read a permission: "Charges: Read (rak_…)"."""
    return f"{PERMISSIONS[name].resource}: Read ({name})"


def post_keys(client, merchant, secret: str, integrations=INTEGRATIONS):
    mode = "live" if "_live_" in secret else "test"
    return client.post(
        submit_url(merchant),
        {
            "publishable_key": fake_key(f"pk_{mode}_"),
            "secret_key": secret,
            "requested_integrations": [str(integration) for integration in integrations],
            "note": NOTE,
        },
    )


@pytest.fixture
def submit(owner_client, merchant):
    """Return a function submitting `secret` through the portal as the owner; it returns the
    stored key."""

    def make(secret: str, integrations=INTEGRATIONS) -> Credential:
        response = post_keys(owner_client, merchant, secret, integrations)
        credential = Credential.objects.get(secret_hint__endswith=secret[-4:])
        assert response.status_code == 302
        assert response.url == credential.get_absolute_url() + "?submitted=1"
        return credential

    return make


def verify(credential: Credential) -> Credential:
    """Verify `credential` as the worker does; return it as stored afterwards."""
    credential_verify(credential_id=credential.pk)
    return reload(credential)


def make_due(credential: Credential) -> None:
    """Move time forward for this key: its daily re-check is now due."""
    Credential.objects.filter(pk=credential.pk).update(
        next_reverify_at=timezone.now() - timedelta(minutes=1)
    )


def missing_on_key_page(client, credential) -> list[str]:
    """Return the missing permissions the key's page lists, top to bottom."""
    response = client.get(credential.get_absolute_url())
    assert response.status_code == 200
    listed = re.search(r'<ul class="missing-permissions">(.*?)</ul>', page_html(response), re.S)
    if listed is None:
        return []
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", listed[1])]


def queued(credential: Credential, kind: str) -> OutgoingEmail:
    return OutgoingEmail.objects.get(kind=kind, topic=credential_topic(credential.pk))


def mail_parts(email: OutgoingEmail) -> tuple[str, str]:
    """Return the mail's text body and its HTML body as read (entities decoded)."""
    return email.body_text, html.unescape(email.body_html)


def field_error(response, field: str) -> str:
    """Return the error shown beside `field`, as read."""
    shown = re.search(rf'id="id_{field}_error"[^>]*>(.*?)</p>', page_html(response), re.S)
    assert shown, f"no error slot beside {field}"
    return " ".join(html.unescape(shown[1]).split())


def form_rules(response) -> dict:
    exported = re.search(
        r'<script id="key-form-rules" type="application/json">(.*?)</script>',
        page_html(response),
        re.S,
    )
    assert exported, "the page gives its script no rules"
    return json.loads(exported[1])


# The submit page: the advice and the checklist


def test_submit_page_recommends_a_restricted_key(owner_client, merchant):
    response = owner_client.get(submit_url(merchant))

    text = page_text(response)
    assert response.status_code == 200
    assert "Restricted key (recommended) or secret key" in text
    assert "Stripe recommends a restricted key" in page_html(response)
    assert "a secret key can do anything on the account, a restricted key only what you allow" in (
        text
    )
    assert "Create restricted key" in text


def test_submit_page_lists_each_integrations_exact_read_permissions_from_the_manifest(
    owner_client, merchant
):
    response = owner_client.get(submit_url(merchant))

    groups = re.findall(
        r'<div class="permission-group" data-integration="([a-z_]+)">(.*?)</div>',
        page_html(response),
        re.S,
    )
    assert [value for value, _ in groups] == list(Integration.values)
    for value, group in groups:
        items = [
            " ".join(html.unescape(re.sub(r"<[^>]+>", " ", item)).split())
            for item in re.findall(r"<li>(.*?)</li>", group, re.S)
        ]
        assert items == [
            f"{PERMISSIONS[name].resource}: Read {name}"
            for name in (permission.name for permission in permissions_for([value]))
        ]
        # Each integration's own needs, and only those.
        assert {name for name in PERMISSIONS if f"<code>{name}</code>" in group} == set(
            NEEDS[value]
        )
        assert f"<h4>{Integration(value).label}</h4>" in html.unescape(group)


def test_submit_page_says_write_permissions_are_checked_when_first_used(owner_client, merchant):
    response = owner_client.get(submit_url(merchant))

    assert (
        "write permissions cannot be checked without side effects, so they are checked when "
        "the integration first uses them"
    ) in page_text(response)


@pytest.mark.parametrize("policy", ["allow", "warn", "refuse"])
def test_submit_page_gives_its_script_the_secret_key_policy(
    owner_client, merchant, settings, policy
):
    settings.STRIPE_SECRET_KEY_POLICY = policy

    rules = form_rules(owner_client.get(submit_url(merchant)))

    assert rules["secret_key_policy"] == policy
    assert rules["secret_key_refused"] == SECRET_KEY_REFUSED


@pytest.mark.parametrize(("policy", "said"), [("refuse", True), ("warn", False), ("allow", False)])
def test_submit_page_says_only_restricted_keys_are_accepted_only_under_refuse(
    owner_client, merchant, settings, policy, said
):
    settings.STRIPE_SECRET_KEY_POLICY = policy

    text = page_text(owner_client.get(submit_url(merchant)))

    assert ("Keyhouse accepts restricted keys only." in text) is said


def test_another_merchants_owner_gets_no_submit_page(client_for, other_owner, merchant):
    response = client_for(other_owner).get(submit_url(merchant))

    assert response.status_code == 404
    assert "permission-checklist" not in page_html(response)


# A restricted key submitted through the portal and verified by the worker


def test_restricted_key_with_every_permission_is_verified_restricted_with_nothing_missing(
    fake_stripe, submit, owner_client, client_for, helpdesk_user
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=NEEDED, account_access=True, id="acct_1DemoCoffee")

    credential = verify(submit(key))

    assert credential.kind == Kind.RESTRICTED
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.verification_code == "verified_restricted"
    assert credential.verification_reason == REASONS["verified_restricted"]
    assert credential.missing_permissions == []
    assert HelpdeskFlag.MISSING_PERMISSIONS not in credential.helpdesk_flags
    assert credential.account_id == "acct_1DemoCoffee"
    assert missing_on_key_page(owner_client, credential) == []
    page = page_text(owner_client.get(credential.get_absolute_url()))
    assert "Missing permissions" not in page
    assert REASONS["verified_restricted"] in page
    helpdesk_text, helpdesk_html = mail_parts(queued(credential, HELPDESK_SUBMISSION))
    assert "Permissions the key is missing" not in helpdesk_text
    assert "Missing permissions" not in helpdesk_html
    admin = page_text(client_for(helpdesk_user).get(admin_change_url(credential)))
    assert HelpdeskFlag.MISSING_PERMISSIONS.label not in admin


def test_restricted_key_is_probed_with_one_get_per_needed_permission(fake_stripe, submit):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)

    verify(submit(key))

    asked = fake_stripe.requests_for(key)
    assert {request.method for request in asked} == {"GET"}
    probes = Counter(request.path for request in asked if request.path != "/v1/account")
    assert probes == Counter(PERMISSIONS[name].probe.split("?")[0] for name in NEEDED)
    # Nothing an integration was not asked for is probed.
    assert "/v1/invoices" not in probes
    assert "/v1/terminal/readers" not in probes


def test_restricted_key_with_some_permissions_is_verified_with_the_others_missing(
    fake_stripe, submit, owner_client
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)

    credential = verify(submit(key))

    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.verification_code == "missing_permissions"
    assert credential.missing_permissions == MISSING_SOME
    assert HelpdeskFlag.MISSING_PERMISSIONS in credential.helpdesk_flags
    assert credential.next_reverify_at is not None
    assert missing_on_key_page(owner_client, credential) == [label(name) for name in MISSING_SOME]


def test_missing_permissions_are_named_in_the_merchants_verification_mail(
    fake_stripe, submit, owner
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)

    credential = verify(submit(key))

    email = queued(credential, MERCHANT_MAIL)
    assert email.to == [owner.email]
    text, body_html = mail_parts(email)
    assert "Switch these permissions on for the key in the Stripe dashboard" in text
    for name in MISSING_SOME:
        assert f"- {label(name)}\n" in text
        assert f"<li>{label(name)}</li>" in body_html
    for name in GRANTED_SOME:
        assert name not in text
        assert name not in body_html
    assert_no_secret(text + body_html, key)


def test_missing_permissions_are_named_in_the_helpdesks_mail(fake_stripe, submit):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)

    credential = verify(submit(key))

    text, body_html = mail_parts(queued(credential, HELPDESK_SUBMISSION))
    listed = "".join(f"- {label(name)}\n" for name in MISSING_SOME)
    assert f"Permissions the key is missing:\n{listed}" in text
    assert f"- {HelpdeskFlag.MISSING_PERMISSIONS.label}\n" in text
    assert ", ".join(label(name) for name in MISSING_SOME) in body_html
    assert f"<li>{HelpdeskFlag.MISSING_PERMISSIONS.label}</li>" in body_html
    for name in GRANTED_SOME:
        assert name not in text
    assert_no_secret(text + body_html, key)


def test_helpdesk_sees_the_missing_permissions_and_the_flag_in_the_admin(
    fake_stripe, submit, client_for, helpdesk_user
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)
    credential = verify(submit(key))

    response = client_for(helpdesk_user).get(admin_change_url(credential))

    assert response.status_code == 200
    text = page_text(response)
    assert "; ".join(label(name) for name in MISSING_SOME) in text
    assert HelpdeskFlag.MISSING_PERMISSIONS.label in text
    assert_no_secret(page_html(response), key)


def test_restricted_key_with_none_of_the_permissions_is_verified_with_every_one_missing(
    fake_stripe, submit, owner_client
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=())

    credential = verify(submit(key))

    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.verification_code == "missing_permissions"
    assert credential.missing_permissions == list(NEEDED)
    assert HelpdeskFlag.MISSING_PERMISSIONS in credential.helpdesk_flags
    assert missing_on_key_page(owner_client, credential) == [label(name) for name in NEEDED]


def test_another_merchants_owner_cannot_open_the_page_listing_the_missing_permissions(
    fake_stripe, submit, owner_client, client_for, other_owner
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)
    credential = verify(submit(key))

    allowed = owner_client.get(credential.get_absolute_url())
    denied = client_for(other_owner).get(credential.get_absolute_url())

    assert allowed.status_code == 200
    assert label(MISSING_SOME[0]) in page_text(allowed)
    assert denied.status_code == 404
    for name in MISSING_SOME:
        assert name not in page_html(denied)


# The daily re-check


def test_permissions_switched_on_since_clear_the_gaps_and_the_flag_at_the_re_check(
    fake_stripe, submit, owner_client
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)
    credential = verify(submit(key))
    fake_stripe.restricted(key, granted=NEEDED)
    make_due(credential)

    outcome = credential_reverify(credential_id=credential.pk)

    credential = reload(credential)
    assert outcome == ReverifyOutcome.STILL_VALID
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.missing_permissions == []
    assert HelpdeskFlag.MISSING_PERMISSIONS not in credential.helpdesk_flags
    assert missing_on_key_page(owner_client, credential) == []


def test_permission_switched_off_since_is_found_missing_and_flagged_at_the_re_check(
    fake_stripe, submit, owner_client
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=NEEDED)
    credential = verify(submit(key))
    assert credential.missing_permissions == []
    fake_stripe.restricted(key, granted=set(NEEDED) - {"rak_customer_read"})
    make_due(credential)

    outcome = credential_reverify(credential_id=credential.pk)

    credential = reload(credential)
    assert outcome == ReverifyOutcome.STILL_VALID
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.missing_permissions == ["rak_customer_read"]
    assert HelpdeskFlag.MISSING_PERMISSIONS in credential.helpdesk_flags
    assert missing_on_key_page(owner_client, credential) == [label("rak_customer_read")]


# credential_reverify (credentials/services/lifecycle.py, the STILL_VALID branch) refreshes
# missing_permissions and the flags but keeps the first verification's code and sentence.
def test_key_page_stops_saying_permissions_are_missing_once_they_are_switched_on(
    fake_stripe, submit, owner_client
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)
    credential = verify(submit(key))
    fake_stripe.restricted(key, granted=NEEDED)
    make_due(credential)

    credential_reverify(credential_id=credential.pk)

    credential = reload(credential)
    page = page_text(owner_client.get(credential.get_absolute_url()))
    assert credential.verification_code == "verified_restricted"
    assert REASONS["verified_restricted"] in page
    for name in MISSING_SOME:
        assert name not in page


def test_key_page_stops_saying_every_permission_is_there_once_one_is_switched_off(
    fake_stripe, submit, owner_client
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=NEEDED)
    credential = verify(submit(key))
    fake_stripe.restricted(key, granted=set(NEEDED) - {"rak_customer_read"})
    make_due(credential)

    credential_reverify(credential_id=credential.pk)

    credential = reload(credential)
    page = page_text(owner_client.get(credential.get_absolute_url()))
    assert credential.verification_code == "missing_permissions"
    assert REASONS["verified_restricted"] not in page
    assert "missing 1 of the read permissions" in page


def test_re_check_not_due_yet_leaves_the_gaps_as_they_were(fake_stripe, submit):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=GRANTED_SOME)
    credential = verify(submit(key))
    fake_stripe.restricted(key, granted=NEEDED)

    outcome = credential_reverify(credential_id=credential.pk)

    credential = reload(credential)
    assert outcome == ReverifyOutcome.NOT_DUE
    assert credential.missing_permissions == MISSING_SOME
    assert HelpdeskFlag.MISSING_PERMISSIONS in credential.helpdesk_flags


# STRIPE_SECRET_KEY_POLICY through the portal and the service


def test_refuse_policy_refuses_a_secret_key_beside_its_field_saving_nothing(
    owner_client, merchant, settings
):
    settings.STRIPE_SECRET_KEY_POLICY = "refuse"
    key = fake_key("sk_live_")

    response = post_keys(owner_client, merchant, key)

    assert response.status_code == 200
    error = field_error(response, "secret_key")
    assert SECRET_KEY_REFUSED in error
    assert "Create restricted key" in error
    assert Credential.objects.count() == 0
    assert OutgoingEmail.objects.count() == 0
    assert_no_secret(page_html(response), key)
    assert_no_secret(html.unescape(page_html(response)), key)


def test_refuse_policy_accepts_a_restricted_key(owner_client, merchant, settings):
    settings.STRIPE_SECRET_KEY_POLICY = "refuse"
    key = fake_key("rk_live_")

    response = post_keys(owner_client, merchant, key)

    credential = Credential.objects.get()
    assert response.status_code == 302
    assert credential.kind == Kind.RESTRICTED
    assert credential.secret == key
    assert credential.verification_state == VerificationState.PENDING


def service_keys(secret: str):
    mode = "live" if "_live_" in secret else "test"
    return StripeProvider().submitted_keys(
        {
            "publishable_key": parse_publishable_key(fake_key(f"pk_{mode}_")),
            "secret_key": parse_secret_key(secret),
        }
    )


def test_service_itself_refuses_a_secret_key_under_refuse(merchant, owner, settings):
    settings.STRIPE_SECRET_KEY_POLICY = "refuse"

    with pytest.raises(SubmissionRefused) as raised:
        credential_submit(
            merchant=merchant,
            keys=service_keys(fake_key("sk_live_")),
            requested_integrations=list(INTEGRATIONS),
            note="",
            actor=owner,
        )

    assert raised.value.code == "secret_key_refused"
    assert raised.value.field == "secret_key"
    assert raised.value.message == SECRET_KEY_REFUSED
    assert Credential.objects.count() == 0


@pytest.mark.parametrize(
    ("policy", "prefix"),
    [("refuse", "rk_live_"), ("warn", "sk_live_"), ("allow", "sk_live_")],
    ids=["refuse-restricted", "warn-secret", "allow-secret"],
)
def test_service_stores_what_the_policy_accepts(merchant, owner, settings, policy, prefix):
    settings.STRIPE_SECRET_KEY_POLICY = policy
    key = fake_key(prefix)

    credential = credential_submit(
        merchant=merchant,
        keys=service_keys(key),
        requested_integrations=list(INTEGRATIONS),
        note="",
        actor=owner,
    )

    assert reload(credential).secret == key
    assert Credential.objects.count() == 1


def test_warn_policy_accepts_a_secret_key_and_advises_a_restricted_one(
    fake_stripe, submit, owner_client, settings
):
    settings.STRIPE_SECRET_KEY_POLICY = "warn"
    key = fake_key("sk_live_")
    fake_stripe.account(key)

    credential = verify(submit(key))

    assert credential.kind == Kind.SECRET
    assert credential.verification_state == VerificationState.VERIFIED
    response = owner_client.get(credential.get_absolute_url())
    advice = re.search(r'<p class="notice advice" id="key-advice">(.*?)</p>', page_html(response))
    assert advice, "no advice on the key's page"
    assert html.unescape(advice[1]) == SECRET_KEY_ADVICE
    text, body_html = mail_parts(queued(credential, MERCHANT_MAIL))
    assert SECRET_KEY_ADVICE in text
    assert f"<p>{SECRET_KEY_ADVICE}</p>" in body_html


def test_warn_policy_flags_a_secret_key_for_the_helpdesk(
    fake_stripe, submit, client_for, helpdesk_user, settings
):
    settings.STRIPE_SECRET_KEY_POLICY = "warn"
    key = fake_key("sk_live_")
    fake_stripe.account(key)

    credential = verify(submit(key))

    assert credential.helpdesk_flags == [HelpdeskFlag.SECRET_KEY]
    email = queued(credential, HELPDESK_SUBMISSION)
    text, body_html = mail_parts(email)
    assert f"Please check:\n- {HelpdeskFlag.SECRET_KEY.label}\n" in text
    assert f"<li>{HelpdeskFlag.SECRET_KEY.label}</li>" in body_html
    assert email.subject.endswith("— please check")
    admin = page_text(client_for(helpdesk_user).get(admin_change_url(credential)))
    assert HelpdeskFlag.SECRET_KEY.label in admin


def test_warn_policy_neither_advises_nor_flags_a_restricted_key(
    fake_stripe, submit, owner_client, settings
):
    settings.STRIPE_SECRET_KEY_POLICY = "warn"
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=NEEDED)

    credential = verify(submit(key))

    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.helpdesk_flags == []
    assert 'id="key-advice"' not in page_html(owner_client.get(credential.get_absolute_url()))
    text, body_html = mail_parts(queued(credential, MERCHANT_MAIL))
    assert SECRET_KEY_ADVICE not in text
    assert SECRET_KEY_ADVICE not in body_html


def test_allow_policy_accepts_a_secret_key_without_advice_or_flag(
    fake_stripe, submit, owner_client, client_for, helpdesk_user, settings
):
    settings.STRIPE_SECRET_KEY_POLICY = "allow"
    key = fake_key("sk_live_")
    fake_stripe.account(key)

    credential = verify(submit(key))

    assert credential.kind == Kind.SECRET
    assert credential.verification_state == VerificationState.VERIFIED
    assert credential.helpdesk_flags == []
    assert 'id="key-advice"' not in page_html(owner_client.get(credential.get_absolute_url()))
    text, body_html = mail_parts(queued(credential, MERCHANT_MAIL))
    assert SECRET_KEY_ADVICE not in text
    assert SECRET_KEY_ADVICE not in body_html
    helpdesk_text, _ = mail_parts(queued(credential, HELPDESK_SUBMISSION))
    assert "Please check" not in helpdesk_text
    admin = page_text(client_for(helpdesk_user).get(admin_change_url(credential)))
    assert HelpdeskFlag.SECRET_KEY.label not in admin
