"""A database migrated on the previous layout migrates forward with every row intact.

The layering moved AuditEvent (teams → audit) and OutgoingEmail (merchants → mail) keeping
their tables, and replaced the outbox's foreign keys by an opaque `topic`. These tests build
a database at the previous migration state with rows in every project table, migrate it and
compare every row, column by column. Tables added since then start empty; columns added since
then hold their default on the old rows.
"""

import json
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from encrypted_model_fields import fields as encrypted_fields

from audit.models import AuditEvent
from credentials.models import Credential, EncryptionCanary
from mail.models import OutgoingEmail
from teams.models import User
from teams.permissions import HELPDESK_VIEW_AUDIT, HELPDESK_VIEW_MAIL

# transaction=True: migrations change the schema, which a test transaction cannot hold.
# serialized_rollback: as every transactional test here, so the data migrations' rows (default
# roles, helpdesk groups) are put back after the flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# The leaf migrations before the layering; audit and mail did not exist yet.
PREVIOUS_LEAVES = [
    ("merchants", "0004_outgoing_email_urgent"),
    ("credentials", "0004_key_lifecycle"),
    ("teams", "0005_audit_lifecycle_actions"),
]
PREVIOUS_TARGETS = [*PREVIOUS_LEAVES, ("audit", None), ("mail", None)]
PROJECT_TABLE_PREFIXES = ("merchants_", "teams_", "credentials_")
MOVED_MODELS = {("teams", "auditevent"): "audit", ("merchants", "outgoingemail"): "mail"}
SECRET = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
CANARY = "keyhouse-encryption-canary"
# Columns later migrations add to tables of the previous layout, with the default each old row
# gets: (table, column) -> value.
NEW_COLUMNS = {
    ("merchants_merchant", "require_two_factor"): False,
    ("credentials_credential", "verification_round"): 0,
    ("credentials_credential", "extra_secret"): None,
    ("credentials_credential", "missing_permissions"): [],
    ("teams_user", "time_zone"): "",
}
# Columns later migrations rename: (table, old name) -> new name.
RENAMED_COLUMNS = {("credentials_credential", "publishable_key"): "public_key"}
# Verification states a retired key is no longer left in.
RETIRED_WAITING = ("pending", "verifying")


def migrate(targets):
    """Migrate the test database to `targets` and return the executor that did it."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


def migrate_to_latest():
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()


@pytest.fixture
def previous_apps():
    """The historical models of a database migrated back to the previous layout.

    The database is migrated to the latest state again afterwards, also when the test fails.
    """
    try:
        executor = migrate(PREVIOUS_TARGETS)
        yield executor.loader.project_state(PREVIOUS_LEAVES).apps
    finally:
        migrate_to_latest()


def fernet_token(plaintext: str) -> str:
    return encrypted_fields.CRYPTER.encrypt(plaintext.encode()).decode()


def store_ciphertext(table: str, pk: int, column: str, plaintext: str) -> None:
    """Write a real Fernet token, whatever field class the historical model hands out."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE id = %s",  # noqa: S608  (names are ours)
            [fernet_token(plaintext), pk],
        )


