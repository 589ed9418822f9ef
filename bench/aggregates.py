"""Benchmark: rliable's task-weighted aggregates against the old pooled ones (same run).

``interval_estimates`` now defaults to task-weighted ``success_rate``, ``mean``,
``median`` and ``optimality_gap`` (plus the pooled ``iqm``). The baseline is the
old default set computed the old way (``success_rate_pooled``, ``iqm``,
``mean_pooled``, ``optimality_gap_pooled``), measured in the same process on
the same frame, so the ratio is what the change costs.

Usage: ``uv run python bench/aggregates.py [--reps 5] [--trajectories 10000] [--write]``
(``--write`` rewrites ``bench/RESULTS-aggregates.md``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from fle_core.stats.bootstrap import interval_estimates

OLD = ("success_rate_pooled", "iqm", "mean_pooled", "optimality_gap_pooled")
NEW = ("success_rate", "iqm", "mean", "median", "optimality_gap")


def summaries(n_traj: int, seed: int = 0) -> pl.DataFrame:
    """6 models × 24 tasks, unequal trials per task (2–12), gamma scores around the quota."""
    rng = np.random.default_rng(seed)
    rows = []
    models, tasks = [f"m{i}" for i in range(6)], [f"t{j}" for j in range(24)]
    weights = rng.integers(2, 13, size=len(tasks)).astype(float)
    weights /= weights.sum()
    for _ in range(n_traj):
        m = models[rng.integers(len(models))]
        t = tasks[rng.choice(len(tasks), p=weights)]
        score = float(rng.gamma(2.0, 0.45))
        rows.append((m, t, score, score >= 1.0))
    return pl.DataFrame(rows, schema=["model", "task", "normalized_reward", "success"], orient="row")


def timed(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--trajectories", type=int, default=10_000)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    frame = summaries(args.trajectories)
    interval_estimates(frame, NEW, reps=200)  # warm up
    old = timed(lambda: interval_estimates(frame, OLD, reps=2000, seed=0), args.reps)
    new = timed(lambda: interval_estimates(frame, NEW, reps=2000, seed=0), args.reps)
    lines = [
        "| measure (2,000 reps, 6 models × 24 tasks) | median wall |",
        "|---|---|",
        f"| old default set, pooled ({', '.join(OLD)}) | {old * 1e3:.0f} ms |",
        f"| new default set, task-weighted ({', '.join(NEW)}) | {new * 1e3:.0f} ms |",
        f"| **ratio new / old** | **{new / old:.2f}×** |",
    ]
    print("\n".join(lines))
    if args.write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = [
            "# Aggregates benchmark (`bench/aggregates.py`)",
            "",
            f"Measured {stamp} on the shared 2-core machine (other engineers' work running: noisy; "
            f"read the ratio). Python {platform.python_version()}, {args.trajectories:,} trajectories, "
            f"medians over {args.reps} runs.",
            "",
        ]
        tail = ["", "Command: `uv run python bench/aggregates.py --write`", ""]
        Path(__file__).with_name("RESULTS-aggregates.md").write_text("\n".join(head + lines + tail))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
