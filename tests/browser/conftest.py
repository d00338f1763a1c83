"""Browser tests: Chromium, driven by Playwright, against a live server with a real worker.

Every test under tests/browser/ is marked `browser` (automatically; a module may say
`pytestmark = pytest.mark.browser` too). Without Chromium they are skipped with the reason
in the summary; with KEYHOUSE_REQUIRE_BROWSER=1 (CI sets it) a missing browser fails them.
The browser is `settings.BROWSER_EXECUTABLE` (env BROWSER_EXECUTABLE), else
/usr/bin/chromium: Debian's package, never a browser downloaded by `playwright install`.
It runs headless with background networking off (the machine has no network).

Fixtures (function-scoped unless said otherwise):

- `live_server`: the app on http://localhost:<port> (session-scoped; pytest-django's server
  with a lock, see below). Requesting it makes the test transactional (with serialized
  rollback, so the default roles survive the flush). Its `.url` is the base.
- `browser_worker`: the Celery worker executing tasks for the live server; every fixture
  below starts it. `browser_worker.wait_until_idle()` waits until nothing is queued or running.
- `fake_stripe` (tests/conftest.py): the fake Stripe the worker verifies keys with; started
  by `live_app`. Register per-key answers on it as the other tests do.
- `mailoutbox` (pytest-django): the mail the worker and the pages sent (locmem backend).
- `live_app`: all of the above together: live server, worker, fake Stripe.
- `open_page(size=DESKTOP)`: a new page in a browser context of its own (its own cookies),
  at the live server's address (`page.goto("/m/…/")` works). Two users in one test: two pages.
- `browser_page`: `open_page(DESKTOP)`, 1280x800. `phone_page`: `open_page(PHONE)`, 390x844.
- `sign_in(page, user)`: signs `user` in through the real forms: merchants at
  /accounts/login/ with email and password (and a code if they have an authenticator);
  staff at /admin/login/ with email, password and a TOTP code (given a device if they have
  none). Every user from tests/factories.py has the password `PASSWORD`.
- `portal_pages(merchant, owner)`, `account_pages()`, `signed_out_pages(merchant, owner)`:
  plain functions returning the addresses of every page a browser opens, for tests that
  visit them all (accessibility, phone width); they create the objects the pages show.
- `demo`: the demo data: `demo.merchant` ("Demo Coffee Co") with `demo.owner`,
  `demo.other_merchant` with `demo.other_owner`, the helpdesk agent `demo.agent` and the
  helpdesk lead `demo.lead`.

Waiting: Playwright's `expect(locator).to_have_text(…, timeout=WAIT_MS)` for what the worker
does (the page polls; never `page.reload()` to make a result appear), and never an assertion
on how long anything took.

Why an in-process worker rather than CELERY_TASK_ALWAYS_EAGER: eager tasks would run inside
the submitting request, so the page after a submission would already say "verified", and the
merchant's view of a key going from "being verified" to "verified" by itself would go
untested. The worker (celery.contrib.testing, solo pool, in a thread of this process)
consumes the test queue on the configured broker: kombu's in-memory transport (shared by
the threads of one process) or Redis when REDIS_URL is set. It is started once per session
and each test waits until it is idle before the database is flushed.

Why a lock: on the default in-memory SQLite database, the live server's request threads,
the worker and the test share one connection (pytest-django passes it to the server's
threads, and the worker gets it here). One connection cannot hold two transactions, so a
request and a task never run at the same time (`live_server.db_lock`). Nothing is shared,
and nothing locked, on PostgreSQL.
"""

import contextlib
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from amqp.exceptions import ChannelError
from celery import signals
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.management.sql import emit_post_migrate_signal
from django.db import connections
from django.urls import resolve, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from pytest_django.live_server_helper import LiveServer

# The tasks must be registered before the worker starts, or it rejects their messages.
import credentials.tasks  # noqa: F401
import mail.tasks  # noqa: F401
from config.celery_app import app as celery_app
from teams.models import Role
from teams.permissions import DEFAULT_ROLES, VIEW_KEYS, VIEW_MERCHANT
from teams.rules import permission_objects
from tests.conftest import PASSWORD
from tests.e2e.waiting import wait_until
from tests.factories import (
    CredentialFactory,
    InvitationFactory,
    MembershipFactory,
    RoleFactory,
    UserFactory,
    default_role,
)
from tests.helpers import totp_code, totp_device
from tests.portal_routes import portal_routes, route_address

