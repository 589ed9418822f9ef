"""AppTest for every page: empty workspace, populated workspace, bad query parameters.

The populated workspace is built with real parts: an FLE SQLite source written by
``tests/fixtures_fle.py`` and synced with ``fle_core.sync.sync`` into a real
DuckDB warehouse. Assertions are on content (leaderboard values against an
independent computation from the warehouse, empty-state text, warnings).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = ["overview", "sources", "sweeps", "monitor", "compare", "tasks", "trajectories"]


def run_page(page: str, params: dict | None = None, timeout: float = 60) -> AppTest:
    """Run ``app.py`` then switch to ``pages/<page>.py`` with the given query params."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page != "overview":
        at.switch_page(f"pages/{page}.py")
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    return at


def texts(at: AppTest) -> str:
    """All visible text of a run (markdown, captions, alerts, titles, subheaders)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning",
                 "error", "success", "code"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# ---------------------------------------------------------------- empty workspace
@pytest.fixture
def empty_ws(workspace, monkeypatch):
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    return workspace


@pytest.mark.parametrize("page", ["compare", "tasks", "trajectories"])
def test_analysis_pages_on_empty_workspace_say_what_to_do(empty_ws, page):
    at = run_page(page)
    assert_clean(at)
    body = texts(at)
    assert "Sync a source on **Sources & sync**" in body or "Sources & sync" in body
    assert "demo sweep" in body


def test_sources_on_empty_workspace_lists_local_and_offers_sync(empty_ws):
    at = run_page("sources")
    assert_clean(at)
    table = at.dataframe[0].value
    assert "local" in list(table["source"])
    assert any(b.label == "Sync now" for b in at.button)
    assert "Nothing has been synced into this workspace yet" in texts(at)


# ---------------------------------------------------------------- populated workspace
MODELS = ["gpt-4o", "claude-3-5-sonnet", "llama-3.3-70b"]
TASKS = ["iron_ore_throughput", "iron_plate_throughput", "crude_oil_throughput"]


@pytest.fixture(scope="module")
def populated_root(tmp_path_factory):
    """An FLE SQLite source (fixtures_fle rows + odd rows + 4 simulated runs), synced for real."""
    import fixtures_fle as fx

    from fle_core.simulate import simulate_trajectory
    from fle_core.sync import sync as run_sync
    from fle_core.workspace import Workspace

    root = tmp_path_factory.mktemp("populated") / "ws"
    ws = Workspace.open(root)
    url = fx.create_sqlite(ws.local_source_path,
                           fx.make_rows(60, seed=3, models=MODELS, tasks=TASKS, max_steps=24)
                           + fx.anomalous_rows())
    for i, model in enumerate(["gpt-4o (simulated)", "gpt-4o-mini (simulated)"] * 2):
        simulate_trajectory(url, model, "iron_ore_throughput", 5000 + i, trial=i, seed=i, steps=8,
                            sweep_id="sim-sweep")
    run_sync(ws, "local")
    return root


@pytest.fixture
def populated(populated_root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(populated_root))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    from fle_core.workspace import Workspace

    return Workspace.open(populated_root)


def test_sources_populated_shows_history_and_flagged_rows(populated):
    at = run_page("sources")
    assert_clean(at)
    frames = [d.value for d in at.dataframe]
    history = next(f for f in frames if "watermark_after" in f.columns)
    assert list(history["status"]) == ["ok"]
    from fle_core import warehouse

    n_steps = warehouse.query(populated, "SELECT count(*) AS n FROM steps")["n"][0]
    assert int(history["rows_added"].iloc[0]) == n_steps
    flagged = next(f for f in frames if "parse_flags" in f.columns)
    flags = set(",".join(flagged["parse_flags"]).split(","))
    assert {"malformed_meta", "unparsed_task"} <= flags


def test_sources_sync_now_runs_a_real_incremental_sync(populated_root, tmp_path, monkeypatch):
    """Sync now on a copy of the populated workspace picks up rows added to the source."""
    import shutil

    import fixtures_fle as fx

    from fle_core import warehouse
    from fle_core.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(populated_root, root)
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    ws = Workspace.open(root)
    before = warehouse.data_version(ws)
    fx.insert_sqlite(ws.local_source_path, fx.make_rows(2, seed=9, first_version=7000, max_steps=5))
    at = run_page("sources")
    next(b for b in at.button if b.label == "Sync now").click().run()
    assert_clean(at)
    assert warehouse.data_version(ws) == before + 1
    labels = [s.label for s in at.status]
    assert any(label.startswith("Synced `local`: ") and "new rows" in label for label in labels), labels


@pytest.mark.parametrize("params", [{"src_source": "no-such-source"}])
def test_sources_bad_params_warn(populated, params):
    at = run_page("sources", params)
    assert_clean(at)
    assert any("src_source=no-such-source" in w.value for w in at.warning)
