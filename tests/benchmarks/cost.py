"""The cost of one verification: the SQL statements it runs, and where its CPU goes.

In the benchmark's own process, against PostgreSQL and the fake Stripe (in a thread, no added
latency): `credential_verify` as the worker calls it, its outcome mails sent right after commit
(to Django's in-memory mail backend here; the pipeline section measures the real SMTP sink and
the worker process's whole CPU). Statements are counted as Django sends them; transaction
control (BEGIN, COMMIT, savepoints) is counted apart, since it reads and writes no row.
"""

import cProfile
import pstats
import re
import time
from collections import Counter
from dataclasses import dataclass

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from tests.benchmarks.harness import SMALL, Section, Target, python_speed_ms, scaled

STATEMENT_TARGET = 8
TIMES = "\N{MULTIPLICATION SIGN}"
CPU_SAMPLES = scaled(300, least=30)
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b")
# Where a profiled function's file lies, and the phase of the work that makes it.
PHASES = (
    ("SQL: the ORM building queries, the driver sending them", ("django/db/", "psycopg")),
    ("mail: templates", ("django/template",)),
    ("mail: MIME message", ("email/", "django/core/mail")),
    ("Stripe SDK and HTTP client", ("stripe/", "requests/", "urllib3/", "http/client", "json/")),
    ("decrypting the key", ("cryptography/", "encrypted_model_fields")),
)


@dataclass
class Statements:
    scenario: str
    data: list[str]
    control: int


def _statements(scenario: str, action) -> Statements:
    with CaptureQueriesContext(connection) as captured:
        action()
    data, control = [], 0
    for query in captured.captured_queries:
        if TRANSACTION_CONTROL.match(query["sql"]):
            control += 1
        else:
            data.append(" ".join(query["sql"].split())[:90])
    return Statements(scenario, data, control)


def _merchant_with_owner(name: str):
    from tests.factories import MembershipFactory, MerchantFactory, UserFactory, default_role

    merchant = MerchantFactory(name=name)
    owner = UserFactory()
    MembershipFactory(user=owner, merchant=merchant, role=default_role("owner"))
    return merchant, owner


def _verify(credential) -> None:
    from credentials.services.verification import credential_verify

    result = credential_verify(credential_id=credential.pk)
    assert result.state == "verified", result


def _scenarios() -> list[Statements]:
    from credentials.models import VerificationState
    from integrations.services.accounts import service_account_create
    from tests.factories import CredentialFactory

    merchant, owner = _merchant_with_owner("Cost first key")
    first = CredentialFactory(merchant=merchant, submitted_by=owner)
    measured = [_statements("a merchant's first key (the common case)", lambda: _verify(first))]

    older = CredentialFactory(
        merchant=merchant, submitted_by=owner, verification_state=VerificationState.VERIFIED
    )
    older.refresh_from_db()
    roll = CredentialFactory(merchant=merchant, submitted_by=owner)
    measured.append(
        _statements("a roll: the new key supersedes two older ones", lambda: _verify(roll))
    )

    hooked, hooked_owner = _merchant_with_owner("Cost webhooks")
    service_account_create(
        name="cost-bench",
        scopes=["credentials:read"],
        merchants=[hooked],
        webhook_url="https://hooks.example.test/keyhouse",
    )
    wanted = CredentialFactory(merchant=hooked, submitted_by=hooked_owner)
    measured.append(
        _statements(
            "a first key whose merchant an integrator's webhook endpoint watches",
            lambda: _verify(wanted),
        )
    )
    return measured


def _cpu_per_verification() -> tuple[float, list[tuple[str, float]]]:
    """Return the CPU ms of one verification (mean of CPU_SAMPLES) and the profile's shares."""
    from tests.factories import CredentialFactory

    keys = []
    for index in range(CPU_SAMPLES * 2):
        merchant, owner = _merchant_with_owner(f"Cost CPU {index}")
        keys.append(CredentialFactory(merchant=merchant, submitted_by=owner))
    timed, profiled = keys[:CPU_SAMPLES], keys[CPU_SAMPLES:]
    started = time.thread_time()
    for credential in timed:
        _verify(credential)
    per_key = (time.thread_time() - started) * 1000 / len(timed)

    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    for credential in profiled:
        _verify(credential)
    profile.disable()
    shares: Counter = Counter()
    for (filename, _, _), (_, _, own, _, _) in pstats.Stats(profile).stats.items():
        phase = next(
            (name for name, parts in PHASES if any(part in filename for part in parts)),
            "everything else (Keyhouse's own code, Python)",
        )
        shares[phase] += own
    total = sum(shares.values()) or 1.0
    return per_key, [(phase, own / total) for phase, own in shares.most_common()]


def run() -> Section:
    title = "Cost of one verification"
    if connection.vendor != "postgresql":
        return Section(title, "skipped: needs PostgreSQL (set DATABASE_URL).")
    from tests.fake_stripe import FakeStripe

    with (
        FakeStripe() as stripe,
        override_settings(
            STRIPE_API_BASE=stripe.url,
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        ),
    ):
        scenarios = _scenarios()
        cpu_ms, shares = _cpu_per_verification()
    loop_ms = python_speed_ms()
    common = scenarios[0]
    targets = [
        Target(
            f"SQL statements per verification ≤ {STATEMENT_TARGET} (a first key, both mails sent)",
            f"{len(common.data)} (and {common.control} BEGIN/COMMIT/savepoints)",
            None if SMALL else len(common.data) <= STATEMENT_TARGET,
        )
    ]
    rows = [f"| {s.scenario} | {len(s.data)} | {s.control} |" for s in scenarios]
    listing = [f"{index}. `{sql}…`" for index, sql in enumerate(common.data, 1)]
    body = "\n".join(
        [
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            "| verification | statements reading or writing rows | transaction control |",
            "| --- | ---: | ---: |",
            *rows,
            "",
            f"The statements of {common.scenario}:",
            "",
            *listing,
            "",
            f"CPU in this process: {cpu_ms:.1f} ms per verification (mean of {CPU_SAMPLES}; "
            f"the fixed loop took {loop_ms:.1f} ms: {cpu_ms / loop_ms:.2f} {TIMES} loop), "
            "without Celery's own work and with mail handed to memory instead of SMTP. Where "
            f"it goes (a profile of {CPU_SAMPLES} more, by each function's own CPU time):",
            "",
            "| phase | share of CPU |",
            "| --- | ---: |",
            *(f"| {phase} | {share:.0%} |" for phase, share in shares),
        ]
    )
    return Section(title, body, targets)
