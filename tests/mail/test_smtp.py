"""The SMTP backend as deployed, against a real SMTP server: a worker thread keeps its
connection between sends, and a connection that is stale, broken or no longer wanted is
never used for a message."""

import smtplib
import threading
import time

import pytest
from django.core.mail import EmailMessage, get_connection

from mail import smtp
from tests.e2e.smtp_sink import SmtpSink


@pytest.fixture
def sink(settings):
    with SmtpSink(idle_timeout=0.5) as server:
        use(settings, server)
        yield server
    smtp._quit_kept()


def use(settings, server: SmtpSink) -> None:
    settings.EMAIL_BACKEND = "mail.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.EMAIL_KEEP_OPEN_SECONDS = 10


def send(subject: str, to: str = "merchant@example.test", **kwargs) -> int:
    message = EmailMessage(subject, "Body.", to=[to], **kwargs)
    return get_connection().send_messages([message])


def subjects(server: SmtpSink) -> list[str]:
    return [mail.subject for mail in server.received]


def test_a_thread_sends_one_batch_after_another_over_one_connection(sink):
    for number in range(3):
        assert send(f"Mail {number}") == 1

    assert subjects(sink) == ["Mail 0", "Mail 1", "Mail 2"]
    assert sink.sessions == 1


def test_each_thread_has_its_own_connection(sink):
    sent = []
    threads = [threading.Thread(target=lambda: sent.append(send("From a thread"))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    send("From the main thread")

    assert sent == [1, 1]
    assert len(sink.received) == 3
    assert sink.sessions == 3


def test_a_connection_the_server_closed_while_kept_is_replaced_and_the_mail_sent_once(sink):
    send("Before the server hung up")
    time.sleep(1)  # more than the server waits for a next command: it hangs up

    assert send("After") == 1

    assert subjects(sink) == ["Before the server hung up", "After"]
    assert sink.sessions == 2


def test_a_connection_on_which_a_send_failed_is_not_kept(sink):
    sink.refuse_next()
    with pytest.raises(smtplib.SMTPDataError):
        send("Refused")

    assert send("Accepted") == 1

    assert subjects(sink) == ["Accepted"]
    assert sink.sessions == 2


def test_a_connection_idle_longer_than_the_setting_is_not_taken_up(sink, settings):
    settings.EMAIL_KEEP_OPEN_SECONDS = 0.1
    send("First")
    time.sleep(0.2)

    send("Second")

    assert subjects(sink) == ["First", "Second"]
    assert sink.sessions == 2


def test_keeping_nothing_open_closes_each_connection_as_django_does(sink, settings):
    settings.EMAIL_KEEP_OPEN_SECONDS = 0

    send("First")
    send("Second")

    assert subjects(sink) == ["First", "Second"]
    assert sink.sessions == 2


def test_a_kept_connection_never_carries_mail_for_another_server(sink, settings):
    send("To the first server")
    with SmtpSink() as other:
        use(settings, other)

        send("To the second server")

    assert subjects(sink) == ["To the first server"]
    assert subjects(other) == ["To the second server"]


def test_a_server_that_cannot_be_reached_again_fails_the_send(settings):
    server = SmtpSink().start()
    use(settings, server)
    send("Before")
    server.stop()

    with pytest.raises(ConnectionRefusedError):
        send("While it is down")

    assert subjects(server) == ["Before"]


def test_the_envelope_carries_the_bare_addresses_every_time(sink):
    for _ in range(2):
        send("Hello", to="Zoë Owner <owner@example.test>", from_email="Kéyhouse <kh@example.test>")

    assert [(mail.sender, mail.recipients) for mail in sink.received] == [
        ("kh@example.test", ("owner@example.test",))
    ] * 2
    assert "Zo" in str(sink.received[0].message["To"])


def test_an_address_that_cannot_be_sent_to_is_refused_every_time(sink):
    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid address"):
            send("Hello", to="owner@")

    assert sink.received == []