DEFAULT_BROWSER = "/usr/bin/chromium"
BROWSER_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# How long to wait for the page to show what a worker or a poll brings (milliseconds).
# Generous for a loaded CI machine: only "it happened" is asserted.
WAIT_MS = 20_000

# CI sets this so that a missing browser fails the browser tests instead of skipping them.
REQUIRE_BROWSER = os.environ.get("KEYHOUSE_REQUIRE_BROWSER") == "1"

_HERE = Path(__file__).resolve().parent


def browser_executable() -> str | None:
    """Return the path of the Chromium to drive, or None when there is none."""
    configured = getattr(settings, "BROWSER_EXECUTABLE", "") or DEFAULT_BROWSER
    return shutil.which(configured)


def _is_browser_test(item) -> bool:
    return _HERE in Path(str(item.path)).resolve().parents


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Mark the browser tests, and run them last.

    They are transactional: each ends by emptying the database, which tests using `db`
    expect to hold what the migrations stored (the default roles). pytest-django runs
    transactional tests after those, but pytest then groups the tests by Playwright's
    session-scoped `browser_name` parameter, which brings the browser tests back among them.
    """
    for item in items:
        if _is_browser_test(item):
            item.add_marker(pytest.mark.browser)
            # Transactional, and the database's contents serialized at set-up so that each
            # test gets what the migrations stored (the default roles) back after a flush.
            item.add_marker(pytest.mark.django_db(transaction=True, serialized_rollback=True))
    items[:] = sorted(items, key=_is_browser_test)


def pytest_runtest_setup(item):
    if not item.get_closest_marker("browser") or browser_executable() is not None:
        return
    configured = getattr(settings, "BROWSER_EXECUTABLE", "") or DEFAULT_BROWSER
    reason = (
        f"needs Chromium: {configured} not found (apt-get install chromium, "
        "or set BROWSER_EXECUTABLE)"
    )
    if REQUIRE_BROWSER:
        pytest.fail(f"KEYHOUSE_REQUIRE_BROWSER=1 but this test {reason}", pytrace=False)
    pytest.skip(reason)


# Playwright: the system's Chromium, headless, no network of its own.


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": browser_executable(),
        "args": BROWSER_FLAGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # The base address and the viewport are given per context by open_page.
    args = {
        key: value
        for key, value in browser_context_args.items()
        if key not in ("base_url", "viewport")
    }
    return {**args, "locale": "en-GB", "timezone_id": "UTC"}


@pytest.fixture(autouse=True, scope="session")
def _django_alongside_playwright():
    """Let the tests use the ORM while Playwright's sync API is running.

    Playwright's sync API runs an asyncio loop in the test's thread, so Django would take
    every query of the test for one made from async code and refuse it.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True, scope="session")
def _test_thread_keeps_its_connections(playwright, django_db_setup):
    """Keep the test on the database connections pytest-django set up, with Playwright running.

    Django keeps connections per thread, but per asyncio context while a loop runs in the
    thread, as Playwright's does in the test's thread from its start to the end of the
    session. The test would then get new connection objects: without the database's
    serialized contents (a flushed database would not get its default roles back) and not
    the ones the live server's threads share. Put the thread's own back, in that context,
    before any test's database set-up (session-scoped fixtures come first; pytest keeps one
    context for the whole session).
    """
    own = connections._connections._storage  # asgiref's thread-local storage, loop or not
    for alias in connections:
        conn = getattr(own, alias, None)
        if conn is not None and connections[alias] is not conn:
            connections[alias] = conn


# The live server and its worker.


def _shared_connections() -> dict:
    """Return the connections the server's threads share with the test (in-memory SQLite)."""
    return {
        conn.alias: conn
        for conn in connections.all()
        if conn.vendor == "sqlite" and conn.is_in_memory_db()
    }


class _OneAtATime:
    """A WSGI application that handles one request at a time, holding `lock`."""

    def __init__(self, application, lock):
        self.application = application
        self.lock = lock

    def __call__(self, environ, start_response):
        with self.lock:
            # The whole body is produced inside the lock: a streamed one reads the database too.
            return list(self.application(environ, start_response))


@pytest.fixture(scope="session")
def live_server(request, django_db_setup, django_db_blocker):
    """pytest-django's live server; with a shared connection, one request at a time."""
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    with django_db_blocker.unblock():
        server = LiveServer(addr, start=False)
        server.db_lock = threading.Lock()
        if server.thread.connections_override:
            static_handler = server.thread.static_handler
            server.thread.static_handler = lambda application: _OneAtATime(
                static_handler(application), server.db_lock
            )
        server.start()
    yield server
    server.stop()


