"""Every prompt text is heard somewhere: an unused text is a stale translation to maintain."""

from __future__ import annotations

import ast
from pathlib import Path

import ivr.flow
from ivr.catalog import PROMPT_IDS


def literals_in_the_flow() -> set[str]:
    found: set[str] = set()
    for path in Path(ivr.flow.__file__).parent.glob("*.py"):
        if path.name == "prompts.py":  # the list of ids itself
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_every_prompt_is_played_by_the_flow() -> None:
    unused = set(PROMPT_IDS) - literals_in_the_flow()
    assert not unused, f"prompt texts no step plays: {sorted(unused)}"
