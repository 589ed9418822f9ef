"""Variance you can plan with: where a system's uncertainty comes from, and what fixes it.

Per system (``model``, grouped as ``analysis.label_systems`` labels it), over its
tasks × epochs (docs/metrics.md §8a):

* **between-task variance** σ²_b and **within-task variance** σ²_w from the one-way
  random-effects ANOVA (``MSB``, ``MSW``, ``k0``; σ²_b truncated at 0);
* the **intraclass correlation** ICC = σ²_b / (σ²_b + σ²_w): how much of the
  spread of outcomes is which task it was rather than which epoch;
* the **design effect**: the task-clustered variance of the suite mean divided by
  the variance the same number of independent trials would give (s²/n): how many
  times wider than a pooled interval the honest one is, squared;
* the **flip rate**: the share of tasks (with ≥ 2 epochs) whose outcome differs
  across epochs.

The **planner** uses the variance of a suite mean over T tasks × k epochs,
``σ²_b/T + σ²_w/(T·k)``: adding epochs only shrinks the second term, so a
target below the between-task floor ``z·σ_b/√T`` needs more tasks, whatever
the epochs. ``plan`` says, for a target interval half-width or a difference to
detect, how many epochs (tasks fixed) or how many tasks (epochs fixed) it takes.

Pure: frames in, frames out; no randomness.
"""

from __future__ import annotations

import math

import polars as pl
from scipy import stats

from fle_core.errors import MetricError
from fle_core.stats.clustered import suite_moments

VARIANCE_SCHEMA: dict[str, type[pl.DataType]] = {
    "model": pl.String,
    "n": pl.Int64,
    "n_tasks": pl.Int64,
    "epochs": pl.Float64,
    "mean": pl.Float64,
    "var_between": pl.Float64,
    "var_within": pl.Float64,
    "icc": pl.Float64,
    "design_effect": pl.Float64,
    "flip_rate": pl.Float64,
    "tasks_flipping": pl.Int64,
}


def variance_components(summaries: pl.DataFrame, column: str = "success") -> pl.DataFrame:
    """Per model: ``n, n_tasks, epochs`` (mean trials per task), ``mean`` (pooled),
    ``var_between`` (σ²_b, truncated at 0), ``var_within`` (σ²_w = MSW), ``icc``,
    ``design_effect`` (task-clustered variance of the mean ÷ s²/n), ``flip_rate``
    and ``tasks_flipping`` (tasks with ≥ 2 trials whose outcomes are not all equal).

    One-way random-effects ANOVA with unequal task sizes: ``MSB = Σ n_t (ȳ_t − ȳ)²
    / (T − 1)``, ``MSW = Σ Σ (y − ȳ_t)² / (N − T)``, ``k0 = (N − Σ n_t²/N) / (T − 1)``,
    ``σ²_b = max(0, (MSB − MSW) / k0)``. Null where undefined: one task (no
    between-task variance), no task with two trials (no within-task variance).
    Non-finite values are left out; success is read as 0/1.
    """
    for c in ("model", "task", column):
        if c not in summaries.columns:
            raise MetricError(f"summaries frame lacks column {c!r}")
    x = pl.col(column).cast(pl.Float64)
    cells = (
        summaries.select("model", "task", x.alias("_x"))
        .filter(pl.col("_x").is_finite())
        .group_by("model", "task")
        .agg(
            pl.len().cast(pl.Float64).alias("_n"),
            pl.col("_x").mean().alias("_m"),
            ((pl.col("_x") - pl.col("_x").mean()) ** 2).sum().alias("_ssw"),
            (pl.col("_x").max() != pl.col("_x").min()).alias("_flip"),
        )
    )
    per = cells.group_by("model").agg(
        pl.col("_n").sum().alias("_N"),
        (pl.col("_n") * pl.col("_m")).sum().alias("_S"),
        (pl.col("_n") ** 2).sum().alias("_n2"),
        pl.col("_ssw").sum().alias("_ssw"),
        pl.len().cast(pl.Float64).alias("_T"),
        (pl.col("_n") >= 2).sum().alias("_multi"),
        (pl.col("_flip") & (pl.col("_n") >= 2)).sum().alias("tasks_flipping"),
    )
    cells = cells.join(per.select("model", "_N", "_S"), on="model", nulls_equal=True)
    ssb = (
        cells.with_columns((pl.col("_n") * (pl.col("_m") - pl.col("_S") / pl.col("_N")) ** 2).alias("_b"))
        .group_by("model")
        .agg(pl.col("_b").sum().alias("_ssb"))
    )
    per = per.join(ssb, on="model", nulls_equal=True)
    t, n_all = pl.col("_T"), pl.col("_N")
    msb = pl.when(t >= 2).then(pl.col("_ssb") / (t - 1))
    msw = pl.when(n_all > t).then(pl.col("_ssw") / (n_all - t))
    k0 = pl.when(t >= 2).then((n_all - pl.col("_n2") / n_all) / (t - 1))
    between = pl.max_horizontal((msb - msw) / k0, pl.lit(0.0))
    out = per.with_columns(msw.alias("var_within"), pl.when(t >= 2).then(between).alias("var_between"))
    total = pl.col("var_between") + pl.col("var_within")
    out = out.with_columns(
        pl.when(total > 0).then(pl.col("var_between") / total).alias("icc"),
        pl.when(pl.col("_multi") > 0).then(pl.col("tasks_flipping") / pl.col("_multi")).alias("flip_rate"),
    )
    mom = suite_moments(summaries, column).select("model", "var_tasks")
    sample_var = (
        summaries.select("model", x.alias("_x"))
        .filter(pl.col("_x").is_finite())
        .group_by("model")
        .agg((pl.col("_x").var(ddof=1) / pl.len()).alias("_srs"))
    )
    out = out.join(mom, on="model", nulls_equal=True).join(sample_var, on="model", nulls_equal=True)
    out = out.with_columns(
        pl.when(pl.col("_srs") > 0).then(pl.col("var_tasks") / pl.col("_srs")).alias("design_effect"),
        (pl.col("_N") / t).alias("epochs"),
        (pl.col("_S") / pl.col("_N")).alias("mean"),
        pl.col("_N").cast(pl.Int64).alias("n"),
        t.cast(pl.Int64).alias("n_tasks"),
    )
    return (
        out.select([pl.col(c).cast(d) for c, d in VARIANCE_SCHEMA.items()])
        .with_columns(pl.col(pl.Float64).fill_nan(None))
        .sort("model", nulls_last=True)
    )


