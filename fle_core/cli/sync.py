"""CLI commands: ``fle-core sync`` and ``fle-core status``.

Output names sources and shows URLs with passwords masked; a resolved URL
(which may carry a secret from the environment) is never printed.
"""

from __future__ import annotations

import argparse
import sys
import time

from fle_core.errors import ConfigError
from fle_core.workspace import Workspace

MAX_RUNS = 10_000
_SHOWN_NOTES = 20  # quarantined samples printed by sync; ``status`` lists them from sync_notes


def register(sub) -> None:
    p = sub.add_parser("sync", help="copy new FLE rows from the sources into the warehouse")
    p.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    p.add_argument(
        "--source",
        help="a configured source name, a sqlite:///PATH / postgresql:// URL, or a folder "
        "(searched recursively) or file of Inspect logs (default: every configured source that exists)",
    )
    p.add_argument("--full", action="store_true", help="drop the source's rows and copy everything again")
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.add_argument(
        "--follow",
        metavar="SWEEP_ID",
        help="sync that sweep's source every --every seconds until none of its cells runs or can "
        "start, then once more (for pilots on other hosts; exit 1 if the last pass failed)",
    )
    p.add_argument("--every", type=float, default=30.0, help="seconds between --follow passes (default 30)")
    p.set_defaults(func=_sync)

    s = sub.add_parser("status", help="what the warehouse holds, per source, and recent syncs")
    s.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    s.add_argument(
        "--runs", type=int, default=5, help=f"recent sync runs to show (default 5, at most {MAX_RUNS:,})"
    )
    s.set_defaults(func=_status)


class _ProgressPrinter:
    """Prints ``done / total`` (rows of a table, logs of a folder) to stderr at most a few
    times a second."""

    def __init__(self, quiet: bool, unit: str = "rows"):
        self.quiet = quiet
        self.unit = unit
        self.last = 0.0
        self.t0 = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self.quiet or (now - self.last < 0.25 and done != total and done != 0):
            return
        self.last = now
        pct = f" ({100 * done / total:.0f}%)" if total else ""
        rate = done / max(now - self.t0, 1e-9)
        shown = f"{total:,}" if total is not None else "?"
        print(f"  {done:,}/{shown} {self.unit}{pct}, {rate:,.0f} {self.unit}/s", file=sys.stderr, flush=True)


def _sync(args) -> int:
    from fle_core.sweeps.facts import attempts_for_sync
    from fle_core.warehouse.sync import sync

    ws = Workspace.open(getattr(args, "workspace", None))
    if args.follow:
        return _follow(ws, args)
    result = sync(
        ws,
        source=args.source,
        full=args.full,
        progress=_ProgressPrinter(args.quiet, _unit(ws, args.source)),
        attempts=attempts_for_sync(ws),
    )
    for note in result.notes:
        print(f"note: {note}")
    for d in result.details:
        print(f"synced {d.name}: {d.text()}")
        for problem in result.problems.get(d.name, []):
            print(f"warning: {d.name}: log not read: {problem}", file=sys.stderr)
        left_out = [q for q in result.quarantined.get(d.name, []) if ": log not read: " not in q]
        for note in left_out[:_SHOWN_NOTES]:
            print(f"warning: {d.name}: left out: {note}", file=sys.stderr)
        if len(left_out) > _SHOWN_NOTES:
            more = len(left_out) - _SHOWN_NOTES
            print(f"warning: {d.name}: {more:,} more left out (see `fle-core status`)", file=sys.stderr)
    for note in result.warnings:
        print(f"warning: {note}", file=sys.stderr)
    print(f"done in {result.duration_s:.2f} s; data version {result.data_version}")
    return 0


def _unit(ws: Workspace, source: str | None) -> str:
    """What the progress lines count: logs for a folder of Inspect logs, else rows."""
    from fle_core import sources
    from fle_core.errors import FleError

    if source is None:
        return "rows"
    try:
        return sources.get(ws, source).unit
    except FleError:
        return "rows"  # sync itself reports the problem


def _follow(ws: Workspace, args) -> int:
    from fle_core.sweeps.follow import follow

    if args.source or args.full:
        raise ConfigError("--follow syncs the sweep's own source", hint="drop --source and --full")
    ok = follow(ws, args.follow, args.every, say=lambda line: print(line, flush=True))
    return 0 if ok else 1


def _removed(run: dict) -> str:
    """`` -N rows`` when a run took out rows an earlier sync brought in (removed or replaced logs)."""
    n = run.get("rows_removed")
    return f" -{n:,} rows" if n else ""


def _status(args) -> int:
    if not 0 <= args.runs <= MAX_RUNS:
        raise ConfigError(f"--runs must be between 0 and {MAX_RUNS:,} (got {args.runs})")
    ws = Workspace.open(getattr(args, "workspace", None), create=False)
    print(f"workspace: {ws.root}")
    if not ws.warehouse_path.exists():
        print("warehouse: empty (nothing synced yet; run `fle-core sync`)")
        return 0
    from fle_core.warehouse import catalog  # DuckDB only when there is a warehouse (no Polars)

    st = catalog.status_rows(ws, args.runs)
    if not st.sources:
        print("warehouse: no sources synced yet")
    for r in st.sources:
        print(f"{r['source']} [{r['kind']}] {r['display_url']}")
        print(
            f"  rows {r['rows']:,}  trajectories {r['trajectories']:,}  models {r['models']}  "
            f"tasks {r['tasks']}  flagged {r['flagged_rows']:,}  simulated {r['simulated_rows']:,}"
        )
        read = f"watermark {r['watermark']}" if r["watermark"] is not None else f"logs {r['logs']:,}"
        print(f"  {read}  last ok sync {r['last_sync_id']}  data from {r['first_at']} to {r['last_at']}")
    if st.history:
        print("recent syncs:")
    for r in st.history:
        dur = f"{r['duration_s']:.2f} s" if r["duration_s"] is not None else "-"
        moved = (
            f" ({r['watermark_before']} -> {r['watermark_after']})"
            if r["watermark_after"] is not None
            else ""
        )
        line = (
            f"  #{r['sync_id']} {r['source']} {r['status']} +{r['rows_added']:,} rows{_removed(r)}{moved} {dur} "
            f"at {r['started_at']:%Y-%m-%d %H:%M:%S}"
        )
        if r["error"]:
            line += f"  error: {r['error']}"
        print(line)
    for r in st.notes:
        if r["kind"] != "quarantined":
            print(f"  note #{r['sync_id']} {r['source']}: {r['detail']}")
    left_out = st.quarantined
    if left_out:
        print(f"left out for a malformed field ({len(left_out):,}; all on the Sources page):")
    for r in left_out[:_SHOWN_NOTES]:
        print(f"  #{r['sync_id']} {r['source']}: {r['detail']}")
    if len(left_out) > _SHOWN_NOTES:
        print(f"  … and {len(left_out) - _SHOWN_NOTES:,} more")
    return 0
