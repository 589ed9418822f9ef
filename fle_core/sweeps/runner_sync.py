"""The runner's warehouse sync, on a worker thread, so the scheduling loop never waits on it.

A sync can wait up to ten minutes for the warehouse lock (another ``sync --full``
holds it) and then copy for a while. Done on the loop, that stopped heartbeats,
leases expired, and another runner reran jobs that had finished. Here the loop
only hands over the names of sources that jobs wrote to; the thread coalesces
requests, syncs each source through ``warehouse.sync.sync`` (the single writer,
under its lock) and records failures as ``sync_failed`` events through its own
control-store connection. It never raises into the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from fle_core.sweeps.facts import attempts_for_sync
from fle_core.sweeps.store import ControlStore, open_store
from fle_core.workspace import Workspace

log = logging.getLogger(__name__)


class SyncWorker:
    """Coalescing background sync of named sources. ``request`` never blocks."""

    def __init__(self, ws: Workspace, sync_fn: Callable[..., object] | None = None):
        self.ws = ws
        self._sync_fn = sync_fn
        self._pending: set[str] = set()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self.runs = 0  # completed sync passes (tests and the bench read it)

    def request(self, sources: Iterable[str]) -> None:
        """Queue these sources for the next pass (a running pass is not interrupted)."""
        with self._cond:
            self._pending.update(sources)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="fle-sync", daemon=True)
                self._thread.start()
            self._cond.notify()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy or bool(self._pending)

    def close(self, timeout_s: float) -> bool:
        """Finish what is queued (bounded by ``timeout_s``), then stop; True if it finished."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning("warehouse sync still busy after %.0fs; leaving it to finish", timeout_s)
            return False
        return True

    def _work(self) -> None:
        store: ControlStore | None = None
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:  # closing and nothing left
                    break
                names, self._pending = sorted(self._pending), set()
                self._busy = True
            try:
                store = self._pass(names, store)
            finally:
                with self._cond:
                    self._busy = False
                    self.runs += 1
        if store is not None:
            store.close()

    def _pass(self, names: list[str], store: ControlStore | None) -> ControlStore | None:
        sync = self._sync_fn or _warehouse_sync()
        attempts = attempts_for_sync(self.ws)
        for name in names:
            try:
                sync(self.ws, source=name, attempts=attempts)
            except Exception as exc:  # noqa: BLE001 - any sync failure becomes an event
                log.error("sync of %s failed: %s", name, exc)
                try:
                    store = store or open_store(self.ws)
                    store.add_event("sync_failed", f"{name}: {type(exc).__name__}: {exc}", time.time())
                except Exception as exc2:  # noqa: BLE001 - the control store may be down too
                    log.error("could not record the sync failure: %s", exc2)
                    store = None
        return store


def _warehouse_sync() -> Callable[..., object]:
    from fle_core.warehouse.sync import sync  # lazy: duckdb/pyarrow only once a job finished

    return sync
