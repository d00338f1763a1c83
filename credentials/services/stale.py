"""The stale-verification sweep: queue again the verifications no worker is doing (the broker
was down at submission, a retry was lost, a worker died)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.queue import enqueue
from credentials.models import Credential, VerificationState
from credentials.services.submission import VERIFY_TASK

# Rows one sweep handles: bounded, the next sweep takes the rest.
SWEEP_LIMIT = 500


def verifications_requeue_stale(*, now=None) -> int:
    """Queue again the verifications that no worker is doing: return how many.

    A key stays pending when the broker was down at submission or a retry was lost, and
    stays "verifying" when its worker died. Each is queued at most once per
    VERIFY_STALE_AFTER; the verification itself is idempotent, so a duplicate costs nothing.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.VERIFY_STALE_AFTER)
    stale = (
        Credential.objects.active()
        .filter(
            Q(verification_state=VerificationState.PENDING)
            & (
                Q(verification_next_attempt_at__lte=stale_before)
                | Q(verification_next_attempt_at__isnull=True, submitted_at__lte=stale_before)
            )
            | Q(
                verification_state=VerificationState.VERIFYING,
                verification_claimed_at__lte=stale_before,
            )
        )
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    queued = 0
    for pk in list(stale):
        # Release a dead worker's claim and restart the staleness clock, conditionally, so
        # two sweeps do not both queue it; only while the key is active, so one replaced or
        # revoked since it was listed is never put back to wait.
        released = (
            Credential.objects.active()
            .filter(pk=pk)
            .filter(
                Q(verification_state=VerificationState.PENDING)
                | Q(verification_claimed_at__lte=stale_before)
            )
            .exclude(verification_next_attempt_at__gt=stale_before)
            .update(verification_state=VerificationState.PENDING, verification_next_attempt_at=now)
        )
        if released and enqueue(VERIFY_TASK, pk):
            queued += 1
    return queued
