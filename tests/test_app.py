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
