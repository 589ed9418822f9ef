"""Pilot states for a page that must not hang: ``squeue`` with a short wait and a last answer.

A Monitor render asks for the pilots' Slurm states. ``squeue`` may hang (slurmctld
busy or unreachable) for up to its own timeout (``slurm.QUERY_TIMEOUT_S``). Here
the query runs in a background thread and the caller waits at most ``wait_s``; if
the answer is not in by then, the caller gets the last answer for the same jobs
with its age (a *stale* answer, said so), and the query finishes in the background
for the next caller. At most one query per set of jobs is in flight, so a hanging
``squeue`` does not pile up processes however many browsers watch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fle_core.sweeps import slurm

DEFAULT_WAIT_S = 2.0


@dataclass(frozen=True)
class Answer:
    """Pilot states; ``stale_s``: how old they are when ``squeue`` did not answer in time
    (None: fresh); ``error``: why there are none (``slurm.SlurmError``'s message)."""

    states: list[slurm.PilotState]
    stale_s: float | None = None
    error: str | None = None


@dataclass
class _Entry:
    states: list[slurm.PilotState] | None = None  # the last successful answer
    states_at: float = 0.0  # its monotonic time
    error: str | None = None  # the last query's error, None once one succeeds
    pending: threading.Thread | None = None


_lock = threading.Lock()
_entries: dict[tuple[str, ...], _Entry] = {}


def pilot_states(job_ids: Sequence[str], wait_s: float = DEFAULT_WAIT_S) -> Answer:
    """``slurm.pilot_states`` that returns within about ``wait_s``: fresh, or the last answer."""
    key = tuple(sorted(job_ids))
    with _lock:
        entry = _entries.setdefault(key, _Entry())
        thread = entry.pending
        if thread is None:
            thread = threading.Thread(target=_query, args=(key, entry), name="fle-squeue", daemon=True)
            entry.pending = thread
            thread.start()
    thread.join(wait_s)
    with _lock:
        if entry.pending is None and entry.error is None:  # a fresh answer
            return Answer(list(entry.states or []))
        why = entry.error if entry.pending is None else f"squeue did not answer within {wait_s:g}s"
        if entry.states is None:
            return Answer([], None, why)
        return Answer(list(entry.states), time.monotonic() - entry.states_at, why)


def _query(key: tuple[str, ...], entry: _Entry) -> None:
    try:
        states, error = slurm.pilot_states(list(key)), None
    except slurm.SlurmError as exc:
        states, error = None, exc.message
    with _lock:
        if states is not None:
            entry.states, entry.states_at = states, time.monotonic()
        entry.error = error
        entry.pending = None
