"""Overview: what the workspace holds, what runs, and a top-line leaderboard.

On a fresh workspace it says what to do next and offers one button that
launches a simulated demo sweep and starts the sidecar runner. URL state:
``ov_infra`` (``exclude``: the leaderboard without infrastructure failures),
``ov_sim`` (``1``: include simulated data in the leaderboard beside real data).
"""

import streamlit as st

from fle_core.sweeps import config as sweep_config
from pages import _ui

ws = _ui.workspace()
_ui.restore_params("ov_")
ops = _ui.sweep_ops(ws)  # the session's one control store
ro = _ui.read_only(ws)
st.title("FLE evaluation workbench")
st.caption(f"Workspace `{ws.root}`")
if ro:
    _ui.read_only_note()


def first_run() -> None:
    """Fresh workspace: explain, and offer the one-click demo (once: not while a sweep exists)."""
    sweep_table = ops.list_sweeps()
    if not sweep_table.is_empty():
        waiting(sweep_table.row(0, named=True))
        return
    sources = ws.sources()
    local = ws.local_source_path
    _ui.empty_state(
        "This workspace holds no synced data yet.",
        [
            f"Sources configured: {', '.join(f'`{n}`' for n in sorted(sources))}"
            + ("" if local.exists() else f" (`local` is `{local.name}`, which does not exist yet)")
            + ".",
            "Sync a source on **Sources & sync** (or `fle-core sync`) to analyse existing FLE runs.",
            "Or run the simulated demo sweep below: 3 models × 2 tasks × 2 trials, "
            "results appear here within a minute. Its data is labelled *simulated*.",
            "Sweeps need a runner: the demo button starts one; `fle-core runner` runs one yourself.",
        ],
    )
    if ro:
        return
    if st.button("Run a simulated demo sweep", type="primary", icon=":material/play_arrow:"):
        with _ui.guard():
            sweep_id = ops.launch(sweep_config.demo_config())
            st.session_state["_ov_runner_pid"] = ops.ensure_runner()
            st.session_state["_ov_launched"] = sweep_id
            st.rerun()  # redraw as "waiting for the first results", the button gone


def waiting(sweep: dict) -> None:
    """A sweep is queued or running but nothing is synced yet: say so, and where to watch."""
    sweep_id = sweep["sweep_id"]
    launched = st.session_state.get("_ov_launched") == sweep_id
    status = ops.status(sweep_id)
    st.info(
        f"**{'Launched' if launched else 'Sweep'} `{sweep_id}`** ({sweep['name']}): "
        "results appear here as soon as its first job finishes and is synced.",
        icon=":material/hourglass_top:",
    )
    st.progress(_ui.status_fraction(status), text=_ui.status_text(status))
    st.page_link(
        "pages/monitor.py",
        label="Watch it on Monitor",
        icon=":material/monitor_heart:",
        query_params={"mon_sweep": sweep_id},
    )


def contents(version: int) -> None:
    """Warehouse contents and the last sync of each source."""
    per_source = _ui.catalog(ws, "overview", version)
    summ = _ui.summaries(ws, _ui.Pin(version, None))
    cols = st.columns(5)
    cols[0].metric("Steps", f"{int(per_source['rows'].sum()):,}")
    cols[1].metric("Trajectories", f"{summ.height:,}")
    cols[2].metric("Models", len(_ui.distinct(summ, "model")))
    cols[3].metric("Tasks", len(_ui.distinct(summ, "task")))
    cols[4].metric("Sources", per_source.height)
    st.caption(f"Data version: sync {version}")
    st.subheader("Sources")
    states = _ui.catalog(ws, "source_states", version)
    _ui.table(_ui.sources_view(per_source, states), _ui.SOURCE_COLUMNS)


def leaderboard(pin: _ui.Pin) -> None:
    """Top-line leaderboard: success rate with task-clustered 95% intervals, under the
    infrastructure switch (``?ov_infra=exclude``); simulated data left out once real data
    exists (the sidebar switch brings it back)."""
    st.subheader("Leaderboard")
    summ = _ui.summaries(ws, pin)
    rule = _ui.infrastructure_switch("ov_", summ)
    sim = _ui.simulated_switch(summ, "ov_sim")
    board = _ui.compute(
        ws, pin, "leaderboard", _ui.Selection(infrastructure=rule, simulated=sim), k_values=[1]
    )
    if board.is_empty():
        _ui.empty_state(
            "No trajectories with a known task yet.",
            ["Rows whose task could not be parsed are listed on **Sources & sync**."],
        )
        return
    _ui.simulated_badge(board, "models")
    _ui.failure_note(_ui.failure_counts(ws, pin), rule=rule)
    _ui.table(_ui.leaderboard_view(board), _ui.LEADERBOARD_COLUMNS)
    st.page_link("pages/compare.py", label="Compare models in depth", icon=":material/leaderboard:")


def activity() -> None:
    """Runner health and recent sweeps (refreshes itself while the page is open)."""
    st.subheader("Runner and sweeps")
    runners = ops.runners()
    _ui.runner_health(
        runners,
        starting_pid=st.session_state.get("_ov_runner_pid"),
        stop=None if ro else lambda rid: ops.stop_runner(rid),
    )
    sweep_table = ops.list_sweeps()
    if sweep_table.is_empty():
        st.caption("No sweeps yet. Launch one on **Sweeps**.")
    else:
        _ui.table(_ui.sweeps_view(sweep_table.head(5)), _ui.SWEEP_COLUMNS)
    if _ui.data_version(ws) != st.session_state.get("_ov_version"):
        st.rerun()  # new data landed while we watched: redraw the whole page
    waiting_on = None if sweep_table.is_empty() else sweep_table["sweep_id"][0]
    if st.session_state.get("_ov_version") == 0 and waiting_on is not None:
        frac = _ui.status_fraction(ops.status(waiting_on))
        if frac != st.session_state.get("_ov_frac"):
            st.rerun()  # the waiting sweep moved on: redraw its progress above


with _ui.guard():
    version = _ui.data_version(ws)
    st.session_state["_ov_version"] = version
    if version == 0:
        first_run()
        table = ops.list_sweeps()
        if not table.is_empty():
            st.session_state["_ov_frac"] = _ui.status_fraction(ops.status(table["sweep_id"][0]))
    else:
        contents(version)
        leaderboard(_ui.Pin(version, None))
    _ui.live(activity, every_s=5.0)
