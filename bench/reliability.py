"""Benchmark: what the reliability work (issue 12) costs a sync, A/B against older code.

Usage::

    uv run python bench/reliability.py [--rows 200000] [--reps 3] [--baseline-src DIR]
                                       [--data-dir DIR] [--write-results]

``--baseline-src`` is a checkout of the code to compare with, set up with
``uv sync`` (e.g. ``git worktree add --detach BASE 0e5ce9f && cd BASE && uv sync
--frozen``); each measurement runs in a fresh process with either tree's
``.venv`` interpreter, alternating, in the same run and on the same data. Without it only the current tree is timed and
the in-run baseline is a fresh initial sync (the least a rebuild can cost).

Measured per tree (medians over ``--reps``):

* **initial SQLite / Postgres**: ``sync()`` of N rows into an empty warehouse
  (the poison checks on every batch, text columns read through ``CAST``);
* **idle Postgres**: a sync that finds nothing new on the N-row warehouse (the
  late-commit count below the overlap window is most of it);
* **+10k Postgres**: 10k appended rows, synced incrementally;
* **full SQLite**: ``sync --full`` of the N-row warehouse (rebuilt beside the
  old rows and swapped in, vs. delete-then-copy before).
"""

from __future__ import annotations

import argparse
import json
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


def child(argv: list[str]) -> None:
    """``_child WS URL [full]``: one ``sync()`` in this process; prints JSON timings."""
    import fle_core
    from fle_core.warehouse.sync import sync
    from fle_core.workspace import Workspace

    ws = Workspace.open(argv[0])
    tree = str(Path(fle_core.__file__).resolve().parents[1])
    t, cpu = time.perf_counter(), time.process_time()
    res = sync(ws, argv[1], full=len(argv) > 2)
    out = {"seconds": time.perf_counter() - t, "cpu": time.process_time() - cpu}
    print(json.dumps({**out, "rows": res.rows_added, "tree": tree}))


if __name__ == "__main__" and sys.argv[1:2] == ["_child"]:  # before bench/sync.py puts ROOT on the path
    child(sys.argv[2:])
    sys.exit(0)

sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import sync as bench_sync  # bench/sync.py: data generation, the Postgres cluster

APPEND = 10_000


def run(tree: Path, ws: Path, url: str, full: bool = False) -> dict:
    python = sys.executable if tree == ROOT else str(tree / ".venv" / "bin" / "python")
    args = [python, __file__, "_child", str(ws), url, *(["full"] if full else [])]
    proc = subprocess.run(args, capture_output=True, text=True, env=bench_sync.child_env())
    if proc.returncode:
        raise RuntimeError(f"sync under {tree} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["tree"]) == tree.resolve(), (out["tree"], "ran the wrong code tree")
    return out


def measure(tree: Path, work: Path, sqlite_url: str, pg_url: str, n: int, tag: str) -> dict:
    """One round of every measurement for one code tree."""
    out: dict[str, dict] = {}
    ws = work / f"ws-{tag}-sqlite"
    shutil.rmtree(ws, ignore_errors=True)
    out["initial SQLite"] = run(tree, ws, sqlite_url)
    out["full SQLite"] = run(tree, ws, sqlite_url, full=True)
    ws = work / f"ws-{tag}-pg"
    shutil.rmtree(ws, ignore_errors=True)
    out["initial Postgres"] = run(tree, ws, pg_url)
    out["idle Postgres"] = run(tree, ws, pg_url)
    _append(pg_url)
    got = run(tree, ws, pg_url)
    assert got["rows"] == APPEND, got
    out["+10k Postgres"] = got
    bench_sync.drop_appended(pg_url, n)
    return out


def _append(url: str) -> None:
    import psycopg

    with psycopg.connect(url) as con:
        top = con.execute("SELECT coalesce(max(version), 0) FROM programs").fetchone()[0]
    bench_sync.build_pg(url, APPEND, 0.5, first_version=top + 1, seed=7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--baseline-src", help="a checkout of the code to compare with")
    ap.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "fle-bench-reliability"))
    ap.add_argument("--write-results", action="store_true", help="append to bench/RESULTS-reliability.md")
    args = ap.parse_args()
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    db = data / f"src-{args.rows}.db"
    if bench_sync.sqlite_rows(db) != args.rows:
        db.unlink(missing_ok=True)
        bench_sync.build_sqlite(db, args.rows, 2.0)
    sqlite_url = f"sqlite:///{db}"
    trees = {"current": ROOT}
    if args.baseline_src:
        trees = {"baseline": Path(args.baseline_src).resolve(), **trees}
    pg_root = Path(tempfile.mkdtemp(prefix="fle-bench-pg-"))
    pg_url, stop = bench_sync.start_cluster(pg_root)
    started = datetime.now(UTC)
    try:
        bench_sync.build_pg(pg_url, args.rows, 2.0)
        rounds: dict[str, list[dict]] = {t: [] for t in trees}
        for rep in range(args.reps):
            for tag, tree in trees.items():  # alternate, so load drifts hit both trees alike
                rounds[tag].append(measure(tree, data, sqlite_url, pg_url, args.rows, f"{tag}{rep}"))
                print(tag, rep, {k: round(v["seconds"], 2) for k, v in rounds[tag][-1].items()}, flush=True)
    finally:
        stop()
        shutil.rmtree(pg_root, ignore_errors=True)
    medians = {
        t: {
            k: (statistics.median(r[k]["seconds"] for r in rs), statistics.median(r[k]["cpu"] for r in rs))
            for k in rs[0]
        }
        for t, rs in rounds.items()
    }
    lines = report(medians, rounds, args, started)
    print("\n".join(lines))
    if args.write_results:
        with open(ROOT / "bench" / "RESULTS-reliability.md", "a") as f:
            f.write("\n".join(lines) + "\n\n")


def report(medians: dict, rounds: dict, args, started: datetime) -> list[str]:
    """Markdown: wall and CPU medians per measurement (CPU time of the sync process is far
    less sensitive to other people's load than wall time)."""
    load = os.getloadavg()
    cur = medians["current"]
    lines = [
        f"## {started:%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} (shared machine: read medians and ratios)",
        "",
        f"`uv run python bench/reliability.py --rows {args.rows} --reps {args.reps}"
        + (" --baseline-src BASE`" if args.baseline_src else "`"),
        "",
    ]
    if "baseline" in medians:
        base = medians["baseline"]
        lines += [
            f"| measurement ({args.rows:,} rows) | current wall (runs) | baseline wall | wall ratio "
            "| current CPU | baseline CPU | CPU ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for k, (wall, cpu) in cur.items():
            runs = ", ".join(f"{r[k]['seconds']:.2f}" for r in rounds["current"])
            bw, bc = base[k]
            lines.append(
                f"| {k} | {wall:.2f} s ({runs}) | {bw:.2f} s | {wall / bw:.2f} | {cpu:.2f} s | {bc:.2f} s "
                f"| {cpu / bc:.2f} |"
            )
    else:
        lines += ["| measurement | wall | CPU |", "|---|---|---|"]
        lines += [f"| {k} | {w:.2f} s | {c:.2f} s |" for k, (w, c) in cur.items()]
    lines.append("")
    lines.append(
        f"Rebuild vs initial sync (current, SQLite, wall): {cur['full SQLite'][0] / cur['initial SQLite'][0]:.2f}x "
        "(a rebuild writes every row twice: into rebuild_steps, then into steps)."
    )
    return lines


if __name__ == "__main__":
    main()
