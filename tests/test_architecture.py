"""Guards for the layering rules in docs/architecture.md.

These read the source tree, so they fail the moment someone puts SQL in a page,
makes the core depend on Streamlit, imports upward across the layers, or closes
an import circle (lazy imports inside functions count too).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import fle_core

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "fle_core"
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b\s+.*\b(FROM|INTO|SET|WHERE)\b", re.I | re.S)

# Which areas of fle_core an area may import (its first dotted name under fle_core).
# Imports point down: sources -> warehouse -> stats -> analysis -> charts -> report;
# sweeps sit beside the data layers (jobs write sources, the runner syncs the
# warehouse); the CLI and the package root wire everything.
KERNEL = {"_lazy", "errors", "names", "tasks", "workspace"}
ALLOWED: dict[str, set[str]] = {
    "_lazy": set(),
    "errors": set(),
    "names": set(),
    "tasks": {"errors"},
    "workspace": {"errors", "tasks"},
    "saved_views": KERNEL,
    "sources": KERNEL,
    "warehouse": KERNEL | {"sources"},
    "stats": KERNEL,
    "analysis": KERNEL | {"warehouse", "stats"},
    "charts": KERNEL | {"stats"},
    "report": KERNEL | {"stats", "analysis", "charts", "warehouse"},
    "tracking": KERNEL,
    # the old SweepManager's final report reads the warehouse through analysis
    "sweeps": KERNEL | {"sources", "warehouse", "tracking", "analysis", "stats"},
}
WIRING = {"cli", "__init__", "__main__"}  # may import any area


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(CORE.rglob("*.py"))}


MODULES = _modules()


def _targets(path: Path) -> set[str]:
    """The fle_core modules a file imports (anywhere in it): ``from a import b`` is
    an edge to ``a.b`` when that is a module, else to ``a``."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("fle_core"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fle_core"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
    return out


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _import_graph() -> dict[str, set[str]]:
    return {name: _targets(path) & MODULES.keys() - {name} for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        area = _area(module)
        if area in WIRING:
            continue
        allowed = ALLOWED.get(area)
        if allowed is None:
            bad.append(f"{module}: area {area!r} has no layering rule (add it to ALLOWED and the docs)")
            continue
        for target in sorted(targets):
            other = _area(target)
            if other != area and other not in allowed:
                bad.append(f"{module} imports {target} ({area} may not depend on {other})")
    return bad


def test_imports_point_down_the_layers():
    assert _upward_imports(_import_graph()) == []


def test_there_are_no_import_circles():
    assert _cycles(_import_graph()) == []


def test_layering_checks_can_fire():
    graph = {
        "fle_core.stats.metrics": {"fle_core.warehouse.store"},
        "fle_core.warehouse.store": {"fle_core.errors"},
        "fle_core.errors": set(),
    }
    assert _upward_imports(graph) == [
        "fle_core.stats.metrics imports fle_core.warehouse.store (stats may not depend on warehouse)"
    ]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _private_crossings(path: Path, area: str) -> list[str]:
    """``_private`` names a file takes from another area of fle_core: ``from a.b import _x``,
    ``from a import _module``, or ``module._x`` on a module imported from elsewhere. Inside
    an area privates are shared freely; across areas only the public contract is."""
    tree = ast.parse(path.read_text())
    modules: dict[str, str] = {}  # local name -> fle_core module it is bound to
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fle_core"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in MODULES:
                    modules[alias.asname or alias.name] = full
                if _area(full if full in MODULES else node.module) == area:
                    continue
                private = [p for p in full.split(".")[2:] if p.startswith("_") and not p.startswith("__")]
                if private:
                    bad.append(f"{path.name} imports {full}")
        elif isinstance(node, ast.Import):
            modules.update(
                {a.asname: a.name for a in node.names if a.asname and a.name.startswith("fle_core")}
            )
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and _area(modules[node.value.id]) != area
        ):
            bad.append(f"{path.name} uses {modules[node.value.id]}.{node.attr}")
    return bad


