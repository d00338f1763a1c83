"""The message handed to the mail server: exactly the bytes Python's email package would
write, however its headers look, written faster for the usual ones."""

import email.policy

from django.conf import settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mail.compose import mime_message
from mail.models import OutgoingEmail

ASCII_TEXT = st.text(alphabet=st.characters(max_codepoint=0x7E, min_codepoint=0x09), max_size=120)
ANY_TEXT = st.text(min_size=1, max_size=120).filter(lambda text: "\x00" not in text)


def stored_mail(subject: str, to: list[str], urgent: bool) -> OutgoingEmail:
    return OutgoingEmail(
        pk=4242,
        dedupe_key="verification:4242:helpdesk",
        kind="helpdesk_submission",
        to=to,
        subject=subject,
        body_text="Key: sk_live_…4242\nOutcome: verified\n",
        body_html="<p>Key: <code>sk_live_…4242</code></p>",
        urgent=urgent,
    )


def both_ways(mail: OutgoingEmail) -> tuple[bytes, bytes]:
    """The message's bytes as sent, and as the email package's own compat32 policy writes
    the same message (same boundary and date)."""
    message = mime_message(mail).message()
    sent = message.as_bytes(linesep="\r\n")
    message.policy = email.policy.compat32
    return sent, message.as_bytes(linesep="\r\n")


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    subject=st.one_of(ASCII_TEXT, ANY_TEXT),
    local_part=st.from_regex(r"[a-z][a-z0-9.+-]{0,60}", fullmatch=True),
    recipients=st.integers(min_value=1, max_value=6),
    urgent=st.booleans(),
)
def test_a_message_is_written_as_the_email_package_writes_it(
    subject, local_part, recipients, urgent
):
    subject = " ".join(subject.split()) or "Keyhouse"  # composing joins a subject's words
    to = [f"{local_part}{n}@example.test" for n in range(recipients)]

    sent, expected = both_ways(stored_mail(subject, to, urgent))

    assert sent == expected


def test_the_usual_helpdesk_mail_is_written_as_the_email_package_writes_it():
    mail = stored_mail(
        "[Keyhouse] Acme Ltd: live key sk_live_…4242 verified", [settings.HELPDESK_EMAIL], False
    )

    sent, expected = both_ways(mail)

    assert sent == expected
    assert b"Subject: =?utf-8?b?" in sent or b"Subject: \r\n =?utf-8?b?" in sent


@hypothesis_settings(max_examples=500, deadline=None)
@given(
    name=st.sampled_from(["Subject", "To", "From", "Message-ID", "X-Priority", "Content-Type"]),
    value=ASCII_TEXT,
    linesep=st.sampled_from(["\n", "\r\n"]),
)
def test_any_header_is_folded_as_the_email_package_folds_it(name, value, linesep):
    policy = mime_message(stored_mail("Keyhouse", ["a@example.test"], False)).message().policy

    folded = fold(policy.clone(linesep=linesep), name, value)

    assert folded == fold(email.policy.compat32.clone(linesep=linesep), name, value)


def fold(policy, name: str, value: str) -> bytes | type[Exception]:
    """The header as `policy` writes it, or the error it refuses it with (a value that would
    inject a header)."""
    try:
        return policy.fold_binary(name, value)
    except Exception as error:  # noqa: BLE001  compared, whichever it is
        return type(error)
