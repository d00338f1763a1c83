"""The statements written by hand (core.sql) give what the ORM would: the same instances,
the same values, the same refusals."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL
from django.db.models.signals import post_save
from django.utils import timezone

from audit.models import AuditEvent
from core.sql import Selection, insert_rows, load_row, save_fields, update_by_ids
from credentials.models import Credential
from mail.models import OutgoingEmail
from merchants.models import Merchant
from teams.models import User
from tests.factories import CredentialFactory

pytestmark = pytest.mark.django_db
KEY_BY_ID = f"FROM {Credential._meta.db_table} WHERE id = %s"


def select(sql_tail: str, *selections: Selection, params=()):
    columns = ", ".join(selection.columns for selection in selections)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} {sql_tail}", params)
        return cursor.fetchone()


def test_a_selection_loads_the_instance_the_orm_loads():
    credential = CredentialFactory(
        missing_permissions=["rak_charge_read"], requested_integrations=["payments"]
    )
    selection = Selection(Credential)
    row = select(
        f"FROM {Credential._meta.db_table} WHERE id = %s", selection, params=[credential.pk]
    )

    loaded = selection.load(row)

    expected = Credential.objects.get(pk=credential.pk)
    for field in Credential._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded.secret == credential.secret
    assert loaded._state.adding is False


def test_deferred_columns_are_not_selected_and_read_on_access():
    credential = CredentialFactory()
    selection = Selection(Credential, deferred=("secret", "extra_secret"))
    assert '"secret"' not in selection.columns

    row = select(
        f"FROM {Credential._meta.db_table} WHERE id = %s", selection, params=[credential.pk]
    )
    loaded = selection.load(row)

    assert loaded.get_deferred_fields() == {"secret", "extra_secret"}
    assert loaded.secret == credential.secret


def test_a_row_an_outer_join_did_not_find_loads_as_none_and_the_rest_follows():
    credential = CredentialFactory(submitted_by=None)
    key, merchant = Selection(Credential), Selection(Merchant)
    submitter = Selection(User)
    row = select(
        f"FROM {Credential._meta.db_table} "
        f"JOIN {Merchant._meta.db_table} ON {Merchant._meta.db_table}.id = merchant_id "
        f"LEFT JOIN {submitter.alias} ON {submitter.alias}.id = submitted_by_id WHERE "
        f"{Credential._meta.db_table}.id = %s",
        key,
        merchant,
        submitter,
        params=[credential.pk],
    )

    (loaded, its_merchant, nobody), rest = load_row((*row, "after"), key, merchant, submitter)

    assert loaded.pk == credential.pk
    assert its_merchant == credential.merchant
    assert nobody is None
    assert rest == ("after",)


def mail(dedupe_key: str) -> OutgoingEmail:
    return OutgoingEmail(
        dedupe_key=dedupe_key, kind="test", to=["a@example.test"], subject="S", body_text="B"
    )


def test_insert_rows_unless_they_exist_leaves_out_stored_and_repeated_ones():
    (before,) = insert_rows([mail("one")], unless_exists="dedupe_key")

    inserted = insert_rows([mail("one"), mail("two"), mail("two")], unless_exists="dedupe_key")

    assert [email.dedupe_key for email in inserted] == ["two"]
    assert OutgoingEmail.objects.get(pk=inserted[0].pk).to == ["a@example.test"]
    assert OutgoingEmail.objects.get(pk=before.pk).dedupe_key == "one"
    assert OutgoingEmail.objects.count() == 2
    assert inserted[0]._state.adding is False


def test_update_by_ids_changes_those_rows_only_with_values_and_sql():
    sent, other = insert_rows([mail("a"), mail("b")], unless_exists="dedupe_key")
    now = timezone.now()

    changed = update_by_ids(
        OutgoingEmail,
        [sent.pk],
        state=OutgoingEmail.State.SENT,
        sent_at=now,
        attempts=RawSQL(f'{OutgoingEmail._meta.db_table}."attempts" + %s', (3,)),  # noqa: S611
    )

    assert changed == 1
    sent.refresh_from_db()
    other.refresh_from_db()
    assert (sent.state, sent.sent_at, sent.attempts) == (OutgoingEmail.State.SENT, now, 3)
    assert (other.state, other.sent_at, other.attempts) == (OutgoingEmail.State.PENDING, None, 0)
    assert update_by_ids(OutgoingEmail, [], state=OutgoingEmail.State.SENT) == 0


def test_save_fields_stores_those_fields_as_save_would_and_no_others():
    credential = CredentialFactory(account_name="Before")
    credential.missing_permissions = ["rak_charge_read", "rak_balance_read"]
    credential.checked_at = timezone.now()
    credential.account_name = "Not saved"

    save_fields(credential, ["missing_permissions", "checked_at"])

    stored = Credential.objects.get(pk=credential.pk)
    assert stored.missing_permissions == ["rak_charge_read", "rak_balance_read"]
    assert stored.checked_at == credential.checked_at
    assert stored.account_name == "Before"


def test_insert_rows_stores_each_and_gives_each_its_own_key():
    first, second = insert_rows([mail("first"), mail("second")])

    assert OutgoingEmail.objects.get(pk=first.pk).dedupe_key == "first"
    assert OutgoingEmail.objects.get(pk=second.pk).dedupe_key == "second"
    assert first._state.adding is False


def test_insert_rows_refuses_a_duplicate_it_was_not_told_to_skip():
    insert_rows([mail("once")])

    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows([mail("once")])


def test_a_model_that_runs_code_when_saved_is_refused_not_skipped():
    event = AuditEvent.objects.create(action="key_verification", target="a key")

    # AuditEvent.save refuses updates: save_fields would skip that.
    with pytest.raises(TypeError, match="runs code when saved"):
        save_fields(event, ["target"])

    def receiver(**kwargs):
        pass

    post_save.connect(receiver, sender=OutgoingEmail)
    try:
        with pytest.raises(TypeError, match="runs code when saved"):
            insert_rows([mail("heard")])
    finally:
        post_save.disconnect(receiver, sender=OutgoingEmail)
    assert not OutgoingEmail.objects.filter(dedupe_key="heard").exists()
