"""Benchmark: the sweep runner's scheduling overhead, and claim latency on Postgres.

Usage::

    uv run python bench/runner.py [--jobs 1000] [--cells-per-runner 250] [--write-results]

1. **Scheduling overhead.** One runner (concurrency 2, sync off) works a sweep of
   ``--jobs`` no-op jobs (``/bin/true`` through a ``command`` preset). Per job,
   *overhead* = time from the start of its claim to the return of ``Popen`` (claim
   transaction with version reservation, executor build, log file, spawn, pid
   bookkeeping) **plus** time from the runner noticing the exit to the end of the
   bookkeeping (process-group cleanup, completion check against the source,
   ``finish_attempt`` transaction, sweep-completion check). Exits are noticed
   through pidfds, so the wait between a job's exit and the runner waking is ~0.
   Baseline, same run: spawning the same ``/bin/true`` 1,000 times serially with
   ``subprocess.Popen(...).wait()``. The no-op writes no FLE rows, so each job
   ends as ``empty`` (with ``max_retries=0``): the same transactions as a success.
2. **Claim latency.** 4 runner processes claim (and immediately finish) cells of
   one sweep on a throwaway Postgres cluster (``fsync=off``, like the tests);
   each ``store.claim`` call is timed. Baseline, same run: 1 process on a fresh
   sweep. The same on the embedded SQLite store, for comparison.

It prints medians/p95 and ratios; ``--write-results`` writes bench/RESULTS-runner.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fle_core import sweeps as sm
from fle_core.sweeps.config import SweepConfig
from fle_core.sweeps.runner import Runner
from fle_core.sweeps.store import SqliteControlStore, SweepRecord
from fle_core.workspace import Workspace

NOOP = shutil.which("true") or "/bin/true"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


# ---- 1. scheduling overhead ---------------------------------------------------------------
class TimedRunner(Runner):
    """Records, per job, claim→spawned and exit-noticed→bookkeeping-done."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.pre: dict[str, float] = {}
        self.post: dict[str, float] = {}
        self._t_claim = 0.0
        claim = self.store.claim

        def timed_claim(*args, **kwargs):
            self._t_claim = time.perf_counter()
            return claim(*args, **kwargs)

        self.store.claim = timed_claim  # type: ignore[method-assign]

    def _start(self, claim, now):
        super()._start(claim, now)
        self.pre[claim.attempt.attempt_id] = time.perf_counter() - self._t_claim

    def _poll(self, now):
        t0 = time.perf_counter()
        before = set(self.running)
        n = super()._poll(now)
        done = before - set(self.running)
        if done:  # bookkeeping for jobs finished in this pass, shared equally
            each = (time.perf_counter() - t0) / len(done)
            for aid in done:
                self.post[aid] = each
        return n


