"""Users, roles and memberships: who may do what for which merchant."""

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import Permission, PermissionsMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from core.moments import is_time_zone
from teams.permissions import OWNER


def time_zone_validator(value: str) -> None:
    """Refuse a name that is not a time zone this machine knows."""
    if value and not is_time_zone(value):
        raise ValidationError(
            f"“{value}” is not a time zone: choose one from the list, such as Europe/Berlin.",
            code="unknown_time_zone",
        )


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        # People type their address with whatever capitals they like.
        return self.get(email__iexact=username)

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address: merchant member, helpdesk agent or both."""

    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(
        "staff status", default=False, help_text="May sign in to the helpdesk admin."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[time_zone_validator],
        help_text="IANA name such as Europe/Berlin; empty until chosen or detected.",
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="teams_user_email_ci_unique"),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def has_perm(self, perm, obj=None):
        """Return True if the user holds `perm`, globally (obj=None) or for `obj`.

        Django lets active superusers pass every check. That stays true for the admin
        (obj=None), but a permission for one merchant comes only from the role held there:
        a platform superuser who is a "View only" member cannot submit keys as that member.
        """
        if obj is None:
            return super().has_perm(perm, obj)
        if not self.is_active:
            return False
        for backend in auth.get_backends():
            if not hasattr(backend, "has_perm"):
                continue
            try:
                if backend.has_perm(self, perm, obj):
                    return True
            except PermissionDenied:
                return False
        return False

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email


class RoleQuerySet(models.QuerySet):
    def defaults(self):
        return self.filter(merchant__isnull=True)

    def available_to(self, merchant):
        """Return the default roles and the merchant's own custom roles."""
        return self.filter(models.Q(merchant__isnull=True) | models.Q(merchant=merchant))


class Role(models.Model):
    """A named set of merchant permissions: a default role (no merchant) or a custom one."""

    merchant = models.ForeignKey(
        "merchants.Merchant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="custom_roles",
        help_text="Empty for the default roles, which every merchant shares.",
    )
    slug = models.SlugField(
        max_length=64, blank=True, help_text="Set for default roles, which code refers to."
    )
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=255, blank=True)
    permissions = models.ManyToManyField(Permission, related_name="merchant_roles")

    objects = RoleQuerySet.as_manager()

    class Meta:
        ordering = ["merchant_id", "pk"]
        constraints = [
            models.UniqueConstraint(
                "merchant",
                Lower("name"),
                name="teams_role_name_unique_per_merchant",
            ),
            models.UniqueConstraint(
                Lower("name"),
                condition=models.Q(merchant__isnull=True),
                name="teams_default_role_name_unique",
            ),
            models.UniqueConstraint(
                fields=["slug"],
                condition=models.Q(merchant__isnull=True),
                name="teams_default_role_slug_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(merchant__isnull=True) | models.Q(slug=""),
                name="teams_custom_role_has_no_slug",
            ),
        ]
        permissions = [("manage_custom_roles", "Manage custom roles")]

    def __str__(self):
        return self.name

    @property
    def is_default(self) -> bool:
        return self.merchant_id is None

    @property
    def is_owner(self) -> bool:
        return self.is_default and self.slug == OWNER


class Membership(models.Model):
    """A user's place in one merchant's team, with one role."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["merchant_id", "joined_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "merchant"], name="teams_one_membership"),
        ]
        permissions = [
            ("view_team", "View team"),
            ("invite_members", "Invite members"),
            ("manage_member_roles", "Manage members' roles"),
        ]

    def __str__(self):
        return f"{self.user} in {self.merchant} as {self.role}"

    def clean(self):
        super().clean()
        if (
            self.role_id
            and self.merchant_id
            and self.role.merchant_id not in (None, self.merchant_id)
        ):
            raise ValidationError(
                {"role": "Choose a default role or one of this merchant's own custom roles."}
            )


class InvitationQuerySet(models.QuerySet):
    def pending(self, *, now=None):
        """Return invitations that can still be accepted."""
        now = now or timezone.now()
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)

    def open(self):
        """Return invitations neither accepted nor revoked (possibly expired)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)


class Invitation(models.Model):
    """An invitation to join a merchant's team with a role, by a single-use link.

    Only a SHA-256 of the link's token is stored: the token itself exists in the mail alone.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        EXPIRED = "expired", "Expired"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitations_sent",
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitations_accepted",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One open invitation per address and merchant; a new one replaces the old.
            models.UniqueConstraint(
                "merchant",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="teams_one_open_invitation",
            ),
            models.CheckConstraint(
                condition=~models.Q(accepted_at__isnull=False, revoked_at__isnull=False),
                name="teams_invitation_accepted_or_revoked",
            ),
        ]

    def __str__(self):
        return f"{self.email} to {self.merchant} as {self.role}"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return self.State.ACCEPTED
        if self.revoked_at:
            return self.State.REVOKED
        if self.expires_at <= timezone.now():
            return self.State.EXPIRED
        return self.State.PENDING

    def get_state_display(self) -> str:
        return self.State(self.state).label


class InvitationMail(models.Model):
    """One invitation mail (a first invitation or a resend), kept to count against the rate
    limits per merchant and per address."""

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="mails")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"Invitation mail to {self.invitation.email} at {self.created_at:%Y-%m-%d %H:%M}"


class InvitationCode(models.Model):
    """A short one-time code mailed to an invitation's address before a new account is made.

    Entering it proves that whoever creates the account reads the invited mailbox: a forwarded
    link alone does not create one. Only a keyed hash of the code is stored; a code expires,
    allows a few attempts, and only the newest one of an invitation counts.
    """

    MAX_ATTEMPTS = 5

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"Code for {self.invitation.email} ({self.created_at:%Y-%m-%d %H:%M})"
