"""Telling the integrator's systems what happened to a key: a webhook event, written in the
caller's transaction (`integrations.services.events`), never carrying a secret."""

from credentials.models import Credential
from credentials.public import credential_public_facts, merchant_public_facts
from credentials.services.notifications import credential_topic
from integrations.scopes import EventType
from integrations.services.events import event_emit, events_emit


def credentials_superseded_event(pks) -> None:
    """Write `credential.superseded` for each key in `pks`, as they are now (retired)."""
    retired = (
        Credential.objects.filter(pk__in=list(pks))
        .select_related("merchant")
        .defer("secret", "extra_secret")
        .order_by("pk")
    )
    by_merchant = {}
    for credential in retired:
        by_merchant.setdefault(credential.merchant_id, []).append(credential)
    for credentials in by_merchant.values():
        events_emit(
            event_type=EventType.SUPERSEDED,
            merchant=credentials[0].merchant,
            items=[(credential_topic(key.pk), _event_data(key)) for key in credentials],
        )


def credential_event(credential: Credential, event_type: EventType) -> None:
    """Write `event_type` about `credential` for every endpoint that wants it."""
    event_emit(
        event_type=event_type,
        merchant=credential.merchant,
        topic=credential_topic(credential.pk),
        data=_event_data(credential),
    )


def _event_data(credential: Credential) -> dict:
    return {
        "merchant": merchant_public_facts(credential.merchant),
        "credential": credential_public_facts(credential),
    }
