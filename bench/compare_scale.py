"""`fle-core compare` at scale: a 100 MB runs file and 10,000 branches (issue 23, item 10).

Writes the runs files, runs the real CLI as a subprocess and records its wall time and
peak RSS (``os.wait4``, the child's own), against a baseline measured in the same run:
``pandas.read_csv`` of the same file in a subprocess (just reading it, no statistics).
Prints medians of ``--repeats`` runs and the ratios. Results: bench/RESULTS-compare-scale.md.

    uv run python bench/compare_scale.py            # 100 MB file + 10,000 branches, 3 repeats
    uv run python bench/compare_scale.py --mb 20 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYSTEMS, TASKS = 20, 4


def write_big(path: Path, megabytes: float) -> int:
    """``branch,seed,task,loss,throughput,level`` rows until the file holds ``megabytes`` MB."""
    rnd = random.Random(0)
    limit, rows = megabytes * 1e6, 0
    with path.open("w") as f:
        f.write("branch,seed,task,loss,throughput,level\n")
        seed = 0
        while f.tell() < limit:
            seed += 1
            lines = []
            for s in range(SYSTEMS):
                branch = "main" if s == 0 else f"pr-{s}"
                for t in range(TASKS):
                    loss = rnd.gauss(2.0 - 0.002 * s, 0.5)
                    lines.append(
                        f"{branch},{seed},task-{t},{loss:.4f},{rnd.gauss(0.6, 0.1):.4f},{rnd.randint(1, 30)}\n"
                    )
            f.writelines(lines)
            rows += len(lines)
    return rows


def write_branches(path: Path, branches: int) -> int:
    rnd = random.Random(1)
    with path.open("w") as f:
        f.write("branch,seed,loss\n")
        for b in range(branches):
            name = "main" if b == 0 else f"pr-{b}"
            f.writelines(f"{name},{s},{rnd.gauss(2.0, 0.5):.4f}\n" for s in range(5))
    return branches * 5


def measure(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:4]} failed: {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def compare_cli(path: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fle_core",
        "compare",
        str(path),
        "--baseline",
        "main",
        "--out",
        str(out),
        *extra,
    ]


def pandas_read(path: Path) -> list[str]:
    return [sys.executable, "-c", f"import pandas; pandas.read_csv({str(path)!r})"]


def run(label: str, path: Path, cli: list[str], repeats: int) -> None:
    rows = []
    for _ in range(repeats):
        rows.append((*measure(cli), *measure(pandas_read(path))))
    wall = statistics.median(r[0] for r in rows)
    rss = statistics.median(r[1] for r in rows)
    p_wall = statistics.median(r[2] for r in rows)
    p_rss = statistics.median(r[3] for r in rows)
    size = path.stat().st_size / 1e6
    print(f"\n{label}: {path.name}, {size:.1f} MB, load {os.getloadavg()[0]:.1f}")
    for r in rows:
        print(f"  run: compare {r[0]:.1f} s {r[1]:.0f} MB | pandas.read_csv {r[2]:.1f} s {r[3]:.0f} MB")
    print(f"  median: compare {wall:.1f} s, peak RSS {rss:.0f} MB")
    print(f"  baseline pandas.read_csv (same file, same run): {p_wall:.1f} s, peak RSS {p_rss:.0f} MB")
    print(f"  ratio: time {wall / p_wall:.1f}x, memory {rss / p_rss:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100.0, help="size of the big runs file (default 100)")
    ap.add_argument("--branches", type=int, default=10_000, help="branches in the many-branch file")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big = folder / "big.csv"
        n = write_big(big, args.mb)
        print(f"{big.name}: {n:,} runs, {SYSTEMS} systems x {TASKS} tasks x 3 metrics")
        run("100 MB runs file", big, compare_cli(big, folder / "big.md", "--per-seed", "none"), args.repeats)
        many = folder / "branches.csv"
        n = write_branches(many, args.branches)
        print(f"\n{many.name}: {n:,} runs, {args.branches:,} branches x 5 seeds")
        run("many branches", many, compare_cli(many, folder / "many.md", "--per-seed", "none"), args.repeats)
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
