"""Sync of a folder of Inspect logs (local or in object storage) into the warehouse.

``warehouse.sync`` runs the skeleton every source shares (open a run, write, finish
the run with its counts); this module decides what to read and writes the rows:

* **Incremental.** ``plan`` lists the folder once and compares each log's size and
  mtime (in object storage: size and ETag) with ``inspect_logs``; only new or changed
  logs are read, and a plan with nothing to do opens no run at all, so the data
  version stays put. An unchanged re-sync of a bucket is one listing, no reads.
* **Atomic per log.** ``apply`` writes logs in batches; each batch is one
  transaction that deletes the rows a log had and inserts what it has now (steps,
  trajectories, ``inspect_samples``, ``inspect_logs``). A kill between batches
  leaves the unwritten logs with their old size/mtime, so the next sync redoes them.
* **One trajectory per (log, sample, epoch)**, keyed ``(source, version, instance)``:
  ``instance`` is the epoch, ``version`` the sweep attempt's version for a job of
  the ``fle`` preset (``fle-job.json`` beside the log), else a stable hash of
  (path, sample id) in ``[2**50, 2**51)`` so it never meets a sweep's versions.
* **Eval-set retries count once.** Samples share a ``dedup_key``
  (``task_id|sample|epoch``); the newest log that holds a finished copy wins and the
  others are kept in ``inspect_samples`` with ``superseded_by`` but not in steps.
* **Unreadable logs** are recorded (status ``unreadable`` + the reason) and
  reported; the other logs still sync.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fle_core.sources import inspect_logs as il
from fle_core.sources import log_shards
from fle_core.sources.log_folder import InspectLogSource
from fle_core.sources.log_store import LogFile
from fle_core.warehouse import store as warehouse
from fle_core.warehouse._runs import ATTEMPT_COLUMNS, Run
from fle_core.warehouse._writing import Context, Session
from fle_core.warehouse.inspect_rebuild import (
    LIVE,
    REBUILD,
    Tables,
    create_rebuild,
    drop_rebuild,
    remember_removed,
    removed_note,
    settle_removed,
    start_removed,
    swap_in,
)
from fle_core.warehouse.inspect_rows import FACTS_VERSION, LogRows, read_rows
from fle_core.workspace import Workspace

log = logging.getLogger(__name__)

_BATCH_STEPS = 100_000
_STEP_COLUMNS = (
    "source",
    "id",
    "version",
    "instance",
    "depth",
    "value",
    "model",
    "task",
    "num_agents",
    "sweep_id",
    "error_occurred",
    "production_score",
    "simulated",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "ticks",
    "created_at",
    "parse_flags",
    "sync_id",
)


@dataclass
class Plan:
    """What a sync of one folder of logs will do (read-only to build)."""

    source: InspectLogSource
    full: bool
    files: dict[str, LogFile]
    changed: list[LogFile]
    removed: list[str]
    #: folders holding an fle-job.json -> the log that owns the job's version (its newest)
    job_dirs: dict[str, str] = field(default_factory=dict)
    attempts_same: bool = False  # the stored sweep_attempts already equal the provider's
    data_version: int = 0  # the warehouse's data version when planned
    #: shard path -> the finished merged log that covers it (``log_shards``: not read)
    hidden: dict[str, str] = field(default_factory=dict)
    #: what the listing left out, and why (a dangling symlink, a name that is not UTF-8)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not (self.full or self.changed or self.removed)


@dataclass
class Outcome:
    """What ``apply`` did: rows inserted / deleted and the logs it could not read."""

    rows_added: int = 0
    rows_deleted: int = 0  # steps synced before this run that it took out (removed or replaced)
    trajectories_removed: int = 0  # trajectories synced before this run that it took out
    earliest_removed: int | None = None  # the earliest sync id among them (pinned views)
    rows_changed: int = 0  # of rows_added: those with new content (not an unchanged log re-read)
    logs_read: int = 0
    problems: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)  # samples left out: "path: sample …: reason"


@dataclass
class Work:
    """One sync of a folder of logs, planned."""

    ctx: Context
    plan: Plan
    rebuild = False  # logs are replaced per batch, never through rebuild_* tables

    def unchanged(self) -> bool:
        """No log changed and the sweep attempts are as stored: no run is opened at all."""
        p = self.plan
        return p.unchanged and p.attempts_same and self.ctx.ws.warehouse_path.exists()

    def copy(self, session: Session, run: Run) -> None:
        batch = min(_BATCH_STEPS, self.ctx.options.batch_rows)  # [sync] batch_rows caps it too
        done = apply(session, self.ctx.ws, self.plan, run.sync_id, self.ctx.progress, batch)
        run.rows_added, run.rows_removed, run.problems = done.rows_added, done.rows_deleted, done.problems
        run.logs_read, run.quarantine = done.logs_read, done.quarantined
        run.content_changed = bool(done.rows_changed or done.rows_deleted)
        run.logs_removed = len(self.plan.removed)
        run.notes += removed_note(
            done.trajectories_removed,
            done.rows_deleted,
            done.earliest_removed,
            run.logs_removed,
            done.logs_read,
        )
        if self.plan.full:  # the rebuilt rows replace the live ones when the run finishes
            name, sync_id = self.plan.source.name, run.sync_id
            run.finalize = lambda con: swap_in(con, name, sync_id)


@contextlib.contextmanager
def reading(ctx: Context, source: InspectLogSource, attempts=None) -> Iterator[Work]:
    """List the folder and plan the run (``SourceUnavailable`` when it cannot be listed)."""
    yield Work(ctx, plan(ctx.ws, source, ctx.full, attempts, ATTEMPT_COLUMNS))


def evidence(con, name: str) -> dict[str, int]:
    """Logs stored for source ``name`` (path → size), for ``InspectLogSource.same_data``."""
    rows = con.execute(
        "SELECT path, size FROM inspect_logs WHERE source = ? AND size >= 0 ORDER BY path LIMIT 200", [name]
    ).fetchall()
    return {str(p): int(n) for p, n in rows}


def plan(ws: Workspace, source: InspectLogSource, full: bool, attempts=None, attempt_columns=()) -> Plan:
    """List the folder and compare its logs with ``inspect_logs`` (by size and mtime, or
    size and ETag), in one short read: also whether ``attempts`` (a frame or None) equals
    the stored ``sweep_attempts``, and the current data version."""
    listing = source.listing()
    logs = source.identify(listing.logs)
    files = {f.rel: f for f in logs}
    state: dict[str, tuple] = {}
    statuses: dict[str, str] = {}
    holders: set[str] = set()
    same, version = attempts is None, 0
    if ws.warehouse_path.exists():
        with warehouse.reader(ws) as con:
            if _has_table(con, "inspect_logs"):
                rows = con.execute(
                    "SELECT path, size, mtime_ns, etag, sync_id, facts_version, merged_into, status, "
                    "content_id, job_version FROM inspect_logs WHERE source = ?",
                    [source.name],
                ).fetchall()
                state = {
                    r[0]: (LogFile(r[0], int(r[1]), int(r[2]), r[3], r[8]).stamp, r[5], r[6]) for r in rows
                }
                statuses = {r[0]: str(r[7]) for r in rows}
                holders = {r[0] for r in rows if r[9] is not None}
            same = attempts_equal(con, attempts, attempt_columns)
        version = warehouse.data_version(ws)
    hidden = _hidden_shards(source, logs, state, statuses)
    now = {rel: (f.stamp, FACTS_VERSION, hidden.get(rel)) for rel, f in files.items()}
    owners = job_owners(listing.job_dirs, logs)
    # a log that held its job's version but no longer owns it (a newer log in the folder)
    # is read again, so the two never share trajectory keys
    moved = {rel for rel in holders if owners.get(_folder(rel), rel) != rel}
    changed = [f for rel, f in files.items() if full or state.get(rel) != now[rel] or rel in moved]
    removed = sorted(set(state) - set(files))
    return Plan(
        source,
        full,
        files,
        changed,
        removed,
        owners,
        same,
        version,
        hidden,
        listing.skipped,
    )


def _folder(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def job_owners(job_dirs: set[str], logs: list[LogFile]) -> dict[str, str]:
    """Each ``fle`` job folder -> its newest log (as ``verify_job`` judges the job): only that
    log's trajectories take the job's version; another log there (another task, a rerun)
    keeps keys of its own, so two logs never mix steps in one trajectory."""
    owners: dict[str, LogFile] = {}
    for f in logs:
        folder = _folder(f.rel)
        if folder in job_dirs and (
            folder not in owners or (f.mtime_ns, f.rel) > (owners[folder].mtime_ns, owners[folder].rel)
        ):
            owners[folder] = f
    return {d: owners[d].rel if d in owners else "" for d in job_dirs}


def _hidden_shards(
    source: InspectLogSource, logs: list[LogFile], state: dict, statuses: dict
) -> dict[str, str]:
    """Shards a finished merged log covers (``log_shards``): the merged logs' statuses come
    from the warehouse when they are unchanged, else from their headers (one small read)."""
    check = log_shards.merged_logs_to_check(logs)
    if not check:
        return {}
    by_rel = {f.rel: f for f in logs}
    finished = set()
    for rel in check:
        f = by_rel[rel]
        stored = state.get(rel)
        if stored is not None and stored[0] == f.stamp and rel in statuses:
            status = statuses[rel]
        else:
            try:
                status = il.log_status(source.log_ref(rel, f.size))
            except il.LogReadError:
                status = "unreadable"
        if status == "success":
            finished.add(rel)
    return log_shards.hidden_shards(logs, finished)


def _has_table(con, name: str) -> bool:
    return bool(
        con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[
            0
        ]
    )


# ---------------------------------------------------------------- writing
def apply(
    session,
    ws: Workspace,
    p: Plan,
    sync_id: int,
    progress: Callable[[int, int | None], None] | None = None,
    batch_steps: int = _BATCH_STEPS,
) -> Outcome:
    """Write the plan: batches of logs, each batch one transaction (see module doc)."""
    out = Outcome(quarantined=[f"{rel}: not listed: {why}" for rel, why in p.skipped])
    patterns = il.compile_patterns(_extra_patterns(ws))
    con = session.con()
    name = p.source.name
    drop_rebuild(con)  # what a killed --full left behind
    # --full builds every log into the rebuild_* tables beside the live ones; the run's
    # finish swaps them in (``inspect_rebuild.swap_in``): a killed rebuild changes nothing
    t = REBUILD if p.full else LIVE
    if p.full:
        create_rebuild(con)
    next_id = int(
        con.execute(f"SELECT coalesce(max(id), 0) FROM {t.steps} WHERE source = ?", [name]).fetchone()[0]
    )
    todo = list(p.changed)
    rereads = [] if p.full else _promotions(con, p)
    if not p.full and (p.removed or rereads):
        _drop_logs(con, name, p.removed, rereads, sync_id, out)
        todo += [p.files[r] for r in rereads if r in p.files and p.files[r] not in todo]
    total = len(todo)
    if progress:
        progress(0, total)
    batch: list[LogRows] = []
    steps_in_batch = 0
    session.close()  # logs are parsed with the writer released: readers get in meanwhile
    for i, f in enumerate(p.source.read_ahead(todo)):
        rows = read_rows(ws, p.source, f, p.job_dirs, p.hidden, patterns)
        if rows.log_row["status"] == "unreadable":
            out.problems.append(rows.log_row["error"])
            out.quarantined.append(f"{f.rel}: log not read: {rows.log_row['error']}")
        out.quarantined += rows.quarantined
        out.logs_read += 1
        batch.append(rows)
        steps_in_batch += sum(len(fa.values) for fa, _ in rows.samples)
        if steps_in_batch >= batch_steps or i == total - 1:
            pending = {t.rel for t in todo[i + 1 :]}
            next_id = _write_batch(session.con(), t, name, batch, sync_id, next_id, out, pending)
            session.close()  # the writer is released while the next logs are parsed
            batch, steps_in_batch = [], 0
            if progress:
                progress(i + 1, total)
    return out


def _extra_patterns(ws: Workspace) -> list[str]:
    extra = ws.section("inspect").get("infrastructure_patterns", [])
    return [str(x) for x in extra] if isinstance(extra, list) else []


def _promotions(con, p: Plan) -> list[str]:
    """Unchanged logs holding a superseded sample whose winner is being removed or re-read:
    they are re-read so that sample can count again."""
    gone = set(p.removed) | {f.rel for f in p.changed}
    if not gone:
        return []
    rows = con.execute(
        "SELECT DISTINCT path FROM inspect_samples WHERE source = ? AND superseded_by IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [p.source.name, sorted(gone)],
    ).fetchall()
    return sorted({r[0] for r in rows} - gone)


def _drop_logs(con, source: str, removed: list[str], rereads: list[str], sync_id: int, out: Outcome) -> None:
    """Delete removed logs' rows and mark logs to re-read (size -1), in one transaction."""
    with warehouse.transaction(con):
        start_removed(con)
        _delete_paths(con, LIVE, source, removed, sync_id, out)
        con.execute(
            "DELETE FROM inspect_logs WHERE source = ? AND path IN (SELECT unnest(?::VARCHAR[]))",
            [source, removed],
        )
        con.execute(
            "UPDATE inspect_logs SET size = -1 WHERE source = ? AND path IN (SELECT unnest(?::VARCHAR[]))",
            [source, rereads],
        )
        _settle(con, LIVE, source, sync_id, out)


