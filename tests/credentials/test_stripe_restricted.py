"""Restricted Stripe keys: each read permission the requested integrations need is probed with
one read-only GET, through the real stripe SDK against the fake Stripe server over HTTP; a
key missing some is verified with gaps, named as Stripe names them. And what the secret-key
policy makes of secret keys.
"""

import pytest
import requests

from credentials.models import Credential, HelpdeskFlag, Kind, Mode
from credentials.providers.base import AccountFacts, Answer, KeysToCheck, SubmittedKeys
from credentials.providers.stripe import (
    REASON_MAX_LENGTH,
    REASONS,
    SECRET_KEY_ADVICE,
    SECRET_KEY_REFUSED,
    StripeProvider,
    secret_key_refusal,
)
from credentials.providers.stripe_client import KeyRefused, StripeUnavailable, restricted_key_facts
from credentials.providers.stripe_permissions import PERMISSIONS, permissions_for
from merchants.models import Integration
from tests.factories import fake_key
from tests.fake_stripe import (
    ACCOUNT_PERMISSION,
    LIST_PATHS,
    Reply,
    account_id,
    balance_reply,
    error_reply,
    masked,
    permission_error_reply,
)

ONLINE = [Integration.ONLINE_PAYMENTS]
# Needed by ONLINE, in the manifest's order.
ONLINE_NEEDS = ("rak_charge_read", "rak_payment_intent_read", "rak_customer_read")
SUBSCRIPTIONS_AND_INVOICING = [Integration.SUBSCRIPTIONS, Integration.INVOICING]


def probes_for(integrations) -> dict[str, str]:
    return {permission.name: permission.probe for permission in permissions_for(integrations)}


def probe_path(name: str) -> str:
    return PERMISSIONS[name].probe.split("?", 1)[0]


def restricted_keys(key: str, integrations, mode: str = Mode.LIVE) -> KeysToCheck:
    return KeysToCheck(
        mode=mode,
        kind=Kind.RESTRICTED,
        secret=key,
        requested_integrations=tuple(integrations),
    )


def assert_shows_nothing_of(key: str, *things) -> None:
    """Assert that neither the key nor its masked form, nor its end, is in any repr."""
    for thing in things:
        text = repr(thing)
        assert key not in text
        assert masked(key) not in text
        assert key[-8:] not in text
        assert "provided key" not in text


def assert_mode_mismatch(answer: Answer, *, answered_livemode: bool) -> None:
    """Assert a refusal (not an outage) for the mode, whatever facts it keeps."""
    assert answer.code == "livemode_mismatch"
    assert answer.transient is False
    assert answer.facts is None or answer.facts.livemode is answered_livemode


def assert_raised_on_its_own(error: BaseException) -> None:
    """Assert that nothing chains the exception back to Stripe's message."""
    assert error.__cause__ is None
    assert error.__context__ is None


# restricted_key_facts: what a restricted key may read


