"""Asking Kashier about a key: the real client against fake Kashier hosts (one per mode) over
HTTP.

Every outcome must come out as our own code, with nothing of the key or of Kashier's message in
the answer, the exception or the exceptions it was raised from, and no request but GET.
"""

import socket
import threading

import pytest
import requests

from credentials.providers.base import AccountFacts, Answer, KeysToCheck
from credentials.providers.kashier import REASONS, KashierProvider
from credentials.providers.kashier_client import (
    ACCOUNT_PATH,
    KashierAccount,
    KashierUnavailable,
    KeyRefused,
    _session,
    kashier_account,
)
from tests.fake_kashier import (
    REFUSED_BODY,
    FakeKashier,
    Reply,
    account_reply,
    error_reply,
    fake_payment_api_key,
    fake_secret_key,
    refused_reply,
)

MID = "MID-3552-454"
# What Kashier says in its FAILURE bodies.
KASHIER_WORDS = ["Forbidden request", "invalid authorization", "Internal server error"]


@pytest.fixture
def secret():
    return fake_secret_key()


def keys_for(secret: str, *, mode: str = "test", merchant_id: str = MID) -> KeysToCheck:
    return KeysToCheck(
        mode=mode,
        kind="secret",
        secret=secret,
        extra_secret=fake_payment_api_key(),
        public_key=merchant_id,
    )


def verify(secret: str, **options) -> Answer:
    answer = KashierProvider().verify(keys_for(secret, **options))
    assert secret not in repr(answer)
    assert secret[:32] not in repr(answer)
    for words in KASHIER_WORDS:
        assert words not in repr(answer)
    return answer


