"""CLI command: ``fle-core report`` — the self-contained HTML report and its exports.

Parse, validate, run: the loader (``report.load_report_frames``) reads the
warehouse pinned to its latest sync id and runs the metrics layer; the pure
``report.build_report`` writes the files. Every flag is documented in
``docs/report.md`` (a test checks this).
"""

from __future__ import annotations

import argparse

from fle_core.workspace import Workspace


def register(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report with CSV/Parquet/MD/image exports")
    p.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--sweep", metavar="ID", help="only the trajectories of this sweep")
    scope.add_argument("--models", nargs="+", metavar="M", help="only these models")
    p.add_argument("--tasks", nargs="+", metavar="T", help="only these task keys")
    p.add_argument(
        "--source", nargs="+", metavar="NAME", dest="sources", help="only rows synced from these source names"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument(
        "--reps",
        type=int,
        default=None,
        help="bootstrap resamples for the confidence intervals (default 2000)",
    )
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default 0)")
    p.add_argument(
        "--infrastructure",
        choices=("fail", "exclude"),
        default="fail",
        help="infrastructure failures (game server, RCON, model API): count them as failures, as FLE's "
        "scorer does (fail, the default), or leave them out of every number (exclude)",
    )
    p.add_argument(
        "--population",
        choices=("tasks", "suite"),
        default="tasks",
        help="what the intervals answer for: tasks like these (tasks, task-clustered; the default) or "
        "this fixed suite (suite, stratified)",
    )
    p.add_argument(
        "--image-format",
        choices=("svg", "png"),
        default="svg",
        help="format of the chart images written beside the report (default svg)",
    )
    p.add_argument("--title", default="FLE evaluation report", help="report title")
    p.add_argument("--baseline", metavar="SIDE", help="with --candidate: add what changed between two sides")
    p.add_argument("--candidate", metavar="SIDE", help="the other side (sides as fle-core gate reads them)")
    p.set_defaults(func=_report)


def _report(args) -> int:
    from fle_core import report

    ws = Workspace.open(getattr(args, "workspace", None))
    frames, version = report.load_report_frames(
        ws,
        sweep_id=args.sweep,
        models=args.models,
        tasks=args.tasks,
        sources=args.sources,
        reps=report.DEFAULT_REPS if args.reps is None else args.reps,
        seed=report.DEFAULT_SEED if args.seed is None else args.seed,
        baseline=args.baseline,
        candidate=args.candidate,
        infrastructure=args.infrastructure,
        population=args.population,
    )
    files = report.build_report(
        frames, args.out, data_version=version, title=args.title, image_format=args.image_format
    )
    print(f"wrote {files.html} ({files.chart_count} charts, data version {version.sync_id})")
    print(
        f"  {len(files.tables)} tables, {len(files.images)} images"
        + (f", {files.markdown.name}" if files.markdown else "")
    )
    return 0
