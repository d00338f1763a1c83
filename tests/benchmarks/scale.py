"""A dataset at production scale, made in minutes: `INSERT … SELECT … FROM generate_series`.

`populate(merchants=…, credentials=…, audit_events=…)` brings the generated population up to
those totals, adding only what is missing, so that a benchmark can measure pages at 100
merchants and then grow the same database to 100,000. Proportions follow a mature product:
each merchant has an Owner, about ten keys of which most were replaced long ago (their secret
erased), 1 % waiting for the helpdesk (some rejected: waiting for the merchant), some revoked,
a tenth of them Kashier's. Generated rows belong to merchants whose slug starts with `scale-`;
`bench_merchant_create()` makes the one merchant whose pages are measured, with the content of
a typical merchant, which the population never touches.

PostgreSQL only: the benchmarks that need it say so on SQLite.
"""

import time
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

FULL_MERCHANTS = 100_000
FULL_CREDENTIALS = 1_000_000
FULL_AUDIT_EVENTS = 1_000_000

SLUG_PREFIX = "scale-"
# The plaintext of every generated active key: encrypted once, its ciphertext reused.
MADE_UP_SECRET = "sk_test_" + "Bench0Made0Up0Not0A0Real0Key0000"

# A spread that visits every merchant in turn without following their order (a prime).
SPREAD = 7919

# What the n-th generated key is, by n % 1000 (per mille of all keys).
WAITING_BELOW = 10  # active, unacknowledged: the helpdesk's queue (1 %)
REJECTED_BELOW = 2  # … of which the provider refused: waiting for the merchant
PENDING_BELOW = 4  # … of which still being verified
ACKNOWLEDGED_BELOW = 150  # active and acknowledged (14 %)
REVOKED_BELOW = 200  # revoked (5 %); the rest was replaced by a newer key (80 %)


@dataclass(frozen=True)
class Population:
    merchants: int
    credentials: int
    audit_events: int
    seconds: float


