"""Write `.env` with freshly generated secrets, once.

Run by `make run` before anything imports the settings, and by the local settings when they
start without one (`python manage.py …` on a fresh checkout). An existing `.env` is never
touched: it may hold keys that already encrypt stored secrets, and losing them loses the data.
"""

import argparse
import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent


def generated_env() -> str:
    """Return the text of a new `.env` for a developer's machine."""
    return "\n".join(
        [
            "# Written by `make run` on first start. Never commit this file.",
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}",
            f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}",
            f"CREDENTIAL_FINGERPRINT_KEY={secrets.token_urlsafe(32)}",
            f"DEMO_PASSWORD={secrets.token_urlsafe(9)}",
            "DJANGO_DEBUG=true",
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


def main(argv: list[str] | None = None) -> int:
    """Write `.env` at `--path` unless a file is already there; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", type=Path, default=BASE_DIR / ".env")
    parser.add_argument("--key", action="store_true", help="print a new Fernet key and exit")
    args = parser.parse_args(argv)
    if args.key:
        print(Fernet.generate_key().decode())
        return 0
    if write_env_file(args.path):
        print(
            f"Wrote {args.path.name} with new secrets (DEMO_PASSWORD is the demo users' password)."
        )
    else:
        print(f"{args.path.name} exists; keeping it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
