"""The API's answers. They only describe the shapes (for the OpenAPI schema): the values come
from `credentials.public` (a key's public facts, the one shape the webhook events use too) and
`api.services` (a key's secrets)."""

from rest_framework import serializers

from credentials.models import Kind, LifecycleState, Mode, Provider, VerificationState
from credentials.public import credential_public_facts, merchant_public_facts
from credentials.selectors import OnboardingStatus
from merchants.models import Integration

ONBOARDING_STATUSES = [
    OnboardingStatus.AWAITING_KEYS,
    OnboardingStatus.KEYS_SUBMITTED,
    OnboardingStatus.NEEDS_ATTENTION,
    OnboardingStatus.VERIFIED,
    OnboardingStatus.ENABLED,
]


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="What went wrong, for programs: not_authenticated, invalid_token, "
        "missing_scope, not_found, throttled …"
    )
    message = serializers.CharField(help_text="What went wrong and how to fix it, for people.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class MerchantSerializer(serializers.Serializer):
    """A merchant the service account serves (`context["onboarding_statuses"]`: each
    merchant's (code, label) by pk, from `credentials.selectors.merchants_onboarding_status`)."""

    slug = serializers.SlugField()
    name = serializers.CharField()
    onboarding_status = serializers.ChoiceField(
        choices=ONBOARDING_STATUSES,
        help_text="Where the merchant stands: awaiting keys → keys submitted → verified | "
        "needs attention → enabled (acknowledged by the helpdesk).",
    )
    onboarding_status_label = serializers.CharField()
    requested_integrations = serializers.ListField(
        child=serializers.ChoiceField(choices=Integration.choices)
    )

    def to_representation(self, merchant):
        code, label = self.context["onboarding_statuses"][merchant.pk]
        chosen = set(merchant.requested_integrations or ())
        return {
            **merchant_public_facts(merchant),
            "onboarding_status": code,
            "onboarding_status_label": label,
            "requested_integrations": [value for value in Integration.values if value in chosen],
        }


class CredentialSerializer(serializers.Serializer):
    """A key's public facts (`credentials.public.credential_public_facts`): never a secret."""

    id = serializers.IntegerField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    mode = serializers.ChoiceField(choices=Mode.choices)
    kind = serializers.ChoiceField(choices=Kind.choices)
    hint = serializers.CharField(help_text="The key as people see it: `sk_live_…abcd`.")
    verification_state = serializers.ChoiceField(choices=VerificationState.choices)
    verification_code = serializers.CharField(
        allow_blank=True, help_text="The provider's answer, as a code (empty until it answers)."
    )
    account_id = serializers.CharField(
        allow_blank=True, help_text="The provider's account the key belongs to."
    )
    livemode = serializers.BooleanField(allow_null=True)
    lifecycle_state = serializers.ChoiceField(choices=LifecycleState.choices)
    missing_permissions = serializers.ListField(
        child=serializers.CharField(),
        help_text="Permissions the requested integrations need that the key lacks.",
    )
    submitted_at = serializers.DateTimeField(allow_null=True)
    checked_at = serializers.DateTimeField(
        allow_null=True, help_text="When the provider last answered about the key."
    )
    replaced_by = serializers.IntegerField(
        allow_null=True, help_text="The id of the newer key that superseded this one."
    )

    def to_representation(self, credential):
        return credential_public_facts(credential)


class CredentialSecretSerializer(serializers.Serializer):
    """The active verified key of a provider and mode, with its secrets."""

    id = serializers.IntegerField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    mode = serializers.ChoiceField(choices=Mode.choices)
    hint = serializers.CharField()
    secret_key = serializers.CharField(help_text="The secret (or restricted) key.")
    publishable_key = serializers.CharField(required=False, help_text="Stripe only.")
    merchant_id = serializers.CharField(required=False, help_text="Kashier only.")
    payment_api_key = serializers.CharField(required=False, help_text="Kashier only.")

    def to_representation(self, instance):
        credential, secrets = instance
        return {
            "id": credential.pk,
            "provider": credential.provider,
            "mode": credential.mode,
            "hint": credential.secret_hint,
            **secrets,
        }
