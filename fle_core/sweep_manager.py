"""Sweep operations used by the CLI, the UI and scripts (``SweepManager``).

Functions take a ``Workspace`` and talk to its control store (``open_store``):
the embedded SQLite file ``control.db`` or, when config.toml has a
``[control]`` table, the shared Postgres store::

    [control]
    url = "postgresql://sweeps@db.internal/fle_control"   # no password here
    password_env = "FLE_CONTROL_PASSWORD"                  # or url_env = "..."

Launching only enqueues; a runner (``fle-core runner``, or ``ensure_runner``)
does the work. ``resume`` is idempotent: it adds cells missing from the
stored config and requeues failed/cancelled cells with a fresh retry budget,
and never touches succeeded or early-stopped cells.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from fle_core.control_store import ControlStore, SweepRecord, open_store
from fle_core.errors import QueueError
from fle_core.executors import get_preset, load_presets
from fle_core.sweep_config import SweepConfig, task_registry
from fle_core.workspace import Workspace

STATES = ("pending", "running", "succeeded", "failed", "early_stopped", "cancelled")


def _store(ws: Workspace, store: ControlStore | None) -> ControlStore:
    return store if store is not None else open_store(ws)


# ---- operations ------------------------------------------------------------------------
def launch(ws: Workspace, config: SweepConfig, *, store: ControlStore | None = None,
           sweep_id: str | None = None) -> str:
    """Validate against this workspace (tasks, executor, source) and enqueue every cell."""
    config.validate_tasks(ws.task_registry())
    get_preset(ws, config.executor)
    ws.source(config.source)
    now = time.time()
    sweep_id = sweep_id or new_sweep_id(config.name)
    record = SweepRecord(
        sweep_id=sweep_id, name=config.name, status="active", config_json=config.model_dump_json(),
        executor=config.executor, source=config.source, max_concurrent=config.max_concurrent,
        max_retries=config.max_retries, retry_backoff_s=config.retry_backoff_s,
        retry_backoff_max_s=config.retry_backoff_max_s, early_stop=config.early_stop_on_success,
        wandb=config.wandb, created_at=now, updated_at=now)
    _store(ws, store).create_sweep(record, config.cells())
    return sweep_id


def new_sweep_id(name: str) -> str:
    """``<name>_<YYYYmmdd_HHMMSS>_<8 hex>`` like the old framework's ids."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "sweep"
    return f"{slug}_{datetime.now(timezone.utc):%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


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


def resume(ws: Workspace, sweep_id: str, store: ControlStore | None = None,
           config: SweepConfig | None = None) -> int:
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
    if sweep.status != "active" and (added or requeued or sweep.status == "paused"
                                     or st.runnable_count(None, [sweep_id])):
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
    """Cancel pending cells; runners kill running jobs' process groups. Returns cells touched."""
    return _store(ws, store).cancel_sweep(sweep_id, time.time())


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


def status(ws: Workspace, sweep_id: str, store: ControlStore | None = None) -> SweepStatus:
    st = _store(ws, store)
    sweep = st.get_sweep(sweep_id)
    counts = {**dict.fromkeys(STATES, 0), **st.counts(sweep_id).get(sweep_id, {})}
    durations = [a.ended_at - a.started_at for a in st.attempts(sweep_id)
                 if a.ended_at is not None and a.outcome == "succeeded"]
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
        row: dict[str, Any] = {"sweep_id": s.sweep_id, "name": s.name, "status": s.status,
                               "executor": s.executor, "source": s.source, "created_at": _dt(s.created_at)}
        counts = {**dict.fromkeys(STATES, 0), **all_counts.get(s.sweep_id, {})}
        rows.append({**row, "total": sum(counts.values()), **counts})
    schema = {"sweep_id": pl.String, "name": pl.String, "status": pl.String, "executor": pl.String,
              "source": pl.String, "created_at": pl.Datetime("us", "UTC"), "total": pl.Int64,
              **{k: pl.Int64 for k in STATES}}
    return pl.DataFrame(rows, schema=schema)


