"""Portal requests: submitting keys and reading the pages, at growing numbers of rows."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.benchmarks.harness import Section, Timings, timed
from tests.helpers import verify_session

SUBMISSIONS = 200
ROW_COUNTS = (10, 1000)
PAGE_REPEATS = 50


def _setup():
    from tests.factories import MembershipFactory, MerchantFactory, UserFactory, default_role

    merchant = MerchantFactory(name="Bench Coffee Co", slug="bench-coffee-co")
    owner = UserFactory(email="bench-owner@example.test")
    MembershipFactory(user=owner, merchant=merchant, role=default_role("owner"))
    staff = UserFactory(email="bench-staff@example.test", is_staff=True, is_superuser=True)
    return merchant, owner, staff


def _submit(client, merchant) -> Timings:
    from tests.factories import fake_key

    timings = Timings()
    url = reverse("credentials:submit", kwargs={"slug": merchant.slug})
    for _ in range(SUBMISSIONS):
        data = {
            "publishable_key": fake_key("pk_test_"),
            "secret_key": fake_key("sk_test_"),
            "requested_integrations": ["online_payments"],
            "note": "",
        }
        response = timed(timings, lambda data=data: client.post(url, data))
        assert response.status_code == 302, response.status_code
    return timings


def _page(client, url) -> tuple[Timings, int]:
    timings = Timings()
    for _ in range(PAGE_REPEATS):
        response = timed(timings, lambda: client.get(url))
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return timings, len(queries)


def run() -> Section:
    from credentials.models import Credential
    from tests.factories import CredentialFactory, UserFactory

    merchant, owner, staff = _setup()
    owner_client, staff_client = Client(), Client()
    owner_client.force_login(owner)
    # The admin opens only to a session verified with a TOTP code.
    verify_session(staff_client, staff)

    submit = _submit(owner_client, merchant)
    rows = [
        "| submit keys (POST, validate, encrypt, save) | "
        f"{SUBMISSIONS} | {submit.p50_ms:.1f} | {submit.p95_ms:.1f} | — |"
    ]
    submitters = [UserFactory() for _ in range(10)]
    for count in ROW_COUNTS:
        missing = count - Credential.objects.count()
        for index in range(max(0, missing)):
            CredentialFactory(merchant=merchant, submitted_by=submitters[index % 10])
        for label, client, url in (
            ("merchant page", owner_client, merchant.get_absolute_url()),
            ("dashboard", owner_client, reverse("merchants:dashboard")),
            ("admin keys list", staff_client, reverse("admin:credentials_credential_changelist")),
        ):
            timings, queries = _page(client, url)
            rows.append(
                f"| {label}, {count} keys stored | {PAGE_REPEATS} | {timings.p50_ms:.1f} | "
                f"{timings.p95_ms:.1f} | {queries} |"
            )
    body = "\n".join(
        [
            "In-process requests through Django's test client (no network), one merchant.",
            "Query counts must not grow with the number of stored keys.",
            "",
            "| request | samples | p50 ms | p95 ms | queries |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
        ]
    )
    return Section("Portal requests", body)
