"""The declared layering holds (docs/architecture.md): the import contracts, no import cycle
across two apps, and no function-level import of another app.

The first runs ``lint-imports`` (the contracts in pyproject.toml's ``[tool.importlinter]``) so a
broken contract fails ``make test`` with import-linter's own report. The other two read the
static import graph of the four apps (grimp, the graph import-linter uses; function-level imports
count as imports there). Each has an allow-list of today's debt, marked TODO(#12): a new entry
fails, and so does a stale one, so the lists only shrink and always say what is left.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("marketplace", "payments", "tasks", "quality")

# Entry points sit above every layer (settings, URLs, the Celery app, WSGI/ASGI, management
# commands): they may import any app, however they like. pyproject.toml carves out the same ones.
ENTRY_POINTS = (
    "marketplace.settings",
    "marketplace.urls",
    "marketplace.celery",
    "marketplace.wsgi",
    "marketplace.asgi",
    "marketplace.management",
    "tasks.management",
)

# No import cycle crosses an app boundary (the 12-module cycle across all four apps is gone since
# the one-home-per-rule work of #12). Keep it empty: a cross-app cycle fails the test.
ALLOWED_CYCLE: frozenset[str] = frozenset()

# Function-level imports of another app (importer module, imported module's top package).
# An import inside a function is how a cycle gets dodged; each of these goes when its code moves
# to its layer or its call becomes a signal / on-commit task.
ALLOWED_FUNCTION_IMPORTS = frozenset(
    {
        ("quality.apps", "payments"),
        # AppConfig.ready: hands quality's consensus reader down to tasks (the seam proposals).
        ("quality.apps", "tasks"),
        # AppConfig.ready: hands tasks' measured-work reader down to payments (earnings).
        ("tasks.apps", "payments"),
    }
)


def _is_entry_point(module: str) -> bool:
    return any(module == e or module.startswith(e + ".") for e in ENTRY_POINTS)


def _app(module: str) -> str:
    return module.split(".")[0]


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of ``graph`` with more than one module (Tarjan's
    algorithm, iterative: the module graph is deep enough to matter for recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(component)
    return out


def cross_app_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    return [c for c in strongly_connected(graph) if len({_app(m) for m in c}) > 1]


def _app_graph() -> dict[str, set[str]]:
    g = grimp.build_graph(*APPS, cache_dir=None)
    return {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}


def function_level_imports(paths: Iterable[Path]) -> set[tuple[str, str]]:
    """(importing module, imported app) for every import of another app inside a function."""
    found = set()
    for path in paths:
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if "migrations" in parts or _is_entry_point(module):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    names = [a.name for a in inner.names]
                elif isinstance(inner, ast.ImportFrom) and not inner.level and inner.module:
                    names = [inner.module]
                else:
                    continue  # relative imports stay in their app
                for name in names:
                    if _app(name) in APPS and _app(name) != _app(module):
                        found.add((module, _app(name)))
    return found


def _app_sources() -> list[Path]:
    return sorted(p for app in APPS for p in (ROOT / app).rglob("*.py"))


def test_import_contracts_hold():
    """``lint-imports`` keeps every contract of pyproject.toml (layers, entry points, pure
    modules, stripe, av and cv2 each in one module)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    # One module per external system: each has its contract, and each contract is checked.
    for contract in ("external-stripe", "external-av", "external-cv2"):
        assert contract in _contract_ids(), contract


def _contract_ids() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["id"] for c in config["tool"]["importlinter"]["contracts"]}


def test_no_import_cycle_crosses_an_app_boundary():
    cycles = cross_app_cycles(_app_graph())
    on_cycles = set().union(*cycles) if cycles else set()
    new = sorted(on_cycles - ALLOWED_CYCLE)
    assert not new, f"new modules on an import cycle across apps: {new}"
    gone = sorted(ALLOWED_CYCLE - on_cycles)
    assert not gone, f"no longer on a cross-app cycle; remove from ALLOWED_CYCLE: {gone}"


def test_no_function_level_import_of_another_app():
    found = function_level_imports(_app_sources())
    new = sorted(found - ALLOWED_FUNCTION_IMPORTS)
    assert not new, f"function-level imports of another app (they dodge cycles): {new}"
    gone = sorted(ALLOWED_FUNCTION_IMPORTS - found)
    assert not gone, f"gone; remove from ALLOWED_FUNCTION_IMPORTS: {gone}"


# The checks themselves, on graphs and sources made up for the purpose.


def test_a_cycle_across_two_apps_is_found_and_one_inside_an_app_is_not():
    graph = {
        "tasks.a": {"tasks.b"},
        "tasks.b": {"tasks.a", "payments.x"},
        "payments.x": {"payments.y"},
        "payments.y": {"tasks.b"},
        "quality.p": {"quality.q"},
        "quality.q": {"quality.p"},
        "marketplace.m": set(),
    }
    assert cross_app_cycles(graph) == [{"tasks.a", "tasks.b", "payments.x", "payments.y"}]
    graph["payments.y"] = set()
    assert cross_app_cycles(graph) == []


def test_a_long_chain_does_not_exhaust_the_stack():
    n = 5 * sys.getrecursionlimit()
    graph = {f"tasks.m{i}": {f"tasks.m{i + 1}"} for i in range(n)}
    graph[f"tasks.m{n}"] = {"payments.z"}
    graph["payments.z"] = {"tasks.m0"}
    (cycle,) = cross_app_cycles(graph)
    assert len(cycle) == n + 2


def test_function_level_imports_of_other_apps_are_found(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "management").mkdir()
    src = tmp_path / "tasks" / "thing.py"
    src.write_text(
        "import marketplace.models\n"  # module level: not this check's business
        "def f():\n"
        "    from quality.selectors import x\n"
        "    from .models import y\n"  # same app, relative
        "    import tasks.models\n"  # same app
        "class C:\n"
        "    def m(self):\n"
        "        import payments\n"
    )
    command = tmp_path / "tasks" / "management" / "cmd.py"
    command.write_text("def handle():\n    import quality.models\n")  # an entry point
    found = function_level_imports([src, command])
    assert found == {("tasks.thing", "quality"), ("tasks.thing", "payments")}


# One module per external library (the ``external-*`` contracts), checked here too from the source
# itself, function-level imports included: the module each may be imported from.
EXTERNAL_HOMES = {
    "stripe": "payments/stripe_gateway.py",
    "av": "tasks/video.py",
    "cv2": "tasks/vision.py",
}


@pytest.mark.parametrize("library", sorted(EXTERNAL_HOMES))
def test_each_external_library_is_imported_in_its_one_module(library):
    importers = set()
    for path in _app_sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            if any(n == library or n.startswith(f"{library}.") for n in names):
                importers.add(str(path.relative_to(ROOT)))
    assert importers == {EXTERNAL_HOMES[library]}
