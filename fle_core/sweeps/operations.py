"""Sweep operations used by the CLI, the UI and scripts.

Functions take a ``Workspace`` and talk to its control store (``open_store``):
the embedded SQLite file ``control.db`` or, when config.toml has a
``[control]`` table, the shared Postgres store::

    [control]
    url = "postgresql://sweeps@db.internal/fle_control"   # no password here
    password_env = "FLE_CONTROL_PASSWORD"                  # or url_env = "..."

Launching only enqueues; a runner (``fle-core runner``, or ``ensure_runner``)
does the work, or Slurm pilots (``submit_pilots``, ``fle-core runner --slurm N``). ``resume`` is idempotent: it adds cells missing from the
stored config and requeues failed/cancelled cells with a fresh retry budget,
and never touches succeeded or early-stopped cells.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from fle_core import sources
from fle_core.errors import ConfigError, QueueError
from fle_core.sweeps import slurm, squeue_cache
from fle_core.sweeps.config import SweepConfig, task_registry
from fle_core.sweeps.executors import get_preset, load_presets
from fle_core.sweeps.processes import spawn_detached
from fle_core.sweeps.store import (
    MAX_LOST,
    AttemptRecord,
    CellRecord,
    ControlStore,
    PilotSubmission,
    SweepRecord,
    open_store,
)
from fle_core.workspace import Workspace

if TYPE_CHECKING:
    from polars._typing import PolarsDataType


STATES = ("pending", "running", "succeeded", "failed", "early_stopped", "cancelled")


_HOLDS = {"programs": "a programs table (SQLite or Postgres)", "inspect_logs": "Inspect logs"}


def _store(ws: Workspace, store: ControlStore | None) -> ControlStore:
    return store if store is not None else open_store(ws)


# ---- operations ------------------------------------------------------------------------
def launch(
    ws: Workspace, config: SweepConfig, *, store: ControlStore | None = None, sweep_id: str | None = None
) -> str:
    """Validate against this workspace (tasks, executor, source) and enqueue every cell."""
    config.validate_tasks(ws.task_registry())
    preset = get_preset(ws, config.executor)
    source = sources.get(ws, config.source)
    writes = preset.writes()
    if writes is not None and writes != source.holds:
        raise ConfigError(
            f"Executor {preset.name!r} writes {_HOLDS[writes]}; source {source.name!r} is {_HOLDS[source.holds]}",
            hint='use the fle executor with a source of Inspect logs (e.g. "local_inspect", the workspace\'s '
            'inspect_logs/), or the simulate / fle-legacy executor with a programs database (e.g. "local")',
        )
    now = time.time()
    sweep_id = sweep_id or new_sweep_id(config.name)
    record = SweepRecord(
        sweep_id=sweep_id,
        name=config.name,
        status="active",
        config_json=config.model_dump_json(),
        executor=config.executor,
        source=config.source,
        max_concurrent=config.max_concurrent,
        max_retries=config.max_retries,
        retry_backoff_s=config.retry_backoff_s,
        retry_backoff_max_s=config.retry_backoff_max_s,
        early_stop=config.early_stop_on_success,
        wandb=config.wandb,
        created_at=now,
        updated_at=now,
    )
    _store(ws, store).create_sweep(record, config.cells())
    return sweep_id


def new_sweep_id(name: str) -> str:
    """``<name>_<YYYYmmdd_HHMMSS>_<8 hex>`` like the old framework's ids."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "sweep"
    return f"{slug}_{datetime.now(UTC):%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


def stored_config(ws: Workspace, sweep_id: str, store: ControlStore | None = None) -> SweepConfig:
    """The config a sweep was launched with (validated against this workspace's tasks)."""
    sweep = _store(ws, store).get_sweep(sweep_id)
    with task_registry(ws.task_registry()):
        return SweepConfig.from_dict(json.loads(sweep.config_json))


def pause(ws: Workspace, sweep_id: str, store: ControlStore | None = None) -> None:
    """No new jobs start; running jobs finish."""
    st = _store(ws, store)
    sweep = st.get_sweep(sweep_id)
    if sweep.status != "active":
        raise QueueError(f"Sweep {sweep_id} is {sweep.status}; only an active sweep can be paused")
    st.set_sweep_status(sweep_id, "paused", time.time())


