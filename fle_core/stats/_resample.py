"""Private data shapes of the bootstrap: task arrays, results, percentile intervals.

Re-exported by ``bootstrap`` (where the docs and users find them).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fle_core.errors import MetricError

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimate, percentile CI and the replicate statistics.

    ``estimate``/``ci_low``/``ci_high`` have the metric's output shape
    (scalar or ``(m,)``); ``replicates`` has shape ``(reps, *that shape)``.
    """

    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    replicates: np.ndarray


# ------------------------------------------------------------------ shapes ---
def as_task_arrays(values_by_task) -> list[np.ndarray]:
    """Normalize input to a list of 1-D float arrays, one per task.

    Accepts a 2-D array (runs × tasks, rliable's shape), a sequence of 1-D
    arrays (ragged: one per task), or a mapping task → 1-D array (in key order).
    Non-finite values are dropped: NaN marks padding in the resample array.
    """
    if isinstance(values_by_task, Mapping):
        values_by_task = [values_by_task[k] for k in values_by_task]
    if isinstance(values_by_task, np.ndarray) and values_by_task.ndim == 2:
        values_by_task = [values_by_task[:, j] for j in range(values_by_task.shape[1])]
    tasks = [np.asarray(v, dtype=np.float64).ravel() for v in values_by_task]
    tasks = [v[np.isfinite(v)] for v in tasks]
    if not tasks or any(v.size == 0 for v in tasks):
        raise MetricError("stratified_bootstrap needs at least one task, each with >= 1 finite run")
    return tasks


def pad_tasks(tasks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(tasks × max_runs) array padded with NaN, and the run count per task."""
    n = np.array([v.size for v in tasks], dtype=np.int64)
    padded = np.full((len(tasks), int(n.max())), np.nan)
    for j, v in enumerate(tasks):
        padded[j, : v.size] = v
    return padded, n


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


def percentile_interval(replicates: np.ndarray, confidence: float = DEFAULT_CONFIDENCE):
    """Percentile-method CI over axis 0, ignoring NaN replicates."""
    if not 0 < confidence < 1:
        raise MetricError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN bounds
        lo = np.nanpercentile(replicates, 100 * alpha / 2, axis=0)
        hi = np.nanpercentile(replicates, 100 * (1 - alpha / 2), axis=0)
    return lo, hi
