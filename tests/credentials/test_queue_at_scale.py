"""The helpdesk queue with a million keys (issue #15): it never counts the whole table, says
"about" when it estimates a large selection instead of counting it, shows no facet counts,
and reads each page in order from its indexes instead of sorting every key."""

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import paginators
from core.paginators import EstimatedCountPaginator, planner_row_estimate
from credentials.models import Credential, LifecycleState, VerificationState
from tests.factories import CredentialFactory
from tests.helpers import page_text

CREDENTIALS = reverse("admin:credentials_credential_changelist")
ALL_KEYS = CREDENTIALS + "?acknowledged=all"
WHOLE_TABLE_COUNT = re.compile(r'SELECT COUNT\(\*\) AS "__count" FROM "credentials_credential"\s*$')


@pytest.fixture
def agent_client(helpdesk_user, client_for):
    return client_for(helpdesk_user)


@pytest.fixture
def keys(merchant, owner):
    """Three keys waiting for the helpdesk and two replaced ones."""
    waiting = CredentialFactory.create_batch(
        3, merchant=merchant, submitted_by=owner, verification_state=VerificationState.VERIFIED
    )
    retired = CredentialFactory.create_batch(
        2, merchant=merchant, submitted_by=owner, secret=None, lifecycle_state="superseded"
    )
    return waiting + retired


def sql_of(client, address) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(address)
    assert response.status_code == 200
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.parametrize("address", [CREDENTIALS, ALL_KEYS, CREDENTIALS + "?q=demo"])
def test_queue_never_counts_the_whole_table(agent_client, keys, address):
    counts = [sql for sql in sql_of(agent_client, address) if WHOLE_TABLE_COUNT.search(sql)]

    # "All keys" has no filter: its one count is the selection's own, never a second one of
    # the table for "N total".
    assert len(counts) <= (1 if address == ALL_KEYS else 0)


def assert_counted_exactly(response, count: int) -> None:
    """The queue says how many keys it holds, counted, not estimated."""
    assert response.context["cl"].result_count == count
    assert not response.context["cl"].paginator.count_is_estimate
    assert f"{count} credentials" in page_text(response)


def test_queue_with_few_keys_counts_them_exactly(agent_client, keys):
    response = agent_client.get(ALL_KEYS)

    assert_counted_exactly(response, 5)
    assert "about" not in page_text(response)


def test_queue_takes_the_planners_estimate_for_a_large_selection_and_says_about(
    agent_client, keys, monkeypatch
):
    monkeypatch.setattr(paginators, "planner_row_estimate", lambda queryset: 1_000_000)

    with CaptureQueriesContext(connection) as queries:
        response = agent_client.get(ALL_KEYS)

    assert "about 1000000 credentials" in page_text(response)
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)
    # The first page still lists the rows there are, with links to the next pages.
    assert len(response.context["cl"].result_list) == 5
    assert 'href="?acknowledged=all&amp;p=2"' in response.content.decode()


def test_search_says_about_beside_an_estimated_number_of_results(agent_client, keys, monkeypatch):
    monkeypatch.setattr(paginators, "planner_row_estimate", lambda queryset: 25_000)

    text = page_text(agent_client.get(ALL_KEYS + "&q=Merchant"))

    assert "about 25000 results" in text


def test_queue_shows_no_facet_counts_even_when_asked(agent_client, keys):
    agent_client.get(CREDENTIALS)  # the session's first save is not the page's
    plain = len(sql_of(agent_client, CREDENTIALS))

    response = agent_client.get(CREDENTIALS, {"_facets": "1"})

    assert response.status_code == 200
    assert not response.context["cl"].add_facets
    assert len(sql_of(agent_client, CREDENTIALS + "?_facets=1")) == plain


def test_paginator_counts_a_list_exactly():
    paginator = EstimatedCountPaginator(list(range(7)), 5)

    assert paginator.count == 7
    assert paginator.num_pages == 2
    assert not paginator.count_is_estimate


@pytest.mark.postgres
def test_planner_row_estimate_reads_the_plan_without_counting(keys):
    with CaptureQueriesContext(connection) as queries:
        estimate = planner_row_estimate(Credential.objects.all())

    assert isinstance(estimate, int)
    assert estimate >= 1
    assert all(query["sql"].startswith("EXPLAIN") for query in queries.captured_queries)


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # With so few rows the planner would rather read the table and sort it: forbid that,
        # to see whether an index gives the queue's order (a Sort then remains if none does).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("address", "index"),
    [(CREDENTIALS, "cred_waiting_queue_order"), (ALL_KEYS, "cred_queue_order")],
)
def test_queue_pages_read_in_order_from_an_index_without_sorting(
    agent_client, keys, address, index
):
    changelist = agent_client.get(address).context["cl"]

    plan = plan_of(changelist.queryset[:50])

    assert f"Index Scan using {index}" in plan
    assert "Sort" not in plan