def _settle(con, t: Tables, source: str, sync_id: int, out: Outcome) -> None:
    """Count what a batch took out of earlier syncs' rows, after identical rewrites got
    their sync ids back (``inspect_rebuild.settle_removed``)."""
    removed = settle_removed(con, t, source, sync_id)
    out.rows_deleted += removed.steps
    out.trajectories_removed += removed.trajectories
    out.rows_changed -= removed.kept_steps
    if removed.earliest is not None:
        out.earliest_removed = min(removed.earliest, out.earliest_removed or removed.earliest)


def _delete_paths(con, t: Tables, source: str, paths: list[str], sync_id: int, out: Outcome) -> None:
    """Delete the steps, trajectories and sample rows that came from these logs."""
    if not paths:
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _gone AS SELECT DISTINCT version, instance FROM {t.samples} "
        "WHERE source = ? AND superseded_by IS NULL AND path IN (SELECT unnest(?::VARCHAR[]))",
        [source, paths],
    )
    _delete_gone(con, t, source, sync_id, out)
    con.execute(
        f"DELETE FROM {t.samples} WHERE source = ? AND path IN (SELECT unnest(?::VARCHAR[]))",
        [source, paths],
    )


def _winners(
    con, t: Tables, source: str, batch: list[LogRows], pending: set[str]
) -> tuple[dict[str, str], list[str]]:
    """For each dedup key in the batch: the winning log path, and the paths (outside the
    batch) whose copy of a key now loses and must leave the steps. Rows of logs still to
    be rewritten in this run (``pending``) are stale and take no part."""
    cand: dict[str, list[tuple[tuple, str]]] = {}
    for lr in batch:
        for _facts, row in lr.samples:
            cand.setdefault(row["dedup_key"], []).append((row["_order"], row["path"]))
    keys = sorted(cand)
    in_batch = {lr.file.rel for lr in batch}
    existing = con.execute(
        "SELECT s.dedup_key, s.path, coalesce(l.created, ''), coalesce(l.mtime_ns, 0), s.superseded_by, "
        "s.invalidated_by IS NULL AND s.invalidated_at IS NULL "
        f"FROM {t.samples} s JOIN {t.logs} l ON l.source = s.source AND l.path = s.path "
        "WHERE s.source = ? AND s.dedup_key IN (SELECT unnest(?::VARCHAR[]))",
        [source, keys],
    ).fetchall()
    holders: dict[str, list[tuple[str, bool]]] = {}
    for key, path, created, mtime, sup, valid in existing:
        if path in in_batch or path in pending:
            continue
        cand[key].append(((bool(valid), created, int(mtime), path), path))
        holders.setdefault(key, []).append((path, sup is None))
    winners = {k: max(v)[1] for k, v in cand.items()}
    demote = sorted(
        {f"{k}\0{path}" for k, hs in holders.items() for path, live in hs if live and path != winners[k]}
    )
    return winners, demote


