"""The import contract in pyproject.toml: holds on the code, and catches an upward import.

Also the size rule from the style guide: no module in the apps passes about 400 lines.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "audit", "mail", "merchants", "teams", "integrations", "credentials", "api")
PACKAGES = ("config", *APPS)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_MODULE_LINES = 400


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """Run lint-imports with the pyproject.toml in `cwd`, that folder first on the path."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_contract_holds_on_the_code():
    result = lint_imports(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_import_contract_fails_when_a_lower_layer_imports_a_higher_one(tmp_path):
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    redaction = tmp_path / "core" / "redaction.py"
    upward = f"{redaction.read_text()}\nimport credentials\n"
    redaction.write_text(upward)

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout
    assert "core is not allowed to import credentials" in result.stdout
    assert f"core.redaction -> credentials (l.{len(upward.splitlines())})" in result.stdout


def test_no_module_in_the_apps_passes_the_size_limit():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
        and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }

    assert not too_long, f"split these by job (lines each): {too_long}"
