"""The fault-injection matrix: every scenario, in the order the report lists them.

Each scenario is a function taking the run and returning its Outcome; its docstring says what
it proves, and the report's row says what it did and counted.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from tests.faults import encryption, inputs, load, outages, reminders, stripe_faults
from tests.faults.results import Outcome
from tests.faults.stage import Run


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    run: Callable[[Run], Outcome]

    @property
    def proves(self) -> str:
        return " ".join((inspect.getdoc(self.run) or "").split())


SCENARIOS = (
    Scenario(1, "Broker down at submit", outages.broker_down_at_submit),
    Scenario(2, "Worker SIGKILL mid-verification", outages.worker_killed_mid_verification),
    Scenario(3, "Two beats and two workers", reminders.two_beats_two_workers),
    Scenario(4, "SMTP down, then up", reminders.smtp_down_then_up),
    Scenario(5, "PostgreSQL restart mid-burst", outages.database_restart_mid_burst),
    Scenario(6, "Every Stripe fault", stripe_faults.every_stripe_fault),
    Scenario(7, "Fuzzed form bodies", inputs.fuzzed_form_bodies),
    Scenario(8, "Wrong encryption key", encryption.wrong_encryption_key),
    Scenario(9, "200 submissions from 4 clients", load.concurrent_submissions),
)
