"""A wrong FIELD_ENCRYPTION_KEY (issue 16, item 1): every process started with a key that
cannot read what is stored refuses to start, saying which key to put back; a running web
reports a key that no longer reads the stored canary; and a stored key that the worker
cannot decrypt is handed to the helpdesk once instead of being retried in a loop.
"""

import sys
import time

from cryptography.fernet import Fernet

from tests.faults.processes import (
    beat_command,
    healthz,
    runserver_command,
    wait_for_exit,
    web_command,
    worker_command,
)
from tests.faults.results import Outcome
from tests.faults.services import free_port
from tests.faults.stage import HELPDESK_NOTICE, Run, wait_for

# What credentials.encryption.REFUSAL says, whichever process refuses.
REFUSAL = "FIELD_ENCRYPTION_KEY cannot decrypt the values stored in this database"
REFUSAL_SECONDS = 60.0


def _refuses(outcome: Outcome, stage, label: str, command: list[str], *, says: str, key: str):
    """Start `command` with FIELD_ENCRYPTION_KEY=`key` and check that it exits non-zero
    with a message containing `says`; return the process (for a probe of its port)."""
    process = stage.start("refused", command, FIELD_ENCRYPTION_KEY=key)
    process.exit_expected = True
    status = wait_for_exit(process, timeout=REFUSAL_SECONDS)
    said = says in process.output()
    outcome.check(
        label,
        "still running after 60 s"
        if status is None
        else f"exit {status}, message {'shown' if said else 'missing'}",
        "exit ≠ 0, message shown",
        status not in (None, 0) and said,
    )
    return process


def _starts(outcome: Outcome, stage, label: str, *, key: str) -> None:
    """Check that the web application loads with FIELD_ENCRYPTION_KEY=`key`."""
    command = [sys.executable, "-c", "import config.wsgi"]
    process = stage.start("loads", command, FIELD_ENCRYPTION_KEY=key)
    process.exit_expected = True
    status = wait_for_exit(process, timeout=REFUSAL_SECONDS)
    outcome.check(label, f"exit {status}", "exit 0", status == 0)


def _web_refuses(outcome: Outcome, stage, label: str, command_for, *, key: str) -> None:
    """Check that a web server started with `key` exits without serving: /healthz on its
    port gets no answer."""
    port = free_port()
    _refuses(outcome, stage, label, command_for(port), says=REFUSAL, key=key)
    status, answer = healthz(f"http://127.0.0.1:{port}", timeout=2)
    outcome.check(
        f"{label.split(' (')[0]}: /healthz",
        f"no answer ({answer['error']})" if status is None else f"{status} {answer}",
        "no answer (the web refused to load)",
        status is None,
    )


def _column(model, field_name: str) -> tuple[str, str]:
    from django.db import connection

    quote = connection.ops.quote_name
    return quote(model._meta.db_table), quote(model._meta.get_field(field_name).column)


def _read_raw(model, field_name: str) -> dict[int, str]:
    """Return the stored ciphertexts of `model`'s encrypted field, by id."""
    from django.db import connection

    table, column = _column(model, field_name)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {column} FROM {table}")  # noqa: S608  names from the model
        return dict(cursor.fetchall())


def _write_raw(model, field_name: str, ciphertexts: dict[int, str]) -> None:
    """Store ciphertexts in `model`'s encrypted field as they are (the field itself would
    encrypt them again, with the configured key)."""
    from django.db import connection

    table, column = _column(model, field_name)
    statement = f"UPDATE {table} SET {column} = %s WHERE id = %s"  # noqa: S608  as above
    with connection.cursor() as cursor:
        cursor.executemany(statement, [(value, pk) for pk, value in ciphertexts.items()])


def _encrypted_with(key: str, plaintext: str) -> str:
    return Fernet(key.encode()).encrypt(plaintext.encode()).decode()


def _canary_swapped(outcome: Outcome, web_url: str, other_key: str) -> None:
    """Re-encrypt the stored canary under `other_key` (as after restoring a database taken
    under another key) and check that the running web's /healthz says so; then put it back."""
    from credentials.models import EncryptionCanary

    before = healthz(web_url)
    stored = _read_raw(EncryptionCanary, "value")
    foreign = _encrypted_with(other_key, EncryptionCanary.PLAINTEXT)
    _write_raw(EncryptionCanary, "value", dict.fromkeys(stored, foreign))
    try:
        after = healthz(web_url)
    finally:
        _write_raw(EncryptionCanary, "value", stored)

    def said(answer) -> str:
        status, body = answer
        return f"{status}, encryption {body.get('encryption')}"

    outcome.check(
        "running web, /healthz with the right key, then with the canary under another key",
        f"{said(before)}; {said(after)}",
        "200, encryption True; 503, encryption False",
        said(before) == "200, encryption True" and said(after) == "503, encryption False",
    )


