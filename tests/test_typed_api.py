"""The public API is typed: the lazy facades (PEP 562) name their real types for checkers.

A user script is type-checked with mypy itself; a wrong call must be an error (so the names
are not ``Any``), and every lazily exported name is declared for type checkers too.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FACADES = ["fle_core", "fle_core.sweeps", "fle_core.analysis"]


def _typing_imports(package: str) -> dict[str, str]:
    """name → module of every import inside the facade's ``if TYPE_CHECKING:`` block."""
    path = ROOT / (package.replace(".", "/") + "/__init__.py")
    out: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module, ast.dump(imp)
                for alias in imp.names:
                    assert alias.asname == alias.name, f"{alias.name}: re-export it as itself"
                    out[alias.name] = imp.module
    return out


@pytest.mark.parametrize("package", FACADES)
def test_every_lazy_name_is_declared_for_type_checkers(package):
    module = importlib.import_module(package)
    assert _typing_imports(package) == module._EXPORTS
    assert sorted(module.__all__) == sorted(module._EXPORTS)


def test_a_user_script_sees_the_real_signatures(tmp_path):
    script = tmp_path / "user.py"
    script.write_text(
        textwrap.dedent(
            """
            import fle_core
            from fle_core import sweeps

            reveal_type(fle_core.load_summaries)
            reveal_type(fle_core.model_metrics)
            reveal_type(sweeps.launch)
            fle_core.load_summaries(42)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", str(script)],  # the cache of the CI mypy run keeps this quick
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    ).stdout
    revealed = [line for line in out.splitlines() if "Revealed type" in line]
    assert len(revealed) == 3, out
    assert "def (ws: fle_core.workspace.Workspace" in revealed[0] and "DataFrame" in revealed[0], out
    assert "def (summaries: polars.dataframe.frame.DataFrame" in revealed[1], out
    assert "config: fle_core.sweeps.config.SweepConfig" in revealed[2] and "-> str" in revealed[2], out
    assert 'Argument 1 to "load_summaries" has incompatible type "int"' in out, out