def populate(apps) -> dict:
    """Write rows into every project table through the historical models; return them."""
    now = timezone.now().replace(microsecond=0)
    get = apps.get_model
    Permission = get("auth", "Permission")

    def permission(app_label, codename):
        return Permission.objects.get(content_type__app_label=app_label, codename=codename)

    merchant = get("merchants", "Merchant").objects.create(
        name="Migrated Coffee",
        slug="migrated-coffee",
        contact_email="ops@migrated.test",
        website="https://migrated.test",
        country="DE",
        requested_integrations=["stripe_payments"],
    )
    user_model = get("teams", "User")
    owner = user_model.objects.create(email="owner@migrated.test", full_name="Olga Owner")
    bookkeeper = user_model.objects.create(email="books@migrated.test", password="!unusable")
    helpdesk = user_model.objects.create(email="agent@keyhouse.test", is_staff=True)

    helpdesk_group, _ = get("auth", "Group").objects.get_or_create(name="Helpdesk")
    helpdesk_group.permissions.add(
        permission("teams", "view_auditevent"), permission("merchants", "view_outgoingemail")
    )
    helpdesk.groups.add(helpdesk_group)
    helpdesk.user_permissions.add(permission("credentials", "reveal_secret"))

    role_model = get("teams", "Role")
    owner_role, _ = role_model.objects.get_or_create(
        merchant=None, slug="owner", defaults={"name": "Owner"}
    )
    custom_role = role_model.objects.create(
        merchant=merchant, name="Bookkeeper", description="Follows the keys."
    )
    custom_role.permissions.add(
        permission("merchants", "access_merchant"), permission("credentials", "view_key_status")
    )
    membership_model = get("teams", "Membership")
    membership_model.objects.create(user=owner, merchant=merchant, role=owner_role)
    membership_model.objects.create(user=bookkeeper, merchant=merchant, role=custom_role)
    get("teams", "Invitation").objects.create(
        merchant=merchant,
        email="newcomer@migrated.test",
        role=custom_role,
        token_hash="ab" * 32,
        invited_by=owner,
        sent_at=now,
        expires_at=now + timedelta(days=7),
    )

    credential_model = get("credentials", "Credential")
    credential_fields = {
        "merchant": merchant,
        "kind": "secret",
        "secret_hint": "sk_live_…p7dc",
        "submitted_by": owner,
        "requested_integrations": ["stripe_payments"],
    }
    active = credential_model.objects.create(
        **credential_fields,
        mode="live",
        publishable_key="pk_live_" + "a" * 24,
        secret=SECRET,
        fingerprint="f" * 64,
        verification_state="verified",
        account_id="acct_1Migrated",
        helpdesk_flags=["duplicate_elsewhere"],
        charges_enabled=True,
    )
    store_ciphertext("credentials_credential", active.pk, "secret", SECRET)
    superseded = credential_model.objects.create(
        **credential_fields,
        mode="live",
        publishable_key="pk_live_" + "b" * 24,
        fingerprint="e" * 64,
        lifecycle_state="superseded",
        lifecycle_changed_at=now,
        replaced_by=active,
    )
    revoked = credential_model.objects.create(
        **credential_fields,
        mode="test",
        publishable_key="pk_test_" + "c" * 24,
        fingerprint="d" * 64,
        lifecycle_state="revoked",
        lifecycle_changed_at=now,
        revoked_by=owner,
        revoked_reason="Pasted into a public chat.",
    )
    canary_model = get("credentials", "EncryptionCanary")
    canary = canary_model.objects.first() or canary_model.objects.create(value=CANARY)
    store_ciphertext("credentials_encryptioncanary", canary.pk, "value", CANARY)

    audit_model = get("teams", "AuditEvent")
    audit_model.objects.create(
        actor=owner,
        actor_email=owner.email,
        merchant=merchant,
        action="key_submitted",
        target="live key sk_live_…p7dc",
        ip="203.0.113.7",
        details={"mode": "live", "integrations": ["stripe_payments"]},
    )
    audit_model.objects.create(
        actor_email="intruder@example.test", action="sign_in_failed", ip="2001:db8::1"
    )
    audit_model.objects.create(
        actor=owner, merchant=merchant, action="key_revoked", details={"reason": "leaked"}
    )

    email_model = get("merchants", "OutgoingEmail")
    mail_fields = {"to": ["helpdesk@keyhouse.test"], "body_text": "Text", "body_html": "<p>"}
    emails = [
        email_model.objects.create(
            **mail_fields,
            dedupe_key=f"submission:{active.pk}",
            kind="helpdesk_submission",
            subject="A key to look at",
            merchant=merchant,
            credential=active,
            state="sent",
            attempts=1,
            sent_at=now,
        ),
        email_model.objects.create(
            **mail_fields,
            dedupe_key=f"reminder:{revoked.pk}:1",
            kind="helpdesk_reminder",
            subject="Reminder",
            merchant=merchant,
            credential=revoked,
            urgent=True,
            state="cancelled",
            last_error="SMTPServerDisconnected",
        ),
        email_model.objects.create(
            **mail_fields,
            dedupe_key="merchant-notice",
            kind="notice",
            subject="About you",
            merchant=merchant,
        ),
        email_model.objects.create(
            **mail_fields, dedupe_key="standalone", kind="notice", subject="Hello"
        ),
    ]
    return {
        "merchant": merchant,
        "helpdesk": helpdesk,
        "credentials": [active, superseded, revoked],
        "canary": canary,
        "emails": emails,
    }


def snapshot() -> dict[str, list[dict]]:
    """Return every row of every table (but Django's migration record), by table."""
    tables = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if table == "django_migrations":
                continue
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608  (names are ours)
            columns = [column[0] for column in cursor.description]
            tables[table] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return tables


