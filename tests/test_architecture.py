"""The house's shape holds: no import cycle between packages, no module grows past the size one person
can hold in mind, and nothing registers itself by being imported (docs/design.md, "The house")."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"
MAX_LINES = 450
# Generated or data-only modules (migrations are written once and never edited).
EXEMPT = ("server/storage/migrations/",)


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in SERVER.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(EXEMPT):
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def package_of(module: str) -> str:
    """``server.draws.actions`` -> ``server.draws``; ``server.app`` -> ``server.app`` (a top-level
    module is a package of its own); ``server`` -> ``server``."""
    return ".".join(module.split(".")[:2])


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every server module ``path`` imports, at run time or for type checking alike."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for target in (node.module, *(f"{node.module}.{a.name}" for a in node.names)):
                if target in known:
                    out.add(target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
    return out


def package_graph() -> dict[str, set[str]]:
    known = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        for target in _imports(path, known):
            if target != "server" and package_of(target) != package_of(module):
                graph[package_of(module)].add(package_of(target))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path_through(graph: dict[str, set[str]], component: list[str]) -> str:
    """One concrete cycle inside a component, for the failure message."""
    members = set(component)
    start = component[0]
    trail = [start]
    seen = {start}
    node = start
    while True:
        nxt = sorted(w for w in graph[node] if w in members)
        back = [w for w in nxt if w in seen]
        if back:
            trail.append(back[0])
            cut = trail.index(back[0])
            return " -> ".join(trail[cut:])
        node = next(w for w in nxt)
        trail.append(node)
        seen.add(node)


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph()
    found = cycles(graph)
    assert not found, "import cycles between packages: " + "; ".join(_path_through(graph, c) for c in found)


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a made-up graph with a cycle is caught, an acyclic one is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_module_over_the_size_limit() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): n
        for path in _modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by responsibility): {long}"


def test_nothing_registers_itself_on_import() -> None:
    """Domains are declared (server/<domain>/domain.py) and given to create_app; no module appends
    to another module's registry at import time."""
    offenders = []
    for module, path in _modules().items():
        for node in ast.parse(path.read_text()).body:
            call = node.value if isinstance(node, ast.Expr) else None
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr in {"append", "update", "extend", "register", "add"}
            ):
                offenders.append(f"{module}: {ast.unparse(call)[:60]}")
    assert not offenders, f"registration by import: {offenders}"


def test_no_cache_lives_at_module_level() -> None:
    """Caches belong to an app (an engine, or the app's database through ``per_database``): a
    module-level cache is shared by every app of the process and outlives each."""
    offenders = []
    for module, path in _modules().items():
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if isinstance(value, ast.Call) and ast.unparse(value.func) in {"TtlCache", "BatchGetter"}:
                offenders.append(f"{module}: {ast.unparse(node)[:60]}")
    assert not offenders, f"module-level caches: {offenders}"