# ------------------------------------------------------------------ planner ---
def suite_variance(var_between: float, var_within: float, tasks: float, epochs: float) -> float:
    """Variance of a suite mean over ``tasks`` × ``epochs`` (tasks as a sample):
    ``σ²_b/T + σ²_w/(T·k)``."""
    return var_between / tasks + var_within / (tasks * epochs)


def epochs_needed(var_between: float, var_within: float, tasks: int, target_se: float) -> float:
    """Epochs per task for the suite mean's SE to reach ``target_se`` with ``tasks`` fixed.

    ``k = σ²_w / (T·se² − σ²_b)``, rounded up; ``inf`` when ``T·se² ≤ σ²_b``: the
    between-task variance alone exceeds the target, and only more tasks help.
    """
    _check_plan(var_between, var_within, target_se)
    room = tasks * target_se * target_se - var_between
    if room <= 0:
        return math.inf
    return float(max(1, math.ceil(var_within / room - 1e-9)))


def tasks_needed(var_between: float, var_within: float, epochs: float, target_se: float) -> float:
    """Tasks for the suite mean's SE to reach ``target_se`` with ``epochs`` per task fixed:
    ``T = (σ²_b + σ²_w/k) / se²``, rounded up."""
    _check_plan(var_between, var_within, target_se)
    return float(max(1, math.ceil((var_between + var_within / epochs) / (target_se * target_se) - 1e-9)))


def _check_plan(var_between: float, var_within: float, target_se: float) -> None:
    if not (target_se > 0 and math.isfinite(target_se)):
        raise MetricError(f"the target must be a positive number, got {target_se}")
    if not (var_between >= 0 and var_within >= 0):
        raise MetricError("variance components must be known and non-negative")


