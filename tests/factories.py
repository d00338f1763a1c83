"""Factories for the test suite. Keys are made up here: never real ones."""

import secrets
import string

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from credentials.fingerprints import secret_fingerprint
from credentials.models import Credential, Kind, Mode
from merchants.models import Integration, Merchant
from teams.models import Invitation, Membership, Role
from teams.permissions import VIEW_MERCHANT
from teams.rules import permission_objects
from teams.selectors import token_hash as invitation_token_hash
from teams.services import INVITATION_VALID_FOR

_ALPHABET = string.ascii_letters + string.digits


def fake_key(prefix: str, length: int = 32) -> str:
    """Return a made-up Stripe-shaped key such as `sk_test_…` with a random body."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def default_role(slug: str) -> Role:
    return Role.objects.defaults().get(slug=slug)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Merchant {n}")
    slug = factory.Sequence(lambda n: f"merchant-{n}")
    contact_email = factory.LazyAttribute(lambda m: f"contact@{m.slug}.test")
    country = "GB"
    requested_integrations = factory.LazyFunction(lambda: [Integration.ONLINE_PAYMENTS])


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    merchant = factory.SubFactory(MerchantFactory)
    role = factory.LazyFunction(lambda: default_role("owner"))


class RoleFactory(factory.django.DjangoModelFactory):
    """A custom role of a merchant. `permissions` takes `app_label.codename` strings; without
    them the role holds View merchant, the least a custom role may hold."""

    class Meta:
        model = Role
        skip_postgeneration_save = True

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Custom role {n}")
    description = ""

    @factory.post_generation
    def permissions(role, create, extracted, **kwargs):
        if create:
            role.permissions.set(permission_objects(extracted or [VIEW_MERCHANT]))


class InvitationFactory(factory.django.DjangoModelFactory):
    """A pending invitation as Support, valid as long as the service makes it. Pass `token` to
    know its link's token: only its hash is stored, as the service stores it."""

    class Meta:
        model = Invitation

    class Params:
        token = factory.LazyFunction(lambda: secrets.token_urlsafe(32))

    merchant = factory.SubFactory(MerchantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.test")
    role = factory.LazyFunction(lambda: default_role("support"))
    invited_by = factory.SubFactory(UserFactory)
    token_hash = factory.LazyAttribute(lambda o: invitation_token_hash(o.token))
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + INVITATION_VALID_FOR)


class CredentialFactory(factory.django.DjangoModelFactory):
    """A stored credential. `secret` is a made-up key of the credential's mode."""

    class Meta:
        model = Credential

    class Params:
        secret_value = factory.LazyAttribute(lambda o: fake_key(f"sk_{o.mode}_"))

    merchant = factory.SubFactory(MerchantFactory)
    mode = Mode.TEST
    kind = Kind.SECRET
    public_key = factory.LazyAttribute(lambda o: fake_key(f"pk_{o.mode}_"))
    secret = factory.SelfAttribute("secret_value")
    secret_hint = factory.LazyAttribute(lambda o: f"sk_{o.mode}_…{o.secret_value[-4:]}")
    fingerprint = factory.LazyAttribute(lambda o: secret_fingerprint(o.secret_value))
    requested_integrations = factory.LazyFunction(lambda: [Integration.ONLINE_PAYMENTS])
    submitted_by = factory.SubFactory(UserFactory)