def _scalar(sql: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _execute(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def population_counts() -> tuple[int, int, int]:
    """Return how many merchants, keys and audit events the generator has made so far."""
    generated = {"like": SLUG_PREFIX + "%"}
    return (
        _scalar("SELECT count(*) FROM merchants_merchant WHERE slug LIKE %(like)s", generated),
        _scalar(
            "SELECT count(*) FROM credentials_credential WHERE merchant_id IN "
            "(SELECT id FROM merchants_merchant WHERE slug LIKE %(like)s)",
            generated,
        ),
        _scalar(
            "SELECT count(*) FROM teams_auditevent WHERE merchant_id IN "
            "(SELECT id FROM merchants_merchant WHERE slug LIKE %(like)s)",
            generated,
        ),
    )


def _owner_role_id() -> int:
    return _scalar("SELECT id FROM teams_role WHERE merchant_id IS NULL AND slug = 'owner'")


def _add_merchants(first: int, last: int, *, now) -> None:
    """Merchants `first`…`last` (numbers), each with its Owner: a user and a membership."""
    _execute(
        """
        INSERT INTO merchants_merchant (name, slug, contact_email, contact_phone, website,
            country, requested_integrations, require_two_factor, created_at)
        SELECT 'Scale Merchant ' || n, %s || n, 'contact@scale-' || n || '.test', '', '',
            (ARRAY['GB', 'DE', 'FR', 'EG', 'US'])[1 + n %% 5], '["online_payments"]'::jsonb,
            false, %s - make_interval(days => n %% 1500)
        FROM generate_series(%s, %s) AS n
        """,
        (SLUG_PREFIX, now, first, last),
    )
    # An unusable password ("!"): nobody signs in as these owners.
    _execute(
        """
        INSERT INTO teams_user (password, is_superuser, email, full_name, is_staff, is_active,
            date_joined, time_zone)
        SELECT '!', false, 'owner@scale-' || n || '.test', 'Owner ' || n, false, true,
            %s - make_interval(days => n %% 1500), ''
        FROM generate_series(%s, %s) AS n
        """,
        (now, first, last),
    )
    _execute(
        """
        INSERT INTO teams_membership (user_id, merchant_id, role_id, joined_at)
        SELECT u.id, m.id, %s, m.created_at
        FROM generate_series(%s, %s) AS n
        JOIN merchants_merchant AS m ON m.slug = %s || n
        JOIN teams_user AS u ON u.email = 'owner@scale-' || n || '.test'
        """,
        (_owner_role_id(), first, last, SLUG_PREFIX),
    )


def _ciphertext() -> str:
    from credentials.models import Credential

    return Credential._meta.get_field("secret").get_db_prep_save(MADE_UP_SECRET, connection)


def _add_credentials(first: int, last: int, *, now) -> None:
    """Keys `first`…`last` (numbers), spread over every generated merchant."""
    _execute(
        """
        WITH merchants AS (
            SELECT array_agg(id ORDER BY id) AS ids FROM merchants_merchant WHERE slug LIKE %(like)s
        ),
        numbered AS (
            SELECT n, n %% 1000 AS part,
                merchants.ids[1 + (n::bigint * %(spread)s) %% cardinality(merchants.ids)]
                    AS merchant_id,
                CASE WHEN n %% 10 = 3 THEN 'kashier' ELSE 'stripe' END AS provider,
                CASE WHEN (n / 7) %% 2 = 0 THEN 'test' ELSE 'live' END AS mode,
                %(now)s - make_interval(days => (n * 13) %% 1095, secs => n %% 86400)
                    AS submitted_at
            FROM generate_series(%(first)s, %(last)s) AS n, merchants
        )
        INSERT INTO credentials_credential (merchant_id, provider, mode, kind, public_key,
            secret, extra_secret, secret_hint, fingerprint, requested_integrations, note,
            submitted_at, verification_state, verification_attempts, verification_round,
            checked_at, verification_code, verification_reason, account_id, account_name,
            account_country, limited_permissions, missing_permissions, helpdesk_flags,
            lifecycle_state, lifecycle_changed_at, revoked_reason, helpdesk_notified_at,
            acknowledged_at, followup_due_at, reminders_sent)
        SELECT merchant_id, provider, mode,
            CASE WHEN n %% 3 = 0 THEN 'restricted' ELSE 'secret' END,
            'pk_' || mode || '_scale' || lpad(n::text, 24, '0'),
            CASE WHEN part < %(acknowledged)s THEN %(ciphertext)s END,
            NULL,
            'sk_' || mode || '_…' || right(lpad(n::text, 4, '0'), 4),
            md5(n::text) || md5('scale' || n),
            '["online_payments"]'::jsonb, '', submitted_at,
            CASE WHEN part < %(rejected)s THEN 'rejected'
                 WHEN part < %(pending)s THEN 'pending'
                 ELSE 'verified' END,
            1, 0,
            CASE WHEN part >= %(pending)s OR part < %(rejected)s
                 THEN submitted_at + interval '5 seconds' END,
            CASE WHEN part < %(rejected)s THEN 'invalid_api_key' ELSE '' END,
            '',
            CASE WHEN part >= %(pending)s THEN 'acct_scale' || n ELSE '' END,
            CASE WHEN part >= %(pending)s THEN 'Scale account ' || n ELSE '' END,
            CASE WHEN part >= %(pending)s THEN 'GB' ELSE '' END,
            false, '[]'::jsonb,
            CASE WHEN n %% 97 = 0 THEN '["secret_key"]'::jsonb ELSE '[]'::jsonb END,
            CASE WHEN part < %(acknowledged)s THEN 'active'
                 WHEN part < %(revoked)s THEN 'revoked'
                 ELSE 'superseded' END,
            CASE WHEN part >= %(acknowledged)s THEN submitted_at + interval '30 days' END,
            CASE WHEN part >= %(acknowledged)s AND part < %(revoked)s
                 THEN 'Reported compromised' ELSE '' END,
            submitted_at + interval '10 seconds',
            CASE WHEN part >= %(waiting)s THEN submitted_at + interval '2 hours' END,
            -- Waiting keys are due for their follow-up around now, some overdue.
            CASE WHEN part < %(waiting)s THEN %(now)s + make_interval(mins => (n %% 2880) - 1440)
            END,
            0
        FROM numbered
        """,
        {
            "like": SLUG_PREFIX + "%",
            "now": now,
            "first": first,
            "last": last,
            "ciphertext": _ciphertext(),
            "spread": SPREAD,
            "waiting": WAITING_BELOW,
            "rejected": REJECTED_BELOW,
            "pending": PENDING_BELOW,
            "acknowledged": ACKNOWLEDGED_BELOW,
            "revoked": REVOKED_BELOW,
        },
    )


AUDIT_ACTIONS = (
    "signed_in",
    "key_submitted",
    "key_verification",
    "submission_acknowledged",
    "key_superseded",
    "member_role_changed",
    "invitation_sent",
    "merchant_profile_changed",
    "secret_fetched",
    "signed_in",
)


def _add_audit_events(first: int, last: int, *, now) -> None:
    """Audit events `first`…`last` (numbers), spread over every generated merchant."""
    _execute(
        """
        WITH merchants AS (
            SELECT array_agg(id ORDER BY id) AS ids FROM merchants_merchant WHERE slug LIKE %(like)s
        )
        INSERT INTO teams_auditevent (actor_id, actor_email, merchant_id, action, target,
            occurred_at, ip, details)
        SELECT NULL, 'someone@scale.test',
            merchants.ids[1 + (n::bigint * %(spread)s) %% cardinality(merchants.ids)],
            (%(actions)s::text[])[1 + n %% cardinality(%(actions)s::text[])], 'key ' || n,
            %(now)s - make_interval(days => (n * 17) %% 1095, secs => n %% 86400),
            ('192.0.2.' || (n %% 250))::inet, '{}'::jsonb
        FROM generate_series(%(first)s, %(last)s) AS n, merchants
        """,
        {
            "like": SLUG_PREFIX + "%",
            "now": now,
            "first": first,
            "last": last,
            "spread": SPREAD,
            "actions": list(AUDIT_ACTIONS),
        },
    )


def populate(*, merchants: int, credentials: int, audit_events: int) -> Population:
    """Add generated merchants, keys and audit events until there are this many of each, then
    ANALYZE; return the totals and how long it took."""
    if connection.vendor != "postgresql":
        raise RuntimeError("The scale generator writes PostgreSQL; set DATABASE_URL.")
    started = time.perf_counter()
    now = timezone.now()
    have_merchants, have_credentials, have_events = population_counts()
    if merchants > have_merchants:
        _add_merchants(have_merchants + 1, merchants, now=now)
    if credentials > have_credentials:
        _add_credentials(have_credentials + 1, credentials, now=now)
    if audit_events > have_events:
        _add_audit_events(have_events + 1, audit_events, now=now)
    # VACUUM sets the visibility map (index-only scans) and ANALYZE the planner's statistics,
    # as autovacuum would soon after a load this size.
    _execute("VACUUM ANALYZE")
    return Population(
        merchants=max(merchants, have_merchants),
        credentials=max(credentials, have_credentials),
        audit_events=max(audit_events, have_events),
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class BenchMerchant:
    """The merchant whose pages are measured, with what its pages show."""

    merchant: object
    owner: object
    key: object  # an active key, for its page


BENCH_SLUG = "bench-merchant"


def bench_merchant_create() -> BenchMerchant:
    """Make a merchant with a typical merchant's content: a team of four with an open
    invitation, 16 keys (a key in use per provider and mode, the rest replaced or revoked) and
    300 audit events, some of them fetches of its key's secret."""
    from audit.models import AuditEvent
    from tests.factories import (
        InvitationFactory,
        MembershipFactory,
        MerchantFactory,
        UserFactory,
        default_role,
    )

    merchant = MerchantFactory(name="Bench Merchant", slug=BENCH_SLUG)
    owner = UserFactory(email="owner@bench-merchant.test")
    MembershipFactory(user=owner, merchant=merchant, role=default_role("owner"))
    for role in ("administrator", "developer", "support"):
        MembershipFactory(
            user=UserFactory(email=f"{role}@bench-merchant.test"),
            merchant=merchant,
            role=default_role(role),
        )
    InvitationFactory(merchant=merchant, invited_by=owner, email="new@bench-merchant.test")

    now = timezone.now()
    keys = [_bench_key(merchant, owner, number=number, now=now) for number in range(16)]
    key = keys[0]
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=owner,
            actor_email=owner.email,
            merchant=merchant,
            action=AuditEvent.Action.SECRET_FETCHED
            if number % 10 == 0
            else AuditEvent.Action.SIGNED_IN,
            target=f"key {key.secret_hint}" if number % 10 == 0 else "",
            occurred_at=now - timezone.timedelta(hours=number),
            ip="192.0.2.1",
            details={"service_account": "till", "hint": key.secret_hint, "credential": key.pk}
            if number % 10 == 0
            else {},
        )
        for number in range(300)
    )
    return BenchMerchant(merchant=merchant, owner=owner, key=key)


def _bench_key(merchant, owner, *, number: int, now):
    """The bench merchant's key `number`: the first four in use (Stripe and Kashier, test and
    live), the others replaced, every fifth revoked."""
    from credentials.models import LifecycleState, Mode, Provider, VerificationState
    from tests.factories import CredentialFactory

    in_use = number < 4
    retired = LifecycleState.REVOKED if number % 5 == 0 else LifecycleState.SUPERSEDED
    return CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        provider=Provider.KASHIER if number % 4 >= 2 else Provider.STRIPE,
        mode=Mode.TEST if number % 2 == 0 else Mode.LIVE,
        # Retired keys have their secret erased; active ones get the factory's made-up one.
        **({} if in_use else {"secret": None}),
        verification_state=VerificationState.VERIFIED,
        lifecycle_state=LifecycleState.ACTIVE if in_use else retired,
        lifecycle_changed_at=None if in_use else now - timezone.timedelta(days=number),
        acknowledged_at=now - timezone.timedelta(days=30 * number - 1),
        submitted_at=now - timezone.timedelta(days=30 * number),
    )
