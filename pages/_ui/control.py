"""UI layer: this session's one control store, and the sweep operations bound to it.

Every page of a session asks the same store (``sweeps.list_sweeps``, ``status``,
``runners`` …) several times a run, and a live Monitor every two seconds. Opening
it per call reconnected (and re-checked the schema) each time and left the
connection to the garbage collector. Here it is opened once per browser session
(``st.cache_resource(scope="session")``) and closed when the session ends
(``on_release``). A session's script runs one at a time, so the store is never
used by two threads at once.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import polars as pl
import streamlit as st

from fle_core import sweeps
from fle_core.sweeps.store import ControlStore, open_store
from fle_core.workspace import Workspace

if TYPE_CHECKING:
    from fle_core.sweeps.operations import SweepStatus


def _close(store: ControlStore) -> None:
    store.close()


@st.cache_resource(scope="session", on_release=_close, show_spinner=False)
def _session_store(_ws: Workspace, root: str, control: str, read_only: bool, exists: bool) -> ControlStore:
    return open_store(_ws)


def control_store(ws: Workspace) -> ControlStore:
    """The workspace's control store, opened once for this browser session.

    Keyed on what decides which store opens: the workspace, its ``[control]`` table,
    read-only mode, and (read-only) whether ``control.db`` exists yet, since a
    read-only session on a fresh workspace reads an empty in-memory store until a
    runner or the CLI creates the file.
    """
    control = json.dumps(ws.section("control"), sort_keys=True, default=str)
    exists = ws.control_path.exists() if ws.read_only else True
    return _session_store(ws, str(ws.root), control, bool(ws.read_only), exists)


class SweepOps:
    """``fle_core.sweeps`` operations bound to one workspace and the session's store."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.store = control_store(ws)

    def list_sweeps(self) -> pl.DataFrame:
        return sweeps.list_sweeps(self.ws, self.store)

    def status(self, sweep_id: str) -> SweepStatus:
        return sweeps.status(self.ws, sweep_id, self.store)

    def cells_frame(self, sweep_id: str) -> pl.DataFrame:
        return sweeps.cells_frame(self.ws, sweep_id, self.store)

    def failures(self, sweep_id: str, tail_lines: int = 20) -> pl.DataFrame:
        return sweeps.failures(self.ws, sweep_id, tail_lines, self.store)

    def runners(self) -> pl.DataFrame:
        return sweeps.runners(self.ws, self.store)

    def launch(self, config: Any) -> str:
        return sweeps.launch(self.ws, config, store=self.store)

    def pause(self, sweep_id: str) -> None:
        sweeps.pause(self.ws, sweep_id, self.store)

    def resume(self, sweep_id: str) -> int:
        return sweeps.resume(self.ws, sweep_id, self.store)

    def retry_failed(self, sweep_id: str) -> int:
        return sweeps.retry_failed(self.ws, sweep_id, self.store)

    def cancel(self, sweep_id: str) -> int:
        return sweeps.cancel(self.ws, sweep_id, self.store)

    def ensure_runner(self) -> int | None:
        return sweeps.ensure_runner(self.ws, self.store)

    def stop_runner(self, runner_id: str) -> int:
        return sweeps.stop_runner(self.ws, runner_id, self.store)


def sweep_ops(ws: Workspace) -> SweepOps:
    """The sweep operations for this run's pages (``ops.list_sweeps()``, ``ops.status(id)`` …)."""
    return SweepOps(ws)
