"""Deleting an account (issue #12 finding 12b): the trail keeps who did what, and the
deletion itself is recorded."""

import pytest
from django.db.models import ProtectedError

from audit.models import AuditEvent
from audit.services import audit_record
from tests.factories import UserFactory
from tests.helpers import reload


def test_an_account_that_acted_cannot_be_deleted_and_its_events_keep_their_actor(owner):
    event = audit_record(action=AuditEvent.Action.SIGNED_IN, actor=owner)

    with pytest.raises(ProtectedError):
        owner.delete()

    kept = reload(event)
    assert (kept.actor_id, kept.actor_email) == (owner.pk, "owner@demo.test")
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.USER_DELETED).exists()


def test_deleting_an_account_that_never_acted_is_recorded(db):
    user = UserFactory(email="never-signed-in@example.test")
    pk = user.pk

    user.delete()

    event = AuditEvent.objects.get(action=AuditEvent.Action.USER_DELETED)
    assert event.target == "user never-signed-in@example.test"
    assert event.details == {"user_id": pk}
    assert event.actor is None  # from code or a shell: the system


def test_every_event_with_an_actor_names_them_by_address_too(owner):
    event = audit_record(action=AuditEvent.Action.SIGNED_IN, actor=owner)

    assert reload(event).actor_email == owner.email
