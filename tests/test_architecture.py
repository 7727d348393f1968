"""The parts of `ivr` and their arrows, read from the source with `ast`.

Every `import` counts, also one inside a function or under `TYPE_CHECKING`: a cycle hidden in a
function is still a cycle a newcomer has to untangle. A part is a top-level module or package of
`ivr` (`ivr.flow`, `ivr.settings`), or one level deeper inside the folders that only group parts
(`ivr.transports.agi`, `ivr.backends.kimvoice`). The picture in the README's Layout section is
this graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ivr

ROOT = Path(ivr.__file__).resolve().parent
GROUPS = {"transports", "backends"}
"""Folders whose subpackages are the parts, each on its own."""

FLOW_MUST_NOT_IMPORT = ("ivr.transports", "ivr.store", "ivr.web", "ivr.sim", "ivr.service", "ivr.cli", "ivr.outbound")
"""The flow owns its interfaces: transports, the store and HTTP implement them, not the reverse."""

LAYERS: tuple[tuple[str, ...], ...] = (
    ("ivr.__main__",),
    ("ivr.cli",),
    ("ivr.service",),
    ("ivr.sim",),
    ("ivr.transports.agi", "ivr.transports.ari", "ivr.transports.pivot", "ivr.store", "ivr.web"),
    ("ivr.flow", "ivr.outbound"),
    ("ivr.backends.kimvoice", "ivr.backends.kimoby", "ivr.backends.codelocks", "ivr.tts"),
    ("ivr.settings",),
    ("ivr.records", "ivr.catalog", "ivr.sessions", "ivr.embedded_http", "ivr.http_answers", "ivr.sandbox_kit"),
    ("ivr.errors", "ivr.logging", "ivr.netallow", "ivr.install_key"),
)
"""The picture in the README's Layout section, top down: a part imports only parts below its layer.
A new part goes into a layer here (and into the picture)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _part(module: str) -> str:
    """The part a module belongs to: `ivr.flow.dialog` -> `ivr.flow`, `ivr.transports.agi._call` ->
    `ivr.transports.agi`."""
    names = module.split(".")
    depth = 3 if len(names) > 2 and names[1] in GROUPS else 2
    return ".".join(names[:depth])


def _imports(path: Path, module: str) -> set[str]:
    """The `ivr` modules one source file imports, absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # `from ivr.transports import agi` imports the subpackage, not only the package
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "ivr" or name.startswith("ivr.")}


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py")) if "__pycache__" not in path.parts}


def import_graph() -> dict[str, set[str]]:
    """Part -> the parts it imports (itself left out)."""
    sources = _sources()
    known = set(sources)
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        if module == "ivr":
            continue
        part = _part(module)
        edges = graph.setdefault(part, set())
        for target in _imports(path, module):
            if target not in known:
                target = target.rpartition(".")[0]  # a name imported from a module
            if target in known and target != "ivr" and _part(target) != part:
                edges.add(_part(target))
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_parts() -> None:
    graph = import_graph()
    parts = ("ivr.flow", "ivr.store", "ivr.tts", "ivr.web", "ivr.sim", "ivr.catalog", "ivr.records", "ivr.sessions",
             "ivr.embedded_http", "ivr.transports.agi", "ivr.transports.ari", "ivr.backends.kimvoice")
    for part in parts:
        assert part in graph, part
    assert "ivr.flow" in graph["ivr.store"]  # the store implements the flow's interfaces
    assert "ivr.flow" in graph["ivr.transports.agi"]


def test_no_cycle_between_parts() -> None:
    graph = import_graph()
    cycles = _cycles(graph)
    described = [
        " <-> ".join(members) + ": " + "; ".join(f"{a} imports {sorted(graph[a] & set(members))}" for a in members)
        for members in cycles
    ]
    assert not cycles, "\n".join(described)


def test_every_part_imports_only_layers_below_it() -> None:
    layer_of = {part: depth for depth, parts in enumerate(LAYERS) for part in parts}
    graph = import_graph()
    groups = {f"ivr.{group}" for group in GROUPS}
    unplaced = sorted(part for part in graph if part not in layer_of and part not in groups)
    assert not unplaced, f"parts in no layer of LAYERS (and of the README's picture): {unplaced}"
    upward = sorted(
        f"{part} -> {target}"
        for part, targets in graph.items()
        for target in targets
        if part in layer_of and layer_of.get(target, len(LAYERS)) <= layer_of[part]
    )
    assert not upward, f"imports of a part of the same or a higher layer: {upward}"


def test_the_flow_imports_no_transport_store_web_or_sim() -> None:
    wrong = sorted(part for part in import_graph()["ivr.flow"] if part.startswith(FLOW_MUST_NOT_IMPORT))
    assert not wrong, f"ivr.flow imports {wrong}"


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected
