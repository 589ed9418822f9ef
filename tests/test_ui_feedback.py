"""What the pages say right after an action (AppTest on real workspaces and control stores).

A cancelled sweep must not look finished; the Sweeps table must show the new
state after Pause / Resume / Cancel (and Resume must say how many cells will run);
the Models box must add only what was typed; the Overview must not contradict
itself after the demo click, and must say that the runner outlives the app.
"""

from __future__ import annotations

import time

import pytest
from app_helpers import assert_clean, run_page, texts
from browser_helpers import runner_pids, stop_runners

from fle_core import sweeps
from fle_core.sweeps import config as sweep_config


@pytest.fixture
def ws(workspace, monkeypatch):
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    yield workspace
    stop_runners(workspace.root)  # Resume and the demo button start a real runner
    assert not runner_pids(workspace.root), "a runner outlived its test"


def _sweep_row(at, sweep_id: str) -> dict:
    table = next(d.value for d in at.dataframe if "sweep_id" in d.value.columns)
    return table[table["sweep_id"] == sweep_id].iloc[0].to_dict()


def _toasts(at) -> list[str]:
    return [t.value for t in at.toast]


def test_a_cancelled_sweep_does_not_look_finished(ws):
    sweep_id = sweeps.launch(ws, sweep_config.demo_config())  # no runner: nothing ran
    sweeps.cancel(ws, sweep_id)
    at = run_page("monitor", {"mon_sweep": sweep_id, "mon_live": "0"})
    assert_clean(at)
    (bar,) = at.get("progress")
    assert bar.value == 0  # 0 of 12 cells ran: the bar is empty, not full
    assert "0/12 cells ran (0 succeeded), 12 cancelled · sweep cancelled" in bar.text
    assert "Failures" not in texts(at)  # cancelled cells are not failures


def test_sweeps_table_follows_pause_resume_cancel_and_resume_says_what_runs(ws):
    sweep_id = sweeps.launch(ws, sweep_config.demo_config())
    sweeps.pause(ws, sweep_id)
    at = run_page("sweeps", {"swp_sweep": sweep_id})
    assert _sweep_row(at, sweep_id)["status"] == "paused"
    next(b for b in at.button if b.label == "Resume").click().run()
    assert_clean(at)
    # the same run already shows the new state (the page redraws after the action)
    assert _sweep_row(at, sweep_id)["status"] == "active"
    # 12 pending cells were queued all along: Resume says they run, not "(0 cells queued)"
    assert any(f"Resumed `{sweep_id}`: 12 cells to run (0 re-queued)" in t for t in _toasts(at)), _toasts(at)
    next(b for b in at.button if b.label == "Pause").click().run()
    assert _sweep_row(at, sweep_id)["status"] == "paused"
    next(b for b in at.button if b.label == "Cancel…").click().run()
    assert any(f"Cancel `{sweep_id}`?" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Yes, cancel it").click().run()
    assert_clean(at)
    assert _sweep_row(at, sweep_id)["status"] == "cancelled"
    assert not any(f"Cancel `{sweep_id}`?" in w.value for w in at.warning)  # the question is gone
    assert any(f"Cancelled `{sweep_id}`" in t for t in _toasts(at))


def test_the_models_box_adds_only_what_was_typed(ws):
    at = run_page("sweeps")
    assert any("**12 jobs**: 3 models" in i.value for i in at.info)
    box = at.multiselect(key="new_models")
    assert "gpt-4o (simulated)" in box.options  # a known model is picked from the list
    at.text_input(key="new_models_extra").set_value("gpt-4o, openai/gpt-4.1").run()
    assert_clean(at)
    # exactly the two typed names are added (not every model that matches "gpt-4o")
    assert any("**20 jobs**: 5 models" in i.value for i in at.info), [i.value for i in at.info]


def test_overview_after_the_demo_click_is_consistent_and_offers_to_stop_the_runner(ws):
    at = run_page("overview")
    assert "This workspace holds no synced data yet." in texts(at)
    next(b for b in at.button if b.label == "Run a simulated demo sweep").click().run()
    assert_clean(at)
    body = texts(at)
    (sweep_id,) = sweeps.list_sweeps(ws)["sweep_id"].to_list()
    assert "holds no synced data yet" not in body  # it says what is happening instead
    assert f"Launched `{sweep_id}`" in body and "first job finishes" in body
    assert not any(b.label == "Run a simulated demo sweep" for b in at.button)  # offered once
    assert "No runner is alive" not in body  # just started: "starting" or alive, never "not alive"
    assert "Runner starting" in body or "runner alive" in body
    for _ in range(100):  # once it beats: the note that it outlives the app, and Stop
        if sweeps.runners(ws).filter("alive").height:
            break
        time.sleep(0.2)
    at.run(timeout=60)
    assert "keeps running" in texts(at) and "after this app is closed" in texts(at)
    stop = next(b for b in at.button if b.label.startswith("Stop runner pid"))
    stop.click().run()
    assert_clean(at)
    assert any("Asked runner pid" in t for t in _toasts(at))


def _session_store_script():
    """A page-like script: asks for the session's control store and notes which object it got."""
    import streamlit as st

    from pages import _ui

    ws = _ui.workspace()
    store = _ui.control_store(ws)
    st.session_state.setdefault("seen", []).append(id(store))
    st.session_state["store"] = store
    st.write(f"{_ui.sweep_ops(ws).list_sweeps().height} sweeps")


def test_the_control_store_is_opened_once_per_session_and_closed_on_release(ws):
    """Every run of a session (page switches, reruns, a live Monitor) asks one store; it is
    closed when Streamlit releases it (the session ends), not left to the garbage collector."""
    from streamlit.testing.v1 import AppTest

    sweeps.launch(ws, sweep_config.demo_config())
    at = AppTest.from_function(_session_store_script, default_timeout=60)
    for _ in range(3):
        at.run()
        assert_clean(at)
    assert [m.value for m in at.markdown] == ["1 sweeps"]
    seen = at.session_state["seen"]
    assert len(seen) == 3 and len(set(seen)) == 1, seen
    store = at.session_state["store"]
    assert len(store.list_sweeps()) == 1
    import streamlit as st

    st.cache_resource.clear()  # what Streamlit does to a session's resources when it ends
    with pytest.raises(Exception, match=r"(?i)closed"):
        store.list_sweeps()


def test_monitor_refreshes_open_one_control_store_and_close_it(ws, monkeypatch):
    """Issue 22: a live Monitor re-renders every few seconds; each render used to open five or
    more control stores that nobody closed. Now every render of a session asks its one store
    (counted where a store opens its connection), which is closed when the session ends."""
    from fle_core.sweeps.store.sqlite import SqliteControlStore

    sweep_id = sweeps.launch(ws, sweep_config.demo_config())
    opened: list[SqliteControlStore] = []
    real_init = SqliteControlStore.__init__

    def counting_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(SqliteControlStore, "__init__", counting_init)
    at = run_page("monitor", {"mon_live": "0", "mon_sweep": sweep_id})
    assert_clean(at)
    for _ in range(4):  # what the live fragment's reruns do
        at.run()
        assert_clean(at)
    assert len(opened) == 1, f"{len(opened)} control stores opened over 5 renders"
    import streamlit as st

    st.cache_resource.clear()  # the session ends
    with pytest.raises(Exception, match=r"(?i)closed"):
        opened[0].list_sweeps()