def _write_batch(
    con,
    t: Tables,
    source: str,
    batch: list[LogRows],
    sync_id: int,
    next_id: int,
    out: Outcome,
    pending: set[str],
) -> int:
    """One transaction: delete the batch's logs' rows and insert what they hold now (into
    the live tables, or the rebuild_* ones on ``--full``, whose swap says what changed)."""
    import polars as pl

    paths = [lr.file.rel for lr in batch]
    with warehouse.transaction(con):
        start_removed(con)
        winners, demote = _winners(con, t, source, batch, pending)
        _delete_paths(con, t, source, paths, sync_id, out)
        con.execute(
            f"DELETE FROM {t.logs} WHERE source = ? AND path IN (SELECT unnest(?::VARCHAR[]))",
            [source, paths],
        )
        if demote:
            _demote(con, t, source, demote, winners, sync_id, out)
        steps: dict[str, list] = {c: [] for c in _STEP_COLUMNS}
        samples: list[dict[str, Any]] = []
        added = 0
        for lr in batch:
            for facts, row in lr.samples:
                winner = winners[row["dedup_key"]]
                row = {k: v for k, v in row.items() if not k.startswith("_")} | {
                    "superseded_by": None if winner == lr.file.rel else winner,
                    "sync_id": sync_id,
                }
                samples.append(row)
                if row["superseded_by"] is None:
                    first = next_id
                    next_id = _append_steps(steps, facts, row, lr.log_row.get("sweep_id"), sync_id, next_id)
                    added += next_id - first
        logs = [{**lr.log_row, "sync_id": sync_id} for lr in batch]
        _insert(con, t.logs, logs, pl)
        _insert(con, t.samples, samples, pl)
        if steps["id"]:
            frame = pl.DataFrame(steps, schema=_steps_schema(pl), strict=False)
            con.register("_isteps", frame)
            con.execute(f"INSERT INTO {t.steps} BY NAME SELECT * FROM _isteps")
            con.unregister("_isteps")
            con.execute(_traj_sql(t), [source, steps["id"][0], steps["id"][-1]])
            out.rows_added += len(steps["id"])
            out.rows_changed += added
        _settle(con, t, source, sync_id, out)
    return next_id


