"""Indexes for two of the helpdesk queue's filters: "Waiting for the merchant"
(credentials/admin_queue.py, QueueFilter) and "Flagged for a look" (FlaggedFilter).

Each filter's page is the first rows of the queue's order (WAITING_FOR_MERCHANT_LAST, then
the follow-up time, then the newest) among the keys the filter passes. The queue's own index
(cred_waiting_queue_order, 0010) holds every waiting key: with 10,000 of them a page of
"waiting for the merchant" walked past the 8,000 the helpdesk can act on before reaching the
rejected ones, and "flagged" read every waiting key to find the 1 in 100 flagged. Each index
here has the queue index's columns, to the letter (the planner follows an index for an ORDER
BY only if its expressions are the same), and a condition the filter's WHERE implies, so
that a page reads its 50 rows in order and stops, and the paginator's count reads only the
keys the filter passes.

"Follow-up overdue" has no index of its own: one whose condition its WHERE implies serves the
follow-up sweep's identical WHERE as well (followups_send_due), and the planner, expecting 7
overdue keys where there are 4,000, takes it and sorts them all instead of reading
cred_followup_due in the sweep's order (0.5 ms to 14 ms a batch at 100,000 merchants).
Its page follows cred_followup_due instead: under that filter the queue's first sort key is
the same for every row, and the changelist leaves it out (admin_queue.CredentialChangeList).

PostgreSQL only, built CONCURRENTLY and not atomic, like 0011 (whose operation this reuses):
the model's Meta does not list them, so SQLite is untouched and makemigrations sees nothing.
"""

import importlib

from django.db import migrations

PostgreSQLOnly = importlib.import_module("credentials.migrations.0011_queue_search").PostgreSQLOnly

# The queue's order (credentials/admin_queue.py: WAITING_FOR_MERCHANT_LAST, FOLLOWUP_NULLS_LAST,
# "-submitted_at", and the admin's "-pk"), as in cred_waiting_queue_order.
QUEUE_ORDER = (
    "(CASE WHEN (acknowledged_at IS NULL AND lifecycle_state = 'active'"
    " AND verification_state = 'rejected') THEN 1 ELSE 0 END),"
    " followup_due_at, submitted_at DESC, id DESC"
)
WAITING = "acknowledged_at IS NULL AND lifecycle_state = 'active'"

# (index, condition): each implied by the filter's WHERE (credentials/selectors.py).
QUEUE_FILTER_INDEXES = (
    # WAITING_FOR_MERCHANT: waiting and rejected.
    ("cred_merchant_queue_order", f"{WAITING} AND verification_state = 'rejected'"),
    # FlaggedFilter within the waiting queue (its default): 1 waiting key in 100 is flagged,
    # so the count read every waiting key to find them, and a page walked past thousands.
    ("cred_flagged_queue_order", f"{WAITING} AND helpdesk_flags <> '[]'::jsonb"),
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("credentials", "0011_queue_search"),
    ]

    operations = [
        PostgreSQLOnly(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{index}" ON "credentials_credential" '
            f"({QUEUE_ORDER}) WHERE {condition}",
            f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"',
        )
        for index, condition in QUEUE_FILTER_INDEXES
    ]
