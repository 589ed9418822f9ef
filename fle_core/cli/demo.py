"""CLI command: ``fle-core remove-demo`` — delete the simulated demo data.

The same action as **Remove demo data** on the app's Sources & sync page
(``fle_core.sweeps.demo.remove_demo``); every flag is in ``docs/cli.md``.
"""

from __future__ import annotations

import argparse

from fle_core.workspace import Workspace


def register(sub) -> None:
    p = sub.add_parser(
        "remove-demo",
        help="delete simulated (demo sweep) rows from the warehouse and the workspace's local source",
    )
    p.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.set_defaults(func=_remove_demo)


def _remove_demo(args) -> int:
    from fle_core.warehouse.demo import simulated_counts

    ws = Workspace.open(getattr(args, "workspace", None), create=False)
    if args.dry_run:
        counts = simulated_counts(ws)
        if not counts:
            print("No simulated data in the warehouse.")
        for source, (steps, trajectories) in counts.items():
            print(f"{source}: {steps:,} simulated steps ({trajectories:,} trajectories) would be removed")
        return 0
    from fle_core.sweeps.demo import remove_demo

    print(remove_demo(ws).text())
    return 0
