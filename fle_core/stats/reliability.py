"""Reliability across repeated runs, in the spirit of HAL's reliability metrics.

Capability (how often a system succeeds) is not reliability (whether it does the
same thing each time it runs a task). Per system, over tasks with ≥ 2 epochs
(docs/metrics.md §6b):

* **outcome consistency**: per task, ``1 − s²_t / s²_max(n_t)`` where ``s²_t`` is
  the sample variance (ddof 1) of the task's 0/1 outcomes across epochs and
  ``s²_max(n)`` the largest one n epochs can show (an even split); 1 when every
  epoch ends the same way, 0 at an even split. The system's value is the mean
  over tasks, with ``outcome_variance`` (the mean of ``s²_t``) beside it.
* **resource consistency**: per task, the coefficient of variation (sd, ddof 1,
  over the mean) of tokens, dollars and wall-clock time across epochs; the
  system's value is the mean over tasks whose mean is above 0. 0 = every run
  spends the same.

pass^k (``bootstrap.pass_at_k_curve(..., estimator="pass_hat_k")``) is the third
reliability view: the chance that k runs of a task *all* succeed.

Pure: frames in, frames out.
"""

from __future__ import annotations

import polars as pl

from fle_core.errors import MetricError

#: resource columns of the summaries and their short names in ``resource_consistency``
RESOURCES = {"total_tokens": "tokens", "cost_usd": "cost", "duration_s": "duration"}


def task_consistency(summaries: pl.DataFrame) -> pl.DataFrame:
    """Per (model, task) with ≥ 2 scored epochs: ``n, successes, outcome_variance``
    (ddof 1) and ``outcome_consistency`` (``1 − s² / s²_max(n)``)."""
    for col in ("model", "task", "success"):
        if col not in summaries.columns:
            raise MetricError(f"summaries frame lacks column {col!r}")
    cells = (
        summaries.filter(pl.col("success").is_not_null())
        .group_by("model", "task")
        .agg(pl.len().alias("n"), pl.col("success").cast(pl.Int64).sum().alias("successes"))
        .filter(pl.col("n") >= 2)
    )
    n, c = pl.col("n").cast(pl.Float64), pl.col("successes").cast(pl.Float64)
    half = (pl.col("n") // 2).cast(pl.Float64)
    var = c * (n - c) / (n * (n - 1))  # s² of c ones and n − c zeros, ddof 1
    var_max = half * (n - half) / (n * (n - 1))
    return cells.with_columns(
        var.alias("outcome_variance"), (1.0 - var / var_max).alias("outcome_consistency")
    ).sort("model", "task", nulls_last=True)


def outcome_consistency(summaries: pl.DataFrame) -> pl.DataFrame:
    """Per model: ``tasks_repeated`` (tasks with ≥ 2 scored epochs), ``outcome_consistency``
    and ``outcome_variance`` (means over those tasks); null without such a task."""
    cells = task_consistency(summaries)
    per = cells.group_by("model").agg(
        pl.len().cast(pl.Int64).alias("tasks_repeated"),
        pl.col("outcome_consistency").mean(),
        pl.col("outcome_variance").mean(),
    )
    models = summaries.select("model").unique()
    return (
        models.join(per, on="model", how="left", nulls_equal=True)
        .with_columns(pl.col("tasks_repeated").fill_null(0))
        .sort("model", nulls_last=True)
    )


def resource_consistency(summaries: pl.DataFrame) -> pl.DataFrame:
    """Per model, for each resource present (tokens, cost, duration): ``<name>_cv`` =
    the mean over tasks of the per-task coefficient of variation across epochs (sd with
    ddof 1 ÷ mean; tasks with ≥ 2 known values and a mean above 0) and ``<name>_tasks``
    (how many tasks that used)."""
    if "model" not in summaries.columns or "task" not in summaries.columns:
        raise MetricError("summaries frame lacks model/task columns")
    present = {c: name for c, name in RESOURCES.items() if c in summaries.columns}
    out = summaries.select("model").unique()
    for col, name in present.items():
        x = pl.col(col).cast(pl.Float64)
        cells = (
            summaries.select("model", "task", x.alias("_x"))
            .filter(pl.col("_x").is_finite())
            .group_by("model", "task")
            .agg(pl.len().alias("_n"), pl.col("_x").mean().alias("_m"), pl.col("_x").std(ddof=1).alias("_s"))
            .filter((pl.col("_n") >= 2) & (pl.col("_m") > 0))
        )
        per = cells.group_by("model").agg(
            (pl.col("_s") / pl.col("_m")).mean().alias(f"{name}_cv"),
            pl.len().cast(pl.Int64).alias(f"{name}_tasks"),
        )
        out = out.join(per, on="model", how="left", nulls_equal=True).with_columns(
            pl.col(f"{name}_tasks").fill_null(0)
        )
    return out.sort("model", nulls_last=True)


def consistency(summaries: pl.DataFrame) -> pl.DataFrame:
    """``outcome_consistency`` joined with ``resource_consistency``: one row per model."""
    return outcome_consistency(summaries).join(
        resource_consistency(summaries), on="model", how="left", nulls_equal=True
    )
