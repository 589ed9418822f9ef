"""Benchmark: ``fle-core gate`` on 30 systems × 24 tasks × 8 epochs, start-up included.

The data: a real SQLite ``programs`` table (30 systems × 24 lab tasks × 8 trials,
4 steps per trajectory, 23,040 rows) synced into a fresh workspace's warehouse.
The same trajectories, one row per trajectory (system, seed = trial, task,
success, mean_score), are written as a runs CSV for the baseline measured in the
same run: ``fle-core compare`` (the experiment-log table), for the same one pair
and for all 29 systems against the baseline. Every command is a real subprocess
(interpreter start-up, imports, warehouse read, tests, Markdown); medians of
``--reps`` runs, wall and CPU (user + sys of the child), with the load average.

Usage: uv run python bench/gate.py [--reps 7]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
N_SYSTEMS, N_TASKS, N_EPOCHS = 30, 24, 8


def build(tmp: Path) -> tuple[Path, Path]:
    """The workspace (synced) and the runs CSV of the same trajectories."""
    from gate_fixtures import add_source, outcome_rows

    from fle_core.tasks import default_tasks

    tasks = sorted(k for k, t in default_tasks().items() if t.kind == "throughput")[:N_TASKS]
    rng = np.random.default_rng(0)
    outcomes, runs = {}, []
    for s in range(N_SYSTEMS):
        skill = rng.uniform(0.1, 0.8)
        for t in tasks:
            p = float(np.clip(skill + rng.normal(0, 0.15), 0.02, 0.98))
            trials = [bool(x) for x in rng.random(N_EPOCHS) < p]
            outcomes[(f"sys-{s:02d}", t)] = trials
            quota = 250.0 if t.startswith(("crude", "petroleum", "sufuric")) else 16.0
            runs += [
                {
                    "system": f"sys-{s:02d}",
                    "seed": e,
                    "task": t,
                    "success": int(ok),
                    "mean_score": quota * ok / quota,
                }
                for e, ok in enumerate(trials)
            ]
    home = tmp / "ws"
    add_source(home, tmp / "bench.db", outcome_rows(outcomes, steps=4))
    path = tmp / "runs.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(runs[0]))
        w.writeheader()
        w.writerows(runs)
    return home, path


def timed(cmd: list[str], env: dict, reps: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds of ``cmd`` as a subprocess, and its exit code."""
    walls, cpus, code = [], [], 0
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        code = done.returncode
        if code not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed ({code}): {done.stderr}")
    return statistics.median(walls), statistics.median(cpus), code


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    t = time.perf_counter()
    home, runs = build(tmp)
    print(
        f"data: {N_SYSTEMS} systems × {N_TASKS} tasks × {N_EPOCHS} epochs, built in {time.perf_counter() - t:.1f} s"
    )
    env = {**os.environ, "FLE_CORE_HOME": str(home)}
    py = [sys.executable, "-m", "fle_core"]
    cases = {
        "python -c pass (interpreter floor)": [sys.executable, "-c", "pass"],
        "fle-core gate (success)": [*py, "gate", "--baseline", "sys-00", "--candidate", "sys-01", "--quiet"],
        "fle-core gate (success + mean_score, margin 0.02)": [
            *py, "gate", "--baseline", "sys-00", "--candidate", "sys-01", "--metric", "success",
            "--metric", "mean_score", "--margin", "0.02", "--quiet",
        ],
        "fle-core compare, same pair": [
            *py, "compare", str(runs), "--baseline", "sys-00", "--systems", "sys-01",
            "--metric", "success", "--task-column", "task", "--out", str(tmp / "pair.md"),
        ],
        "fle-core compare, all 29 systems vs the baseline": [
            *py, "compare", str(runs), "--baseline", "sys-00", "--metric", "success",
            "--task-column", "task", "--out", str(tmp / "all.md"),
        ],
    }  # fmt: skip
    print(f"load average before: {os.getloadavg()[0]:.1f}; medians of {args.reps}")
    results = {}
    for name, cmd in cases.items():
        wall, cpu, code = timed(cmd, env, args.reps)
        results[name] = (wall, cpu)
        print(f"| {name} | {wall:.2f} s | {cpu:.2f} s | exit {code} |", flush=True)
    gw, gc = results["fle-core gate (success)"]
    cw, cc = results["fle-core compare, same pair"]
    print(f"gate / compare (same pair): wall {gw / cw:.2f}×, CPU {gc / cc:.2f}×")
    print(f"load average after: {os.getloadavg()[0]:.1f}; target: gate ≤ 2 s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
