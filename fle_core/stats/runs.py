"""The experiment-log workflow for any metric: per-run results against a baseline.

Data shape (the **runs** frame): one row per run, with

* ``system`` (str): what is compared — a branch, PR, config or model label;
* ``seed`` (str): the run's seed (display and the per-seed table only);
* ``task`` (str or null, optional): a task or group; runs of different tasks
  are compared within their task and then across tasks;
* any number of numeric **metric** columns (throughput, curriculum level,
  steps per second, ...).

``compare_runs`` compares every other system with the baseline on each metric
(a two-sample test per metric and task, as ``compare.pairwise_comparisons``
does for trajectories) and corrects the p-values over the whole call — one
call is one comparison family, and the correction is the caller's choice,
``"none"`` by default as in the experiment log. ``runs_markdown`` renders the
result in the log's own shape (``factorion-EXPERIMENTS.md``): ``(n=K)`` in the
headers, ``mean +/- sd`` with decimals suited to each metric's scale, change %,
p-value, the verdict (bold when significant), the correction stated under the
table, and the per-seed table. Reading files is ``sources.runs``'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import polars as pl

from fle_core.errors import MetricError
from fle_core.stats import compare
from fle_core.stats import markdown as md

#: the CLI's names for the tests, and the statistics layer's
TESTS = {"welch": "welch_t", "student": "student_t", "mannwhitney": "mann_whitney_u"}
TEST_TEXT = {
    "welch_t": "Welch's t-test",
    "student_t": "Student's t-test",
    "mann_whitney_u": "Mann-Whitney U test",
    "stratified_welch_t": "stratified Welch t-test (all-tasks rows)",
    "stratified_student_t": "stratified Student t-test (all-tasks rows)",
    "van_elteren": "van Elteren test (all-tasks rows)",
}
KEYS = ("system", "seed", "task")
_NO_TASK = "\x00"  # placeholder task for runs without one (never shown)
_CHUNK = 256  # systems compared per call between progress reports


def metric_columns(runs: pl.DataFrame) -> list[str]:
    """The numeric columns of a runs frame other than its keys, in column order."""
    return [c for c, t in runs.schema.items() if c not in KEYS and t.is_numeric()]


def _check(runs: pl.DataFrame, baseline: str, metrics: Sequence[str]) -> None:
    for key in ("system", "seed"):
        if key not in runs.columns:
            raise MetricError(
                f"a runs frame needs a {key!r} column", hint=f"columns: {', '.join(runs.columns)}"
            )
    systems = runs["system"].drop_nulls().unique().to_list()
    if baseline not in systems:
        raise MetricError(
            f"baseline {baseline!r} is not a system in the runs",
            hint=f"systems: {', '.join(sorted(map(str, systems)))}",
        )
    if len(systems) < 2:
        raise MetricError("the runs hold only the baseline: nothing to compare it with")
    if not metrics:
        raise MetricError("no metric to compare", hint="the runs have no numeric metric column")
    bad = [m for m in metrics if m not in runs.columns or m in KEYS or not runs.schema[m].is_numeric()]
    if bad:
        raise MetricError(
            f"not a numeric metric column: {', '.join(bad)}",
            hint=f"metrics: {', '.join(metric_columns(runs))}",
        )


def _test_name(test: str) -> str:
    name = TESTS.get(test, test)
    if name not in TESTS.values():
        raise MetricError(f"unknown test {test!r}", hint="use welch, student or mannwhitney")
    return name


def compare_runs(
    runs: pl.DataFrame,
    baseline: str,
    metrics: Sequence[str] | None = None,
    *,
    systems: Sequence[str] | None = None,
    test: str = "welch",
    correction: str | None = "none",
    alpha: float = 0.05,
    lower_is_better: Sequence[str] = (),
    reps: int = 2000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """Every system (or ``systems``) against ``baseline`` on each metric.

    Returns the comparisons contract of ``compare.pairwise_comparisons``
    (``model_a`` = the system, ``model_b`` = the baseline, ``metric`` = the
    column), one row per (system, metric) — per (system, metric, task) plus
    an ``"ALL"`` row when the runs have several tasks — in system order of
    appearance, then the order of ``metrics``. ``task`` is the runs' single
    task (null without a task column). ``test``: ``welch`` (default, the
    log's two-sample t-test), ``student`` or ``mannwhitney``. The p-values
    are adjusted with ``correction`` (``none``, ``holm``, ``bh``) over every
    row of the call: per-task rows and across-task rows form two families.
    ``lower_is_better`` names metrics where smaller wins (a duration, a loss).
    ``progress(done, total)`` is called as (system, metric) comparisons finish.
    Work and memory grow linearly with the runs (docs/metrics.md §7b).
    """
    metrics = list(metrics) if metrics else metric_columns(runs)
    _check(runs, baseline, metrics)
    test_name = _test_name(test)
    compare.adjust_pvalues([], correction)  # unknown names fail here, before any work
    order = [s for s in runs["system"].unique(maintain_order=True).to_list() if s is not None]
    others = [s for s in (systems or order) if s != baseline]
    missing = [s for s in others if s not in order]
    if missing:
        raise MetricError(f"no runs for system(s) {missing}", hint=f"systems: {', '.join(map(str, order))}")
    tasks = (
        runs["task"].fill_null(_NO_TASK)
        if "task" in runs.columns
        else pl.repeat(_NO_TASK, runs.height, eager=True)
    )
    base = runs.select(pl.col("system").cast(pl.String).alias("model")).with_columns(
        tasks.cast(pl.String).alias("task")
    )
    several = base["task"].n_unique() > 1
    frames = []
    total, done = len(metrics) * len(others), 0
    for m in metrics:
        frame = base.with_columns(runs[m].cast(pl.Float64).alias("value")).filter(pl.col("value").is_finite())
        present = set(frame["model"].unique().to_list())
        empty = [s for s in [baseline, *others] if s not in present]
        if empty:
            raise MetricError(f"metric {m!r} has no finite values for {', '.join(map(str, empty[:10]))}")
        for start in range(0, len(others), _CHUNK):  # bounded work between progress reports
            chunk = others[start : start + _CHUNK]
            out = compare.pairwise_comparisons(
                frame.filter(pl.col("model").is_in([*chunk, baseline])),
                [*chunk, baseline],
                "value",
                "none",
                baseline=baseline,
                test=test_name,
                per_task=several,
                alpha=alpha,
                reps=reps,
                seed=seed,
            )
            frames.append(out.with_columns(pl.lit(m).alias("metric")))
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    out = pl.concat(frames)
    if not several:  # one task: the row is that task's, not an across-task summary
        only = base["task"][0]
        out = out.with_columns(pl.lit(None if only == _NO_TASK else only, pl.String).alias("task"))
    rank = pl.DataFrame(
        {"model_a": others, "_r": range(len(others))}, schema={"model_a": pl.String, "_r": pl.Int64}
    )
    out = out.with_row_index("_i").join(rank, on="model_a", how="left").sort("_r", "_i").drop("_r", "_i")
    invalid = same_data(runs, baseline, others, metrics)
    marked = pl.DataFrame(
        {"model_a": [s for s, _ in invalid], "metric": [m for _, m in invalid]},
        schema={"model_a": pl.String, "metric": pl.String},
    ).with_columns(pl.lit(True).alias("_same"))
    out = out.join(marked, on=["model_a", "metric"], how="left", maintain_order="left")
    out = out.with_columns(pl.col("_same").fill_null(False))
    out = _mark_untested(out, _nonfinite_counts(runs, tasks, metrics))
    return _correct(out, correction, alpha, set(lower_is_better)).drop("_same")


def _nonfinite_counts(runs: pl.DataFrame, tasks: pl.Series, metrics: Sequence[str]) -> dict[tuple, int]:
    """{(system, task, metric): runs whose value is NaN or ±inf}, with task None for the total."""
    keyed = runs.select("system", *metrics).with_columns(tasks.cast(pl.String).alias("_task"))
    exprs = [(pl.col(m).is_not_null() & ~pl.col(m).is_finite()).sum().alias(m) for m in metrics]
    counts: dict[tuple, int] = {}
    for row in keyed.group_by("system", "_task").agg(exprs).iter_rows(named=True):
        for m in metrics:
            if row[m]:
                counts[(row["system"], row["_task"], m)] = int(row[m])
                total = (row["system"], None, m)
                counts[total] = counts.get(total, 0) + int(row[m])
    return counts


def _mark_untested(out: pl.DataFrame, nonfinite: dict[tuple, int]) -> pl.DataFrame:
    """Count each side's non-finite runs (``a_nonfinite``/``b_nonfinite``) and say why a row
    has no test (``not_tested``: same data, non-finite values, too few runs); those rows
    have no p-value (the rule is in docs/metrics.md §7b)."""

    def count(system, task, metric) -> int:
        where = None if task is None or task == compare.ALL_TASKS else task
        return nonfinite.get((system, where, metric), 0)

    rows = out.select("model_a", "model_b", "task", "metric", "_same", "p_value").iter_rows()
    a_bad: list[int] = []
    b_bad: list[int] = []
    why: list[str | None] = []
    for a, b, task, metric, same, p in rows:
        a_bad.append(count(a, task, metric))
        b_bad.append(count(b, task, metric))
        if same:
            why.append("same data")
        elif a_bad[-1] or b_bad[-1]:
            why.append("non-finite values")
        else:
            why.append(None if p is not None else "too few runs")
    return out.with_columns(
        pl.Series("a_nonfinite", a_bad, pl.Int64),
        pl.Series("b_nonfinite", b_bad, pl.Int64),
        pl.Series("not_tested", why, pl.String),
    ).with_columns(
        pl.when(pl.col("not_tested").is_null()).then(pl.col("p_value")).otherwise(None).alias("p_value")
    )


def _seed_lists(runs: pl.DataFrame, metric: str) -> pl.DataFrame:
    """(system, task, seed, sorted values) of one metric (nulls kept, last)."""
    keys = ["task", "seed"] if "task" in runs.columns else ["seed"]
    return (
        runs.select("system", *keys, pl.col(metric).cast(pl.Float64).alias("_v"))
        .group_by("system", *keys)
        .agg(pl.col("_v").sort(nulls_last=True))
    )


def same_data(
    runs: pl.DataFrame, baseline: str, systems: Sequence[str], metrics: Sequence[str]
) -> set[tuple[str, str]]:
    """The (system, metric) pairs whose runs repeat the baseline's: the seed log's
    "Invalid (same data)" (a benchmark that compared a branch with itself).

    A metric's runs repeat the baseline's when every (task, seed) has the same values
    on both sides. That marks the pair when the values vary from seed to seed (chance
    cannot repeat them), and marks every metric of a system whose runs repeat the
    baseline's on all metrics (a copy of the baseline, constant metrics included).
    Constant metrics that merely agree (both always 1.0) stay ordinary comparisons.
    One join per metric: linear in the runs, whatever the number of systems.
    """
    keys = ["task", "seed"] if "task" in runs.columns else ["seed"]
    wanted = pl.DataFrame({"system": list(systems)}, schema={"system": pl.String})
    repeats: dict[str, set[str]] = {}
    varies: dict[str, bool] = {}
    for m in metrics:
        lists = _seed_lists(runs, m)
        base = lists.filter(pl.col("system") == baseline).drop("system").rename({"_v": "_b"})
        varies[m] = runs.filter(pl.col("system") == baseline)[m].drop_nulls().n_unique() > 1
        if base.height == 0:
            repeats[m] = set()
            continue
        mine = lists.join(wanted, on="system", how="semi")
        joined = mine.join(base, on=keys, how="left")
        per = joined.group_by("system").agg(
            pl.len().alias("n"),
            pl.col("_v")
            .list.eval(pl.element().cast(pl.String))
            .eq_missing(pl.col("_b").list.eval(pl.element().cast(pl.String)))
            .all()
            .alias("same"),
        )
        hit = per.filter(pl.col("same") & (pl.col("n") == base.height))
        repeats[m] = set(hit["system"].to_list())
    marked: set[tuple[str, str]] = set()
    for system in systems:
        every = all(system in repeats[m] for m in metrics)
        for m in metrics:
            if system in repeats[m] and (varies[m] or every):
                marked.add((system, m))
    return marked


def _correct(frame: pl.DataFrame, correction: str | None, alpha: float, lower: set[str]) -> pl.DataFrame:
    """Adjust p over the call's two families and set verdicts (per metric direction); rows
    whose runs repeat the baseline's are "invalid (same data)"; rows with no test (non-finite
    values, too few runs) are "not tested", never "no significant difference"."""
    method = compare.CORRECTIONS[correction.lower() if isinstance(correction, str) else correction]
    p = frame["p_value"].fill_null(np.nan).to_numpy().astype(float)
    is_all = (frame["task"] == compare.ALL_TASKS).fill_null(False).to_numpy()
    adj = np.full(p.shape, np.nan)
    for family in (is_all, ~is_all):
        if family.any():
            adj[family] = compare.adjust_pvalues(p[family], method)
    p_adj = [None if not np.isfinite(x) else float(x) for x in adj]
    why = frame["not_tested"].to_list() if "not_tested" in frame.columns else [None] * frame.height
    verdicts = [
        compare.INVALID
        if reason == "same data"
        else compare.NOT_TESTED
        if reason
        else compare._verdict(pa, diff, alpha, metric not in lower)
        for pa, diff, metric, reason in zip(p_adj, frame["diff"], frame["metric"], why, strict=True)
    ]
    return frame.with_columns(
        pl.Series("p_adjusted", p_adj, pl.Float64),
        pl.Series("verdict", verdicts, pl.String),
        pl.lit(method).alias("correction"),
    )


# ------------------------------------------------------------------ markdown ---
def correction_note(comparisons: pl.DataFrame) -> str:
    """One sentence under the table: the tests, the correction and its family size."""
    tests = [TEST_TEXT.get(t, t) for t in comparisons["test"].drop_nulls().unique(maintain_order=True)]
    n = int(comparisons["p_value"].is_not_null().sum())
    method = comparisons["correction"][0] if comparisons.height else "none"
    alpha = float(comparisons["alpha"][0]) if comparisons.height else 0.05
    how = {
        "none": "not adjusted for multiple comparisons (correction: none)",
        "holm": "Holm-adjusted (family-wise error rate)",
        "bh": "Benjamini-Hochberg-adjusted (false discovery rate)",
    }[method]
    two = (comparisons["task"] == compare.ALL_TASKS).any()
    family = f"{n} test{'' if n == 1 else 's'} in this comparison family" + (
        " (per-task and all-tasks rows adjusted separately)" if two and method != "none" else ""
    )
    text = f"p-values: {', '.join(tests)}, two-sided; {how}; {family}; significant at α = {alpha:g}."
    if (comparisons["p_value"] == 0).any():
        text += " p = 0: both sides are constant and differ (no variance, t = ±inf; scipy's rule)."
    if (comparisons["verdict"] == compare.INVALID).any():
        text += " Invalid (same data): the runs repeat the baseline's seed for seed, so no test was run."
    why = set(comparisons["not_tested"].drop_nulls()) if "not_tested" in comparisons.columns else set()
    if "non-finite values" in why:
        text += (
            " Not tested (non-finite): a side holds NaN or ±inf runs (a diverged seed?); mean +/- sd is"
            " over the finite runs, [+k NaN/inf] counts the others. No test ran: dropping a diverged run"
            " would flatter its system, and no value stands in for it; fix or remove those runs"
            " deliberately, then compare again."
        )
    if "too few runs" in why:
        text += (
            " Not tested (too few runs): the test needs more runs on a side"
            " (Welch's t: 2 on each side; Student's t: 3 in all), so no p-value exists."
        )
    return text


def _seed_key(values: Sequence[str]):
    try:
        nums = {v: float(v) for v in values}
        return lambda v: (0, nums[v], "")
    except (TypeError, ValueError):
        return lambda v: (1, 0.0, str(v))


def _value_cell(x: float | None, digits: int) -> str:
    """A run's value: ``0.512``; ``inf``, ``-inf`` or ``NaN`` as the run logged it; ``n/a`` if absent."""
    if x is not None and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return md.fmt_number(x, digits)


