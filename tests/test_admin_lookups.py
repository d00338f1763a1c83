"""The admin's list filters are no oracle (issue #12 finding 6).

Filters typed into a changelist's address must not narrow rows by a secret column (ciphertext,
a key's fingerprint, an invitation's token hash, a password hash) nor run a pattern of the
requester's choosing (`__regex`, `__iregex`). Django answers such a filter 400 and shows no
rows; the filters the pages offer still work. Every admin page shares the rule
(`core.admin.GuardedAdminMixin`).
"""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from credentials.models import Credential, Mode
from tests.factories import CredentialFactory, InvitationFactory

CATASTROPHIC = "(a+)+$"


@pytest.fixture(params=["helpdesk_user", "superuser"])
def staff_client(request, client_for):
    """A client signed in as a helpdesk agent, then as a platform admin."""
    return client_for(request.getfixturevalue(request.param))


@pytest.fixture
def credentials(merchant, other_merchant):
    return [
        CredentialFactory(merchant=merchant, mode=Mode.TEST, note="a" * 30 + "!"),
        CredentialFactory(merchant=other_merchant, mode=Mode.LIVE),
    ]


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def changelist(model: str) -> str:
    return reverse(f"admin:{model}_changelist")


def stored_fingerprint(credential) -> str:
    return Credential.objects.values_list("fingerprint", flat=True).get(pk=credential.pk)


@pytest.mark.parametrize(
    "lookup",
    [
        "secret__startswith=gAAAAA",
        "secret__isnull=False",
        "fingerprint__startswith={fingerprint}",
        "fingerprint__exact={fingerprint}",
        "merchant__credentials__fingerprint__startswith={fingerprint}",
        f"note__regex={CATASTROPHIC}",
        f"note__iregex={CATASTROPHIC}",
    ],
)
def test_key_queue_refuses_filters_on_secret_columns_and_patterns(
    staff_client, credentials, lookup
):
    query = lookup.format(fingerprint=stored_fingerprint(credentials[0])[:6])

    response = staff_client.get(f"{changelist('credentials_credential')}?{query}")

    assert response.status_code == 400
    assert "cl" not in (response.context or {})


def test_key_queue_filters_it_offers_still_narrow_the_rows(staff_client, credentials):
    response = staff_client.get(f"{changelist('credentials_credential')}?mode__exact=live")

    assert listed(response) == {credentials[1].pk}


def test_invitations_refuse_a_filter_on_the_token_hash(client_for, superuser, merchant):
    invitation = InvitationFactory(merchant=merchant)
    InvitationFactory(merchant=merchant)
    url = changelist("teams_invitation")

    refused = client_for(superuser).get(f"{url}?token_hash__startswith={invitation.token_hash[:4]}")
    allowed = client_for(superuser).get(f"{url}?email__exact={invitation.email}")

    assert refused.status_code == 400
    assert listed(allowed) == {invitation.pk}


def test_accounts_refuse_a_filter_on_the_password_hash(client_for, superuser, owner):
    response = client_for(superuser).get(f"{changelist('teams_user')}?password__startswith=pbkdf2")

    assert response.status_code == 400


def test_encryption_canary_refuses_a_filter_on_its_encrypted_value(client_for, superuser):
    response = client_for(superuser).get(
        f"{changelist('credentials_encryptioncanary')}?value__startswith=gAAAAA"
    )

    assert response.status_code == 400


@pytest.mark.parametrize(
    "model", ["audit_auditevent", "mail_outgoingemail", "merchants_merchant", "teams_role"]
)
def test_every_admin_list_refuses_pattern_lookups(client_for, superuser, merchant, model):
    field = {
        "audit_auditevent": "target",
        "mail_outgoingemail": "subject",
        "merchants_merchant": "name",
        "teams_role": "name",
    }[model]

    response = client_for(superuser).get(f"{changelist(model)}?{field}__regex={CATASTROPHIC}")
    plain = client_for(superuser).get(f"{changelist(model)}?{field}__contains=a")

    assert response.status_code == 400
    assert plain.status_code == 200


def test_audit_trail_filters_it_offers_still_narrow_the_rows(client_for, superuser, owner):
    AuditEvent.objects.create(action=AuditEvent.Action.SIGNED_IN, actor=owner)
    AuditEvent.objects.create(action=AuditEvent.Action.SIGN_IN_FAILED)

    response = client_for(superuser).get(
        f"{changelist('audit_auditevent')}?action__exact=signed_in"
    )

    assert {event.action for event in response.context["cl"].result_list} == {"signed_in"}
