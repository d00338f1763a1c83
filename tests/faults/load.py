"""Many merchants at once: concurrent submissions through the web, verified by a worker, each
told once."""

import time
from concurrent.futures import ThreadPoolExecutor

from tests.faults.browser import submit_each
from tests.faults.results import Outcome, spread
from tests.faults.stage import Run, wait_for

SUBMISSIONS = 200
CLIENTS = 4
STRIPE_LATENCY = 0.05


def concurrent_submissions(run: Run) -> Outcome:
    """Concurrent submissions neither get lost nor doubled: 200 keys from 4 clients at once
    (one merchant each) are all stored and decided, each mailed to the helpdesk once, each
    asked of Stripe once, with no duplicate stored."""
    outcome = Outcome(
        done=(
            f"{SUBMISSIONS} keys (one merchant each) POSTed by {CLIENTS} concurrent clients to "
            f"the web (gunicorn, 2 workers); one worker (prefork, 4 processes) and beat; fake "
            f"Stripe answering after {STRIPE_LATENCY * 1000:.0f} ms"
        )
    )
    with run.stage("concurrent", outcome) as stage:
        stage.stripe.latency = STRIPE_LATENCY
        owner, merchants = stage.merchants(SUBMISSIONS)
        web = stage.start_web(workers=2)
        stage.start_worker(concurrency=4)
        stage.start_beat()
        browsers = [web.browser(owner) for _ in range(CLIENTS)]

        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            batches = list(
                pool.map(submit_each, browsers, [merchants[i::CLIENTS] for i in range(CLIENTS)])
            )
        submitted_in = time.monotonic() - started
        statuses = [status for batch, _ in batches for status in batch]
        secrets = [secret for _, batch in batches for secret in batch]
        wait_for(lambda: stage.decided() == SUBMISSIONS, timeout=180)
        wait_for(lambda: stage.mail_settled(SUBMISSIONS), timeout=60)
        settled_in = time.monotonic() - started
        stage.stop_processes()

        stored = stage.credentials()
        outcome.check(
            "accepted (302), stored, decided, verified",
            f"{statuses.count(302)}, {stored.count()}, {stage.decided()}, {stage.verified()} "
            f"(submitted in {submitted_in:.0f} s, all decided and mailed in {settled_in:.0f} s)",
            f"{SUBMISSIONS}, {SUBMISSIONS}, {SUBMISSIONS}, {SUBMISSIONS}",
            (statuses.count(302), stored.count(), stage.decided(), stage.verified())
            == (SUBMISSIONS,) * 4,
        )
        stage.check_one_mail_each(SUBMISSIONS)
        requests = spread([stage.stripe.request_count(secret) for secret in secrets])
        outcome.check(
            "Stripe requests per key",
            requests,
            f"{SUBMISSIONS} keys: 1 each",
            requests == f"{SUBMISSIONS} keys: 1 each",
        )
        fingerprints = list(stored.values_list("fingerprint", flat=True))
        duplicates = len(fingerprints) - len(set(fingerprints))
        outcome.check("keys stored twice", duplicates, "0", duplicates == 0)
    return outcome
