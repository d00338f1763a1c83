"""`make demo`'s fake Stripe (issue #12, newcomer bugs): another copy holding port 12111 no
longer stops the demo; it takes a free port, and a port it cannot have is named."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from django.conf import settings

from tests.factories import fake_key
from tests.fake_stripe import DEMO_PORT


@pytest.fixture
def default_port_taken():
    """Hold 127.0.0.1:12111 as another demo's fake Stripe would (or find it already held)."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEMO_PORT))
        holder.listen()
    except OSError:
        pass  # something else holds it already: taken all the same
    yield DEMO_PORT
    holder.close()


def run_module(module: str, *args):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_fake_stripe(*args):
    return run_module("tests.fake_stripe", *args)


def run_fake_kashier(*args):
    return run_module("tests.fake_kashier", *args)


def status_of(url: str, **headers) -> int | None:
    """Return the status of a GET of `url`, or None while nothing answers."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a local server
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local
            json.load(response)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def account_status(port: int, key: str) -> int | None:
    """Return the status of Stripe's GET /v1/account on `port`."""
    return status_of(f"http://127.0.0.1:{port}/v1/account", Authorization=f"Bearer {key}")


def kashier_account_status(port: int, key: str) -> int | None:
    """Return the status of Kashier's GET /v2/account on `port` (the raw key, no Bearer)."""
    return status_of(f"http://127.0.0.1:{port}/v2/account", Authorization=key)


@contextmanager
def demo_processes(*names: str, **ports: int):
    """Start processes of Procfile.demo, as `make demo` does, with the ports given."""
    environment = {**os.environ, **{name: str(port) for name, port in ports.items()}}
    environment["PATH"] = f"{os.path.dirname(sys.executable)}:{environment['PATH']}"
    honcho = os.path.join(os.path.dirname(sys.executable), "honcho")
    process = subprocess.Popen(
        [honcho, "start", "-e", os.devnull, "-f", "Procfile.demo", *names],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def demo_stripe_process(port: int):
    """Start the demo's `stripe` process from Procfile.demo, as `make demo` does."""
    return demo_processes("stripe", STRIPE_PORT=port)


def test_demo_port_is_the_documented_one_while_it_is_free():
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", DEMO_PORT))
        except OSError:
            pytest.skip(f"port {DEMO_PORT} is held on this machine")
    result = run_fake_stripe("--free-port")

    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == DEMO_PORT


def test_demo_fake_stripe_starts_on_a_free_port_while_the_default_one_is_taken(
    default_port_taken,
):
    chosen = run_fake_stripe("--free-port")
    assert chosen.returncode == 0, chosen.stderr
    port = int(chosen.stdout)
    assert port != default_port_taken

    with demo_stripe_process(port) as process:
        status = None
        while status is None and process.poll() is None:
            status = account_status(port, fake_key("sk_test_"))
            time.sleep(0.1)

    assert status == 200, process.stdout.read()


def test_fake_stripe_names_the_port_it_cannot_have(default_port_taken):
    result = run_fake_stripe("--port", str(default_port_taken))

    assert result.returncode == 1
    assert f"127.0.0.1:{default_port_taken}" in result.stderr
    assert "Traceback" not in result.stderr


# The demo's fake Kashier: one host per mode, each on its own port, moved off a held one.


@pytest.fixture
def kashier_test_port_taken():
    """Hold the fake Kashier test host's port as another demo would (or find it held)."""
    from tests.fake_kashier import DEMO_PORTS

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEMO_PORTS["test"]))
        holder.listen()
    except OSError:
        pass
    yield DEMO_PORTS["test"]
    holder.close()


def test_demo_fake_kashier_hosts_start_on_free_ports_and_answer_as_kashier(
    kashier_test_port_taken,
):
    from tests.fake_kashier import fake_secret_key

    ports = {}
    for mode in ("test", "live"):
        chosen = run_fake_kashier("--mode", mode, "--free-port")
        assert chosen.returncode == 0, chosen.stderr
        ports[mode] = int(chosen.stdout)
    assert ports["test"] != kashier_test_port_taken
    assert ports["test"] != ports["live"]
    good, bad = fake_secret_key(), fake_secret_key()[:-4] + "bad0"

    with demo_processes(
        "kashier_test",
        "kashier_live",
        KASHIER_TEST_PORT=ports["test"],
        KASHIER_LIVE_PORT=ports["live"],
    ) as process:
        answers = {}
        for mode, port in ports.items():
            while answers.get(mode) is None and process.poll() is None:
                answers[mode] = kashier_account_status(port, good)
                time.sleep(0.1)
        refused = kashier_account_status(ports["live"], bad)

    assert answers == {"test": 200, "live": 200}, process.stdout.read()
    assert refused == 401


def test_fake_kashier_names_the_port_it_cannot_have(kashier_test_port_taken):
    result = run_fake_kashier("--mode", "test", "--port", str(kashier_test_port_taken))

    assert result.returncode == 1
    assert f"127.0.0.1:{kashier_test_port_taken}" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_restricted_key_ending_in_gap0_is_verified_with_its_missing_permissions(
    fake_stripe,
):
    from credentials.providers.base import KeysToCheck
    from credentials.providers.stripe import StripeProvider

    key = fake_key("rk_test_")[:-4] + "gap0"

    answer = StripeProvider().verify(
        KeysToCheck(
            mode="test",
            kind="restricted",
            secret=key,
            requested_integrations=("online_payments", "invoicing"),
        )
    )

    assert answer.code == "missing_permissions"
    assert answer.facts.missing_permissions == ("rak_customer_read", "rak_invoice_read")
