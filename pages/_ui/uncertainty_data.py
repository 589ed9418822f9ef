"""UI layer: the computations behind Compare's headline, cost, reliability and planner panels,
and the per-task metrics that count what the infrastructure rule left out.

Registered with ``data.compute_fn`` (so they are cached per data version and selection
like every other computation); importing this module registers them (``pages._ui``
does). Each takes the selected summaries frame and returns finished frames or records
from ``fle_core.stats``.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from pages._ui import frames
from pages._ui.data import compute_fn, suite_frame


@compute_fn("standing")
def _c_standing(s: pl.DataFrame, correction: str, reps: int, seed: int) -> Any:
    from fle_core.stats import leader

    return leader.leading_system(suite_frame(s), correction=correction, reps=reps, seed=seed)


@compute_fn("variance")
def _c_variance(s: pl.DataFrame) -> pl.DataFrame:
    from fle_core.stats import variance

    return variance.variance_components(s)


@compute_fn("consistency")
def _c_consistency(s: pl.DataFrame) -> pl.DataFrame:
    from fle_core.stats import reliability

    return reliability.consistency(s)


@compute_fn("frontier")
def _c_frontier(s: pl.DataFrame, reps: int, seed: int, population: str = "tasks") -> Any:
    """The cost–success frontier in dollars when every scored run has a cost, else in tokens."""
    from fle_core.stats import cost

    s = suite_frame(s)  # suite-level: the tasks every system ran
    column, _ = cost.cost_unit(s)
    estimates = cost.cost_estimates(s, column, reps, seed, population=population)
    return cost.frontier(s, column, reps, seed, population=population), estimates


@compute_fn("group_metrics", everything=True)
def _c_group(s: pl.DataFrame, k_values: list[int], everything: pl.DataFrame) -> pl.DataFrame:
    from fle_core.stats import infrastructure, metrics

    group = metrics.group_metrics(s, by=("model", "task"), k_values=tuple(k_values))
    return infrastructure.with_counts(group, everything, ("model", "task"))


@compute_fn("task_difficulty", everything=True)
def _c_difficulty(s: pl.DataFrame, everything: pl.DataFrame) -> pl.DataFrame:
    from fle_core.stats import infrastructure, metrics

    by_task = metrics.group_metrics(s, by=("task",), k_values=(1,))
    return frames.difficulty_view(infrastructure.with_counts(by_task, everything, ("task",)))


@st.cache_data(show_spinner=False, max_entries=16)
def comparison_markdown(comparisons: pl.DataFrame) -> str:
    """``compare.comparison_markdown``, kept per frame: the Export tab asks on every rerun."""
    from fle_core.stats import compare

    return compare.comparison_markdown(comparisons)
