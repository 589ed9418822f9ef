"""An Inspect ``sync --full``, built beside the live rows and swapped in at the end.

``inspect_sync`` writes a ``--full`` into the ``rebuild_*`` copies of the four tables an
Inspect log feeds (steps, trajectories, ``inspect_samples``, ``inspect_logs``), with the
same per-batch code as an incremental sync. Readers keep the live rows until
``swap_in`` replaces the source's rows in the transaction that finishes the run, so a
killed ``--full`` changes nothing (the next run drops what it left) and a rebuild never
shows a retry copy twice while it is half done.

``swap_in`` also decides what a rebuild changed, by content rather than by what was
written: a trajectory whose steps and counted sample row are the same as before keeps
the sync id that first brought it in (views pinned to that sync show it as they did);
one that differs or is new carries the rebuild's sync id. The data version moves only
when a trajectory, a sample row or a log's facts changed (file stamps aside), and the
trajectories a pinned view may no longer find as they were are counted in
``sync_notes`` (``rebuild_changed``) for the view's banner.

An incremental sync that re-reads or removes logs applies the same rule per batch
(``remember_removed`` before the delete, ``settle_removed`` after the write): an
identical rewrite (a running log that finished, a log touched but not changed) gets its
old sync id back; what was taken out or changed becomes a ``removed`` note. Old copies
of removed or changed rows are not kept: pinned views are told, not preserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from fle_core.warehouse import store as warehouse
from fle_core.warehouse._runs import CONTENT_COLUMNS, first_row


class Tables(NamedTuple):
    """Where one Inspect sync writes."""

    steps: str
    trajectories: str
    samples: str
    logs: str


LIVE = Tables("steps", "trajectories", "inspect_samples", "inspect_logs")
REBUILD = Tables(
    "rebuild_inspect_steps", "rebuild_inspect_trajectories", "rebuild_inspect_samples", "rebuild_inspect_logs"
)
#: ``inspect_logs`` columns that stamp the file rather than say what it holds
_STAMPS = "sync_id, size, mtime_ns, etag, content_id"
#: ``inspect_samples`` columns outside a trajectory's content: its sync id, and the log's
#: status (a running log that finishes leaves its finished samples as they were)
_SAMPLE_STAMPS = "sync_id, log_status"


def drop_rebuild(con) -> None:
    """Drop a rebuild a killed ``--full`` left behind (its live rows are untouched)."""
    with warehouse.transaction(con):
        for table in REBUILD:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def create_rebuild(con) -> None:
    """Empty ``rebuild_*`` tables with the live tables' columns."""
    with warehouse.transaction(con):
        for live, table in zip(LIVE, REBUILD, strict=True):
            con.execute(warehouse.table_ddl(live, table))


def swap_in(con, source: str, sync_id: int) -> bool:
    """Replace ``source``'s live rows by the rebuilt ones, inside the caller's transaction
    (the run's finish). Returns whether anything a reader sees changed (module doc)."""
    _trajectory_hashes(con, LIVE, source, "_old_t")
    _trajectory_hashes(con, REBUILD, source, "_new_t")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _keep AS SELECT n.version, n.instance, o.sid FROM _new_t n "
        "JOIN _old_t o ON o.version = n.version AND o.instance = n.instance AND o.h = n.h"
    )
    gone, earliest = first_row(
        con,
        "SELECT count(*), min(o.sid) FROM _old_t o ANTI JOIN _keep k "
        "ON k.version = o.version AND k.instance = o.instance",
    )
    new = first_row(
        con,
        "SELECT count(*) FROM _new_t n ANTI JOIN _keep k ON k.version = n.version AND k.instance = n.instance",
    )[0]
    changed = bool(gone or new)
    changed = _rows_differ(con, LIVE.samples, REBUILD.samples, source, "sync_id") or changed
    changed = _rows_differ(con, LIVE.logs, REBUILD.logs, source, _STAMPS) or changed
    _keep_sync_ids(con, source)
    for live, rebuilt in zip(LIVE, REBUILD, strict=True):
        con.execute(f"DELETE FROM {live} WHERE source = ?", [source])
        con.execute(f"INSERT INTO {live} BY NAME SELECT * FROM {rebuilt}")
        con.execute(f"DROP TABLE {rebuilt}")
    for temp in ("_old_t", "_new_t", "_keep"):
        con.execute(f"DROP TABLE {temp}")
    if gone:
        con.execute(
            "INSERT INTO sync_notes (sync_id, source, kind, detail, rows, earliest_sync) "
            "VALUES (?, ?, 'rebuild_changed', ?, ?, ?)",
            [
                sync_id,
                source,
                f"{gone:,} trajectory(ies) were removed from the logs or changed since they were first synced",
                gone,
                earliest,
            ],
        )
    return changed


def _trajectory_hashes(con, t: Tables, source: str, name: str, where: str = "", params=()) -> None:
    """``name``: per trajectory, its first sync id, its steps and a hash of its steps and
    counted sample row (``where``: more conditions on both, with ``params`` after each source)."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT st.version, st.instance, st.sid, st.n, hash(st.h, sa.h) AS h FROM
          (SELECT version, instance, min(sync_id) AS sid, count(*) AS n,
                  hash(list_sort(list(hash({CONTENT_COLUMNS})))) AS h
           FROM {t.steps} WHERE source = ?{where} GROUP BY version, instance) st
        LEFT JOIN
          (SELECT x.version, x.instance, hash(list_sort(list(hash(x)))) AS h
           FROM (SELECT * EXCLUDE ({_SAMPLE_STAMPS}) FROM {t.samples}
                 WHERE source = ? AND superseded_by IS NULL{where}) x
           GROUP BY x.version, x.instance) sa
        ON sa.version = st.version AND sa.instance = st.instance""",
        [source, *params, source, *params],
    )