def per_seed_table(runs: pl.DataFrame, metric: str, baseline: str, system: str, digits: int) -> list[str]:
    """``| Seed | baseline | system |`` (with a Task column when there are several tasks)."""
    has_task = "task" in runs.columns and runs["task"].n_unique() > 1
    sub = runs.filter(pl.col("system").is_in([baseline, system]))
    keys = ["task", "seed"] if has_task else ["seed"]
    cells: dict[tuple, dict[str, list[str]]] = {}
    for row in sub.select(*keys, "system", metric).iter_rows(named=True):
        key = tuple(str(row[k]) for k in keys)
        cells.setdefault(key, {}).setdefault(row["system"], []).append(_value_cell(row[metric], digits))
    sk = _seed_key([k[-1] for k in cells])
    rows = []
    for key in sorted(cells, key=lambda k: (*k[:-1], sk(k[-1]))):
        rows.append(
            [
                *(md.md_text(k) for k in key),
                *(", ".join(cells[key].get(s, ["–"])) for s in (baseline, system)),
            ]
        )
    header = [*(["Task"] if has_task else []), "Seed", md.md_text(baseline), md.md_text(system)]
    return md.table(header, rows)


def runs_markdown(
    comparisons: pl.DataFrame,
    runs: pl.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    per_seed: Sequence[str] | None = None,
    digits: Mapping[str, int] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The experiment-log Markdown of ``compare_runs`` output, one section per system.

    ``### baseline (baseline) vs system``, the table ``| Metric | main (n=5) |
    PR (n=5) | Change | p-value | Verdict |``, the correction note, then
    ``Per-seed <metric>:`` tables for ``per_seed`` (default: the first metric;
    ``[]`` for none). ``labels`` maps metric columns to display names;
    ``digits`` overrides the per-metric decimals (``markdown.digits_for`` of
    the metric's values). ``notes`` (e.g. runs the reader skipped) are listed
    at the end.
    """
    labels = dict(labels or {})
    metrics = comparisons["metric"].unique(maintain_order=True).to_list()
    scale = {m: (digits or {}).get(m, md.digits_for(runs[m].to_list())) for m in metrics}
    shown = metrics[:1] if per_seed is None else [m for m in per_seed if m in metrics]
    out: list[str] = []
    note = correction_note(comparisons)

    def label(r: dict) -> str:
        text = md.md_text(labels.get(r["metric"], r["metric"]))
        if r["task"] is not None:
            text += " (all tasks)" if r["task"] == compare.ALL_TASKS else f" ({md.md_text(r['task'])})"
        return text

    for (system, baseline), sub in comparisons.group_by("model_a", "model_b", maintain_order=True):
        if out:
            out.append("")
        out += [f"### {md.md_text(baseline)} (baseline) vs {md.md_text(system)}", ""]
        out += md.pair_table(sub, label=label, digits=scale)
        out += ["", note]
        for m in shown:
            out += ["", f"Per-seed {md.md_text(labels.get(m, m))}:", ""]
            out += per_seed_table(runs, m, str(baseline), str(system), scale[m])
    if notes:
        out += ["", *(f"- {md.md_text(n)}" for n in notes)]
    return "\n".join(out) + "\n"
