"""Job containment: every process a job starts stays where the runner can end it.

A process group is not enough: a job can start a daemon with ``setsid`` (a new
session and group) and double-fork so the daemon's parent is no longer the job.
Two routes, the best the machine allows (``[runner] containment``, default ``auto``):

* ``cgroup``: a cgroup v2 directory the runner owns,
  ``<the runner's cgroup>/fle-runner-<pid>-<n>/job-<n>``. The job's first process
  moves itself in (``/bin/sh`` writing ``0`` to ``cgroup.procs``, then ``exec`` of
  the argv, never a command string) before the job's program runs, so every
  descendant is born inside whatever session it starts. Ending the job writes
  ``cgroup.kill`` (or SIGKILLs each listed pid until none is left on kernels before
  5.14) and removes the directory. Chosen when a probe child can move itself in.
* ``session``: the job's own session and process group, plus a per-job marker in
  its environment (``FLE_JOB_TOKEN``). Ending the job signals its group, every
  process of its session and every process carrying the marker (found by scanning
  ``/proc``); the runner is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so such
  orphans are re-parented to it and reaped. A process that both leaves the session
  and scrubs its environment escapes this route; the cgroup route has no such gap.

``Containment.route`` says which route is in use; the runner logs it at start.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

ROUTES = ("auto", "cgroup", "session")
TOKEN_VAR = "FLE_JOB_TOKEN"
_PR_SET_CHILD_SUBREAPER = 36
#: moves this very process into the cgroup whose procs file is $0, then execs the job's argv
_ENTER = 'echo 0 > "$0" || { echo "fle-core: cannot enter the job cgroup $0" >&2; exit 126; }; exec "$@"'
_SH = "/bin/sh"


class JobBox:
    """Where one job's processes live; ``kill`` ends every one of them."""

    route = "session"

    def __init__(self, token: str):
        self.token = token
        self.pid: int | None = None
        self.born = 0  # the leader's start time (clock ticks): the job's processes are younger

    def wrap(self, argv: list[str]) -> list[str]:
        return list(argv)

    def env(self) -> dict[str, str]:
        return {TOKEN_VAR: self.token}

    def started(self, pid: int) -> None:
        self.pid = pid
        stat = _stat(pid)
        self.born = stat[3] if stat else 0

    def signal(self, sig: int) -> list[int]:
        """Send ``sig`` to the job's group, its session and every process carrying its
        marker; the processes it found besides the leader."""
        if self.pid is None:
            return []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        members = self._members()
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        return members

    def kill(self) -> None:
        """SIGKILL every process of the job and reap those re-parented to the runner."""
        for _ in range(50):  # a process may fork while we scan: repeat until none is left
            members = self.signal(signal.SIGKILL)
            if not members:
                return
            _reap(members)
            time.sleep(0.01)
        log.warning("job %s: processes still present after repeated SIGKILL", self.token)

    def close(self) -> None:
        """Release what the box holds (the cgroup directory); call after ``kill``."""

    def _members(self) -> list[int]:
        """Live processes of the job other than its leader: same session or the marker."""
        out = []
        me = os.getpid()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) in (me, self.pid):
                continue
            pid = int(entry.name)
            stat = _stat(pid)
            if stat is None or stat[3] < self.born or (stat[0] == "Z" and stat[1] != me):
                continue  # gone, older than the job, or a zombie someone else reaps
            if stat[2] == self.pid or self._marked(pid):
                out.append(pid)
        return out

    def _marked(self, pid: int) -> bool:
        try:
            return f"{TOKEN_VAR}={self.token}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(
                b"\0"
            )
        except OSError:
            return False


