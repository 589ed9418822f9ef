"""The sidecar runner: claims jobs from the control store and runs them as subprocesses.

One loop, one thread. ``Runner.step(now)`` does one pass — heartbeat, expire
other runners' leases, poll running jobs (exit, timeout, cancel, drain), claim
new jobs, trigger a warehouse sync — and takes ``now`` so tests drive leases,
timeouts and backoff without sleeping. ``Runner.run()`` calls it in a loop.

Each job runs in its own session/process group (``start_new_session=True``)
with its output in ``logs/<sweep>/<cell>.<attempt>.log``. A timeout, cancel or
fast drain sends SIGTERM to the whole group and SIGKILL after ``kill_grace_s``;
after any job ends its group is SIGKILLed, so no grandchild outlives it. On
Linux the job also gets ``PR_SET_PDEATHSIG`` (via ``setpriv``) so a ``kill -9`` of the runner
takes its children down; a later runner on the same host kills any group left
behind when it expires the dead runner's leases.

Completion is verified: exit 0 *and* at least one ``programs`` row for the
attempt's version in the sweep's source. Anything else is a failure.

Signals: SIGTERM drains gracefully (no new claims; running jobs may finish
until ``drain_timeout_s``, then they are killed and requeued; exit 0). SIGINT
drains fast (running jobs are killed now and requeued; exit 130). A second
signal of either kind escalates to the fast drain. Requeued cells do not use a
retry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from fle_core.errors import ConfigError, FleError, SourceUnavailable
from fle_core.sweeps.executors import Job, get_preset
from fle_core.sweeps.facts import attempts_for_sync
from fle_core.sweeps.store import Claim, ControlStore, RunnerRecord, open_store
from fle_core.sweeps.store.base import Outcome, RunnerStatus
from fle_core.workspace import SourceSpec, Workspace, mask_url

log = logging.getLogger(__name__)


def _store_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    errors: list[type[BaseException]] = [sqlite3.OperationalError]
    try:
        import psycopg

        errors.append(psycopg.OperationalError)
    except ImportError:
        pass
    return tuple(errors)


STORE_ERRORS = _store_errors()

COMPLETION = {
    "succeeded": "successful",
    "superseded": "will_retry",
    "failed": "failed_final",
    "cancelled": "cancelled",
}


@dataclass
class _Running:
    claim: Claim
    proc: subprocess.Popen
    spec: SourceSpec
    deadline: float
    started: float
    reason: str | None = None  # timed_out | cancelled | requeued once we decided to kill
    kill_sent_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Claim-run-verify loop. ``sweep_ids`` restricts it to some sweeps (in-process use)."""

    def __init__(
        self,
        ws: Workspace,
        store: ControlStore | None = None,
        *,
        max_concurrent: int = 2,
        lease_s: float = 30.0,
        kill_grace_s: float = 3.0,
        drain_timeout_s: float = 60.0,
        sweep_ids: list[str] | None = None,
        sync: bool = True,
        sync_interval_s: float = 10.0,
        runner_id: str | None = None,
    ):
        self.ws = ws
        self.store = store or open_store(ws)
        self.max_concurrent = max(1, int(max_concurrent))
        self.lease_s = float(lease_s)
        self.kill_grace_s = float(kill_grace_s)
        self.drain_timeout_s = float(drain_timeout_s)
        self.sweep_ids = list(sweep_ids) if sweep_ids is not None else None
        self.sync_enabled = sync
        self.sync_interval_s = float(sync_interval_s)
        self.store_outage_s = 300.0  # give up (and requeue everything) after this long without a store
        self.host = socket.gethostname()
        self.runner_id = runner_id or f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.running: dict[str, _Running] = {}
        self.drain: str | None = None  # None | "graceful" | "fast"
        self.drain_deadline: float | None = None
        self.started_at = time.time()
        self._last_beat = float("-inf")
        self._dirty_sources: set[str] = set()
        self._last_sync = float("-inf")
        self._source_errors: dict[str, str] = {}
        self._floors: dict[str, tuple[float, tuple[str, int]]] = {}
        self._wandb_queue: queue.Queue = queue.Queue()
        self._wandb_thread: threading.Thread | None = None
        self.floor_ttl_s = 2.0  # re-read the source's max(version) at most this often
        self.stats = {"claimed": 0, "succeeded": 0, "failed": 0, "requeued": 0, "cancelled": 0}

    # ---- the loop -------------------------------------------------------------
    def step(self, now: float) -> int:
        """One pass; returns how many things changed (0 means idle)."""
        changed = 0
        if now - self._last_beat >= self.lease_s / 3:
            self._heartbeat(now)
            changed += self._expire(now)
        changed += self._poll(now)
        if self.drain is None:
            changed += self._claim(now)
        self._maybe_sync(now)
        return changed

    def run(self, once: bool = False, poll_s: float = 0.05, idle_max_s: float = 1.0) -> int:
        """Loop until drained (signal) or, with ``once``, until nothing is left to run."""
        previous = self._install_signals()
        sleep = poll_s
        store_down_since: float | None = None
        try:
            while True:
                try:
                    changed = self.step(time.time())
                    if self.drain and not self.running:
                        break
                    if once and not self.running and not self.store.runnable_count(None, self.sweep_ids):
                        break
                    store_down_since = None
                except STORE_ERRORS as exc:
                    # The control store is busy or unreachable: keep the jobs, retry with backoff.
                    store_down_since = store_down_since or time.monotonic()
                    if time.monotonic() - store_down_since > self.store_outage_s:
                        raise
                    log.error("control store error (retrying): %s", exc)
                    changed, sleep = 0, idle_max_s
                sleep = poll_s if (changed or self.running) else min(sleep * 2, idle_max_s)
                self._wait(0 if changed else sleep)
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 130 if self.drain == "fast" and self._fast_by_sigint else 0

    _fast_by_sigint = False

    def _wait(self, timeout: float) -> None:
        """Sleep up to ``timeout``, waking at once when a job exits (Linux pidfds)."""
        fds = [r.extra["pidfd"] for r in self.running.values() if r.extra.get("pidfd") is not None]
        if not fds:
            time.sleep(timeout)
            return
        try:
            select.select(fds, [], [], timeout)
        except (OSError, ValueError):
            time.sleep(timeout)

    def request_drain(self, fast: bool = False) -> None:
        """Stop claiming; graceful lets jobs finish until the drain timeout."""
        if fast or self.drain == "graceful":
            self.drain = "fast"
        else:
            self.drain = "graceful"
            self.drain_deadline = time.time() + self.drain_timeout_s

    def _install_signals(self) -> dict[int, Any]:
        """SIGTERM → graceful drain, SIGINT → fast drain; returns the handlers to restore."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_term(_sig, _frame):
            self.request_drain(fast=False)

        def on_int(_sig, _frame):
            self._fast_by_sigint = True
            self.request_drain(fast=True)

        previous: dict[int, Any] = {
            signal.SIGTERM: signal.getsignal(signal.SIGTERM),
            signal.SIGINT: signal.getsignal(signal.SIGINT),
        }
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_int)
        return previous

    def _shutdown(self) -> None:
        """Kill and requeue anything still running (only after an unexpected error), final sync.

        Never raises: it runs in ``finally`` and must not hide the original error."""
        for rid in list(self.running):
            r = self.running[rid]
            if r.reason is None:
                r.reason = "requeued"
            _killpg(r.proc.pid, signal.SIGKILL)
            r.proc.wait()
            try:
                self._finish(r, time.time())
            except Exception as exc:  # noqa: BLE001
                log.error("could not record the end of %s: %s", rid, exc)
        try:
            self._wandb_flush(5.0 if self.drain == "fast" else 300.0)
            self._heartbeat(time.time(), status="stopped")
            self._maybe_sync(time.time(), force=True)
        except Exception as exc:  # noqa: BLE001
            log.error("shutdown bookkeeping failed: %s", exc)

    # ---- heartbeat and leases -----------------------------------------------------
    def _heartbeat(self, now: float, status: RunnerStatus | None = None) -> None:
        status = status or ("draining" if self.drain else "running")
        self.store.heartbeat(
            RunnerRecord(
                runner_id=self.runner_id,
                host=self.host,
                pid=os.getpid(),
                started_at=self.started_at,
                heartbeat_at=now,
                lease_s=self.lease_s,
                status=status,
            )
        )
        self._last_beat = now

    def _expire(self, now: float) -> int:
        """Requeue attempts of runners that stopped heartbeating; kill their leftovers here."""
        lost = self.store.expire_leases(now)
        for a in lost:
            log.warning("lease of %s (runner %s) expired; requeued", a.attempt_id, a.runner_id)
            mine = self.running.pop(a.attempt_id, None)
            if mine is not None:  # our own heartbeats failed too long: the cell is requeued, stop our copy
                _killpg(mine.proc.pid, signal.SIGKILL)
                mine.proc.wait()
                if mine.extra.get("pidfd") is not None:
                    os.close(mine.extra.pop("pidfd"))
            elif a.host == self.host and a.pid:
                start = proc_start_time(a.pid)
                if start is None or start == a.proc_start:
                    _killpg(a.pid, signal.SIGKILL)
        return len(lost)

    # ---- running jobs -------------------------------------------------------------
    def _poll(self, now: float) -> int:
        changed = 0
        stop = self.store.stop_requests(list(self.running)) if self.running else {}
        for aid in list(self.running):
            r = self.running[aid]
            if not _exited(r.proc):
                self._police(r, now, stop.get(aid))
                continue
            _killpg(r.proc.pid, signal.SIGKILL)  # leader is a zombie: the group id is still ours
            r.proc.wait()
            self._finish(r, now)
            changed += 1
        return changed

    def _police(self, r: _Running, now: float, stop: str | None) -> None:
        """Decide whether a live job must be killed (timeout, cancel, lost, drain) and do it.

        ``lost``: another runner expired this attempt (our heartbeats lapsed) and requeued
        the cell; our copy must stop so the cell never runs twice at once."""
        if r.reason is None:
            if stop == "lost":
                r.reason, r.kill_sent_at = "requeued", now
                _killpg(r.proc.pid, signal.SIGKILL)
                return
            if now >= r.deadline:
                r.reason = "timed_out"
            elif stop == "cancelled":
                r.reason = "cancelled"
            elif self.drain == "fast" or (self.drain == "graceful" and now >= (self.drain_deadline or 0)):
                r.reason = "requeued"
            if r.reason:
                r.kill_sent_at = now
                _killpg(r.proc.pid, signal.SIGTERM)
        elif r.kill_sent_at is not None and now - r.kill_sent_at >= self.kill_grace_s:
            _killpg(r.proc.pid, signal.SIGKILL)

    def _finish(self, r: _Running, now: float) -> None:
        aid = r.claim.attempt.attempt_id
        self.running.pop(aid, None)
        if r.extra.get("pidfd") is not None:
            os.close(r.extra.pop("pidfd"))
        rc = r.proc.returncode
        outcome, error = self._outcome(r, rc)
        try:
            with open(r.extra["log_path"], "a") as fh:
                fh.write(f"\n# exit {rc}; outcome {outcome}{': ' + error if error else ''}\n")
        except OSError as exc:
            log.warning("could not append to %s: %s", r.extra["log_path"], exc)
        fin = self.store.finish_attempt(aid, self.runner_id, outcome, now, exit_code=rc, error=error)
        if fin.stale:
            log.warning("attempt %s was requeued by another runner; result dropped", aid)
            return
        self.stats[
            {"succeeded": "succeeded", "cancelled": "cancelled", "requeued": "requeued"}.get(
                outcome, "failed"
            )
        ] += 1
        self._dirty_sources.add(r.claim.sweep.source)
        if r.claim.sweep.wandb:
            self._log_wandb(r, fin.attempt_status or "failed")
        if self.store.complete_if_done(r.claim.sweep.sweep_id, now) and r.claim.sweep.wandb:
            self._log_wandb_summary(r.claim)

    def _outcome(self, r: _Running, rc: int) -> tuple[Outcome, str | None]:
        if r.reason == "timed_out":
            return "timed_out", f"timed out after {r.deadline - r.started:g}s; process group killed"
        if r.reason == "cancelled":
            return "cancelled", None
        if r.reason == "requeued":
            return "requeued", None
        if rc != 0:
            return "failed", f"exit code {rc}" + (" (killed by signal)" if rc < 0 else "")
        try:
            steps = _verified_steps(r.spec, r.claim.attempt.version)
        except FleError as exc:
            return "failed", f"exit 0 but the trajectory could not be verified: {exc}"
        if steps < 1:
            return "empty", f"exit 0 but version {r.claim.attempt.version} has no steps in the source"
        return "succeeded", None

    # ---- claiming -------------------------------------------------------------------
    def _claim(self, now: float) -> int:
        if len(self.running) >= self.max_concurrent:
            return 0
        floors = self._source_floors(now)
        if not floors:
            return 0
        started = 0
        while len(self.running) < self.max_concurrent:
            claim = self.store.claim(self.runner_id, self.host, now, self.lease_s, floors, self.sweep_ids)
            if claim is None:
                break
            self.stats["claimed"] += 1
            self._start(claim, now)
            started += 1
        return started

    def _source_floors(self, now: float) -> dict[str, tuple[str, int]]:
        """name → (reservation key, max version already in the source) for active sweeps."""
        names = {
            s.source
            for s in self.store.list_sweeps()
            if s.status == "active" and (self.sweep_ids is None or s.sweep_id in self.sweep_ids)
        }
        out: dict[str, tuple[str, int]] = {}
        for name in names:
            cached = self._floors.get(name)
            if cached and 0 <= now - cached[0] < self.floor_ttl_s:
                out[name] = cached[1]  # our own versions are covered by reservations anyway
                continue
            try:
                spec = self.ws.source(name)
                out[name] = (spec.display_url(), _max_version(spec))
                self._floors[name] = (now, out[name])
                self._source_errors.pop(name, None)
            except FleError as exc:
                if self._source_errors.get(name) != str(exc):  # one event per distinct problem
                    self.store.add_event("source_unavailable", f"{name}: {exc}", now)
                self._source_errors[name] = str(exc)
        return out

    def _start(self, claim: Claim, now: float) -> None:
        a, c, s = claim.attempt, claim.cell, claim.sweep
        workdir = self.ws.logs_dir / _safe(s.sweep_id)
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / f"{c.cell_id}.{a.attempt}.log"
        try:
            spec = self.ws.source(s.source)
            executor = get_preset(self.ws, s.executor)
            cfg = json.loads(s.config_json)
            timeout = float(cfg.get("timeout_s", 3600.0))
            seed = int(cfg.get("seed", 0))
            job = Job(
                sweep_id=s.sweep_id,
                cell_id=c.cell_id,
                attempt=a.attempt,
                model=c.model,
                task=c.task,
                env_id=c.env_id,
                trial=c.trial,
                params=json.loads(c.params_json),
                version=a.version,
                source_url=spec.resolved_url(),
                seed=zlib.crc32(f"{seed}:{c.cell_id}:{a.attempt}".encode()),
            )
            cmd = executor.build(job, workdir)
            env = {**os.environ, **cmd.env, "FLE_CORE_HOME": str(self.ws.root)}
            with open(log_path, "a") as fh:
                _header(fh, a.attempt_id, a.version, executor.name, cmd.argv, job.source_url)
                proc = subprocess.Popen(
                    _with_pdeathsig(cmd.argv, env),
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=str(workdir),
                    start_new_session=True,
                    close_fds=True,
                )
        except (FleError, OSError, ValueError) as exc:
            msg = f"could not start the job: {exc}"
            with open(log_path, "a") as fh:
                fh.write(f"# {msg}\n")
            self.store.set_attempt_process(a.attempt_id, 0, None, str(log_path))
            self.store.finish_attempt(a.attempt_id, self.runner_id, "failed", now, error=msg)
            self.stats["failed"] += 1
            return
        self.store.set_attempt_process(a.attempt_id, proc.pid, proc_start_time(proc.pid), str(log_path))
        self.running[a.attempt_id] = _Running(
            claim,
            proc,
            spec,
            deadline=now + timeout,
            started=now,
            extra={"log_path": str(log_path), "pidfd": _pidfd(proc.pid)},
        )

    # ---- side effects after jobs ----------------------------------------------------
    def _maybe_sync(self, now: float, force: bool = False) -> None:
        """Incremental warehouse sync of sources jobs wrote to; failures become events."""
        if not (self.sync_enabled and self._dirty_sources):
            return
        if not force and self.running and now - self._last_sync < self.sync_interval_s:
            return
        from fle_core.warehouse.sync import sync  # lazy: duckdb/pyarrow only once a job finished

        attempts = attempts_for_sync(self.ws)
        for name in sorted(self._dirty_sources):
            try:
                sync(self.ws, source=name, attempts=attempts)
            except Exception as exc:  # noqa: BLE001
                log.error("sync of %s failed: %s", name, exc)
                self.store.add_event("sync_failed", f"{name}: {type(exc).__name__}: {exc}", now)
        self._dirty_sources.clear()
        self._last_sync = now

    # ---- W&B, off the scheduling loop ---------------------------------------------------
    def _log_wandb(self, r: _Running, attempt_status: str) -> None:
        """Queue one W&B run for this job; a W&B init can take seconds, so a worker thread
        (with its own store connection) does it while the loop keeps policing jobs."""
        from fle_core.sweeps import job_tracking  # lazy: polars and wandb only once a job finished

        status = COMPLETION.get(attempt_status, attempt_status)
        self._wandb_submit(
            lambda store: job_tracking.log_job_to_wandb(self.ws, store, r.claim, status, r.spec)
        )

    def _log_wandb_summary(self, claim: Claim) -> None:
        from fle_core.sweeps import job_tracking

        self._wandb_submit(lambda store: job_tracking.log_summary_to_wandb(self.ws, store, claim.sweep))

    def _wandb_submit(self, task) -> None:
        if self._wandb_thread is None:
            self._wandb_thread = threading.Thread(target=self._wandb_worker, name="fle-wandb", daemon=True)
            self._wandb_thread.start()
        self._wandb_queue.put(task)

    def _wandb_worker(self) -> None:
        store = None
        while (task := self._wandb_queue.get()) is not None:
            try:
                store = store or open_store(self.ws)
                task(store)
            except Exception as exc:  # noqa: BLE001
                log.error("W&B logging failed: %s", exc)
            finally:
                self._wandb_queue.task_done()
        if store is not None:
            store.close()

    def _wandb_flush(self, timeout_s: float) -> None:
        """Let queued W&B runs finish (bounded), then stop the worker."""
        if self._wandb_thread is None:
            return
        self._wandb_queue.put(None)
        self._wandb_thread.join(timeout_s)
        if self._wandb_thread.is_alive():
            log.warning("W&B logging still busy after %.0fs; leaving it", timeout_s)


# ---- process helpers -------------------------------------------------------------------
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def _with_pdeathsig(argv: list[str], env: dict[str, str]) -> list[str]:
    """Prefix ``setpriv --pdeathsig KILL --`` so the job dies if the runner is killed.

    ``setpriv`` sets the flag and execs the job in the same process (same pid), so
    the spawn stays on the fast vfork path; a Python ``preexec_fn`` doing the same
    made every spawn ~15 ms slower. The command is resolved first, so a missing
    program is reported as such instead of as setpriv's exit code."""
    exe = argv[0] if os.sep in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
    if exe is None or not os.access(exe, os.X_OK):
        raise FileNotFoundError(f"executable not found: {argv[0]!r}")
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else list(argv)


