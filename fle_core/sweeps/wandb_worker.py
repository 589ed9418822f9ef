"""W&B logging for the runner, on a worker thread: a W&B init can take seconds, so the
scheduling loop only queues work here and keeps policing jobs meanwhile. The worker
has its own control-store connection; a failure is logged, never raised."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from fle_core.sweeps.store import Claim, ControlStore, open_store
from fle_core.workspace import Workspace

log = logging.getLogger(__name__)

#: attempt status → the job run's completion label in W&B
COMPLETION = {
    "succeeded": "successful",
    "superseded": "will_retry",
    "failed": "failed_final",
    "cancelled": "cancelled",
}


class WandbWorker:
    """Queues W&B runs for finished jobs and sweeps; ``flush`` lets them finish (bounded)."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def job(self, claim: Claim, attempt_status: str, source: Any) -> None:
        """One W&B run for this job."""
        from fle_core.sweeps import job_tracking  # lazy: polars and wandb only once a job finished

        status = COMPLETION.get(attempt_status, attempt_status)
        self._submit(lambda store: job_tracking.log_job_to_wandb(self.ws, store, claim, status, source))

    def summary(self, claim: Claim) -> None:
        """The sweep's summary run."""
        from fle_core.sweeps import job_tracking

        self._submit(lambda store: job_tracking.log_summary_to_wandb(self.ws, store, claim.sweep))

    def _submit(self, task: Callable[[ControlStore], Any]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="fle-wandb", daemon=True)
            self._thread.start()
        self._queue.put(task)

    def _work(self) -> None:
        store = None
        while (task := self._queue.get()) is not None:
            try:
                store = store or open_store(self.ws)
                task(store)
            except Exception as exc:  # noqa: BLE001
                log.error("W&B logging failed: %s", exc)
            finally:
                self._queue.task_done()
        if store is not None:
            store.close()

    def flush(self, timeout_s: float) -> None:
        """Let queued W&B runs finish (bounded), then stop the worker."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("W&B logging still busy after %.0fs; leaving it", timeout_s)
