"""Scenarios where the infrastructure fails under a running pipeline: the broker is down when
keys are submitted, a worker is killed while it verifies, PostgreSQL restarts mid-burst.

Each submits real keys through the web process, lets real workers verify them with the fake
Stripe, and counts from the database and the SMTP sink that nothing was lost or doubled.
"""

import time

from tests.faults.browser import submit_each
from tests.faults.processes import healthz
from tests.faults.results import Outcome, spread
from tests.faults.stage import Run, wait_for

BROKER_DOWN_KEYS = 10
KILLED_KEYS = 12
KILL_STRIPE_LATENCY = 2.5
RESTART_KEYS = 20
RESTART_STRIPE_LATENCY = 1.0
WORKER_CONCURRENCY = 4


def broker_down_at_submit(run: Run) -> Outcome:
    """A submission never depends on the broker: with Redis stopped, the web still stores
    every key (pending) and answers; once Redis is back (empty), the stale-verification sweep
    queues the keys again and each is verified, with one mail to each side."""
    outcome = Outcome(
        done=(
            f"worker, beat and web running; Redis stopped; {BROKER_DOWN_KEYS} keys submitted "
            "through the web; Redis started again (empty); waited for the stale sweep "
            "(`VERIFY_STALE_AFTER=12s`, swept every 2 s)"
        )
    )
    from credentials.models import VerificationState

    with run.stage("broker_down", outcome) as stage:
        owner, merchants = stage.merchants(BROKER_DOWN_KEYS)
        web = stage.start_web()
        stage.start_worker(concurrency=WORKER_CONCURRENCY)
        stage.start_beat()
        browser = web.browser(owner)

        run.redis.stop()
        status, health = healthz(web.url)
        outcome.check(
            "/healthz while Redis is down",
            f"{status}, broker {health.get('broker')}",
            "503, broker False",
            status == 503 and health.get("broker") is False,
        )
        started = time.monotonic()
        statuses, secrets = submit_each(browser, merchants)
        submit_seconds = time.monotonic() - started
        stored = stage.credentials().count()
        pending = stage.credentials().filter(verification_state=VerificationState.PENDING).count()
        asked_while_down = len(stage.stripe.requests)
        run.redis.start()
        back = time.monotonic()

        outcome.check(
            "submissions accepted while down",
            f"{statuses.count(302)} of {len(statuses)} (302), {submit_seconds:.1f} s in all",
            f"{BROKER_DOWN_KEYS} of {BROKER_DOWN_KEYS}",
            statuses.count(302) == BROKER_DOWN_KEYS,
        )
        outcome.check(
            "stored, pending, Stripe asked while down",
            f"{stored}, {pending}, {asked_while_down}",
            f"{BROKER_DOWN_KEYS}, {BROKER_DOWN_KEYS}, 0",
            (stored, pending, asked_while_down) == (BROKER_DOWN_KEYS, BROKER_DOWN_KEYS, 0),
        )
        wait_for(lambda: stage.verified() == BROKER_DOWN_KEYS, timeout=90)
        recovered = time.monotonic() - back
        verified = stage.verified()
        outcome.check(
            "verified after Redis came back",
            f"{verified} of {stored}, {recovered:.0f} s after",
            f"{BROKER_DOWN_KEYS} of {BROKER_DOWN_KEYS} (lost: 0)",
            verified == BROKER_DOWN_KEYS,
        )
        wait_for(lambda: stage.mail_settled(BROKER_DOWN_KEYS), timeout=30)
        stage.check_one_mail_each(BROKER_DOWN_KEYS)
        requests = spread([stage.stripe.request_count(secret) for secret in secrets])
        outcome.check(
            "Stripe requests per key",
            requests,
            f"{BROKER_DOWN_KEYS} keys: 1 each",
            requests == f"{BROKER_DOWN_KEYS} keys: 1 each",
        )
    return outcome


