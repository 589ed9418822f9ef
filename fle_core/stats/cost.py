"""What a success costs in dollars, with its interval, and who is on the cost–success frontier.

HAL (Princeton) reports agents on a dollar cost–accuracy Pareto frontier; this
module gives the numbers behind that view (docs/metrics.md §4a):

* ``apply_prices``: a trajectory's dollar cost is what its Inspect log records
  (``ModelUsage.total_cost``, ``cost_source = "log"``), else its tokens × the
  price table in ``config.toml`` (``[prices."<model>"]`` input/output USD per
  million tokens, ``cost_source = "price table"``), else unknown (null);
* ``cost_estimates``: per system, **cost per success** = Σ cost of the scored
  trajectories ÷ successes (failed runs are paid for too), with a two-stage
  cluster-bootstrap interval (``population="tasks"``) or a stratified one;
* ``frontier``: success rate and cost per success per system, whether the point
  estimate is on the Pareto frontier (no other system has a higher-or-equal rate
  at a lower-or-equal cost, better on one), and the **share of bootstrap
  resamples in which it is on the frontier**. Tasks are drawn once per replicate
  for every system (the systems ran the same tasks), runs within tasks per system.

Pure: frames in, frames out; the bootstrap takes a seed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from fle_core.errors import MetricError
from fle_core.stats._resample import DEFAULT_CONFIDENCE, _rng, percentile_interval
from fle_core.stats.clustered import DEFAULT_POPULATION, check_population

USD = "USD"
TOKENS = "tokens"
PRICE_KEYS = ("input", "output")
_BLOCK_ELEMENTS = 4_000_000


# ------------------------------------------------------------------ prices ---
def check_prices(prices: Mapping | None) -> dict[str, tuple[float, float]]:
    """``{model: (input, output)}`` USD per million tokens from a ``[prices]`` table.

    Each entry needs both ``input`` and ``output`` as non-negative numbers; anything
    else raises ``MetricError`` naming the model, so a typo never prices at 0.
    """
    out: dict[str, tuple[float, float]] = {}
    for model, entry in (prices or {}).items():
        if not isinstance(entry, Mapping):
            raise MetricError(
                f"[prices.{model!r}] must be a table",
                hint='e.g. [prices."openai/gpt-4o"] input = 2.5, output = 10',
            )
        bad = [k for k in entry if k not in PRICE_KEYS]
        if bad:
            raise MetricError(f"[prices.{model!r}] has unknown key(s) {bad}", hint="use input and output")
        vals = []
        for key in PRICE_KEYS:
            v = entry.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise MetricError(
                    f"[prices.{model!r}] {key} must be a non-negative number (USD per million tokens), got {v!r}"
                )
            vals.append(float(v))
        out[str(model)] = (vals[0], vals[1])
    return out


def apply_prices(summaries: pl.DataFrame, prices: Mapping | None) -> pl.DataFrame:
    """Fill ``cost_usd`` from the price table where the log recorded no cost.

    A trajectory keeps a cost its log recorded (``cost_source = "log"``). Otherwise,
    if its model (``base_model`` when systems are labelled, else ``model``) has a
    price, ``cost_usd = prompt_tokens × input / 1e6 + completion_tokens × output /
    1e6`` and ``cost_source = "price table"``. Otherwise both stay null. Adds the
    two columns when missing; every other column is unchanged.
    """
    table = check_prices(prices)
    out = summaries
    if "cost_usd" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.Float64).alias("cost_usd"))
    if "cost_source" not in out.columns:
        out = out.with_columns(
            pl.when(pl.col("cost_usd").is_not_null()).then(pl.lit("log")).otherwise(None).alias("cost_source")
        )
    if not table or out.is_empty():
        return out
    who = "base_model" if "base_model" in out.columns else "model"
    inp = pl.col(who).replace_strict(
        {m: p[0] for m, p in table.items()}, default=None, return_dtype=pl.Float64
    )
    outp = pl.col(who).replace_strict(
        {m: p[1] for m, p in table.items()}, default=None, return_dtype=pl.Float64
    )
    tok_in = (
        pl.col("prompt_tokens").cast(pl.Float64).fill_null(0.0) if "prompt_tokens" in out.columns else 0.0
    )
    tok_out = (
        pl.col("completion_tokens").cast(pl.Float64).fill_null(0.0)
        if "completion_tokens" in out.columns
        else 0.0
    )
    priced = (tok_in * inp + tok_out * outp) / 1e6
    fill = pl.col("cost_usd").is_null() & inp.is_not_null()
    return out.with_columns(
        pl.when(fill).then(priced).otherwise(pl.col("cost_usd")).alias("cost_usd"),
        pl.when(fill).then(pl.lit("price table")).otherwise(pl.col("cost_source")).alias("cost_source"),
    )


def cost_unit(summaries: pl.DataFrame) -> tuple[str, str]:
    """``("cost_usd", "USD")`` when every scored trajectory has a dollar cost, else
    ``("total_tokens", "tokens")``: the unit a cost view can honestly use."""
    if "cost_usd" in summaries.columns and "success" in summaries.columns:
        scored = summaries.filter(pl.col("success").is_not_null())
        if scored.height and scored["cost_usd"].is_not_null().all():
            return "cost_usd", USD
    return "total_tokens", TOKENS


# --------------------------------------------------------------- bootstrap ---
def _seed(seed, *names: str) -> list[int]:
    base = [int(s) for s in np.atleast_1d(seed)] if seed is not None else []
    return base + [zlib.crc32(str(n).encode()) for n in names]


def _system_arrays(summaries: pl.DataFrame, cost_column: str):
    """{model: (tasks, success (T, R) padded with 0, cost (T, R), n per task)} over scored runs."""
    frame = (
        summaries.filter(pl.col("success").is_not_null() & pl.col("model").is_not_null())
        .select(
            "model",
            "task",
            pl.col("success").cast(pl.Float64),
            pl.col(cost_column).cast(pl.Float64).alias("_c"),
        )
        .group_by("model", "task")
        .agg("success", "_c")
        .sort("model", "task", nulls_last=True)
    )
    out: dict[str, tuple[list, np.ndarray, np.ndarray, np.ndarray]] = {}
    for (model,), g in frame.group_by("model", maintain_order=True):
        tasks = g["task"].to_list()
        n = np.array([len(x) for x in g["success"]], dtype=np.int64)
        r = int(n.max())
        s = np.zeros((len(tasks), r))
        c = np.zeros((len(tasks), r))
        for j, (xs, cs) in enumerate(zip(g["success"], g["_c"], strict=True)):
            s[j, : len(xs)] = xs
            c[j, : len(cs)] = np.asarray(cs, dtype=np.float64)
        out[str(model)] = (tasks, s, c, n)
    return out


def _replicates(
    arrays, task_idx: np.ndarray | None, reps: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per replicate: (trials drawn, successes drawn, cost drawn) for one system.

    ``task_idx`` (reps, slots) holds the system's own task index per drawn slot, −1
    where it did not run the drawn task (that slot is skipped); None = stratified
    (every task once, runs resampled within it).
    """
    _, s, c, n = arrays
    t_count, r_max = s.shape
    if task_idx is None:
        task_idx = np.broadcast_to(np.arange(t_count), (reps, t_count))
    slots = task_idx.shape[1]
    trials, wins, spent = np.zeros(reps), np.zeros(reps), np.zeros(reps)
    block = max(1, _BLOCK_ELEMENTS // max(1, slots * r_max))
    flat_s, flat_c = s.ravel(), c.ravel()
    runs = np.arange(r_max)
    for start in range(0, reps, block):
        tid = task_idx[start : start + block]
        valid_slot = tid >= 0
        t_safe = np.where(valid_slot, tid, 0)
        n_sel = np.where(valid_slot, n[t_safe], 0)
        u = rng.random((tid.shape[0], slots, r_max), dtype=np.float32)
        idx = np.minimum(
            (u * n_sel[..., None].astype(np.float32)).astype(np.int64), np.maximum(n_sel - 1, 0)[..., None]
        )
        keep = runs[None, None, :] < n_sel[..., None]
        flat = idx + (t_safe * r_max)[..., None]
        sl = slice(start, start + tid.shape[0])
        trials[sl] = n_sel.sum(axis=1)
        wins[sl] = np.where(keep, flat_s[flat], 0.0).sum(axis=(1, 2))
        spent[sl] = np.where(keep, flat_c[flat], 0.0).sum(axis=(1, 2))
    return trials, wins, spent


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)


