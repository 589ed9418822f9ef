"""CLI commands: ``fle-core source add|list|remove`` (the sources a workspace reads).

A new source is checked on this machine before it is written to ``config.toml``
(``warehouse.identity.add_source``); a password is never typed, only the name of the
environment variable holding it. ``remove`` drops a source's rows from the warehouse and
leaves the source itself (and ``config.toml``) untouched.
"""

from __future__ import annotations

import argparse

from fle_core.errors import ConfigError
from fle_core.workspace import Workspace


def register(sub) -> None:
    p = sub.add_parser("source", help="add, list or remove the sources this workspace reads")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser("add", help="check a new source and add it to config.toml")
    add.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    add.add_argument("name", help="a name for people (letters, digits, '-', '_')")
    add.add_argument(
        "where", help="a folder or file of Inspect logs, an s3:// URL, sqlite:///PATH or postgresql://…"
    )
    add.add_argument("--password-env", help="the environment variable holding the database password")
    add.set_defaults(func=_add)
    ls = verbs.add_parser("list", help="the configured sources: kind, where they are, whether they are there")
    ls.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    ls.set_defaults(func=_list)
    rm = verbs.add_parser("remove", help="drop a source's rows from the warehouse (the source is untouched)")
    rm.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    rm.add_argument("name", help="the source's name in the warehouse (see `fle-core status`)")
    rm.add_argument("--yes", action="store_true", help="do it (without --yes, say what would be removed)")
    rm.set_defaults(func=_remove)


def _add(args) -> int:
    from fle_core.warehouse.identity import add_source

    ws = Workspace.open(getattr(args, "workspace", None))
    source = add_source(ws, args.name, args.where, args.password_env)
    print(f"added source {source.name} [{source.kind}] {source.display} to {ws.config_path}")
    print(f"sync it with: fle-core sync --source {source.name}")
    return 0


def _list(args) -> int:
    from fle_core import sources

    ws = Workspace.open(getattr(args, "workspace", None), create=False)
    for row in sources.describe(ws):
        print(f"{row['source']} [{row['kind']}] {row['where']}  ({row['status']})")
    return 0


def _remove(args) -> int:
    from fle_core.warehouse import identity

    ws = Workspace.open(getattr(args, "workspace", None))
    if not args.yes:
        held = identity.held_steps(ws, args.name)
        raise ConfigError(
            f"This would remove {held:,} steps of source {args.name!r} from the warehouse",
            hint=f"run `fle-core source remove {args.name} --yes` to do it",
        )
    steps = identity.remove(ws, args.name)
    print(f"removed source {args.name}: {steps:,} steps dropped from the warehouse (the source is untouched)")
    return 0