def expected_after_migrating(before: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Return `before` as the latest migrations should leave it: content types moved with
    their models, the outbox's foreign keys turned into topics, and the new columns at their
    defaults."""
    after = {table: [dict(row) for row in rows] for table, rows in before.items()}
    for (table, column), default in NEW_COLUMNS.items():
        for row in after[table]:
            assert column not in row, f"{table}.{column} existed before: not a new column"
            row[column] = as_stored(default, like=row.get("requested_integrations"))
    for (table, column), new_name in RENAMED_COLUMNS.items():
        for row in after[table]:
            row[new_name] = row.pop(column)
    for row in after["credentials_credential"]:
        # Active Stripe secret keys are flagged for the helpdesk (credentials 0008), under
        # the default STRIPE_SECRET_KEY_POLICY (warn), which this test sets.
        if (row["provider"], row["kind"], row["lifecycle_state"]) == ("stripe", "secret", "active"):
            flags = (
                json.loads(row["helpdesk_flags"])
                if isinstance(row["helpdesk_flags"], str)
                else row["helpdesk_flags"]
            )
            row["helpdesk_flags"] = as_stored([*flags, "secret_key"], like=row["helpdesk_flags"])
    for row in after["credentials_credential"]:
        # Keys retired before Stripe answered end "not verified" (credentials 0006).
        if row["lifecycle_state"] != "active" and row["verification_state"] in RETIRED_WAITING:
            row.update(
                verification_state="not_verified",
                verification_claimed_at=None,
                verification_next_attempt_at=None,
            )
    for row in after["django_content_type"]:
        row["app_label"] = MOVED_MODELS.get((row["app_label"], row["model"]), row["app_label"])
    for row in after["merchants_outgoingemail"]:
        credential_id, merchant_id = row.pop("credential_id"), row.pop("merchant_id")
        if credential_id is not None:
            row["topic"] = f"credential:{credential_id}"
        elif merchant_id is not None:
            row["topic"] = f"merchant:{merchant_id}"
        else:
            row["topic"] = ""
    return after


def content_type_ids() -> dict[tuple[str, str], int]:
    return {
        (content_type.app_label, content_type.model): content_type.pk
        for content_type in ContentType.objects.all()
    }


def as_stored(value, *, like):
    """Return a JSON column's `value` as the database driver returns one like `like`: text on
    SQLite, decoded on PostgreSQL."""
    if isinstance(value, list | dict) and isinstance(like, str):
        return json.dumps(value)
    return value


def test_rows_of_every_project_table_survive_migrating_forward(previous_apps, settings):
    settings.STRIPE_SECRET_KEY_POLICY = "warn"
    made = populate(previous_apps)
    before = snapshot()
    moved_ids = {key: content_type_ids()[key] for key in MOVED_MODELS}
    empty = [
        table
        for table, rows in before.items()
        if table.startswith(PROJECT_TABLE_PREFIXES) and not rows
    ]
    assert not empty, f"every project table needs a row for this test to mean anything: {empty}"

    migrate_to_latest()

    after = snapshot()
    expected = expected_after_migrating(before)
    assert set(expected) <= set(after), "a table of the previous layout is gone"
    for table in expected:
        assert after[table] == expected[table], table
    # Tables new since then: no rows were made up for them.
    new_tables = set(after) - set(expected)
    assert {"audit_refusalwindow", "teams_invitationcode", "teams_invitationmail"} <= new_tables
    assert not [table for table in new_tables if after[table]], "a new table has rows"

    # The rows read through today's models.
    assert list(
        AuditEvent.objects.filter(merchant_id=made["merchant"].pk)
        .order_by("pk")
        .values_list("action", "ip", "details")
    ) == [
        ("key_submitted", "203.0.113.7", {"mode": "live", "integrations": ["stripe_payments"]}),
        ("key_revoked", None, {"reason": "leaked"}),
    ]
    assert AuditEvent.objects.filter(action="sign_in_failed").get().ip == "2001:db8::1"
    emails = OutgoingEmail.objects.filter(pk__in=[email.pk for email in made["emails"]])
    topics = dict(emails.values_list("dedupe_key", "topic"))
    active, _, revoked = made["credentials"]
    assert topics == {
        f"submission:{active.pk}": f"credential:{active.pk}",
        f"reminder:{revoked.pk}:1": f"credential:{revoked.pk}",
        "merchant-notice": f"merchant:{made['merchant'].pk}",
        "standalone": "",
    }
    assert Credential.objects.get(pk=active.pk).secret == SECRET
    assert EncryptionCanary.objects.get(pk=made["canary"].pk).value == CANARY

    # The content types moved with their models: the helpdesk's permissions follow.
    assert ContentType.objects.get_for_model(AuditEvent).pk == moved_ids[("teams", "auditevent")]
    assert (
        ContentType.objects.get_for_model(OutgoingEmail).pk
        == moved_ids[("merchants", "outgoingemail")]
    )
    helpdesk = User.objects.get(pk=made["helpdesk"].pk)
    assert helpdesk.has_perm(HELPDESK_VIEW_AUDIT)
    assert helpdesk.has_perm(HELPDESK_VIEW_MAIL)


def test_migrating_back_restores_the_previous_rows(previous_apps):
    populate(previous_apps)
    before = snapshot()
    migrate_to_latest()

    migrate(PREVIOUS_TARGETS)

    assert snapshot() == before
