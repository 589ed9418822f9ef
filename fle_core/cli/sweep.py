"""CLI commands: ``fle-core sweep ...`` and ``fle-core runner``.

Handlers parse, validate, call ``fle_core.sweeps`` / ``Runner``, print, and return
an exit code (0 ok, 2 a ``FleError`` via cli.main, 1 an operation that found
nothing to do where that is an error).
"""

from __future__ import annotations

import argparse
import json

from fle_core.workspace import Workspace


def register(sub) -> None:
    sweep = sub.add_parser("sweep", help="launch and manage sweeps")
    ssub = sweep.add_subparsers(dest="sweep_command", required=True, metavar="ACTION")

    p = ssub.add_parser("launch", help="enqueue a sweep from a .json or .toml config")
    p.add_argument("config", help="sweep config file (.json or .toml)")
    p.add_argument("--yes", action="store_true", help="confirm a large sweep (more than 2000 cells)")
    p.add_argument("--no-runner", action="store_true", help="only enqueue; do not start a runner")
    p.set_defaults(func=_launch)

    p = ssub.add_parser("list", help="list sweeps with counts per state")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_list)

    p = ssub.add_parser("status", help="counts per state and an ETA")
    p.add_argument("sweep_id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_status)

    p = ssub.add_parser("failures", help="failed attempts with the tail of their logs")
    p.add_argument("sweep_id")
    p.add_argument("--tail", type=int, default=20, help="log lines per failure (default 20)")
    p.set_defaults(func=_failures)

    for name, helptext in (
        ("pause", "stop starting new jobs"),
        ("resume", "reactivate; fill missing cells, retry failed (idempotent)"),
        ("retry", "requeue failed cells with a fresh retry budget"),
        ("cancel", "cancel pending cells and kill running jobs"),
    ):
        p = ssub.add_parser(name, help=helptext)
        p.add_argument("sweep_id")
        if name in ("resume", "retry"):
            p.add_argument("--no-runner", action="store_true", help="do not start a runner")
        p.set_defaults(func=_operation, op=name)

    r = sub.add_parser("runner", help="run queued sweep jobs (the sidecar runner)")
    r.add_argument("--workspace", default=argparse.SUPPRESS, help="workspace folder")
    r.add_argument("--max-concurrent", type=int, default=2, help="jobs at once in this runner (default 2)")
    r.add_argument("--once", action="store_true", help="exit when nothing is left to run")
    r.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        help="heartbeat lease; a dead runner's jobs are requeued after it (default 30)",
    )
    r.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="on SIGTERM, seconds running jobs may finish before being requeued (default 60)",
    )
    r.add_argument(
        "--sweep",
        action="append",
        dest="sweeps",
        metavar="SWEEP_ID",
        help="only run these sweeps (repeatable)",
    )
    r.add_argument("--no-sync", action="store_true", help="do not sync the warehouse after jobs")
    r.set_defaults(func=_runner)


def _ws(args) -> Workspace:
    return Workspace.open(getattr(args, "workspace", None))


def _launch(args) -> int:
    from fle_core.sweeps import operations
    from fle_core.sweeps.config import load_config

    ws = _ws(args)
    config = load_config(args.config, registry=ws.task_registry(), confirm_large=args.yes)
    sweep_id = operations.launch(ws, config)
    print(sweep_id)
    if not args.no_runner:
        pid = operations.ensure_runner(ws)
        print(f"runner started (pid {pid})" if pid else "a runner is already alive")
    return 0


def _list(args) -> int:
    from fle_core.sweeps import operations

    df = operations.list_sweeps(_ws(args))
    if args.json:
        print(df.write_json())
    elif df.is_empty():
        print("no sweeps")
    else:
        cols = ["sweep_id", "status", "total", "succeeded", "failed", "running", "pending"]
        print(df.select(cols))
    return 0


def _status(args) -> int:
    from fle_core.sweeps import operations

    st = operations.status(_ws(args), args.sweep_id)
    if args.json:
        print(
            json.dumps(
                {
                    "sweep_id": st.sweep_id,
                    "name": st.name,
                    "status": st.status,
                    "counts": st.counts,
                    "total": st.total,
                    "done": st.done,
                    "eta_s": st.eta_s,
                }
            )
        )
        return 0
    print(f"{st.sweep_id} ({st.name}): {st.status}, {st.done}/{st.total} done")
    print("  " + ", ".join(f"{k} {v}" for k, v in st.counts.items()))
    if st.eta_s is not None:
        print(f"  ETA ~{st.eta_s:.0f}s (median attempt {st.median_attempt_s:.1f}s)")
    return 0


def _failures(args) -> int:
    from fle_core.sweeps import operations

    df = operations.failures(_ws(args), args.sweep_id, tail_lines=args.tail)
    for row in df.iter_rows(named=True):
        print(
            f"== {row['model']} / {row['task']} trial {row['trial']} attempt {row['attempt']} "
            f"v{row['version']}: {row['outcome']} ({row['error'] or ''})"
        )
        if row["log_tail"]:
            print(row["log_tail"])
    if df.is_empty():
        print("no failures")
    return 0


def _operation(args) -> int:
    from fle_core.sweeps import operations

    ws = _ws(args)
    if args.op == "pause":
        operations.pause(ws, args.sweep_id)
        print(f"{args.sweep_id} paused")
        return 0
    fn = {"resume": operations.resume, "retry": operations.retry_failed, "cancel": operations.cancel}[args.op]
    n = fn(ws, args.sweep_id)
    print(f"{args.sweep_id}: {args.op} touched {n} cell(s)")
    if args.op in ("resume", "retry") and not args.no_runner:
        operations.ensure_runner(ws)
    return 0


def _runner(args) -> int:
    from fle_core.sweeps.runner import Runner

    runner = Runner(
        _ws(args),
        max_concurrent=args.max_concurrent,
        lease_s=args.lease_seconds,
        drain_timeout_s=args.drain_timeout,
        sweep_ids=args.sweeps,
        sync=not args.no_sync,
    )
    code = runner.run(once=args.once)
    s = runner.stats
    print(
        f"runner {runner.runner_id} stopped: claimed {s['claimed']}, succeeded {s['succeeded']}, "
        f"failed {s['failed']}, requeued {s['requeued']}, cancelled {s['cancelled']}"
    )
    return code
