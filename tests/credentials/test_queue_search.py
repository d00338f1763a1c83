"""The helpdesk queue's search (issue #15): merchants are looked up first, then their keys, so
PostgreSQL answers from trigram indexes instead of reading a million keys. It finds exactly
the keys Django's own admin search finds: every word in the merchant's name or slug, the key's
hint or its account id, whatever the case, with `%` and `_` taken literally."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from credentials import admin_search
from credentials.models import Credential, LifecycleState
from tests.factories import CredentialFactory, MerchantFactory

QUEUE = reverse("admin:credentials_credential_changelist")
ALL_KEYS = {"acknowledged": "all"}


@pytest.fixture
def agent_client(helpdesk_user, client_for):
    return client_for(helpdesk_user)


@pytest.fixture
def keys(db):
    """Keys of three merchants, named so that each search below finds a known few."""
    acme = MerchantFactory(name="Acme Payments", slug="acme-payments")
    half = MerchantFactory(name="Half%Off Store", slug="half-off")
    zeta = MerchantFactory(name="Zeta Shop", slug="zeta_pay")

    def key(merchant, hint, account_id="", **fields):
        if fields.get("lifecycle_state") == LifecycleState.SUPERSEDED:
            fields["secret"] = None
        return CredentialFactory(
            merchant=merchant, secret_hint=hint, account_id=account_id, **fields
        )

    return {
        "acme live": key(acme, "sk_live_…AB12", "acct_1AcmeLive", mode="live"),
        "acme old": key(acme, "sk_test_…7f3e", lifecycle_state=LifecycleState.SUPERSEDED),
        "half": key(half, "sk_test_…9z9z", "acct_1HalfOff"),
        "zeta": key(zeta, "sk_test_…ab12", "acct_1ZetaShop"),
    }


def found(client, term) -> set[str]:
    response = client.get(QUEUE, {**ALL_KEYS, "q": term})
    assert response.status_code == 200
    return {credential.secret_hint for credential in response.context["cl"].result_list}


def found_by_django(term) -> set[str]:
    """The keys Django's stock search finds over the same fields (one query, joined)."""
    model_admin = admin.site._registry[Credential]
    request = RequestFactory().get("/")
    queryset, _ = admin.ModelAdmin.get_search_results(
        model_admin, request, Credential.objects.all(), term
    )
    return set(queryset.values_list("secret_hint", flat=True))


SEARCHES = [
    # (search, hints found)
    ("acme", {"sk_live_…AB12", "sk_test_…7f3e"}),  # merchant name, any case
    ("ACME-PAY", {"sk_live_…AB12", "sk_test_…7f3e"}),  # merchant slug
    ("ab12", {"sk_live_…AB12", "sk_test_…ab12"}),  # the key's hint, any case
    ("acct_1zeta", {"sk_test_…ab12"}),  # the account id
    ("Acme ab12", {"sk_live_…AB12"}),  # every word, each in any field
    ('"Zeta Shop"', {"sk_test_…ab12"}),  # a quoted phrase is one word
    ("nothing-like-this", set()),
    ("f%o", {"sk_test_…9z9z"}),  # `%` is a character, not "anything"
    ("a_p", {"sk_test_…ab12"}),  # `_` too: zeta_pay, not acme-payments' "a-p"
    ("7f", {"sk_test_…7f3e"}),  # shorter than a trigram: still found
]


@pytest.mark.parametrize(("term", "hints"), SEARCHES)
def test_queue_search_finds_the_keys_djangos_own_search_finds(agent_client, keys, term, hints):
    assert found(agent_client, term) == hints
    assert found_by_django(term) == hints


def test_a_word_naming_many_merchants_is_matched_through_the_join_with_the_same_keys(
    agent_client, keys, monkeypatch
):
    monkeypatch.setattr(admin_search, "MERCHANTS_LISTED_UP_TO", 1)

    # "a" is in all three merchants' names: more than may be listed.
    assert found(agent_client, "a ab12") == found_by_django("a ab12")
    assert found(agent_client, "a ab12") == {"sk_live_…AB12", "sk_test_…ab12"}


def test_queue_search_looks_merchants_up_once_a_word_and_keys_in_one_query(agent_client, keys):
    agent_client.get(QUEUE, ALL_KEYS)  # the session's first save is not the page's
    with CaptureQueriesContext(connection) as plain:
        agent_client.get(QUEUE, ALL_KEYS)

    with CaptureQueriesContext(connection) as searched:
        agent_client.get(QUEUE, {**ALL_KEYS, "q": "Acme ab12"})

    assert len(searched) == len(plain) + 2


def test_queue_search_is_refused_to_a_merchant_member(owner_client, keys):
    response = owner_client.get(QUEUE, {**ALL_KEYS, "q": "acme"})

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def explained(sql, params=None) -> str:
    with connection.cursor() as cursor:
        # So few rows are cheaper to read than to look up: forbid reading the table, to see
        # whether an index can answer the search at all (a Seq Scan remains if none can). A
        # btree walked in full with a filter is no answer either: only bitmap scans are left,
        # which take the search's own conditions.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
def test_queue_search_is_answered_from_the_trigram_indexes(agent_client, keys):
    with CaptureQueriesContext(connection) as queries:
        response = agent_client.get(QUEUE, {**ALL_KEYS, "q": "Acme"})
    merchants_lookup = next(
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith('SELECT "merchants_merchant"."id"')
    )
    keys_query = response.context["cl"].queryset.order_by().query.sql_with_params()

    merchants_plan = explained(merchants_lookup)
    keys_plan = explained(*keys_query)

    assert "merchant_name_trgm" in merchants_plan
    assert "merchant_slug_trgm" in merchants_plan
    assert "BitmapOr" in keys_plan
    assert "cred_hint_trgm" in keys_plan
    assert "cred_account_id_trgm" in keys_plan
    assert "Seq Scan on credentials_credential" not in keys_plan
