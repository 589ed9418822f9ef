"""CLI command: ``fle-core gate --baseline A --candidate B`` — a regression gate for CI.

Parse, validate, run: ``analysis.gate.run_gate`` tests the candidate against the
baseline; the Markdown (a PR comment) is printed and written to ``--markdown``,
the JSON to ``--json``. Exit 0 when no checked metric regressed, 1 when one did,
2 for bad input (one ``error:`` line). Every flag is documented in ``docs/gate.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fle_core.errors import ConfigError, FleError
from fle_core.workspace import Workspace


def register(sub) -> None:
    p = sub.add_parser(
        "gate",
        help="fail (exit 1) when the candidate is worse than the baseline, with a PR-comment report",
    )
    p.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    p.add_argument(
        "--baseline",
        required=True,
        metavar="SIDE",
        help="a system, sweep:ID or source:NAME, optionally @sweep:ID, @source:NAME, @N (data version)",
    )
    p.add_argument("--candidate", required=True, metavar="SIDE", help="the side to check, same forms")
    p.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="metric to check (repeatable; default success): success, mean_score, best_reward, "
        "final_reward, production_score, total_tokens, duration_s, steps",
    )
    p.add_argument(
        "--margin",
        action="append",
        default=[],
        metavar="[METRIC=]VALUE",
        help="non-inferiority margin: fail only when worse by more than VALUE (in the metric's units; "
        "repeatable; a bare VALUE applies to every metric)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--correction",
        choices=("holm", "bh", "none"),
        default="holm",
        help="correction across the metrics checked (default holm)",
    )
    p.add_argument(
        "--tasks",
        default="common",
        metavar="common|T1,T2",
        help="the tasks both sides ran (default common), or a comma-separated list of them",
    )
    p.add_argument("--top", type=int, default=10, help="tasks listed under 'regressed most' (default 10)")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown report (a PR comment) here")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON here")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line, not the report")
    p.set_defaults(func=_gate)


def _margins(values: list[str], metrics: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for value in values:
        name, sep, number = value.rpartition("=")
        try:
            margin = float(number)
        except ValueError:
            raise ConfigError(f"--margin {value!r} is not [METRIC=]NUMBER") from None
        if sep and not name:
            raise ConfigError(f"--margin {value!r} names no metric")
        for m in [name] if sep else metrics:
            out[m] = margin
    unknown = [m for m in out if m not in metrics]
    if unknown:
        raise ConfigError(
            f"--margin names metric(s) not checked: {', '.join(unknown)}",
            hint=f"checked: {', '.join(metrics)} (add --metric)",
        )
    return out


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}", hint="choose a writable path") from None


def _gate(args) -> int:
    from fle_core import saved_views
    from fle_core.analysis import gate

    metrics = list(dict.fromkeys(args.metric or ["success"]))
    if args.top < 0:
        raise ConfigError(f"--top must be ≥ 0 (got {args.top})")
    tasks = args.tasks if args.tasks == "common" else [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise ConfigError("--tasks names no task", hint="use common or T1,T2")
    ws = Workspace.open(getattr(args, "workspace", None))
    report = gate.run_gate(
        ws,
        args.baseline,
        args.candidate,
        metrics=metrics,
        margins=_margins(args.margin, metrics),
        alpha=args.alpha,
        correction=args.correction,
        tasks=tasks,
    )
    link = None
    try:
        from fle_core import warehouse

        params = {"cmp_tab": "What changed", "cmp_chg_a": args.baseline, "cmp_chg_b": args.candidate}
        link = saved_views.pinned_link(ws, "compare", params, warehouse.data_version(ws))
    except FleError as exc:  # the verdict stands without a link; say why there is none
        print(f"warning: no pinned link: {exc.message}", file=sys.stderr)
    for d in report.differences:
        print(f"warning: {d.text}", file=sys.stderr)
    text = gate.gate_markdown(report, top=args.top, link=link)
    if args.markdown:
        _write(args.markdown, text)
    if args.json:
        _write(args.json, json.dumps(gate.gate_json(report, link=link), indent=2) + "\n")
    if not args.quiet:
        print(text, end="")
    verdict = (
        f"regressed: {', '.join(report.regressed)}" if report.regressed else "no checked metric regressed"
    )
    print(f"gate: {'FAILED' if report.exit_code else 'passed'} ({verdict})")
    return report.exit_code