def resume(
    ws: Workspace, sweep_id: str, store: ControlStore | None = None, config: SweepConfig | None = None
) -> int:
    """Reactivate; add missing cells; requeue failed/cancelled ones. Returns cells (re)queued.

    Completed cells are never rerun, so a second resume returns 0 and changes nothing.
    ``config`` (same name) may extend the sweep, e.g. more trials."""
    st = _store(ws, store)
    sweep = st.get_sweep(sweep_id)
    cfg = config or stored_config(ws, sweep_id, st)
    if cfg.name != sweep.name:
        raise QueueError(f"Config {cfg.name!r} is not the config of sweep {sweep_id} ({sweep.name!r})")
    now = time.time()
    added = st.add_missing_cells(sweep_id, cfg.cells(), now)
    requeued = st.requeue_cells(sweep_id, ["failed", "cancelled"], now)
    if sweep.status != "active" and (
        added or requeued or sweep.status == "paused" or st.runnable_count(None, [sweep_id])
    ):
        st.set_sweep_status(sweep_id, "active", now)
    st.complete_if_done(sweep_id, now)
    return added + requeued


def retry_failed(ws: Workspace, sweep_id: str, store: ControlStore | None = None) -> int:
    """Failed cells → pending with a fresh retry budget. Returns how many."""
    st = _store(ws, store)
    sweep = st.get_sweep(sweep_id)
    n = st.requeue_cells(sweep_id, ["failed"], time.time())
    if n and sweep.status == "completed":
        st.set_sweep_status(sweep_id, "active", time.time())
    return n


def cancel(ws: Workspace, sweep_id: str, store: ControlStore | None = None) -> int:
    """Cancel pending cells; runners kill running jobs' process groups; Slurm pilots that
    only this sweep needed are ``scancel``ed. Returns cells touched.

    The cells are cancelled first, so a ``SlurmError`` from ``scancel`` (raised after,
    naming the jobs) never leaves the sweep running."""
    st = _store(ws, store)
    touched = st.cancel_sweep(sweep_id, time.time())
    _cancel_unneeded_pilots(st, sweep_id)
    return touched


def _cancel_unneeded_pilots(st: ControlStore, sweep_id: str) -> list[str]:
    """``scancel`` live pilot submissions that could serve ``sweep_id`` and no other sweep
    with work left (pending or running cells). Returns the Slurm job ids cancelled."""
    subs = [
        s
        for s in st.submissions(limit=200)
        if s.status == "submitted" and (s.sweep_ids is None or sweep_id in s.sweep_ids)
    ]
    if not subs:
        return []
    every = [s.sweep_id for s in st.list_sweeps()]
    doomed = []
    for sub in subs:
        others = [x for x in (sub.sweep_ids or every) if x != sweep_id]
        if not others or not st.runnable_count(None, others):
            doomed.append(sub.job_id)
    if not doomed:
        return []
    live: list[str] = doomed
    try:
        live = sorted({p.job_id for p in slurm.pilot_states(doomed) if p.state not in slurm.TERMINAL_STATES})
        if not live:
            return []
        slurm.cancel_jobs(live)
    except slurm.SlurmError as exc:
        st.add_event("pilots_cancel_failed", f"{', '.join(live)}: {exc.message}", time.time(), sweep_id)
        raise slurm.SlurmError(
            f"Sweep {sweep_id} is cancelled, but its Slurm pilots {', '.join(live)} were not: {exc.message}",
            hint=f"cancel them with `scancel {' '.join(live)}`",
        ) from None
    for job_id in live:
        st.set_submission_cancelled(job_id, time.time())
    return live


def slurm_settings(ws: Workspace) -> dict[str, Any]:
    """For the UI: the ``[slurm]`` options pilots get (``options``, UI-safe) and whether
    ``sbatch`` is on this host's PATH (``sbatch_found``)."""
    import shutil

    return {"options": slurm.options(ws).public(), "sbatch_found": shutil.which("sbatch") is not None}