class BrowserWorker:
    """The worker thread, and whether anything is left for it to do."""

    def __init__(self, controller, queue: str):
        self.controller = controller
        self.queue = queue

    def queued(self) -> int:
        with celery_app.connection_for_read() as conn:
            try:
                declared = conn.default_channel.queue_declare(queue=self.queue, passive=True)
            except ChannelError:
                return 0  # on Redis, a queue nothing was ever sent to does not exist
            return declared.message_count

    def is_idle(self) -> bool:
        return (
            not worker_state.active_requests
            and not worker_state.reserved_requests
            and self.queued() == 0
        )

    def wait_until_idle(self) -> None:
        """Wait until nothing is queued, reserved (a retry's countdown) or running."""
        wait_until(self.is_idle, what="the worker to finish every queued task", stable_for=3)


def _keep_django_logging(**kwargs):
    """Receiver of Celery's setup_logging: its presence tells Celery to leave logging alone."""


@pytest.fixture(scope="session")
def _browser_worker_session(live_server, django_db_blocker):
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    shared = _shared_connections()
    conf_before = {
        key: celery_app.conf[key]
        for key in ("worker_enable_remote_control", "broker_transport_options")
    }
    # No remote-control mailbox (nothing uses it); the in-memory transport polls every
    # second by default, which would make every verification wait for it.
    celery_app.conf.worker_enable_remote_control = False
    if celery_app.conf.broker_url.startswith("memory://"):
        celery_app.conf.broker_transport_options = {"polling_interval": 0.05}
    held = threading.local()

    def before_task(**kwargs):
        if shared:
            live_server.db_lock.acquire()
            held.lock = True
            for alias, conn in shared.items():
                connections[alias] = conn

    def after_task(**kwargs):
        if getattr(held, "lock", False):
            held.lock = False
            live_server.db_lock.release()
        elif not shared:
            # Close the worker thread's own connections: none may stay open on the test
            # database when the session ends (PostgreSQL would refuse to drop it).
            connections.close_all()

    signals.setup_logging.connect(_keep_django_logging)
    signals.task_prerun.connect(before_task, weak=False)
    signals.task_postrun.connect(after_task, weak=False)
    try:
        with django_db_blocker.unblock():
            # Tasks that earlier (non-browser) tests queued and nobody consumed. On Redis the
            # queue may not exist yet (nothing was queued): nothing to purge then.
            with contextlib.suppress(ChannelError):
                celery_app.control.purge()
            with start_worker(
                celery_app,
                pool="solo",
                concurrency=1,
                perform_ping_check=False,
                loglevel="WARNING",
                shutdown_timeout=15.0,
                queues=[queue],
            ) as controller:
                yield BrowserWorker(controller, queue)
    finally:
        signals.task_prerun.disconnect(before_task)
        signals.task_postrun.disconnect(after_task)
        signals.setup_logging.disconnect(_keep_django_logging)
        for key, value in conf_before.items():
            celery_app.conf[key] = value


@pytest.fixture(autouse=True)
def _migrations_data(request):
    """Give each browser test what migrating stores (content types, permissions, the default
    roles, the helpdesk groups): a transactional test before it may have flushed them, and
    serialized rollback does not reach every connection Playwright's thread uses."""
    if not _is_browser_test(request.node):
        return
    request.getfixturevalue("transactional_db")
    # What `migrate` does after the last migration: content types, permissions, and this
    # project's receivers (the helpdesk groups).
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    for default in DEFAULT_ROLES:
        role, _ = Role.objects.update_or_create(
            merchant=None,
            slug=default.slug,
            defaults={"name": default.name, "description": default.description},
        )
        role.permissions.set(permission_objects(default.permissions))


@pytest.fixture
def browser_worker(
    _browser_worker_session, live_server, django_db_serialized_rollback, transactional_db
) -> BrowserWorker:
    """The session's worker; the test ends only when it is idle, before the database is
    flushed, so no task of this test runs in the next one. The flush would also empty what
    migrations stored (the default roles): serialized rollback puts it back."""
    yield _browser_worker_session
    _browser_worker_session.wait_until_idle()


@pytest.fixture
def live_app(live_server, browser_worker, fake_stripe, mailoutbox):
    """The live server with its worker, the fake Stripe and captured mail."""
    return live_server


# Pages and signing in.


@pytest.fixture
def open_page(new_context, live_app):
    """Return a function opening a page of `size` in a new context (cookies of its own)."""

    def make(size: dict[str, int] = DESKTOP):
        context = new_context(viewport=size, base_url=live_app.url)
        context.set_default_timeout(WAIT_MS)
        return context.new_page()

    return make


