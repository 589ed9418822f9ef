"""The old framework's ``analysis_utils`` functions, over Polars frames, computed right.

Same names and parameters as FLE 0.4.3's ``fle.eval.analysis.analysis_utils``;
pandas input is accepted, Polars frames come back. Where the old function was
wrong its docstring says what changed. The recurring fixes: success is the
frame's ``success`` column (best reward ≥ task quota) unless a threshold is
given (then ``>=``), never ``reward > 0``; pass@k is the unbiased per-task
estimator (undefined with fewer than k trials); tasks are parsed from
``version_description`` robustly and unparsable rows are kept under their raw
text; a missing column is an error, not an empty result.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from fle_core.analysis.performance import PerformanceAnalyzer, to_polars
from fle_core.errors import MetricError
from fle_core.stats import compare
from fle_core.tasks import parse_version_description


def _require(frame: pl.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MetricError(f"the frame lacks column(s) {missing}", hint=f"columns: {', '.join(frame.columns)}")


def group_results_by_model(df) -> dict[str, pl.DataFrame]:
    """``{model: rows of that model}`` (rows with a null model under ``None``), in first-seen order."""
    frame = to_polars(df)
    _require(frame, "model")
    return {
        key[0]: part for key, part in frame.partition_by("model", as_dict=True, maintain_order=True).items()
    }


def _task_name(text: str | None) -> str | None:
    parsed = parse_version_description(text)
    return parsed.task if parsed.parsed else text


def group_results_by_task(df, task_column: str = "version_description") -> dict[str | None, pl.DataFrame]:
    """``{task: rows}``. From ``version_description`` the task key is parsed robustly
    (``type:``, ``task:``, ``env_id:``, gym ids; rows it cannot parse stay, keyed by
    their raw text, as before); any other ``task_column`` (e.g. ``task``) is used as is."""
    frame = to_polars(df)
    _require(frame, task_column)
    if task_column == "version_description":
        names = [_task_name(t) for t in frame[task_column].cast(pl.String).to_list()]
        frame = frame.with_columns(pl.Series("_task", names, pl.String))
    else:
        frame = frame.with_columns(pl.col(task_column).cast(pl.String).alias("_task"))
    parts = frame.partition_by("_task", as_dict=True, maintain_order=True)
    return {key[0]: part.drop("_task") for key, part in parts.items()}


def calculate_pass_at_k(successes, k_values: Sequence[int]) -> dict[int, float]:
    """``{k: pass@k}`` for one task's trials: the unbiased estimator, NaN when n < k
    (``PerformanceAnalyzer.calculate_pass_at_k``). Apply it per task and average
    over tasks; pooling a model's tasks into one array (as old scripts did) is wrong."""
    return {int(k): PerformanceAnalyzer.calculate_pass_at_k(successes, int(k)) for k in k_values}


def get_trajectory_summary(
    df,
    version_col: str = "version",
    instance_col: str = "instance",
    reward_col: str = "value",
    step_col: str = "depth",
) -> pl.DataFrame:
    """One row per trajectory (``source`` too when present) from step rows.

    Columns: the keys, ``final_reward`` = the value at the last step (highest
    ``step_col``; the old function put the *maximum* here), ``best_reward`` =
    the maximum (the old "final_reward"), ``final_step``, ``num_steps``,
    ``first_positive_reward_step``, ``trajectory_length`` (max − min step + 1),
    ``model``/``version_description`` (most common value, not the first row's)
    and ``total_tokens`` (sum of ``token_usage`` or ``total_tokens``) when present.
    NaN rewards are ignored.
    """
    frame = to_polars(df)
    _require(frame, version_col, instance_col, reward_col, step_col)
    keys = [c for c in ("source",) if c in frame.columns] + [version_col, instance_col]
    reward = pl.col(reward_col).cast(pl.Float64)
    reward = pl.when(reward.is_finite()).then(reward)
    step = pl.col(step_col).cast(pl.Float64)
    aggs = [
        reward.sort_by(step, nulls_last=False).drop_nulls().last().alias("final_reward"),
        reward.max().alias("best_reward"),
        step.max().alias("final_step"),
        pl.len().alias("num_steps"),
        step.filter(reward > 0).min().alias("first_positive_reward_step"),
        (step.max() - step.min() + 1).alias("trajectory_length"),
    ]
    for col in ("model", "version_description"):
        if col in frame.columns:
            aggs.append(pl.col(col).drop_nulls().mode().sort().first().alias(col))
    tokens = next((c for c in ("token_usage", "total_tokens") if c in frame.columns), None)
    if tokens:
        aggs.append(pl.col(tokens).fill_null(0).sum().alias("total_tokens"))
    return frame.group_by(keys).agg(aggs).sort(keys, nulls_last=False)


