"""Settings for `make run` and `python manage.py …` on a developer's machine."""

import os
import sys
from pathlib import Path

from config.envfile import BASE_DIR, write_env_file

# A fresh checkout has no `.env`: write one with new secrets before the shared settings read
# it, so that any manage.py command works as the first one, not only `make run`. The file is
# the one the shared settings read (KEYHOUSE_ENV_FILE or `.env`); nothing is written when the
# environment brings its own secret key, or when the file exists.
_env_file = Path(os.environ.get("KEYHOUSE_ENV_FILE") or BASE_DIR / ".env")
if "DJANGO_SECRET_KEY" not in os.environ and write_env_file(_env_file):
    print(f"Wrote {_env_file} with new secrets (never commit it).", file=sys.stderr)

from .base import *  # noqa: E402, F403
from .base import env  # noqa: E402

DEBUG = env.bool("DJANGO_DEBUG", default=True)
