"""Monitor: a live model × task grid of cells coloured by state, progress + ETA, failures,
runners and Slurm pilots, and why stopped cells stopped.

The content lives in ``render`` so it is the same code whether the
auto-refreshing fragment re-runs it in the browser or AppTest runs the script.
Pause / Resume act on the chosen sweep (hidden in read-only mode).
URL state: ``mon_sweep`` (which sweep), ``mon_live`` (``1``/``0``: auto-refresh),
``mon_every`` (refresh period, seconds).
"""

import streamlit as st

from fle_core import sweeps
from pages import _ui

ws = _ui.workspace()
_ui.restore_params("mon_")  # back from another page: the sweep and settings it showed
ops = _ui.sweep_ops(ws)  # the session's one control store
ro = _ui.read_only(ws)
st.title("Monitor")


def pick_sweep() -> str | None:
    sweep_table = ops.list_sweeps()
    if sweep_table.is_empty():
        _ui.empty_state(
            "No sweeps to monitor.", ["Launch one on **Sweeps**, or the simulated demo from **Overview**."]
        )
        return None
    ids = sweep_table["sweep_id"].to_list()
    left, mid, right = st.columns([3, 1, 1], vertical_alignment="bottom")
    sweep_id = _ui.url_select("Sweep", "mon_sweep", ids, ids[0], where=left)
    mid.toggle(
        "Live",
        key="mon_live_toggle",
        value=_ui.url_text("mon_live") != "0",
        help="Refresh this view automatically",
    )
    _ui.set_param("mon_live", None if st.session_state["mon_live_toggle"] else "0")
    _ui.url_int("Every (s)", "mon_every", 2, 1, 60, where=right)
    return sweep_id


def controls(sweep_id: str, status) -> None:
    """Pause or resume the sweep from here (cancel, with its confirmation, is on Sweeps)."""
    offered = sweeps.available_actions(status)
    if ro or not ({"Pause", "Resume"} & set(offered)):
        return
    label, op = ("Pause", ops.pause) if "Pause" in offered else ("Resume", ops.resume)
    if st.button(
        label,
        key=f"mon_{label.lower()}",
        icon=":material/pause:" if label == "Pause" else ":material/play_arrow:",
    ):
        with _ui.guard():
            op(sweep_id)
            if label == "Resume":
                ops.ensure_runner()
            st.rerun()


def render(sweep_id: str) -> None:
    """Status, progress/ETA, the cell grid, failures and runner heartbeats."""
    status = ops.status(sweep_id)
    st.progress(_ui.status_fraction(status), text=_ui.status_text(status))
    _ui.status_counts(status)
    controls(sweep_id, status)
    cells = ops.cells_frame(sweep_id)
    if not cells.is_empty():
        _ui.cells_view(cells)
    with st.expander("Runners", expanded=False):
        _ui.runner_health(ops.runners(), stop=None if ro else lambda rid: ops.stop_runner(rid))
    _ui.pilot_table(_ui.pilots(ws, sweep_id))
    _ui.stopped_cells(cells)
    fails = ops.failures(sweep_id, tail_lines=20)
    # a cancelled attempt is not a failure of the job: count it, list only real failures
    cancelled = (
        fails.filter(fails["outcome"].fill_null("") == "cancelled").height
        if "outcome" in fails.columns
        else 0
    )
    if cancelled:
        fails = fails.filter(fails["outcome"].fill_null("") != "cancelled")
    if fails.is_empty():
        st.caption(
            "No failed attempts." + (f" {_ui.plural(cancelled, 'attempt')} cancelled." if cancelled else "")
        )
        return
    st.subheader(f"Failures ({fails.height})")
    if cancelled:
        st.caption(f"{_ui.plural(cancelled, 'attempt')} cancelled (not listed: cancelling is not a failure).")
    for row in fails.head(20).iter_rows(named=True):
        with st.expander(_ui.failure_title(row)):
            if row.get("error"):
                st.error(_ui.plain(row["error"], limit=2000))
            st.code(row.get("log_tail") or "(empty log)", language=None)


with _ui.guard():
    chosen = pick_sweep()
    if chosen is not None:
        live = st.session_state["mon_live_toggle"]
        every = st.session_state.get("mon_every", 2)
        _ui.live(lambda: _ui.guarded(render, chosen), every_s=every if live else None)
