"""Remove demo data: what the simulated demo sweep left in the warehouse and the local source.

``fle-core remove-demo`` and the Sources & sync page's **Remove demo data** call
``remove_demo``. It refuses while a sweep on a ``simulate`` executor is active
(it would write new demo rows right after), then

* deletes every simulated step and trajectory from the warehouse
  (``warehouse.demo.remove_simulated``: one recorded change, the data version moves);
* deletes the simulator's rows (``meta.simulated = true``) from the workspace's own
  ``local`` SQLite source, where the demo sweep writes, so a later ``sync --full``
  does not bring them back. Other sources are never written: ``kept`` names the
  ones whose simulated rows a full rebuild would copy again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from fle_core.errors import QueueError
from fle_core.warehouse import demo as warehouse_demo
from fle_core.workspace import LOCAL_SOURCE, Workspace


@dataclass
class DemoRemoval:
    """What ``remove_demo`` deleted (counts per source) and what it left alone."""

    steps: dict[str, int] = field(default_factory=dict)
    trajectories: dict[str, int] = field(default_factory=dict)
    source_rows: int = 0  # simulator rows deleted from the workspace's local SQLite source
    kept: list[str] = field(default_factory=list)  # other sources still holding simulated rows

    @property
    def nothing(self) -> bool:
        return not self.steps and not self.source_rows

    def text(self) -> str:
        """One plain line for the CLI and the app."""
        if self.nothing:
            return "No simulated data to remove."
        steps, traj = sum(self.steps.values()), sum(self.trajectories.values())
        line = f"Removed {steps:,} simulated steps ({traj:,} trajectories) from the warehouse"
        if self.source_rows:
            line += f" and {self.source_rows:,} simulator rows from the local source"
        line += "."
        if self.kept:
            line += (
                f" Source(s) {', '.join(self.kept)} still hold simulated rows (never written here); "
                "a `sync --full` of them would copy them again."
            )
        return line


def active_demo_sweeps(ws: Workspace) -> list[str]:
    """Sweeps on a ``simulate`` executor that are still active (they would write more)."""
    from fle_core.sweeps.executors import load_presets
    from fle_core.sweeps.store import open_store

    if not ws.control_path.exists() and not ws.section("control"):
        return []
    kinds = {name: p.kind for name, p in load_presets(ws).items()}
    with open_store(ws) as store:
        return [
            s.sweep_id
            for s in store.list_sweeps()
            if s.status == "active" and kinds.get(s.executor) == "simulate"
        ]


def remove_demo(ws: Workspace) -> DemoRemoval:
    """Delete the demo data (see the module docstring); ``QueueError`` while a demo sweep runs."""
    running = active_demo_sweeps(ws)
    if running:
        raise QueueError(
            f"Sweep {running[0]} still runs on the simulator and would write new demo data",
            hint="pause or cancel it on Sweeps (or `fle-core sweep cancel ID`), then remove the demo data",
        )
    removed = warehouse_demo.remove_simulated(ws)
    out = DemoRemoval(steps=removed.steps, trajectories=removed.trajectories)
    out.source_rows = _delete_local_rows(ws)
    out.kept = sorted(s for s in removed.steps if s != LOCAL_SOURCE)
    return out


def _delete_local_rows(ws: Workspace) -> int:
    """Simulator rows in the workspace's own ``programs`` table (``data.db``); 0 without one."""
    path = ws.local_source_path
    if ws.read_only or not path.exists():
        return 0
    con = sqlite3.connect(str(path), timeout=30)
    try:
        has = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'programs'").fetchone()
        if not has:
            return 0
        with con:
            cur = con.execute(
                "DELETE FROM programs WHERE json_valid(meta) AND json_extract(meta, '$.simulated') = 1"
            )
        return int(cur.rowcount)
    finally:
        con.close()
