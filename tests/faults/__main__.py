"""Run the fault-injection matrix and write docs/faults.md: `python -m tests.faults`.

`--only 1,5` runs some scenarios; `--keep` keeps the processes' logs (they are kept anyway
when a scenario fails). The exit status is 1 if any scenario failed. The private services
and every process started are stopped at the end whatever happens, Ctrl+C and SIGTERM
included.
"""

import argparse
import shutil
import signal
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from pathlib import Path

from tests.faults.report import write_report
from tests.faults.results import Outcome
from tests.faults.scenarios import SCENARIOS
from tests.faults.services import PrivatePostgres, PrivateRedis
from tests.faults.stage import Run


def _stop_on_sigterm(signum, frame):
    # SystemExit unwinds the `with` blocks that stop the services and processes.
    raise SystemExit(128 + signum)


def _run_scenario(scenario, run) -> Outcome:
    """Run one scenario; an error in the run is its failure, and the next one still runs."""
    started = time.monotonic()
    try:
        outcome = scenario.run(run)
    except Exception as error:  # noqa: BLE001  reported as the scenario's failure
        traceback.print_exc()
        outcome = Outcome(done="(stopped early by an error in the run)")
        outcome.check("ran to the end", f"{type(error).__name__}: {error}", "no error", False)
    outcome.seconds = time.monotonic() - started
    return outcome


def _chosen(parser: argparse.ArgumentParser, only: str | None) -> list:
    if not only:
        return list(SCENARIOS)
    numbers = {int(number) for number in only.split(",") if number.strip().isdigit()}
    unknown = numbers - {scenario.number for scenario in SCENARIOS}
    if not numbers or unknown:
        parser.error(f"--only takes scenario numbers from 1 to {len(SCENARIOS)}")
    return [scenario for scenario in SCENARIOS if scenario.number in numbers]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,5")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    args = parser.parse_args(argv)
    chosen = _chosen(parser, args.only)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    root = Path(tempfile.mkdtemp(prefix="keyhouse-faults-"))
    started = time.monotonic()
    results = []
    try:
        with ExitStack() as services:
            # Each is stopped at the end even if it only half started.
            postgres = PrivatePostgres(root)
            services.callback(postgres.stop)
            postgres.start()
            redis = PrivateRedis(root)
            services.callback(redis.stop)
            redis.start()
            print(
                f"faults: private PostgreSQL {postgres.version} on 127.0.0.1:{postgres.port}, "
                f"Redis on 127.0.0.1:{redis.port}, in {root}",
                flush=True,
            )
            run = Run(root, postgres, redis)
            run.configure_this_process()
            for scenario in chosen:
                print(f"faults: {scenario.number}. {scenario.title} …", flush=True)
                outcome = _run_scenario(scenario, run)
                verdict = "pass" if outcome.passed else "FAIL"
                print(f"faults: {scenario.number}. {verdict}, {outcome.seconds:.0f} s", flush=True)
                results.append((scenario, outcome))
    finally:
        if args.keep or any(not outcome.passed for _, outcome in results):
            shutil.rmtree(root / "postgres", ignore_errors=True)
            print(f"faults: the processes' logs are in {root / 'logs'}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)

    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    report = write_report(
        results,
        facts={"postgres": postgres.version, "duration": f"{minutes} min {seconds} s"},
        chosen_all=len(chosen) == len(SCENARIOS),
    )
    print(report.read_text())
    print(f"faults: wrote {report}")
    return 0 if all(outcome.passed for _, outcome in results) else 1


if __name__ == "__main__":
    sys.exit(main())
