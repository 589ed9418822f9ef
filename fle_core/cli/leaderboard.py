"""CLI command: ``fle-core leaderboard`` — the leaderboard with intervals, or FLE's leaderboard files.

Parse, validate, run: ``report.leaderboard.load_leaderboard`` computes one row
per system, pinned to one data version; ``--format fle`` writes one file per
system in FLE's ``docs/leaderboard/results/*.json`` shape, ``json``/``csv``/``md``
the whole table. Every flag is documented in ``docs/leaderboard.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from fle_core.errors import ConfigError, FleError
from fle_core.workspace import Workspace

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def register(sub) -> None:
    p = sub.add_parser(
        "leaderboard", help="export the leaderboard (with intervals) or FLE's leaderboard files"
    )
    p.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    p.add_argument(
        "--format",
        choices=("fle", "json", "csv", "md"),
        default="md",
        help="fle: one FLE leaderboard JSON per system; json/csv/md: the whole table (default md)",
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        help="fle: the folder for the files (default ./leaderboard); others: the file (default: stdout)",
    )
    p.add_argument("--systems", nargs="+", metavar="NAME", help="only these systems (labels or model names)")
    p.add_argument("--as-of", type=int, metavar="N", help="data version to read (default: the latest)")
    p.add_argument(
        "--reps", type=int, default=2000, help="bootstrap resamples for the intervals (default 2000)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--submitted-by", metavar="NAME", help="fle: the submittedBy field (left out otherwise)")
    p.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="SYSTEM=TEXT",
        help="fle: the name field for a system (repeatable; default the system label)",
    )
    p.add_argument("--date", metavar="YYYY-MM-DD", help="fle: the submissionDate (default today, UTC)")
    p.set_defaults(func=_leaderboard)


def _names(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        system, sep, text = pair.rpartition("=")
        if not sep or not system or not text:
            raise ConfigError(f"--name {pair!r} is not SYSTEM=TEXT")
        out[system] = text
    return out


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}", hint="choose a writable --out") from None


def _links(ws: Workspace, board) -> dict[str, str]:
    """A pinned Compare view per system when ``[app] url`` is set (else none)."""
    from fle_core import saved_views

    out: dict[str, str] = {}
    try:
        for r in board.frame.iter_rows(named=True):
            params: dict[str, object] = {"cmp_model": r["base_model"] or r["model"]}
            if r["config"]:
                params.update(cmp_config=r["config"], cmp_by="config")
            link = saved_views.pinned_link(ws, "compare", params, board.data_version)
            if link is None:
                return {}
            out[r["model"]] = link
    except FleError as exc:  # the figures stand without links; say why there are none
        print(f"warning: no pinned links: {exc.message}", file=sys.stderr)
        return {}
    return out


def _leaderboard(args) -> int:
    from fle_core.report import leaderboard as lb

    if args.seed < 0 or args.seed >= 2**32:
        raise ConfigError(f"--seed must be a whole number from 0 to {2**32 - 1} (got {args.seed})")
    if args.date and not _DATE.match(args.date):
        raise ConfigError(f"--date {args.date!r} is not YYYY-MM-DD")
    names = _names(args.name)
    ws = Workspace.open(getattr(args, "workspace", None))
    board = lb.load_leaderboard(ws, systems=args.systems, as_of=args.as_of, reps=args.reps, seed=args.seed)
    unknown = sorted(set(names) - set(board.frame["model"].to_list()))
    if unknown:
        raise ConfigError(f"--name names no exported system: {', '.join(unknown)}")
    links = _links(ws, board)
    if args.format == "fle":
        folder = Path(args.out or "leaderboard")
        used: set[str] = set()
        for row in board.frame.iter_rows(named=True):
            record = lb.fle_record(
                row,
                board,
                name=names.get(row["model"]),
                submitted_by=args.submitted_by,
                date=args.date,
                link=links.get(row["model"]),
            )
            file = lb.fle_file_name(record["name"])
            if file in used:
                raise ConfigError(
                    f"two systems would both be written to {file}",
                    hint="give them names with --name SYSTEM=TEXT",
                )
            used.add(file)
            _write(folder / file, json.dumps(record, indent=2) + "\n")
            left = ", ".join(sorted(record["fle_core"]["unfilled"]))
            print(f"wrote {folder / file}" + (f" (not filled: {left})" if left else ""))
            missing = record["fle_core"]["figures"].get("labTasksSuccessRate", {}).get("missing_tasks") or []
            if missing:
                print(
                    f"warning: {row['model']}: labTasksSuccessRate is over {len(board.suite) - len(missing)} "
                    f"of the {len(board.suite)} lab tasks",
                    file=sys.stderr,
                )
        return 0
    if args.format == "json":
        text = json.dumps(lb.leaderboard_json(board, links=links), indent=2) + "\n"
    elif args.format == "csv":
        text = lb.leaderboard_csv(board)
    else:
        text = lb.leaderboard_markdown(board)
    if args.out:
        _write(Path(args.out), text)
        print(f"wrote {args.out} ({board.frame.height} systems, data version {board.data_version})")
    else:
        print(text, end="")
    return 0
