"""What Inspect logs record per trajectory, beyond its steps, and how summaries use it.

A trajectory from an Inspect log (``inspect_samples``, one row per log × sample ×
epoch) carries facts its steps cannot: its own quota (``expected_production_score``),
whether it errored (and whose fault: ``failure_kind``), its wall-clock time, cost,
and the log it came from. ``load_summaries`` applies them (``apply_outcomes``):

* ``quota`` = the log's own quota, else the registry's (a ``success_threshold``
  still replaces both);
* ``success`` = the quota reached *with no error*, as FLE's scorer decides:
  ``final_reward >= quota and not errored`` (``final_reward`` is FLE's production
  score, the last step's);
* ``normalized_reward`` = ``best_reward / quota``; ``duration_s`` = ``total_time``;
* ``infrastructure_failure`` = the error is an infrastructure failure (``failure_kind``);
  ``cost_usd`` = the sample's ``total_cost`` (``cost_source = "log"``) when recorded.

Every other trajectory is left exactly as ``summarize_trajectories`` made it.
``failure_counts`` says, per model, how many trajectories are infrastructure
failures (game server, RCON, model API), other errors, limits hit, still running,
and how many asked-for samples a failed or killed log never produced.
"""

from __future__ import annotations

import polars as pl

from fle_core import warehouse
from fle_core.stats.metrics import TRAJECTORY_KEY
from fle_core.workspace import Workspace

#: ``load_outcomes`` columns.
OUTCOME_COLUMNS = (
    "source",
    "version",
    "instance",
    "path",
    "sample_id",
    "epoch",
    "model",
    "task",
    "quota",
    "has_error",
    "error",
    "error_source",
    "failure_kind",
    "limit_hit",
    "log_status",
    "fle_success",
    "steps_from",
    "total_time",
    "working_time",
    "total_cost",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "error_retries",
    "fallbacks",
    "automated_production_score",
    "invalidated_by",
    "invalidated_reason",
)


def has_outcomes(ws: Workspace) -> bool:
    """True when the warehouse holds any Inspect trajectory (cheap)."""
    with warehouse.reader(ws) as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'inspect_samples'"
        ).fetchone()
        if not exists or not exists[0]:
            return False
        row = con.execute("SELECT count(*) FROM (SELECT 1 FROM inspect_samples LIMIT 1)").fetchone()
        return bool(row and row[0])


#: An invalidated sample (``invalidate_samples``): kept, shown, left out of metrics.
INVALIDATED = "(invalidated_by IS NOT NULL OR invalidated_at IS NOT NULL)"


def load_outcomes(
    ws: Workspace, *, as_of_sync: int | None = None, include_invalidated: bool = False
) -> pl.DataFrame:
    """One row per counted Inspect trajectory (superseded eval-set copies excluded, and
    invalidated samples unless ``include_invalidated``)."""
    if not has_outcomes(ws):
        return pl.DataFrame(schema={c: _dtype(c) for c in OUTCOME_COLUMNS})
    sql = (
        f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM inspect_samples WHERE superseded_by IS NULL"
        + (" AND sync_id <= ?" if as_of_sync is not None else "")
        + ("" if include_invalidated else f" AND NOT {INVALIDATED}")
    )
    frame = warehouse.query(ws, sql, [int(as_of_sync)] if as_of_sync is not None else None)
    return frame.select([pl.col(c).cast(_dtype(c)) for c in OUTCOME_COLUMNS])


def _dtype(col: str) -> pl.DataType:
    if col in (
        "version",
        "instance",
        "epoch",
        "reasoning_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "error_retries",
        "fallbacks",
    ):
        return pl.Int64()
    if col in ("quota", "total_time", "working_time", "total_cost", "automated_production_score"):
        return pl.Float64()
    if col in ("has_error", "fle_success"):
        return pl.Boolean()
    return pl.String()


def apply_outcomes(
    summaries: pl.DataFrame,
    outcomes: pl.DataFrame,
    registry_quotas: dict[str, float],
    success_threshold: float | None = None,
) -> pl.DataFrame:
    """Summaries with the Inspect trajectories' quota/success/duration as the module doc
    says; the columns, their order and every other row are unchanged. Pure."""
    if outcomes.is_empty() or summaries.is_empty():
        return summaries
    cols = list(summaries.columns)
    o = outcomes.select(
        *TRAJECTORY_KEY,
        pl.col("quota").alias("_q"),
        (
            pl.col("has_error").fill_null(False)
            | (pl.col("failure_kind") == "infrastructure").fill_null(False)
        ).alias("_err"),
        pl.col("total_time").alias("_t"),
        (pl.col("failure_kind") == "infrastructure").fill_null(False).alias("_infra"),
        pl.col("total_cost").alias("_cost"),
        pl.lit(True).alias("_ins"),
    ).unique(subset=list(TRAJECTORY_KEY), keep="first")
    j = summaries.join(o, on=list(TRAJECTORY_KEY), how="left", maintain_order="left")
    ins = pl.col("_ins").fill_null(False)
    if success_threshold is not None:
        quota = pl.lit(float(success_threshold), dtype=pl.Float64)
    else:
        registry = pl.col("task").replace_strict(dict(registry_quotas), default=None, return_dtype=pl.Float64)
        quota = pl.coalesce(pl.col("_q"), registry)
    j = j.with_columns(pl.when(ins).then(quota).otherwise(pl.col("quota")).alias("quota"))
    reached = (pl.col("final_reward") >= pl.col("quota")).fill_null(False) & ~pl.col("_err")
    j = j.with_columns(
        pl.when(ins)
        .then(pl.when(pl.col("quota").is_not_null()).then(reached).otherwise(None))
        .otherwise(pl.col("success"))
        .alias("success"),
        pl.when(ins)
        .then(pl.col("best_reward") / pl.col("quota"))
        .otherwise(pl.col("normalized_reward"))
        .alias("normalized_reward"),
        pl.when(ins & pl.col("_t").is_not_null())
        .then(pl.col("_t"))
        .otherwise(pl.col("duration_s"))
        .alias("duration_s"),
        (pl.col("_infra").fill_null(False) | _column(j, "infrastructure_failure")).alias(
            "infrastructure_failure"
        ),
        pl.coalesce(pl.col("_cost"), _column(j, "cost_usd", pl.Float64)).alias("cost_usd"),
        pl.when(pl.col("_cost").is_not_null())
        .then(pl.lit("log"))
        .otherwise(_column(j, "cost_source", pl.String))
        .alias("cost_source"),
    )
    return j.select(cols + [c for c in LOG_COLUMNS if c not in cols])


