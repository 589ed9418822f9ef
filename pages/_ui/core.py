"""UI layer, part 1: workspace, read-only mode, errors, empty states, the simulated badge."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from fle_core import warehouse
from fle_core.errors import FleError
from fle_core.workspace import Workspace
from pages._ui.frames import plain

READ_ONLY_ENV = "FLE_READ_ONLY"
SIM_HELP = "Rows written by the built-in simulator (executor `simulate`), not by a real FLE agent."


# ---------------------------------------------------------------- workspace
def _secrets() -> dict[str, str]:
    """Flat string secrets from ``.streamlit/secrets.toml`` (none when the file is absent)."""
    try:
        return {k: str(v) for k, v in st.secrets.items() if isinstance(v, (str, int, float))}
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return {}


def workspace() -> Workspace:
    """The workspace for this run ($FLE_CORE_HOME or ./.fle), with secrets attached.

    In read-only mode (``FLE_READ_ONLY``, ``[app] read_only``, or a folder that
    cannot be written) nothing is created and every store opens read-only.
    """
    _leave_legacy_multipage_mode()
    ws = Workspace.open(secrets=_secrets(), create=False, read_only=True if _env_read_only() else None)
    if not ws.read_only and bool(ws.section("app").get("read_only", False)):
        ws.read_only = True
    if not ws.read_only:
        ws.ensure_dirs()
    return ws


def _leave_legacy_multipage_mode() -> None:
    """Make a deep link work as the first request after a server start.

    Because a ``pages/`` folder exists, Streamlit starts in its old multipage
    mode and, when the server's first session opens ``/compare?view=…``, runs
    ``pages/compare.py`` directly (no ``app.py``: wrong navigation, no page
    config) until some run of ``app.py`` calls ``st.navigation``. Flip that
    class-level flag, as ``st.navigation`` itself does, and re-run through
    ``app.py``; the query string is kept.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        # Only on a session's first run: a later run may carry a button click,
        # which a rerun would drop (AppTest starts every run in the legacy mode).
        if not st.session_state.get("_nav_rerun_done"):
            st.session_state["_nav_rerun_done"] = True
            st.rerun()


def _env_read_only() -> bool:
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def read_only(ws: Workspace) -> bool:
    """True when actions that run or change things must be hidden (viewer deployments)."""
    return ws.read_only or _env_read_only() or bool(ws.section("app").get("read_only", False))


def read_only_note() -> None:
    st.caption(":lock: Read-only mode: launching, syncing and sweep controls are disabled.")


#: (warehouse path, question) → (its files' stamp, answer): every page run asks, a few times.
_VERSIONS: dict[tuple[str, str], tuple[tuple, int]] = {}
_VERSIONS_LOCK = threading.Lock()


def _stamp(path: Path) -> tuple:
    """Size and mtime of the warehouse file and its WAL: any commit changes one of them."""
    out: list[object] = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st_ = p.stat()
            out += [st_.st_mtime_ns, st_.st_size]
        except FileNotFoundError:
            out += [None, None]
    return tuple(out)


def _unless_changed(ws: Workspace, question: str, ask) -> int:
    """``ask(ws)``, read from the warehouse only when its files changed since the last read (a
    DuckDB connection per ask was a tenth of a warm page run): a commit writes the file or
    its WAL, which changes their size or modification time."""
    key, stamp = (str(ws.warehouse_path), question), _stamp(ws.warehouse_path)
    with _VERSIONS_LOCK:
        known = _VERSIONS.get(key)
    if known is not None and known[0] == stamp:
        return known[1]
    answer = int(ask(ws))
    with _VERSIONS_LOCK:
        _VERSIONS[key] = (stamp, answer)
    return answer


def data_version(ws: Workspace) -> int:
    """Latest successful sync id that changed data (0 before the first sync)."""
    return _unless_changed(ws, "data_version", warehouse.data_version)


def last_sync_id(ws: Workspace) -> int:
    """The newest sync run of any status (the sync history's version)."""
    return _unless_changed(ws, "last_sync_id", warehouse.last_sync_id)


# ---------------------------------------------------------------- errors
def show_error(exc: FleError) -> None:
    """The message and hint as plain text: they may quote a URL parameter or a data value."""
    st.error(plain(exc.message, limit=600), icon=":material/error:")
    if exc.hint:
        st.caption("Hint: " + plain(exc.hint, limit=600))


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Render an expected ``FleError`` as a message; let real bugs propagate."""
    try:
        yield
    except FleError as exc:
        show_error(exc)


def empty_state(title: str, next_steps: Sequence[str]) -> None:
    """Say what is missing and what to do next (no blank pages)."""
    lines = "\n".join(f"- {s}" for s in next_steps)
    st.info(f"**{title}**\n\n{lines}", icon=":material/info:")


def stop_if_unsynced(version: int, title: str) -> None:
    """Empty state and ``st.stop()`` when nothing has been synced yet (data version 0)."""
    if version == 0:
        empty_state(title, ["Sync a source on **Sources & sync**, or run the demo sweep from **Overview**."])
        st.stop()


def simulated_badge(frame: pl.DataFrame | None, noun: str = "trajectories") -> None:
    """Label simulated data wherever it is shown."""
    if frame is not None and "simulated" in frame.columns and frame.height:
        n_sim = int(frame["simulated"].fill_null(False).cast(pl.Int64).sum())
        if n_sim:
            share = "all" if n_sim == frame.height else f"{n_sim} of {frame.height}"
            st.badge(
                f"Simulated data ({share} {noun})", icon=":material/science:", color="orange", help=SIM_HELP
            )
