"""The lint and type gate, run by the README's test command: ruff over the code, tests and
benchmarks, mypy (strict, with pydantic's plugin) over the package.

Their versions are pinned in the `dev` extras and their rules live in pyproject.toml
(`[tool.ruff]`, `[tool.mypy]`), so `python -m ruff check ivr tests benchmarks` and
`python -m mypy ivr` by hand say exactly what this test says. A failure shows every finding.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.lint


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _pins() -> dict[str, str]:
    """`name==version` entries of the dev extras."""
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    return dict(m.groups() for spec in dev if (m := re.fullmatch(r"([\w-]+)==([\w.]+)", spec)))


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_the_installed_checker_is_the_pinned_one(tool: str) -> None:
    """Another version has other rules: findings here and on a newcomer's machine must agree."""
    pinned = _pins().get(tool)
    assert pinned is not None, f"pyproject.toml: the dev extras pin no exact {tool} version ({tool}==x.y.z)"
    assert metadata.version(tool) == pinned, (
        f"{tool} {metadata.version(tool)} is installed, pyproject.toml pins {pinned}: "
        "reinstall the dev extras (pip install -e '.[dev]')"
    )


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", "--output-format=concise", "ivr", "tests", "benchmarks")
    assert done.returncode == 0, (
        f"ruff check ivr tests benchmarks (exit {done.returncode}); `ruff check --fix` mends import order "
        f"and pyupgrade findings:\n{done.stdout}{done.stderr}"
    )


def test_mypy_finds_nothing() -> None:
    done = _run("mypy", "--no-color-output", "ivr")
    assert done.returncode == 0, f"mypy ivr (exit {done.returncode}):\n{done.stdout}{done.stderr}"
