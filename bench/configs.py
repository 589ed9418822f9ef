"""Benchmark: cost of the ``config`` column (sweep-attempt params) in the loaders.

Usage::

    uv run python bench/configs.py [--ws bench/_data/app_ws_1000000] [--reps 5]

Copies the 1M-step workspace built by ``bench/app.py`` (run that first), gives
every trajectory version a sweep attempt with one of 4 params permutations
(~15.6k ``sweep_attempts`` rows — every trajectory has a config, the worst
case for the join), then times in the same run:

* **baseline** ``load_summaries`` SQL without the config lookup (the DuckDB
  per-trajectory aggregate alone, as before this change) vs ``load_summaries``
  (aggregate + config lookup + finishing);
* **baseline** ``load_steps`` as before (same query, casts, rechunk; no config column)
  vs ``load_steps``;
* ``load_summaries(configs=[one])`` (the filter) and ``label_systems``.

Prints medians and ratios against the baselines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _medians(fns: dict, reps: int) -> dict[str, float]:
    """Median seconds per function, runs interleaved (a, b, c, a, b, c, ...) so the shared
    machine's load drifts hit every variant alike; one untimed warm-up round first."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _old_load_steps(ws, sql: str, params: list):
    """``load_steps`` as before this change: same query, casts and rechunk, no config."""
    import polars as pl

    from fle_core import warehouse
    from fle_core.stats.metrics import STEP_SCHEMA

    frame = warehouse.query(ws, sql, params)
    return frame.select([pl.col(c).cast(t) for c, t in STEP_SCHEMA.items() if c != "config"]).rechunk()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ws", default=str(ROOT / "bench" / "_data" / "app_ws_1000000"))
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    from fle_core import analysis, warehouse
    from fle_core.stats.metrics import quota_map
    from fle_core.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="cfgbench-")) / "ws"
    shutil.copytree(args.ws, tmp)
    ws = Workspace.open(tmp)
    grid = [
        json.dumps({"prompt": p, "temperature": t}, sort_keys=True) for p in ("v1", "v2") for t in (0.2, 0.8)
    ]
    with warehouse.writer(ws) as con:
        con.execute("DELETE FROM sweep_attempts")
        con.execute(
            "INSERT INTO sweep_attempts (source, version, sweep_id, params_json, status) "
            "SELECT source, version, 'bench', (?::VARCHAR[])[1 + version % 4], 'succeeded' "
            "FROM (SELECT DISTINCT source, version FROM steps WHERE version IS NOT NULL)",
            [grid],
        )
        n_att = con.execute("SELECT count(*) FROM sweep_attempts").fetchone()[0]
        n_steps = con.execute("SELECT count(*) FROM steps").fetchone()[0]

    qmap = quota_map(ws.task_registry())
    where, wparams = analysis._steps_where()
    new_sql, params = analysis._summary_sql(where, qmap, None)
    old_sql = new_sql.split(" FROM (", 1)[1].rsplit(") g", 1)[0]  # the bare aggregate
    cols = ", ".join(f"s.{c}" for c in analysis._STEP_COLUMNS)
    old_steps = (
        f"SELECT {cols} FROM steps s WHERE {where} ORDER BY hash(s.source), "
        "s.version NULLS FIRST, s.instance NULLS FIRST, s.depth NULLS FIRST, s.id"
    )

    summ = analysis.load_summaries(ws)
    rows = _medians(
        {
            "summaries SQL, no config (baseline)": lambda: warehouse.query(ws, old_sql, params + wparams),
            "summaries SQL + config lookup": lambda: warehouse.query(ws, new_sql, params + wparams),
            "load_summaries (end to end)": lambda: analysis.load_summaries(ws),
            "load_summaries(configs=[one])": lambda: analysis.load_summaries(ws, configs=[grid[0]]),
            "label_systems": lambda: analysis.label_systems(summ),
        },
        args.reps,
    )
    rows |= _medians(
        {
            "steps query, no config (baseline)": lambda: _old_load_steps(ws, old_steps, wparams),
            "load_steps (with config)": lambda: analysis.load_steps(ws),
        },
        args.reps,
    )
    print(
        f"{n_steps:,} steps, {summ.height:,} trajectories, {n_att:,} sweep attempts "
        f"({len(grid)} configs); medians of {args.reps}"
    )
    base_s = rows["summaries SQL, no config (baseline)"]
    base_l = rows["steps query, no config (baseline)"]
    for name, sec in rows.items():
        base = base_l if "steps" in name and "summaries" not in name else base_s
        print(f"{name:40s} {sec * 1000:8.1f} ms   x{sec / base:5.2f} vs baseline")
    shutil.rmtree(tmp.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