@pytest.fixture
def browser_page(open_page):
    """A 1280x800 page at the live server."""
    return open_page(DESKTOP)


@pytest.fixture
def phone_page(open_page):
    """A 390x844 page at the live server."""
    return open_page(PHONE)


def sign_in(page, user, password: str = PASSWORD) -> None:
    """Sign `user` in on `page` through the real sign-in forms.

    Staff use the admin's (email, password, TOTP code; given a device when they have none) and
    land on the admin index; everybody else the portal's (and a code if they have a device),
    landing on their dashboard.
    """
    from teams import two_factor

    if user.is_staff:
        device = totp_device(user)
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", user.email)
        page.fill("#id_password", password)
        page.fill("#id_otp_token", totp_code(device))
        page.click("#login-form [type=submit]")
        page.wait_for_url(lambda url: "/admin/login/" not in url)
        return
    page.goto("/accounts/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", password)
    if two_factor.has_device(user):
        page.fill("#id_otp_token", totp_code(totp_device(user)))
    page.click("form [type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.fixture(name="sign_in")
def sign_in_fixture():
    """The `sign_in(page, user)` function, for tests that prefer a fixture to an import."""
    return sign_in


@dataclass
class Demo:
    merchant: Any
    owner: Any
    other_merchant: Any
    other_owner: Any
    agent: Any
    lead: Any


@pytest.fixture
def demo(merchant, owner, other_merchant, other_owner, helpdesk_user) -> Demo:
    """The demo's people: an owner of Demo Coffee Co, another merchant's owner, a helpdesk
    agent and a helpdesk lead (both staff, each in their helpdesk group)."""
    from teams.helpdesk import HELPDESK_LEAD_GROUP, helpdesk_groups_ensure

    groups = helpdesk_groups_ensure()
    lead = UserFactory(email="lead@demo.test", is_staff=True)
    lead.groups.add(groups[HELPDESK_LEAD_GROUP])
    return Demo(
        merchant=merchant,
        owner=owner,
        other_merchant=other_merchant,
        other_owner=other_owner,
        agent=helpdesk_user,
        lead=lead,
    )


# Every page, for the tests that visit them all.


def _takes_get(address: str) -> bool:
    view_class = getattr(resolve(address).func, "view_class", None)
    return view_class is not None and hasattr(view_class, "get")


def portal_pages(merchant, owner) -> list[str]:
    """Return the address of every portal page of `merchant` that a browser opens (GET and
    HTML), each with a real object of the merchant where the route names one (created here:
    a key, a View only member, a custom role, an invitation)."""
    object_pks = {
        "credential": CredentialFactory(merchant=merchant, submitted_by=owner).pk,
        "membership": MembershipFactory(merchant=merchant, role=default_role("view-only")).pk,
        "role": RoleFactory(
            merchant=merchant, name="Bookkeeper", permissions=[VIEW_MERCHANT, VIEW_KEYS]
        ).pk,
        "invitation": InvitationFactory(
            merchant=merchant, email="invitee@example.test", invited_by=owner
        ).pk,
    }
    addresses = [
        route_address(
            route, merchant_slug=merchant.slug, object_pks=object_pks, who="the browser tests"
        )
        # JSON for the pages' own scripts is no page to look at.
        for route in portal_routes()
        if not route.route.endswith(".json")
    ]
    return [address for address in addresses if _takes_get(address)]


def account_pages() -> list[str]:
    """Return the signed-in pages outside any merchant: dashboard, account, password."""
    return [
        reverse("merchants:dashboard"),
        reverse("account:account"),
        reverse("account:two_factor"),
        reverse("password_change"),
        reverse("password_change_done"),
    ]


def signed_out_pages(merchant, owner) -> list[str]:
    """Return the pages of someone signed out: sign-in, the password reset pages (with a real
    reset link for `owner`) and, last, the invitation page of a new invitation to `merchant`
    (its link, which goes on to /invitations/accept/)."""
    token = "browser-invitation-token-" + "x" * 20
    InvitationFactory(
        merchant=merchant, email="newcomer@example.test", invited_by=owner, token=token
    )
    reset_link = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(owner.pk)),
            "token": default_token_generator.make_token(owner),
        },
    )
    return [
        reverse("login"),
        reverse("password_reset"),
        reverse("password_reset_done"),
        reverse("password_reset_complete"),
        reset_link,
        reverse("teams:invitation", kwargs={"token": token}),
    ]
