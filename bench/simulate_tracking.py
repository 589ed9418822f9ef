"""Benchmark: the simulated FLE agent and W&B (offline) logging costs.

Usage::

    uv run python bench/simulate_tracking.py [--reps 5] [--steps 64] [--write-results]

Simulator (named baseline: ``generate_rows``, building the 64 rows in memory):

* ``simulate_trajectory`` into a SQLite file, one committed transaction per step;
* the CLI end to end (``python -m fle_core.sweeps.simulate``, a fresh interpreter).

W&B, offline mode in a temp dir (named baseline: a bare ``wandb.init`` +
``finish`` with default settings, no logging):

* ``log_job_run`` with a 64-step history (includes waiting for the run file);
* ``log_sweep_summary`` with a 6 models × 24 tasks table;
* a ``WandBLogger`` session: metrics, one table, one Altair chart, finish.

The first W&B run in a process also starts the wandb-core service; it is
reported separately and excluded from the medians. Prints medians and ratios;
``--write-results`` writes ``bench/RESULTS-simulate-tracking.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def _median_time(fn, reps: int) -> float:
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_simulator(tmp: Path, reps: int, steps: int) -> list[tuple[str, float, str]]:
    from fle_core.sweeps import simulate as sim

    base = _median_time(
        lambda i: sim.generate_rows(
            "gpt-4o", "iron_ore_throughput", version=i, trial=i, steps=steps, quota=16.0
        ),
        reps,
    )
    url = f"sqlite:///{tmp / 'sim.db'}"
    write = _median_time(
        lambda i: sim.simulate_trajectory(
            url, "gpt-4o", "iron_ore_throughput", 100 + i, trial=i, steps=steps
        ),
        reps,
    )
    cli = _median_time(
        lambda i: subprocess.run(
            [
                sys.executable,
                "-m",
                "fle_core.sweeps.simulate",
                "--source",
                url,
                "--model",
                "gpt-4o",
                "--task",
                "iron_ore_throughput",
                "--version",
                str(200 + i),
                "--steps",
                str(steps),
            ],
            check=True,
            capture_output=True,
        ),
        reps,
    )
    return [
        ("generate_rows (baseline)", base, "1.0×"),
        (f"simulate_trajectory → SQLite, {steps} commits", write, f"{write / base:.1f}×"),
        ("CLI subprocess end to end", cli, f"{cli / base:.1f}×"),
    ]


def bench_wandb(tmp: Path, reps: int, steps: int) -> tuple[float, list[tuple[str, float, str]]]:
    import altair as alt
    import wandb

    from fle_core import tracking as tr

    os.environ["WANDB_MODE"] = "offline"
    wdir = tmp / "wandb"
    wdir.mkdir()
    t0 = time.perf_counter()
    wandb.init(project="bench", dir=str(wdir), reinit="create_new").finish()
    first = time.perf_counter() - t0

    base = _median_time(
        lambda i: wandb.init(project="bench", dir=str(wdir), reinit="create_new").finish(), reps
    )
    frame = pl.DataFrame(
        {
            "depth": [float(d) for d in range(steps)],
            "value": [d * 0.3 for d in range(steps)],
            "total_tokens": [4000 + 50 * d for d in range(steps)],
        }
    )
    job = _median_time(
        lambda i: tr.log_job_run(
            sweep_id="b",
            model="gpt-4o",
            task="iron_ore_throughput",
            trial=i,
            version=i,
            attempt=1,
            retry_count=0,
            completion_status="successful",
            params={},
            steps=frame,
            tags=[],
            project="bench",
            wandb_dir=wdir,
        ),
        reps,
    )
    table = pl.DataFrame(
        {
            "model": [f"m{i}" for i in range(6) for _ in range(24)],
            "task": [f"t{j}" for _ in range(6) for j in range(24)],
            "n": [8] * 144,
            "successes": [i % 9 for i in range(144)],
        }
    )
    summary = _median_time(
        lambda i: tr.log_sweep_summary(
            sweep_id="b", name="bench", table=table, tags=[], project="bench", wandb_dir=wdir
        ),
        reps,
    )
    chart = alt.Chart(table).mark_bar().encode(x="model:N", y="n:Q")

    def session(i):
        with tr.WandBLogger(project="bench", dir=wdir) as lg:
            lg.log_performance_metrics({"success_rate": 0.2, "n": 8}, model="gpt-4o")
            lg.log_metrics_table("leaderboard", table)
            lg.log_chart("bars", chart)

    logger = _median_time(session, reps)
    rows = [
        ("bare wandb.init + finish (baseline)", base, "1.0×"),
        (f"log_job_run ({steps}-step history)", job, f"{job / base:.1f}×"),
        ("log_sweep_summary (144-row table)", summary, f"{summary / base:.1f}×"),
        ("WandBLogger session (metrics + table + chart)", logger, f"{logger / base:.1f}×"),
    ]
    return first, rows


def _table(rows: list[tuple[str, float, str]]) -> str:
    lines = ["| case | median | ratio |", "|---|---|---|"]
    lines += [f"| {name} | {sec * 1000:.1f} ms | {ratio} |" for name, sec, ratio in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sim_rows = bench_simulator(tmp, args.reps, args.steps)
        first, wb_rows = bench_wandb(tmp, args.reps, args.steps)
    report = (
        f"# Simulator and W&B logging benchmark\n\n"
        f"Date: {dt.date.today()}; machine: 2 cores / 24 GiB, noisy shared machine "
        f"(other engineers' tests running); Python {platform.python_version()}; "
        f"reps={args.reps} (medians).\n\n"
        f"## Simulated FLE agent ({args.steps} steps, SQLite, zero delay)\n\n"
        f"{_table(sim_rows)}\n\n"
        f"## W&B offline logging\n\n"
        f"First W&B run in the process (starts the wandb-core service): {first:.2f} s.\n\n"
        f"{_table(wb_rows)}\n"
    )
    print(report)
    if args.write_results:
        (ROOT / "bench" / "RESULTS-simulate-tracking.md").write_text(report)


if __name__ == "__main__":
    main()