def cells_frame(ws: Workspace, sweep_id: str, store: ControlStore | None = None) -> pl.DataFrame:
    """Columns: cell_id, sweep_id, model, task, env_id, params_json, trial, status, attempts,
    failures, version (latest attempt), last_outcome, last_error, updated_at."""
    st = _store(ws, store)
    latest = {}
    for a in st.attempts(sweep_id):
        latest[a.cell_id] = a
    rows = []
    for c in st.cells(sweep_id):
        a = latest.get(c.cell_id)
        rows.append({"cell_id": c.cell_id, "sweep_id": c.sweep_id, "model": c.model, "task": c.task,
                     "env_id": c.env_id, "params_json": c.params_json, "trial": c.trial,
                     "status": c.status, "attempts": c.attempts, "failures": c.failures,
                     "version": a.version if a else None, "last_outcome": a.outcome if a else None,
                     "last_error": a.error if a else None, "updated_at": _dt(c.updated_at)})
    schema = {"cell_id": pl.String, "sweep_id": pl.String, "model": pl.String, "task": pl.String,
              "env_id": pl.String, "params_json": pl.String, "trial": pl.Int64, "status": pl.String,
              "attempts": pl.Int64, "failures": pl.Int64, "version": pl.Int64, "last_outcome": pl.String,
              "last_error": pl.String, "updated_at": pl.Datetime("us", "UTC")}
    return pl.DataFrame(rows, schema=schema)


def failures(ws: Workspace, sweep_id: str, tail_lines: int = 20,
             store: ControlStore | None = None) -> pl.DataFrame:
    """Ended, non-succeeded attempts. Columns: attempt_id, cell_id, model, task, trial, attempt,
    version, status, outcome, exit_code, error, log_path, log_tail."""
    st = _store(ws, store)
    cells = {c.cell_id: c for c in st.cells(sweep_id)}
    rows = []
    for a in st.attempts(sweep_id):
        if a.ended_at is None or a.outcome == "succeeded":
            continue
        c = cells[a.cell_id]
        rows.append({"attempt_id": a.attempt_id, "cell_id": a.cell_id, "model": c.model, "task": c.task,
                     "trial": c.trial, "attempt": a.attempt, "version": a.version, "status": a.status,
                     "outcome": a.outcome, "exit_code": a.exit_code, "error": a.error,
                     "log_path": a.log_path, "log_tail": _tail(a.log_path, tail_lines)})
    schema = {"attempt_id": pl.String, "cell_id": pl.String, "model": pl.String, "task": pl.String,
              "trial": pl.Int64, "attempt": pl.Int64, "version": pl.Int64, "status": pl.String,
              "outcome": pl.String, "exit_code": pl.Int64, "error": pl.String, "log_path": pl.String,
              "log_tail": pl.String}
    return pl.DataFrame(rows, schema=schema)


def runners(ws: Workspace, store: ControlStore | None = None, now: float | None = None) -> pl.DataFrame:
    """Columns: runner_id, host, pid, status, started_at, heartbeat_at, alive (heartbeat within lease)."""
    now = time.time() if now is None else now
    rows = [{"runner_id": r.runner_id, "host": r.host, "pid": r.pid, "status": r.status,
             "started_at": _dt(r.started_at), "heartbeat_at": _dt(r.heartbeat_at),
             "alive": r.status != "stopped" and now - r.heartbeat_at <= r.lease_s}
            for r in _store(ws, store).runners()]
    schema = {"runner_id": pl.String, "host": pl.String, "pid": pl.Int64, "status": pl.String,
              "started_at": pl.Datetime("us", "UTC"), "heartbeat_at": pl.Datetime("us", "UTC"),
              "alive": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


def ensure_runner(ws: Workspace, store: ControlStore | None = None, *, max_concurrent: int | None = None,
                  extra_args: list[str] | None = None) -> int | None:
    """Start a detached ``python -m fle_core runner`` unless one is alive; its pid, else None."""
    if runners(ws, store).filter(pl.col("alive")).height:
        return None
    args = [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "runner"]
    if max_concurrent:
        args += ["--max-concurrent", str(int(max_concurrent))]
    args += list(extra_args or [])
    ws.logs_dir.mkdir(parents=True, exist_ok=True)
    with open(ws.logs_dir / "runner.log", "a") as fh:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True,
                                env={**os.environ, "FLE_CORE_HOME": str(ws.root)})
    return proc.pid


def executor_presets(ws: Workspace) -> list[dict[str, Any]]:
    """Preset descriptions safe for the UI: name, kind, description, command, options."""
    return [p.public() for p in load_presets(ws).values()]


