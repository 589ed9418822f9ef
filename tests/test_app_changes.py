"""AppTest for Compare's "What changed" tab and the leaderboard export.

The warehouse is built by a real sync of an FLE SQLite database whose outcomes are
chosen trial by trial; the tab's table is checked against ``analysis.changes`` on
the same warehouse, its URL state round-trips, and bad sides give a clear message.
"""

from __future__ import annotations

import pytest
from app_helpers import assert_clean, run_page, texts
from gate_fixtures import add_source, outcome_rows

from fle_core.analysis.changes import changes
from fle_core.names import short_task
from fle_core.workspace import Workspace

TASKS = ["iron_ore_throughput", "iron_plate_throughput", "steel_plate_throughput"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whatchanged")
    home = tmp / "ws"
    outcomes = {}
    for i, t in enumerate(TASKS):
        outcomes[("main-agent", t)] = [True] * (6 - i) + [False] * (2 + i)
        outcomes[("pr-agent", t)] = [True] * (1 + 2 * i) + [False] * (7 - 2 * i)
    add_source(home, tmp / "runs.db", outcome_rows(outcomes), with_cli=False)
    return home


@pytest.fixture
def ws(root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    return Workspace.open(root)


def _tab(**params) -> dict:
    return {"cmp_tab": "What changed", **params}


def test_the_table_is_what_changes_computes(ws):
    at = run_page("compare", _tab(cmp_chg_a="main-agent", cmp_chg_b="pr-agent"))
    assert_clean(at)
    want = changes(ws, "main-agent", "pr-agent").table
    shown = at.dataframe[0].value
    assert list(shown["task"]) == want["task"].to_list()
    assert list(shown["counts"]) == [
        f"{a}/{n} → {b}/{m}"
        for a, n, b, m in want.select("a_successes", "a_trials", "b_successes", "b_trials").iter_rows()
    ]
    assert list(shown["change"]) == pytest.approx([100 * c for c in want["change"]])
    assert list(shown["flip"]) == want["flip"].to_list()
    assert all(link.startswith("trajectories?trj_id=sqlite%3Aruns.db%3A") for link in shown["open"])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tasks compared"] == "3" and metrics["Got worse"] == "2"
    assert [b.label for b in at.get("download_button")] == ["Markdown", "CSV"]


def test_filters_live_in_the_url(ws):
    at = run_page("compare", _tab(cmp_chg_a="main-agent", cmp_chg_b="pr-agent", cmp_chg_show="got worse"))
    assert_clean(at)
    assert list(at.dataframe[0].value["task"]) == ["iron_ore_throughput", "iron_plate_throughput"]
    at = run_page("compare", _tab(cmp_chg_a="pr-agent", cmp_chg_b="main-agent", cmp_chg_flip="mixed"))
    assert_clean(at)
    assert set(at.dataframe[0].value["flip"]) == {"mixed"}
    assert at.query_params["cmp_chg_flip"] in ("mixed", ["mixed"])  # kept in the URL


def test_a_side_from_a_gate_link_and_a_bad_side(ws):
    at = run_page("compare", _tab(cmp_chg_a="main-agent@1", cmp_chg_b="pr-agent"))
    assert_clean(at)
    assert "A = main-agent@1: 24 trajectories" in texts(at)
    at = run_page("compare", _tab(cmp_chg_a="main-agent", cmp_chg_b="no-such-agent"))
    assert_clean(at)
    assert "no system named 'no-such-agent'" in texts(at)
    at = run_page("compare", _tab(cmp_chg_a="main-agent", cmp_chg_b="main-agent"))
    assert_clean(at)
    assert "Baseline and candidate are the same." in texts(at)


def test_the_leaderboard_export_is_prepared_on_request(ws):
    at = run_page("compare", {"cmp_tab": "Export"})
    assert_clean(at)
    labels = [b.label for b in at.get("download_button")]
    assert "FLE leaderboard files (.zip)" not in labels
    next(b for b in at.button if b.label == "Prepare leaderboard files").click().run()
    assert_clean(at)
    labels = [b.label for b in at.get("download_button")]
    assert "FLE leaderboard files (.zip)" in labels and "Leaderboard JSON" in labels
    board = at.dataframe[-1].value
    assert set(board["model"]) == {"main-agent", "pr-agent"}


def test_a_link_to_an_old_trajectory_opens_it(tmp_path, monkeypatch):
    """The picker lists the newest 2000 trajectories; a What changed link to an older one
    must still open it (it was dropped as an 'ignored link parameter')."""
    home = tmp_path / "ws"
    rows = outcome_rows({("old-agent", TASKS[0]): [True, False] * 1005}, steps=1)
    name = add_source(home, tmp_path / "many.db", rows, with_cli=False)
    monkeypatch.setenv("FLE_CORE_HOME", str(home))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    oldest, other = f"{name}:1:0", f"{name}:2:0"
    at = run_page("trajectories", {"trj_id": oldest, "trj_other": other})
    assert_clean(at)
    assert "Ignored the link parameter" not in texts(at)
    assert [s.value for s in at.subheader] == [f"old-agent · {short_task(TASKS[0])}"] * 2
    assert at.query_params["trj_id"] in (oldest, [oldest])
