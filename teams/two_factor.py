"""Two-factor sign-in with a TOTP device (django-otp): reading a user's device, checking a
code, and showing a new key as a QR code.

One confirmed TOTP device per account. A code is accepted once: the device keeps the time step
of the last code it accepted (`last_t`) and refuses that step and earlier ones, and after
wrong codes it refuses every code for a growing while (django-otp's throttling).
"""

import base64
import io

import segno
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

CODE_MISSING = "Enter the 6-digit code from your authenticator app."
CODE_WRONG = (
    "That code is not right, or it was already used. Enter the code your authenticator app "
    "shows now."
)
CODE_THROTTLED = (
    "Too many wrong codes: wait a minute, then enter the code your authenticator app shows."
)
NO_DEVICE = "Your account has no authenticator app set up: set one up on your account page."


def device_confirmed(user, *, for_verify: bool = False) -> TOTPDevice | None:
    """Return the user's confirmed TOTP device, or None; `for_verify` locks its row (inside a
    transaction) so that two requests cannot both accept the same code."""
    if user is None or not user.is_authenticated:
        return None
    devices = TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("pk")
    return (devices.select_for_update() if for_verify else devices).first()


def device_pending(user) -> TOTPDevice | None:
    """Return the device the user is setting up (its code not yet confirmed), or None."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=False).order_by("pk").first()


def has_device(user) -> bool:
    """Return True if the user signs in with a TOTP code (a confirmed device)."""
    return user is not None and user.is_authenticated and device_confirmed(user) is not None


def code_refusal(*, user, otp_token: str, device: TOTPDevice | None = None) -> str | None:
    """Check `otp_token` against the user's device (or `device`); return why it is refused,
    or None when it is accepted.

    Accepting a code uses it up. A wrong code counts towards throttling, and that count is
    kept even when the caller's own transaction is rolled back later: it is committed here
    unless a transaction is already open.
    """
    token = "".join((otp_token or "").split())
    if not token:
        return CODE_MISSING
    with transaction.atomic():
        query = (
            TOTPDevice.objects.filter(pk=device.pk)
            if device is not None
            else TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("pk")
        )
        locked = query.select_for_update().first()
        if locked is None or locked.user_id != user.pk:
            return NO_DEVICE
        allowed, _ = locked.verify_is_allowed()
        if not allowed:
            return CODE_THROTTLED
        # A wrong code (letters included) counts towards throttling inside verify_token().
        if not locked.verify_token(token):
            return CODE_WRONG
    if device is not None:
        device.refresh_from_db()
    return None


def key_base32(device: TOTPDevice) -> str:
    """Return the device's key as authenticator apps take it typed in: base32, in groups of 4."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[start : start + 4] for start in range(0, len(key), 4))


def qr_data_uri(device: TOTPDevice) -> str:
    """Return the device's otpauth:// address as a QR code, an SVG `data:` URI for an <img>.

    Drawn here, never by an outside service: the key must not leave the server. A page showing
    it needs `img-src 'self' data:` in its Content-Security-Policy.
    """
    out = io.BytesIO()
    segno.make(device.config_url, error="m").save(out, kind="svg", scale=4, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()
