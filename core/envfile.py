"""A developer's local state: `.env` with freshly generated secrets (once) and `var/`.

Run by `make run`/`make demo` (`python -m core.envfile`) before anything imports the settings,
and by `manage.py` and the Celery processes when they start with the local settings, so any
command works on a fresh checkout. The settings modules themselves never write anything. An
existing `.env` is never touched: it may hold keys that already encrypt stored secrets, and
losing them loses the data.
"""

import argparse
import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
# What the embedded defaults keep under var/: the SQLite database and kombu's filesystem broker.
VAR_FOLDERS = ("broker/queue", "broker/control", "broker/processed")
LOCAL_SETTINGS = "config.settings.local"


def generated_env() -> str:
    """Return the text of a new `.env` for a developer's machine."""
    return "\n".join(
        [
            "# Written by `make run` on first start. Never commit this file.",
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}",
            f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}",
            f"CREDENTIAL_FINGERPRINT_KEY={secrets.token_urlsafe(32)}",
            f"DEMO_PASSWORD={secrets.token_urlsafe(9)}",
            "# true shows Django's debug page on errors: turn it on only while you need it.",
            "DJANGO_DEBUG=false",
            "",
        ]
    )


def write_env_file(path: Path) -> bool:
    """Write a new `.env` at `path` unless a file is already there; return True if written."""
    try:
        # Created exclusively and private from the first byte: no moment when another user
        # could read it, and no overwriting a file that appeared since anyone looked.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as env_file:
        env_file.write(generated_env())
    # The mode given to os.open() is narrowed by the umask, never widened; make it exact.
    path.chmod(0o600)
    return True


def env_file_path() -> Path:
    """Return the `.env` the settings read: KEYHOUSE_ENV_FILE, or `.env` beside manage.py."""
    return Path(os.environ.get("KEYHOUSE_ENV_FILE") or BASE_DIR / ".env")


def local_state_ensure() -> None:
    """Create `var/` and, unless the environment brings its own secret key, `.env`.

    Only for the local settings: production and the tests bring their own configuration.
    """
    if os.environ.get("DJANGO_SETTINGS_MODULE", LOCAL_SETTINGS) != LOCAL_SETTINGS:
        return
    for folder in VAR_FOLDERS:
        (VAR_DIR / folder).mkdir(parents=True, exist_ok=True)
    path = env_file_path()
    if "DJANGO_SECRET_KEY" not in os.environ and write_env_file(path):
        print(f"Wrote {path} with new secrets (never commit it).", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Write `.env` at `--path` unless a file is already there; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", type=Path, default=BASE_DIR / ".env")
    parser.add_argument("--key", action="store_true", help="print a new Fernet key and exit")
    args = parser.parse_args(argv)
    if args.key:
        print(Fernet.generate_key().decode())
        return 0
    for folder in VAR_FOLDERS:
        (VAR_DIR / folder).mkdir(parents=True, exist_ok=True)
    if write_env_file(args.path):
        print(
            f"Wrote {args.path.name} with new secrets (DEMO_PASSWORD is the demo users' password)."
        )
    else:
        print(f"{args.path.name} exists; keeping it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
