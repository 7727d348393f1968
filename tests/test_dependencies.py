"""Every runtime dependency pyproject.toml declares is imported by the package: none is dead weight
to install, audit and keep patched (pyst2 and panoramisk were, until removed)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Distribution names whose import name differs.
IMPORT_NAMES = {"pyjwt": "jwt", "prometheus-client": "prometheus_client", "pydantic-settings": "pydantic_settings"}

#: Data that the standard library reads, never imported by name: why each is there.
DATA_ONLY = {"tzdata": "zoneinfo falls back to it where the system has no time zone database"}


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]]


def imported() -> set[str]:
    """The top-level modules `ivr/` imports, by its source."""
    names: set[str] = set()
    for path in (ROOT / "ivr").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def test_every_declared_dependency_is_imported() -> None:
    used = imported()
    dead = [name for name in declared()
            if name not in DATA_ONLY and IMPORT_NAMES.get(name, name.replace("-", "_")) not in used]
    assert dead == [], f"declared in pyproject.toml, imported nowhere in ivr/: {dead}"