#: summary columns ``apply_outcomes`` fills from the log (added when missing)
LOG_COLUMNS = ("infrastructure_failure", "cost_usd", "cost_source")


def _column(frame: pl.DataFrame, name: str, dtype: pl.DataType | type[pl.DataType] = pl.Boolean) -> pl.Expr:
    """An existing summaries column, or its default (false / null) when the frame lacks it."""
    if name in frame.columns:
        return pl.col(name).cast(dtype)
    return pl.lit(False if dtype == pl.Boolean else None, dtype=dtype)


#: ``failure_counts`` columns, per model.
FAILURE_COLUMNS = (
    "model",
    "trajectories",
    "infrastructure",
    "errors",
    "limits",
    "running",
    "missing",
    "retried",
    "fallbacks",
    "invalidated",
)


def failure_counts(ws: Workspace, summaries: pl.DataFrame, *, as_of_sync: int | None = None) -> pl.DataFrame:
    """Per model of ``summaries``: trajectories, and how many of them are infrastructure
    failures, other errors, limits hit or from a still-running log; ``missing`` counts
    samples a log was asked for but never finished (log errored, cancelled or killed).
    Only models with Inspect trajectories get non-zero counts; empty without any."""
    schema = {c: (pl.String if c == "model" else pl.Int64) for c in FAILURE_COLUMNS}
    outcomes = load_outcomes(ws, as_of_sync=as_of_sync)
    if outcomes.is_empty() or summaries.is_empty():
        return pl.DataFrame(schema=schema)
    keyed = summaries.select(*TRAJECTORY_KEY, "model").join(
        outcomes.drop("model"), on=list(TRAJECTORY_KEY), how="left"
    )
    failure = pl.col("failure_kind")
    counts = keyed.group_by("model").agg(
        pl.len().alias("trajectories"),
        (failure == "infrastructure").sum().alias("infrastructure"),
        (failure == "error").sum().alias("errors"),
        (failure == "limit").sum().alias("limits"),
        (pl.col("log_status") == "started").sum().alias("running"),
        (pl.col("error_retries").fill_null(0) > 0).sum().alias("retried"),
        (pl.col("fallbacks").fill_null(0) > 0).sum().alias("fallbacks"),
    )
    gaps = warehouse.query(
        ws,
        "SELECT model, sum(greatest(expected_samples - samples, 0))::BIGINT AS missing FROM inspect_logs "
        "WHERE status IN ('error', 'cancelled', 'started') AND expected_samples IS NOT NULL GROUP BY model",
    )
    # invalidated samples are not in the summaries (metrics leave them out): counted from the logs
    pin = " AND sync_id <= ?" if as_of_sync is not None else ""
    invalid = warehouse.query(
        ws,
        "SELECT model, count(*)::BIGINT AS invalidated FROM inspect_samples "
        f"WHERE superseded_by IS NULL AND {INVALIDATED}{pin} GROUP BY model",
        [int(as_of_sync)] if as_of_sync is not None else None,
    )
    if "base_model" in summaries.columns:  # labelled systems: the logs' counts go to their models
        names = summaries.select("model", "base_model").unique()
        gaps = _by_label(gaps, names)
        invalid = _by_label(invalid, names)
    out = (
        counts.join(gaps, on="model", how="left")
        .join(invalid, on="model", how="left")
        .with_columns(pl.col("missing").fill_null(0), pl.col("invalidated").fill_null(0))
    )
    out = out.with_columns([pl.col(c).fill_null(0) for c in FAILURE_COLUMNS if c != "model"])
    return out.select([pl.col(c).cast(t) for c, t in schema.items()]).sort("model", nulls_last=True)


def _by_label(counts: pl.DataFrame, names: pl.DataFrame) -> pl.DataFrame:
    """Per-model counts from the logs moved to the first system label of each model."""
    first = names.sort("model").unique(subset=["base_model"], keep="first")
    return counts.rename({"model": "base_model"}).join(first, on="base_model").drop("base_model")
