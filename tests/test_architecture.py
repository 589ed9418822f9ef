"""Guards for the layering rules in docs/architecture.md.

These read the source tree, so they fail the moment someone puts SQL in a page
or makes the core depend on Streamlit.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import fle_core

ROOT = Path(__file__).resolve().parents[1]
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b\s+.*\b(FROM|INTO|SET|WHERE)\b", re.I | re.S)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_streamlit():
    offenders = [p.name for p in (ROOT / "fle_core").glob("*.py") if "streamlit" in _imports(p)]
    assert offenders == []


def test_pages_contain_no_sql():
    pages = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    assert len(pages) > 1, "the app has no pages yet"
    for page in pages:
        tree = ast.parse(page.read_text())
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        assert not [s for s in strings if SQL_WORDS.search(s)], f"SQL text in {page.name}"
        assert not ({"duckdb", "sqlite3", "psycopg"} & _imports(page)), f"{page.name} talks to a database"


def test_sql_detector_can_fire():
    assert SQL_WORDS.search("select * from steps where id = ?")
    assert not SQL_WORDS.search("Select the models to compare")


@pytest.mark.parametrize("name", fle_core.__all__)
def test_public_api_names_resolve(name):
    assert getattr(fle_core, name) is not None


def test_private_modules_are_underscored_or_documented():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for path in (ROOT / "fle_core").glob("*.py"):
        if path.name.startswith("_"):
            continue
        assert f"`{path.name}`" in doc, f"{path.name} is missing from docs/architecture.md"


def test_module_sizes_stay_reviewable():
    too_big = {p.name: n for p in (ROOT / "fle_core").glob("*.py")
               if (n := len(p.read_text().splitlines())) > 800}
    assert too_big == {}
    for page in (ROOT / "pages").glob("*.py"):
        assert len(page.read_text().splitlines()) <= 300, page.name


def test_every_module_imports():
    for path in (ROOT / "fle_core").glob("*.py"):
        if path.name == "__main__.py":
            continue
        importlib.import_module(f"fle_core.{path.stem}")
