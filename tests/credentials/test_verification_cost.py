"""What one verification costs the database, pinned so that statements cannot creep back.

The worker verifies every submitted key; each statement is a round trip to PostgreSQL while
a worker process waits. Transaction control (BEGIN, COMMIT, savepoints) reads and writes no
row and is counted apart. `make bench` ("Cost of one verification") lists the statements.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from core.sql import column
from credentials.models import HelpdeskFlag, LifecycleState, VerificationState
from credentials.services.verification import credential_verify
from integrations.services.accounts import service_account_create
from integrations.services.events import endpoints_exist, endpoints_for
from mail.models import OutgoingEmail
from merchants.models import Merchant
from tests.factories import CredentialFactory, MerchantFactory
from tests.helpers import reload

# transaction=True: the mails go out after the outcome commits, as in the worker;
# serialized_rollback: the data migrations' rows (default roles) stay for the next test.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b")


def _rows_touched(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if not TRANSACTION_CONTROL.match(q["sql"])]


def _verify_counting(credential, django_assert_max_num_queries, most: int) -> list[str]:
    with django_assert_max_num_queries(most) as captured:
        result = credential_verify(credential_id=credential.pk)
    assert result.state == VerificationState.VERIFIED
    return _rows_touched(captured)


def test_a_first_key_is_verified_and_both_mails_sent_in_eight_statements(
    fake_stripe, merchant, owner, django_assert_max_num_queries
):
    credential = CredentialFactory(merchant=merchant, submitted_by=owner)

    statements = _verify_counting(credential, django_assert_max_num_queries, 16)

    assert len(statements) <= 8, "\n".join(statements)
    credential = reload(credential)
    assert credential.verification_state == VerificationState.VERIFIED
    # Both mails went out and the helpdesk's follow-up clock started, within those eight.
    mails = OutgoingEmail.objects.filter(topic=f"credential:{credential.pk}")
    assert sorted(mails.values_list("state", flat=True)) == ["sent", "sent"]
    assert credential.helpdesk_notified_at is not None
    assert credential.followup_due_at is not None


def test_a_roll_costs_the_keys_it_supersedes_and_no_more(
    fake_stripe, merchant, owner, django_assert_max_num_queries
):
    old = CredentialFactory(merchant=merchant, submitted_by=owner)
    credential_verify(credential_id=old.pk)
    new = CredentialFactory(merchant=merchant, submitted_by=owner)

    statements = _verify_counting(new, django_assert_max_num_queries, 22)

    # Eight, and for the replaced key: find and lock it, retire it, audit it, read it back
    # for its webhook event and look for endpoints that want it.
    assert len(statements) <= 13, "\n".join(statements)
    assert reload(old).lifecycle_state == LifecycleState.SUPERSEDED


def test_a_first_key_of_a_merchant_with_a_webhook_endpoint_writes_its_event(
    fake_stripe, merchant, owner, django_assert_max_num_queries
):
    service_account_create(
        name="pos",
        scopes=["credentials:read"],
        merchants=[merchant],
        webhook_url="https://hooks.example.test/keyhouse",
    )
    credential = CredentialFactory(merchant=merchant, submitted_by=owner)

    statements = _verify_counting(credential, django_assert_max_num_queries, 19)

    # Eight, and the event: find the endpoints, write the event and its delivery.
    assert len(statements) <= 11, "\n".join(statements)
    assert any("integrations_webhookevent" in sql for sql in statements)


def test_the_questions_asked_with_the_lock_still_flag_a_duplicate_and_another_account(
    fake_stripe, merchant, owner, other_merchant
):
    """The flags' questions ride on the locking query: they must still find what they find
    when asked on their own."""
    secret = "sk_test_" + "Dup1icateKey0000000000000000000000"
    CredentialFactory(merchant=other_merchant, secret_value=secret)
    CredentialFactory(
        merchant=merchant,
        mode="live",
        verification_state=VerificationState.VERIFIED,
        account_id="acct_someone_else",
    )
    credential = CredentialFactory(merchant=merchant, submitted_by=owner, secret_value=secret)

    credential_verify(credential_id=credential.pk)

    flags = reload(credential).helpdesk_flags
    assert HelpdeskFlag.DUPLICATE_ELSEWHERE in flags
    assert HelpdeskFlag.ACCOUNT_MISMATCH in flags


def _answers(merchants) -> dict[str, bool]:
    asked = dict(
        Merchant.objects.annotate(hooked=endpoints_exist(column(Merchant, "id"))).values_list(
            "name", "hooked"
        )
    )
    for name, merchant in merchants.items():
        found = bool(endpoints_for(event_type="credential.verified", merchant_id=merchant.pk))
        assert asked[name] == found, name
    return {name: asked[name] for name in merchants}


def _account(name: str, **options):
    account, _, _ = service_account_create(
        name=name,
        scopes=["credentials:read"],
        webhook_url=f"https://hooks.example.test/{name}",
        **options,
    )
    return account


def test_whether_endpoints_exist_agrees_with_the_endpoints_found(db):
    """`endpoints_exist` (asked with the lock, in SQL) and `endpoints_for` (the list an event
    is written for) are one rule: every kind of account gives both the same answer."""
    now = timezone.now()
    names = ("listed", "expired", "revoked", "switched off", "none")
    merchants = {name: MerchantFactory(name=name) for name in names}
    _account("listed", merchants=[merchants["listed"]])
    expired = _account("expired", merchants=[merchants["expired"]])
    type(expired).objects.filter(pk=expired.pk).update(expires_at=now - timedelta(minutes=1))
    revoked = _account("revoked", merchants=[merchants["revoked"]])
    type(revoked).objects.filter(pk=revoked.pk).update(revoked_at=now)
    switched_off = _account("switched-off", merchants=[merchants["switched off"]])
    switched_off.endpoints.update(active=False)

    assert _answers(merchants) == {
        "listed": True,
        "expired": False,
        "revoked": False,
        "switched off": False,
        "none": False,
    }

    _account("everyone", all_merchants=True, expires_at=now + timedelta(days=1))

    assert set(_answers(merchants).values()) == {True}
