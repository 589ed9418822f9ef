"""W&B runs the runner logs: one run per job, one summary run per sweep."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, cast

import polars as pl

from fle_core.tracking._wandb import (
    _finish_quietly,
    _init,
    _run_dir,
    _tags,
    quietly,
    safe_config,
    to_wandb_table,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Runner-facing functions
# ---------------------------------------------------------------------------


@quietly("job run")
def log_job_run(
    *,
    sweep_id: str,
    model: str,
    task: str,
    trial: int,
    version: int,
    attempt: int,
    retry_count: int,
    completion_status: str,
    params: Mapping[str, Any] | None = None,
    steps: pl.DataFrame | None = None,
    tags: Iterable[str] | None = None,
    project: str | None = None,
    wandb_dir: str | os.PathLike | None = None,
    quota: float | None = None,
    success: bool | None = None,
    simulated: bool | None = None,
    mode: str | None = None,
) -> str | None:
    """One W&B run for one sweep job (attempt). Returns the run directory, or None.

    ``steps`` has columns ``depth, value, total_tokens`` (one row per step).
    Config: sweep_id, model, task, trial, version, attempt, retry_count,
    completion_status, params. Tags: ``sweep:{id}``, ``model:{m}``, ``task:{t}``,
    ``status:{s}`` plus ``tags``. History (``step`` = depth): reward, tokens,
    cumulative_tokens, depth. Summary: final_reward, best_reward, steps,
    total_tokens, and success / quota / first_success_step when a quota is known
    (``quota`` argument, else the default task registry) or ``success`` is given.
    ``simulated`` (or a ``simulated`` column in ``steps``) adds config
    ``simulated`` and the tag ``simulated``, so simulated runs are labelled in W&B.
    """
    if simulated is None and steps is not None and "simulated" in steps.columns:
        simulated = bool(steps["simulated"].fill_null(False).any())
    frame = _steps_frame(steps)
    config = {
        "sweep_id": sweep_id,
        "model": model,
        "task": task,
        "trial": trial,
        "version": version,
        "attempt": attempt,
        "retry_count": retry_count,
        "completion_status": completion_status,
        "params": safe_config(dict(params or {})),
    }
    if simulated is not None:
        config["simulated"] = bool(simulated)
    run = _init(
        project=project,
        name=f"{model} | {task} | trial {trial} | v{version}",
        tags=_tags(
            [f"sweep:{sweep_id}", f"model:{model}", f"task:{task}", f"status:{completion_status}"],
            ["simulated"] if simulated else None,
            tags,
        ),
        config=config,
        mode=mode,
        wandb_dir=wandb_dir,
        group=str(sweep_id),
        job_type="trajectory",
    )
    try:
        with quietly("job run logging"):
            _log_history(run, frame)
            run.summary.update(_job_summary(frame, task, quota, success))
            return _run_dir(run)
        return None
    finally:
        _finish_quietly(run)


def _steps_frame(steps: pl.DataFrame | None) -> pl.DataFrame:
    """Sorted steps with float ``value`` and int ``total_tokens`` (missing → 0 rows/cols)."""
    if steps is None or steps.height == 0:
        return pl.DataFrame(
            {"depth": [], "value": [], "total_tokens": []},
            schema={"depth": pl.Float64, "value": pl.Float64, "total_tokens": pl.Int64},
        )
    frame = steps.select(
        pl.col("depth").cast(pl.Float64),
        pl.col("value").cast(pl.Float64),
        (pl.col("total_tokens") if "total_tokens" in steps.columns else pl.lit(None))
        .cast(pl.Int64)
        .fill_null(0)
        .alias("total_tokens"),
    )
    return frame.sort("depth", nulls_last=True)


def _log_history(run, frame: pl.DataFrame) -> None:
    depths = frame["depth"].to_list()
    integral = (
        all(d is not None and float(d).is_integer() for d in depths)
        and len(set(depths)) == len(depths)
        and all(d >= 0 for d in depths)
    )
    cumulative = 0
    for i, row in enumerate(frame.iter_rows(named=True)):
        cumulative += int(row["total_tokens"])
        step = int(row["depth"]) if integral else i
        value = row["value"]
        run.log(
            {
                "reward": None if value is None or not math.isfinite(value) else value,
                "tokens": int(row["total_tokens"]),
                "cumulative_tokens": cumulative,
                "depth": row["depth"],
            },
            step=step,
        )


def _job_summary(frame: pl.DataFrame, task: str, quota: float | None, success: bool | None) -> dict[str, Any]:
    values = [v for v in frame["value"].to_list() if v is not None and math.isfinite(v)]
    summary: dict[str, Any] = {
        "steps": frame.height,
        "final_reward": values[-1] if values else None,
        "best_reward": max(values) if values else None,
        "total_tokens": int(frame["total_tokens"].sum()),
    }
    if quota is None:
        from fle_core.tasks import TaskRegistry, normalize_task_key

        quota = TaskRegistry().quota(normalize_task_key(task))
    if quota is not None:
        summary["quota"] = float(quota)
        hits = frame.filter(pl.col("value") >= quota)
        summary["first_success_step"] = float(cast(float, hits["depth"].min())) if hits.height else None
        if success is None and values:
            success = max(values) >= quota
    if success is not None:
        summary["success"] = bool(success)
    return summary


@quietly("sweep summary run")
def log_sweep_summary(
    *,
    sweep_id: str,
    name: str,
    table: pl.DataFrame,
    tags: Iterable[str] | None = None,
    project: str | None = None,
    wandb_dir: str | os.PathLike | None = None,
    mode: str | None = None,
) -> str | None:
    """One summary run for a sweep with its model × task table. Returns the run dir or None.

    ``table`` is any frame with one row per (model, task), e.g. ``group_metrics``
    output; it is logged as ``sweep_summary`` (a ``wandb.Table``). Summary keys:
    ``rows``, ``models``, ``tasks``, and ``n`` / ``successes`` / ``success_rate``
    when the frame has ``n`` and ``successes`` columns.
    """
    run = _init(
        project=project,
        name=f"sweep {name} summary",
        tags=_tags([f"sweep:{sweep_id}", "sweep-summary"], tags),
        config={"sweep_id": sweep_id, "sweep_name": name},
        mode=mode,
        wandb_dir=wandb_dir,
        group=str(sweep_id),
        job_type="sweep_summary",
    )
    try:
        with quietly("sweep summary logging"):
            run.log({"sweep_summary": to_wandb_table(table)})
            run.summary.update(_table_summary(table))
            return _run_dir(run)
        return None
    finally:
        _finish_quietly(run)


def _table_summary(table: pl.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": table.height}
    for col in ("model", "task"):
        if col in table.columns:
            out[f"{col}s"] = table[col].n_unique()
    if {"n", "successes"} <= set(table.columns):
        n, k = int(table["n"].sum()), int(table["successes"].sum())
        out.update(n=n, successes=k, success_rate=(k / n if n else None))
    return out
