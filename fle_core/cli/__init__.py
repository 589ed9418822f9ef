"""``fle-core`` console script: parse, validate, run.

Each command group lives in its own module exposing ``register(subparsers)``;
handlers receive the parsed args and return an exit code. Expected failures are
``FleError``s and are printed as one line (plus a hint), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from fle_core.errors import FleError

COMMAND_MODULES = [
    "fle_core.cli.sync",
    "fle_core.cli.source",
    "fle_core.cli.sweep",
    "fle_core.cli.report",
    "fle_core.cli.compare",
    "fle_core.cli.gate",
    "fle_core.cli.leaderboard",
    "fle_core.cli.demo",
]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="fle-core", description="FLE evaluation workbench")
    parser.add_argument("--workspace", help="workspace folder (default: $FLE_CORE_HOME or ./.fle)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except FleError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
