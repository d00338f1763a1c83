"""Trigram indexes for the helpdesk queue's search (credentials/admin_search.py).

The admin searches with `icontains`, which PostgreSQL runs as `UPPER(col::text) LIKE
UPPER('%word%')`: no btree serves a pattern that starts with a wildcard, so each search read
every key and every merchant. A GIN index of the trigrams of exactly that expression serves
it (pg_trgm). The merchant's name and slug are indexed here as well because the queue's search
is what looks them up (merchant first, then its keys).

PostgreSQL only: on other databases (SQLite, in the local test run) the operations do nothing
and the search reads the table as it always did. The indexes are built CONCURRENTLY, so that
deploying this does not stop key submissions while a million keys are indexed; hence not
atomic (IF NOT EXISTS makes a second run after a failure finish the job).
"""

from django.db import migrations

# (index, table, column)
TRIGRAM_INDEXES = (
    ("merchant_name_trgm", "merchants_merchant", "name"),
    ("merchant_slug_trgm", "merchants_merchant", "slug"),
    ("cred_hint_trgm", "credentials_credential", "secret_hint"),
    ("cred_account_id_trgm", "credentials_credential", "account_id"),
)


class PostgreSQLOnly(migrations.RunSQL):
    """RunSQL that runs on PostgreSQL and does nothing on other databases."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("credentials", "0010_page_indexes"),
        ("merchants", "0007_country_from_iso_3166"),
    ]

    operations = [
        PostgreSQLOnly(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            "DROP EXTENSION IF EXISTS pg_trgm",
        ),
        *(
            PostgreSQLOnly(
                # The expression Django writes for `icontains` on a CharField, to the letter:
                # the planner uses an expression index only for the same expression.
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{index}" ON "{table}" '
                f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)',
                f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"',
            )
            for index, table, column in TRIGRAM_INDEXES
        ),
    ]
