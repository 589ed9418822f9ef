"""The report's uncertainty, cost and reliability parts: the headline that follows the test,
where the variance comes from and what fixes it, and what a success costs.

Pure over finished frames (``ReportFrames``): the charts this part adds to the report's
chart list (``extra_charts``) and the HTML it adds after the leaderboard
(``leaderboard_notes``, ``sections``). Everything user-derived is escaped.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from fle_core import charts as ch
from fle_core.report.html import esc, table_html

#: ``build.ReportFrames`` (not imported: ``build`` imports this module)
ReportFrames = Any

#: half-width and difference the report plans for (the Compare page's Planner takes others)
PLAN_HALF_WIDTH = 0.05
PLAN_DIFFERENCE = 0.10
_CORRECTION = {"holm": "Holm-adjusted", "bh": "Benjamini–Hochberg-adjusted", "none": "unadjusted"}
_POPULATION = {
    "tasks": "tasks like these: the tasks are a sample (task-clustered)",
    "suite": "this fixed suite: the tasks are held fixed (stratified)",
}


def headline(standing: Any, board: pl.DataFrame | None) -> str:
    """One sentence (HTML) naming the leader only when the paired tests say so."""
    if standing is None or not standing.top:
        return '<p class="headline">No system has a task with a quota: no leader to name.</p>'
    how = (
        f"paired by task, {_CORRECTION.get(standing.correction, standing.correction)} over "
        f"{standing.tests} test{'' if standing.tests == 1 else 's'}, α = {standing.alpha:g}"
    )
    if standing.leader is not None:
        return (
            f'<p class="headline"><strong>Leader: {esc(standing.leader)}</strong> '
            f"({standing.rates[standing.leader] * 100:.1f}% success), significantly above every other "
            f"system ({esc(how)}).</p>"
        )
    if len(standing.top) == 1:
        return f'<p class="headline">One system only: <strong>{esc(standing.top[0])}</strong>.</p>'
    names = ", ".join(f"<strong>{esc(m)}</strong> {standing.rates[m] * 100:.1f}%" for m in standing.top)
    return (
        f'<p class="headline">No leader: no significant difference between the top '
        f"{len(standing.top)} ({names}; {esc(how)}). The leaderboard is ordered by point estimate only.</p>"
    )


def leaderboard_notes(frames: ReportFrames, population: str | None) -> str:
    """What the leaderboard's interval is and which question it answers."""
    mm = frames.model_metrics
    if mm is None or "success_ci_method" not in mm.columns:
        return ""
    methods = "; ".join(sorted(set(mm["success_ci_method"].drop_nulls().to_list()))) or "Wilson"
    return (
        f'<p class="note">success_ci_low / success_ci_high: the 95% interval of the success rate for '
        f"{esc(_POPULATION.get(population or 'tasks', population or 'tasks'))}, by the method in "
        f"success_ci_method (here: {esc(methods)}); success_se is its standard error (task-clustered: "
        "Inspect's stderr(cluster=…)). A system with one task gets that task's Wilson interval. "
        "Definitions: §6a of the metric definitions below.</p>"
    )


def extra_charts(frames: ReportFrames, kw: dict[str, Any]) -> list[tuple[str, str, Any] | None]:
    """Chart plan entries (slug, caption, builder) for the frames this part owns."""
    f = frames
    plan: list[tuple[str, str, Any] | None] = []
    if f.pass_at_k_curve is not None and f.pass_hat_k_curve is not None:
        plan.append(
            (
                "pass_k_reliability",
                "pass@k over pass^k (all k trials succeed) with bootstrap bands",
                lambda: ch.pass_k_chart(f.pass_at_k_curve, f.pass_hat_k_curve, **kw),
            )
        )
    if f.frontier is not None and f.frontier.height:
        plan.append(
            (
                "cost_frontier",
                "Cost per success against success rate with 95% intervals; point size: share of "
                "bootstrap resamples on the frontier",
                lambda: ch.frontier_chart(f.frontier, **kw),
            )
        )
    if f.consistency is not None and f.consistency["outcome_consistency"].is_not_null().any():
        plan.append(
            (
                "consistency",
                "Consistency across epochs: outcomes, and the spread of tokens, dollars and time",
                lambda: ch.consistency_chart(f.consistency, **kw),
            )
        )
    return plan


def sections(frames: ReportFrames) -> str:
    """Variance and planning, cost, and reliability tables (empty when the frames are absent)."""
    parts: list[str] = []
    if frames.variance is not None and frames.variance.height:
        parts.append(
            '<h2 id="variance">Where the uncertainty comes from</h2><p class="note">Per system: '
            "between-task and within-task variance of success (one-way random-effects ANOVA), the "
            "intraclass correlation (ICC), the design effect (task-clustered variance of the suite rate "
            "÷ that of as many independent trials) and the flip rate (share of tasks whose outcome "
            "differs across epochs).</p>" + table_html(frames.variance, percent=["mean", "flip_rate"])
        )
    if frames.plan is not None and frames.plan.height:
        parts.append(
            f'<h3 id="planner">What it takes</h3><p class="note">Epochs per task (tasks fixed) or tasks '
            f"(epochs fixed) for a 95% interval of ±{PLAN_HALF_WIDTH * 100:g} points, and to detect a "
            f"{PLAN_DIFFERENCE * 100:g}-point difference (α = 0.05, power 0.8, independent task "
            "samples). inf: the between-task floor (floor_se) is above the target, so only more tasks "
            "help.</p>" + table_html(frames.plan)
        )
    if frames.cost is not None and frames.cost.height:
        unit = frames.cost["unit"][0]
        parts.append(
            f'<h2 id="cost">Cost per success ({esc(unit)})</h2><p class="note">Σ cost of every scored '
            "run ÷ successes, with a 95% bootstrap interval (an empty ci_high: unbounded). Dollars come "
            "from the Inspect logs' total_cost, else tokens × [prices] in config.toml; a system with "
            "a run of unknown cost has no dollar figure (unpriced counts those runs).</p>"
            + table_html(frames.cost)
        )
    if frames.consistency is not None and frames.consistency.height:
        parts.append(
            '<h2 id="reliability">Reliability across epochs</h2><p class="note">Outcome consistency: '
            "per task 1 − variance of success across epochs ÷ the largest that many epochs can show "
            "(1: the same outcome every epoch), averaged over tasks run at least twice; *_cv: the "
            "mean over tasks of the coefficient of variation of tokens, dollars and time.</p>"
            + table_html(frames.consistency)
        )
    return "\n".join(parts)