def target_se(
    *,
    half_width: float | None = None,
    difference: float | None = None,
    confidence: float = 0.95,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The standard error a plan must reach: ``h / z_{(1+c)/2}`` for an interval
    half-width h, or ``Δ / (z_{1−α/2} + z_{power})`` to detect a difference Δ with a
    two-sided test at level α with that power (normal approximation). For a
    difference this is the SE of the *difference*; see ``plan``."""
    if (half_width is None) == (difference is None):
        raise MetricError("give exactly one target: half_width or difference")
    if half_width is not None:
        if not 0 < confidence < 1:
            raise MetricError(f"confidence must be in (0, 1), got {confidence}")
        return float(half_width) / float(stats.norm.ppf(0.5 + confidence / 2))
    if not (0 < alpha < 1 and 0 < power < 1):
        raise MetricError(f"alpha and power must be in (0, 1), got alpha={alpha}, power={power}")
    assert difference is not None
    return abs(float(difference)) / float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


PLAN_SCHEMA: dict[str, type[pl.DataType]] = {
    "model": pl.String,
    "target": pl.String,
    "tasks": pl.Int64,
    "epochs": pl.Float64,
    "se_now": pl.Float64,
    "se_target": pl.Float64,
    "epochs_needed": pl.Float64,
    "more_epochs": pl.Float64,
    "tasks_needed": pl.Float64,
    "more_tasks": pl.Float64,
    "floor_se": pl.Float64,
}


def plan(
    variance: pl.DataFrame,
    *,
    half_width: float | None = None,
    difference: float | None = None,
    confidence: float = 0.95,
    alpha: float = 0.05,
    power: float = 0.8,
) -> pl.DataFrame:
    """Per system of ``variance_components``: what it takes to reach a target.

    A **half-width** h: the suite mean's interval ``± z·SE`` should be at most h.
    A **difference** Δ: a system and another like it (same variance components,
    run on independent samples of tasks) should be told apart at level α with the
    given power: the difference's variance is twice one system's, so each
    system's SE must reach ``Δ / ((z_{1−α/2} + z_{power})·√2)``. (A comparison
    paired on the same tasks removes much of σ²_b: this is the conservative plan.)

    Columns: ``model, target`` (text), ``tasks, epochs`` (now), ``se_now``,
    ``se_target``, ``epochs_needed`` / ``more_epochs`` (tasks fixed; ``inf`` when
    the between-task floor is above the target), ``tasks_needed`` / ``more_tasks``
    (epochs fixed at today's mean), ``floor_se`` (the SE with unlimited epochs:
    ``σ_b/√T``). Null where a system's variance components are undefined.
    """
    se = target_se(
        half_width=half_width, difference=difference, confidence=confidence, alpha=alpha, power=power
    )
    if difference is not None:
        se /= math.sqrt(2.0)
        label = f"detect a difference of {abs(difference):g} (α = {alpha:g}, power {power:g})"
    else:
        label = f"±{half_width:g} at {confidence:.0%}"
    rows = []
    for r in variance.iter_rows(named=True):
        vb, vw, t, k = r["var_between"], r["var_within"], r["n_tasks"], r["epochs"]
        row = dict.fromkeys(PLAN_SCHEMA)
        row.update(model=r["model"], target=label, tasks=t, epochs=k, se_target=se)
        if vb is not None and vw is not None and t and k:
            k_need = epochs_needed(vb, vw, t, se)
            t_need = tasks_needed(vb, vw, k, se)
            row.update(
                se_now=math.sqrt(suite_variance(vb, vw, t, k)),
                epochs_needed=k_need,
                more_epochs=max(0.0, k_need - math.ceil(k - 1e-9)),
                tasks_needed=t_need,
                more_tasks=max(0.0, t_need - t),
                floor_se=math.sqrt(vb / t),
            )
        rows.append(row)
    return pl.DataFrame(rows, schema=PLAN_SCHEMA, orient="row")


CURVE_SCHEMA: dict[str, type[pl.DataType]] = {
    "model": pl.String,
    "axis": pl.String,
    "count": pl.Int64,
    "half_width": pl.Float64,
    "current": pl.Boolean,
}


def plan_curves(variance: pl.DataFrame, *, confidence: float = 0.95, up_to: float = 4.0) -> pl.DataFrame:
    """The interval half-width ``z·√(σ²_b/T + σ²_w/(T·k))`` a system would get with more
    epochs (``axis="epochs"``: tasks fixed at today's T, k = 1 … ``up_to``× today's) or
    more tasks (``axis="tasks"``: epochs fixed at today's mean k, T = 1 … ``up_to``× today's),
    with ``current`` marking today's design. For the planner chart; no row for systems
    whose variance components are undefined."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rows = []
    for r in variance.iter_rows(named=True):
        vb, vw, t, k = r["var_between"], r["var_within"], r["n_tasks"], r["epochs"]
        if vb is None or vw is None or not t or not k:
            continue
        k_now = max(1, round(k))
        for e in range(1, max(k_now + 1, math.ceil(up_to * k_now)) + 1):
            rows.append((r["model"], "epochs", e, z * math.sqrt(suite_variance(vb, vw, t, e)), e == k_now))
        for n in range(1, max(t + 1, math.ceil(up_to * t)) + 1):
            rows.append((r["model"], "tasks", n, z * math.sqrt(suite_variance(vb, vw, n, k)), n == t))
    return pl.DataFrame(rows, schema=CURVE_SCHEMA, orient="row")
