"""Benchmark: Slurm runner pilots against the local runner, on a real one-node cluster.

Usage::

    uv run python bench/slurm.py [--jobs 200] [--reps 3] [--pilots 4] [--write-results]

Starts the same one-node Slurm cluster the tests use (tests/slurm_cluster.py: its
own munged, slurmctld, slurmd). Each sweep has ``--jobs`` no-op jobs (``/bin/true``
through a ``command`` preset, ``max_retries=0``; the no-op writes no rows, so each
ends ``empty``: the same claim/finish transactions as a success), on the embedded
SQLite control store, sync off. Measured in the same run, repetitions interleaved:

1. **Time to first job.** Wall time from invoking ``fle-core runner --slurm N``
   (the CLI process, ``--pilots`` pilots) to the ``started_at`` of the sweep's first
   attempt. Broken down into the CLI's own run (argument parsing, ``sbatch``) and
   what follows (slurmctld scheduling, slurmd launching the batch step, the pilot's
   Python start-up and first claim).
2. **Per-job overhead, pilot vs local.** One pilot (``--slurm 1 --max-concurrent 2``)
   and one local runner (``fle-core runner --once --max-concurrent 2``) each work a
   fresh sweep; per job = (last attempt's end − first attempt's start) / jobs. The
   local runner is the baseline; the ratio says what running inside a Slurm job costs
   per job once the pilot is up.

It prints medians and ratios; ``--write-results`` writes bench/RESULTS-slurm.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from slurm_cluster import SlurmCluster

from fle_core import sweeps as sm
from fle_core.sweeps.config import SweepConfig
from fle_core.workspace import Workspace

NOOP = shutil.which("true") or "/bin/true"


def make_ws(root: Path) -> Workspace:
    root.mkdir(parents=True)
    (root / "config.toml").write_text(f'[executors.noop]\nkind = "command"\ncommand = ["{NOOP}"]\n')
    return Workspace.open(root)


def launch(ws: Workspace, jobs: int, name: str) -> str:
    cfg = SweepConfig(
        name=name,
        models=[f"m{i}" for i in range(jobs)],
        tasks=["iron_ore_throughput"],
        executor="noop",
        max_concurrent=64,
        max_retries=0,
        timeout_s=60,
    )
    return sm.launch(ws, cfg)


def cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )


def wait_done(ws: Workspace, sweep_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sm.status(ws, sweep_id).status == "completed":
            return
        time.sleep(0.1)
    raise RuntimeError(f"{sweep_id} did not finish")


def span(ws: Workspace, sweep_id: str) -> tuple[float, float, int]:
    attempts = sm.open_store(ws).attempts(sweep_id)
    assert all(a.ended_at for a in attempts)
    return min(a.started_at for a in attempts), max(a.ended_at for a in attempts), len(attempts)


def first_job(ws: Workspace, cluster: SlurmCluster, jobs: int, pilots: int, rep: int) -> dict:
    sweep_id = launch(ws, jobs, f"first{rep}")
    t0 = time.time()
    out = cli(ws, "runner", "--slurm", str(pilots), "--max-concurrent", "2", "--sweep", sweep_id)
    t_cli = time.time()
    job = out.stdout.strip()
    wait_done(ws, sweep_id)
    start, _end, n = span(ws, sweep_id)
    assert n == jobs
    cluster.cancel_all()
    return {"job": job, "to_first_s": start - t0, "cli_s": t_cli - t0, "after_cli_s": start - t_cli}


def per_job(ws: Workspace, cluster: SlurmCluster, jobs: int, rep: int, where: str) -> float:
    sweep_id = launch(ws, jobs, f"{where}{rep}")
    if where == "pilot":
        cli(ws, "runner", "--slurm", "1", "--max-concurrent", "2", "--sweep", sweep_id)
    else:
        cli(ws, "runner", "--once", "--no-sync", "--max-concurrent", "2", "--sweep", sweep_id)
    wait_done(ws, sweep_id)
    start, end, n = span(ws, sweep_id)
    assert n == jobs
    cluster.cancel_all()
    return (end - start) / jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pilots", type=int, default=4)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()

    cluster = SlurmCluster.start(cpus=8)
    os.environ.update(cluster.env)
    version = cluster.run("sinfo", "--version", check=False).stdout.strip() or "unknown"
    tmp = Path(tempfile.mkdtemp(prefix="fle-bench-slurm-"))
    load0 = os.getloadavg()[0]
    firsts, local, pilot = [], [], []
    try:
        ws = make_ws(tmp / "ws")
        for rep in range(args.reps):
            firsts.append(first_job(ws, cluster, args.jobs, args.pilots, rep))
            local.append(per_job(ws, cluster, args.jobs, rep, "local"))
            pilot.append(per_job(ws, cluster, args.jobs, rep, "pilot"))
            print(
                f"rep {rep}: first job {firsts[-1]['to_first_s']:.2f}s (cli {firsts[-1]['cli_s']:.2f}s), "
                f"per job local {local[-1] * 1000:.1f} ms, pilot {pilot[-1] * 1000:.1f} ms",
                flush=True,
            )
    finally:
        cluster.cancel_all()
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()[0]
    med = statistics.median
    res = {
        "to_first": med(f["to_first_s"] for f in firsts),
        "cli": med(f["cli_s"] for f in firsts),
        "after_cli": med(f["after_cli_s"] for f in firsts),
        "local_ms": med(local) * 1000,
        "pilot_ms": med(pilot) * 1000,
    }
    res["ratio"] = res["pilot_ms"] / res["local_ms"]
    res["rep_ratio"] = med(p / lo for p, lo in zip(pilot, local, strict=True))
    res["version"] = version
    print(
        f"\nmedians over {args.reps} reps, {args.jobs} no-op jobs: time to first job "
        f"{res['to_first']:.2f}s ({args.pilots} pilots; CLI incl. sbatch {res['cli']:.2f}s, then "
        f"{res['after_cli']:.2f}s); per job: local runner {res['local_ms']:.1f} ms, pilot "
        f"{res['pilot_ms']:.1f} ms, ratio {res['ratio']:.2f}x (median of per-rep ratios "
        f"{res['rep_ratio']:.2f}x); load {load0:.1f} -> {load1:.1f}"
    )
    if args.write_results:
        write_results(args, res, firsts, local, pilot, load0, load1)


def write_results(args, res, firsts, local, pilot, load0, load1) -> None:
    now = datetime.now(UTC)
    rows = "\n".join(
        f"| {i} | {f['to_first_s']:.2f} s | {f['cli_s']:.2f} s | {lo * 1000:.1f} ms | {pi * 1000:.1f} ms |"
        for i, (f, lo, pi) in enumerate(zip(firsts, local, pilot, strict=True))
    )
    text = f"""# Slurm pilots benchmark (`bench/slurm.py`)

