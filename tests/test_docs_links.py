"""The project carries its own documentation: no path out of the repository, no dead link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".py", ".toml", ".conf", ".yml", ".yaml", ".txt", ".cfg", ".ini", ".sh", ".example"}
TEXT_NAMES = {"Dockerfile", "run", "install-system-packages"}
SKIPPED_DIRS = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", "venv", "node_modules"}
# Written in two parts so that this file does not match itself.
OUTSIDE = re.compile("contracts" + "/|" + r"\.\./shared|/work/" + "shared")
MARKDOWN_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def text_files() -> Iterator[Path]:
    for path in REPO.rglob("*"):
        parts = path.relative_to(REPO).parts
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            yield path


def test_nothing_points_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in text_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []


def test_markdown_links_reach_files_of_the_repository() -> None:
    dead = []
    for path in text_files():
        if path.suffix != ".md":
            continue
        for target in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):  # a URL, a mail address, an anchor on the page
                continue
            resolved = (path.parent / target.split("#", 1)[0]).resolve()
            if not resolved.exists() or REPO not in (resolved, *resolved.parents):
                dead.append(f"{path.relative_to(REPO)}: {target}")
    assert dead == []


def test_the_call_script_names_every_route_prompt_and_method() -> None:
    from ivr.backends.kimvoice import METHODS
    from ivr.catalog import PROMPT_IDS
    from ivr.flow.runner import ROUTES

    script = (REPO / "docs" / "call-script.md").read_text(encoding="utf-8")
    wire = (REPO / "docs" / "kimvoice-wire.md").read_text(encoding="utf-8")
    assert [r for r in ROUTES if f"## Route `{r}`" not in script] == []
    assert [p for p in PROMPT_IDS if f"`{p}`" not in script] == []
    assert [m.path for m in METHODS if f"`GET api/V1/{m.path}`" not in wire] == []