def _delete_gone(con, t: Tables, source: str, sync_id: int, out: Outcome) -> None:
    """Delete the steps and trajectories of the (version, instance) pairs in ``_gone``.
    Those an earlier sync brought in are remembered with their content (``_removed``), so
    the batch can give an identical rewrite its old sync id back and count the rest as
    removed (``settle_removed``); rows this run wrote and took out again are no removal."""
    remember_removed(con, t, source, sync_id)
    con.execute(
        f"DELETE FROM {t.steps} s USING _gone g WHERE s.source = ? AND s.version = g.version "
        "AND s.instance = g.instance",
        [source],
    )
    con.execute(
        f"DELETE FROM {t.trajectories} t USING _gone g WHERE t.source = ? AND t.version = g.version "
        "AND t.instance = g.instance",
        [source],
    )


def _demote(
    con, t: Tables, source: str, demote: list[str], winners: dict[str, str], sync_id: int, out: Outcome
) -> None:
    """Take losing copies (key, path) out of steps/trajectories and mark them superseded."""
    keys = [d.split("\0", 1) for d in demote]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _dem AS SELECT unnest(?::VARCHAR[]) AS k, unnest(?::VARCHAR[]) AS p, "
        "unnest(?::VARCHAR[]) AS w",
        [[k for k, _ in keys], [p for _, p in keys], [winners[k] for k, _ in keys]],
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _gone AS SELECT DISTINCT s.version, s.instance FROM {t.samples} s "
        "JOIN _dem d ON s.dedup_key = d.k AND s.path = d.p WHERE s.source = ?",
        [source],
    )
    _delete_gone(con, t, source, sync_id, out)
    con.execute(
        f"UPDATE {t.samples} s SET superseded_by = d.w FROM _dem d "
        "WHERE s.source = ? AND s.dedup_key = d.k AND s.path = d.p",
        [source],
    )