class CgroupBox(JobBox):
    """A job inside its own cgroup v2 directory."""

    route = "cgroup"

    def __init__(self, token: str, path: Path, create: bool = True):
        super().__init__(token)
        self.path = path
        if create:
            path.mkdir()

    def wrap(self, argv: list[str]) -> list[str]:
        return [_SH, "-c", _ENTER, str(self.path / "cgroup.procs"), *argv]

    def signal(self, sig: int) -> list[int]:
        if sig == signal.SIGKILL and (self.path / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
        else:
            for pid in self._procs():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        super().signal(sig)  # the job's leader may not have entered yet (killed before its exec)
        return []

    def kill(self) -> None:
        for _ in range(200):
            self.signal(signal.SIGKILL)
            if not self._procs():
                return
            time.sleep(0.01)
        log.warning("job cgroup %s still holds processes after SIGKILL", self.path)

    def close(self) -> None:
        for _ in range(100):  # killed processes leave the cgroup once the kernel has torn them down
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)
        log.warning("could not remove the job cgroup %s", self.path)

    def _procs(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def _members(self) -> list[int]:
        return []  # the cgroup holds them all; no /proc scan


class Containment:
    """Makes a ``JobBox`` per job on the route the machine allows."""

    def __init__(self, route: str = "auto"):
        if route not in ROUTES:
            from fle_core.errors import ConfigError

            raise ConfigError(f"[runner] containment must be one of {', '.join(ROUTES)}, not {route!r}")
        self._ids = itertools.count()
        self.base: Path | None = None
        self.why = ""
        if route in ("auto", "cgroup"):
            self.base, self.why = _cgroup_base()
            if self.base is None and route == "cgroup":
                from fle_core.errors import ConfigError

                raise ConfigError(f"[runner] containment = 'cgroup' is not possible here: {self.why}")
        self.route = "cgroup" if self.base is not None else "session"
        if self.route == "session":
            _become_subreaper()

    def describe(self) -> str:
        if self.base is not None:
            return f"cgroup v2 directories under {self.base}"
        return "their own sessions, tracked by an environment marker" + (f" ({self.why})" if self.why else "")

    def box(self) -> JobBox:
        token = uuid.uuid4().hex
        if self.base is not None:
            try:
                return CgroupBox(token, self.base / f"job-{next(self._ids)}")
            except OSError as exc:
                log.warning("cannot create a job cgroup (%s); this job runs in its own session", exc)
        return JobBox(token)

    def close(self) -> None:
        if self.base is not None:
            with contextlib.suppress(OSError):
                self.base.rmdir()


def _cgroup_base() -> tuple[Path | None, str]:
    """A fresh cgroup v2 directory under the runner's own, if a child can move itself in."""
    try:
        own = _own_cgroup()
    except OSError as exc:
        return None, f"no cgroup v2 hierarchy ({exc})"
    if own is None:
        return None, "no cgroup v2 hierarchy is mounted"
    _end_dead_runners(own)
    base = own / f"fle-runner-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        base.mkdir()
    except OSError as exc:
        return None, f"cannot create {base}: {exc.strerror}"
    probe = base / "probe"
    try:
        probe.mkdir()
        rc = subprocess.run(
            [_SH, "-c", _ENTER, str(probe / "cgroup.procs"), "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
        ).returncode
    except (OSError, subprocess.SubprocessError) as exc:
        rc, why = -1, str(exc)
    else:
        why = f"a process cannot move itself into {probe}"
    with contextlib.suppress(OSError):
        probe.rmdir()
    if rc != 0:
        with contextlib.suppress(OSError):
            base.rmdir()
        return None, why
    return base, ""


def _end_dead_runners(own: Path) -> None:
    """Kill what jobs of a runner that died (``kill -9``: its jobs' leaders die with it,
    daemons they started do not) left in its cgroups, and remove them. Only cgroups of
    runners whose pid no longer exists are touched."""
    for base in own.glob("fle-runner-*"):
        parts = base.name.split("-")
        if len(parts) < 3 or not parts[2].isdigit() or Path(f"/proc/{parts[2]}").exists():
            continue
        for job in [d for d in base.iterdir() if d.is_dir()]:
            box = CgroupBox("", job, create=False)
            if box._procs():
                log.warning("killing processes left in %s by a runner that died", job)
                box.kill()
            box.close()
        with contextlib.suppress(OSError):
            base.rmdir()


def _own_cgroup() -> Path | None:
    """The directory of this process's cgroup in the mounted cgroup v2 hierarchy."""
    rel = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            rel = line[3:].strip()
    if rel is None:
        return None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            fields = left.split()
            root, mount = fields[3], fields[4]
            sub = os.path.relpath(rel, root) if root != "/" else rel.lstrip("/")
            path = Path(mount) / sub if sub != "." else Path(mount)
            if path.is_dir():
                return path
    return None


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, session id, start time in clock ticks) of ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def _reap(pids: list[int]) -> None:
    """Reap those of ``pids`` that are the runner's children (re-parented to it)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _become_subreaper() -> None:
    """Orphans of jobs re-parent to the runner (not init), where it can find and reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError) as exc:
        log.debug("cannot become a child subreaper: %s", exc)
