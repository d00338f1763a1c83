"""Fixtures shared by the whole suite, and the rules for tests that need real services."""

import os

import pytest
from django.db import connection
from django.test import Client

from tests.factories import (
    MembershipFactory,
    MerchantFactory,
    UserFactory,
    default_role,
    fake_key,
)
from tests.helpers import verify_session

PASSWORD = "correct horse battery"

# CI sets this so that a missing service fails the run instead of skipping what needs it.
REQUIRE_SERVICES = os.environ.get("KEYHOUSE_REQUIRE_SERVICES") == "1"


def _missing_service(item) -> str | None:
    """Return why `item` cannot run here, or None if the services it needs are configured."""
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/keyhouse"
    if item.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        return "needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0"
    return None


def pytest_report_header(config):
    from django.conf import settings

    database = settings.DATABASES["default"]
    redis = os.environ.get("REDIS_URL") or "not configured"
    return (
        f"keyhouse: database {database['ENGINE'].rsplit('.', 1)[-1]} "
        f"({database.get('HOST') or database['NAME']}), redis {redis}, "
        f"services required: {'yes' if REQUIRE_SERVICES else 'no'}"
    )


@pytest.fixture(scope="session", autouse=True)
def _purge_test_queue_from_redis():
    """Delete this run's Celery queue from Redis at the end.

    Submissions queue tasks on commit; outside the end-to-end tests no worker consumes them,
    and the queue (named per process) would otherwise stay in Redis after every run.
    """
    yield
    if not os.environ.get("REDIS_URL"):
        return
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2)
    try:
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        client.delete(
            queue,
            f"_kombu.binding.{queue}",
            f"_kombu.binding_permanent.{queue}",
            *client.keys(f"{queue}\x06*"),
        )
    except redis.RedisError:
        pass
    finally:
        client.close()


def pytest_runtest_setup(item):
    reason = _missing_service(item)
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"KEYHOUSE_REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def merchant(db):
    return MerchantFactory(name="Demo Coffee Co", slug="demo-coffee-co")


@pytest.fixture
def other_merchant(db):
    return MerchantFactory(name="Demo Bakery Co", slug="demo-bakery-co")


@pytest.fixture
def member_factory(db):
    """Return a function that adds a new user to a merchant with a default role."""

    def make(merchant, role="owner", **user_fields):
        user = UserFactory(**user_fields)
        MembershipFactory(user=user, merchant=merchant, role=default_role(role))
        return user

    return make


@pytest.fixture
def owner(merchant, member_factory):
    return member_factory(merchant, "owner", email="owner@demo.test")


@pytest.fixture
def other_owner(other_merchant, member_factory):
    return member_factory(other_merchant, "owner", email="other-owner@demo.test")


@pytest.fixture
def client_for():
    """Return a function giving a test client signed in as the given user.

    Staff are signed in as the admin lets them in: with a session verified by a TOTP device
    (given one if they have none). Everybody else is signed in with a password only.
    """

    def make(user):
        client = Client()
        if user.is_staff:
            verify_session(client, user)
        else:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def owner_client(owner, client_for):
    return client_for(owner)


@pytest.fixture
def helpdesk_user(db):
    from teams.helpdesk import HELPDESK_GROUP, helpdesk_groups_ensure

    groups = helpdesk_groups_ensure()
    user = UserFactory(email="helpdesk@demo.test", is_staff=True)
    user.groups.add(groups[HELPDESK_GROUP])
    return user


@pytest.fixture
def superuser(db):
    """A platform admin in no helpdesk group and no merchant."""
    return UserFactory(email="platform-admin@demo.test", is_staff=True, is_superuser=True)


@pytest.fixture
def secret():
    """A made-up Stripe secret key (test mode); a module that needs another kind overrides it."""
    return fake_key("sk_test_")


@pytest.fixture
def fake_stripe(settings):
    """A fake Stripe API on 127.0.0.1 that the code under test is pointed at."""
    from tests.fake_stripe import FakeStripe

    with FakeStripe() as server:
        settings.STRIPE_API_BASE = server.url
        yield server


@pytest.fixture
def fake_kashier(settings):
    """Fake Kashier hosts, test and live, on 127.0.0.1, that the code under test is pointed at."""
    from tests.fake_kashier import fake_kashier_pair

    with fake_kashier_pair(settings) as hosts:
        yield hosts
