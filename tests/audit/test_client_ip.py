"""The client's address, as the audit trail and sign-in throttling record it: REMOTE_ADDR,
unless TRUSTED_PROXY_COUNT says how many of our proxies append to X-Forwarded-For; then the
entry that many places from the right, never one the client wrote itself.
"""

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import client_ip

PROXY = "10.0.0.2"


def request_from(remote_addr=PROXY, forwarded=None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0

    assert client_ip(request_from(forwarded="198.51.100.1")) == PROXY


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        # One proxy: it appended the address that reached it; the rest is the client's word.
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # Two proxies: the outer one appended the client, the inner one the outer proxy.
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.1", "198.51.100.1"),
        (1, "198.51.100.1:5121", "198.51.100.1"),
        (1, "[2001:db8::1]:5121", "2001:db8::1"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_with_trusted_proxies_the_client_is_counted_from_the_right(
    settings, trusted, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = trusted

    assert client_ip(request_from(forwarded=forwarded)) == expected


@pytest.mark.parametrize(
    ("trusted", "forwarded"),
    [
        (2, "198.51.100.1"),  # fewer entries than proxies: not through ours
        (1, "not-an-address"),
        (1, ""),
        (1, None),
    ],
)
def test_a_header_that_did_not_come_through_our_proxies_falls_back_to_remote_addr(
    settings, trusted, forwarded
):
    settings.TRUSTED_PROXY_COUNT = trusted

    assert client_ip(request_from(forwarded=forwarded)) == PROXY


def test_no_request_has_no_address():
    assert client_ip(None) is None


def sign_in_failure_ip(**extra) -> str:
    Client(REMOTE_ADDR=PROXY).post(
        reverse("login"), {"username": "someone@demo.test", "password": "wrong"}, **extra
    )
    return AuditEvent.objects.get(action=AuditEvent.Action.SIGN_IN_FAILED).ip


def test_the_audit_trail_keeps_the_proxy_address_when_no_proxy_is_trusted(db, settings):
    settings.TRUSTED_PROXY_COUNT = 0

    assert sign_in_failure_ip(HTTP_X_FORWARDED_FOR="198.51.100.1") == PROXY


def test_the_audit_trail_keeps_the_client_address_behind_a_trusted_proxy(db, settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert sign_in_failure_ip(HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1") == "198.51.100.1"
