"""Turning a team rule's answer into a refusal."""

from audit.refusals import Refused


def refuse(message: str | None, merchant) -> None:
    """Raise Refused with `message` (a rule's answer) unless it is None (allowed)."""
    if message:
        raise Refused(message, merchant=merchant)
