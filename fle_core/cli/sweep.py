"""CLI commands: ``fle-core sweep ...`` and ``fle-core runner``.

Handlers parse, validate, call ``fle_core.sweeps`` / ``Runner``, print, and return
an exit code (0 ok, 2 a ``FleError`` via cli.main, 1 an operation that found
nothing to do where that is an error).
"""

from __future__ import annotations

import argparse
import json
import sys

from fle_core.workspace import Workspace


def register(sub) -> None:
    sweep = sub.add_parser("sweep", help="launch and manage sweeps")
    ssub = sweep.add_subparsers(dest="sweep_command", required=True, metavar="ACTION")

    p = ssub.add_parser("launch", help="enqueue a sweep from a .json or .toml config")
    p.add_argument("config", help="sweep config file (.json or .toml)")
    p.add_argument("--yes", action="store_true", help="confirm a large sweep (more than 2000 cells)")
    p.add_argument("--no-runner", action="store_true", help="only enqueue; do not start a runner")
    _add_pilot_flags(p)
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
        if name == "resume":
            _add_pilot_flags(p)
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
        default=None,
        help="on SIGTERM, seconds running jobs may finish before being requeued "
        "(default 60; Slurm pilots: --grace-seconds minus 40)",
    )
    r.add_argument(
        "--sweep",
        action="append",
        dest="sweeps",
        metavar="SWEEP_ID",
        help="only run these sweeps (repeatable)",
    )
    r.add_argument("--no-sync", action="store_true", help="do not sync the warehouse after jobs")
    r.add_argument(
        "--slurm",
        type=int,
        metavar="N",
        help="instead of running here, submit N runner pilots as one Slurm job array "
        "(each runs `fle-core runner --once`); prints the Slurm job id",
    )
    _add_slurm_flags(r)
    r.set_defaults(func=_runner)


def _add_pilot_flags(p) -> None:
    """``--slurm N`` and the Slurm options on ``sweep launch`` / ``sweep resume``."""
    p.add_argument(
        "--slurm",
        type=int,
        metavar="N",
        help="submit N Slurm runner pilots for this sweep instead of starting a local runner",
    )
    p.add_argument(
        "--jobs-per-pilot",
        type=int,
        default=1,
        help="with --slurm: jobs each pilot runs at once (default 1; also its default --cpus-per-task)",
    )
    _add_slurm_flags(p)


def _add_slurm_flags(p) -> None:
    """Per-submission overrides of the ``[slurm]`` config section (used with --slurm)."""
    g = p.add_argument_group("Slurm options (with --slurm; override [slurm] in config.toml)")
    g.add_argument("--partition", help="sbatch --partition")
    g.add_argument("--time", help="sbatch --time, each pilot's time limit (e.g. 4:00:00)")
    g.add_argument("--cpus-per-task", type=int, help="sbatch --cpus-per-task (default: jobs per pilot)")
    g.add_argument("--mem", help="sbatch --mem (e.g. 16G)")
    g.add_argument("--account", help="sbatch --account")
    g.add_argument("--qos", help="sbatch --qos")
    g.add_argument(
        "--array-parallelism", type=int, help="most pilots running at once (sbatch --array=...%%K)"
    )
    g.add_argument(
        "--grace-seconds",
        type=int,
        dest="grace_s",
        help="SIGTERM this long before the time limit so a pilot can drain (sbatch --signal; default 120)",
    )
    g.add_argument(
        "--sbatch-arg",
        action="append",
        dest="extra_args",
        metavar="ARG",
        help="one more sbatch option, passed as one literal argv element (repeatable), e.g. --sbatch-arg=--exclusive",
    )


def _slurm_overrides(args) -> dict:
    keys = ("partition", "time", "cpus_per_task", "mem", "account", "qos", "array_parallelism", "grace_s")
    out = {k: getattr(args, k, None) for k in keys}
    out["extra_args"] = getattr(args, "extra_args", None)
    return out


def _submit_for_sweep(ws: Workspace, args, sweep_id: str) -> None:
    """Submit ``--slurm N`` pilots restricted to ``sweep_id``; on failure the sweep stays queued."""
    from fle_core.sweeps import operations, slurm

    try:
        sub = operations.submit_pilots(
            ws,
            args.slurm,
            sweep_ids=[sweep_id],
            overrides=_slurm_overrides(args),
            max_concurrent=args.jobs_per_pilot,
        )
    except (slurm.PilotsNotRecorded, slurm.SubmissionUnknown) as exc:
        raise slurm.SlurmError(f"sweep {sweep_id} is queued; {exc.message}", hint=exc.hint) from None
    except slurm.SlurmError as exc:
        raise slurm.SlurmError(
            f"sweep {sweep_id} is queued, but no Slurm pilots were submitted: {exc.message}",
            hint=(exc.hint or "") + f"; submit later with `fle-core runner --slurm N --sweep {sweep_id}`",
        ) from None
    print(f"pilots: Slurm job {sub.job_id} ({sub.pilots} pilot(s)); logs in {sub.log_dir}")


def _ws(args) -> Workspace:
    return Workspace.open(getattr(args, "workspace", None))


def _launch(args) -> int:
    from fle_core.sweeps import operations, slurm
    from fle_core.sweeps.config import load_config

    ws = _ws(args)
    config = load_config(args.config, registry=ws.task_registry(), confirm_large=args.yes)
    if args.slurm is not None:
        slurm.options(ws, _slurm_overrides(args))  # a bad [slurm] option fails before anything is queued
    sweep_id = operations.launch(ws, config)
    print(sweep_id, flush=True)
    if args.slurm is not None:
        _submit_for_sweep(ws, args, sweep_id)
    elif not args.no_runner:
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
    print(f"{args.sweep_id}: {args.op} touched {n} cell(s)", flush=True)
    if getattr(args, "slurm", None) is not None:
        _submit_for_sweep(ws, args, args.sweep_id)
    elif args.op in ("resume", "retry") and not args.no_runner:
        operations.ensure_runner(ws)
    return 0


def _runner(args) -> int:
    from fle_core.sweeps.runner import Runner

    if args.slurm is not None:
        return _runner_on_slurm(args)
    runner = Runner(
        _ws(args),
        max_concurrent=args.max_concurrent,
        lease_s=args.lease_seconds,
        drain_timeout_s=60.0 if args.drain_timeout is None else args.drain_timeout,
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


def _runner_on_slurm(args) -> int:
    """``fle-core runner --slurm N``: submit the pilots, print the Slurm job id."""
    from fle_core.sweeps import operations

    ws = _ws(args)
    sub = operations.submit_pilots(
        ws,
        args.slurm,
        sweep_ids=args.sweeps,
        overrides=_slurm_overrides(args),
        max_concurrent=args.max_concurrent,
        lease_s=args.lease_seconds,
        drain_timeout_s=args.drain_timeout,
    )
    print(sub.job_id)
    print(
        f"{sub.pilots} pilot(s) submitted; logs: {sub.log_dir}/pilot-{sub.job_id}_*.log; "
        f"watch: squeue -j {sub.job_id} (or the Monitor page)",
        file=sys.stderr,
    )
    return 0
