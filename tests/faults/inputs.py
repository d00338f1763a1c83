"""Hostile input on PostgreSQL: the suite's seeded form fuzzer (tests/test_fuzz_forms.py), run
longer, against the run's PostgreSQL, where a NUL byte is an error that SQLite lets through.

The requests go through Django's test client in this process (the whole middleware stack and
the views, with production settings); nothing else is needed to reach a form.
"""

import logging
import math
import random
import re
from collections import Counter, defaultdict
from contextlib import contextmanager
from itertools import islice

from tests.faults.results import Outcome
from tests.faults.stage import Run

FUZZ_BODIES = 750
# The fields tried on a page whose form the fuzzer cannot read.
FALLBACK_FIELDS = frozenset({"reason", "note", "email", "role"})
INVALID_CHOICE = "is not one of the available choices"


def _endless_bodies(names, generator: random.Random, secret: str, kashier_keys: list[str]):
    """Yield the fuzzer's bodies without end: its batches, one after another, from one
    seeded generator (the same bodies every run)."""
    from tests.test_fuzz_forms import bodies

    while True:
        yield from bodies(names, generator, secret, kashier_keys)


def _portal_form(route, index: int):
    """Return a client signed in as the Owner of a new merchant, and the address of `route`
    for it: a merchant per form, so one form's bodies (a member removed, a role deleted)
    cannot change what another form is sent to."""
    from django.test import Client

    from tests.factories import MembershipFactory, MerchantFactory, UserFactory, default_role
    from tests.test_portal_access import _tenant, address

    merchant = MerchantFactory(name=f"Fuzzed {index}", slug=f"fuzzed-{index}")
    owner = UserFactory(email=f"owner@fuzzed-{index}.test")
    MembershipFactory(user=owner, merchant=merchant, role=default_role("owner"))
    client = Client()
    client.force_login(owner)
    return client, address(route, _tenant(merchant, owner))


def _admin_form(name: str):
    """Return a client signed in to the admin as a superuser (with a verified TOTP device),
    and the address of the admin page `name`."""
    from django.test import Client
    from django.urls import reverse

    from tests.factories import UserFactory
    from tests.helpers import verify_session

    admin = UserFactory(email="platform-admin@fuzzed.test", is_staff=True, is_superuser=True)
    client = Client()
    verify_session(client, admin)
    return client, reverse(name)


def fuzzed_form_bodies(run: Run) -> Outcome:
    """No form answers hostile input with a server error: about 750 seeded bodies (NUL and
    control characters, huge and odd values, key-shaped text) over every portal form that
    takes a POST and the admin's writing forms, on PostgreSQL; every answer is a page, a
    redirect or a refusal, and none echoes a key that was sent."""
    from tests.factories import fake_key
    from tests.fake_kashier import fake_payment_api_key, fake_secret_key
    from tests.test_fuzz_forms import ADMIN_FORMS, POST_ROUTES, SEED, field_names

    forms = [(str(route), route) for route in POST_ROUTES] + [(name, None) for name in ADMIN_FORMS]
    per_form = math.ceil(FUZZ_BODIES / len(forms))
    outcome = Outcome(
        done=(
            f"{per_form} bodies to each of {len(forms)} forms ({len(POST_ROUTES)} portal, "
            f"{len(ADMIN_FORMS)} admin), from tests/test_fuzz_forms.py's generator (seed "
            f"{SEED}), as the form's Owner or a superuser, on PostgreSQL"
        )
    )
    answers, failing, echoes = Counter(), Counter(), Counter()
    echo_places = defaultdict(set)
    with run.stage("fuzz", outcome), _quiet_not_found():
        for index, (label, route) in enumerate(forms):
            client, url = _portal_form(route, index) if route else _admin_form(label)
            client.raise_request_exception = False
            secret = fake_key("sk_live_")
            kashier_keys = [fake_secret_key(), fake_payment_api_key()]
            names = field_names(client.get(url).content.decode()) or set(FALLBACK_FIELDS)
            generator = random.Random(f"{SEED}:{label}")
            bodies = _endless_bodies(names, generator, secret, kashier_keys)
            for body in islice(bodies, per_form):
                response = client.post(url, body)
                answers[f"{response.status_code // 100}xx"] += 1
                if response.status_code >= 500:
                    failing[label] += 1
                page = response.content.decode(errors="replace")
                # A Stripe key's body (after sk_live_), or the whole Kashier secret key.
                echoed_in = _echoed_in(page, secret[8:])
                if echoed_in is None:
                    echoed_in = _echoed_in(page, kashier_keys[0])
                if echoed_in is not None:
                    echoes[label] += 1
                    echo_places[label] |= echoed_in

    posted = sum(answers.values())
    outcome.check(
        "bodies posted",
        f"{posted} ({', '.join(f'{n} {status}' for status, n in sorted(answers.items()))})",
        f"≥ {FUZZ_BODIES}",
        posted >= FUZZ_BODIES,
    )
    outcome.check(
        "server errors (5xx)",
        f"{answers['5xx']}" + (f" ({dict(failing)})" if failing else ""),
        "0",
        answers["5xx"] == 0,
    )
    echoed = sum(echoes.values())
    outcome.check(
        "answers echoing a key sent",
        f"{echoed}" + (f" ({dict(echoes)})" if echoes else ""),
        "0",
        echoed == 0,
    )
    for label, places in echo_places.items():
        fields = sorted({field for field, _ in places})
        why = (
            " (Django's default invalid-choice message, \"Select a valid choice. <the value> is "
            'not one of the available choices.", quotes the value sent)'
            if any(invalid_choice for _, invalid_choice in places)
            else ""
        )
        outcome.notes.append(
            f"{label} showed a key-shaped value it was sent back on the page in "
            f"{echoes[label]} of {per_form} answers, in the error message of "
            f"{', '.join(fields) or 'no field (elsewhere on the page)'}{why}."
        )
    return outcome


def _echoed_in(page: str, body: str) -> set[tuple[str, bool]] | None:
    """Return None if `page` does not contain the key `body`, else the fields whose error
    message repeats it, each with whether that message is Django's default invalid-choice
    one."""
    if body not in page:
        return None
    errors = re.findall(r'id="id_([\w-]+)_error"(.*?)</ul>', page, re.S)
    return {(field, INVALID_CHOICE in listed) for field, listed in errors if body in listed}


@contextmanager
def _quiet_not_found():
    """Keep Django's request log to errors: most hostile bodies end in a 404 or 400, which
    it would otherwise print line by line."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
