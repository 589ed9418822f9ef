"""Who leads: a headline that follows the paired test, not the point estimates.

A leaderboard sorted by success rate always has a first row; that does not make
it the leader. ``leading_system`` ranks the systems by success rate, tests the
first against every other one with the paired comparison by task
(``compare.pairwise_comparisons``, success, the Mantel–Haenszel exact test on the
tasks both ran) under the correction in force, and names a leader only when every
other system is significantly worse. Otherwise the top systems the tests cannot
tell apart (the first by rate and every system not significantly worse than it)
are "no significant difference between the top N" (docs/metrics.md §7c).

Pure: a summaries frame in, a small record out; the bootstrap inside the
comparison takes a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from fle_core.stats import compare
from fle_core.stats.metrics import model_metrics


@dataclass(frozen=True)
class Standing:
    """The headline's facts.

    ``leader``: the system that leads (significantly better than every other one),
    else None. ``top``: the systems no test separates from the first by rate, in rate
    order (the leader alone when there is one; every system when there is only one).
    ``rates``: success rate per system in ``top``. ``tests``: the number of paired
    tests (the correction's family), ``correction`` and ``alpha`` as applied.
    ``comparisons``: the ``"ALL"`` rows of those tests (the comparisons contract).
    """

    leader: str | None
    top: list[str]
    rates: dict[str, float]
    tests: int
    correction: str
    alpha: float
    comparisons: pl.DataFrame


def leading_system(
    summaries: pl.DataFrame,
    *,
    correction: str = "holm",
    alpha: float = 0.05,
    reps: int = 1000,
    seed=0,
) -> Standing:
    """Rank by success rate (``model_metrics``, pooled; ties by name), then test the first
    against each other system on success, paired by task (the ``"ALL"`` rows of
    ``pairwise_comparisons`` with the first as baseline, ``correction`` over those
    N − 1 tests). The first leads only when every test says it is significantly better."""
    board = model_metrics(summaries, k_values=(1,)).filter(pl.col("success_rate").is_not_null())
    ranked = board.sort(["success_rate", "model"], descending=[True, False])
    names = [m for m in ranked["model"].to_list() if m is not None]
    rates = dict(zip(ranked["model"].to_list(), ranked["success_rate"].to_list(), strict=True))
    method = compare.CORRECTIONS[correction.lower() if isinstance(correction, str) else correction]
    empty = pl.DataFrame(schema=compare.COMPARISON_SCHEMA)
    if len(names) < 2:
        return Standing(None, names, {m: rates[m] for m in names}, 0, method, alpha, empty)
    first = names[0]
    rows = compare.pairwise_comparisons(
        summaries,
        names,
        "success",
        correction,
        baseline=first,
        alpha=alpha,
        per_task=False,
        reps=reps,
        seed=seed,
    ).filter(pl.col("task") == compare.ALL_TASKS)
    verdict = dict(zip(rows["model_a"].to_list(), rows["verdict"].to_list(), strict=True))
    close = [m for m in names[1:] if verdict.get(m) != compare.WORSE]
    top = [first, *close]
    return Standing(
        first if not close else None, top, {m: rates[m] for m in top}, rows.height, method, alpha, rows
    )
