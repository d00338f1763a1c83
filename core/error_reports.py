"""Error reports (Django's debug page, the admins' error mail) that never show a secret.

Django's own filter hides nothing while DEBUG is on, and only what `sensitive_variables` and
`sensitive_post_parameters` name when it is off. A Stripe key pasted into a form, a password, or
a key in a local variable would then be printed in full on a 400 or 500 debug page. These
classes hide them whatever DEBUG says: by name (passwords, keys, tokens, connection strings), by
shape (anything `core.redaction` recognises as a secret key or a ciphertext), and, last, over
the whole rendered report.
"""

import re
from pprint import pformat

from django.utils.datastructures import MultiValueDict
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from core.redaction import SECRET_IN_TEXT, redact

# The password in `scheme://user:password@host` (DATABASE_URL, REDIS_URL, EMAIL_URL …).
URL_PASSWORD = re.compile(r"(?<=://)([^/@:\s]*):[^/@\s]+@")


def _cleansed_text(text: str) -> str:
    return URL_PASSWORD.sub(r"\1:********@", redact(text))


class _Withheld:
    """A value shown in a report by its redacted repr, so objects that hold a key in an
    attribute (a dataclass, a model instance, a stripe object) are shown without it."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class SecretHidingReporterFilter(SafeExceptionReporterFilter):
    """Hide secrets in every error report, with DEBUG on or off."""

    # Django's names plus connection strings: whatever a setting, a request
    # header, a POST field or a local variable with such a name holds is hidden.
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DSN|"
        "DATABASE_URL|BROKER_URL|REDIS_URL|EMAIL_URL",
        flags=re.IGNORECASE,
    )

    def is_active(self, request):
        """Return True: a developer's debug page is as easy to screenshot as a mail."""
        return True

    def is_hidden(self, name) -> bool:
        """Return True if a value named `name` is hidden whatever it holds."""
        return isinstance(name, str) and bool(self.hidden_settings.search(name))

    def cleanse_setting(self, key, value):
        """Hide by name as Django does, then by shape: secret keys and URL passwords."""
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return _cleansed_text(cleansed)
        return cleansed

    def get_cleansed_multivaluedict(self, request, multivaluedict):
        """Hide every field named like a secret or holding one, not only those marked."""
        multivaluedict = super().get_cleansed_multivaluedict(request, multivaluedict)
        cleansed = multivaluedict.copy()
        for name, values in multivaluedict.lists():
            if self.is_hidden(name) or any(
                isinstance(value, str) and SECRET_IN_TEXT.search(value) for value in values
            ):
                cleansed.setlist(name, [self.cleansed_substitute])
        return cleansed

    def get_post_parameters(self, request):
        """Return the POST data with every secret hidden, marked sensitive or not."""
        if request is None:
            return {}
        return self.get_cleansed_multivaluedict(request, super().get_post_parameters(request))

    def get_traceback_frame_variables(self, request, tb_frame):
        """Return a frame's variables with those named like secrets or holding one hidden."""
        return [
            (name, self._cleansed_variable(request, name, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def _cleansed_variable(self, request, name, value):
        if self.is_hidden(name) or (isinstance(value, str) and value == self.cleansed_substitute):
            return self.cleansed_substitute
        if isinstance(value, MultiValueDict):
            return self.get_cleansed_multivaluedict(request, value)
        if isinstance(value, dict | list | tuple):
            value = self.cleanse_setting("", value)
        if isinstance(value, str):
            return _cleansed_text(value)
        try:
            shown = pformat(value)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not break the report
            return value
        cleansed = _cleansed_text(shown)
        return value if cleansed == shown else _Withheld(cleansed)


class SecretHidingExceptionReporter(ExceptionReporter):
    """Django's reporter with one last pass over the finished report.

    The filter cannot reach everything the report shows (the exception's own message, the
    query string, a chained exception): whatever still has the shape of a key is replaced.
    """

    def get_traceback_html(self):
        return _cleansed_text(super().get_traceback_html())

    def get_traceback_text(self):
        return _cleansed_text(super().get_traceback_text())
