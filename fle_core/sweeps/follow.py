"""Sync a sweep's source on this host while runners elsewhere work it (Slurm pilots).

Pilots never open the warehouse (they run ``runner --no-sync`` on other hosts and
write only the source and the control store), so without this the analysis pages
would stay where the last manual sync left them. ``follow`` syncs the sweep's
source every ``every_s`` seconds through ``warehouse.sync.sync`` (the single
writer, under its lock) until no cell of the sweep is running and none can start
(the sweep is completed, paused or cancelled), then syncs once more and returns.
A failed pass (the source down, the warehouse busy) is reported and retried on
the next one; it never ends the loop early, and the last pass decides the result.

``ensure_follower`` starts one detached ``fle-core sync --follow SWEEP`` per sweep,
so the app host that launched pilots keeps its warehouse current.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fle_core.errors import ConfigError, FleError
from fle_core.sweeps.facts import attempts_for_sync
from fle_core.sweeps.processes import spawn_detached
from fle_core.sweeps.store import ControlStore, open_store
from fle_core.workspace import Workspace

MIN_EVERY_S, MAX_EVERY_S = 1.0, 3600.0


def follow(
    ws: Workspace,
    sweep_id: str,
    every_s: float = 30.0,
    *,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Sync ``sweep_id``'s source until the sweep can make no more progress; True if the
    last pass succeeded. ``QueueError`` for an unknown sweep."""
    from fle_core.warehouse.sync import sync

    if not MIN_EVERY_S <= every_s <= MAX_EVERY_S:
        raise ConfigError(f"--every must be between {MIN_EVERY_S:g} and {MAX_EVERY_S:g} s (got {every_s:g})")
    store = open_store(ws)
    try:
        source = store.get_sweep(sweep_id).source
        while True:
            if not ws.root.exists():  # the workspace was removed under us: nothing left to follow
                say(f"error: workspace {ws.root} is gone; stopping")
                return False
            try:  # read before the pass, so a settled sweep's last rows are in it
                finished = _settled(store, sweep_id)
            except FleError as exc:  # the control store is down: keep syncing, ask again later
                say(f"error: control store: {exc.message}")
                finished = False
            ok = _pass(ws, source, sync, say)
            if finished:
                return ok
            sleep(every_s)
    finally:
        store.close()


def _settled(store: ControlStore, sweep_id: str) -> bool:
    """No cell is running, and no pending cell can be claimed (the sweep is not active)."""
    counts = store.counts(sweep_id).get(sweep_id, {})
    if counts.get("running", 0):
        return False
    return store.get_sweep(sweep_id).status != "active" or not counts.get("pending", 0)


def _pass(ws: Workspace, source: str, sync: Callable[..., Any], say: Callable[[str], None]) -> bool:
    try:
        result = sync(ws, source=source, attempts=attempts_for_sync(ws))
    except FleError as exc:
        say(f"error: sync of {source} failed: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""))
        return False
    say(
        f"synced {source}: +{result.rows_by_source.get(source, 0):,} rows; data version {result.data_version}"
    )
    return True


def _pidfile(ws: Workspace, sweep_id: str) -> Path:
    return ws.logs_dir / f"follow-{sweep_id}.pid"


def follower_pid(ws: Workspace, sweep_id: str) -> int | None:
    """The pid of this sweep's running follower on this host, else None."""
    try:
        pid = int(_pidfile(ws, sweep_id).read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"--follow" in argv and sweep_id.encode() in argv else None


def ensure_follower(ws: Workspace, sweep_id: str, every_s: float = 30.0) -> int:
    """Start ``fle-core sync --follow SWEEP_ID`` detached unless one runs; its pid.

    The sweep id is one argv element (no shell); output goes to ``logs/follow-ID.log``.
    """
    pid = follower_pid(ws, sweep_id)
    if pid is not None:
        return pid
    args = [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "sync"]
    args += ["--follow", sweep_id, "--every", f"{every_s:g}"]
    pid = spawn_detached(args, ws.logs_dir / f"follow-{sweep_id}.log", ws.root)
    with contextlib.suppress(OSError):
        _pidfile(ws, sweep_id).write_text(str(pid))
    return pid