def attempts_frame(ws: Workspace, store: ControlStore | None = None) -> pl.DataFrame:
    """For sync: source, version, sweep_id, cell_id, model, task, params_json, trial, attempt,
    status (attempt status; only ``succeeded`` versions count in metrics)."""
    schema = {"source": pl.String, "version": pl.Int64, "sweep_id": pl.String, "cell_id": pl.String,
              "model": pl.String, "task": pl.String, "params_json": pl.String, "trial": pl.Int64,
              "attempt": pl.Int64, "status": pl.String}
    if store is None and not ws.section("control") and not ws.control_path.exists():
        return pl.DataFrame(schema=schema)
    st = _store(ws, store)
    rows = []
    cells: dict[str, Any] = {}
    for s in st.list_sweeps():
        cells.update({c.cell_id: c for c in st.cells(s.sweep_id)})
    for a in st.attempts():
        c = cells[a.cell_id]
        rows.append({"source": a.source, "version": a.version, "sweep_id": a.sweep_id, "cell_id": a.cell_id,
                     "model": c.model, "task": c.task, "params_json": c.params_json, "trial": c.trial,
                     "attempt": a.attempt, "status": a.status})
    return pl.DataFrame(rows, schema=schema)


def summary_table(store: ControlStore, sweep_id: str, best: dict[int, float] | None = None,
                  quotas: dict[str, float | None] | None = None) -> pl.DataFrame:
    """Model × task table for the W&B sweep summary.

    Columns: model, task, cells, succeeded, failed, early_stopped, cancelled, pending,
    n (completed trajectories), successes (best value ≥ task quota, from ``best``:
    version → best step value), success_rate."""
    best, quotas = best or {}, quotas or {}
    version = {a.cell_id: a.version for a in store.attempts(sweep_id) if a.status == "succeeded"}
    rows = []
    for c in store.cells(sweep_id):
        v, q = version.get(c.cell_id), quotas.get(c.task)
        hit = v is not None and q is not None and v in best and best[v] >= q
        rows.append({"model": c.model, "task": c.task, "status": c.status, "done": v is not None,
                     "hit": hit})
    df = pl.DataFrame(rows, schema={"model": pl.String, "task": pl.String, "status": pl.String,
                                    "done": pl.Boolean, "hit": pl.Boolean})
    out = df.group_by("model", "task").agg(
        pl.len().cast(pl.Int64).alias("cells"),
        *[(pl.col("status") == s).sum().cast(pl.Int64).alias(s)
          for s in ("succeeded", "failed", "early_stopped", "cancelled", "pending")],
        pl.col("done").sum().cast(pl.Int64).alias("n"),
        pl.col("hit").sum().cast(pl.Int64).alias("successes"))
    return out.with_columns(
        pl.when(pl.col("n") > 0).then(pl.col("successes") / pl.col("n")).alias("success_rate")
    ).sort("model", "task")


# ---- W&B (called by the runner's W&B worker thread) ----------------------------------------
def log_job_to_wandb(ws: Workspace, store: ControlStore, claim: Any, completion_status: str,
                     spec: Any) -> None:
    """One W&B run for a finished attempt (config, ``sweep:{id}`` tag, per-step history).

    Never raises into the runner: failures become ``wandb_failed`` events."""
    c, a, s = claim.cell, claim.attempt, claim.sweep
    cfg = json.loads(s.config_json)
    try:
        from fle_core import tracking

        run_dir = tracking.log_job_run(
            sweep_id=s.sweep_id, model=c.model, task=c.task, trial=c.trial, version=a.version,
            attempt=a.attempt, retry_count=a.attempt - 1, completion_status=completion_status,
            params=json.loads(c.params_json), steps=_job_steps(spec, a.version),
            tags=list(cfg.get("tags") or []), project=_wandb_project(ws, cfg), wandb_dir=_wandb_dir(ws),
            quota=ws.task_registry().quota(c.task))
        store.add_event("wandb_run" if run_dir else "wandb_failed", run_dir or "log_job_run returned nothing",
                        time.time(), s.sweep_id, c.cell_id, a.attempt_id)
    except Exception as exc:  # noqa: BLE001 - W&B must never fail a job
        store.add_event("wandb_failed", f"{type(exc).__name__}: {exc}", time.time(), s.sweep_id)


