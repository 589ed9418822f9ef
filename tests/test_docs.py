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


def _command_docs(command: str) -> str:
    """What the docs say about one command: its rows in the command tables (a row whose first
    cell names ``fle-core COMMAND``) and any section headed by it, to the next heading of its
    level; a row that points to the "Slurm options" brings that paragraph along."""
    out = []
    for text in [
        (ROOT / "README.md").read_text(),
        *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))),
    ]:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            first_cell = line.split("|")[1] if line.startswith("|") and line.count("|") > 2 else ""
            if re.search(rf"`fle-core {re.escape(command)}(?![\w-])", first_cell):
                out.append(line)
            heading = re.match(rf"^(#+)\s.*fle-core {re.escape(command)}(?![\w-])", line)
            if heading:
                level, end = len(heading.group(1)), i + 1
                while end < len(lines) and not re.match(rf"^#{{1,{level}}}\s", lines[end]):
                    end += 1
                out += lines[i:end]
    found = "\n".join(out)
    if "Slurm options" in found:
        cli = (ROOT / "docs" / "cli.md").read_text()
        found += cli[cli.index("**Slurm options**") :].split("\n\n", 1)[0]
    return found


#: Flags most commands take, documented once above the command table of docs/cli.md.
COMMON_FLAGS = {"--workspace", "--verbose"}


def test_every_cli_command_and_flag_is_documented_where_the_command_is():
    """Each flag in its own command's row or section (a flag named anywhere is not enough)."""
    parser = build_parser()
    common = COMMON_FLAGS
    cli = (ROOT / "docs" / "cli.md").read_text()
    preamble = cli[: cli.index("| command |")]
    missing = [f"shared {flag}" for flag in sorted(common) if flag not in preamble]
    for command, flag in _walk(parser):
        where = _command_docs(command) if command else preamble
        if flag is None:
            if not where:
                missing.append(f"fle-core {command}")
        elif flag not in common and not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", where):
            missing.append(f"{command or '(top level)'} {flag}")
    assert missing == [], f"undocumented where the command is: {missing}"


def test_the_flag_check_reads_one_command_only():
    """It can fail: ``--dry-run`` is documented for ``remove-demo``, not for ``status``."""
    assert "--dry-run" in _command_docs("remove-demo")
    assert "--dry-run" not in _command_docs("status") and _command_docs("status")
    assert "--partition" in _command_docs("runner")  # via the Slurm options paragraph


def test_config_sections_are_documented():
    docs = (ROOT / "docs" / "configuration.md").read_text()
    from fle_core import workspace

    for section in re.findall(r"^\s*\[(\w+)(?:\.[^\]]*)?\]", workspace.__doc__, re.M):
        assert f"[{section}" in docs, f"[{section}] is not in docs/configuration.md"


def _keys_the_code_reads() -> dict[str, set[str]]:
    """Config keys as the code that parses them lists them, per section (so a key added to
    the parser and not to the docs fails here)."""
    from dataclasses import fields

    from fle_core.sweeps import executors, slurm
    from fle_core.warehouse._writing import Options

    preset = {"kind", "command", "env", "pass_env", "description"}
    preset |= {*executors._SIM_OPTIONS, *executors._FLE_OPTIONS, *executors.FLE_SETTINGS}
    return {
        "sync": {f.name for f in fields(Options)},
        "slurm": set(slurm.KEYS),
        "executors": preset,
    }


def _config_docs(section: str) -> str:
    """The docs of one section: its part of docs/configuration.md, plus the table that part
    points to (executor presets are described in docs/sweeps.md)."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    part = text[text.index(f"## `[{section}") :]
    part = part[: part.index("\n## ", 1)] if "\n## " in part[1:] else part
    if "sweeps.md" in part and section == "executors":
        part += (ROOT / "docs" / "sweeps.md").read_text()
    return part


def test_every_config_key_is_documented_in_its_section():
    missing = [
        f"[{section}] {key}"
        for section, keys in _keys_the_code_reads().items()
        for key in sorted(keys)
        if f"`{key}`" not in _config_docs(section)
    ]
    assert missing == [], f"undocumented config keys: {missing}"


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