def _store_undecryptable(stage, other_key: str) -> int:
    """Store a pending key whose secret is encrypted with `other_key`, queue its verification
    and return its id."""
    from core.queue import enqueue
    from credentials.models import Credential
    from credentials.services.submission import VERIFY_TASK
    from tests.factories import CredentialFactory

    owner, (merchant,) = stage.merchants(1)
    credential = CredentialFactory(merchant=merchant, submitted_by=owner)
    _write_raw(Credential, "secret", {credential.pk: _encrypted_with(other_key, credential.secret)})
    enqueue(VERIFY_TASK, credential.pk)
    return credential.pk


def wrong_encryption_key(run: Run) -> Outcome:
    """A wrong encryption key never runs: the web application (config.wsgi, so gunicorn and
    runserver), the worker and beat each refuse to start with a key that cannot decrypt the
    stored canary, saying which key to put back, and no web answers /healthz; a running web
    reports 503 with "encryption": false once the key no longer reads the canary; and a key
    the worker cannot decrypt is marked for the helpdesk and mailed once, not retried."""
    outcome = Outcome(
        done=(
            "with the right key: web, worker and beat running, a key stored under another "
            "key queued; then each process started with another FIELD_ENCRYPTION_KEY (and "
            "none), the canary re-encrypted under another key under the running web"
        )
    )
    from credentials.models import HelpdeskFlag

    other = Fernet.generate_key().decode()
    right = run.keys["FIELD_ENCRYPTION_KEY"]
    with run.stage("wrong_key", outcome) as stage:
        web = stage.start_web(workers=1)
        stage.start_worker(concurrency=2)
        stage.start_beat()
        undecryptable = _store_undecryptable(stage, other)

        _refuses(
            outcome,
            stage,
            "import config.wsgi with another key",
            [sys.executable, "-c", "import config.wsgi"],
            says=REFUSAL,
            key=other,
        )
        _refuses(
            outcome,
            stage,
            "celery worker with another key",
            worker_command("refused", concurrency=1),
            says="the worker will not start",
            key=other,
        )
        _refuses(
            outcome,
            stage,
            "celery beat with another key",
            beat_command(stage.logs / "refused.schedule"),
            says="beat will not start",
            key=other,
        )
        _web_refuses(
            outcome,
            stage,
            "gunicorn config.wsgi with another key",
            lambda port: web_command(port, workers=1),
            key=other,
        )
        _web_refuses(
            outcome, stage, "manage.py runserver with another key", runserver_command, key=other
        )
        _refuses(
            outcome,
            stage,
            "import config.wsgi with no key",
            [sys.executable, "-c", "import config.wsgi"],
            says="FIELD_ENCRYPTION_KEY",
            key="",
        )
        _starts(
            outcome,
            stage,
            "import config.wsgi with another key first, the right one second",
            key=f"{other},{right}",
        )
        _canary_swapped(outcome, web.url, other)

        wait_for(lambda: stage.decided() == 1, timeout=30)
        # Long enough for the stale sweep to have queued it again, were it going to.
        waited = stage.seconds("VERIFY_STALE_AFTER") + 2 * stage.seconds("FAULTS_SWEEP_EVERY")
        checked = stage.credentials().get(pk=undecryptable).checked_at
        if checked:
            time.sleep(max(0.0, checked.timestamp() + waited - time.time()))
        wait_for(lambda: stage.mail_settled(1), timeout=30)
        credential = stage.credentials().get(pk=undecryptable)
        flagged = HelpdeskFlag.UNDECRYPTABLE in credential.helpdesk_flags
        mails = stage.received_per_key(HELPDESK_NOTICE).get(undecryptable, 0)
        outcome.check(
            "key stored under another key: outcome, flag, attempts, helpdesk mails",
            f"{credential.verification_state}/{credential.verification_code}, "
            f"{'flagged' if flagged else 'not flagged'}, "
            f"{credential.verification_attempts}, {mails}",
            f"unreachable/undecryptable, flagged, 1 (after {waited:g} s), 1",
            credential.verification_state == "unreachable"
            and credential.verification_code == "undecryptable"
            and flagged
            and credential.verification_attempts == 1
            and mails == 1,
        )
    return outcome