def _interval(reps: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Percentile interval; the upper bound is unbounded (None) when the replicates that
    had no success reach into the upper tail."""
    lo, hi = percentile_interval(np.where(np.isfinite(reps), reps, np.inf), confidence)
    return (float(lo) if np.isfinite(lo) else None), (float(hi) if np.isfinite(hi) else None)


COST_SCHEMA: dict[str, type[pl.DataType]] = {
    "model": pl.String,
    "unit": pl.String,
    "n": pl.Int64,
    "successes": pl.Int64,
    "total_cost": pl.Float64,
    "cost_per_run": pl.Float64,
    "cost_per_success": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "unpriced": pl.Int64,
    "population": pl.String,
}


def cost_estimates(
    summaries: pl.DataFrame,
    cost_column: str = "cost_usd",
    reps: int = 2000,
    seed=0,
    *,
    population: str = DEFAULT_POPULATION,
    confidence: float = DEFAULT_CONFIDENCE,
) -> pl.DataFrame:
    """Per system: cost per success = Σ ``cost_column`` over scored trajectories ÷ successes,
    with a bootstrap interval (two-stage cluster for ``"tasks"``, stratified for ``"suite"``).

    ``unit`` is ``USD`` for ``cost_usd`` and ``tokens`` for token columns. A system
    with any scored trajectory whose cost is unknown gets null figures (``unpriced``
    says how many), never a cost that silently leaves runs out. Null without a
    success; the upper bound is null (unbounded) when resamples without a success
    reach the upper tail. Columns: ``COST_SCHEMA``.
    """
    pop = check_population(population)
    for col in ("model", "task", "success", cost_column):
        if col not in summaries.columns:
            raise MetricError(f"summaries frame lacks column {col!r}")
    unit = USD if cost_column == "cost_usd" else TOKENS
    rows = []
    for model, arrays in _system_arrays(summaries, cost_column).items():
        _, s, c, n = arrays
        keep = np.arange(s.shape[1])[None, :] < n[:, None]
        unpriced = int((keep & np.isnan(c)).sum())
        total_n, wins = int(n.sum()), int(s[keep].sum())
        row = dict.fromkeys(COST_SCHEMA)
        row.update(model=model, unit=unit, n=total_n, successes=wins, unpriced=unpriced, population=pop)
        if unpriced == 0:
            spent = float(c[keep].sum())
            row.update(total_cost=spent, cost_per_run=spent / total_n)
            if wins > 0:
                rng = _rng(_seed(seed, model, "cost"))
                idx = rng.integers(0, s.shape[0], size=(reps, s.shape[0])) if pop == "tasks" else None
                _, w, q = _replicates(arrays, idx, reps, rng)
                lo, hi = _interval(_ratio(q, w), confidence)
                row.update(cost_per_success=spent / wins, ci_low=lo, ci_high=hi)
        rows.append(row)
    return pl.DataFrame(rows, schema=COST_SCHEMA, orient="row")


# ------------------------------------------------------------------ frontier ---
def pareto_mask(rate, cost) -> np.ndarray:
    """Which points no other point dominates (higher-or-equal rate at a lower-or-equal
    cost, strictly better on one), over the last axis. Points with a non-finite rate or
    cost (no success: infinite cost per success) are never on it and dominate nothing.
    Identical points are all on it. Broadcasts over leading axes (one row per replicate).
    """
    r = np.asarray(rate, float)
    c = np.asarray(cost, float)
    ok = np.isfinite(r) & np.isfinite(c)
    ri, rj = r[..., :, None], r[..., None, :]
    ci, cj = c[..., :, None], c[..., None, :]
    dominates = (rj >= ri) & (cj <= ci) & ((rj > ri) | (cj < ci)) & ok[..., None, :]
    return ok & ~dominates.any(axis=-1)


FRONTIER_SCHEMA: dict[str, type[pl.DataType]] = {
    "model": pl.String,
    "unit": pl.String,
    "success_rate": pl.Float64,
    "rate_ci_low": pl.Float64,
    "rate_ci_high": pl.Float64,
    "cost_per_success": pl.Float64,
    "cost_ci_low": pl.Float64,
    "cost_ci_high": pl.Float64,
    "on_frontier": pl.Boolean,
    "frontier_share": pl.Float64,
    "n": pl.Int64,
    "successes": pl.Int64,
}


def frontier(
    summaries: pl.DataFrame,
    cost_column: str = "cost_usd",
    reps: int = 2000,
    seed=0,
    *,
    population: str = DEFAULT_POPULATION,
    confidence: float = DEFAULT_CONFIDENCE,
    models: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Cost–success Pareto frontier with uncertainty, one row per system.

    Success rate (pooled) and cost per success (``cost_estimates``' definition) with
    percentile intervals from one joint bootstrap: per replicate the task slots are
    drawn once over all systems' tasks (``population="tasks"``; a system skips slots
    of tasks it did not run) and each system's runs are resampled within the drawn
    tasks (``"suite"``: every task once). ``frontier_share`` = the share of replicates
    in which the system is on the frontier (``pareto_mask``). Systems whose cost is
    unknown for some scored run (``cost_estimates``' ``unpriced``) are left out, as
    are systems without a success in the data (never on the frontier).
    """
    pop = check_population(population)
    arrays = _system_arrays(summaries, cost_column)
    if models is not None:
        arrays = {m: a for m, a in arrays.items() if m in set(models)}
    arrays = {
        m: a
        for m, a in arrays.items()
        if not np.isnan(a[2][np.arange(a[2].shape[1])[None, :] < a[3][:, None]]).any() and a[1].sum() > 0
    }
    if not arrays:
        return pl.DataFrame(schema=FRONTIER_SCHEMA)
    names = list(arrays)
    all_tasks = sorted({t for a in arrays.values() for t in a[0]}, key=str)
    rng = _rng(_seed(seed, "frontier"))
    shared = rng.integers(0, len(all_tasks), size=(reps, len(all_tasks))) if pop == "tasks" else None
    rates, costs = np.empty((reps, len(names))), np.empty((reps, len(names)))
    points = []
    for i, m in enumerate(names):
        tasks, s, c, n = arrays[m]
        idx = None
        if shared is not None:
            pos = {t: j for j, t in enumerate(tasks)}
            lookup = np.array([pos.get(t, -1) for t in all_tasks])
            idx = lookup[shared]
        trials, wins, spent = _replicates(arrays[m], idx, reps, _rng(_seed(seed, m, "frontier")))
        rates[:, i] = _ratio(wins, trials)
        costs[:, i] = _ratio(spent, wins)
        keep = np.arange(s.shape[1])[None, :] < n[:, None]
        total_w = float(s[keep].sum())
        points.append((total_w / n.sum(), float(c[keep].sum()) / total_w, int(n.sum()), int(total_w)))
    on = pareto_mask(np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    share = pareto_mask(rates, costs).mean(axis=0)
    unit = USD if cost_column == "cost_usd" else TOKENS
    rows = []
    for i, m in enumerate(names):
        r_lo, r_hi = _interval(np.where(np.isfinite(rates[:, i]), rates[:, i], np.nan), confidence)
        c_lo, c_hi = _interval(costs[:, i], confidence)
        rows.append(
            {
                "model": m,
                "unit": unit,
                "success_rate": points[i][0],
                "rate_ci_low": r_lo,
                "rate_ci_high": r_hi,
                "cost_per_success": points[i][1],
                "cost_ci_low": c_lo,
                "cost_ci_high": c_hi,
                "on_frontier": bool(on[i]),
                "frontier_share": float(share[i]),
                "n": points[i][2],
                "successes": points[i][3],
            }
        )
    return pl.DataFrame(rows, schema=FRONTIER_SCHEMA, orient="row")
