"""Benchmark: compare.pairwise_comparisons at warehouse scale (6 models × 24 tasks).

Baseline: fle_core/compare.py as of commit 8fd7ea2 (before the fast kernels),
loaded from git into a temporary module and timed in the same run. The script
also checks that both give the same frame (the single-stratum ALL-row test is
the one intended definition change; there is none at 24 tasks).

Usage: uv run python bench/compare.py [--reps 5] [--per 117]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "8fd7ea2"


def make_summaries(n_models: int = 6, n_tasks: int = 24, per: int = 117, seed: int = 0) -> pl.DataFrame:
    """~16.8k trajectories like the 1M-step warehouse: success + best_reward per trajectory."""
    rng = np.random.default_rng(seed)
    model = np.repeat([f"model-{i}" for i in range(n_models)], n_tasks * per)
    task = np.tile(np.repeat([f"task-{j:02d}" for j in range(n_tasks)], per), n_models)
    p = np.repeat(rng.uniform(0.05, 0.9, (n_models, n_tasks)).ravel(), per)
    success = rng.random(p.size) < p
    reward = np.where(success, 20.0, 0.0) + np.round(rng.gamma(2.0, 3.0, p.size), 1)
    return pl.DataFrame({"model": model, "task": task, "success": success, "best_reward": reward})


def load_baseline():
    src = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:fle_core/compare.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The baseline predates the package layout: point its imports at the moved modules.
    for old, new in (
        ("fle_core.bootstrap", "fle_core.stats.bootstrap"),
        ("fle_core.metrics", "fle_core.stats.metrics"),
    ):
        src = src.replace(f"from {old} import", f"from {new} import")
    path = Path(tempfile.mkdtemp()) / "compare_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("compare_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_same(new: pl.DataFrame, old: pl.DataFrame) -> str:
    """Assert the frames agree; say how closely.

    Everything must match except the ALL rows' stratified test for success
    (now the Mantel-Haenszel exact test instead of the CMH chi-square), whose
    p-value, adjusted p-value and verdict may differ; per-task Fisher p-values
    may differ from scipy's by float rounding (< 1e-9 relative).
    """
    changed = {"test", "p_value", "p_adjusted", "verdict"}
    is_all = pl.col("task") == "ALL"
    for part in (~is_all, is_all):
        a, b = new.filter(part), old.filter(part)
        cols = [c for c in new.columns if part is ~is_all or c not in changed]
        for c in cols:
            if new.schema[c] == pl.Float64:
                x, y = a[c].to_numpy().astype(float), b[c].to_numpy().astype(float)
                assert np.allclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True), c
            else:
                assert a[c].equals(b[c]), c
    diff = [c for c in new.columns if not new[c].equals(old[c])]
    all_new, all_old = new.filter(is_all), old.filter(is_all)
    dp = np.nanmax(
        np.abs(all_new["p_value"].to_numpy().astype(float) - all_old["p_value"].to_numpy().astype(float))
    )
    verdicts = int((all_new["verdict"] != all_old["verdict"]).sum())
    return (
        f"columns not bit-identical: {diff or 'none'}; ALL-row max |Δp| {dp:.2g}, "
        f"ALL verdicts changed: {verdicts}"
    )


def cold(fn, reps: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds; memo caches are cleared before each run (a cold call).

    CPU time is reported too because the machine is shared and wall time noisy.
    """
    from fle_core.stats import _kernels, compare

    wall, cpu = [], []
    for _ in range(reps):
        _kernels.fisher_exact_p.cache_clear()
        compare.newcombe_interval.cache_clear()
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--per", type=int, default=117)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from fle_core.stats import compare

    base = load_baseline()
    s = make_summaries(per=args.per)
    print(f"{s.height} trajectories, 6 models x 24 tasks, reps={args.reps} (medians)")
    for metric in ("success", "best_reward"):
        new = compare.pairwise_comparisons(s, metric=metric)
        old = base.pairwise_comparisons(s, metric=metric)
        same = check_same(new, old)
        (w_old, c_old) = cold(lambda m=metric: base.pairwise_comparisons(s, metric=m), args.reps)
        (w_new, c_new) = cold(lambda m=metric: compare.pairwise_comparisons(s, metric=m), args.reps)
        print(
            f"| pairwise_comparisons({metric}) | wall {w_old * 1e3:.0f} → {w_new * 1e3:.0f} ms "
            f"({w_old / w_new:.1f}x) | CPU {c_old * 1e3:.0f} → {c_new * 1e3:.0f} ms "
            f"({c_old / c_new:.1f}x) | {same} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