@pytest.mark.postgres
def test_admin_home_counts_only_the_waiting_keys(agent_client, keys):
    queries = sql_of(agent_client, reverse("admin:index"))
    counts = next(sql for sql in queries if '"waiting"' in sql)

    plan = plan_of_sql(counts)

    assert "cred_waiting_queue_order" in plan
    assert "Seq Scan on credentials_credential" not in plan


def plan_of_sql(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_retired_keys_stay_out_of_the_waiting_count_on_the_admin_home(agent_client, keys):
    text = page_text(agent_client.get(reverse("admin:index")))

    assert "Keys: 3 waiting" in text
    assert Credential.objects.exclude(lifecycle_state=LifecycleState.ACTIVE).count() == 2


@pytest.fixture
def small_cap(monkeypatch):
    """A count cap of 3 and pages of 2 rows: the queue's behaviour past the cap, with 5 keys."""
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 3)
    monkeypatch.setattr(admin.site.get_model_admin(Credential), "list_per_page", 2)


@pytest.fixture
def waiting_keys(merchant, owner):
    return CredentialFactory.create_batch(
        5, merchant=merchant, submitted_by=owner, verification_state=VerificationState.VERIFIED
    )


def count_sql(client, address) -> list[str]:
    return [sql for sql in sql_of(client, address) if "COUNT(" in sql.upper()]


def test_filtered_queue_with_more_keys_than_the_cap_says_more_than_and_paginates(
    agent_client, waiting_keys, small_cap
):
    response = agent_client.get(CREDENTIALS)

    paginator = response.context["cl"].paginator
    assert paginator.count_is_lower_bound
    assert "more than 3 credentials" in page_text(response)
    assert len(response.context["cl"].result_list) == 2
    assert 'href="?p=2"' in response.content.decode()
    # Further on, the cap is counted past the page asked for: the last page is exact.
    last = agent_client.get(CREDENTIALS + "?p=3")
    assert len(last.context["cl"].result_list) == 1
    assert "5 credentials" in page_text(last)


def test_filtered_queue_with_no_more_keys_than_the_cap_counts_them_exactly(
    agent_client, keys, small_cap
):
    response = agent_client.get(CREDENTIALS)  # the three waiting keys

    assert_counted_exactly(response, 3)
    assert "more than" not in page_text(response)


def test_queue_counts_no_more_rows_than_the_cap_and_in_no_order(
    agent_client, waiting_keys, small_cap
):
    (count,) = count_sql(agent_client, CREDENTIALS)

    # Three rows and one more, past no page: page 1.
    assert re.search(r"\bLIMIT 4\b", count)
    assert "ORDER BY" not in count.upper()
    (count_on_page_3,) = count_sql(agent_client, CREDENTIALS + "?p=3")
    assert re.search(r"\bLIMIT 8\b", count_on_page_3)


def test_a_page_past_the_end_of_an_estimated_list_is_empty_not_an_error(
    agent_client, keys, small_cap, monkeypatch
):
    monkeypatch.setattr(paginators, "planner_row_estimate", lambda queryset: 1_000_000)

    response = agent_client.get(ALL_KEYS + "&p=100")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert "about 1000000 credentials" in page_text(response)


def test_a_page_past_a_counted_end_redirects_to_the_list_as_django_does(
    agent_client, waiting_keys, small_cap
):
    response = agent_client.get(CREDENTIALS + "?p=9")

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


@pytest.fixture
def filtered_keys(merchant, owner):
    """A waiting key of each kind the queue's filters pick out: overdue, rejected, flagged."""
    past = timezone.now() - timedelta(hours=1)
    waiting = {"merchant": merchant, "submitted_by": owner}
    return [
        CredentialFactory(**waiting, verification_state="verified", followup_due_at=past),
        CredentialFactory(**waiting, verification_state="rejected", followup_due_at=past),
        CredentialFactory(**waiting, verification_state="verified", helpdesk_flags=["x"]),
    ]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("?acknowledged=merchant", "cred_merchant_queue_order"),
        ("?flagged=yes", "cred_flagged_queue_order"),
    ],
)
def test_queue_filter_pages_read_in_order_from_their_own_index(
    agent_client, keys, filtered_keys, query, index
):
    changelist = agent_client.get(CREDENTIALS + query).context["cl"]

    plan = plan_of(changelist.queryset[:50])

    assert len(changelist.result_list) == 1
    assert f"Index Scan using {index}" in plan
    assert "Sort" not in plan
