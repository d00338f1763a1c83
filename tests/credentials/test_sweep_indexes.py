"""The beat's sweeps find their due keys through the partial index made for each, so their cost
follows the due keys, not the table (issue #15; timed by `make bench`, never here).

PostgreSQL uses a partial index only when it can prove the query's conditions imply the
index's: a sweep whose filter drifts from its index (an OR, a condition written another way)
silently reads the whole table again. These tests ask the planner which index it would use,
with sequential scans switched off, since a table of a few rows is cheaper to read whole.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credentials.services.helpdesk import followups_send_due
from credentials.services.rechecks import reverifications_queue_due
from credentials.services.stale import verifications_requeue_stale
from tests.factories import CredentialFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def plans_of_selects(sweep) -> list[str]:
    """Run `sweep` and return the plan PostgreSQL chooses for each of its SELECTs."""
    with CaptureQueriesContext(connection) as queries:
        sweep()
    selects = [query["sql"] for query in queries if query["sql"].startswith("SELECT")]
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in selects:
            cursor.execute(f"EXPLAIN {sql}")
            plans.append("\n".join(line for (line,) in cursor.fetchall()))
        cursor.execute("SET LOCAL enable_seqscan = on")
    return plans


@pytest.mark.parametrize(
    ("sweep", "indexes"),
    [
        # The helpdesk queue's index of waiting keys serves it too; which of the two the
        # planner prefers on a table of a few rows depends on the statistics other tests
        # left (at scale it takes the sweep's own: `make bench` records the plan).
        (followups_send_due, [("cred_followup_due", "cred_waiting_queue_order")]),
        (
            verifications_requeue_stale,
            [("cred_pending_since",), ("cred_verifying_since",)],
        ),
        (reverifications_queue_due, [("cred_reverify_due",)]),
    ],
    ids=["follow-ups", "stale verifications", "re-verifications"],
)
def test_each_sweep_finds_its_due_keys_through_its_partial_index(sweep, indexes):
    CredentialFactory.create_batch(3)

    plans = plans_of_selects(sweep)

    assert len(plans) == len(indexes)
    for plan, names in zip(plans, indexes, strict=True):
        assert any(f" {name} " in plan for name in names), plan
        assert "Seq Scan on credentials_credential" not in plan, plan