def test_key_with_every_permission_and_the_account_reads_all_and_misses_none(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(
        key, granted=ONLINE_NEEDS, account_access=True, id="acct_1DemoCoffee", country="GB"
    )

    facts = restricted_key_facts(key, probes_for(ONLINE))

    assert facts.missing_permissions == ()
    assert facts.limited_permissions is False
    assert facts.account_id == "acct_1DemoCoffee"
    assert facts.country == "GB"
    assert facts.livemode is True


def test_each_needed_probe_is_one_get_in_the_manifests_order_then_the_account(fake_stripe):
    key = fake_key("rk_test_")
    fake_stripe.restricted(key, granted=PERMISSIONS, account_access=True)

    restricted_key_facts(key, probes_for(SUBSCRIPTIONS_AND_INVOICING))

    asked = [(r.method, r.path, r.query) for r in fake_stripe.requests_for(key)]
    assert asked == [
        ("GET", "/v1/customers", "limit=1"),
        ("GET", "/v1/subscriptions", "limit=1"),
        ("GET", "/v1/products", "limit=1"),
        ("GET", "/v1/prices", "limit=1"),
        ("GET", "/v1/invoices", "limit=1"),
        ("GET", "/v1/account", ""),
    ]


def test_key_with_some_permissions_misses_the_others_named_in_the_manifests_order(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(
        key, granted=("rak_customer_read", "rak_product_read", "rak_invoice_read")
    )

    facts = restricted_key_facts(key, probes_for(SUBSCRIPTIONS_AND_INVOICING))

    assert facts.missing_permissions == (
        "rak_subscription_read",
        "rak_price_read",
    )
    assert [r.method for r in fake_stripe.requests_for(key)] == ["GET"] * 6


def test_key_with_none_of_the_permissions_is_still_accepted_with_every_one_missing(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=())

    facts = restricted_key_facts(key, probes_for(ONLINE))

    assert facts.missing_permissions == ONLINE_NEEDS
    assert facts.account_id == ""
    assert facts.livemode is None


def test_key_with_every_permission_need_not_read_the_account_and_then_has_no_account_facts(
    fake_stripe,
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=ONLINE_NEEDS)

    facts = restricted_key_facts(key, probes_for(ONLINE))

    assert facts == AccountFacts()
    assert fake_stripe.requests_for(key)[-1].path == "/v1/account"


def test_key_the_fake_was_not_told_about_may_read_every_probe(fake_stripe):
    key = fake_key("rk_test_")

    facts = restricted_key_facts(key, probes_for(list(Integration)))

    assert facts.missing_permissions == ()
    assert facts.limited_permissions is False
    assert len(fake_stripe.requests_for(key)) == len(PERMISSIONS) + 1


def test_missing_permission_is_named_as_stripe_names_it_in_its_403(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=PERMISSIONS)
    fake_stripe.on(key, "/v1/charges", permission_error_reply(key, "rak_charge_read_v2"))

    facts = restricted_key_facts(key, probes_for(ONLINE))

    assert facts.missing_permissions == ("rak_charge_read_v2",)


def test_missing_permission_is_named_by_the_probe_when_stripes_403_names_none(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=PERMISSIONS)
    unnamed = Reply(403, {"error": {"message": "Forbidden.", "type": "invalid_request_error"}})
    fake_stripe.on(key, "/v1/customers", unnamed)

    facts = restricted_key_facts(key, probes_for(ONLINE))

    assert facts.missing_permissions == ("rak_customer_read",)


def test_permission_stripe_names_for_two_probes_is_missing_once(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=PERMISSIONS)
    for path in ("/v1/charges", "/v1/payment_intents"):
        fake_stripe.on(key, path, permission_error_reply(key, "rak_charge_read"))

    facts = restricted_key_facts(key, probes_for(ONLINE))

    assert facts.missing_permissions == ("rak_charge_read",)


def test_without_probes_a_key_reading_the_balance_has_limited_permissions(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted_without_account_access(key, balance_ok=True)

    facts = restricted_key_facts(key, {})

    assert facts.limited_permissions is True
    assert facts.missing_permissions == ()
    assert [r.path for r in fake_stripe.requests_for(key)] == ["/v1/account", "/v1/balance"]


def test_without_probes_a_key_reading_the_account_but_not_the_balance_is_accepted(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=(), account_access=True, id="acct_1DemoCoffee")

    facts = restricted_key_facts(key, {})

    assert facts.account_id == "acct_1DemoCoffee"
    assert facts.limited_permissions is False
    assert facts.missing_permissions == ()


def test_without_probes_the_balance_tells_the_keys_mode(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted_without_account_access(key, balance_ok=True)

    facts = restricted_key_facts(key, {})

    assert facts.livemode is True


def test_without_probes_a_key_reading_neither_balance_nor_account_is_refused(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted_without_account_access(key, balance_ok=False)

    with pytest.raises(KeyRefused) as raised:
        restricted_key_facts(key, {})

    assert raised.value.code == "insufficient_permissions"
    assert_raised_on_its_own(raised.value)
    assert_shows_nothing_of(key, raised.value, raised.value.args)


@pytest.mark.parametrize(
    ("case", "code"),
    [("invalid_api_key", "invalid_api_key"), ("expired_api_key", "api_key_expired")],
)
def test_key_stripe_refuses_is_refused_at_the_first_probe(fake_stripe, case, code):
    key = fake_key("rk_live_")
    fake_stripe.reject(key, case)

    with pytest.raises(KeyRefused) as raised:
        restricted_key_facts(key, probes_for(ONLINE))

    assert raised.value.code == code
    assert_raised_on_its_own(raised.value)
    assert_shows_nothing_of(key, raised.value, raised.value.args)
    assert [r.path for r in fake_stripe.requests_for(key)] == ["/v1/charges"]


def test_server_error_on_one_probe_makes_stripe_unavailable(fake_stripe, settings):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=PERMISSIONS, account_access=True)
    fake_stripe.on(key, "/v1/payment_intents", error_reply("api_error", key))

    with pytest.raises(StripeUnavailable) as raised:
        restricted_key_facts(key, probes_for(ONLINE))

    assert raised.value.code == "stripe_error"
    assert_raised_on_its_own(raised.value)
    # The SDK's own retries of that probe, and no probe after it.
    assert [r.path for r in fake_stripe.requests_for(key)] == [
        "/v1/charges",
        *["/v1/payment_intents"] * (1 + settings.STRIPE_MAX_NETWORK_RETRIES),
    ]


def test_facts_of_a_key_with_gaps_show_nothing_of_the_key_or_stripes_message(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=("rak_charge_read",))

    facts = restricted_key_facts(key, probes_for(list(Integration)))

    assert_shows_nothing_of(key, facts, facts.as_dict())
    assert account_id(key) not in repr(facts)


# StripeProvider.verify: restricted keys


def test_restricted_key_with_every_permission_is_verified_restricted(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=ONLINE_NEEDS, account_access=True, id="acct_1Demo")

    answer = StripeProvider().verify(restricted_keys(key, ONLINE))

    assert answer.code == "verified_restricted"
    assert answer.transient is False
    assert answer.facts.account_id == "acct_1Demo"
    assert answer.facts.missing_permissions == ()


def test_restricted_key_with_every_permission_but_not_the_account_is_verified_restricted(
    fake_stripe,
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=ONLINE_NEEDS)

    answer = StripeProvider().verify(restricted_keys(key, ONLINE))

    assert answer == Answer("verified_restricted", facts=AccountFacts())


def test_restricted_key_with_some_permissions_is_verified_with_the_others_missing(fake_stripe):
    key = fake_key("rk_test_")
    fake_stripe.restricted(key, granted=("rak_customer_read", "rak_price_read"))

    answer = StripeProvider().verify(
        restricted_keys(key, SUBSCRIPTIONS_AND_INVOICING, mode=Mode.TEST)
    )

    assert answer.code == "missing_permissions"
    assert answer.transient is False
    assert answer.facts.missing_permissions == (
        "rak_subscription_read",
        "rak_product_read",
        "rak_invoice_read",
    )


def test_restricted_key_with_none_of_the_permissions_is_accepted_not_rejected(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=())

    answer = StripeProvider().verify(restricted_keys(key, ONLINE))

    assert answer.code == "missing_permissions"
    assert answer.transient is False
    assert answer.facts is not None
    assert answer.facts.missing_permissions == ONLINE_NEEDS


def test_restricted_key_is_asked_only_with_gets_each_needed_probe_once(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=("rak_terminal_reader_read",), account_access=True)

    StripeProvider().verify(restricted_keys(key, [Integration.IN_PERSON, Integration.INVOICING]))

    asked = fake_stripe.requests_for(key)
    assert {r.method for r in asked} == {"GET"}
    assert [r.path for r in asked] == [
        "/v1/payment_intents",
        "/v1/customers",
        "/v1/terminal/readers",
        "/v1/terminal/locations",
        "/v1/invoices",
        "/v1/account",
    ]


def test_invalid_restricted_key_is_rejected(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.reject(key)

    answer = StripeProvider().verify(restricted_keys(key, ONLINE))

    assert answer == Answer("invalid_api_key")


def test_server_error_on_one_probe_is_a_transient_answer(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=PERMISSIONS, account_access=True)
    fake_stripe.on(key, "/v1/customers", error_reply("api_error", key))

    answer = StripeProvider().verify(restricted_keys(key, ONLINE))

    assert answer == Answer("stripe_error", transient=True)


def test_rate_limit_on_one_probe_is_a_transient_answer(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=PERMISSIONS, account_access=True)
    fake_stripe.on(key, "/v1/charges", error_reply("rate_limited", key))

    answer = StripeProvider().verify(restricted_keys(key, ONLINE))

    assert answer == Answer("rate_limited", transient=True)


def test_restricted_key_without_integrations_reading_the_account_is_verified(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=(), account_access=True)

    answer = StripeProvider().verify(restricted_keys(key, []))

    assert answer.code == "verified"
    assert answer.facts.account_id == account_id(key)


def test_restricted_key_without_integrations_reading_only_the_balance_is_limited(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted_without_account_access(key, balance_ok=True)

    answer = StripeProvider().verify(restricted_keys(key, []))

    assert answer.code == "limited_permissions"
    assert answer.facts.limited_permissions is True


def test_restricted_key_whose_account_answers_in_the_other_mode_is_a_mismatch(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=PERMISSIONS, account_access=True, livemode=False)

    answer = StripeProvider().verify(restricted_keys(key, ONLINE))

    assert_mode_mismatch(answer, answered_livemode=False)


def test_restricted_key_whose_balance_answers_in_the_other_mode_is_a_mismatch(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted_without_account_access(key, balance_ok=True)
    fake_stripe.on(key, "/v1/balance", balance_reply(key, livemode=False))

    answer = StripeProvider().verify(restricted_keys(key, []))

    assert_mode_mismatch(answer, answered_livemode=False)


def test_answers_about_restricted_keys_show_nothing_of_the_key(fake_stripe):
    granted = fake_key("rk_live_")
    fake_stripe.restricted(granted, granted=("rak_customer_read",), account_access=True)
    rejected = fake_key("rk_live_")
    fake_stripe.reject(rejected)

    for key in (granted, rejected):
        answer = StripeProvider().verify(restricted_keys(key, list(Integration)))
        assert_shows_nothing_of(key, answer)


# StripeProvider.verify: secret keys


def test_secret_key_reads_the_account_and_is_not_probed_for_permissions(fake_stripe):
    key = fake_key("sk_live_")
    fake_stripe.account(key)

    answer = StripeProvider().verify(
        KeysToCheck(mode=Mode.LIVE, kind=Kind.SECRET, secret=key, requested_integrations=ONLINE)
    )

    assert answer.code == "verified"
    assert answer.facts.missing_permissions == ()
    assert [(r.method, r.path) for r in fake_stripe.requests_for(key)] == [("GET", "/v1/account")]


@pytest.mark.parametrize(
    ("prefix", "mode", "answered_livemode"),
    [("sk_live_", Mode.LIVE, False), ("sk_test_", Mode.TEST, True)],
    ids=["live-key-answered-in-test-mode", "test-key-answered-in-live-mode"],
)
def test_secret_key_whose_account_answers_in_the_other_mode_is_a_mismatch(
    fake_stripe, prefix, mode, answered_livemode
):
    key = fake_key(prefix)
    fake_stripe.account(key, livemode=answered_livemode)

    answer = StripeProvider().verify(
        KeysToCheck(mode=mode, kind=Kind.SECRET, secret=key, requested_integrations=ONLINE)
    )

    assert_mode_mismatch(answer, answered_livemode=answered_livemode)


# StripeProvider.reason for missing permissions


def test_reason_for_missing_permissions_counts_and_names_them():
    facts = AccountFacts(missing_permissions=("rak_invoice_read", "rak_customer_read"))

    reason = StripeProvider().reason("missing_permissions", kind=Kind.RESTRICTED, facts=facts)

    assert "missing 2 of the read permissions" in reason
    assert "rak_invoice_read, rak_customer_read" in reason
    assert "{" not in reason


def test_reason_for_every_permission_missing_stays_within_the_stored_length():
    facts = AccountFacts(missing_permissions=tuple(PERMISSIONS))

    reason = StripeProvider().reason("missing_permissions", kind=Kind.RESTRICTED, facts=facts)

    assert len(reason) <= REASON_MAX_LENGTH
    assert f"missing {len(PERMISSIONS)} of the read permissions" in reason
    assert "listed on the key's page" in reason


def test_reason_length_limit_is_the_stored_reasons_length():
    assert Credential._meta.get_field("verification_reason").max_length == REASON_MAX_LENGTH


def test_reason_for_verified_restricted_needs_no_facts():
    reason = StripeProvider().reason("verified_restricted", kind=Kind.RESTRICTED)

    assert reason == REASONS["verified_restricted"]


# STRIPE_SECRET_KEY_POLICY


@pytest.mark.parametrize(
    ("policy", "refused"), [("allow", False), ("warn", False), ("refuse", True)]
)
def test_secret_key_is_refused_only_under_the_refuse_policy(settings, policy, refused):
    settings.STRIPE_SECRET_KEY_POLICY = policy

    refusal = secret_key_refusal(Kind.SECRET)

    if refused:
        assert refusal.code == "secret_key_refused"
        assert refusal.params == {"field": "secret_key"}
        assert refusal.message == SECRET_KEY_REFUSED
    else:
        assert refusal is None


@pytest.mark.parametrize("policy", ["allow", "warn", "refuse"])
def test_restricted_key_is_never_refused(settings, policy):
    settings.STRIPE_SECRET_KEY_POLICY = policy

    assert secret_key_refusal(Kind.RESTRICTED) is None


@pytest.mark.parametrize(
    ("policy", "kind", "refused"),
    [
        ("refuse", Kind.SECRET, True),
        ("refuse", Kind.RESTRICTED, False),
        ("warn", Kind.SECRET, False),
        ("allow", Kind.SECRET, False),
    ],
)
def test_submission_refusal_is_the_policys(settings, policy, kind, refused):
    settings.STRIPE_SECRET_KEY_POLICY = policy
    prefix = "sk_live_" if kind == Kind.SECRET else "rk_live_"
    keys = SubmittedKeys(
        provider="stripe", mode=Mode.LIVE, kind=kind, secret=fake_key(prefix), hint="…abcd"
    )

    refusal = StripeProvider().submission_refusal(keys)

    assert (refusal is not None) is refused


@pytest.mark.parametrize(
    ("policy", "kind", "missing", "flags"),
    [
        ("allow", Kind.SECRET, (), []),
        ("warn", Kind.SECRET, (), [HelpdeskFlag.SECRET_KEY]),
        ("refuse", Kind.SECRET, (), []),
        ("allow", Kind.RESTRICTED, (), []),
        ("warn", Kind.RESTRICTED, (), []),
        ("refuse", Kind.RESTRICTED, (), []),
        ("allow", Kind.RESTRICTED, ("rak_invoice_read",), [HelpdeskFlag.MISSING_PERMISSIONS]),
        ("warn", Kind.RESTRICTED, ("rak_invoice_read",), [HelpdeskFlag.MISSING_PERMISSIONS]),
        ("refuse", Kind.RESTRICTED, ("rak_invoice_read",), [HelpdeskFlag.MISSING_PERMISSIONS]),
    ],
)
def test_helpdesk_flags_follow_the_policy_and_the_missing_permissions(
    settings, policy, kind, missing, flags
):
    settings.STRIPE_SECRET_KEY_POLICY = policy

    assert StripeProvider().helpdesk_flags(kind=kind, missing_permissions=missing) == flags


@pytest.mark.parametrize(
    ("policy", "advice"),
    [("allow", ""), ("warn", SECRET_KEY_ADVICE), ("refuse", SECRET_KEY_ADVICE)],
)
def test_secret_key_is_advised_to_be_restricted_unless_the_policy_allows_it(
    settings, policy, advice
):
    settings.STRIPE_SECRET_KEY_POLICY = policy

    assert StripeProvider().advice(kind=Kind.SECRET) == advice


@pytest.mark.parametrize("policy", ["allow", "warn", "refuse"])
def test_restricted_key_gets_no_advice(settings, policy):
    settings.STRIPE_SECRET_KEY_POLICY = policy

    assert StripeProvider().advice(kind=Kind.RESTRICTED) == ""


# The fake Stripe's restricted keys, as the tests above rely on them


def fake_get(fake_stripe, key: str, path: str, method: str = "GET") -> requests.Response:
    return requests.request(
        method, fake_stripe.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=5
    )


@pytest.mark.parametrize("path", LIST_PATHS)
def test_fake_answers_each_list_with_an_empty_page_ignoring_the_query(fake_stripe, path):
    key = fake_key("sk_test_")
    fake_stripe.account(key)

    response = fake_get(fake_stripe, key, f"{path}?limit=1")

    assert response.status_code == 200
    assert response.json() == {"object": "list", "data": [], "has_more": False, "url": path}


def test_fake_serves_every_probe_of_the_manifest():
    assert {probe_path(name) for name in PERMISSIONS} <= {*LIST_PATHS, "/v1/balance"}


def test_fake_refuses_a_restricted_key_naming_the_permission_the_account_and_the_masked_key(
    fake_stripe,
):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=())

    response = fake_get(fake_stripe, key, "/v1/invoices?limit=1")

    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert message == (
        f"The provided key '{masked(key)}' does not have the required permissions for this "
        f"endpoint on account '{account_id(key)}'. Having the 'rak_invoice_read' permission "
        "would allow this request to continue."
    )
    assert key not in message


def test_fake_refuses_the_account_to_a_restricted_key_without_account_access(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.restricted(key, granted=PERMISSIONS)

    response = fake_get(fake_stripe, key, "/v1/account")

    assert response.status_code == 403
    assert f"'{ACCOUNT_PERMISSION}'" in response.json()["error"]["message"]


def test_fake_lets_a_restricted_key_read_the_balance_only_with_rak_balance_read(fake_stripe):
    with_balance, without = fake_key("rk_live_"), fake_key("rk_live_")
    fake_stripe.restricted(with_balance, granted=("rak_balance_read",))
    fake_stripe.restricted(without, granted=("rak_payout_read",))

    assert fake_get(fake_stripe, with_balance, "/v1/balance").status_code == 200
    refused = fake_get(fake_stripe, without, "/v1/balance")
    assert refused.status_code == 403
    assert "'rak_balance_read'" in refused.json()["error"]["message"]


def test_fake_refuses_to_register_a_permission_the_manifest_does_not_know(fake_stripe):
    with pytest.raises(ValueError, match="rak_invoice_raed"):
        fake_stripe.restricted(fake_key("rk_live_"), granted=("rak_invoice_raed",))


def test_fake_registration_with_a_query_matches_requests_with_or_without_it(fake_stripe):
    key = fake_key("sk_test_")
    fake_stripe.on(key, "/v1/charges?limit=1", error_reply("rate_limited", key))

    assert fake_get(fake_stripe, key, "/v1/charges").status_code == 429
    assert fake_get(fake_stripe, key, "/v1/charges?limit=10").status_code == 429


def test_fake_rejected_key_is_refused_on_every_path(fake_stripe):
    key = fake_key("rk_live_")
    fake_stripe.account(key)
    fake_stripe.reject(key)

    for path in ("/v1/account", "/v1/balance", "/v1/charges"):
        assert fake_get(fake_stripe, key, path).status_code == 401


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_fake_refuses_anything_but_get_and_records_it(fake_stripe, method):
    key = fake_key("sk_test_")
    fake_stripe.account(key)

    response = fake_get(fake_stripe, key, "/v1/charges", method=method)

    assert response.status_code == 405
    assert [(r.method, r.path) for r in fake_stripe.requests_for(key)] == [(method, "/v1/charges")]
