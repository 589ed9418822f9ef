"""A stand-in ``fle`` executable for the sweep tests: ``fle inspect-eval`` without Factorio.

It parses the flags FLE 0.4.3's ``fle inspect-eval`` takes (same names and types) and,
like FLE, runs ``inspect eval TASK@... --model M --epochs N --log-dir DIR``, here on the
FLE-shaped test task (``fle_inspect_task.py``) and exits with Inspect's exit code.
The models decide what goes wrong: a name containing ``swallow`` makes the solver
swallow an RCON error (FLE's way), ``raise`` makes a sample error escape the solver.
Beside the log it writes ``env.txt``: the environment it got, for the tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fle")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("eval").add_argument("--config")
    ie = sub.add_parser("inspect-eval")
    ie.add_argument("--config")
    ie.add_argument("--log-dir")
    ie.add_argument("--max-connections", type=int)
    ie.add_argument("--max-tasks", type=int)
    ie.add_argument("--cache", action="store_true")
    ie.add_argument("--limit", type=int)
    ie.add_argument("--view", action="store_true")
    ie.add_argument("--view-port", type=int, default=8000)
    ie.add_argument("--model")
    ie.add_argument("--env-id")
    ie.add_argument("--tasks")
    ie.add_argument("--solver")
    ie.add_argument("--cache-prompt", action="store_true")
    ie.add_argument("--trajectory-length", type=int, default=None)
    ie.add_argument("--reasoning-effort", choices=["low", "medium", "high"])
    ie.add_argument("--reasoning-tokens", type=int)
    ie.add_argument("--eval-set", action="store_true")
    ie.add_argument("--eval-set-file")
    ie.add_argument("--pass-n", type=int, default=8)
    ie.add_argument("--epochs", type=int)
    ie.add_argument("--epochs-reducer")
    ie.add_argument("--task-type", choices=["throughput", "unbounded"], default="throughput")
    ie.add_argument("--vision", action="store_true")
    ie.add_argument("--sandbox", action="store_true")
    ie.add_argument("--scenario", type=str)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command == "eval":
        print("Error: Eval is not supported anymore - Use `inspect-eval` instead", file=sys.stderr)
        return 1
    log_dir = args.log_dir or ".fle/inspect_logs"
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    keep = ("FLE_", "PATH", "HOME")
    Path(log_dir, "env.txt").write_text(
        "\n".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(keep)) + "\n"
    )
    inspect = Path(sys.executable).with_name("inspect")
    cmd = [
        str(inspect),
        "eval",
        f"{HERE / 'fle_inspect_task.py'}@throughput",
        "-T",
        f"env_id={args.env_id}",
        "--model",
        args.model,
        "--epochs",
        str(args.epochs or args.pass_n),
        "--log-dir",
        log_dir,
        "--display",
        "none",
        "--no-log-realtime",
    ]
    if args.trajectory_length:
        cmd += ["-T", f"steps={args.trajectory_length}"]
    if "swallow" in args.model:
        cmd += ["-T", "swallow_error_at=2"]
    if "raise" in args.model:
        cmd += ["-T", "raise_at=2"]
    print("Running:", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