def _rows_differ(con, live: str, rebuilt: str, source: str, ignore: str) -> bool:
    """Whether the source's rows of ``live`` and ``rebuilt`` differ beyond the ``ignore`` columns."""
    one_way = (
        "SELECT count(*) FROM (SELECT * EXCLUDE ({ig}) FROM {a} WHERE source = ? "
        "EXCEPT ALL SELECT * EXCLUDE ({ig}) FROM {b} WHERE source = ?)"
    )
    for a, b in ((live, rebuilt), (rebuilt, live)):
        if first_row(con, one_way.format(ig=ignore, a=a, b=b), [source, source])[0]:
            return True
    return False


def _keep_sync_ids(con, source: str) -> None:
    """Unchanged trajectories, sample rows and logs keep the sync id that first brought them in."""
    con.execute(
        f"UPDATE {REBUILD.steps} r SET sync_id = k.sid FROM _keep k "
        "WHERE r.version = k.version AND r.instance = k.instance"
    )
    con.execute(
        f"UPDATE {REBUILD.trajectories} r SET last_sync_id = k.sid FROM _keep k "
        "WHERE r.version = k.version AND r.instance = k.instance"
    )
    for live, rebuilt, key, ignore in (
        (LIVE.samples, REBUILD.samples, ("path", "sample_id", "epoch"), "sync_id"),
        (LIVE.logs, REBUILD.logs, ("path",), _STAMPS),
    ):
        cols = ", ".join(key)
        hashed = "SELECT {cols}, hash(x) AS h FROM (SELECT * EXCLUDE ({ig}) FROM {t} WHERE source = ?) x"
        con.execute(
            f"""UPDATE {rebuilt} r SET sync_id = m.sid FROM (
              SELECT a.*, o.sync_id AS sid
              FROM ({hashed.format(cols=cols, ig=ignore, t=live)}) a
              JOIN ({hashed.format(cols=cols, ig=ignore, t=rebuilt)}) b USING ({cols})
              JOIN {live} o USING ({cols})
              WHERE a.h = b.h AND o.source = ?) m
            WHERE {" AND ".join(f"r.{c} = m.{c}" for c in key)}""",
            [source, source, source],
        )


# ------------------------------------------------------------ incremental re-reads
@dataclass
class Removed:
    """What a batch took out of rows earlier syncs brought in."""

    steps: int
    trajectories: int
    earliest: int | None  # the earliest sync id among them (views pinned at or after it change)
    kept_steps: int  # steps rewritten identically, which kept their sync id


def start_removed(con) -> None:
    """An empty ``_removed`` for a batch (inside its transaction)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _removed (version BIGINT, instance BIGINT, sid BIGINT, n BIGINT, h UBIGINT)"
    )


def remember_removed(con, t: Tables, source: str, sync_id: int) -> None:
    """Before the trajectories in ``_gone`` are deleted: those an earlier sync brought in,
    with their content hash, into ``_removed``."""
    keys = " AND (version, instance) IN (SELECT (version, instance) FROM _gone)"
    _trajectory_hashes(con, t, source, "_gone_h", keys)
    con.execute(
        "INSERT INTO _removed SELECT version, instance, sid, n, h FROM _gone_h WHERE sid < ?", [sync_id]
    )
    con.execute("DROP TABLE _gone_h")


def settle_removed(con, t: Tables, source: str, sync_id: int) -> Removed:
    """After a batch wrote its rows: a trajectory rewritten exactly as it was (a running log
    that finished, a log touched but not changed) gets its old sync id back, so views pinned
    to that sync still show it; what is left in ``_removed`` was removed or changed."""
    keys = " AND (version, instance) IN (SELECT (version, instance) FROM _removed) AND sync_id = ?"
    _trajectory_hashes(con, t, source, "_now_h", keys, [sync_id])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _back AS SELECT r.version, r.instance, min(r.sid) AS sid, any_value(r.n) AS n "
        "FROM _removed r JOIN _now_h h ON h.version = r.version AND h.instance = r.instance AND h.h = r.h "
        "GROUP BY r.version, r.instance"
    )
    for table, col in ((t.steps, "sync_id"), (t.samples, "sync_id"), (t.trajectories, "last_sync_id")):
        superseded = " AND x.superseded_by IS NULL" if table == t.samples else ""
        con.execute(
            f"UPDATE {table} x SET {col} = b.sid FROM _back b WHERE x.source = ? AND x.version = b.version "
            f"AND x.instance = b.instance AND x.{col} = ?{superseded}",
            [source, sync_id],
        )
    steps, trajs, earliest = first_row(
        con,
        "SELECT coalesce(sum(n), 0), count(*), min(sid) FROM _removed r "
        "ANTI JOIN _back b ON b.version = r.version AND b.instance = r.instance",
    )
    kept = first_row(con, "SELECT coalesce(sum(n), 0) FROM _back")[0]
    for temp in ("_now_h", "_back", "_removed"):
        con.execute(f"DROP TABLE {temp}")
    return Removed(int(steps), int(trajs), None if earliest is None else int(earliest), int(kept))


def removed_note(
    trajectories: int, steps: int, earliest: int | None, logs_removed: int, logs_read: int
) -> list[tuple[str, str, int, int | None]]:
    """The ``removed`` sync note of a run that took out rows earlier syncs brought in (none
    when it took out nothing): views pinned at or after ``earliest`` are told."""
    if not trajectories:
        return []
    gone = f"{logs_removed:,} log{'' if logs_removed == 1 else 's'} removed, {logs_read:,} read"
    detail = f"{gone}: {trajectories:,} trajectories ({steps:,} steps) synced before are gone or changed"
    return [("removed", detail, trajectories, earliest)]
