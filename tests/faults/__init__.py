"""The fault-injection matrix of issue 16: `make faults` (`python -m tests.faults`).

Keyhouse's real processes (worker, beat, web) run against a PostgreSQL cluster and a Redis
server private to the run, with the fake Stripe and an SMTP sink, while each scenario breaks
something (the broker, a worker, the database, the mail server, Stripe, the input, the
encryption key, the load); the counts of what happened, taken from the database and the
sink, are written to docs/faults.md.

- `scenarios.py`: the list, in the report's order; one module per group of scenarios:
  `outages.py`, `reminders.py`, `stripe_faults.py`, `inputs.py`, `encryption.py`, `load.py`.
- `stage.py`: the run and each scenario's stage (database, Redis, Stripe, sink, processes)
  and the counting; `services.py`, `processes.py`, `outside.py`, `browser.py` what they use;
  `results.py` and `report.py` the outcome of each scenario and the report.
- `settings.py`: the settings of every process of the run (production's, sweeps faster).
"""
