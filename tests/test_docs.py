"""Docs tests: every CLI flag and every config key must be documented, and every Python
snippet in the docs (and the README) runs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from fle_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _all_docs() -> str:
    parts = [(ROOT / "README.md").read_text()]
    parts += [p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(parts)


def _walk(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}".strip(), None
                yield from _walk(sub, f"{prefix}{name} ")
        elif action.option_strings and action.dest != "help":
            yield prefix.strip(), max(action.option_strings, key=len)


def test_every_cli_command_and_flag_is_documented():
    docs = _all_docs()
    missing = []
    for command, flag in _walk(build_parser()):
        if flag is None:
            if f"fle-core {command}" not in docs:
                missing.append(f"fle-core {command}")
        elif not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", docs):
            missing.append(f"{command} {flag}")
    assert missing == [], f"undocumented: {missing}"


def test_config_sections_are_documented():
    docs = (ROOT / "docs" / "configuration.md").read_text()
    from fle_core import workspace

    for section in re.findall(r"^\s*\[(\w+)(?:\.[^\]]*)?\]", workspace.__doc__, re.M):
        assert f"[{section}" in docs, f"[{section}] is not in docs/configuration.md"


# ---------------------------------------------------------------- every Python snippet runs
_COMPILE_ONLY = re.compile(r"<!--\s*docs-test:\s*compile only:\s*(.+?)\s*-->")


def _python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, why_not_run)`` for every ```python block (indented ones in lists too).
    ``why_not_run`` is the reason of a ``<!-- docs-test: compile only: … -->`` line right
    above the fence (a snippet that needs the network), else None."""
    import textwrap

    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, indent = i, lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            code = textwrap.dedent(
                "\n".join(ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : j])
            )
            above = _COMPILE_ONLY.search(lines[start - 1]) if start else None
            out.append((start + 1, code, above.group(1) if above else None))
            i = j
        i += 1
    return out


@pytest.fixture(scope="module")
def docs_workspace(tmp_path_factory) -> Path:
    """What the docs' examples assume: a workspace whose sweep ``my-sweep`` ran gpt-4o and
    gpt-4o-mini (versions 100-139, so 123 and 124 exist), synced from a real SQLite source."""
    from fixtures_fle import create_sqlite, make_rows

    from fle_core.warehouse.sync import sync
    from fle_core.workspace import Workspace

    root = tmp_path_factory.mktemp("docs") / "ws"
    ws = Workspace.open(root)
    rows = make_rows(
        40,
        seed=3,
        max_steps=12,
        first_version=100,
        models=["gpt-4o", "gpt-4o-mini"],
        tasks=["iron_ore_throughput", "iron_plate_throughput"],
        text_kb=0.05,
        sweep_id="my-sweep",
    )
    create_sqlite(ws.local_source_path, rows)
    sync(ws, "local")
    return root


DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.slow
@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_every_python_snippet_in_the_docs_runs(path, docs_workspace, tmp_path, monkeypatch):
    """Each file's ```python blocks run in order in one namespace (a later block may use an
    earlier one's names) against the docs workspace, W&B offline, in a scratch folder. A block
    marked compile-only (it needs the W&B cloud) must at least be valid Python."""
    import contextlib
    import io
    import shutil

    blocks = _python_blocks(path)
    if not blocks:
        assert "```python" not in path.read_text()
        return
    ws = tmp_path / "ws"
    shutil.copytree(docs_workspace, ws)  # a snippet may run a sweep into it
    monkeypatch.setenv("FLE_CORE_HOME", str(ws))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for line, code, why_not_run in blocks:
        compiled = compile(code, f"{path.name}:{line}", "exec")
        if why_not_run:
            assert "W&B cloud" in why_not_run, f"{path.name}:{line}: only cloud queries may skip running"
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compiled, namespace)
