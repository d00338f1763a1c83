"""What every scenario runs on: the run (private services, keys, a migrated template database)
and, per scenario, a stage: a database copied from the template, an empty Redis, a fake
Stripe, an SMTP sink and the Keyhouse processes the scenario starts, all stopped at its end.

This process is the run's harness: it signs merchants in, submits keys through the web
process over HTTP, steers the fake Stripe and the sink, and counts what happened from the
stage's database and from the messages the sink accepted.
"""

import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from tests.faults.browser import Web
from tests.faults.outside import MailServer, TimedFakeStripe
from tests.faults.processes import (
    Process,
    beat_command,
    clean_environment,
    spawn,
    wait_until_serving,
    web_command,
    worker_command,
)
from tests.faults.results import Outcome, spread
from tests.faults.services import PrivatePostgres, PrivateRedis, free_port

TEMPLATE_DATABASE = "keyhouse_template"
# Outbox kinds (credentials.services.notifications): the helpdesk's notice of a submission,
# the merchant's verification result, the helpdesk's reminder.
HELPDESK_NOTICE = "helpdesk_submission"
MERCHANT_RESULT = "merchant_verification_result"
HELPDESK_REMINDER = "helpdesk_reminder"
POLL_SECONDS = 0.25

# The settings every process of the run gets (a stage may change some): short timeouts,
# back-offs and staleness so that each recovery happens within seconds, and Stripe asked
# once per attempt (no SDK retries inside an attempt), so that its requests count attempts.
RUN_SETTINGS = {
    "STRIPE_TIMEOUT_SECONDS": "3",
    "STRIPE_MAX_NETWORK_RETRIES": "0",
    "VERIFY_MAX_ATTEMPTS": "3",
    "VERIFY_RETRY_BASE_SECONDS": "0.5",
    "VERIFY_STALE_AFTER": "12s",
    "EMAIL_RETRY_BASE_SECONDS": "1",
    "FOLLOWUP_AFTER": "1h",
    "FOLLOWUP_CHECK_EVERY": "2",
    "FAULTS_SWEEP_EVERY": "2",
    "HELPDESK_EMAIL": "helpdesk@faults.test",
    "SITE_URL": "http://127.0.0.1",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    # Plain HTTP on 127.0.0.1: production would redirect every request to https.
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "INFO",
}


def wait_for(condition: Callable[[], object], *, timeout: float) -> bool:
    """Poll `condition` until it is true (return True) or `timeout` seconds pass (False).

    A database that is restarting is waited for, not an error: the scenarios cause that.
    """
    from django.db import InterfaceError, OperationalError, connections

    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return True
        except (OperationalError, InterfaceError):
            connections.close_all()
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


# The run -----------------------------------------------------------------------------------
class Run:
    """The run's directory, private services and keys, and the migrated template database."""

    def __init__(self, root: Path, postgres: PrivatePostgres, redis: PrivateRedis):
        self.root = root
        self.postgres = postgres
        self.redis = redis
        self.keys = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "CREDENTIAL_FINGERPRINT_KEY": secrets.token_urlsafe(32),
        }
        self._stages = 0

    def settings(self, database: str, **overrides: str) -> dict[str, str]:
        """Return every setting a process of the run gets, on `database`."""
        return {
            **RUN_SETTINGS,
            **self.keys,
            "DATABASE_URL": self.postgres.url(database),
            "REDIS_URL": self.redis.url,
            **overrides,
        }

    def configure_this_process(self) -> None:
        """Give this process the run's configuration, set Django up and migrate the template
        database every stage is copied from."""
        import django
        from django.core.management import call_command
        from django.db import connections

        # Only the run's configuration, as every process of the run gets it.
        # WARNING: the SMTP sink's library logs every SMTP command at INFO.
        environment = clean_environment(self.settings(TEMPLATE_DATABASE, LOG_LEVEL="WARNING"))
        os.environ.clear()
        os.environ.update(environment)
        django.setup()
        self.postgres.create_database(TEMPLATE_DATABASE)
        call_command("migrate", interactive=False, verbosity=0)
        connections.close_all()

    def stage(self, name: str, outcome: Outcome, **settings: str) -> "Stage":
        """Return the stage of scenario `name`; `settings` change the run's settings for the
        processes it starts. What they did wrong is noted in `outcome` at its end."""
        self._stages += 1
        return Stage(self, f"s{self._stages}_{name}", outcome, settings)