def worker_killed_mid_verification(run: Run) -> Outcome:
    """A worker killed with SIGKILL while it waits for Stripe loses nothing and doubles no
    mail: the keys it held stay "being verified" until the stale sweep releases them, and a
    new worker verifies every key, mailing each side once."""
    outcome = Outcome(
        done=(
            f"{KILLED_KEYS} keys submitted; fake Stripe answering after "
            f"{KILL_STRIPE_LATENCY} s; the worker (prefork, {WORKER_CONCURRENCY} processes) "
            "and its pool killed with SIGKILL while requests were in flight; a new worker "
            "started"
        )
    )
    from credentials.models import VerificationState

    with run.stage("worker_kill", outcome) as stage:
        stage.stripe.latency = KILL_STRIPE_LATENCY
        owner, merchants = stage.merchants(KILLED_KEYS)
        web = stage.start_web()
        first = stage.start_worker(concurrency=WORKER_CONCURRENCY)
        stage.start_beat()
        statuses, secrets = submit_each(web.browser(owner), merchants)

        in_flight = wait_for(lambda: len(stage.stripe.requests) >= WORKER_CONCURRENCY, timeout=60)
        # Mid-wait: the requests went out moments ago; their answers are seconds away.
        time.sleep(KILL_STRIPE_LATENCY / 4)
        verifying = (
            stage.credentials().filter(verification_state=VerificationState.VERIFYING).count()
        )
        first.kill()
        asked_before_kill = len(stage.stripe.requests)
        decided_before_kill = stage.decided()
        stage.start_worker(concurrency=WORKER_CONCURRENCY)

        outcome.check(
            "being verified when killed",
            f"{verifying} keys ({asked_before_kill} Stripe requests out, {decided_before_kill} "
            "decided)",
            "at least 1 (the kill hit verifications in flight)",
            in_flight and verifying >= 1,
        )
        wait_for(lambda: stage.decided() == KILLED_KEYS, timeout=120)
        verified = stage.verified()
        outcome.check(
            "submitted, stored, verified",
            f"{statuses.count(302)}, {stage.credentials().count()}, {verified}",
            f"{KILLED_KEYS}, {KILLED_KEYS}, {KILLED_KEYS} (lost: 0)",
            (statuses.count(302), stage.credentials().count(), verified) == (KILLED_KEYS,) * 3,
        )
        wait_for(lambda: stage.mail_settled(KILLED_KEYS), timeout=60)
        stage.check_one_mail_each(KILLED_KEYS)
        counts = [stage.stripe.request_count(secret) for secret in secrets]
        asked_twice = sum(count > 1 for count in counts)
        outcome.check(
            "Stripe requests per key",
            spread(counts),
            f"1 each, 2 at most for the {verifying} keys in flight at the kill",
            max(counts) <= 2 and asked_twice <= verifying,
        )
    return outcome


def _asked_before_recorded_after(stage, secrets: list[str], moment: float) -> list[str]:
    """Return the secrets Stripe was asked about before `moment` (a wall-clock time) whose
    outcome was recorded after it: the answers a task held while the database was away."""
    carried = []
    for secret, credential in stage.by_secret(secrets).items():
        asked_at = stage.stripe.first_request_at(secret)
        checked_at = credential.checked_at if credential else None
        if asked_at and checked_at and asked_at < moment < checked_at.timestamp():
            carried.append(secret)
    return carried


def database_restart_mid_burst(run: Run) -> Outcome:
    """A PostgreSQL restart in the middle of a burst of verifications loses no answer: a task
    whose recording fails retries with the answer Stripe already gave (issue 16, item 8),
    so every key is decided, Stripe is asked once per key, and each side is mailed once."""
    outcome = Outcome(
        done=(
            f"{RESTART_KEYS} keys submitted; fake Stripe answering after "
            f"{RESTART_STRIPE_LATENCY} s; once the first keys were decided, `pg_ctl restart -m "
            f"fast` of the private cluster while the worker ({WORKER_CONCURRENCY} processes) "
            "waited for Stripe on the next ones"
        )
    )
    from django.db import connections

    with run.stage("database_restart", outcome) as stage:
        stage.stripe.latency = RESTART_STRIPE_LATENCY
        owner, merchants = stage.merchants(RESTART_KEYS)
        web = stage.start_web()
        stage.start_worker(concurrency=WORKER_CONCURRENCY)
        stage.start_beat()
        statuses, secrets = submit_each(web.browser(owner), merchants)

        # Mid-burst: a first round of keys decided, the next one waiting for Stripe, the
        # rest still queued.
        wait_for(
            lambda: (
                stage.decided() >= WORKER_CONCURRENCY
                and len(stage.stripe.requests) >= 2 * WORKER_CONCURRENCY
            ),
            timeout=60,
        )
        time.sleep(RESTART_STRIPE_LATENCY / 3)
        restart_began = time.time()
        decided_before = stage.decided()
        connections.close_all()
        run.postgres.restart()
        restarted = time.time()
        connections.close_all()

        wait_for(lambda: stage.decided() == RESTART_KEYS, timeout=120)
        decided = stage.decided()
        outcome.check(
            "submitted, stored, decided",
            f"{statuses.count(302)}, {stage.credentials().count()}, {decided} "
            f"({decided_before} decided before the restart, which took "
            f"{restarted - restart_began:.1f} s)",
            f"{RESTART_KEYS}, {RESTART_KEYS}, {RESTART_KEYS}",
            (statuses.count(302), stage.credentials().count(), decided) == (RESTART_KEYS,) * 3,
        )
        carried = _asked_before_recorded_after(stage, secrets, restarted)
        asked_again = sum(stage.stripe.request_count(secret) > 1 for secret in carried)
        outcome.check(
            "answers known before the restart, recorded after it; of those, asked again",
            f"{len(carried)}; {asked_again}",
            "at least 1 (the restart hit the burst); 0",
            len(carried) >= 1 and asked_again == 0,
        )
        requests = spread([stage.stripe.request_count(secret) for secret in secrets])
        outcome.check(
            "Stripe requests per key",
            requests,
            f"{RESTART_KEYS} keys: 1 each",
            requests == f"{RESTART_KEYS} keys: 1 each",
        )
        wait_for(lambda: stage.mail_settled(RESTART_KEYS), timeout=60)
        stage.check_one_mail_each(RESTART_KEYS)
    return outcome
