"""What changed between two runs: ``changes(ws, A, B)``, the API behind the "What changed" tab.

Resolves the two sides (``sides.resolve_sides``), diffs them task by task
(``stats.changes.task_changes``), lists how they differ (``sides.differences``)
and adds, for trajectories from Inspect logs, the log, sample and epoch each row's
two trajectories come from (so a page can link ``inspect view`` to them).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from fle_core.analysis.sides import Difference, Side, differences, resolve_sides
from fle_core.stats.changes import task_changes
from fle_core.workspace import Workspace

#: The Inspect columns ``changes`` adds per side (null for programs-era trajectories).
LOG_COLUMNS = ("source", "log_path", "sample_id", "epoch")


@dataclass(frozen=True)
class Changes:
    """Two sides, their per-task diff, and what makes them hard to compare."""

    baseline: Side
    candidate: Side
    table: pl.DataFrame
    differences: list[Difference]


def changes_between(a: Side, b: Side, *, confidence: float = 0.95) -> Changes:
    """``task_changes`` of two resolved sides plus ``a_``/``b_`` + ``LOG_COLUMNS`` of the
    two trajectories each row names (pure: no I/O)."""
    table = task_changes(a.summaries, b.summaries, confidence=confidence)
    for prefix, side in (("a_", a), ("b_", b)):
        facts = side.summaries.select(
            pl.format("{}:{}:{}", "source", "version", "instance").alias(f"{prefix}key"),
            *(pl.col(c).alias(prefix + c) for c in LOG_COLUMNS),
        ).unique(f"{prefix}key", keep="first")
        table = table.join(facts, on=f"{prefix}key", how="left", maintain_order="left")
    return Changes(a, b, table, differences(a, b))


def changes(
    ws: Workspace, baseline: str, candidate: str, *, as_of: int | None = None, confidence: float = 0.95
) -> Changes:
    """What changed from ``baseline`` to ``candidate`` (sides as ``sides.parse_side`` reads them),
    task by task, at the data version ``as_of`` unless a side names its own."""
    a, b = resolve_sides(ws, baseline, candidate, as_of=as_of)
    return changes_between(a, b, confidence=confidence)