def submit_pilots(
    ws: Workspace,
    pilots: int,
    *,
    sweep_ids: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    max_concurrent: int = 1,
    lease_s: float = 30.0,
    drain_timeout_s: float | None = None,
    store: ControlStore | None = None,
) -> PilotSubmission:
    """Submit ``pilots`` Slurm runner pilots (one job array) for ``sweep_ids`` (None: any
    active sweep), with ``[slurm]`` options and ``overrides``. ``SlurmError`` leaves every
    sweep as it was: queued work stays queued."""
    opts = slurm.options(ws, overrides)
    return slurm.submit(
        ws,
        pilots,
        opts,
        store=_store(ws, store),
        sweep_ids=sweep_ids,
        max_concurrent=max_concurrent,
        lease_s=lease_s,
        drain_timeout_s=drain_timeout_s,
    )


@dataclass
class SweepStatus:
    """Counts per cell state and an ETA (median attempt duration × waves left)."""

    sweep_id: str
    name: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    done: int = 0
    median_attempt_s: float | None = None
    eta_s: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "cancelled") or (self.total > 0 and self.done == self.total)


#: The actions a person can take on a sweep, in the order a page shows them.
ACTIONS = ("Resume", "Retry failed", "Pause", "Cancel")


def available_actions(status: SweepStatus) -> list[str]:
    """Which of ``ACTIONS`` would do something to a sweep in this state (the UI offers only
    these): Pause an active sweep; Resume a paused or cancelled one; Retry failed when some
    cell failed and the sweep is not cancelled; Cancel one that can still start jobs. A
    completed sweep without failures offers nothing."""
    state, failed = status.status, status.counts.get("failed", 0)
    allowed = {
        "Resume": state in ("paused", "cancelled"),
        "Retry failed": failed > 0 and state != "cancelled",
        "Pause": state == "active",
        "Cancel": state in ("active", "paused"),
    }
    return [a for a in ACTIONS if allowed[a]]


