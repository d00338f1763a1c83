"""Model-level guards around stored secrets."""

import pytest

from credentials.models import Credential
from tests.factories import CredentialFactory, fake_key


@pytest.mark.django_db
def test_bulk_update_of_secrets_is_refused_and_the_stored_secret_is_unchanged():
    credential = CredentialFactory()
    original = credential.secret
    credential.secret = fake_key("sk_test_")

    with pytest.raises(TypeError, match="save each credential"):
        Credential.objects.bulk_update([credential], ["secret"])

    assert Credential.objects.get(pk=credential.pk).secret == original


@pytest.mark.django_db
def test_bulk_update_of_other_columns_still_works():
    credential = CredentialFactory()
    credential.note = "Please enable terminals first."

    Credential.objects.bulk_update([credential], ["note"])

    stored = Credential.objects.get(pk=credential.pk)
    assert stored.note == "Please enable terminals first."
    assert stored.secret == credential.secret


@pytest.mark.django_db
def test_str_and_repr_show_the_hint_never_the_secret():
    credential = CredentialFactory()

    assert credential.secret not in str(credential)
    assert credential.secret not in repr(credential)
    assert credential.secret_hint in str(credential)