def log_summary_to_wandb(ws: Workspace, store: ControlStore, sweep: SweepRecord) -> None:
    """The sweep summary run with the model × task ``summary_table``; failures become events."""
    cfg = json.loads(sweep.config_json)
    try:
        from fle_core import tracking

        spec = ws.source(sweep.source)
        ok = [a.version for a in store.attempts(sweep.sweep_id) if a.status == "succeeded"]
        table = summary_table(store, sweep.sweep_id, _best_values(spec, ok), ws.task_registry().quotas())
        run_dir = tracking.log_sweep_summary(sweep_id=sweep.sweep_id, name=sweep.name, table=table,
                                             tags=list(cfg.get("tags") or []),
                                             project=_wandb_project(ws, cfg), wandb_dir=_wandb_dir(ws))
        store.add_event("wandb_summary" if run_dir else "wandb_failed",
                        run_dir or "log_sweep_summary returned nothing", time.time(), sweep.sweep_id)
    except Exception as exc:  # noqa: BLE001
        store.add_event("wandb_failed", f"summary: {type(exc).__name__}: {exc}", time.time(), sweep.sweep_id)


def _wandb_project(ws: Workspace, cfg: dict) -> str | None:
    """Sweep's project, else ``[wandb] project``; None lets tracking use $WANDB_PROJECT/its default."""
    return cfg.get("wandb_project") or ws.section("wandb").get("project") or None


def _wandb_dir(ws: Workspace) -> str:
    return os.environ.get("WANDB_DIR") or str(ws.root / "wandb")


def _best_values(spec: Any, versions: list[int]) -> dict[int, float]:
    """version → best step value in the source (for the summary's success counts)."""
    import math

    from fle_core import sources

    out = {}
    with sources.connect(spec) as conn:
        for v in versions:
            best = conn.scalar("SELECT MAX(value) FROM programs WHERE version = ?", [int(v)])
            if best is not None and math.isfinite(float(best)):
                out[v] = float(best)
    return out


def _job_steps(spec: Any, version: int) -> pl.DataFrame:
    """The job's steps (depth, value, total_tokens) from the source, for W&B history."""
    from fle_core import sources

    with sources.connect(spec) as conn:
        cols = sources.column_types(conn)
        tokens = "token_usage" if "token_usage" in cols else "NULL"  # a fixed column name, not input
        tbl = conn.arrow(f"SELECT depth, value, {tokens} AS total_tokens FROM programs"
                         " WHERE version = ? ORDER BY depth, id", [int(version)])
    return pl.from_arrow(tbl).with_columns(pl.col("depth").cast(pl.Float64), pl.col("value").cast(pl.Float64),
                                           pl.col("total_tokens").cast(pl.Int64))


# ---- scripting API (the old framework's names) ------------------------------------------------
class SweepManager:
    """``SweepManager(config).run_sweep()`` / ``SweepManager.resume_sweep(config, id)``.

    Synchronous (the old framework was async). ``run_sweep(wait=True)`` runs an
    in-process runner restricted to this sweep until nothing is left, and
    returns ``cells_frame``; ``wait=False`` enqueues, ensures a background
    runner and returns at once."""

    def __init__(self, config: SweepConfig, workspace: Workspace | str | Path | None = None,
                 existing_sweep_id: str | None = None):
        self.config = config
        self.ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
        self.sweep_id = existing_sweep_id
        self.is_resume = existing_sweep_id is not None

    @classmethod
    def resume_sweep(cls, config: SweepConfig, sweep_id: str,
                     workspace: Workspace | str | Path | None = None) -> "SweepManager":
        return cls(config, workspace, existing_sweep_id=sweep_id)

    def run_sweep(self, wait: bool = True, max_concurrent: int | None = None,
                  sync: bool = True) -> pl.DataFrame:
        store = open_store(self.ws)
        try:
            if self.sweep_id is None:
                self.sweep_id = launch(self.ws, self.config, store=store)
            else:
                resume(self.ws, self.sweep_id, store=store, config=self.config)
            if not wait:
                ensure_runner(self.ws, store)
                return cells_frame(self.ws, self.sweep_id, store)
            from fle_core.runner import Runner

            runner = Runner(self.ws, store, max_concurrent=max_concurrent or self.config.max_concurrent,
                            sweep_ids=[self.sweep_id], sync=sync,
                            runner_id=f"inproc:{os.getpid()}:{uuid.uuid4().hex[:6]}")
            runner.run(once=True)
            return cells_frame(self.ws, self.sweep_id, store)
        finally:
            store.close()

    def status(self) -> SweepStatus:
        if self.sweep_id is None:
            raise QueueError("This sweep has not been launched yet")
        return status(self.ws, self.sweep_id)


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def _tail(path: str | None, lines: int) -> str | None:
    if not path or not Path(path).exists():
        return None
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 64_000))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
