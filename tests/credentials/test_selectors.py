"""Reads of keys: a page never decrypts what it does not show."""

import pytest
from django.db import connection
from django.urls import reverse

from credentials.models import Credential, LifecycleState, VerificationState
from credentials.selectors import (
    credential_get_for_member,
    credential_last_retired,
    credentials_by_provider,
    credentials_history,
)
from tests.factories import CredentialFactory

pytestmark = pytest.mark.django_db

# A value no configured key decrypts: reading it through the field raises.
UNDECRYPTABLE = "gAAAAABnot-a-token-any-configured-key-decrypts-xxxxxxxxxxxxxxxxxxxx=="


def corrupt_secret(credential: Credential) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE credentials_credential SET secret = %s WHERE id = %s",
            [UNDECRYPTABLE, credential.pk],
        )


@pytest.fixture
def rolled(owner, merchant):
    """An old key superseded by a newer, active one whose secret no key can decrypt."""
    newer = CredentialFactory(
        merchant=merchant, submitted_by=owner, verification_state=VerificationState.VERIFIED
    )
    older = CredentialFactory(
        merchant=merchant,
        submitted_by=owner,
        verification_state=VerificationState.VERIFIED,
        lifecycle_state=LifecycleState.SUPERSEDED,
        secret=None,
        replaced_by=newer,
    )
    corrupt_secret(newer)
    return older, newer


def test_the_merchant_page_renders_when_the_replacing_key_cannot_be_decrypted(
    owner_client, merchant, rolled
):
    response = owner_client.get(reverse("credentials:merchant", kwargs={"slug": merchant.slug}))

    assert response.status_code == 200
    assert rolled[1].secret_hint in response.content.decode()


def test_the_key_page_renders_when_its_secret_cannot_be_decrypted(owner_client, merchant, rolled):
    _, newer = rolled

    response = owner_client.get(
        reverse("credentials:detail", kwargs={"slug": merchant.slug, "pk": newer.pk})
    )

    assert response.status_code == 200


def test_no_display_selector_reads_a_secret_column(owner, merchant, rolled):
    older, newer = rolled
    mode = newer.mode

    # Each would raise SecretDecryptionError if it loaded a secret, its own or a related key's.
    list(credentials_history(user=owner, merchant=merchant))
    credentials_by_provider(user=owner, merchant=merchant)
    credential_last_retired(user=owner, merchant=merchant, provider=newer.provider, mode=mode)
    credential_get_for_member(user=owner, merchant=merchant, pk=older.pk)
