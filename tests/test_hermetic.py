"""The suite gives the same verdict on any developer's machine.

A developer may export `IVR_*` variables, keep a `.env` where pytest runs, and have real call
records in `~/.local/share/keybox-ivr`; none of it may change a test's verdict, and no test may
write there (tests/conftest.py `hermetic_environment`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ivr.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]

# Tests that failed with `IVR_AGI_PORT` exported or with `IVR_LANGUAGES=en,fr,es` in a `.env`
# before the suite was made hermetic: in-process settings, `.env` reading, and `python -m ivr`
# processes (module-scoped ones included).
SENSITIVE = [
    "tests/test_settings.py",
    "tests/test_cli.py",
    "tests/test_serve.py::test_calls_lists_what_serve_recorded",
    "tests/e2e/test_keybox_codes.py::test_update_code_one_member_one_pod",
    "tests/e2e/test_token_churn.py::test_update_code_after_a_token_renewal",
]


def test_a_test_sees_no_ivr_variables_no_dotenv_and_a_temporary_data_dir(tmp_path: Path) -> None:
    assert [name for name in os.environ if name.startswith("IVR_")] == []
    assert not Path(".env").exists()
    assert Path.cwd().resolve() != ROOT
    data_dir = load_settings().data_dir.resolve()
    assert data_dir.is_relative_to(tmp_path.parents[1]), data_dir
    assert not data_dir.is_relative_to(Path.home() / ".local")


def test_the_verdict_ignores_exported_variables_a_dotenv_and_the_users_data(tmp_path: Path) -> None:
    """A developer's shell: a port exported, three languages and another port in `.env`."""
    workdir = tmp_path / "checkout-like"
    workdir.mkdir()
    (workdir / ".env").write_text("IVR_LANGUAGES=en,fr,es\nIVR_AGI_PORT=1\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {name: value for name, value in os.environ.items() if name != "XDG_DATA_HOME"}
    env |= {"IVR_AGI_PORT": "4573", "IVR_LANGUAGES": "en,fr", "HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), *(str(ROOT / test) for test in SENSITIVE)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert not (home / ".local" / "share" / "keybox-ivr").exists()