# A stage -----------------------------------------------------------------------------------
class Stage:
    """One scenario's world. Use as a context manager; everything started is stopped at exit,
    and the processes that exited on their own or logged errors are noted in the outcome."""

    def __init__(self, run: Run, name: str, outcome: Outcome, settings: dict[str, str]):
        self.run = run
        self.name = name
        self.outcome = outcome
        self.overrides = dict(settings)
        self.logs = run.root / "logs" / name
        self.processes: list[Process] = []
        self.mail = MailServer()
        self.stripe = TimedFakeStripe()

    # Set-up and tear-down -------------------------------------------------------------------
    def __enter__(self) -> "Stage":
        from django.db import connection, connections

        self.run.postgres.create_database(self.name, template=TEMPLATE_DATABASE)
        connections.close_all()
        connection.settings_dict["NAME"] = self.name
        self.run.redis.flush()
        self.stripe.start()
        self.mail.up()
        return self

    def __exit__(self, *exc) -> None:
        from django.db import connections

        self.stop_processes()
        self.outcome.notes += self.process_notes()
        self.stripe.stop()
        self.mail.down()
        connections.close_all()
        if not self.run.redis.running:
            self.run.redis.start()
        self.run.redis.flush()

    def stop_processes(self) -> None:
        """Stop every process still running: beat first (nothing new is queued), then the
        web, then the workers (each finishes what it is doing)."""
        order = {"beat": 0, "web": 1, "worker": 2}
        for process in sorted(self.processes, key=lambda p: order.get(p.name.split("-")[0], 3)):
            if process.alive:
                process.stop()

    def environment(self, **overrides: str) -> dict[str, str]:
        outside = {"STRIPE_API_BASE": self.stripe.url, "EMAIL_URL": self.mail.url}
        return clean_environment(
            self.run.settings(self.name, **{**outside, **self.overrides, **overrides})
        )

    def seconds(self, name: str) -> float:
        """Return the duration setting `name` of this stage's processes, in seconds."""
        from core.durations import parse_duration_seconds

        return parse_duration_seconds(self.overrides.get(name, RUN_SETTINGS[name]))

    # Processes -------------------------------------------------------------------------------
    def start(self, name: str, command: list[str], **overrides: str) -> Process:
        """Start `command` with the stage's environment changed by `overrides`."""
        taken = sum(p.name.startswith(name) for p in self.processes)
        process = spawn(
            f"{name}-{taken + 1}",
            command,
            environment=self.environment(**overrides),
            logs=self.logs,
        )
        self.processes.append(process)
        return process

    def start_worker(self, *, concurrency: int = 4, **overrides: str) -> Process:
        index = sum(p.name.startswith("worker") for p in self.processes) + 1
        command = worker_command(f"{self.name}-{index}", concurrency=concurrency)
        return self.start("worker", command, **overrides)

    def start_beat(self, **overrides: str) -> Process:
        index = sum(p.name.startswith("beat") for p in self.processes) + 1
        return self.start("beat", beat_command(self.logs / f"beat-{index}.schedule"), **overrides)

    def start_web(self, *, workers: int = 2, **overrides: str) -> Web:
        port = free_port()
        process = self.start("web", web_command(port, workers=workers), **overrides)
        web = Web(process, f"http://127.0.0.1:{port}")
        if not wait_until_serving(process, web.url):
            raise RuntimeError(f"The web process did not start; see {process.log}")
        return web

    def process_notes(self) -> list[str]:
        """Say which processes exited on their own, and how many error lines each logged
        (for a reader looking into a failure: nothing is counted from logs)."""
        notes = []
        for process in self.processes:
            if process.exit_expected:
                continue
            if not process.stopped_by_run and process.returncode is not None:
                notes.append(f"{process.name} exited on its own with {process.returncode}")
            errors = process.error_lines()
            if errors:
                notes.append(
                    f"{process.name}'s log has {len(errors)} error line(s); the first: "
                    f"{errors[0][:160]}"
                )
        return notes

    # Data ------------------------------------------------------------------------------------
    def merchants(self, count: int):
        """Create `count` merchants with one Owner for all: one merchant per submitted key,
        as in real use (a merchant's submissions are serialised by a lock on its row)."""
        from tests.factories import MembershipFactory, MerchantFactory, UserFactory, default_role

        owner = UserFactory(email=f"owner@{self.name.replace('_', '-')}.test")
        role = default_role("owner")
        merchants = []
        for index in range(count):
            merchant = MerchantFactory(name=f"Faults {index}", slug=f"faults-{index}")
            MembershipFactory(user=owner, merchant=merchant, role=role)
            merchants.append(merchant)
        return owner, merchants

    # Counting --------------------------------------------------------------------------------
    def credentials(self):
        from credentials.models import Credential

        return Credential.objects.defer("secret").order_by("pk")

    def by_secret(self, secrets: list[str]) -> dict:
        """Return the stored credential of each of `secrets`, found by fingerprint."""
        from credentials.fingerprints import secret_fingerprint

        stored = {c.fingerprint: c for c in self.credentials()}
        return {secret: stored.get(secret_fingerprint(secret)) for secret in secrets}

    def decided(self) -> int:
        from credentials.models import DECIDED_STATES

        return self.credentials().filter(verification_state__in=DECIDED_STATES).count()

    def verified(self) -> int:
        from credentials.models import VerificationState

        return self.credentials().filter(verification_state=VerificationState.VERIFIED).count()

    def deliveries_of(self, kind: str) -> list[tuple]:
        """Return (delivery, outbox row) for each message of outbox `kind` the sink received,
        in the order received (a message sent twice is there twice)."""
        from mail.models import OutgoingEmail

        deliveries = self.mail.deliveries
        rows = OutgoingEmail.objects.in_bulk([d.outbox_id for d in deliveries if d.outbox_id])
        return [
            (delivery, rows[delivery.outbox_id])
            for delivery in deliveries
            if delivery.outbox_id in rows and rows[delivery.outbox_id].kind == kind
        ]

    def received_per_key(self, kind: str) -> Counter:
        """Count the messages of outbox `kind` the sink received, per key id."""
        from credentials.services.notifications import credential_id_of_topic

        return Counter(credential_id_of_topic(row.topic) for _, row in self.deliveries_of(kind))

    def mail_per_key(self, kind: str) -> list[int]:
        """Return, for every stored key, how many messages of `kind` the sink received."""
        counts = self.received_per_key(kind)
        return [counts.get(pk, 0) for pk in self.credentials().values_list("pk", flat=True)]

    def duplicate_deliveries(self) -> int:
        """Return how many messages the sink received more than once (by Message-ID)."""
        seen = Counter(delivery.message_id for delivery in self.mail.deliveries)
        return sum(count - 1 for count in seen.values() if count > 1)

    def unsent_mail(self) -> int:
        from mail.models import OutgoingEmail

        return OutgoingEmail.objects.filter(state=OutgoingEmail.State.PENDING).count()

    def mail_settled(self, count: int) -> bool:
        """Return True once `count` helpdesk notices arrived and no mail waits to be sent."""
        return sum(self.mail_per_key(HELPDESK_NOTICE)) >= count and not self.unsent_mail()

    def check_one_mail_each(self, count: int) -> None:
        """Check that the helpdesk and the merchant each received one mail per key, and
        that no message arrived twice."""
        expected = f"{count} keys: 1 each"
        for label, kind in (
            ("helpdesk mails per key", HELPDESK_NOTICE),
            ("merchant mails per key", MERCHANT_RESULT),
        ):
            measured = spread(self.mail_per_key(kind))
            self.outcome.check(label, measured, expected, measured == expected)
        duplicates = self.duplicate_deliveries()
        self.outcome.check("messages delivered twice", duplicates, "0", duplicates == 0)
