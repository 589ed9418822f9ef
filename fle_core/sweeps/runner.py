"""The sidecar runner: claims jobs from the control store and runs them as subprocesses.

One scheduling loop. ``Runner.step(now)`` does one pass — reap exited jobs,
police running jobs (timeout, cancel, drain), heartbeat, expire other runners'
leases, record results, claim new jobs, hand a warehouse sync to its worker
thread — and takes ``now`` so tests drive leases, timeouts and backoff without
sleeping. ``Runner.run()`` calls it in a loop. Nothing on the loop waits on the
warehouse (``runner_sync``) or W&B (``job_tracking``), so heartbeats, timeouts and
cancels never wait on them either.

A control-store outage does not stop the jobs: exited jobs are reaped and their
results kept in memory until the store answers again; the loop backs off
(capped), logs the outage once and its end once, and after it waits one lease
before expiring other runners' leases, so runners cut off by the same outage
can heartbeat first and no finished job is rerun.

Each job runs in its own session and, where the machine allows, its own cgroup
(``containment``), with its output copied into ``logs/<sweep>/<cell>.<attempt>.log``
up to a cap (``job_logs``). A timeout, cancel or fast drain sends SIGTERM to every
process of the job and SIGKILL after ``kill_grace_s``; after any job ends all its
processes are SIGKILLed (a ``setsid`` daemon too), so nothing outlives it. On
Linux the job also gets ``PR_SET_PDEATHSIG`` (via ``setpriv``) so a ``kill -9`` of the runner
takes its children down; a later runner on the same host kills any group left
behind when it expires the dead runner's leases.

Completion is verified by the sweep's source (``Source.verify_job``): for a
``programs`` table, exit 0 *and* at least one row of the attempt's version; for a
folder of Inspect logs, exit 0 and the job's log finished with its sample scored.
Anything else is a failure. Jobs get only ``Executor.environment`` of the
runner's environment (no control-store password, no other sources' URLs).

Signals: SIGTERM drains gracefully (no new claims; running jobs may finish
until ``drain_timeout_s``, then they are killed and requeued; exit 0). SIGINT
drains fast (running jobs are killed now and requeued; exit 130). A second
signal of either kind escalates to the fast drain. Requeued cells do not use a
retry. A job that dies of SIGTERM while the runner drains (Slurm signals every
process of a cancelled or timed-out pilot) is requeued too, not failed.

Each job gets a concurrency slot (``FLE_JOB_SLOT``): the lowest integer not used
by this runner's other running jobs, so jobs on one node can split resources
such as FLE's Factorio servers (``executors.fle_server_range``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import select
import signal
import socket
import subprocess
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any, TextIO

from fle_core import sources
from fle_core.errors import ConfigError, FleError, SourceUnavailable
from fle_core.sources import JobRef, Source
from fle_core.sweeps import slurm, wandb_worker
from fle_core.sweeps.containment import ROUTES, Containment, JobBox
from fle_core.sweeps.executors import Job, get_preset
from fle_core.sweeps.job_logs import CappedLog, cap_bytes
from fle_core.sweeps.processes import exited, killpg, own_log_path, pidfd, proc_start_time, with_pdeathsig
from fle_core.sweeps.runner_sync import SyncWorker
from fle_core.sweeps.store import Claim, ControlStore, RunnerRecord, open_store
from fle_core.sweeps.store.records import Outcome, RunnerStatus
from fle_core.sweeps.wandb_worker import WandbWorker
from fle_core.workspace import Workspace, mask_url

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

COMPLETION = wandb_worker.COMPLETION  # the old home of this table


@dataclass
class _Running:
    claim: Claim
    proc: subprocess.Popen
    source: Source
    deadline: float
    started: float
    slot: int = 0
    reason: str | None = None  # timed_out | cancelled | requeued once we decided to kill
    kill_sent_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    box: JobBox | None = None  # where the job's processes live (``containment``)
    output: CappedLog | None = None  # copies its output into its log, capped


@dataclass
class _Result:
    """An exited job whose outcome is not yet in the control store (it may be down).
    ``outcome`` None: exit 0, but the source could not be read to verify it yet."""

    run: _Running
    rc: int
    at: float
    outcome: Outcome | None
    error: str | None


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
        self.outage_backoff_max_s = 5.0  # cap of the retry delay while the control store is down
        self.verify_deadline_s = 600.0  # how long a finished job may wait for its source to answer
        self.host = socket.gethostname()
        self.runner_id = runner_id or f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.pilot = slurm.pilot_identity(os.environ)
        self.log_path = own_log_path()
        self.running: dict[str, _Running] = {}
        self._results: list[_Result] = []
        self._done_checks: dict[str, Claim] = {}  # sweeps to test for completion once the store answers
        self._outage_since: float | None = None  # monotonic start of a control-store outage
        self._unrecorded_pids: dict[str, tuple[int, str | None, str]] = {}
        self._expire_after = float("-inf")  # no lease expiry before this (after an outage)
        self.drain: str | None = None  # None | "graceful" | "fast"
        self.drain_deadline: float | None = None
        self.started_at = time.time()
        self._last_beat = float("-inf")
        self._dirty_sources: set[str] = set()
        self._last_sync = float("-inf")
        self._sync = SyncWorker(ws)
        self._source_errors: dict[str, str] = {}
        self._floors: dict[str, tuple[float, tuple[str, int]]] = {}
        self._wandb = WandbWorker(ws)
        self.floor_ttl_s = 2.0  # re-read the source's max(version) at most this often
        section = ws.section("runner")
        self.log_cap = cap_bytes(section)
        self.containment_route = str(section.get("containment", "auto"))
        if self.containment_route not in ROUTES:
            raise ConfigError(f"[runner] containment must be one of {', '.join(ROUTES)}")
        self._containment: Containment | None = None
        self.store_outage_max_s = _seconds(section, "store_outage_max_s", 600.0)
        self._gave_up = False  # the store stayed unreachable past store_outage_max_s
        self.stats = {"claimed": 0, "succeeded": 0, "failed": 0, "requeued": 0, "cancelled": 0}

    # ---- the loop -------------------------------------------------------------
    def step(self, now: float) -> int:
        """One pass; returns how many things changed (0 means idle).

        Local work (reaping exited jobs, timeouts) comes first and survives a store
        error; a store error propagates to ``run``, which backs off."""
        changed = self._reap(now)
        self._police_all(now)  # timeouts and drains first: they hold while the store is down
        if now - self._last_beat >= self.lease_s / 3:
            self._heartbeat(now)
            changed += self._expire(now)
        changed += self._record(now)
        if self.drain is None:
            changed += self._claim(now)
        self._maybe_sync(now)
        return changed

    def run(self, once: bool = False, poll_s: float = 0.05, idle_max_s: float = 1.0) -> int:
        """Loop until drained (signal) or, with ``once``, until nothing is left to run."""
        previous = self._install_signals()
        self._contain()  # at start: it also ends what jobs of a runner that died here left behind
        sleep = poll_s
        backoff = 0.0
        try:
            while True:
                try:
                    changed = self.step(time.time())
                    if self.drain and not self.running and (not self._results or self._drain_overdue()):
                        break
                    if once and not (self.running or self._results) and not self._runnable():
                        break
                    backoff = 0.0
                except STORE_ERRORS as exc:
                    # The control store is busy or unreachable: jobs run on, results wait.
                    self._store_down(exc)
                    if self.drain and not self.running and self._drain_overdue():
                        break  # asked to stop by now; _shutdown names what could not be recorded
                    self._give_up_if_too_long()
                    backoff = min(max(backoff * 2, 0.25), self.outage_backoff_max_s)
                    self._wait(backoff)
                    self._reconnect()
                    continue
                sleep = poll_s if (changed or self.running) else min(sleep * 2, idle_max_s)
                self._wait(0 if changed else sleep)
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self._gave_up:
            return 3
        return 130 if self.drain == "fast" and self._fast_by_sigint else 0

    def _drain_overdue(self) -> bool:
        """A drain's time is up (at once for a fast drain): stop waiting for the store."""
        return self.drain == "fast" or time.time() >= (self.drain_deadline or 0)

    def _drain_budget(self, default: float) -> float:
        """How long shutdown work may still take: ``default``, or what is left of a drain."""
        if self.drain is None or self.drain_deadline is None:
            return default
        return min(default, max(5.0, self.drain_deadline + self.kill_grace_s - time.time()))

    def _give_up_if_too_long(self) -> None:
        """An outage beyond ``store_outage_max_s``: stop the jobs and exit (a Slurm pilot
        gives its allocation back); their leases expire and the cells run again elsewhere."""
        if self._gave_up or self._outage_since is None:
            return
        if time.monotonic() - self._outage_since < self.store_outage_max_s:
            return
        log.error(
            "control store unreachable for %.0fs (limit [runner] store_outage_max_s = %g); stopping "
            "%d job(s) and exiting; their cells run again once their leases expire",
            time.monotonic() - self._outage_since,
            self.store_outage_max_s,
            len(self.running),
        )
        self._gave_up = True
        self.request_drain(fast=True)

    def _reconnect(self) -> None:
        """Reopen the store connection during an outage (one opened read-only stays so)."""
        try:
            self.store.reconnect()
        except Exception as exc:  # noqa: BLE001 - still down: the next turn retries
            log.debug("control store reconnect failed: %s", exc)

    def _runnable(self) -> int:
        return self.store.runnable_count(None, self.sweep_ids)

    def _store_down(self, exc: BaseException) -> None:
        """Log an outage once (its end is logged by the first heartbeat that succeeds)."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.error(
                "control store unreachable (%s); jobs keep running and their results are kept; "
                "retrying every %gs at most",
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                self.outage_backoff_max_s,
            )
        else:
            log.debug("control store still unreachable: %s", exc)

    def _store_back(self, now: float) -> None:
        if self._outage_since is None:
            return
        log.warning(
            "control store reachable again after %.1fs; %d result(s) to record; no lease expiry "
            "for %gs so other runners can heartbeat first",
            time.monotonic() - self._outage_since,
            len(self._results),
            self.lease_s,
        )
        self._outage_since = None
        self._expire_after = now + self.lease_s
        self._release_phantoms(now)
        self._record_pids()

    def _release_phantoms(self, now: float) -> None:
        """Requeue attempts the store holds as ours that we never started: a claim can
        commit while the connection breaks before its answer arrives. Our heartbeats would
        otherwise keep such a cell ``running`` forever."""
        known = set(self.running) | {res.run.claim.attempt.attempt_id for res in self._results}
        for aid in self.store.running_attempt_ids(self.runner_id):
            if aid not in known:
                log.warning("attempt %s was claimed as the store connection broke; requeued", aid)
                self.store.finish_attempt(
                    aid,
                    self.runner_id,
                    "requeued",
                    now,
                    error="claimed while the control store connection broke; never started",
                )

    _fast_by_sigint = False

    def _wait(self, timeout: float) -> None:
        """Sleep up to ``timeout``, waking at once when a job exits (Linux pidfds).

        Only jobs not yet reaped are in ``running`` (reaping closes the pidfd), so an
        exited job cannot make this return at once forever."""
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
            self.drain_deadline = min(self.drain_deadline or time.time(), time.time())
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
        """Kill and requeue anything still running (only after an unexpected error or a fast
        drain with the store down), record what it can, final sync.

        Never raises: it runs in ``finally`` and must not hide the original error."""
        for r in self.running.values():
            if r.reason is None:
                r.reason = "requeued"
            _signal(r, signal.SIGKILL)
            r.proc.wait()
        try:
            self._reap(time.time())
            self._record(time.time())
        except Exception as exc:  # noqa: BLE001
            log.error("could not record the end of %d job(s): %s", len(self._results), exc)
        for res in self._results:  # named one by one: their leases expire and the cells rerun
            log.error(
                "result of %s (%s) not recorded; its lease will expire and the cell run again",
                res.run.claim.attempt.attempt_id,
                res.outcome or "exit 0, unverified",
            )
        try:
            self._wandb.flush(5.0 if self.drain == "fast" else self._drain_budget(300.0))
            self._heartbeat(time.time(), status="stopped")
        except Exception as exc:  # noqa: BLE001
            log.error("shutdown bookkeeping failed: %s", exc)
        self._maybe_sync(time.time(), force=True)
        self._sync.close(30.0 if self.drain == "fast" else self._drain_budget(900.0))
        if self._containment is not None:
            self._containment.close()

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
                slurm_job_id=self.pilot.job_id,
                slurm_array_task_id=self.pilot.array_task_id,
                node=self.pilot.node or self.host,
                jobs_run=self.stats["claimed"],
                log_path=self.log_path,
            )
        )
        self._last_beat = now
        self._store_back(now)

    def _expire(self, now: float) -> int:
        """Requeue attempts of runners that stopped heartbeating; kill their leftovers here."""
        if now < self._expire_after:
            return 0
        lost = self.store.expire_leases(now)
        for a in lost:
            log.warning("lease of %s (runner %s) expired; requeued", a.attempt_id, a.runner_id)
            mine = self.running.pop(a.attempt_id, None)
            if mine is not None:  # our own heartbeats failed too long: the cell is requeued, stop our copy
                _end(mine)
            elif a.host == self.host and a.pid:
                start = proc_start_time(a.pid)
                if start is None or start == a.proc_start:
                    killpg(a.pid, signal.SIGKILL)
        return len(lost)

    # ---- running jobs -------------------------------------------------------------
    def _police_all(self, now: float) -> None:
        """Kill jobs that must stop. Timeouts and drains hold even while the store is down."""
        if not self.running:
            return
        try:
            stop = self.store.stop_requests(list(self.running))
        except STORE_ERRORS:
            for r in self.running.values():
                self._police(r, now, None)
            raise
        for aid, r in self.running.items():
            self._police(r, now, stop.get(aid))

    def _police(self, r: _Running, now: float, stop: str | None) -> None:
        """Decide whether a live job must be killed (timeout, cancel, lost, drain) and do it.

        ``lost``: another runner expired this attempt (our heartbeats lapsed) and requeued
        the cell; our copy must stop so the cell never runs twice at once."""
        if r.reason is None:
            if stop == "lost":
                r.reason, r.kill_sent_at = "requeued", now
                _signal(r, signal.SIGKILL)
                return
            if now >= r.deadline:
                r.reason = "timed_out"
            elif stop == "cancelled":
                r.reason = "cancelled"
            elif self.drain == "fast" or (self.drain == "graceful" and now >= (self.drain_deadline or 0)):
                r.reason = "requeued"
            if r.reason:
                r.kill_sent_at = now
                _signal(r, signal.SIGTERM)
        elif r.kill_sent_at is not None and now - r.kill_sent_at >= self.kill_grace_s:
            _signal(r, signal.SIGKILL)

    def _reap(self, now: float) -> int:
        """Exited jobs → results (no control store needed): their group is killed, the
        outcome decided and the log footer written."""
        reaped = 0
        for aid in list(self.running):
            r = self.running[aid]
            if not exited(r.proc):
                continue
            del self.running[aid]
            _end(r)
            rc = r.proc.returncode
            outcome, error = self._outcome(r, rc)
            self._results.append(_Result(r, rc, now, outcome, error))
            if outcome is not None:
                self._log_footer(r, rc, outcome, error)
            reaped += 1
        return reaped

    def _record(self, now: float) -> int:
        """Write kept results to the store, oldest first; a store error leaves the rest kept."""
        recorded = 0
        for res in list(self._results):
            outcome = res.outcome or self._verify_later(res, now)
            if outcome is None:
                continue  # the source is still unreachable; keep it
            r = res.run
            aid = r.claim.attempt.attempt_id
            fin = self.store.finish_attempt(
                aid, self.runner_id, outcome, res.at, exit_code=res.rc, error=res.error
            )
            self._results.remove(res)
            recorded += 1
            if fin.stale:
                log.warning("attempt %s was requeued by another runner; result dropped", aid)
                continue
            self.stats[
                {"succeeded": "succeeded", "cancelled": "cancelled", "requeued": "requeued"}.get(
                    res.outcome or "", "failed"
                )
            ] += 1
            self._dirty_sources.add(r.claim.sweep.source)
            if r.claim.sweep.wandb:
                self._wandb.job(r.claim, fin.attempt_status or "failed", r.source)
            self._done_checks[r.claim.sweep.sweep_id] = r.claim
        for sweep_id, claim in list(self._done_checks.items()):
            done = self.store.complete_if_done(sweep_id, now)
            del self._done_checks[sweep_id]
            if done and claim.sweep.wandb:
                self._wandb.summary(claim)
        return recorded

    def _verify_later(self, res: _Result, now: float) -> Outcome | None:
        """Retry the completion check of a job that exited 0 while its source was down;
        its outcome, or None while the source stays unreachable (up to a deadline)."""
        try:
            res.outcome, res.error = self._verified(res.run, retry=False)
        except SourceUnavailable as exc:
            if now - res.at < self.verify_deadline_s:
                return None
            res.outcome, res.error = "failed", f"exit 0 but the source stayed unreachable: {exc}"
        self._log_footer(res.run, res.rc, res.outcome, res.error)
        return res.outcome

    def _log_footer(self, r: _Running, rc: int, outcome: Outcome, error: str | None) -> None:
        try:
            with open(r.extra["log_path"], "a") as fh:
                fh.write(f"\n# exit {rc}; outcome {outcome}{': ' + error if error else ''}\n")
        except OSError as exc:
            log.warning("could not append to %s: %s", r.extra["log_path"], exc)

    def _outcome(self, r: _Running, rc: int) -> tuple[Outcome | None, str | None]:
        if r.reason == "timed_out":
            return "timed_out", f"timed out after {r.deadline - r.started:g}s; process group killed"
        if r.reason == "cancelled":
            return "cancelled", None
        if r.reason == "requeued":
            return "requeued", None
        if rc in (-signal.SIGTERM, 128 + signal.SIGTERM) and self._stopped_from_outside():
            return "requeued", None  # Slurm (scancel, time limit, preemption) signalled the job too
        try:
            return self._verified(r, rc)
        except SourceUnavailable:
            if rc != 0:
                return "failed", f"exit code {rc}" + (" (killed by signal)" if rc < 0 else "")
            return None, None  # decided once the source answers (``_verify_later``)

    def _verified(self, r: _Running, rc: int = 0, retry: bool = True) -> tuple[Outcome, str | None]:
        """The source's verdict on a finished job; ``SourceUnavailable`` if it is down. A later
        re-check (``retry=False``) asks once: it runs on the scheduling loop."""
        a, c, s = r.claim.attempt, r.claim.cell, r.claim.sweep
        job = JobRef(s.sweep_id, c.cell_id, a.attempt, a.version, c.task)
        verdict = r.source.verify_job(job, rc, retry=retry)
        return verdict.outcome, verdict.reason

    def _stopped_from_outside(self) -> bool:
        """True if this runner is draining. In a Slurm pilot, the job and the runner get
        SIGTERM together; give the runner's own handler a moment to run first."""
        if self.drain is None and self.pilot.job_id:
            time.sleep(0.5)
        return self.drain is not None

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
                source = sources.get(self.ws, name)
                out[name] = (source.location, source.max_version())
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
        slot = self._free_slot()
        box, output = None, None
        try:
            source = sources.get(self.ws, s.source)
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
                source_url=source.spec.resolved_url(),
                seed=zlib.crc32(f"{seed}:{c.cell_id}:{a.attempt}".encode()),
                slot=slot,
            )
            cmd = executor.build(job, workdir)
            # only what the job needs: no control-store password, no other sources' URLs
            env = {**executor.environment(os.environ), **cmd.env, "FLE_CORE_HOME": str(self.ws.root)}
            argv = with_pdeathsig(cmd.argv, env)
            with open(log_path, "a") as fh:
                _header(fh, a.attempt_id, a.version, executor.name, cmd.argv, job.source_url)
            box, output = self._contain().box(), CappedLog(log_path, self.log_cap)
            proc = subprocess.Popen(
                box.wrap(argv),
                stdin=subprocess.DEVNULL,
                stdout=output.write_fd,
                stderr=subprocess.STDOUT,
                env={**env, **box.env()},
                cwd=str(workdir),
                start_new_session=True,
                close_fds=True,
            )
            box.started(proc.pid)
            output.start()
        except (FleError, OSError, ValueError) as exc:
            if output is not None:
                output.abandon()
            if box is not None:
                box.close()
            msg = f"could not start the job: {exc}"
            with open(log_path, "a") as fh:
                fh.write(f"# {msg}\n")
            self.store.set_attempt_process(a.attempt_id, 0, None, str(log_path))
            self.store.finish_attempt(a.attempt_id, self.runner_id, "failed", now, error=msg)
            self.stats["failed"] += 1
            return
        self.running[a.attempt_id] = _Running(
            claim,
            proc,
            source,
            deadline=now + timeout,
            started=now,
            slot=slot,
            extra={"log_path": str(log_path), "pidfd": pidfd(proc.pid)},
            box=box,
            output=output,
        )
        self._unrecorded_pids[a.attempt_id] = (proc.pid, proc_start_time(proc.pid), str(log_path))
        self._record_pids()  # a store error here leaves the job running; recorded after the outage

    def _record_pids(self) -> None:
        for aid, (pid, start, path) in list(self._unrecorded_pids.items()):
            self.store.set_attempt_process(aid, pid, start, path)
            del self._unrecorded_pids[aid]

    def _contain(self) -> Containment:
        """The containment route, chosen (and logged) when the first job starts."""
        if self._containment is None:
            self._containment = Containment(self.containment_route)
            log.info("jobs run in %s", self._containment.describe())
        return self._containment

    def _free_slot(self) -> int:
        """The lowest concurrency slot no running job of this runner holds."""
        used = {r.slot for r in self.running.values()}
        return next(i for i in itertools.count() if i not in used)

    # ---- side effects after jobs ----------------------------------------------------
    def _maybe_sync(self, now: float, force: bool = False) -> None:
        """Hand the sources jobs wrote to the sync worker (never waits for the sync)."""
        if not (self.sync_enabled and self._dirty_sources):
            return
        if not force and self.running and now - self._last_sync < self.sync_interval_s:
            return
        self._sync.request(self._dirty_sources)
        self._dirty_sources.clear()
        self._last_sync = now


