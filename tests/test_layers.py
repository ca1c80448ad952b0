"""The code's layers hold: imports run one way, with no circle, and none hidden in a function.

failover/ reads bottom-up (docs/ARCHITECTURE.md): state (the models and what is
kept in Redis), the doors (the peer, the operating system, the task queue),
behaviour, and the entry points on top. Each module imports only modules of its
own layer or below, and no two modules import each other, directly or round a
circle. The site (appliance/) and the security app import nothing of failover,
apart from the project's wiring. An import inside a function says why it is
deferred, or it would be hiding a circle.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("appliance", "security", "failover")
# Layers of failover, bottom first; a module not named here is behaviour.
STATE = ("failover.models", "failover.sync.progress", "failover.writes")
DOORS = ("failover.peer", "failover.jobs", "failover.system")
ENTRY = (
    "failover.apps", "failover.receivers", "failover.context_processors", "failover.views",
    "failover.forms", "failover.urls", "failover.middleware", "failover.peer_api",
    "failover.peer_urls", "failover.api", "failover.management", "failover.tasks",
)  # fmt: skip
LAYERS = ("state", "doors", "behaviour", "entry points")
# The project's wiring may name every app: settings, root URLconf, Celery app, WSGI.
WIRING = ("appliance.settings", "appliance.urls", "appliance.celery", "appliance.wsgi")
DEFERRED = re.compile(r"#.*deferred", re.IGNORECASE)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the project module imported
    line: int
    local: bool  # inside a function


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    }


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, modules: set[str]) -> list[Import]:
    """Every import of a project module that runs (not those only for type checkers)."""
    found: list[Import] = []

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                targets = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
            elif isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            else:
                visit(child, inner)
                continue
            for target in {resolve(t) for t in targets} - {None, name}:
                # `from failover import roles` imports failover.roles, not the package.
                found.append(Import(name, target, child.lineno, local))

    visit(ast.parse(path.read_text()), local=False)
    # A package named in `from package import module` stands for its modules only.
    named = {(i.source, i.target) for i in found}
    return [
        i
        for i in found
        if not any(
            other_target.startswith(i.target + ".") and other_source == i.source
            for other_source, other_target in named
        )
    ]


def all_imports() -> list[Import]:
    modules = project_modules()
    return [
        found for name, path in modules.items() for found in imports_of(name, path, set(modules))
    ]


def layer(module: str) -> int:
    def within(prefixes: tuple[str, ...]) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    if within(STATE):
        return 0
    if within(DOORS):
        return 1
    if within(ENTRY):
        return 3
    return 2


def cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module)."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_modules_import_each_other_round_a_circle():
    edges = [(i.source, i.target) for i in all_imports()]
    assert cycles(edges) == []


def test_each_failover_module_imports_only_its_own_layer_and_those_below():
    upward = [
        f"{i.source} ({LAYERS[layer(i.source)]}) imports {i.target} ({LAYERS[layer(i.target)]}), "
        f"line {i.line}"
        for i in all_imports()
        if i.source.startswith("failover")
        and i.target.startswith("failover")
        and layer(i.target) > layer(i.source)
    ]
    assert upward == []


@pytest.mark.parametrize("app", ["appliance", "security"])
def test_the_site_and_the_security_app_import_nothing_of_failover(app):
    reaching = [
        f"{i.source} line {i.line} imports {i.target}"
        for i in all_imports()
        if i.source.split(".")[0] == app
        and i.target.startswith("failover")
        and i.source not in WIRING
    ]
    assert reaching == []


def test_an_import_inside_a_function_says_why_it_is_deferred():
    hidden = []
    modules = project_modules()
    for i in all_imports():
        if not (i.local and i.source.startswith("failover")):
            continue
        lines = modules[i.source].read_text().splitlines()
        above = i.line - 1
        # The reason stands on the import's line, or on a comment above its block of imports.
        while above > 0 and (
            lines[above - 1].strip().startswith(("from ", "import ", "#"))
            or not lines[above - 1].strip()
        ):
            if DEFERRED.search(lines[above - 1]):
                break
            above -= 1
        if not (DEFERRED.search(lines[i.line - 1]) or DEFERRED.search(lines[above - 1] or "")):
            hidden.append(f"{i.source} line {i.line} imports {i.target} inside a function")
    assert hidden == []


def test_the_rules_catch_a_circle_and_an_upward_import():
    assert cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]
    assert layer("failover.models") < layer("failover.peer") < layer("failover.roles")
    assert layer("failover.roles") < layer("failover.tasks") == layer("failover.api.views")


ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
# Where a name in ARCHITECTURE.md may come from: a module of failover by its short
# name, or a class of one of these modules.
PACKAGES = ("failover", "failover.sync", "failover.system", "failover.api")
CLASSES_FROM = (
    "failover.models", "failover.peer", "failover.system.shared_ip", "failover.monitor",
    "failover.sync.receive", "appliance.models",
)  # fmt: skip


def resolve_name(dotted: str) -> object | None:
    """The object a name such as `runs.execute` or `SyncRun.claim` stands for, or None."""
    import importlib

    first, *rest = dotted.split(".")
    roots: list[object] = []
    for package in PACKAGES:
        try:
            roots.append(importlib.import_module(f"{package}.{first}"))
        except ImportError:
            continue
    roots += [
        getattr(importlib.import_module(m), first)
        for m in CLASSES_FROM
        if hasattr(importlib.import_module(m), first)
    ]
    for root in roots:
        found = root
        for part in rest:
            found = getattr(found, part, None)
            if found is None:
                break
        if found is not None:
            return found
    return None


@pytest.mark.django_db
def test_the_flows_in_architecture_md_name_functions_that_exist():
    flows = ARCHITECTURE.read_text().split("## Four flows", 1)[1]
    names = set(re.findall(r"`([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+)(?:\([^`]*\))?`", flows))
    assert len(names) > 40
    missing = sorted(name for name in names if resolve_name(name) is None)
    assert missing == []
