"""Run every benchmark and write docs/benchmarks.md: `python -m tests.benchmarks`."""

import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()

    from tests.benchmarks import ceiling, pipeline, portal
    from tests.benchmarks.harness import broker_queue, test_database, write_report

    sections = []
    with test_database(), broker_queue():
        for module in (portal, pipeline, ceiling):
            print(f"bench: {module.__name__} …", flush=True)
            sections.append(module.run())
    report = write_report(sections)
    print(report.read_text())
    print(f"bench: wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