def _append_steps(
    steps: dict[str, list], facts: il.SampleFacts, row: dict, sweep_id, sync_id: int, next_id: int
) -> int:
    """One trajectory's step rows. Tokens (per sample in Inspect) sit on the last step;
    the first step is stamped with the sample's start, the last with its end."""
    n = len(facts.values)
    end = facts.completed_at
    if end is None and facts.started_at is not None and facts.total_time is not None:
        from datetime import timedelta

        end = facts.started_at + timedelta(seconds=facts.total_time)
    prompt = None
    if facts.input_tokens is not None:
        prompt = facts.input_tokens + (facts.cache_read_tokens or 0) + (facts.cache_write_tokens or 0)
    if n == 0:
        return next_id
    rest = [None] * (n - 1)

    def put(col: str, value) -> None:
        steps[col].extend([value] * n)

    def last(col: str, value, before=None) -> None:
        steps[col].extend([before] * (n - 1) + [value])

    steps["id"].extend(range(next_id + 1, next_id + n + 1))
    steps["depth"].extend(facts.depths)
    steps["value"].extend(facts.values)
    steps["production_score"].extend(facts.values)
    steps["ticks"].extend(facts.ticks)
    put("source", row["source"])
    put("version", row["version"])
    put("instance", row["instance"])
    put("model", facts.model or None)
    put("task", facts.task or None)
    put("num_agents", 1)
    put("sweep_id", sweep_id)
    put("simulated", False)
    put("parse_flags", None if facts.task else "unparsed_task")
    put("sync_id", sync_id)
    last("error_occurred", facts.has_error, False)
    last("prompt_tokens", prompt)
    last("completion_tokens", facts.output_tokens)
    last("total_tokens", facts.total_tokens)
    steps["created_at"].extend([facts.started_at, *rest[1:], end] if n > 1 else [end])
    return next_id + n


