"""AppTest: the Compare page's runs-file section (the experiment log for any metric).

A runs file in the workspace's ``runs/`` folder is picked, compared against
``main`` with the test and correction chosen in the widgets, and the page shows
the log's table — on an empty workspace (no trajectories synced) and as the
"Runs file" tab of a populated one.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
MAIN = [0.6600, 0.4960, 0.5620, 0.4980, 0.6880]
PR = [0.0000, 0.0000, 0.0000, 0.0640, 0.0000]
ROW = "| Throughput (moving avg) | 0.5808 +/- 0.0897 | 0.0128 +/- 0.0286 | **-97.8%** | 5.3e-05 | **Significantly worse** |"


def _runs_file(ws) -> None:
    folder = ws.root / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [("main", i + 1, v) for i, v in enumerate(MAIN)] + [("PR", i + 1, v) for i, v in enumerate(PR)]
    pl.DataFrame(rows, schema=["branch", "seed", "Throughput (moving avg)"], orient="row").write_csv(
        folder / "pr13.csv"
    )


def _markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def _open(params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/compare.py")
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    return at


def test_runs_file_on_an_empty_workspace(workspace, monkeypatch):
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    at = _open()
    assert not at.exception
    body = "\n".join(str(i.value) for i in at.info)
    assert "No runs file chosen." in body and "Nothing to compare yet." in body
    _runs_file(workspace)
    at.run()
    at.selectbox(key="cmp_runs_file").set_value("pr13.csv").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="cmp_runs_base").value == "main"
    assert ROW in _markdown(at)
    assert "not adjusted for multiple comparisons" in _markdown(at)
    at.selectbox(key="cmp_runs_test").set_value("mannwhitney").run()
    assert "| 0.010 |" in _markdown(at)  # Mann-Whitney U: p = 0.0097
    assert "Mann-Whitney U test" in _markdown(at)
    at.selectbox(key="cmp_runs_corr").set_value("holm").run()
    assert "Holm-adjusted" in _markdown(at)
    assert [b.label for b in at.get("download_button")] == ["Markdown (experiment log)"]


def test_runs_file_tab_of_a_populated_workspace(workspace, monkeypatch):
    """A synced workspace: the section is the Compare page's "Runs file" tab."""
    import fixtures_fle as fx

    from fle_core.warehouse.sync import sync

    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    fx.create_sqlite(workspace.local_source_path, fx.make_rows(4, seed=3, max_steps=4))
    sync(workspace)
    _runs_file(workspace)
    at = _open({"cmp_tab": "Runs file"})
    at.selectbox(key="cmp_runs_file").set_value("pr13.csv").run()
    assert not at.exception, [e.value for e in at.exception]
    assert ROW in _markdown(at)
