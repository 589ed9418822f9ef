"""Benchmark: the default aggregates with the two-stage cluster bootstrap against the
stratified bootstrap they replaced, measured in the same run (issue 19).

``interval_estimates`` now defaults to ``population="tasks"``: tasks are resampled, then
runs within each drawn task. The baseline is the same call with ``population="suite"``
(the stratified bootstrap, the old default), on the same frame, interleaved run by run so
both see the same machine load. Shape: 10 systems × 25 tasks × 40 runs, 2,000 resamples,
the default metric set (success_rate, iqm, mean, median, optimality_gap). The target is
≤ 1.5 s of CPU for the clustered call. Also timed, for the record: the same two on
unequal task sizes (20–60 runs: the padded resampler), ``model_metrics`` (the analytic
task-clustered interval) and the cost–success frontier (2,000 joint resamples).

Usage: ``uv run python bench/uncertainty.py [--repeat 7] [--write]``
(``--write`` rewrites ``bench/RESULTS-uncertainty.md``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from fle_core.stats.bootstrap import interval_estimates
from fle_core.stats.cost import frontier
from fle_core.stats.metrics import model_metrics

SYSTEMS, TASKS, RUNS, REPS = 10, 25, 40, 2000


def summaries(runs: int | tuple[int, int] = RUNS, seed: int = 0) -> pl.DataFrame:
    """SYSTEMS × TASKS × runs: per-task odds from a Beta(0.7, 0.7) (hard and easy tasks),
    gamma scores around the quota, a dollar cost per run."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(SYSTEMS):
        for t in range(TASKS):
            p = float(rng.beta(0.7, 0.7))
            n = runs if isinstance(runs, int) else int(rng.integers(runs[0], runs[1] + 1))
            for _ in range(n):
                rows.append(
                    (
                        f"system-{m}",
                        f"task-{t}",
                        float(rng.gamma(2.0, 0.45)) * (0.5 + p),
                        bool(rng.random() < p),
                        float(rng.uniform(0.01, 0.05)),
                    )
                )
    return pl.DataFrame(
        rows, schema=["model", "task", "normalized_reward", "success", "cost_usd"], orient="row"
    ).with_columns(pl.col("normalized_reward").alias("best_reward"))


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(process CPU s, wall s) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    balanced, ragged = summaries(), summaries((20, 60), seed=1)
    cases: dict[str, Callable[[], object]] = {
        "cluster (tasks), 40 runs/task": lambda: interval_estimates(balanced, reps=REPS, seed=0),
        "stratified (suite), 40 runs/task": lambda: interval_estimates(
            balanced, reps=REPS, seed=0, population="suite"
        ),
        "cluster (tasks), 20–60 runs/task": lambda: interval_estimates(ragged, reps=REPS, seed=0),
        "stratified (suite), 20–60 runs/task": lambda: interval_estimates(
            ragged, reps=REPS, seed=0, population="suite"
        ),
        "model_metrics (analytic task-clustered CI)": lambda: model_metrics(balanced),
        "cost frontier, 2,000 joint resamples": lambda: frontier(balanced, reps=REPS, seed=0),
    }
    for fn in cases.values():  # warm up imports and caches
        fn()
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    wall: dict[str, list[float]] = {k: [] for k in cases}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeat):  # interleaved: every case sees the same load
        for name, fn in cases.items():
            c, w = timed(fn)
            cpu[name].append(c)
            wall[name].append(w)
        load.append(os.getloadavg()[0])
    med = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in cases}
    names = list(cases)
    ratio = med[names[0]][0] / med[names[1]][0]
    ratio_ragged = med[names[2]][0] / med[names[3]][0]
    lines = [
        f"| measure ({SYSTEMS} systems × {TASKS} tasks, {REPS:,} resamples) | median CPU | median wall |",
        "|---|---|---|",
        *(f"| {k} | {med[k][0] * 1e3:.0f} ms | {med[k][1] * 1e3:.0f} ms |" for k in names),
        f"| **ratio cluster / stratified (CPU), 40 runs/task** | **{ratio:.2f}×** | |",
        f"| ratio cluster / stratified (CPU), 20–60 runs/task | {ratio_ragged:.2f}× | |",
        f"| target: the clustered default ≤ 1.5 s CPU | {'met' if med[names[0]][0] <= 1.5 else 'NOT met'} | |",
    ]
    print("\n".join(lines))
    print(f"1-minute load average during the run: {min(load):.1f}–{max(load):.1f}")
    if args.write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = [
            "# Uncertainty benchmark (`bench/uncertainty.py`)",
            "",
            f"Measured {stamp} on the shared 2-core machine (other engineers' work running; 1-minute "
            f"load average {min(load):.1f}–{max(load):.1f}: read CPU times and ratios). Python "
            f"{platform.python_version()}; medians over {args.repeat} interleaved runs of each case.",
            "",
            "`interval_estimates` with its default metrics (success_rate, iqm, mean, median, "
            "optimality_gap). *cluster (tasks)* is the new default (two-stage: tasks, then runs "
            "within them); *stratified (suite)* is the old default, the baseline. Equal task sizes "
            "take compact resample blocks; unequal ones `clustered.ragged_cluster_scores` (the same draws as the padded resampler, IQM from counts per observed value, no sorts).",
            "",
        ]
        tail = ["", "Command: `uv run python bench/uncertainty.py --write`", ""]
        Path(__file__).with_name("RESULTS-uncertainty.md").write_text("\n".join(head + lines + tail))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