def _steps_schema(pl) -> dict:
    return {
        "source": pl.String,
        "id": pl.Int64,
        "version": pl.Int64,
        "instance": pl.Int64,
        "depth": pl.Float64,
        "value": pl.Float64,
        "model": pl.String,
        "task": pl.String,
        "num_agents": pl.Int32,
        "sweep_id": pl.String,
        "error_occurred": pl.Boolean,
        "production_score": pl.Float64,
        "simulated": pl.Boolean,
        "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64,
        "total_tokens": pl.Int64,
        "ticks": pl.Int64,
        "created_at": pl.Datetime("us"),
        "parse_flags": pl.String,
        "sync_id": pl.Int64,
    }


def _insert(con, table: str, rows: list[dict[str, Any]], pl) -> None:
    if not rows:
        return
    cols = [r[1] for r in con.execute(f"PRAGMA table_info('{table}')").fetchall()]
    frame = pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], infer_schema_length=None)
    frame = frame.select([c for c in cols if c in frame.columns and frame[c].dtype != pl.Null] or cols[:1])
    con.register("_irows", frame)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _irows")
    con.unregister("_irows")


def _traj_sql(t: Tables) -> str:
    """The trajectories of the step ids a batch just wrote (``?``: source, first id, last id)."""
    return (
        f"INSERT INTO {t.trajectories} BY NAME SELECT "
        + warehouse.TRAJECTORY_AGGREGATES
        + f"""
FROM {t.steps} s WHERE s.source = ? AND s.id BETWEEN ? AND ?
GROUP BY s.source, s.version, s.instance
"""
    )


def attempts_equal(con, frame, columns) -> bool:
    """True when the warehouse's ``sweep_attempts`` already equals ``frame`` (no change)."""
    if frame is None:
        return True
    rows = con.execute(f"SELECT {', '.join(columns)} FROM sweep_attempts ORDER BY source, version").fetchall()
    theirs = sorted(tuple(r) for r in frame.select(list(columns)).iter_rows())
    return sorted(tuple(r) for r in rows) == theirs
