"""W&B logging for finished jobs and sweeps, run on the runner's W&B worker thread.

Reads what a job wrote from its source and hands it to ``fle_core.tracking``.
Never raises into the runner: failures become ``wandb_failed`` events.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import polars as pl

from fle_core import sources
from fle_core.sources import JobRef, Source
from fle_core.sweeps.store import ControlStore, SweepRecord
from fle_core.workspace import Workspace


# ---- W&B (called by the runner's W&B worker thread) ----------------------------------------
def log_job_to_wandb(
    ws: Workspace, store: ControlStore, claim: Any, completion_status: str, source: Source
) -> None:
    """One W&B run for a finished attempt (config, ``sweep:{id}`` tag, per-step history).

    Never raises into the runner: failures become ``wandb_failed`` events."""
    c, a, s = claim.cell, claim.attempt, claim.sweep
    cfg = json.loads(s.config_json)
    try:
        from fle_core import tracking

        run_dir = tracking.log_job_run(
            sweep_id=s.sweep_id,
            model=c.model,
            task=c.task,
            trial=c.trial,
            version=a.version,
            attempt=a.attempt,
            retry_count=a.attempt - 1,
            completion_status=completion_status,
            params=json.loads(c.params_json),
            steps=source.job_steps(JobRef(s.sweep_id, c.cell_id, a.attempt, a.version, c.task)),
            tags=list(cfg.get("tags") or []),
            project=_wandb_project(ws, cfg),
            wandb_dir=_wandb_dir(ws),
            quota=ws.task_registry().quota(c.task),
        )
        store.add_event(
            "wandb_run" if run_dir else "wandb_failed",
            run_dir or "log_job_run returned nothing",
            time.time(),
            s.sweep_id,
            c.cell_id,
            a.attempt_id,
        )
    except Exception as exc:  # noqa: BLE001
        store.add_event("wandb_failed", f"{type(exc).__name__}: {exc}", time.time(), s.sweep_id)


def log_summary_to_wandb(ws: Workspace, store: ControlStore, sweep: SweepRecord) -> None:
    """The sweep summary run with the model × task ``summary_table``; failures become events."""
    cfg = json.loads(sweep.config_json)
    try:
        from fle_core import tracking

        source = sources.get(ws, sweep.source)
        tasks = {c.cell_id: c.task for c in store.cells(sweep.sweep_id)}
        ok = [
            JobRef(a.sweep_id, a.cell_id, a.attempt, a.version, tasks.get(a.cell_id, ""))
            for a in store.attempts(sweep.sweep_id)
            if a.status == "succeeded"
        ]
        table = summary_table(store, sweep.sweep_id, source.best_values(ok), ws.task_registry().quotas())
        run_dir = tracking.log_sweep_summary(
            sweep_id=sweep.sweep_id,
            name=sweep.name,
            table=table,
            tags=list(cfg.get("tags") or []),
            project=_wandb_project(ws, cfg),
            wandb_dir=_wandb_dir(ws),
        )
        store.add_event(
            "wandb_summary" if run_dir else "wandb_failed",
            run_dir or "log_sweep_summary returned nothing",
            time.time(),
            sweep.sweep_id,
        )
    except Exception as exc:  # noqa: BLE001
        store.add_event("wandb_failed", f"summary: {type(exc).__name__}: {exc}", time.time(), sweep.sweep_id)


def _wandb_project(ws: Workspace, cfg: dict) -> str | None:
    """Sweep's project, else ``[wandb] project``; None lets tracking use $WANDB_PROJECT/its default."""
    return cfg.get("wandb_project") or ws.section("wandb").get("project") or None


def _wandb_dir(ws: Workspace) -> str:
    return os.environ.get("WANDB_DIR") or str(ws.root / "wandb")


def summary_table(
    store: ControlStore,
    sweep_id: str,
    best: dict[int, float] | None = None,
    quotas: dict[str, float | None] | None = None,
) -> pl.DataFrame:
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
        rows.append({"model": c.model, "task": c.task, "status": c.status, "done": v is not None, "hit": hit})
    df = pl.DataFrame(
        rows,
        schema={
            "model": pl.String,
            "task": pl.String,
            "status": pl.String,
            "done": pl.Boolean,
            "hit": pl.Boolean,
        },
    )
    out = df.group_by("model", "task").agg(
        pl.len().cast(pl.Int64).alias("cells"),
        *[
            (pl.col("status") == s).sum().cast(pl.Int64).alias(s)
            for s in ("succeeded", "failed", "early_stopped", "cancelled", "pending")
        ],
        pl.col("done").sum().cast(pl.Int64).alias("n"),
        pl.col("hit").sum().cast(pl.Int64).alias("successes"),
    )
    return out.with_columns(
        pl.when(pl.col("n") > 0).then(pl.col("successes") / pl.col("n")).alias("success_rate")
    ).sort("model", "task")
