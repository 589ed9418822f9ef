"""Benchmark: how long ``fle-core`` takes to start, against the interpreter's own start-up.

Usage::

    uv run python bench/cli.py [--reps 15] [--write-results] [--why]

Runs each command as a new process (the installed ``fle-core`` console script), the
way a person or a script does, ``--reps`` times, interleaved with the floor
``python -c pass`` (same interpreter) so both see the same load; reports medians,
the time above the floor, and the target (≤ 0.3 s above it):

* ``fle-core --help``;
* ``fle-core status`` on an empty workspace (nothing synced yet) and on a synced one;
* a no-op ``fle-core sync``: a synced SQLite source with nothing new;
* ``fle-core sync`` on an empty workspace (no source: one ``error:`` line).

``--why`` prints, per command, the modules that took longest to import
(``python -X importtime``). ``--write-results`` writes ``bench/RESULTS-cli.md``
(earlier runs kept below).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_ABOVE_FLOOR_S = 0.3


def console_script() -> list[str]:
    """The installed ``fle-core`` entry point next to this interpreter (else ``-m fle_core``)."""
    script = Path(sys.executable).with_name("fle-core")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fle_core"]


def synced_workspace(root: Path) -> Path:
    """A workspace whose local SQLite source (6 simulated trajectories) is synced."""
    from fle_core.sweeps.simulate import simulate_trajectory
    from fle_core.warehouse.sync import sync
    from fle_core.workspace import Workspace, sqlite_url

    ws = Workspace.open(root)
    url = sqlite_url(ws.local_source_path)
    for i in range(6):
        simulate_trajectory(url, f"model-{i % 3}", "iron_ore_throughput", 100 + i, seed=i, steps=16)
    sync(ws)
    return root


def commands(tmp: Path) -> dict[str, list[str]]:
    exe = console_script()
    empty = tmp / "empty"
    synced = synced_workspace(tmp / "synced")
    return {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "fle-core --help": [*exe, "--help"],
        "fle-core status (empty workspace)": [*exe, "--workspace", str(empty), "status"],
        "fle-core status (synced workspace)": [*exe, "--workspace", str(synced), "status"],
        "fle-core sync (no-op: nothing new)": [*exe, "--workspace", str(synced), "sync", "--quiet"],
        "fle-core sync (empty workspace: no source)": [*exe, "--workspace", str(empty), "sync"],
    }


def measure(cmds: dict[str, list[str]], reps: int) -> dict[str, float]:
    """Median wall time per command; the commands are interleaved within each repetition."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for argv in cmds.values():  # one untimed run each: page cache, .pyc files
        subprocess.run(argv, capture_output=True, env=env, timeout=120)
    for _ in range(reps):
        for name, argv in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(argv, capture_output=True, env=env, timeout=120)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def why(cmds: dict[str, list[str]], top: int = 8) -> str:
    """The slowest imports of each command (cumulative microseconds, ``-X importtime``)."""
    lines = []
    for name, argv in cmds.items():
        if argv[0] == sys.executable and argv[1:2] == ["-c"]:
            continue
        # the console script is a Python file: run it under this interpreter with -X importtime
        run = [sys.executable, "-X", "importtime", *(argv[1:] if argv[0] == sys.executable else argv)]
        err = subprocess.run(run, capture_output=True, text=True, timeout=120).stderr
        rows = []
        for line in err.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cum, mod = (p.strip() for p in line.removeprefix("import time:").split("|"))
                if cum.isdigit():
                    rows.append((int(cum), mod))
        rows.sort(reverse=True)
        lines.append(f"{name}: " + ", ".join(f"{m} {c / 1e3:.0f} ms" for c, m in rows[:top]))
    return "\n".join(lines)


def report(medians: dict[str, float], reps: int, load: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    la = " → ".join("/".join(f"{x:.1f}" for x in avg) for avg in load)
    floor = medians["python -c pass (floor)"]
    lines = [
        "# CLI start-up (bench/cli.py)",
        "",
        f"Date: {now} · machine: 2 cores / 24 GiB, shared with other engineers' jobs (load average "
        f"1/5/15 min before → after: {la}) · Python {platform.python_version()} · medians of {reps} runs, "
        "each command a new process, interleaved with the floor.",
        "",
        f"Target: ≤ {TARGET_ABOVE_FLOOR_S} s above the floor (`python -c pass`, same interpreter, same run).",
        "",
        "| command | median (s) | above the floor (s) | met? |",
        "|---|---|---|---|",
    ]
    for name, t in medians.items():
        if name.startswith("python -c pass"):
            lines.append(f"| {name} | {t:.3f} | — | — |")
            continue
        above = t - floor
        lines.append(
            f"| {name} | {t:.3f} | {above:+.3f} | {'yes' if above <= TARGET_ABOVE_FLOOR_S else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--why", action="store_true", help="print the slowest imports of each command")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fle-bench-cli-"))
    try:
        cmds = commands(tmp)
        load_before = os.getloadavg()
        medians = measure(cmds, args.reps)
        text = report(medians, args.reps, (load_before, os.getloadavg()))
        print(text)
        if args.why:
            print(why(cmds))
        if args.write_results:
            out = ROOT / "bench" / "RESULTS-cli.md"
            earlier = out.read_text() if out.exists() else ""
            if earlier:
                body = earlier.replace("# CLI start-up (bench/cli.py)\n", "### Run\n", 1)
                earlier = "\n## Earlier runs\n\n" + body.replace("\n## Earlier runs\n\n", "\n", 1)
            out.write_text(text + earlier)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
