"""`GET /healthz`: the load balancer's question, answered with the database and the broker."""

import time

import pytest
from django.db import OperationalError
from django.urls import reverse

from config import health
from config.celery_app import app as celery_app

# Nothing listens on the discard port: connections are refused at once.
CLOSED_BROKER_URL = "redis://127.0.0.1:9/0"


@pytest.fixture
def healthz_url():
    return reverse("healthz")


@pytest.fixture
def broker_unreachable(monkeypatch):
    """Point the Celery app at a broker address where nothing listens, for this test only."""
    # broker_write_url follows broker_url while it is unset, and is restored with it.
    assert celery_app.conf.broker_write_url == celery_app.conf.broker_url
    monkeypatch.setattr(celery_app.conf, "broker_url", CLOSED_BROKER_URL)


class RefusingConnection:
    """Stands in for django.db.connection when the database server is gone."""

    def cursor(self):
        raise OperationalError("connection refused")


def test_healthz_reports_ok_when_database_and_broker_answer(client, db, healthz_url):
    response = client.get(healthz_url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": True, "broker": True, "encryption": True}


def test_healthz_is_never_cached(client, db, healthz_url):
    response = client.get(healthz_url)

    assert "no-cache" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_healthz_needs_no_sign_in(client, db, healthz_url):
    response = client.get(healthz_url, follow=False)

    assert response.status_code == 200
    assert not response.has_header("Location")


def test_healthz_reports_503_when_the_broker_cannot_be_reached(
    client, db, healthz_url, broker_unreachable
):
    response = client.get(healthz_url)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": True,
        "broker": False,
        "encryption": True,
    }


def test_healthz_answers_quickly_when_the_broker_refuses(
    client, db, healthz_url, broker_unreachable
):
    started = time.monotonic()
    client.get(healthz_url)

    # One attempt, no back-off sleep between retries.
    assert time.monotonic() - started < health.BROKER_TIMEOUT_SECONDS


def test_broker_url_is_restored_after_a_test_that_breaks_it(client, db, healthz_url):
    assert celery_app.conf.broker_url != CLOSED_BROKER_URL
    assert client.get(healthz_url).json()["broker"] is True


def test_healthz_reports_503_when_the_database_fails(client, db, healthz_url, monkeypatch):
    monkeypatch.setattr(health, "connection", RefusingConnection())

    response = client.get(healthz_url)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": False,
        "broker": True,
        "encryption": True,
    }


def test_healthz_reports_both_failures_at_once(
    client, db, healthz_url, broker_unreachable, monkeypatch
):
    monkeypatch.setattr(health, "connection", RefusingConnection())

    response = client.get(healthz_url)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": False,
        "broker": False,
        "encryption": True,
    }


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_healthz_allows_only_get_and_head(client, db, healthz_url, method):
    response = getattr(client, method)(healthz_url)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_healthz_answers_head_for_load_balancers(client, db, healthz_url):
    response = client.head(healthz_url)

    assert response.status_code == 200
