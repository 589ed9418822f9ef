"""A real one-node Slurm cluster in a temp dir: its own munged, slurmctld and slurmd.

Used by the ``slurm_cluster`` fixture (tests/conftest.py) and bench/slurm.py. It
writes its own ``slurm.conf`` (this machine's short host name, free ports, state,
spool and log dirs under the temp dir, no slurmdbd), runs ``munged`` as the
``munge`` user on its own socket (so it never touches a system munged), and
starts ``slurmctld`` and ``slurmd`` in the foreground as children it stops at the
end. Clients find it through ``SLURM_CONF`` (``cluster.env``). Needs root (slurmd
launches jobs) and Debian's ``slurm-wlm`` and ``munge``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
MUNGE_KEY = Path("/etc/munge/munge.key")


def missing() -> str | None:
    """Why a cluster cannot start here, or None."""
    gone = [b for b in BINARIES if shutil.which(b, path=SYSTEM_PATH) is None]
    if gone:
        return f"Slurm/munge binaries missing: {', '.join(gone)} (apt-get install -y slurm-wlm munge)"
    if os.geteuid() != 0:
        return "a local Slurm cluster needs root (slurmd starts jobs)"
    if not MUNGE_KEY.exists():
        return f"{MUNGE_KEY} missing (installed by the munge package)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (installed by the munge package)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


def _which(name: str) -> str:
    """The binary from the system PATH (a test may have emptied $PATH)."""
    return shutil.which(name, path=SYSTEM_PATH) or name


class SlurmCluster:
    """Start with ``SlurmCluster.start(cpus=8)``; ``env`` for clients; ``stop()`` at the end."""

    def __init__(self, root: Path, cpus: int):
        self.root = root
        self.cpus = cpus
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.munged_pid: int | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    @classmethod
    def start(cls, cpus: int = 8, kill_wait_s: int = 5) -> SlurmCluster:
        why = missing()
        if why:
            raise RuntimeError(why)
        root = Path(tempfile.mkdtemp(prefix="fle-slurm-"))
        root.chmod(0o755)  # munged insists that every directory above its socket is searchable
        cluster = cls(root, cpus)
        try:
            cluster._start_munge()
            cluster._write_conf(kill_wait_s)
            cluster._start_daemons()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_munge(self) -> None:
        mdir = self.root / "munge"
        mdir.mkdir()
        shutil.chown(mdir, "munge", "munge")
        mdir.chmod(0o755)
        pidfile = mdir / "munged.pid"
        subprocess.run(
            [
                "runuser",
                "-u",
                "munge",
                "--",
                _which("munged"),
                f"--socket={mdir / 'munge.sock'}",
                f"--pid-file={pidfile}",
                f"--log-file={mdir / 'munged.log'}",
                f"--seed-file={mdir / 'munged.seed'}",
                f"--key-file={MUNGE_KEY}",
            ],
            check=True,
            capture_output=True,
        )
        self.munged_pid = int(pidfile.read_text().strip())

    def _write_conf(self, kill_wait_s: int) -> None:
        r = self.root
        for d in ("state", "spool", "log"):
            (r / d).mkdir()
        lines = {
            "ClusterName": "fletest",
            "SlurmctldHost": self.host,
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={r / 'munge' / 'munge.sock'}",
            "SlurmctldPort": str(_free_port()),
            "SlurmdPort": str(_free_port()),
            "StateSaveLocation": str(r / "state"),
            "SlurmdSpoolDir": str(r / "spool"),
            "SlurmctldPidFile": str(r / "slurmctld.pid"),
            "SlurmdPidFile": str(r / "slurmd.pid"),
            "SlurmctldLogFile": str(r / "log" / "slurmctld.log"),
            "SlurmdLogFile": str(r / "log" / "slurmd.log"),
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core",
            "SchedulerType": "sched/backfill",
            "ReturnToService": "2",
            "SlurmdParameters": "config_overrides",  # advertise `cpus` CPUs on a 2-core machine
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "MpiDefault": "none",
            "KillWait": str(kill_wait_s),
            "MinJobAge": "3600",
            "MessageTimeout": "5",
            "InactiveLimit": "0",
        }
        text = "\n".join(f"{k}={v}" for k, v in lines.items())
        text += f"\nNodeName={self.host} CPUs={self.cpus} RealMemory=4000 State=UNKNOWN\n"
        text += f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP\n"
        self.conf.write_text(text)

    def _start_daemons(self) -> None:
        env = {**os.environ, **self.env}
        log = self.root / "log"
        for name, extra in (("slurmctld", ["-i"]), ("slurmd", ["-N", self.host])):
            with open(log / f"{name}.out", "w") as out:
                self.procs.append(
                    subprocess.Popen(
                        [_which(name), "-D", "-f", str(self.conf), *extra],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                )
            if name == "slurmctld":
                self._wait(lambda: self.run("sinfo", "-h", check=False).returncode == 0, "slurmctld")
        self._wait(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False).stdout, "node idle")

    def _wait(self, pred, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a Slurm daemon exited early; see {self.root / 'log'}")
            if pred():
                return
            time.sleep(0.2)
        raise RuntimeError(f"Slurm cluster not up ({what}) within {timeout:.0f}s; see {self.root / 'log'}")

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """A client command against this cluster."""
        return subprocess.run(
            [_which(argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            check=check,
            timeout=60,
        )

    def jobs(self) -> list[str]:
        """Ids of this cluster's jobs that still hold or wait for an allocation."""
        out = self.run("squeue", "-h", "-o", "%A", check=False).stdout
        return sorted(set(out.split()))

    def cancel_all(self) -> None:
        """scancel every job this cluster still runs (between tests)."""
        ids = self.jobs()
        if ids:
            self.run("scancel", *ids, check=False)
            deadline = time.monotonic() + 30
            while self.jobs() and time.monotonic() < deadline:
                time.sleep(0.2)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.munged_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.munged_pid, signal.SIGTERM)
        shutil.rmtree(self.root, ignore_errors=True)
