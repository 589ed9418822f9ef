"""Pure evaluation metrics over Polars frames: no I/O, no randomness.

Three layers, each a documented frame (see ``docs/architecture.md`` and
``docs/metrics.md`` for the exact definitions):

* **steps** (one row per agent step) → ``summarize_trajectories`` →
  **summaries** (one row per trajectory ``(source, version, instance)``);
* summaries → ``group_metrics`` → one row per group (default ``(model, task)``);
* summaries → ``model_metrics`` → one row per model, pass@k averaged over tasks.

Scalar helpers (``pass_at_k``, ``pass_hat_k``, ``wilson_interval``, ``iqm``)
have vectorized numpy twins used by the frame functions, so no Python loop
ever runs over groups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from fle_core.errors import MetricError
from fle_core.stats._intervals import Z95 as Z95
from fle_core.stats._intervals import wilson_interval as wilson_interval
from fle_core.stats.clustered import suite_intervals
from fle_core.tasks import TaskRegistry

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

TRAJECTORY_KEY = ("source", "version", "instance")

#: The steps contract: column -> dtype. Only ``version``, ``instance`` and
#: ``value`` are required; missing optional columns are treated as all-null.
STEP_SCHEMA: dict[str, PolarsDataType] = {
    "source": pl.String,
    "id": pl.Int64,
    "version": pl.Int64,
    "instance": pl.Int64,
    "depth": pl.Float64,
    "value": pl.Float64,
    "model": pl.String,
    "task": pl.String,
    "sweep_id": pl.String,
    "error_occurred": pl.Boolean,
    "production_score": pl.Float64,
    "simulated": pl.Boolean,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "total_tokens": pl.Int64,
    "created_at": pl.Datetime("us"),
    # the sweep attempt's canonical params JSON (``load_steps`` joins it per
    # (source, version) from ``sweep_attempts``); null for runs without params
    "config": pl.String,
}
_REQUIRED_STEP_COLUMNS = ("version", "instance", "value")


# ---------------------------------------------------------------- scalars ---
def _check_counts(n: int, c: int, k: int) -> None:
    if k < 1:
        raise MetricError(f"k must be >= 1, got {k}")
    if n < 0 or c < 0 or c > n:
        raise MetricError(f"need 0 <= c <= n, got n={n}, c={c}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021) for one task: ``1 - C(n-c,k)/C(n,k)``.

    Computed in the stable product form ``1 - prod_{i=n-c+1..n} (1 - k/i)``
    (no huge binomials). Returns 1.0 when ``n - c < k`` and NaN when ``n < k``
    (the estimator is undefined with fewer than k trials).
    """
    _check_counts(n, c, k)
    if n < k:
        return math.nan
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: the chance that k trials drawn without replacement all succeed.

    ``C(c,k)/C(n,k) = prod_{j=0..k-1} (c-j)/(n-j)`` (stable product form).
    0.0 when ``c < k``; NaN when ``n < k``.
    """
    _check_counts(n, c, k)
    if n < k:
        return math.nan
    prod = 1.0
    for j in range(k):
        prod *= max(c - j, 0) / (n - j)
    return prod


def _as_count_arrays(n, c) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if np.any(c > n) or np.any(c < 0):
        raise MetricError("need 0 <= c <= n for every group")
    return n, c


def pass_at_k_array(n, c, k: int) -> np.ndarray:
    """Vectorized ``pass_at_k`` over arrays of n and c (NaN where ``n < k``).

    Uses the equivalent k-term product ``C(n-c,k)/C(n,k) = prod_{j<k} (n-c-j)/(n-j)``,
    each factor clipped at 0 (so ``n - c < k`` gives exactly 1). The loop runs
    over j < k, never over groups.
    """
    n, c = _as_count_arrays(n, c)
    return np.where(n < k, np.nan, 1.0 - _falling_ratio(n - c, n, k))


def pass_hat_k_array(n, c, k: int) -> np.ndarray:
    """Vectorized ``pass_hat_k`` (NaN where ``n < k``)."""
    n, c = _as_count_arrays(n, c)
    return np.where(n < k, np.nan, _falling_ratio(c, n, k))


def _falling_ratio(top: np.ndarray, n: np.ndarray, k: int) -> np.ndarray:
    """``C(top, k) / C(n, k) = prod_{j<k} (top - j) / (n - j)``, factors clipped at 0.

    The stable k-term product shared by pass@k (top = n - c) and pass^k (top = c).
    """
    if k < 1:
        raise MetricError(f"k must be >= 1, got {k}")
    ratio = np.ones(np.broadcast(top, n).shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(k):
            ratio *= np.clip(top - j, 0.0, None) / (n - j)
    return ratio


@lru_cache(maxsize=65536)
def newcombe_interval(s1: int, n1: int, s2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """CI for p1 - p2 by Newcombe's hybrid score method (1998, method 10).

    ``d ± sqrt((p1-l1)² + (u2-p2)²)`` / ``sqrt((u1-p1)² + (p2-l2)²)`` with
    (l, u) the Wilson intervals of each proportion.
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson_interval(s1, n1, z)
    l2, u2 = wilson_interval(s2, n2, z)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def iqm(values) -> float:
    """Interquartile mean (rliable): mean of the middle 50% after sorting.

    Same as ``scipy.stats.trim_mean(x, 0.25)``: drop ``floor(n/4)`` values at
    each end. NaN and ±inf are ignored; NaN for no finite values.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = np.sort(x[np.isfinite(x)])
    if x.size == 0:
        return math.nan
    g = int(0.25 * x.size)
    return float(x[g : x.size - g].mean())


def _iqm_expr(col: pl.Expr) -> pl.Expr:
    """Per-group IQM of the non-null values (trim_mean 0.25 semantics), as an expression."""
    rank = col.rank("ordinal")
    cut = (col.count() // 4).cast(pl.UInt32)
    return col.filter((rank > cut) & (rank <= col.count() - cut)).mean()


def finite_or_null(col: str | pl.Expr) -> pl.Expr:
    """The column with NaN and ±inf as null: every aggregate here skips them (docs/metrics.md)."""
    e = pl.col(col) if isinstance(col, str) else col
    return pl.when(e.is_finite()).then(e).otherwise(None)


# --------------------------------------------------------------- summaries ---
SUMMARY_SCHEMA: dict[str, PolarsDataType] = {
    "source": pl.String,
    "version": pl.Int64,
    "instance": pl.Int64,
    "model": pl.String,
    "task": pl.String,
    "sweep_id": pl.String,
    "simulated": pl.Boolean,
    "steps": pl.Int64,
    "final_reward": pl.Float64,
    "best_reward": pl.Float64,
    "quota": pl.Float64,
    "success": pl.Boolean,
    "first_success_step": pl.Float64,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "total_tokens": pl.Int64,
    "started_at": pl.Datetime("us"),
    "ended_at": pl.Datetime("us"),
    "duration_s": pl.Float64,
    "error_occurred": pl.Boolean,
    "production_score": pl.Float64,
    "normalized_reward": pl.Float64,
    "config": pl.String,
    # what an Inspect log records (``analysis.outcomes``; defaults for other trajectories)
    "infrastructure_failure": pl.Boolean,
    "cost_usd": pl.Float64,
    "cost_source": pl.String,
}
#: Value of each summary column a steps frame cannot tell (filled by ``analysis.load_summaries``).
_LOG_DEFAULTS = {"infrastructure_failure": False, "cost_usd": None, "cost_source": None}


def quota_map(quotas) -> dict[str, float]:
    """Task -> quota from a ``TaskRegistry`` (default: lab-play's) or a mapping, checked."""
    if quotas is None:
        quotas = TaskRegistry()
    if isinstance(quotas, TaskRegistry):
        quotas = quotas.quotas()
    if not isinstance(quotas, Mapping):
        raise MetricError("quotas must be a TaskRegistry or a mapping task -> quota")
    return {str(k): float(v) for k, v in quotas.items() if v is not None}


def _conform_steps(steps: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in _REQUIRED_STEP_COLUMNS if c not in steps.columns]
    if missing:
        raise MetricError(
            f"steps frame lacks required column(s): {', '.join(missing)}",
            hint="load it with fle_core.analysis.load_steps",
        )
    exprs = []
    for name, dtype in STEP_SCHEMA.items():
        if name in steps.columns:
            exprs.append(pl.col(name).cast(dtype) if steps.schema[name] != dtype else pl.col(name))
        elif name == "id":
            exprs.append(pl.int_range(pl.len(), dtype=pl.Int64).alias("id"))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    try:
        return steps.select(exprs)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise MetricError(
            f"steps frame has a column of the wrong type: {exc}", hint=f"expected types: {STEP_SCHEMA}"
        ) from None


_MODE_COLUMNS = ("model", "task", "sweep_id")


def _trajectory_index(df: pl.DataFrame) -> pl.DataFrame | None:
    """Scan adjacent rows once. When every trajectory's rows are adjacent and
    ordered by (depth, id) (null depth first) — as ``load_steps`` returns them —
    return ``_g`` (0, 1, ... per run of equal keys) and ``_chg_<col>`` (a mode
    column's value differs from the previous row's in the same trajectory);
    otherwise None. Whether each key forms a single run is checked after
    aggregation (``_contiguous``).

    The run index lets Polars aggregate contiguous slices instead of hashing
    string keys; the change flags find the rare trajectories whose
    model/task/sweep_id is not constant without comparing strings per group.
    """
    keys = [
        pl.col("source").fill_null(""),
        pl.col("version").fill_null(-(2**62)),
        pl.col("instance").fill_null(-(2**62)),
    ]
    depth, ident = pl.col("depth").fill_null(-math.inf), pl.col("id")
    new_traj = pl.lit(False)
    for c in keys:
        new_traj = new_traj | (c != c.shift(1))
    new_traj = new_traj.fill_null(True)
    in_order = (depth > depth.shift(1)) | ((depth == depth.shift(1)) & (ident > ident.shift(1)))
    res = df.select(
        (new_traj | in_order.fill_null(True)).all().alias("_ok"),
        (new_traj.cast(pl.Int64).cum_sum() - 1).alias("_g"),
        *[
            ((pl.col(c) != pl.col(c).shift(1)) & ~new_traj).fill_null(False).alias(f"_chg_{c}")
            for c in _MODE_COLUMNS
        ],
    )
    if not res["_ok"][0]:
        return None
    return res.drop("_ok").with_columns(pl.col("_g").set_sorted())


def _trajectory_order(df: pl.DataFrame) -> np.ndarray:
    """Row order by (hash(source), version, instance, depth, id), nulls first.

    numpy's lexsort on integer keys is several times cheaper than sorting on
    the source strings, and any order that keeps trajectories contiguous will do.
    """
    return np.lexsort(
        (
            df["id"].to_numpy(),
            df["depth"].fill_null(-math.inf).to_numpy(),
            df["instance"].fill_null(-(2**62)).to_numpy(),
            df["version"].fill_null(-(2**62)).to_numpy(),
            df["source"].hash().to_numpy(),
        )
    )


def _contiguous(out: pl.DataFrame) -> bool:
    """True when no trajectory key occurs in two runs (checked on the small output)."""
    return out.height == out.select(pl.struct(list(TRAJECTORY_KEY)).n_unique()).item()


def _mode_aggs() -> list[pl.Expr]:
    """First non-null value and null count of each mode column per trajectory."""
    out = []
    for c in _MODE_COLUMNS:
        out += [
            pl.col(c).drop_nulls().first().alias(c),
            pl.col(c).null_count().alias(f"_{c}_nulls"),
            pl.col(f"_chg_{c}").any().alias(f"_{c}_chg"),
        ]
    return out


def _resolve_modes(out: pl.DataFrame, steps: pl.DataFrame) -> pl.DataFrame:
    """Most common non-null value per trajectory; ties go to the smallest value.

    A trajectory whose non-null values never change between adjacent rows and
    has no nulls among values (the usual case) keeps its first value; only the
    others are recounted exactly.
    """
    for name in _MODE_COLUMNS:
        nulls, chg = f"_{name}_nulls", f"_{name}_chg"
        suspect = out.filter(pl.col(chg) | ((pl.col(nulls) > 0) & (pl.col(nulls) < pl.col("steps"))))
        if suspect.height:
            fix = (
                steps.join(suspect.select("_g"), on="_g", how="semi")
                .filter(pl.col(name).is_not_null())
                .group_by(["_g", name])
                .len()
                .sort(["_g", "len", name], descending=[False, True, False])
                .group_by("_g", maintain_order=True)
                .first()
                .select("_g", pl.col(name).alias("_fix"))
            )
            out = (
                out.join(fix, on="_g", how="left", maintain_order="left")
                .with_columns(pl.coalesce("_fix", name).alias(name))
                .drop("_fix")
            )
        out = out.drop(nulls, chg)
    return out


def summarize_trajectories(
    steps: pl.DataFrame, quotas=None, *, success_threshold: float | None = None
) -> pl.DataFrame:
    """One row per trajectory ``(source, version, instance)`` from step rows.

    ``steps`` follows the steps contract (``load_steps``). ``quotas`` is a
    ``TaskRegistry`` or a mapping task → quota (default: FLE lab-play
    defaults); tasks without a quota (``open_play``, unknown or null task) get
    ``quota``/``success`` null. ``success_threshold`` replaces every task's
    quota with one user-chosen threshold (also for open_play/unknown tasks).

    Non-finite step values (NaN, ±inf) and nulls are ignored for
    ``best_reward``, ``final_reward`` and ``first_success_step``. A trajectory
    with no finite value has null rewards and, if it has a quota, success False.

    Output columns: ``SUMMARY_SCHEMA`` (the summaries contract plus
    ``normalized_reward = best_reward / quota`` and ``config``, the first
    non-null step ``config`` — constant per trajectory as ``load_steps`` joins
    it per (source, version); null when the steps have none), sorted by the key. Input
    whose trajectories are contiguous and ordered by (depth, id) — as
    ``load_steps`` returns it — is aggregated in place; any other order is
    sorted first. The result does not depend on the input order.
    """
    qmap = quota_map(quotas)
    df = _conform_steps(steps)
    if df.height == 0:
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    if df.n_chunks("all") != [1] * df.width:
        df = df.rechunk()
    out = _aggregate_runs(df)
    if out is None:  # rows out of order: sort once, then the same path
        df = df[_trajectory_order(df)]
        out = _aggregate_runs(df)
    if out is None:  # two sources with colliding hashes: sort on the names themselves
        df = df.sort(["source", "version", "instance", "depth", "id"], nulls_last=False)
        out = _aggregate_runs(df)
    out, df = out
    out = _resolve_modes(out, df)
    out = out.with_columns(quota_expr(qmap, success_threshold).alias("quota"))
    out = out.with_columns(_first_success(df, out["quota"]).alias("first_success_step"))
    return finish_summaries(out)


def quota_expr(qmap: Mapping[str, float], success_threshold: float | None) -> pl.Expr:
    """Each trajectory's quota: the one threshold if given, else its task's quota (or null)."""
    if success_threshold is not None:
        return pl.lit(float(success_threshold), dtype=pl.Float64)
    return pl.col("task").replace_strict(dict(qmap), default=None, return_dtype=pl.Float64)


def finish_summaries(out: pl.DataFrame) -> pl.DataFrame:
    """Derived columns, contract dtypes and key order of per-trajectory aggregates.

    ``out`` has the aggregates plus ``quota`` and ``first_success_step``; shared
    by ``summarize_trajectories`` and the warehouse's SQL aggregation
    (``analysis.load_summaries``) so both finish identically.
    """
    out = out.with_columns(
        pl.when(pl.col("quota").is_not_null())
        .then(pl.coalesce(pl.col("best_reward") >= pl.col("quota"), pl.lit(False)))
        .alias("success"),
        ((pl.col("ended_at") - pl.col("started_at")).dt.total_microseconds() / 1e6).alias("duration_s"),
        (pl.col("best_reward") / pl.col("quota")).alias("normalized_reward"),
    )
    out = out.select(
        [
            pl.col(c).cast(t) if c in out.columns else pl.lit(_LOG_DEFAULTS[c], dtype=t).alias(c)
            for c, t in SUMMARY_SCHEMA.items()
        ]
    )
    return out.sort(list(TRAJECTORY_KEY), nulls_last=False)


def _aggregate_runs(df: pl.DataFrame):
    """Per-trajectory aggregates over contiguous runs, or None if rows are out of order.

    Returns ``(out, df)``: ``out`` has one row per trajectory in ``_g`` order and
    ``df`` the steps with ``_g``, change flags and ``_v`` (finite value or null).
    """
    index = _trajectory_index(df)
    if index is None:
        return None
    df = df.hstack(index).with_columns(finite_or_null("value").alias("_v"))
    out = df.group_by("_g", maintain_order=True).agg(
        pl.col("source").first(),
        pl.col("version").first(),
        pl.col("instance").first(),
        *_mode_aggs(),
        pl.col("simulated").any().alias("simulated"),
        pl.len().cast(pl.Int64).alias("steps"),
        pl.col("_v").drop_nulls().last().alias("final_reward"),
        pl.col("_v").max().alias("best_reward"),
        pl.col("prompt_tokens").sum().cast(pl.Int64),
        pl.col("completion_tokens").sum().cast(pl.Int64),
        pl.col("total_tokens").sum().cast(pl.Int64),
        pl.col("created_at").min().alias("started_at"),
        pl.col("created_at").max().alias("ended_at"),
        pl.col("error_occurred").any().alias("error_occurred"),
        pl.col("production_score").drop_nulls().last().alias("production_score"),
        pl.col("config").drop_nulls().first().alias("config"),
    )
    if not _contiguous(out):
        return None
    return out, df


def _first_success(df: pl.DataFrame, quota: pl.Series) -> pl.Series:
    """Smallest depth whose finite value reaches the trajectory's quota (null if none)."""
    q = quota.to_numpy(allow_copy=True).astype(np.float64)  # null -> NaN: never reached
    row_q = q[df["_g"].to_numpy()]
    hit = df.select(pl.col("_g"), pl.col("depth"), (pl.col("_v") >= pl.Series(row_q)).alias("_hit"))
    first = hit.group_by("_g", maintain_order=True).agg(pl.col("depth").filter(pl.col("_hit")).min())
    return first["depth"]


# ----------------------------------------------------------- group metrics ---
def _check_summary_columns(
    summaries: pl.DataFrame, cols: Sequence[str], reward_column: str | None = None
) -> None:
    missing = [c for c in cols if c not in summaries.columns]
    if missing:
        raise MetricError(
            f"summaries frame lacks column(s): {', '.join(missing)}",
            hint="build it with fle_core.summarize_trajectories",
        )
    if reward_column is not None and not summaries.schema[reward_column].is_numeric():
        raise MetricError(
            f"reward column {reward_column!r} is not numeric ({summaries.schema[reward_column]})"
        )


def _check_k(k_values: Sequence[int]) -> list[int]:
    ks = list(dict.fromkeys(int(k) for k in k_values))  # de-duplicated, order kept
    if any(k < 1 for k in ks):
        raise MetricError(f"k values must be >= 1, got {list(k_values)}")
    return ks


def _optional(summaries: pl.DataFrame, name: str, dtype: PolarsDataType) -> pl.Expr:
    return pl.col(name) if name in summaries.columns else pl.lit(None, dtype=dtype).alias(name)


def _cost_per_success(tokens: pl.Expr, success: pl.Expr) -> pl.Expr:
    """Total tokens of every scored trajectory ÷ successes (null without a success).

    What one success costs: failed runs' tokens count too, so a model that
    succeeds 1 time in 4 pays for 4 runs per success.
    """
    spent = tokens.filter(success.is_not_null()).sum().cast(pl.Float64)
    wins = success.sum().cast(pl.Float64)
    return pl.when(wins > 0).then(spent / wins).otherwise(None)


def _group_aggs(summaries: pl.DataFrame, reward_column: str, success_column: str) -> list[pl.Expr]:
    r = finite_or_null(reward_column)
    s = pl.col(success_column).cast(pl.Boolean)
    tok = _optional(summaries, "total_tokens", pl.Int64)
    return [
        pl.len().cast(pl.Int64).alias("n"),
        s.count().cast(pl.Int64).alias("n_scored"),
        s.sum().cast(pl.Int64).alias("successes"),
        r.mean().alias("reward_mean"),
        r.median().alias("reward_median"),
        r.std(ddof=1).alias("reward_std"),
        r.min().alias("reward_min"),
        r.max().alias("reward_max"),
        _iqm_expr(r).alias("reward_iqm"),
        tok.mean().alias("tokens_mean"),
        tok.filter(s).mean().alias("tokens_per_success"),
        _cost_per_success(tok, s).alias("cost_per_success"),
        _optional(summaries, "steps", pl.Int64).mean().alias("mean_steps"),
        _optional(summaries, "first_success_step", pl.Float64)
        .filter(s)
        .mean()
        .alias("mean_steps_to_success"),
        _optional(summaries, "error_occurred", pl.Boolean).cast(pl.Float64).mean().alias("error_rate"),
        _optional(summaries, "infrastructure_failure", pl.Boolean)
        .fill_null(False)
        .sum()
        .cast(pl.Int64)
        .alias("infra_failures"),
        _optional(summaries, "simulated", pl.Boolean).any().alias("simulated"),
    ]


def _add_rates(frame: pl.DataFrame, k_values: Sequence[int]) -> pl.DataFrame:
    """success_rate + Wilson CI + pass@k / pass^k columns from n_scored and successes."""
    n = frame["n_scored"].to_numpy().astype(np.float64)
    c = frame["successes"].to_numpy().astype(np.float64)
    scored = n > 0
    low, high = wilson_interval(np.where(scored, c, 0.0), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(scored, c / n, np.nan)
    cols = {
        "successes": pl.Series(np.where(scored, c, np.nan)).cast(pl.Int64, strict=False),
        "success_rate": rate,
        "success_ci_low": low,
        "success_ci_high": high,
    }
    for k in k_values:
        cols[f"pass_at_{k}"] = pass_at_k_array(n, c, k)
    for k in k_values:
        cols[f"pass_hat_{k}"] = pass_hat_k_array(n, c, k)
    new = pl.DataFrame({k: v for k, v in cols.items()}, schema_overrides={"successes": pl.Int64})
    new = new.with_columns(pl.exclude("successes").fill_nan(None))
    return frame.drop("successes").hstack(new)


def group_metrics(
    summaries: pl.DataFrame,
    by: Sequence[str] = ("model", "task"),
    k_values: Sequence[int] = (1, 3, 5, 8),
    reward_column: str = "best_reward",
    success_column: str = "success",
) -> pl.DataFrame:
    """Metrics per group of trajectories (default: per (model, task) cell).

    Columns: ``<by>, n, n_scored, successes, success_rate, success_ci_low,
    success_ci_high, pass_at_{k}..., pass_hat_{k}..., reward_mean, reward_median,
    reward_std, reward_min, reward_max, reward_iqm, tokens_mean,
    tokens_per_success, cost_per_success, mean_steps, mean_steps_to_success, error_rate,
    infra_failures, simulated``.

    ``n`` counts trajectories; ``n_scored`` those whose success is not null
    (success rate, Wilson CI, pass@k and pass^k use ``n_scored``). pass@k and
    pass^k are null where ``n_scored < k`` — that cell lacks trials. Reward
    statistics ignore null/NaN/inf; ``reward_std`` uses ddof=1 (null for n < 2).
    ``tokens_per_success`` is the mean ``total_tokens`` of successful trajectories;
    ``cost_per_success`` is the total ``total_tokens`` of scored trajectories ÷ successes.
    ``infra_failures`` counts the group's infrastructure failures (``stats.infrastructure``;
    0 without the column). Rows are sorted by ``by``.
    """
    by = list(by)
    ks = _check_k(k_values)
    _check_summary_columns(summaries, [*by, reward_column, success_column], reward_column)
    aggs = _group_aggs(summaries, reward_column, success_column)
    if summaries.height == 0:
        frame = summaries.head(0).group_by(by).agg(aggs)
    else:
        frame = summaries.group_by(by).agg(aggs).sort(by, nulls_last=True)
    frame = _add_rates(frame, ks)
    order = [
        *by,
        "n",
        "n_scored",
        "successes",
        "success_rate",
        "success_ci_low",
        "success_ci_high",
        *[f"pass_at_{k}" for k in ks],
        *[f"pass_hat_{k}" for k in ks],
        "reward_mean",
        "reward_median",
        "reward_std",
        "reward_min",
        "reward_max",
        "reward_iqm",
        "tokens_mean",
        "tokens_per_success",
        "cost_per_success",
        "mean_steps",
        "mean_steps_to_success",
        "error_rate",
        "infra_failures",
        "simulated",
    ]
    return frame.select(order)


def model_metrics(
    summaries: pl.DataFrame,
    k_values: Sequence[int] = (1, 3, 5, 8),
    reward_column: str = "best_reward",
    success_column: str = "success",
    *,
    population: str = "tasks",
    confidence: float = 0.95,
) -> pl.DataFrame:
    """One row per model, across its tasks.

    Columns: ``model, n_tasks, n, n_scored, successes, success_rate`` (pooled over
    the model's scored trajectories), ``success_se``, ``success_ci_low``,
    ``success_ci_high`` and ``success_ci_method``: the interval of the suite-level
    rate for ``population`` (``clustered.suite_intervals``): ``"tasks"`` (default,
    tasks as a sample) gives the task-clustered Wilson interval, = Inspect's
    ``ci_wilson(cluster="task")``; ``"suite"`` (this fixed suite) the stratified
    one; a model with one task gets that task's Wilson interval. Then
    ``success_rate_task_mean`` (mean of per-task rates), and for each k: ``pass_at_{k}`` (mean of per-task pass@k over
    tasks with n_scored ≥ k), ``pass_at_{k}_tasks`` (how many tasks that
    used), ``tasks_lacking_{k}`` (sorted list of scored tasks with
    n_scored < k), ``pass_hat_{k}`` (same averaging); then ``reward_mean``,
    ``reward_iqm`` (pooled over trajectories, raw units), ``normalized_mean``,
    ``normalized_iqm`` (pooled ``best_reward/quota``, comparable across tasks),
    ``tokens_per_success`` (mean tokens of a successful run), ``cost_per_success``
    (total tokens of all scored runs ÷ successes), ``mean_steps``, ``simulated``.
    """
    ks = _check_k(k_values)
    _check_summary_columns(summaries, ["model", "task", reward_column, success_column], reward_column)
    cells = group_metrics(summaries, ("model", "task"), ks, reward_column, success_column)
    per_task = [
        pl.col("task").n_unique().cast(pl.Int64).alias("n_tasks"),
        pl.col("success_rate").mean().alias("success_rate_task_mean"),
    ]
    for k in ks:
        lacking = (pl.col("n_scored") > 0) & (pl.col("n_scored") < k)
        per_task += [
            pl.col(f"pass_at_{k}").mean().alias(f"pass_at_{k}"),
            pl.col(f"pass_at_{k}").count().cast(pl.Int64).alias(f"pass_at_{k}_tasks"),
            pl.col("task").filter(lacking).drop_nulls().sort().alias(f"tasks_lacking_{k}"),
            pl.col(f"pass_hat_{k}").mean().alias(f"pass_hat_{k}"),
        ]
    across = cells.group_by("model").agg(per_task)
    s = pl.col(success_column).cast(pl.Boolean)
    r = finite_or_null(reward_column)
    norm = finite_or_null(_optional(summaries, "normalized_reward", pl.Float64))
    pooled_aggs = [
        pl.len().cast(pl.Int64).alias("n"),
        s.count().cast(pl.Int64).alias("n_scored"),
        s.sum().cast(pl.Int64).alias("successes"),
        r.mean().alias("reward_mean"),
        _iqm_expr(r).alias("reward_iqm"),
        norm.mean().alias("normalized_mean"),
        _iqm_expr(norm).alias("normalized_iqm"),
        _optional(summaries, "total_tokens", pl.Int64).filter(s).mean().alias("tokens_per_success"),
        _cost_per_success(_optional(summaries, "total_tokens", pl.Int64), s).alias("cost_per_success"),
        _optional(summaries, "steps", pl.Int64).mean().alias("mean_steps"),
        _optional(summaries, "simulated", pl.Boolean).any().alias("simulated"),
    ]
    pooled = summaries.group_by("model").agg(pooled_aggs)
    pooled = _add_rates(pooled, []).drop("success_ci_low", "success_ci_high")
    ci = suite_intervals(
        summaries.select("model", "task", pl.col(success_column).cast(pl.Boolean).alias("success")),
        "success",
        population,
        confidence=confidence,
    ).select(
        "model",
        pl.col("se").alias("success_se"),
        pl.col("ci_low").alias("success_ci_low"),
        pl.col("ci_high").alias("success_ci_high"),
        pl.col("method").alias("success_ci_method"),
    )
    pooled = pooled.join(ci, on="model", how="left", nulls_equal=True)
    out = pooled.join(across, on="model", how="left", nulls_equal=True).sort("model", nulls_last=True)
    order = [
        "model",
        "n_tasks",
        "n",
        "n_scored",
        "successes",
        "success_rate",
        "success_se",
        "success_ci_low",
        "success_ci_high",
        "success_ci_method",
        "success_rate_task_mean",
    ]
    for k in ks:
        order += [f"pass_at_{k}", f"pass_at_{k}_tasks", f"tasks_lacking_{k}", f"pass_hat_{k}"]
    order += [
        "reward_mean",
        "reward_iqm",
        "normalized_mean",
        "normalized_iqm",
        "tokens_per_success",
        "cost_per_success",
        "mean_steps",
        "simulated",
    ]
    return out.select(order)