def _pidfd(pid: int) -> int | None:
    """A pollable fd that becomes readable when ``pid`` exits (Linux ≥ 5.3), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited(proc: subprocess.Popen) -> bool:
    """True once the child exited, without reaping it (so its group id stays valid)."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return proc.poll() is not None
    return info is not None


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against pid reuse), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _verified_steps(spec: SourceSpec, version: int, tries: int = 6) -> int:
    """Step rows of ``version`` in the source; retried, since a busy database is not a failed job."""
    delay = 0.05
    for i in range(tries):
        try:
            if spec.kind == "sqlite":
                return _sqlite_scalar(
                    spec, "SELECT COUNT(*) FROM programs WHERE version = ?", (int(version),)
                )
            from fle_core.sources import programs

            return programs.version_step_count(spec, version)
        except FleError:
            if i == tries - 1:
                raise
            time.sleep(delay)
            delay *= 2
    return 0


def _max_version(spec: SourceSpec) -> int:
    """``sources.max_version`` (Postgres) or the same query on a SQLite file (0 if no table yet)."""
    if spec.kind == "sqlite":
        return _sqlite_scalar(spec, "SELECT MAX(version) FROM programs", ())
    from fle_core.sources import programs

    return programs.max_version(spec)


def _sqlite_scalar(spec: SourceSpec, sql: str, params: tuple) -> int:
    """One integer from a SQLite source, read-only, with a busy timeout.

    The stdlib driver instead of ADBC here: it waits on a busy file (ADBC's read-only
    connection fails at once while a job writes), and it keeps pyarrow/pandas out of
    the runner process. A missing file or ``programs`` table counts as empty."""
    import sqlite3

    from fle_core.workspace import sqlite_path

    path = sqlite_path(spec.resolved_url())
    if not path.is_file():
        return 0
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'programs'").fetchone() is None:
                return 0
            return int(con.execute(sql, params).fetchone()[0] or 0)
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise SourceUnavailable(f"Source {spec.name!r}: {exc}") from None


def _header(fh: TextIO, attempt_id: str, version: int, executor: str, argv: list[str], url: str) -> None:
    masked = [a.replace(url, mask_url(url)) if url else a for a in argv]
    fh.write(f"# attempt {attempt_id} version {version} executor {executor}\n# argv {masked!r}\n")
    fh.flush()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


__all__ = ["ConfigError", "Runner", "proc_start_time"]
