"""UI layer, part 6: what Inspect logs add to a trajectory, cached like ``data``.

The log, sample and outcome behind a trajectory, its transcript read from the log
on demand (messages and events are never synced), and the per-model failure
counts (``fle_core.analysis.outcomes``).
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from fle_core.workspace import Workspace
from pages._ui.core import data_version
from pages._ui.data import _config_key, _summaries
from pages._ui.frames import parse_traj_key
from pages._ui.state import Pin


@st.cache_data(show_spinner=False, max_entries=64)
def _inspect_sample(_ws: Workspace, root: str, version: int, key: str) -> dict | None:
    from fle_core.warehouse import catalog

    source, ver, instance = parse_traj_key(key)
    return catalog.inspect_sample(_ws, source, ver, instance)


def inspect_sample(ws: Workspace, key: str) -> dict | None:
    """The Inspect log, sample and outcome behind a trajectory; None when it is not from a log."""
    return _inspect_sample(ws, str(ws.root), data_version(ws), key)


def inspect_log_path(ws: Workspace, key: str) -> str | None:
    """Where the trajectory's log is (a path or a storage URL, for ``inspect view``), or None."""
    found = inspect_sample(ws, key)
    if not found:
        return None
    from fle_core import sources
    from fle_core.warehouse.identity import source_named

    source, _, _ = parse_traj_key(key)
    return sources.inspect_source(source_named(ws, source)).log_url(found["path"])


@st.cache_data(show_spinner="Reading the transcript from the Inspect log…", max_entries=16, ttl=600)
def _transcript(_ws: Workspace, root: str, source: str, path: str, sample_id: str, epoch: int) -> list[dict]:
    from fle_core import sources
    from fle_core.sources import transcript
    from fle_core.warehouse.identity import source_named

    ref = sources.inspect_source(source_named(_ws, source)).log_ref(path)
    return transcript.read_transcript(ref, sample_id, epoch)


def fetch_transcript(ws: Workspace, key: str) -> list[dict]:
    """One sample's transcript from its log's events (``fle_core.sources.transcript``):
    ``n, step, role, text`` per entry (the game's output, the agent's programs, …)."""
    found = inspect_sample(ws, key)
    if not found:
        return []
    source, _, _ = parse_traj_key(key)
    return _transcript(ws, str(ws.root), source, found["path"], found["sample_id"], int(found["epoch"]))


@st.cache_data(show_spinner=False, max_entries=8)
def _failure_counts(_ws: Workspace, root: str, version: int, as_of: int | None, cfg: str) -> pl.DataFrame:
    from fle_core.analysis import outcomes

    return outcomes.failure_counts(_ws, _summaries(_ws, root, version, as_of, cfg), as_of_sync=as_of)


def failure_counts(ws: Workspace, pin: Pin) -> pl.DataFrame:
    """Per model: trajectories and how many are infrastructure failures, errors, limits,
    still running, or missing (``analysis.outcomes.failure_counts``); empty without logs."""
    return _failure_counts(ws, str(ws.root), pin.version, pin.as_of, _config_key(ws))