def assert_says_nothing_of(error: BaseException, secret: str) -> None:
    """Assert that the exception has no chain and shows neither the key nor Kashier's words."""
    assert error.__cause__ is None
    assert error.__context__ is None
    for text in (str(error), repr(error), *map(str, error.args)):
        assert secret not in text
        assert secret[:32] not in text
        for words in KASHIER_WORDS:
            assert words not in text


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on (bound, read, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Keys that Kashier accepts


@pytest.mark.parametrize("mode", ["test", "live"])
def test_key_accepted_by_the_chosen_modes_host_is_verified_with_the_account(
    fake_kashier, secret, mode
):
    fake_kashier[mode].accept(secret, merchant_id=MID, name="Demo Coffee Cairo")

    answer = verify(secret, mode=mode)

    assert answer == Answer(
        "verified",
        facts=AccountFacts(
            account_id=MID, display_name="Demo Coffee Cairo", livemode=mode == "live"
        ),
    )
    assert [(host, r.method, r.path) for host, r in fake_kashier.requests_for(secret)] == [
        (mode, "GET", ACCOUNT_PATH)
    ]


def test_merchant_id_is_compared_without_regard_to_case(fake_kashier, secret):
    fake_kashier.test.accept(secret, merchant_id="mid-3552-454")

    answer = verify(secret, merchant_id=MID)

    assert answer.code == "verified"
    assert answer.facts.account_id == "mid-3552-454"


def test_answer_naming_no_merchant_id_is_verified_for_the_submitted_one(fake_kashier, secret):
    fake_kashier.test.accept(secret, merchant_id=None, name=None)

    answer = verify(secret)

    assert answer == Answer(
        "verified", facts=AccountFacts(account_id=MID, display_name="", livemode=False)
    )


def test_key_of_another_merchant_id_is_refused_as_a_mismatch(fake_kashier, secret):
    fake_kashier.live.accept(secret, merchant_id="MID-9999-1")

    answer = verify(secret, mode="live", merchant_id=MID)

    assert answer == Answer("merchant_id_mismatch")
    assert "belongs to another merchant ID" in KashierProvider().reason(answer.code, kind="secret")


def test_secret_key_is_sent_raw_without_bearer(fake_kashier, secret):
    # The fake, like Kashier, takes the header as the key: "Bearer <key>" would be unknown.
    fake_kashier.test.accept(secret)

    assert kashier_account(secret, mode="test") == KashierAccount(
        merchant_id=MID, name="Fake Kashier merchant"
    )
    reply = requests.get(
        fake_kashier.test.url + ACCOUNT_PATH,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=2,
    )
    assert reply.status_code == 401


# Keys that Kashier refuses


def test_key_refused_by_both_hosts_is_an_invalid_secret_key(fake_kashier, secret):
    answer = verify(secret, mode="test")

    assert answer == Answer("invalid_secret_key")
    assert [(host, r.method) for host, r in fake_kashier.requests_for(secret)] == [
        ("test", "GET"),
        ("live", "GET"),
    ]
    assert "Kashier did not accept this secret key" in REASONS["invalid_secret_key"]


def test_live_key_submitted_as_test_is_named_a_live_key(fake_kashier, secret):
    fake_kashier.live.accept(secret)

    answer = verify(secret, mode="test")

    assert answer == Answer("wrong_mode_live")
    reason = KashierProvider().reason(answer.code, kind="secret", mode="test")
    assert reason.startswith("This is a live key, not a test key")
    assert "Live chosen" in reason


def test_test_key_submitted_as_live_is_named_a_test_key(fake_kashier, secret):
    fake_kashier.test.accept(secret)

    answer = verify(secret, mode="live")

    assert answer == Answer("wrong_mode_test")
    reason = KashierProvider().reason(answer.code, kind="secret", mode="live")
    assert reason.startswith("This is a test key, not a live key")
    assert "Test chosen" in reason


def test_key_refused_by_the_chosen_host_while_the_other_is_down_is_refused(fake_kashier, secret):
    fake_kashier.live.on(secret, error_reply(503))

    assert verify(secret, mode="test") == Answer("invalid_secret_key")


def test_other_host_is_not_asked_when_both_modes_share_one_host(fake_kashier, secret, settings):
    settings.KASHIER_API_BASE_LIVE = fake_kashier.test.url

    assert verify(secret, mode="test") == Answer("invalid_secret_key")
    assert len(fake_kashier.test.requests_for(secret)) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refusal_comes_out_as_our_own_code_without_kashiers_words(fake_kashier, secret, status):
    fake_kashier.test.on(secret, Reply(status, REFUSED_BODY))

    with pytest.raises(KeyRefused) as raised:
        kashier_account(secret, mode="test")

    assert raised.value.code == "invalid_secret_key"
    assert_says_nothing_of(raised.value, secret)


# Kashier not answering as it should: retried


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (error_reply(500), "kashier_error"),
        (error_reply(503), "kashier_error"),
        (error_reply(429, "Too many requests"), "rate_limited"),
        (error_reply(404, "Not found"), "unexpected_404"),
        (error_reply(400, "Bad request"), "unexpected_400"),
        (Reply(302, "moved"), "unexpected_302"),
        (Reply(200, "<html>maintenance</html>"), "unexpected_answer"),
        (
            Reply(200, {"status": "FAILURE", "messages": {"en": "Forbidden request"}}),
            "unexpected_answer",
        ),
        (Reply(200, {"response": {"merchantId": MID}}), "unexpected_answer"),
    ],
    ids=["500", "503", "429", "404", "400", "302", "not-json", "200-failure", "no-status"],
)
def test_outage_or_unreadable_answer_is_transient_with_our_own_code(
    fake_kashier, secret, reply, code
):
    fake_kashier.test.on(secret, reply)

    assert verify(secret) == Answer(code, transient=True)
    with pytest.raises(KashierUnavailable) as raised:
        kashier_account(secret, mode="test")
    assert raised.value.code == code
    assert_says_nothing_of(raised.value, secret)


def test_error_echoing_the_key_is_never_repeated(fake_kashier, secret):
    fake_kashier.test.on(secret, error_reply(500, f"Internal server error for key {secret}"))

    answer = verify(secret)

    assert answer == Answer("kashier_error", transient=True)


