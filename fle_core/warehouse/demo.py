"""Take simulated (demo) rows out of the warehouse, as one recorded change of its data.

The simulator marks every row it writes (``steps.simulated``). Once a team has real
data, the demo sweep's rows only get in the way, so ``remove_simulated`` deletes
them from ``steps`` and ``trajectories`` in one transaction, under the writer lock,
and records the change like a sync would: a new ``sync_runs`` row per affected
source (so the data version moves and every cache keyed on it misses), with a
``sync_notes`` note that says what went, counted as rows a shared view pinned
before it was computed from (``rebuild_changed``), so such a view says its
numbers may differ. What the sources hold is not touched here (see
``fle_core.sweeps.demo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fle_core import warehouse
from fle_core.warehouse import store
from fle_core.workspace import Workspace


@dataclass
class Removed:
    """What ``remove_simulated`` deleted: steps and trajectories per source, and its sync id."""

    steps: dict[str, int] = field(default_factory=dict)
    trajectories: dict[str, int] = field(default_factory=dict)
    sync_id: int | None = None  # the last sync_runs row it recorded; None when nothing went

    @property
    def total_steps(self) -> int:
        return sum(self.steps.values())

    @property
    def total_trajectories(self) -> int:
        return sum(self.trajectories.values())


def simulated_counts(ws: Workspace) -> dict[str, tuple[int, int]]:
    """Source → (simulated steps, simulated trajectories) in the warehouse (empty: none)."""
    if not ws.warehouse_path.exists():
        return {}
    with warehouse.reader(ws) as con:
        rows = con.execute(
            "SELECT s.source, count(*), (SELECT count(*) FROM trajectories t "
            "WHERE t.source = s.source AND t.simulated) FROM steps s WHERE s.simulated "
            "GROUP BY s.source ORDER BY s.source"
        ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}


def remove_simulated(ws: Workspace) -> Removed:
    """Delete every simulated step and trajectory; one ``sync_runs`` row per source touched."""
    out = Removed()
    if not ws.warehouse_path.exists():
        return out
    with warehouse.writer(ws) as con, store.transaction(con):
        found = con.execute(
            "SELECT source, count(*), min(sync_id) FROM steps WHERE simulated GROUP BY source ORDER BY source"
        ).fetchall()
        for source, n_steps, earliest in found:
            n_traj = con.execute(
                "SELECT count(*) FROM trajectories WHERE source = ? AND simulated", [source]
            ).fetchall()[0][0]
            con.execute("DELETE FROM steps WHERE source = ? AND simulated", [source])
            con.execute("DELETE FROM trajectories WHERE source = ? AND simulated", [source])
            sync_id = con.execute("SELECT coalesce(max(sync_id), 0) + 1 FROM sync_runs").fetchall()[0][0]
            con.execute(
                "INSERT INTO sync_runs (sync_id, source, started_at, finished_at, status, rows_added, "
                "full_rebuild) VALUES (?, ?, now()::TIMESTAMP, now()::TIMESTAMP, 'ok', 0, false)",
                [sync_id, source],
            )
            detail = (
                f"Remove demo data: deleted {n_steps:,} simulated step(s) "
                f"({n_traj:,} trajectories) from the warehouse"
            )
            con.execute(
                "INSERT INTO sync_notes (sync_id, source, kind, detail, rows, earliest_sync) "
                "VALUES (?, ?, 'rebuild_changed', ?, ?, ?)",
                [sync_id, source, detail, int(n_steps), int(earliest)],
            )
            warehouse.set_data_version(con, int(sync_id), True)
            out.steps[str(source)] = int(n_steps)
            out.trajectories[str(source)] = int(n_traj)
            out.sync_id = int(sync_id)
    return out
