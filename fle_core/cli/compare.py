"""CLI command: ``fle-core compare FILE --baseline NAME`` — the experiment-log table.

Parse, validate, run: ``sources.runs.read_runs`` reads the runs file (CSV,
Parquet, JSONL or a W&B runs export), ``stats.runs.compare_runs`` tests every
other system against the baseline, ``stats.runs.runs_markdown`` renders the
log's table; it is printed and written to ``--out``. One call is one
comparison family. Every flag is documented in ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fle_core.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare per-run results (CSV/Parquet/JSONL/W&B export) against a baseline, experiment-log style",
    )
    p.add_argument(
        "file", metavar="FILE", help="runs file: .csv, .tsv, .parquet, .jsonl, or a W&B runs CSV export"
    )
    p.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder (unused by compare)")
    p.add_argument(
        "--baseline", required=True, metavar="NAME", help="the system every other one is compared with"
    )
    p.add_argument(
        "--metric",
        action="append",
        metavar="COLUMN",
        help="metric column to compare (repeatable, in this order; default: every numeric column)",
    )
    p.add_argument(
        "--test",
        choices=("welch", "student", "mannwhitney"),
        default="welch",
        help="two-sample test (default welch: Welch's t-test)",
    )
    p.add_argument(
        "--correction",
        choices=("none", "holm", "bh"),
        default="none",
        help="multiple-comparison correction over this call's tests (default none)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--systems", nargs="+", metavar="NAME", help="compare only these systems with the baseline"
    )
    p.add_argument(
        "--system-column", metavar="COLUMN", help="column naming the system (default: found by name)"
    )
    p.add_argument("--seed-column", metavar="COLUMN", help="column holding the seed (default: found by name)")
    p.add_argument("--task-column", metavar="COLUMN", help="column holding the task or group (optional)")
    p.add_argument(
        "--lower-is-better",
        action="append",
        default=[],
        metavar="COLUMN",
        help="metric where smaller wins (repeatable)",
    )
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="COLUMN=TEXT",
        help="display name of a metric (repeatable)",
    )
    p.add_argument(
        "--per-seed",
        action="append",
        metavar="COLUMN",
        help="metric to list per seed (repeatable; 'all' or 'none'; default: the first metric)",
    )
    p.add_argument(
        "--state",
        action="append",
        metavar="STATE",
        help="W&B exports: keep runs in this State (repeatable; default finished; 'all' keeps every run)",
    )
    p.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="count every run when two share a (system, seed[, task]) key (default: refuse the file)",
    )
    p.add_argument(
        "--format",
        choices=("csv", "parquet", "jsonl", "wandb"),
        help="file format (default: from the suffix)",
    )
    p.add_argument(
        "--out", metavar="PATH", help="Markdown file to write (default: FILE with suffix .compare.md)"
    )
    p.set_defaults(func=_compare)


def _labels(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        column, sep, text = pair.partition("=")
        if not sep or not column:
            raise ConfigError(f"--label {pair!r} is not COLUMN=TEXT")
        out[column] = text
    return out


class _Progress:
    """``compare: 1,024/10,000 comparisons (10%)`` on stderr, only when it is a terminal or
    the work has taken more than ``after`` seconds; at most one line a second."""

    def __init__(self, after: float = 2.0) -> None:
        self.start = time.monotonic()
        self.after, self.last, self.shown = after, 0.0, False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        tty = sys.stderr.isatty()
        if (not tty and now - self.start < self.after) or (now - self.last < 1.0 and done < total):
            return
        if not self.shown and done >= total:
            return  # finished before anything was shown: stay quiet
        self.last, self.shown = now, True
        end = "\n" if done >= total or not tty else ""
        text = f"compare: {done:,}/{total:,} comparisons ({100 * done // max(total, 1)}%)"
        print(("\r" if tty else "") + text, end=end, file=sys.stderr)


def _compare(args) -> int:
    from fle_core.sources.runs import read_runs
    from fle_core.stats.runs import compare_runs, runs_markdown

    states = None if args.state and "all" in args.state else (args.state or ["finished"])
    table = read_runs(
        args.file,
        format=args.format,
        system=args.system_column,
        seed=args.seed_column,
        task=args.task_column,
        metrics=args.metric,
        states=states,
        allow_duplicates=args.allow_duplicates,
    )
    comparisons = compare_runs(
        table.frame,
        args.baseline,
        table.metrics,
        systems=args.systems,
        test=args.test,
        correction=args.correction,
        alpha=args.alpha,
        lower_is_better=args.lower_is_better,
        progress=_Progress(),
    )
    per_seed = args.per_seed
    if per_seed and "all" in per_seed:
        per_seed = table.metrics
    elif per_seed and "none" in per_seed:
        per_seed = []
    text = runs_markdown(
        comparisons, table.frame, labels=_labels(args.label), per_seed=per_seed, notes=table.notes
    )
    out = Path(args.out) if args.out else Path(args.file).with_suffix(".compare.md")
    try:
        out.write_text(text)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {out}: {exc.strerror}", hint="pass --out PATH in a writable folder"
        ) from None
    print(text, end="")
    print(f"\nwrote {out}")
    return 0