def status(ws: Workspace, sweep_id: str, store: ControlStore | None = None) -> SweepStatus:
    st = _store(ws, store)
    sweep = st.get_sweep(sweep_id)
    counts = {**dict.fromkeys(STATES, 0), **st.counts(sweep_id).get(sweep_id, {})}
    durations = [
        a.ended_at - a.started_at
        for a in st.attempts(sweep_id)
        if a.ended_at is not None and a.outcome == "succeeded"
    ]
    med = statistics.median(durations) if durations else None
    left = counts["pending"] + counts["running"]
    eta = None
    if med is not None and sweep.status == "active":
        waves = -(-left // max(1, sweep.max_concurrent))
        eta = waves * med
    total = sum(counts.values())
    done = total - left
    return SweepStatus(sweep_id, sweep.name, sweep.status, counts, total, done, med, eta)


def list_sweeps(ws: Workspace, store: ControlStore | None = None) -> pl.DataFrame:
    """Columns: sweep_id, name, status, executor, source, created_at, total, <one per state>."""
    st = _store(ws, store)
    rows = []
    all_counts = st.counts()
    for s in st.list_sweeps():
        row: dict[str, Any] = {
            "sweep_id": s.sweep_id,
            "name": s.name,
            "status": s.status,
            "executor": s.executor,
            "source": s.source,
            "created_at": _dt(s.created_at),
        }
        counts = {**dict.fromkeys(STATES, 0), **all_counts.get(s.sweep_id, {})}
        rows.append({**row, "total": sum(counts.values()), **counts})
    schema: dict[str, PolarsDataType] = {
        "sweep_id": pl.String,
        "name": pl.String,
        "status": pl.String,
        "executor": pl.String,
        "source": pl.String,
        "created_at": pl.Datetime("us", "UTC"),
        "total": pl.Int64,
        **{k: pl.Int64 for k in STATES},
    }
    return pl.DataFrame(rows, schema=schema)


def cells_frame(ws: Workspace, sweep_id: str, store: ControlStore | None = None) -> pl.DataFrame:
    """Columns: cell_id, sweep_id, model, task, env_id, params_json, trial, status, attempts,
    failures, lost (attempts whose runner died), requeues (attempts its runner drained),
    version (latest attempt), last_outcome, last_error, stop_reason (why a cell that is not
    done has stopped or waits; null otherwise), updated_at."""
    st = _store(ws, store)
    latest: dict[str, AttemptRecord] = {}
    for a in st.attempts(sweep_id):
        latest[a.cell_id] = a
    rows = []
    for c in st.cells(sweep_id):
        last = latest.get(c.cell_id)
        rows.append(
            {
                "cell_id": c.cell_id,
                "sweep_id": c.sweep_id,
                "model": c.model,
                "task": c.task,
                "env_id": c.env_id,
                "params_json": c.params_json,
                "trial": c.trial,
                "status": c.status,
                "attempts": c.attempts,
                "failures": c.failures,
                "lost": c.lost,
                "requeues": c.requeues,
                "version": last.version if last else None,
                "last_outcome": last.outcome if last else None,
                "last_error": last.error if last else None,
                "stop_reason": stop_reason(c, last.outcome if last else None),
                "updated_at": _dt(c.updated_at),
            }
        )
    schema: dict[str, PolarsDataType] = {
        "cell_id": pl.String,
        "sweep_id": pl.String,
        "model": pl.String,
        "task": pl.String,
        "env_id": pl.String,
        "params_json": pl.String,
        "trial": pl.Int64,
        "status": pl.String,
        "attempts": pl.Int64,
        "failures": pl.Int64,
        "lost": pl.Int64,
        "requeues": pl.Int64,
        "version": pl.Int64,
        "last_outcome": pl.String,
        "last_error": pl.String,
        "stop_reason": pl.String,
        "updated_at": pl.Datetime("us", "UTC"),
    }
    return pl.DataFrame(rows, schema=schema)


def stop_reason(cell: CellRecord, last_outcome: str | None, now: float | None = None) -> str | None:
    """Why a cell stopped short of success (or waits), in words for the Monitor."""
    now = time.time() if now is None else now
    if cell.status == "failed" and last_outcome == "lost":
        return (
            f"lost {cell.lost} time(s): its runner died while running it (charge "
            f"{cell.lost_charge:.2f} of {MAX_LOST:g}; a runner that dies running K jobs charges "
            "each 1/K), not a failure of the job itself; resume to run it again"
        )
    if cell.status == "failed":
        return f"{cell.failures} failed attempt(s): retries used up (last: {last_outcome})"
    if cell.status == "cancelled":
        return "cancelled"
    if cell.status == "early_stopped":
        return "not needed: a trial of the same config succeeded (early stop)"
    if cell.status == "pending" and cell.not_before > now:
        return f"retrying after a failure in {cell.not_before - now:.0f}s (backoff)"
    return None


def failures(
    ws: Workspace, sweep_id: str, tail_lines: int = 20, store: ControlStore | None = None
) -> pl.DataFrame:
    """Ended, non-succeeded attempts. Columns: attempt_id, cell_id, model, task, trial, attempt,
    version, status, outcome, exit_code, error, log_path, log_tail."""
    st = _store(ws, store)
    cells = {c.cell_id: c for c in st.cells(sweep_id)}
    rows = []
    for a in st.attempts(sweep_id):
        if a.ended_at is None or a.outcome == "succeeded":
            continue
        c = cells[a.cell_id]
        rows.append(
            {
                "attempt_id": a.attempt_id,
                "cell_id": a.cell_id,
                "model": c.model,
                "task": c.task,
                "trial": c.trial,
                "attempt": a.attempt,
                "version": a.version,
                "status": a.status,
                "outcome": a.outcome,
                "exit_code": a.exit_code,
                "error": a.error,
                "log_path": a.log_path,
                "log_tail": _tail(a.log_path, tail_lines),
            }
        )
    schema: dict[str, PolarsDataType] = {
        "attempt_id": pl.String,
        "cell_id": pl.String,
        "model": pl.String,
        "task": pl.String,
        "trial": pl.Int64,
        "attempt": pl.Int64,
        "version": pl.Int64,
        "status": pl.String,
        "outcome": pl.String,
        "exit_code": pl.Int64,
        "error": pl.String,
        "log_path": pl.String,
        "log_tail": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def runners(ws: Workspace, store: ControlStore | None = None, now: float | None = None) -> pl.DataFrame:
    """Columns: runner_id, host, node, pid, status, started_at, heartbeat_at, alive (heartbeat
    within lease), jobs_run, slurm_job (``JOBID_TASK`` for a Slurm pilot, else null), log_path."""
    now = time.time() if now is None else now
    rows = [
        {
            "runner_id": r.runner_id,
            "host": r.host,
            "node": r.node,
            "pid": r.pid,
            "status": r.status,
            "started_at": _dt(r.started_at),
            "heartbeat_at": _dt(r.heartbeat_at),
            "alive": r.status != "stopped" and now - r.heartbeat_at <= r.lease_s,
            "jobs_run": r.jobs_run,
            "slurm_job": _pilot_key(r.slurm_job_id, r.slurm_array_task_id),
            "log_path": r.log_path,
        }
        for r in _store(ws, store).runners()
    ]
    schema: dict[str, PolarsDataType] = {
        "runner_id": pl.String,
        "host": pl.String,
        "node": pl.String,
        "pid": pl.Int64,
        "status": pl.String,
        "started_at": pl.Datetime("us", "UTC"),
        "heartbeat_at": pl.Datetime("us", "UTC"),
        "alive": pl.Boolean,
        "jobs_run": pl.Int64,
        "slurm_job": pl.String,
        "log_path": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _pilot_key(job_id: str | None, task: int | None) -> str | None:
    if job_id is None:
        return None
    return job_id if task is None else f"{job_id}_{task}"


@dataclass
class PilotsView:
    """The Slurm pilots of recent submissions. ``slurm_error``: why Slurm states are missing;
    ``stale_s``: the states shown are the last answer, this old (``squeue`` was slow)."""

    frame: pl.DataFrame
    slurm_error: str | None = None
    stale_s: float | None = None


PILOT_SCHEMA: dict[str, PolarsDataType] = {
    "pilot": pl.String,
    "slurm_state": pl.String,
    "node": pl.String,
    "reason": pl.String,
    "runner_status": pl.String,
    "alive": pl.Boolean,
    "jobs_run": pl.Int64,
    "heartbeat_at": pl.Datetime("us", "UTC"),
    "log_path": pl.String,
    "sweeps": pl.String,
    "submitted_at": pl.Datetime("us", "UTC"),
}


def pilots(
    ws: Workspace,
    store: ControlStore | None = None,
    limit: int = 10,
    now: float | None = None,
    sweep_id: str | None = None,
    wait_s: float | None = None,
) -> PilotsView:
    """One row per array task of the ``limit`` newest pilot submissions (with ``sweep_id``:
    those that could serve that sweep, i.e. for it or for any sweep): ``pilot``
    (``JOBID_TASK``), ``slurm_state`` (squeue; null once slurmctld forgot the job),
    ``node``, ``reason``, the runner it became (``runner_status``, ``alive``, ``jobs_run``,
    ``heartbeat_at``), ``log_path``, ``sweeps`` (ids, or ``any``), ``submitted_at``.

    ``wait_s`` (a page): wait at most that long for ``squeue``, else show its last answer
    (``squeue_cache``); None waits for it (up to its own timeout)."""
    st = _store(ws, store)
    subs = [
        s
        for s in st.submissions(limit=limit if sweep_id is None else 200)
        if sweep_id is None or s.sweep_ids is None or sweep_id in s.sweep_ids
    ][:limit]
    if not subs:
        return PilotsView(pl.DataFrame(schema=PILOT_SCHEMA))
    error, stale_s = None, None
    if wait_s is not None:
        answer = squeue_cache.pilot_states([s.job_id for s in subs], wait_s)
        states, error, stale_s = {p.key: p for p in answer.states}, answer.error, answer.stale_s
    else:
        try:
            states = {p.key: p for p in slurm.pilot_states([s.job_id for s in subs])}
        except slurm.SlurmError as exc:
            states, error = {}, exc.message
    live = runners(ws, st, now=now)
    by_pilot = {r["slurm_job"]: r for r in live.iter_rows(named=True) if r["slurm_job"]}
    rows = []
    for sub in subs:
        for task in range(sub.pilots):
            key = f"{sub.job_id}_{task}"
            state, runner = states.get(key), by_pilot.get(key, {})
            rows.append(
                {
                    "pilot": key,
                    "slurm_state": state.state if state else None,
                    "node": (state.node if state else None) or runner.get("node"),
                    "reason": state.reason if state else None,
                    "runner_status": runner.get("status"),
                    "alive": runner.get("alive", False),
                    "jobs_run": runner.get("jobs_run", 0),
                    "heartbeat_at": runner.get("heartbeat_at"),
                    "log_path": runner.get("log_path") or f"{sub.log_dir}/pilot-{key}.log",
                    "sweeps": ", ".join(sub.sweep_ids) if sub.sweep_ids else "any",
                    "submitted_at": _dt(sub.submitted_at),
                }
            )
    return PilotsView(pl.DataFrame(rows, schema=PILOT_SCHEMA), error, stale_s)


def ensure_runner(
    ws: Workspace,
    store: ControlStore | None = None,
    *,
    max_concurrent: int | None = None,
    extra_args: list[str] | None = None,
) -> int | None:
    """Start a detached ``python -m fle_core runner`` unless one is alive; its pid, else None."""
    if runners(ws, store).filter(pl.col("alive")).height:
        return None
    args = [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "runner"]
    if max_concurrent:
        args += ["--max-concurrent", str(int(max_concurrent))]
    args += list(extra_args or [])
    return spawn_detached(args, ws.logs_dir / "runner.log", ws.root)


def stop_runner(ws: Workspace, runner_id: str, store: ControlStore | None = None) -> int:
    """SIGTERM (graceful drain) to a live runner of this host, found by id in the control store.

    Only a pid the store lists as an alive runner on this host is signalled, so the
    UI can never signal an arbitrary process. Returns the pid. Running jobs may
    finish; no new job starts.
    """
    import signal
    import socket

    rows = runners(ws, store).filter((pl.col("runner_id") == runner_id) & pl.col("alive"))
    if rows.is_empty():
        raise QueueError(f"No alive runner {runner_id!r}", hint="it may have stopped already; refresh")
    row = rows.row(0, named=True)
    if row["host"] != socket.gethostname():
        raise QueueError(
            f"Runner {runner_id} runs on {row['host']}, not on this host",
            hint=f"stop it there (kill -TERM {row['pid']})",
        )
    try:
        os.kill(int(row["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        raise QueueError(f"Runner {runner_id} (pid {row['pid']}) has already exited") from None
    return int(row["pid"])


def executor_presets(ws: Workspace) -> list[dict[str, Any]]:
    """Preset descriptions safe for the UI: name, kind, description, command, options."""
    return [p.public() for p in load_presets(ws).values()]


def attempts_frame(ws: Workspace, store: ControlStore | None = None) -> pl.DataFrame:
    """For sync: source, version, sweep_id, cell_id, model, task, params_json, trial, attempt,
    status (attempt status; only ``succeeded`` versions count in metrics)."""
    schema: dict[str, PolarsDataType] = {
        "source": pl.String,
        "version": pl.Int64,
        "sweep_id": pl.String,
        "cell_id": pl.String,
        "model": pl.String,
        "task": pl.String,
        "params_json": pl.String,
        "trial": pl.Int64,
        "attempt": pl.Int64,
        "status": pl.String,
    }
    if store is None and not ws.section("control") and not ws.control_path.exists():
        return pl.DataFrame(schema=schema)
    st = _store(ws, store)
    rows = []
    cells: dict[str, Any] = {}
    for s in st.list_sweeps():
        cells.update({c.cell_id: c for c in st.cells(s.sweep_id)})
    for a in st.attempts():
        c = cells[a.cell_id]
        rows.append(
            {
                "source": a.source,
                "version": a.version,
                "sweep_id": a.sweep_id,
                "cell_id": a.cell_id,
                "model": c.model,
                "task": c.task,
                "params_json": c.params_json,
                "trial": c.trial,
                "attempt": a.attempt,
                "status": a.status,
            }
        )
    return pl.DataFrame(rows, schema=schema)


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def _tail(path: str | None, lines: int) -> str | None:
    if not path or not Path(path).exists():
        return None
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 64_000))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
