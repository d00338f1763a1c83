"""Helpers of the API tests: addresses, clients with a token, the error shape, and stored keys
of both providers."""

import uuid

from django.test import Client
from django.urls import reverse

from credentials.models import Kind, Mode, Provider, VerificationState
from tests.factories import CredentialFactory
from tests.fake_kashier import fake_secret_key


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def api_client(token: str | None = None, **defaults) -> Client:
    """Return a test client that sends `token` with every call (none: no Authorization)."""
    headers = bearer(token) if token else {}
    return Client(headers=headers, **defaults)


def error_of(response) -> dict:
    """Return the API's error (`code`, `message`) of a refused call, checking its shape."""
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"].strip()
    return body["error"]


def merchants_url() -> str:
    return reverse("api:merchants")


def credentials_url(slug: str) -> str:
    return reverse("api:credentials", kwargs={"merchant_slug": slug})


def secret_url(slug: str, provider: str = Provider.STRIPE, mode: str = Mode.TEST) -> str:
    return reverse("api:secret", kwargs={"merchant_slug": slug, "provider": provider, "mode": mode})


def stripe_key(merchant, *, mode=Mode.TEST, state=VerificationState.VERIFIED, **fields):
    """Return a stored Stripe key of `merchant`, verified unless told."""
    return CredentialFactory(merchant=merchant, mode=mode, verification_state=state, **fields)


def kashier_key(merchant, *, mode=Mode.TEST, state=VerificationState.VERIFIED, **fields):
    """Return a stored Kashier key of `merchant` (secret key, Payment API key, merchant id),
    verified unless told."""
    secret = fake_secret_key()
    return CredentialFactory(
        merchant=merchant,
        provider=Provider.KASHIER,
        mode=mode,
        kind=Kind.SECRET,
        secret_value=secret,
        secret_hint=f"…{secret[-4:]}",
        extra_secret=str(uuid.uuid4()),
        public_key="MID-1-2",
        verification_state=state,
        **fields,
    )
