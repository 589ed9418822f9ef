"""Process plumbing for the runner: process groups, pidfds, parent-death signals, start times.

Each job runs in its own session, so its process group id is its pid; the runner
kills the whole group (no grandchild outlives a job) and waits on a pidfd, which
becomes readable when the job exits, instead of polling.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def with_pdeathsig(argv: list[str], env: dict[str, str]) -> list[str]:
    """Prefix ``setpriv --pdeathsig KILL --`` so the job dies if the runner is killed.

    ``setpriv`` sets the flag and execs the job in the same process (same pid), so
    the spawn stays on the fast vfork path; a Python ``preexec_fn`` doing the same
    made every spawn ~15 ms slower. The command is resolved first, so a missing
    program is reported as such instead of as setpriv's exit code."""
    exe = argv[0] if os.sep in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
    if exe is None or not os.access(exe, os.X_OK):
        raise FileNotFoundError(f"executable not found: {argv[0]!r}")
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else list(argv)


def pidfd(pid: int) -> int | None:
    """A pollable fd that becomes readable when ``pid`` exits (Linux ≥ 5.3), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def exited(proc: subprocess.Popen) -> bool:
    """True once the child exited, without reaping it (so its group id stays valid)."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return proc.poll() is not None
    return info is not None


def killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against pid reuse), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def own_log_path() -> str | None:
    """Where this process's stdout goes, if a file (a pilot's Slurm ``--output``)."""
    try:
        target = os.readlink("/proc/self/fd/1")
    except OSError:
        return None
    return target if target.startswith("/") and Path(target).is_file() else None


def spawn_detached(args: list[str], log_path: Path, home: Path) -> int:
    """Start a ``fle_core`` sidecar (runner, sync follower) in its own session, so it
    outlives the app that started it; output appended to ``log_path``. Its pid.

    A daemon thread waits on the child: the app that started it (Streamlit runs for
    days) must reap it when it exits, or a stopped runner stays a zombie until the
    app itself exits. If the app exits first, the sidecar is re-parented and lives on."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as fh:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, "FLE_CORE_HOME": str(home)},
        )
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid
