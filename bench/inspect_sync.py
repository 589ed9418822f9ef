"""Benchmark: syncing a folder of Inspect logs (what ``fle inspect-eval`` writes).

Usage::

    uv run python bench/inspect_sync.py [--logs 1000] [--epochs 8] [--steps 64] [--chunked]
                                        [--data-dir bench/_data] [--reps 5] [--write-results]

``--chunked`` runs the same measurements on the same logs converted by inspect_ai's
``inspect log convert-chunked`` (every sample chunked, as Inspect's design notes say all
new-format samples will be). inspect_ai 0.3.285 cannot read chunked samples, so the
baseline stays the ``read_eval_log_samples`` loop over the *plain* logs, measured in the
same run; ``samples_df`` is skipped (it reads no chunked sample).

1. **Data** (generated once, cached in ``--data-dir``): ``--logs`` logs written by real
   inspect_ai running the FLE-shaped test task (``tests/fle_inspect_task.py``) on
   ``mockllm/...`` models, each ``--epochs`` epochs of ``--steps``-step trajectories
   with the per-step ``TrajectoryData`` store; plus ``--reps`` spare logs that arrive later.
2. **In one run**, on the same machine and data:
   * ``read_eval_log_samples`` over every log (store included): inspect_ai's own reader,
     the baseline; and ``inspect_ai.analysis.samples_df`` over the folder, a second one;
   * the initial sync into an empty warehouse (in a child process, for its peak RSS);
   * a re-sync of the unchanged folder (median of ``--reps``);
   * one new log arriving, then a sync (median of ``--reps``).
3. Prints medians and ratios; ``--write-results`` writes ``bench/RESULTS-inspect.md``.

Targets (issue 10): initial sync >= 3x faster than the ``read_eval_log_samples`` loop,
unchanged re-sync <= 0.3 s, one new log <= 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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

TASKS = [
    "iron_ore_throughput",
    "iron_plate_throughput",
    "iron_gear_wheel_throughput",
    "steel_plate_throughput",
    "stone_wall_throughput",
    "sulfur_throughput",
    "plastic_bar_throughput",
    "inserter_throughput",
    "electronic_circuit_throughput",
    "advanced_circuit_throughput",
    "processing_unit_throughput",
    "engine_unit_throughput",
    "battery_throughput",
    "low_density_structure_throughput",
    "piercing_round_throughput",
    "automation_science_pack_throughput",
    "logistics_science_pack_throughput",
    "chemical_science_pack_throughput",
    "military_science_pack_throughput",
    "production_science_pack_throughput",
    "utility_science_pack_throughput",
    "crude_oil_throughput",
    "petroleum_gas_throughput",
    "sufuric_acid_throughput",
]


def _generate_worker(out: Path, start: int, stop: int, epochs: int, steps: int) -> None:
    """Write logs ``start..stop`` (log i: model m{i // 24}, task TASKS[i % 24]); one
    ``eval()`` call per model runs its tasks together (one log per task)."""
    from fle_inspect_task import throughput
    from inspect_ai import eval as inspect_eval

    by_model: dict[int, list[int]] = {}
    for i in range(start, stop):
        by_model.setdefault(i // len(TASKS), []).append(i)
    for m, idx in sorted(by_model.items()):
        tasks = []
        for i in idx:
            task = TASKS[i % len(TASKS)]
            quota = (
                "250"
                if task in ("crude_oil_throughput", "petroleum_gas_throughput", "sufuric_acid_throughput")
                else "16"
            )
            tasks.append(throughput(env_id=task, quota=quota, steps=steps, model_calls="once"))
        inspect_eval(
            tasks,
            model=f"mockllm/m{m:02d}",
            epochs=epochs,
            log_dir=str(out / f"part{m:02d}"),
            display="none",
            log_level="error",
            log_realtime=False,
            max_tasks=len(tasks),
        )


def generate(data: Path, logs: int, spare: int, epochs: int, steps: int) -> tuple[Path, Path]:
    """The cached folder of ``logs`` logs and a folder of ``spare`` logs arriving later."""
    main, extra = data / "logs", data / "spare"
    stamp = data / f"done-{logs}-{epochs}-{steps}"
    if stamp.exists():
        have = len(list(extra.glob("*.eval")))
        if have < spare:  # more arrivals asked for: write only those
            _generate_worker(extra / "more", logs + have, logs + spare, epochs, steps)
            for f in (extra / "more").rglob("*.eval"):
                f.rename(extra / f.name)
            shutil.rmtree(extra / "more", ignore_errors=True)
        return main, extra
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    t0 = time.monotonic()
    workers = 2
    per = -(-logs // workers)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(main),
                str(w * per),
                str(min(logs, (w + 1) * per)),
                str(epochs),
                str(steps),
            ]
        )
        for w in range(workers)
    ]
    for p in procs:
        assert p.wait() == 0
    _generate_worker(extra, logs, logs + spare, epochs, steps)
    for sub in extra.iterdir():  # flatten: one file per arrival
        for f in sub.iterdir():
            f.rename(extra / f.name)
        sub.rmdir()
    print(f"generated {logs} + {spare} logs in {time.monotonic() - t0:.0f} s", flush=True)
    stamp.touch()
    return main, extra


def chunked(folder: Path, out: Path) -> Path:
    """``folder`` converted by ``inspect log convert-chunked`` (cached in ``out``)."""
    stamp = out.with_name(out.name + ".done")
    if not stamp.exists():
        shutil.rmtree(out, ignore_errors=True)
        inspect = Path(sys.executable).with_name("inspect")
        subprocess.run(
            [str(inspect), "log", "convert-chunked", str(folder), "--output-dir", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stamp.touch()
    return out


def _log_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.eval"))


def time_read_eval_log_samples(folder: Path) -> tuple[float, int]:
    from inspect_ai.log import read_eval_log_samples

    t0 = time.perf_counter()
    n = 0
    for path in _log_files(folder):
        for sample in read_eval_log_samples(str(path), all_samples_required=False):
            assert sample.store is not None
            n += 1
    return time.perf_counter() - t0, n


def time_samples_df(folder: Path) -> tuple[float, int]:
    from inspect_ai.analysis import samples_df

    t0 = time.perf_counter()
    df = samples_df(str(folder), quiet=True)
    return time.perf_counter() - t0, len(df)


_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace
ws = Workspace.open({ws!r})
t0 = time.perf_counter()
r = sync(ws, source={folder!r})
dt = time.perf_counter() - t0
print(dt, r.rows_added, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def initial_sync(folder: Path, ws_root: Path) -> tuple[float, int, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT), ws=str(ws_root), folder=str(folder))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--data-dir", default=str(ROOT / "bench" / "_data" / "inspect"))
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--chunked", action="store_true", help="the same logs with chunked samples")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        out, a, b, e, s = args.worker
        _generate_worker(Path(out), int(a), int(b), int(e), int(s))
        return 0
    main_dir, spare = generate(Path(args.data_dir), args.logs, args.reps, args.epochs, args.steps)
    plain_dir = main_dir
    if args.chunked:
        main_dir = chunked(main_dir, Path(args.data_dir) / "chunked")
        spare = chunked(spare, Path(args.data_dir) / "chunked-spare")
    from fle_core.warehouse.sync import sync
    from fle_core.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-inspect-"))
    try:
        logs = tmp / "logs"
        shutil.copytree(main_dir, logs)
        n_logs = len(_log_files(logs))
        t_sync, rows, rss = initial_sync(logs, tmp / "ws")
        print(f"initial sync: {t_sync:.2f} s, {rows:,} steps, peak RSS {rss:.0f} MB", flush=True)
        t_api, n_samples = time_read_eval_log_samples(plain_dir)
        print(f"read_eval_log_samples loop: {t_api:.2f} s for {n_samples:,} samples", flush=True)
        t_df, n_df = (float("nan"), 0) if args.chunked else time_samples_df(logs)
        print(f"samples_df: {t_df:.2f} s ({n_df:,} rows)", flush=True)
        ws = Workspace.open(tmp / "ws")
        resync = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            r = sync(ws, source=str(logs))
            resync.append(time.perf_counter() - t0)
            assert r.rows_added == 0
        arrive = []
        for f in sorted(spare.glob("*.eval"))[: args.reps]:
            shutil.copy(f, logs / f.name)
            t0 = time.perf_counter()
            r = sync(ws, source=str(logs))
            arrive.append(time.perf_counter() - t0)
            assert r.rows_added == args.epochs * args.steps, r.rows_added
        med_resync, med_arrive = statistics.median(resync), statistics.median(arrive)
        shape = "chunked samples (`inspect log convert-chunked`)" if args.chunked else "plain samples"
        lines = [
            f"## {shape} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"Machine: {platform.node()}, {os.cpu_count()} cores (shared, noisy; 1-minute load average "
            f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}.",
            f"Data: {n_logs} `.eval` logs written by real inspect_ai 0.3.285 ({n_samples:,} samples = "
            f"{args.epochs} epochs each, {args.steps}-step trajectories with the `TrajectoryData` store; "
            f"{rows:,} steps), `bench/inspect_sync.py`.",
            "",
            "| what | time | ratio / target |",
            "|---|---|---|",
            f"| `read_eval_log_samples` over every {'plain ' if args.chunked else ''}log (store included) — baseline "
            f"| {t_api:.2f} s ({1000 * t_api / n_samples:.1f} ms/sample) | 1.0 |",
            *(
                []
                if args.chunked
                else [
                    f"| `inspect_ai.analysis.samples_df` over the folder | {t_df:.2f} s | {t_api / t_df:.1f}x faster than the loop |"
                ]
            ),
            f"| **initial sync** (child process; peak RSS {rss:.0f} MB) | {t_sync:.2f} s "
            f"({1000 * t_sync / n_samples:.2f} ms/sample) | **{t_api / t_sync:.1f}x** faster than the loop (target >= 3x) |",
            f"| re-sync, nothing changed (median of {len(resync)}) | {med_resync:.3f} s | target <= 0.3 s |",
            f"| one new log arrives (median of {len(arrive)}) | {med_arrive:.3f} s | target <= 0.5 s |",
            "",
            f"Re-sync runs: {', '.join(f'{t:.3f}' for t in resync)} s. New-log runs: {', '.join(f'{t:.3f}' for t in arrive)} s.",
            "The initial sync reads the zip members itself (format version 2; any other version goes "
            "through inspect_ai's API) and never builds pydantic models; an unchanged log is not opened "
            "(size + mtime), and an unchanged folder opens no sync run at all.",
        ]
        print("\n".join(lines))
        if args.write_results:  # one section per shape, the other kept
            path = ROOT / "bench" / "RESULTS-inspect.md"
            old = path.read_text() if path.exists() else ""
            keep = [sec for sec in old.split("\n## ")[1:] if not sec.startswith(shape)]
            head = "# Inspect-log sync benchmark (`bench/inspect_sync.py`)\n"
            path.write_text(
                head
                + "".join("\n## " + sec.rstrip("\n") + "\n" for sec in keep)
                + "\n"
                + "\n".join(lines)
                + "\n"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _ = resource
    return 0


if __name__ == "__main__":
    sys.exit(main())
