"""Run every benchmark and write docs/benchmarks.md: `python -m tests.benchmarks`.

`python -m tests.benchmarks pages sweeps` runs only those sections and prints them without
writing the report (for working on one of them).
"""

import importlib
import os
import sys

SECTIONS = ("cost", "portal", "pipeline", "ceiling", "pages", "sweeps", "rotation")


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()

    from tests.benchmarks.harness import (
        broker_queue,
        section_database,
        targets_table,
        test_database,
        write_report,
    )

    unknown = [name for name in argv if name not in SECTIONS]
    if unknown:
        print(f"bench: no section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        return 2
    chosen = argv or SECTIONS
    sections = []
    with test_database(), broker_queue():
        for index, name in enumerate(chosen):
            module = importlib.import_module(f"tests.benchmarks.{name}")
            print(f"bench: {module.__name__} …", flush=True)
            with section_database(index):
                sections.append(module.run())
    if argv:
        print("\n".join(targets_table(sections)))
        for section in sections:
            print(f"\n## {section.title}\n\n{section.body.strip()}")
        return 0
    report = write_report(sections)
    print(report.read_text())
    print(f"bench: wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