def bench_overhead(jobs: int, work: Path) -> dict:
    ws = Workspace.open(work / "ws-overhead")
    (ws.root / "config.toml").write_text(f'[executors.noop]\nkind = "command"\ncommand = ["{NOOP}"]\n')
    ws = Workspace.open(ws.root)
    models = [f"m{i}" for i in range(jobs // 10)]
    cfg = SweepConfig(
        name="bench",
        models=models,
        tasks=["iron_ore_throughput"],
        num_trials_per_config=10,
        executor="noop",
        max_concurrent=2,
        max_retries=0,
        timeout_s=60,
    )
    sweep_id = sm.launch(ws, cfg)
    runner = TimedRunner(ws, sm.open_store(ws), max_concurrent=2, sync=False, lease_s=60)
    t0 = time.perf_counter()
    runner.run(once=True)
    wall = time.perf_counter() - t0
    att = sm.open_store(ws).attempts(sweep_id)
    assert len(att) == jobs and {a.outcome for a in att} == {"empty"}, "every job should run once"
    over = [runner.pre[a] + runner.post[a] for a in runner.pre if a in runner.post]
    base = []
    for _ in range(jobs):
        t = time.perf_counter()
        subprocess.Popen([NOOP]).wait()
        base.append(time.perf_counter() - t)
    return {
        "jobs": jobs,
        "wall_s": wall,
        "jobs_per_s": jobs / wall,
        "overhead_median_ms": statistics.median(over) * 1e3,
        "overhead_p95_ms": pct(over, 0.95) * 1e3,
        "pre_median_ms": statistics.median(runner.pre.values()) * 1e3,
        "post_median_ms": statistics.median(runner.post.values()) * 1e3,
        "spawn_median_ms": statistics.median(base) * 1e3,
        "spawn_total_s": sum(base),
    }


# ---- 2. claim latency ----------------------------------------------------------------------------
def _make_store(url_or_path: str):
    if url_or_path.startswith("postgresql://"):
        from fle_core.sweeps.store.postgres import PostgresControlStore

        return PostgresControlStore(url_or_path)
    return SqliteControlStore(url_or_path)


def _seed_sweep(store, sweep_id: str, cells: int) -> None:
    cfg = SweepConfig(
        name=sweep_id,
        models=[f"m{i}" for i in range(cells // 10)],
        tasks=["iron_ore_throughput"],
        num_trials_per_config=10,
        max_concurrent=1000,
        confirm_large=True,
    )
    now = time.time()
    store.create_sweep(
        SweepRecord(
            sweep_id=sweep_id,
            name=sweep_id,
            status="active",
            config_json=cfg.model_dump_json(),
            executor="simulate",
            source="local",
            max_concurrent=1000,
            max_retries=0,
            retry_backoff_s=0,
            retry_backoff_max_s=0,
            early_stop=False,
            wandb=False,
            created_at=now,
            updated_at=now,
        ),
        cfg.cells(),
    )


def _claimer(args) -> list[float]:
    target, sweep_id, name, start_at = args
    store = _make_store(target)
    while time.time() < start_at:
        time.sleep(0.001)
    lat = []
    srcs = {"local": ("bench-key", 0)}
    while True:
        t = time.perf_counter()
        c = store.claim(name, "bench", time.time(), 60, srcs, [sweep_id])
        dt = time.perf_counter() - t
        if c is None:
            break
        lat.append(dt)
        store.finish_attempt(c.attempt.attempt_id, name, "succeeded", time.time(), exit_code=0)
    store.close()
    return lat


def bench_claims(target: str, runners: int, cells: int) -> dict:
    sweep_id = f"claims{runners}_{os.getpid()}_{time.monotonic_ns()}"
    seed = _make_store(target)
    _seed_sweep(seed, sweep_id, cells)
    seed.close()
    ctx = mp.get_context("spawn")
    with ctx.Pool(runners) as pool:
        start_at = time.time() + 3.0  # all processes connected and waiting before the start
        parts = pool.map(_claimer, [(target, sweep_id, f"r{i}", start_at) for i in range(runners)])
    lat = [x for p in parts for x in p]
    assert len(lat) == cells, "every cell claimed exactly once"
    return {
        "runners": runners,
        "claims": len(lat),
        "median_ms": statistics.median(lat) * 1e3,
        "p95_ms": pct(lat, 0.95) * 1e3,
    }


def start_cluster(root: Path):
    import glob

    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)[0])
    datadir = root / "pgdata"
    datadir.mkdir(parents=True)

    def as_pg(cmd):
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(datadir, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        as_pg([str(bindir / "initdb"), "-D", str(datadir), "--auth=trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        as_pg(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                opts,
                "-l",
                str(datadir / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )

    def stop():
        subprocess.run(
            as_pg([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


# ---- main ---------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--cells-per-runner", type=int, default=250)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fle-bench-runner-"))
    try:
        over = bench_overhead(args.jobs, work)
        print(f"overhead: {over}")
        url, stop = start_cluster(Path(tempfile.mkdtemp(prefix="fle-bench-pg-")))
        try:
            n4 = 4 * args.cells_per_runner
            claims = {
                "pg1": bench_claims(url, 1, args.cells_per_runner),
                "pg4": bench_claims(url, 4, n4),
                "sqlite1": bench_claims(str(work / "c1.db"), 1, args.cells_per_runner),
                "sqlite4": bench_claims(str(work / "c4.db"), 4, n4),
            }
        finally:
            stop()
        for k, v in claims.items():
            print(f"claims {k}: {v}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.write_results:
        write_results(over, claims)


def write_results(o: dict, c: dict) -> None:
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Runner benchmark (`bench/runner.py`)",
        "",
        f"Measured {date} on {platform.node()} (2 cores / 24 GiB, shared and noisy: other engineers' "
        f"tests ran at the same time; 1-min load average {os.getloadavg()[0]:.1f} when written), "
        f"Python {platform.python_version()}. Medians unless stated.",
        "",
        f"## Scheduling overhead: {o['jobs']} no-op jobs, concurrency 2",
        "",
        "| measure | value |",
        "|---|---|",
        f"| **median overhead per job** (claim→spawned + exit→bookkeeping done) | **{o['overhead_median_ms']:.1f} ms** "
        f"(target ≤ 50 ms) |",
        f"| p95 overhead per job | {o['overhead_p95_ms']:.1f} ms |",
        f"| of which claim→spawned (median) | {o['pre_median_ms']:.1f} ms |",
        f"| of which exit→bookkeeping done (median) | {o['post_median_ms']:.1f} ms |",
        f"| baseline: serial spawn+wait of `/bin/true` (median) | {o['spawn_median_ms']:.2f} ms |",
        f"| ratio overhead / baseline spawn | {o['overhead_median_ms'] / o['spawn_median_ms']:.1f}× |",
        f"| runner wall time for {o['jobs']} jobs | {o['wall_s']:.1f} s ({o['jobs_per_s']:.0f} jobs/s) |",
        f"| baseline wall time, {o['jobs']} serial spawns | {o['spawn_total_s']:.1f} s |",
        "",
        "## Claim latency (`store.claim`, one sweep, each claim followed by a finish)",
        "",
        "| store | runners | claims | median | p95 |",
        "|---|---|---|---|---|",
    ]
    for key, label in (
        ("pg1", "Postgres (baseline: 1 runner)"),
        ("pg4", "Postgres"),
        ("sqlite1", "SQLite WAL (1 runner)"),
        ("sqlite4", "SQLite WAL"),
    ):
        v = c[key]
        lines.append(
            f"| {label} | {v['runners']} | {v['claims']} | {v['median_ms']:.2f} ms | {v['p95_ms']:.2f} ms |"
        )
    lines += [
        "",
        f"Postgres with 4 runners vs 1: median ×{c['pg4']['median_ms'] / c['pg1']['median_ms']:.2f}, "
        f"p95 ×{c['pg4']['p95_ms'] / c['pg1']['p95_ms']:.2f}. The 4 processes claim back to back "
        "from one sweep, so their claims queue on that sweep's row lock (`FOR UPDATE`, which keeps "
        "`max_concurrent` exact across hosts), and on 2 shared cores the claimers and the server "
        "compete for CPU; real runners claim once per job, minutes apart. The Postgres cluster runs "
        "with `fsync=off`, so production commits add the server's fsync time. Every cell was claimed "
        "exactly once in every configuration (asserted).",
        "",
    ]
    Path(ROOT / "bench" / "RESULTS-runner.md").write_text("\n".join(lines))
    print("wrote bench/RESULTS-runner.md")


if __name__ == "__main__":
    main()
