"""The app on a warehouse synced from Inspect logs (real inspect_ai logs, real sync, AppTest).

Trajectories names the log file and fetches the transcript on demand; Compare and
Overview say how many trajectories per model are infrastructure failures; Sources lists
the logs with their headline metric labelled for what it is.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from app_helpers import run_page
from streamlit.testing.v1 import AppTest

from fle_core import warehouse
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace


@pytest.fixture(scope="module")
def inspect_root(tmp_path_factory, inspect_logs_dir):
    base = tmp_path_factory.mktemp("inspect-app")
    root = base / "ws"
    shutil.copytree(inspect_logs_dir / "main", root / "inspect_logs" / "main")
    shutil.copytree(inspect_logs_dir / "errors", root / "inspect_logs" / "errors")
    shutil.copytree(inspect_logs_dir / "hostile", root / "inspect_logs" / "hostile")
    ws = Workspace.open(root)
    sync(ws)  # finds inspect_logs/ as the local_inspect source
    return root


def _text(at: AppTest) -> str:
    kinds = ("title", "subheader", "markdown", "caption", "warning", "error", "success", "code", "text")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _infra_key(root: Path) -> tuple[str, str]:
    ws = Workspace.open(root)
    row = warehouse.query(
        ws,
        "SELECT version, instance, path FROM inspect_samples WHERE failure_kind = 'infrastructure' "
        "ORDER BY instance LIMIT 1",
    ).row(0, named=True)
    return f"local_inspect:{row['version']}:{row['instance']}", row["path"]


def test_trajectory_names_its_log_and_reads_the_transcript_on_demand(inspect_root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(inspect_root))
    key, path = _infra_key(inspect_root)
    at = run_page("trajectories", {"trj_id": key})
    assert not at.exception
    text = _text(at)
    assert path in text and "inspect view --log-dir" in text
    assert "Infrastructure failure" in text and "RCON" in text
    assert "print('step" not in text  # not read until asked
    at.button(key=f"tr_{key}").click().run()
    assert not at.exception
    assert "Begin task" in _text(at)  # the sample's messages, read from the log


def test_compare_and_overview_count_infrastructure_failures_per_model(inspect_root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(inspect_root))
    for page in ("compare", "overview"):
        at = run_page(page)
        assert not at.exception
        warning = "\n".join(str(w.value) for w in at.warning)
        assert "2 infrastructure failure(s)" in warning, page
        assert "count as failures" in warning


def test_sources_lists_logs_with_the_headline_labelled(inspect_root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(inspect_root))
    at = run_page("sources")
    assert not at.exception
    text = _text(at)
    assert "Inspect logs" in text and "mean throughput proportion" in text and "not a success rate" in text
    assert "1 error" in text  # the log whose sample raised
    shown = [df.value for df in at.dataframe]
    logs = next(d for d in shown if "headline" in d.columns)
    assert logs.shape[0] == 11 and "local_inspect" in set(logs["source"])


def test_log_error_text_is_shown_literally(inspect_root, monkeypatch):
    """An error message from a log is text, not Markdown: no bold, no link, no HTML."""
    monkeypatch.setenv("FLE_CORE_HOME", str(inspect_root))
    ws = Workspace.open(inspect_root)
    row = warehouse.query(
        ws, "SELECT version, instance FROM inspect_samples WHERE path LIKE 'hostile/%' LIMIT 1"
    ).row(0)
    at = run_page("trajectories", {"trj_id": f"local_inspect:{row[0]}:{row[1]}"})
    assert not at.exception
    (shown,) = [str(e.value) for e in at.error]
    assert "\\*\\*Session expired.\\*\\*" in shown and "\\[Log in again\\]" in shown
    # Backslash-escaped, so Markdown shows the characters and never opens a tag.
    assert "\\<script\\>" in shown and re.search(r"(?<!\\)<script", shown) is None


def _specs(at: AppTest, title_start: str) -> list[tuple[dict, list]]:
    """Every chart whose title starts with ``title_start``: (spec, its datasets as Polars frames)."""
    import json

    import polars as pl

    out = []
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        if str(spec.get("title", {}).get("text", "")).startswith(title_start):
            out.append((spec, [pl.read_ipc_stream(d.data.data) for d in element.proto.datasets]))
    return out


def _two_epochs(root: Path) -> tuple[str, str, float]:
    """Two epochs of one task from the main logs whose best rewards differ, and their quota."""
    ws = Workspace.open(root)
    rows = warehouse.query(
        ws,
        "SELECT s.version, s.instance, s.quota, t.best_value FROM inspect_samples s JOIN trajectories t "
        "ON t.source = s.source AND t.version = s.version AND t.instance = s.instance "
        "WHERE s.path LIKE 'main/%' AND s.task = 'iron_ore_throughput' AND s.failure_kind IS NULL "
        "ORDER BY t.best_value",
    )
    low, high = rows.row(0, named=True), rows.row(rows.height - 1, named=True)
    assert low["best_value"] < high["best_value"] and low["quota"] == high["quota"]
    key = "local_inspect:{version}:{instance}"
    return key.format(**low), key.format(**high), float(low["quota"])


def test_inspect_trajectory_draws_its_quota_and_no_per_step_tokens(inspect_root, monkeypatch):
    """Inspect counts tokens per sample: a tokens-per-step chart would show one bar. The curve
    draws the quota, so a run just under it visibly misses."""
    monkeypatch.setenv("FLE_CORE_HOME", str(inspect_root))
    low, _, quota = _two_epochs(inspect_root)
    at = run_page("trajectories", {"trj_id": low})
    assert not at.exception
    assert not _specs(at, "Tokens per step")
    assert "Inspect records tokens per sample, not per step" in _text(at)
    ((spec, data),) = _specs(at, "Learning curve")
    rules = [layer for layer in spec["layer"] if layer["mark"]["type"] == "rule"]
    assert len(rules) == 1 and rules[0]["encoding"]["y"]["field"] == "quota"
    assert any("quota" in f.columns and f["quota"].to_list() == [quota] for f in data)
    sub = spec["title"]["subtitle"]
    assert f"quota ({quota:,.4g})" in (sub if isinstance(sub, str) else " ".join(sub))


def test_side_by_side_curves_share_one_y_scale(inspect_root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(inspect_root))
    low, high, quota = _two_epochs(inspect_root)
    at = run_page("trajectories", {"trj_id": low, "trj_other": high})
    assert not at.exception
    curves = _specs(at, "Learning curve")
    assert len(curves) == 2
    tops = {spec["layer"][0]["encoding"]["y"]["scale"]["domainMax"] for spec, _ in curves}
    assert len(tops) == 1, tops  # one scale for both
    ws = Workspace.open(inspect_root)
    best = warehouse.query(ws, "SELECT max(value) AS m FROM steps WHERE source = 'local_inspect'")["m"][0]
    (top,) = tops
    assert top >= max(quota, 0) and top < 1.1 * max(best, quota)


def test_a_folder_synced_by_its_path_opens_its_transcripts(tmp_path, inspect_logs_dir, monkeypatch):
    """Issue 23 #15: a folder synced as ``fle-core sync --source DIR`` (the documented usage,
    no ``[sources.*]`` entry) is known by the location the warehouse recorded, so the
    Trajectories viewer opens its transcripts instead of "Unknown source 'inspect:…'"."""
    logs = tmp_path / "elsewhere" / "runs"
    shutil.copytree(inspect_logs_dir / "main", logs)
    root = tmp_path / "ws"
    ws = Workspace.open(root)
    sync(ws, str(logs))
    row = warehouse.query(
        ws, "SELECT source, version, instance, path FROM inspect_samples ORDER BY path, instance LIMIT 1"
    ).row(0, named=True)
    assert row["source"] not in ws.sources()  # not configured: only its recorded location names it
    key = f"{row['source']}:{row['version']}:{row['instance']}"
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    at = run_page("trajectories", {"trj_id": key})
    assert not at.exception
    assert "Unknown source" not in _text(at) and "No source" not in _text(at)
    assert row["path"] in _text(at)
    at.button(key=f"tr_{key}").click().run()
    assert not at.exception
    assert "Begin task" in _text(at)
