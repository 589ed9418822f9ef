"""Infrastructure failures: one rule for whether they count, applied in one place.

A trajectory whose game server, RCON connection, server pool or model API failed
(``analysis.outcomes`` classifies Inspect errors; the summaries carry it as
``infrastructure_failure``) did not measure the agent. FLE's scorer counts it as
a failure; a reader may want the numbers without it. ``apply_rule`` is the one
switch every loader, page, report and export goes through (docs/metrics.md §2b):

* ``"fail"`` (default, FLE's rule): such trajectories stay and count as failures;
* ``"exclude"``: they are left out of every metric, as if they had not run.

``infrastructure_counts`` counts them per group, so a view can say how many a
cell holds (``"fail"``) or lost (``"exclude"``). Pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

import polars as pl

from fle_core.errors import MetricError

Rule = Literal["fail", "exclude"]
#: The switch's two settings, in the words the UI shows.
RULES: dict[str, str] = {
    "fail": "Count infrastructure failures as failures (as FLE's scorer does)",
    "exclude": "Leave them out",
}
DEFAULT_RULE: Rule = "fail"
COLUMN = "infrastructure_failure"
COUNT = "infra_failures"


def check_rule(rule: str) -> Rule:
    """The rule name, or a ``MetricError`` naming the choices."""
    if rule not in RULES:
        raise MetricError(f"unknown infrastructure rule {rule!r}", hint="use 'fail' or 'exclude'")
    return cast(Rule, rule)


def flagged(summaries: pl.DataFrame) -> pl.Expr:
    """True for the trajectories that are infrastructure failures (false without the column)."""
    return pl.col(COLUMN).fill_null(False) if COLUMN in summaries.columns else pl.lit(False)


def apply_rule(summaries: pl.DataFrame, rule: str = DEFAULT_RULE) -> pl.DataFrame:
    """Summaries under ``rule``: unchanged for ``"fail"``; without the infrastructure
    failures for ``"exclude"``. Columns and row order are kept."""
    if check_rule(rule) == "fail":
        return summaries
    return summaries.filter(~flagged(summaries))


def infrastructure_counts(summaries: pl.DataFrame, by: Sequence[str] = ("model", "task")) -> pl.DataFrame:
    """``<by>, infra_failures``: how many trajectories of each group are infrastructure
    failures (every group of ``summaries`` appears, with 0 where none)."""
    by = list(by)
    missing = [c for c in by if c not in summaries.columns]
    if missing:
        raise MetricError(f"summaries frame lacks column(s) {missing}")
    return summaries.group_by(by).agg(flagged(summaries).sum().cast(pl.Int64).alias(COUNT))


def with_counts(
    frame: pl.DataFrame, everything: pl.DataFrame, by: Sequence[str] = ("model", "task")
) -> pl.DataFrame:
    """``frame`` (metrics per ``by`` group) with ``infra_failures`` counted on ``everything``
    (the summaries before the rule): under ``"exclude"`` it says how many each group
    left out. Groups with none get 0; the column replaces any already there. A group
    the rule emptied (every trajectory an infrastructure failure) is added with
    ``n = 0`` and null metrics, so a view can still show it, and why it is empty."""
    by = list(by)
    counts = infrastructure_counts(everything, by)
    lost = counts.join(frame.select(by), on=by, how="anti", nulls_equal=True).filter(pl.col(COUNT) > 0)
    out = frame.drop(COUNT, strict=False).join(
        counts, on=by, how="left", nulls_equal=True, maintain_order="left"
    )
    out = out.with_columns(pl.col(COUNT).fill_null(0))
    if lost.height:
        zeros = {c: 0 for c in ("n", "n_scored") if c in out.columns}
        out = pl.concat([out, lost.with_columns(**zeros)], how="diagonal_relaxed").sort(by, nulls_last=True)
    return out