Measured {now:%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, shared and noisy;
1-min load average {load0:.1f} at the start, {load1:.1f} at the end), Python {platform.python_version()},
{res["version"]}
(a one-node cluster started by the script: slurmctld + slurmd on this machine, 8 advertised CPUs).
{args.jobs} no-op jobs (`/bin/true`) per sweep, SQLite control store, sync off; medians of
{args.reps} interleaved repetitions.

| measure | median |
|---|---|
| **time from `fle-core runner --slurm {args.pilots}` to the first job starting** | **{res["to_first"]:.2f} s** |
| of which the CLI itself (start-up, `sbatch`, recording the submission) | {res["cli"]:.2f} s |
| of which after `sbatch` returned (scheduling, batch step launch, pilot start-up, first claim) | {res["after_cli"]:.2f} s |
| per-job time, local runner (baseline), concurrency 2 | {res["local_ms"]:.1f} ms |
| per-job time, one pilot, concurrency 2 | {res["pilot_ms"]:.1f} ms |
| **ratio pilot / local** (of the medians; median of the per-rep ratios) | **{res["ratio"]:.2f}×** ({res["rep_ratio"]:.2f}×) |

Per-job time is (last attempt end − first attempt start) / jobs for a runner working a
fresh sweep alone, i.e. the scheduling overhead per job (the job itself takes ~1 ms).

| rep | to first job | CLI | local per job | pilot per job |
|---|---|---|---|---|
{rows}

Reproduce: `uv run python bench/slurm.py --jobs {args.jobs} --reps {args.reps} --pilots {args.pilots} --write-results`
(root, Debian `slurm-wlm` and `munge`).
"""
    (ROOT / "bench" / "RESULTS-slurm.md").write_text(text)
    print("wrote bench/RESULTS-slurm.md")


if __name__ == "__main__":
    main()
