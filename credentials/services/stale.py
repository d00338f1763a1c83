"""The stale-verification sweep: queue again the verifications no worker is doing (the broker
was down at submission, a retry was lost, a worker died)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.queue import enqueue
from credentials.models import Credential, VerificationState
from credentials.services.submission import VERIFY_TASK

# Rows one sweep handles: bounded, the next sweep takes the rest.
SWEEP_LIMIT = 500

# Since when a pending key has waited for a worker: its next attempt, or its submission when
# it never had one queued. The expression of the index cred_pending_since, which the query
# must repeat exactly for PostgreSQL to use it.
PENDING_SINCE = Coalesce("verification_next_attempt_at", "submitted_at")


def verifications_requeue_stale(*, now=None) -> int:
    """Queue again the verifications that no worker is doing: return how many.

    A key stays pending when the broker was down at submission or a retry was lost, and
    stays "verifying" when its worker died. Each is queued at most once per
    VERIFY_STALE_AFTER; the verification itself is idempotent, so a duplicate costs nothing.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.VERIFY_STALE_AFTER)
    queued = 0
    # One transaction for the run, not one commit per key: the keys are locked as they are
    # listed, and another sweep skips them.
    with transaction.atomic():
        for pk in _stale_keys(stale_before):
            # Release a dead worker's claim and restart the staleness clock, conditionally,
            # so two sweeps do not both queue it; only while the key is active, so one
            # replaced or revoked since it was listed is never put back to wait.
            released = (
                Credential.objects.active()
                .filter(pk=pk)
                .filter(
                    Q(verification_state=VerificationState.PENDING)
                    | Q(verification_claimed_at__lte=stale_before)
                )
                .exclude(verification_next_attempt_at__gt=stale_before)
                .update(
                    verification_state=VerificationState.PENDING, verification_next_attempt_at=now
                )
            )
            # Queued at once: a worker that takes the task waits for this commit to claim it.
            if released and enqueue(VERIFY_TASK, pk):
                queued += 1
    return queued


def _stale_keys(stale_before) -> list[int]:
    """Return the ids of at most SWEEP_LIMIT stale keys, pending or claimed by a worker that
    died, the longest waiting first.

    One query per state, each read from its partial index in its order (cred_pending_since,
    cred_verifying_since) and stopped at the limit: a single filter with an OR across the two
    states would read every active key to find the few stale ones. The keys are locked, those
    another sweep holds skipped: call it in a transaction.
    """
    active = Credential.objects.active().select_for_update(skip_locked=True, of=("self",))
    pending = (
        active.filter(verification_state=VerificationState.PENDING)
        .annotate(since=PENDING_SINCE)
        .filter(since__lte=stale_before)
        .order_by("since", "pk")
        .values_list("since", "pk")[:SWEEP_LIMIT]
    )
    abandoned = (
        active.filter(
            verification_state=VerificationState.VERIFYING,
            verification_claimed_at__lte=stale_before,
        )
        .order_by("verification_claimed_at", "pk")
        .values_list("verification_claimed_at", "pk")[:SWEEP_LIMIT]
    )
    return [pk for _, pk in sorted([*pending, *abandoned])[:SWEEP_LIMIT]]