def extract_task_metadata(version_description: str | None) -> dict[str, Any]:
    """The ``key: value`` lines of a ``version_description`` (as the old function), plus
    ``task_type`` / ``model_name`` and ``task`` (the registry key, parsed robustly,
    None when it cannot be found); ``num_agents`` as an int when it is one."""
    if not version_description:
        return {}
    metadata: dict[str, Any] = {}
    for line in str(version_description).split("\n"):
        if ":" in line:
            key, value = line.split(":", 1)
            metadata[key.strip()] = value.strip()
    if "type" in metadata:
        metadata["task_type"] = metadata["type"]
    if "model" in metadata:
        metadata["model_name"] = metadata["model"]
    parsed = parse_version_description(version_description)
    metadata["task"] = parsed.task
    if "num_agents" in metadata:
        with contextlib.suppress(ValueError):
            metadata["num_agents"] = int(metadata["num_agents"])
    return metadata


def _success(frame: pl.DataFrame, reward_col: str, success_threshold: float | None) -> pl.Expr:
    if success_threshold is not None:
        return pl.col(reward_col).cast(pl.Float64) >= float(success_threshold)
    if "success" in frame.columns:
        return pl.col("success").cast(pl.Boolean)
    raise MetricError(
        "the frame has no success column", hint="pass success_threshold=..., or use load_summaries() output"
    )


