"""The package's shape: no import cycle, only the command line depends on the commands, and
every stage returns a `Result`.

The import graph is read from the source with `ast`. A module's imports are the `import`
statements of its body, outside functions and classes and outside ``if TYPE_CHECKING:``
blocks: the ones that run when the module is first imported. Importing ``a.b.c`` also
runs the ``__init__`` of ``a.b`` (unless the importer is inside ``a.b`` already).
"""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterator
from pathlib import Path

from pipeline import stages
from pipeline.results import Result

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "jobs")
COMMANDS = "pipeline.commands"
ALLOWED_TO_IMPORT_COMMANDS = ("pipeline.cli", COMMANDS)
STAGES = (
    "sync",
    "sync_all",
    "evaluate",
    "plan_notices",
    "dispatch",
    "remind_departments",
    "escalate",
    "monthly_report",
    "check_config",
)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:  # alembic scripts, loaded by alembic, not imported
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _absolute(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = importer if _is_package(importer) else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imported(importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules of ours an import statement names."""
    yield from (name for name in _names(importer, node) if name in MODULES)


def _names(importer: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """``import a.b`` names a.b; ``from a import b`` names a.b if that is a module, else a."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _absolute(importer, node)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _runs(importer: str, target: str) -> Iterator[str]:
    """What importing `target` from `importer` executes: it and its packages' __init__."""
    yield target
    parent = target.rpartition(".")[0]
    while parent and not (importer == parent or importer.startswith(parent + ".")):
        if parent in MODULES:
            yield parent
        parent = parent.rpartition(".")[0]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level(block)
            for handler in node.handlers:
                yield from _top_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _top_level(node.body)


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"), str(MODULES[name]))


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of ours its first import executes (module-level imports only)."""
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        edges = graph.setdefault(name, set())
        for node in _top_level(_tree(name).body):
            for target in _imported(name, node):
                edges.update(t for t in _runs(name, target) if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_graph_sees_the_packages_and_their_imports() -> None:
    graph = import_graph()
    assert {"pipeline.cli", "pipeline.stages", "jobs", "jobs.sync"} <= set(graph)
    assert "pipeline.stages" in graph["jobs.sync"]
    assert "pipeline.commands.text" in graph["pipeline.commands.ops"]
    assert "jobs" not in graph["pipeline.commands.ops"]  # imported by its handlers only
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_the_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_only_the_command_line_imports_the_commands() -> None:
    """Jobs and the library call stages; `pipeline.commands` is parsing and printing only.

    Checked on every import, in functions too.
    """
    offenders = []
    for name in MODULES:
        if name in ALLOWED_TO_IMPORT_COMMANDS or name.startswith(COMMANDS + "."):
            continue
        for node in ast.walk(_tree(name)):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                n == COMMANDS or n.startswith(COMMANDS + ".") for n in _names(name, node)
            ):
                offenders.append(f"{name} (line {node.lineno})")
    assert offenders == []


def test_every_stage_returns_a_result() -> None:
    for name in STAGES:
        returned = typing.get_type_hints(getattr(stages, name))["return"]
        assert issubclass(returned, Result), f"stages.{name} returns {returned}"
