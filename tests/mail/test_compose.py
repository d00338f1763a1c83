"""The message handed to the mail server: exactly the bytes Python's email package would
write, however its headers look, written faster for the usual ones."""

import email.policy

import pytest
from django.conf import settings
from hypothesis import event, given
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


def fold(policy, name: str, value: str) -> bytes | type[Exception]:
    """The header as `policy` writes it, or the error it refuses it with (a value that would
    inject a header)."""
    try:
        return policy.fold_binary(name, value)
    except Exception as error:  # noqa: BLE001  compared, whichever it is
        return type(error)


PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
FOLDED_ASCII = st.lists(
    st.text(alphabet=PRINTABLE_ASCII, min_size=1, max_size=80),
    min_size=1,
    max_size=4,
).map(lambda lines: "\n ".join(lines))


@hypothesis_settings(max_examples=800, deadline=None)
@given(
    name=st.sampled_from(["Subject", "To", "From", "Message-ID", "X-Priority", "Content-Type"]),
    # Any ASCII, and values folded already (an encoded subject's words, one per line).
    value=st.one_of(ASCII_TEXT, FOLDED_ASCII),
    linesep=st.sampled_from(["\n", "\r\n"]),
)
def test_any_header_is_folded_as_the_email_package_folds_it(name, value, linesep):
    policy = mime_message(stored_mail("Keyhouse", ["a@example.test"], False)).message().policy

    folded = fold(policy.clone(linesep=linesep), name, value)

    assert folded == fold(email.policy.compat32.clone(linesep=linesep), name, value)


@hypothesis_settings(max_examples=500, deadline=None)
@given(subject=st.text(min_size=1, max_size=255).filter(lambda text: text.isprintable()))
def test_a_subject_that_is_not_ascii_reads_back_whole_within_the_line_limit(subject):
    subject = " ".join(subject.split()) or "Keyhouse …"
    mail = stored_mail(subject, ["owner@example.test"], False)

    raw = mime_message(mail).message().as_bytes(linesep="\r\n")
    header = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    received = email.message_from_bytes(raw, policy=email.policy.default)

    assert str(received["Subject"]).strip() == subject
    assert max(len(line) for line in header.split("\r\n")) <= 78
    words = [word for word in header.split() if word.startswith("=?")]
    assert all(len(word) <= 75 for word in words)  # RFC 2047's limit for one encoded word


def test_the_parts_boundary_never_appears_in_the_text_it_separates(monkeypatch):
    taken = "===============0000000000000000001=="
    tokens = iter([1, 2])
    monkeypatch.setattr("mail.compose.random.randrange", lambda _: next(tokens))
    mail = stored_mail("Keyhouse", ["owner@example.test"], False)
    mail.body_text = f"A line that happens to read\n--{taken}\nand goes on.\n"

    raw = mime_message(mail).message().as_bytes(linesep="\r\n")
    received = email.message_from_bytes(raw, policy=email.policy.default)

    assert received.get_boundary() == "===============0000000000000000002=="
    text = received.get_body(preferencelist=("plain",)).get_content()
    html = received.get_body(preferencelist=("html",)).get_content()
    assert text.replace("\r\n", "\n") == mail.body_text
    assert html.strip() == mail.body_html


# Written directly: the bytes the email package writes, for the usual shape and any other.
DATE = "Mon, 30 Nov 2026 22:21:57 -0000"
LINE = st.text(st.characters(blacklist_categories=["Cs"]), max_size=60)
BODY = st.one_of(
    st.lists(LINE, max_size=8).map("\n".join),
    st.lists(st.one_of(LINE, st.sampled_from(["\r\n", "\r", "\n", "x" * 999])), max_size=8).map(
        "".join
    ),
)
SENDERS = st.sampled_from(
    [
        "Keyhouse <keyhouse@localhost>",
        "keyhouse@example.test",
        "Kéyhouse <kh@example.test>",
        f"{'A very long sender name ' * 3}<keyhouse@example.test>",
    ]
)


def by_the_email_package(message) -> bytes:
    return message.message().as_bytes(linesep="\r\n")


def same_boundary_and_date(monkeypatch) -> None:
    monkeypatch.setattr("mail.compose.random.randrange", lambda _: 4242)
    for module in ("django.core.mail.message", "mail.compose"):
        monkeypatch.setattr(f"{module}.formatdate", lambda **_: DATE)


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    subject=st.one_of(ASCII_TEXT, ANY_TEXT),
    local_part=st.from_regex(r"[a-z][a-z0-9.+-]{0,40}", fullmatch=True),
    recipients=st.integers(min_value=1, max_value=5),
    text=BODY,
    html=BODY,
    urgent=st.booleans(),
    sender=SENDERS,
)
def test_the_bytes_sent_are_what_the_email_package_writes(
    subject, local_part, recipients, text, html, urgent, sender
):
    with pytest.MonkeyPatch.context() as monkeypatch:
        same_boundary_and_date(monkeypatch)
        mail = stored_mail(" ".join(subject.split()) or "Keyhouse", [], urgent)
        mail.to = [f"{local_part}{n}@example.test" for n in range(recipients)]
        mail.body_text, mail.body_html = text, html
        message = mime_message(mail)
        message.from_email = sender

        sent = message.wire_bytes()

        assert sent == by_the_email_package(message)
        event("written directly" if message._direct(DATE) else "by the email package")


def test_the_usual_mails_are_written_directly(monkeypatch):
    same_boundary_and_date(monkeypatch)
    for subject in ("[Keyhouse] Acme Ltd: live key sk_live_…4242 verified", "Invitation"):
        message = mime_message(stored_mail(subject, [settings.HELPDESK_EMAIL], True))

        direct = message._direct(DATE)

        assert direct is not None
        assert direct == by_the_email_package(message)


PRINTABLE_SUBJECT = st.text(
    st.characters(blacklist_categories=["Cc", "Cf", "Cs", "Zl", "Zp"]), min_size=1, max_size=120
)
USUAL_BODY = st.lists(LINE, min_size=1, max_size=12).map("\n".join).filter(bool)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    subject=PRINTABLE_SUBJECT,
    local_part=st.from_regex(r"[a-z][a-z0-9.+-]{0,20}", fullmatch=True),
    recipients=st.integers(min_value=1, max_value=2),
    text=USUAL_BODY,
    html=USUAL_BODY,
    urgent=st.booleans(),
)
def test_mail_of_the_usual_shape_is_written_directly_as_the_package_would(
    subject, local_part, recipients, text, html, urgent
):
    subject = " ".join(subject.split()) or "Keyhouse"
    if subject.isascii() and len(subject) > 69:
        subject = subject[:69].strip() or "Keyhouse"  # longer ASCII subjects are folded
    with pytest.MonkeyPatch.context() as monkeypatch:
        same_boundary_and_date(monkeypatch)
        mail = stored_mail(
            subject, [f"{local_part}{n}@example.test" for n in range(recipients)], urgent
        )
        mail.body_text, mail.body_html = text, html
        message = mime_message(mail)

        direct = message._direct(DATE)

        assert direct is not None
        assert direct == by_the_email_package(message)