def _clean(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def calculate_efficiency_metrics(
    df,
    success_threshold: float | None = None,
    reward_col: str = "best_reward",
    token_col: str = "total_tokens",
    time_col: str | None = None,
) -> dict[str, float | None]:
    """Token, time and reward efficiency of trajectories (old keys, plus ``tokens_per_success``).

    Success: the ``success`` column, or ``reward_col >= success_threshold``
    (the old default was ``reward > 0``). ``mean_tokens_successful`` is the
    mean tokens of successful trajectories (the old meaning);
    ``tokens_per_success`` = total tokens of *all* trajectories ÷ successes,
    the cost of one success. ``reward_std`` uses ddof = 1;
    ``reward_efficiency`` = mean / sd (None when sd is 0 or undefined, not 0).
    Empty input gives ``{}``.
    """
    frame = to_polars(df)
    if frame.height == 0:
        return {}
    _require(frame, reward_col)
    frame = frame.with_columns(_success(frame, reward_col, success_threshold).fill_null(False).alias("_ok"))
    out: dict[str, float | None] = {}
    ok = frame.filter(pl.col("_ok"))
    if token_col in frame.columns:
        tok = frame[token_col].cast(pl.Float64)
        out["mean_tokens_all"], out["median_tokens_all"] = _clean(tok.mean()), _clean(tok.median())
        if ok.height:
            good = ok[token_col].cast(pl.Float64)
            out["mean_tokens_successful"], out["median_tokens_successful"] = (
                _clean(good.mean()),
                _clean(good.median()),
            )
            ratio = out["mean_tokens_successful"], out["mean_tokens_all"]
            out["token_efficiency_ratio"] = ratio[0] / ratio[1] if ratio[0] is not None and ratio[1] else None
        out["tokens_per_success"] = float(tok.fill_null(0).sum()) / ok.height if ok.height else None
    if time_col and time_col in frame.columns:
        t = frame[time_col].cast(pl.Float64)
        out["mean_time_all"], out["median_time_all"] = _clean(t.mean()), _clean(t.median())
        if ok.height:
            good_t = ok[time_col].cast(pl.Float64)
            out["mean_time_successful"], out["median_time_successful"] = (
                _clean(good_t.mean()),
                _clean(good_t.median()),
            )
    r = frame[reward_col].cast(pl.Float64)
    out["mean_reward"], out["reward_std"] = _clean(r.mean()), _clean(r.std(ddof=1))
    sd = out["reward_std"]
    out["reward_efficiency"] = out["mean_reward"] / sd if sd and out["mean_reward"] is not None else None
    return out


def find_performance_outliers(
    df, metric_col: str = "best_reward", method: str = "iqr", threshold: float = 1.5
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(outliers, normal)``: rows outside ``[Q1 − t·IQR, Q3 + t·IQR]`` (``iqr``) or with
    ``|z| > t`` (``zscore``, sd with ddof = 1). Rows with a null/NaN value are in
    ``normal`` (they are not outliers), so the two frames hold every row. A
    missing column is an error (the old function returned every row as normal)."""
    frame = to_polars(df)
    if frame.height == 0:
        return frame.clear(), frame
    _require(frame, metric_col)
    x = pl.col(metric_col).cast(pl.Float64)
    x = pl.when(x.is_finite()).then(x)
    if method == "iqr":
        q1, q3 = frame.select(x.quantile(0.25, "linear"), x.quantile(0.75, "linear").alias("q3")).row(0)
        if q1 is None:
            return frame.clear(), frame
        iqr = q3 - q1
        mask = (x < q1 - threshold * iqr) | (x > q3 + threshold * iqr)
    elif method == "zscore":
        mean, sd = frame.select(x.mean(), x.std(ddof=1).alias("sd")).row(0)
        if not sd:
            return frame.clear(), frame
        mask = ((x - mean) / sd).abs() > threshold
    else:
        raise MetricError(f"unknown outlier method {method!r}", hint="use 'iqr' or 'zscore'")
    flagged = frame.with_columns(mask.fill_null(False).alias("_out"))
    return flagged.filter(pl.col("_out")).drop("_out"), flagged.filter(~pl.col("_out")).drop("_out")


_PANDAS_UNITS = {
    "H": "h",
    "T": "m",
    "MIN": "m",
    "S": "s",
    "D": "d",
    "W": "w",
    "L": "ms",
    "MS": "ms",
    "U": "us",
}


def _polars_every(window: str) -> str:
    """A pandas offset alias (``1H``, ``30T``, ``15min``, ``1D``) as a Polars duration."""
    m = re.fullmatch(r"\s*(\d*)\s*([A-Za-z]+)\s*", window)
    if not m:
        raise MetricError(f"cannot read the time window {window!r}", hint="use e.g. '1h', '30m' or '1d'")
    unit = _PANDAS_UNITS.get(m.group(2).upper(), m.group(2).lower())
    if unit not in {"ns", "us", "ms", "s", "m", "h", "d", "w"}:
        raise MetricError(f"cannot read the time window {window!r}", hint="use e.g. '1h', '30m' or '1d'")
    return f"{m.group(1) or 1}{unit}"


def aggregate_results_by_time(
    df, time_col: str = "created_at", metric_col: str = "best_reward", window: str = "1H"
) -> pl.DataFrame:
    """Trajectories per time window: ``timestamp, num_trajectories, mean_reward,
    std_reward, min_reward, max_reward, median_reward, success_rate``.

    ``window`` is a Polars duration or a pandas alias (``1H``, ``30T``).
    ``time_col`` falls back to ``started_at`` (the summaries' start time) when
    the frame has no ``created_at``.
    ``success_rate`` is the share of the window's scored trajectories whose
    ``success`` is true (null without a ``success`` column; the old function
    counted ``reward > 0`` and reported 0 for empty windows). Only windows
    that hold trajectories are listed.
    """
    frame = to_polars(df)
    if frame.height == 0:
        return pl.DataFrame()
    if time_col == "created_at" and time_col not in frame.columns and "started_at" in frame.columns:
        time_col = "started_at"
    _require(frame, time_col, metric_col)
    time = pl.col(time_col)
    if frame.schema[time_col] == pl.String:
        time = time.str.to_datetime()
    x = pl.col(metric_col).cast(pl.Float64)
    success = (
        pl.col("success").cast(pl.Float64).mean() if "success" in frame.columns else pl.lit(None, pl.Float64)
    )
    work = (
        frame.with_columns(time.alias("timestamp"))
        .filter(pl.col("timestamp").is_not_null())
        .sort("timestamp")
    )
    return work.group_by_dynamic("timestamp", every=_polars_every(window)).agg(
        pl.len().alias("num_trajectories"),
        x.mean().alias("mean_reward"),
        x.std(ddof=1).alias("std_reward"),
        x.min().alias("min_reward"),
        x.max().alias("max_reward"),
        x.median().alias("median_reward"),
        success.alias("success_rate"),
    )


_OLD_TESTS = {"mannwhitney": "Mann-Whitney U", "ttest": "Welch's t-test", "ks": "Kolmogorov-Smirnov"}


def _two_sample(a: np.ndarray, b: np.ndarray, test_type: str) -> tuple[float | None, float | None]:
    if test_type == "mannwhitney":
        if np.ptp(np.concatenate([a, b])) == 0:
            return None, 1.0
        res = stats.mannwhitneyu(a, b, alternative="two-sided")
    elif test_type == "ttest":
        if min(a.size, b.size) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
            return None, (1.0 if np.ptp(np.concatenate([a, b])) == 0 and min(a.size, b.size) >= 2 else None)
        res = stats.ttest_ind(a, b, equal_var=False)
    else:
        res = stats.ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def compare_model_performance_statistical(
    results_dict: Mapping[str, Any],
    metric_col: str = "best_reward",
    test_type: str = "mannwhitney",
    correction: str = "holm",
) -> pl.DataFrame:
    """Every model pair (i < j): ``model1, model2, n1, n2, mean1, mean2, std1, std2,
    difference, test, statistic, p_value, p_adjusted, correction, significant_05,
    significant_01``.

    ``test_type``: ``mannwhitney``, ``ttest`` or ``ks``. Fixed: ``ttest`` is
    Welch's t (the old one assumed equal variances), p-values are corrected
    over the pairs (``holm`` by default; ``bh`` or ``none``) and the
    ``significant_*`` flags use the adjusted p (the old ones used raw p with
    no correction); sds use ddof = 1; an undefined test gives a null p rather
    than an ``error`` column. Pooled over tasks: for per-task, paired
    comparisons use ``stats.compare.pairwise_comparisons``.
    """
    if test_type not in _OLD_TESTS:
        raise MetricError(f"unknown test type {test_type!r}", hint="use 'mannwhitney', 'ttest' or 'ks'")
    values = {}
    for model, frame in results_dict.items():
        frame = to_polars(frame)
        _require(frame, metric_col)
        x = frame[metric_col].cast(pl.Float64).to_numpy()
        values[model] = x[np.isfinite(x)]
    rows = []
    names = list(values)
    for i, m1 in enumerate(names):
        for m2 in names[i + 1 :]:
            a, b = values[m1], values[m2]
            if a.size == 0 or b.size == 0:
                continue
            stat, p = _two_sample(a, b, test_type)
            rows.append(
                {
                    "model1": m1,
                    "model2": m2,
                    "n1": a.size,
                    "n2": b.size,
                    "mean1": float(a.mean()),
                    "mean2": float(b.mean()),
                    "std1": float(a.std(ddof=1)) if a.size > 1 else None,
                    "std2": float(b.std(ddof=1)) if b.size > 1 else None,
                    "difference": float(a.mean() - b.mean()),
                    "test": _OLD_TESTS[test_type],
                    "statistic": stat,
                    "p_value": p,
                }
            )
    adjusted = compare.adjust_pvalues(
        [np.nan if r["p_value"] is None else r["p_value"] for r in rows], correction
    )
    for r, pa in zip(rows, adjusted, strict=True):
        r["p_adjusted"] = None if not np.isfinite(pa) else float(pa)
        r["correction"] = compare.CORRECTIONS[
            correction.lower() if isinstance(correction, str) else correction
        ]
        r["significant_05"] = r["p_adjusted"] is not None and r["p_adjusted"] < 0.05
        r["significant_01"] = r["p_adjusted"] is not None and r["p_adjusted"] < 0.01
    schema = {"model1": pl.String, "model2": pl.String, "n1": pl.Int64, "n2": pl.Int64, "mean1": pl.Float64,
              "mean2": pl.Float64, "std1": pl.Float64, "std2": pl.Float64, "difference": pl.Float64,
              "test": pl.String, "statistic": pl.Float64, "p_value": pl.Float64, "p_adjusted": pl.Float64,
              "correction": pl.String, "significant_05": pl.Boolean, "significant_01": pl.Boolean}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def create_leaderboard(
    results_dict: Mapping[str, Any],
    primary_metric: str = "success_rate",
    secondary_metrics: Sequence[str] | None = None,
) -> pl.DataFrame:
    """``rank, model, <primary>, <secondaries>, rank_score``, best first.

    Ranked by ``primary_metric`` (descending; ties share the best rank, and
    undefined values come last), then by the secondary metrics in order.
    Fixed: ``rank_score`` is the primary metric itself — the old score added
    0.3·mean_reward + 0.2·pass@1 to it, mixing reward units with rates — and a
    missing metric is null, not 0.
    """
    secondary = list(secondary_metrics or ["mean_reward", "pass_at_1", "num_trajectories"])
    rows = []
    for model, results in results_dict.items():
        data = dict(results.to_dict() if hasattr(results, "to_dict") else results)
        row = {"model": model, primary_metric: data.get(primary_metric)}
        row.update({m: data.get(m) for m in secondary if m != primary_metric})
        rows.append(row)
    frame = pl.DataFrame(rows, strict=False)
    if frame.height == 0:
        return pl.DataFrame(schema={"rank": pl.Int64, "model": pl.String, primary_metric: pl.Float64})
    order = [primary_metric, *[m for m in secondary if m != primary_metric]]
    numeric = [c for c in order if frame.schema[c].is_numeric()]
    frame = frame.sort(numeric, descending=True, nulls_last=True, maintain_order=True) if numeric else frame
    rank = pl.col(primary_metric).rank("min", descending=True).cast(pl.Int64)
    if primary_metric in numeric:
        frame = frame.with_columns(rank.alias("rank"), pl.col(primary_metric).alias("rank_score"))
    else:
        frame = frame.with_columns(
            pl.int_range(1, pl.len() + 1).alias("rank"), pl.lit(None).alias("rank_score")
        )
    return frame.select("rank", "model", *order, "rank_score")
