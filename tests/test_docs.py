"""Docs tests: every CLI flag and every config key must be documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

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