def _seconds(section: dict[str, Any], key: str, default: float) -> float:
    raw = section.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"[runner] {key} must be a positive number of seconds, not {raw!r}")
    return value


def _signal(r: _Running, sig: int) -> None:
    """Signal every process of a job (its box; its process group if it has none)."""
    if r.box is not None:
        r.box.signal(sig)
    else:
        killpg(r.proc.pid, sig)


def _end(r: _Running) -> None:
    """After a job's leader exited (or to stop it): every process of the job killed, the
    leader reaped, its box released and its output copied to the end."""
    if r.box is not None:
        r.box.kill()
    else:
        killpg(r.proc.pid, signal.SIGKILL)  # leader is a zombie: the group id is still ours
    r.proc.wait()
    if r.box is not None:
        r.box.close()
    if r.output is not None:
        r.output.finish()
    if r.extra.get("pidfd") is not None:
        os.close(r.extra.pop("pidfd"))


def _header(fh: TextIO, attempt_id: str, version: int, executor: str, argv: list[str], url: str) -> None:
    masked = [a.replace(url, mask_url(url)) if url else a for a in argv]
    fh.write(f"# attempt {attempt_id} version {version} executor {executor}\n# argv {masked!r}\n")
    fh.flush()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


__all__ = ["ConfigError", "Runner", "proc_start_time"]
