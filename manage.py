#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    from core.envfile import local_state_ensure

    # A fresh checkout has no `.env` and no `var/`: any command works as the first one.
    local_state_ensure()

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