def test_no_private_name_crosses_an_area():
    bad = [b for name, path in MODULES.items() for b in _private_crossings(path, _area(name))]
    bad += [b for path in sorted((ROOT / "pages").rglob("*.py")) for b in _private_crossings(path, "pages")]
    assert bad == []


def test_the_private_name_check_can_fire(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from fle_core.stats.metrics import _hidden, group_metrics\n"
        "from fle_core.stats import _resample, compare\n"
        "x = compare._verdict\n"
    )
    assert _private_crossings(probe, "analysis") == [
        "probe.py imports fle_core.stats.metrics._hidden",
        "probe.py imports fle_core.stats._resample",
        "probe.py uses fle_core.stats.compare._verdict",
    ]
    assert _private_crossings(probe, "stats") == []


def test_core_never_imports_streamlit_or_the_pages():
    offenders = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n.split(".")[0] in {"streamlit", "pages"} for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def _page_files() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]


def _top_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_pages_contain_no_sql():
    pages = _page_files()
    assert len(pages) > 1, "the app has no pages yet"
    for page in pages:
        tree = ast.parse(page.read_text())
        strings = [
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        assert not [s for s in strings if SQL_WORDS.search(s)], f"SQL text in {page.name}"
        assert not ({"duckdb", "sqlite3", "psycopg"} & _top_imports(page)), f"{page.name} talks to a database"


def test_pages_use_the_ui_facade_without_star_imports():
    for path in _page_files():
        tree = ast.parse(path.read_text())
        stars = [
            n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)
        ]
        assert stars == [], f"star import in {path.relative_to(ROOT)}"
    for page in sorted((ROOT / "pages").glob("*.py")):
        private = [
            n.module
            for n in ast.walk(ast.parse(page.read_text()))
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("pages._ui.")
        ]
        assert private == [], f"{page.name} reaches past the pages._ui facade: {private}"


def test_sql_detector_can_fire():
    assert SQL_WORDS.search("select * from steps where id = ?")
    assert not SQL_WORDS.search("Select the models to compare")


@pytest.mark.parametrize("name", fle_core.__all__)
def test_public_api_names_resolve(name):
    assert getattr(fle_core, name) is not None


def test_every_package_and_public_module_is_in_the_architecture_doc():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for name, path in MODULES.items():
        if path.name.startswith("_") and path.name != "__init__.py":
            continue
        shown = name.removeprefix("fle_core.").replace(".", "/") + (
            "/" if path.name == "__init__.py" else ".py"
        )
        if name == "fle_core":
            continue
        assert f"`{shown}`" in doc, f"{shown} is missing from docs/architecture.md"


def test_every_area_has_a_layering_rule():
    areas = {_area(m) for m in MODULES} - WIRING
    assert areas - ALLOWED.keys() == set()


def test_module_sizes_stay_reviewable():
    too_big = {
        str(p.relative_to(ROOT)): n
        for p in CORE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 800
    }
    assert too_big == {}
    for page in (ROOT / "pages").rglob("*.py"):
        assert len(page.read_text().splitlines()) <= 300, page.name


def test_every_module_imports():
    for name in MODULES:
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)


def test_the_package_ships_type_information():
    assert (CORE / "py.typed").is_file()


def _test_module_imports(path: Path) -> list[str]:
    """The test modules (``test_*``) that ``path`` imports."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return [m for m in found if m.split(".")[0].startswith("test_")]


def test_no_test_module_imports_another():
    """Shared builders live in ``tests/*_helpers.py`` and fixtures modules: a test module
    that imports another runs that module's fixtures and couples the two files."""
    bad = {p.name: _test_module_imports(p) for p in (ROOT / "tests").glob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_test_import_check_can_fire(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text("from test_app import run_page\nimport test_runner\nfrom app_helpers import texts\n")
    assert _test_module_imports(probe) == ["test_app", "test_runner"]