def test_kashier_down_then_back_is_transient_then_verified(fake_kashier, secret):
    fake_kashier.test.on(secret, [error_reply(500), account_reply(merchant_id=MID)])

    assert verify(secret) == Answer("kashier_error", transient=True)
    assert verify(secret).code == "verified"


def test_no_answer_in_time_is_transient_and_timed_out(fake_kashier, secret, settings):
    settings.KASHIER_TIMEOUT_SECONDS = 0.2
    fake_kashier.test.on(secret, account_reply(merchant_id=MID, delay=1.0))

    assert verify(secret) == Answer("timed_out", transient=True)
    with pytest.raises(KashierUnavailable) as raised:
        kashier_account(secret, mode="test")
    assert raised.value.code == "timed_out"
    assert_says_nothing_of(raised.value, secret)


def test_refused_connection_is_transient_and_connection_failed(settings, secret):
    settings.KASHIER_API_BASE_TEST = f"http://127.0.0.1:{closed_port()}"

    assert verify(secret) == Answer("connection_failed", transient=True)
    with pytest.raises(KashierUnavailable) as raised:
        kashier_account(secret, mode="test")
    assert_says_nothing_of(raised.value, secret)


def test_outage_codes_have_words_and_unexpected_answers_keep_their_code():
    provider = KashierProvider()

    assert provider.outage_words("timed_out") == "no answer in time"
    assert provider.outage_words("kashier_error") == "an error on Kashier's side"
    assert provider.outage_words("unexpected_404") == "unexpected answer: unexpected_404"


# Read-only


def test_no_verification_outcome_makes_any_request_but_get(fake_kashier):
    accepted, live, refused, down = (fake_secret_key() for _ in range(4))
    fake_kashier.test.accept(accepted)
    fake_kashier.live.accept(live)
    fake_kashier.test.on(down, error_reply(500))

    outcomes = [verify(key).code for key in (accepted, live, refused, down)]

    assert outcomes == ["verified", "wrong_mode_live", "invalid_secret_key", "kashier_error"]
    assert fake_kashier.non_get_requests == []
    assert {r.method for host in (fake_kashier.test, fake_kashier.live) for r in host.requests} == {
        "GET"
    }


def test_fake_kashier_answers_and_records_any_write_with_405(fake_kashier, secret):
    # What the assertion above relies on: a write would be seen.
    fake_kashier.test.accept(secret)

    reply = requests.post(
        fake_kashier.test.url + ACCOUNT_PATH,
        headers={"Authorization": secret},
        json={"amount": 1},
        timeout=2,
    )

    assert reply.status_code == 405
    assert [(r.method, r.path) for r in fake_kashier.non_get_requests] == [("POST", ACCOUNT_PATH)]


# The HTTP session


def test_each_thread_reuses_one_session():
    sessions = []
    thread = threading.Thread(target=lambda: sessions.append(_session()))
    thread.start()
    thread.join()

    assert _session() is _session()
    assert sessions[0] is not _session()


def test_demo_host_accepts_well_shaped_keys_without_naming_a_merchant_id(settings):
    with FakeKashier(mode="test", demo=True) as host:
        settings.KASHIER_API_BASE_TEST = host.url
        good = fake_secret_key()
        bad = fake_secret_key()[:-4] + "bad0"

        assert kashier_account(good, mode="test") == KashierAccount(
            merchant_id="", name="Fake Kashier merchant"
        )
        with pytest.raises(KeyRefused):
            kashier_account(bad, mode="test")
        with pytest.raises(KeyRefused):
            kashier_account("not-a-key", mode="test")


def test_refused_reply_has_kashiers_shape():
    reply = refused_reply()

    assert reply.status == 401
    assert reply.body == {
        "status": "FAILURE",
        "error": {"cause": "invalid authorization"},
        "messages": {"en": "Forbidden request", "ar": "Forbidden request"},
    }
