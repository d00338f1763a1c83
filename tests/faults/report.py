"""docs/faults.md: the fault-injection matrix, one row per scenario, and what was found."""

import os
import platform
import subprocess
import time
from pathlib import Path

from tests.faults.stage import RUN_SETTINGS

REPORT = Path(__file__).resolve().parents[2] / "docs" / "faults.md"


def _cell(text: str) -> str:
    """Make `text` safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _lines(items: list[str]) -> str:
    return "<br>".join(_cell(item) for item in items)


def _git(*arguments: str) -> str:
    try:
        result = subprocess.run(["git", *arguments], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return result.stdout.strip()


def _revision() -> str:
    """Return the commit the run tested, saying so when the working tree differs from it."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    changed = _git("status", "--porcelain", "--untracked-files=no")
    return f"{commit} with uncommitted changes" if changed else commit


def render(results, *, facts: dict[str, str], chosen_all: bool) -> str:
    """Return the report's Markdown for `results` (Scenario, Outcome pairs)."""
    passed = sum(outcome.passed for _, outcome in results)
    settings = ", ".join(f"`{name}={value}`" for name, value in RUN_SETTINGS.items())
    rows = []
    for scenario, outcome in results:
        measured = [f"{'' if c.ok else '✗ '}{c.what}: {c.measured}" for c in outcome.checks]
        failed = [c.what for c in outcome.checks if not c.ok]
        verdict = "pass" if outcome.passed else "**FAIL**"
        rows.append(
            f"| {scenario.number}. {_cell(scenario.title)} | {_cell(outcome.done)} | "
            f"{_lines(measured)} | "
            f"{_lines([f'{c.what}: {c.expected}' for c in outcome.checks])} | "
            f"{verdict}{' (' + _cell('; '.join(failed)) + ')' if failed else ''}, "
            f"{outcome.seconds:.0f} s |"
        )
    notes = []
    for scenario, outcome in results:
        for note in outcome.notes:
            notes.append(f"- {scenario.number}. {scenario.title}: {note}")
    text = [
        "# Fault-injection matrix",
        "",
        "Written by `make faults` (`python -m tests.faults`); do not edit by hand.",
        "",
        f"- Result: {passed} of {len(results)} scenarios passed"
        + ("" if chosen_all else " (a partial run: `--only`)")
        + f", in {facts['duration']}.",
        f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; commit {_revision()}; run at "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"- Services, private to the run and on 127.0.0.1 only: PostgreSQL {facts['postgres']} "
        "(a cluster of its own, initdb'd in a temporary directory), redis-server without "
        "persistence, the suite's fake Stripe (HTTP) and an SMTP sink, both in the run's "
        "process. Each scenario gets a database copied from one migrated template and an "
        "emptied Redis.",
        "- Keyhouse's processes are real subprocesses with production settings "
        "(`tests/faults/settings.py`: the once-a-minute sweeps run every "
        "`FAULTS_SWEEP_EVERY` seconds, static files without a manifest): "
        "`celery -A config.celery_app worker` (prefork), `celery … beat`, and the web as "
        "`gunicorn config.wsgi`, which the run submits keys to over HTTP as a signed-in "
        "merchant. Every count comes from the scenario's database and from the messages "
        "the SMTP sink accepted (matched to the outbox by their Message-ID), never from logs.",
        f"- Settings of every process unless a scenario says otherwise: {settings}.",
        "",
        "| scenario | what was done | counts measured (✗: not as expected) | expected | "
        "pass/fail, time |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "## What each scenario proves",
        "",
        *(f"{scenario.number}. {scenario.proves}" for scenario, _ in results),
        "",
    ]
    if notes:
        text += ["## Notes", "", *notes, ""]
    return "\n".join(text)


def write_report(results, *, facts: dict[str, str], chosen_all: bool) -> Path:
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(render(results, facts=facts, chosen_all=chosen_all))
    return REPORT
