"""The infrastructure-failure switch, end to end on logs written by real inspect_ai.

The ``errors/infra`` fixture's two epochs of ``mockllm/beta`` on ``iron_ore_throughput``
lost RCON (an infrastructure failure FLE's solver swallowed). One rule
(``stats.infrastructure.apply_rule``) decides whether they count: through
``load_summaries``, the Overview / Compare / Tasks pages (AppTest, the value kept in
the URL), and ``fle-core report``. Every number that depends on them changes; the
counts say how many were left out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from fle_core import analysis, warehouse
from fle_core.errors import MetricError
from fle_core.stats import infrastructure, metrics
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
BETA = "mockllm/beta"


@pytest.fixture(scope="module")
def infra_root(tmp_path_factory, inspect_logs_dir) -> Path:
    root = tmp_path_factory.mktemp("infra") / "ws"
    for part in ("main", "errors"):
        shutil.copytree(inspect_logs_dir / part, root / "inspect_logs" / part)
    sync(Workspace.open(root))
    return root


def _flagged(ws: Workspace) -> pl.DataFrame:
    return warehouse.query(
        ws,
        "SELECT version, instance, total_cost FROM inspect_samples WHERE failure_kind = 'infrastructure' "
        "AND superseded_by IS NULL",
    )


def test_the_loader_applies_the_one_rule(infra_root):
    ws = Workspace.open(infra_root)
    flagged = _flagged(ws)
    assert flagged.height == 2
    every = analysis.load_summaries(ws)
    without = analysis.load_summaries(ws, infrastructure="exclude")
    assert every["infrastructure_failure"].sum() == 2
    assert without.height == every.height - 2 and not without["infrastructure_failure"].any()
    lost = every.filter(pl.col("infrastructure_failure"))
    assert set(lost["model"]) == {BETA} and not lost["success"].any()  # FLE's rule: failures
    # dollars come from the log's own total_cost
    assert lost.sort("instance")["cost_usd"].to_list() == pytest.approx(
        flagged.sort("instance")["total_cost"].to_list()
    )
    assert set(every.filter(pl.col("cost_usd").is_not_null())["cost_source"]) == {"log"}
    # every number of beta moves; the other models' do not
    board_all = metrics.model_metrics(every, k_values=(1,)).sort("model")
    board_ex = metrics.model_metrics(without, k_values=(1,)).sort("model")
    for a, b in zip(board_all.iter_rows(named=True), board_ex.iter_rows(named=True), strict=True):
        if a["model"] == BETA:
            assert b["n"] == a["n"] - 2 and b["successes"] == a["successes"]
            assert b["success_rate"] > a["success_rate"]
        else:
            assert a == b
    with pytest.raises(MetricError, match="unknown infrastructure rule"):
        analysis.load_summaries(ws, infrastructure="sometimes")


def test_group_counts_say_what_each_cell_holds_or_lost(infra_root):
    every = analysis.load_summaries(Workspace.open(infra_root))
    cells = metrics.group_metrics(every)
    beta = cells.filter((pl.col("model") == BETA) & (pl.col("task") == "iron_ore_throughput")).row(
        0, named=True
    )
    assert beta["infra_failures"] == 2
    without = infrastructure.apply_rule(every, "exclude")
    left = infrastructure.with_counts(metrics.group_metrics(without), every)
    row = left.filter((pl.col("model") == BETA) & (pl.col("task") == "iron_ore_throughput")).row(
        0, named=True
    )
    assert row["infra_failures"] == 2 and row["n"] == beta["n"] - 2
    # a cell whose every run was an infrastructure failure is kept, empty, with its count
    only = every.filter(pl.col("infrastructure_failure"))
    emptied = infrastructure.with_counts(
        metrics.group_metrics(infrastructure.apply_rule(only, "exclude")), only
    )
    assert emptied.select("model", "task", "n", "infra_failures").rows() == [
        (BETA, "iron_ore_throughput", 0, 2)
    ]


def _run(page: str, params: dict) -> AppTest:
    """A fresh session opening ``page`` with ``params`` in its URL (as a pasted link does)."""
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page != "overview":
        at.switch_page(f"pages/{page}.py")
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
    assert not at.exception, at.exception
    return at


def _board(at: AppTest) -> dict[str, str]:
    board = next(d.value for d in at.dataframe if "ci_95" in d.value.columns)
    return {r["model"]: (r["solved"], r["ci_95"]) for _, r in board.iterrows()}


def _captions(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.caption)


@pytest.mark.parametrize(("page", "key"), [("compare", "cmp_infra"), ("overview", "ov_infra")])
def test_the_switch_recomputes_the_leaderboard_and_stays_in_the_url(infra_root, monkeypatch, page, key):
    monkeypatch.setenv("FLE_CORE_HOME", str(infra_root))
    counted = _run(page, {})
    assert (
        "Default, FLE's rule: 2 infrastructure failures in this data count as failed attempts"
        in _captions(counted)
    )
    assert key not in counted.query_params  # the default is left out of the URL
    left_out = _run(page, {key: "exclude"})
    assert left_out.query_params[key] in ("exclude", ["exclude"])
    assert "Left out: 2 infrastructure failures" in _captions(left_out)
    before, after = _board(counted), _board(left_out)
    solved = lambda cell: tuple(int(x) for x in cell[0].split(" / "))
    for model in before:
        if model == BETA:
            assert solved(after[model])[1] == solved(before[model])[1] - 2
            assert after[model][1] != before[model][1]  # its interval moved too
        else:
            assert after[model] == before[model]
    warning = "\n".join(str(w.value) for w in left_out.warning)
    assert "left out of every number here" in warning


def test_every_compare_tab_and_export_follows_the_switch(infra_root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(infra_root))
    exported = {}
    for rule in ("fail", "exclude"):
        params = {"cmp_tab": "Export"} | ({"cmp_infra": "exclude"} if rule == "exclude" else {})
        at = _run("compare", params)
        buttons = {b.label: b for b in at.get("download_button")}
        assert {"Markdown (experiment log)", "Leaderboard CSV"} <= set(buttons)
        exported[rule] = next(d.value for d in at.markdown if "| Metric |" in d.value or "Verdict" in d.value)
    # the Markdown says which rule it was computed under, and the numbers differ
    assert exported["fail"] != exported["exclude"]
    for tab in ("Cost", "Reliability", "Planner", "pass@k"):
        counted = _run("compare", {"cmp_tab": tab})
        left_out = _run("compare", {"cmp_tab": tab, "cmp_infra": "exclude"})
        assert _numbers(counted) != _numbers(left_out), tab


def _numbers(at: AppTest) -> list:
    """Every table and every chart's data on the page (what a reader sees)."""
    tables = [d.value.to_csv() for d in at.dataframe]
    charts = [bytes(x.data.data) for e in at.get("vega_lite_chart") for x in e.proto.datasets]
    return tables + charts


def test_tasks_cells_show_and_count_the_failures(infra_root, monkeypatch):
    monkeypatch.setenv("FLE_CORE_HOME", str(infra_root))
    for rule, meaning in (("fail", "counted as failures"), ("exclude", "left out")):
        params = {"tsk_model": BETA} | ({"tsk_infra": "exclude"} if rule == "exclude" else {})
        at = _run("tasks", params)
        (chart,) = at.get("vega_lite_chart")
        spec = json.loads(chart.proto.spec)
        rows = pl.concat(
            [pl.read_ipc_stream(d.data.data) for d in chart.proto.datasets], how="diagonal_relaxed"
        )
        cell = rows.filter(pl.col("task") == "iron_ore_throughput")
        assert cell["infra"].to_list()[0] == 2
        text = json.dumps(spec, ensure_ascii=False)
        assert f"Infrastructure failures ({meaning})" in text and "⚠" in text
        ranking = _run("tasks", params | {"tsk_tab": "Difficulty ranking"})
        table = next(d.value for d in ranking.dataframe if "infra_failures" in d.value.columns)
        assert int(table.loc[table["task"] == "iron_ore", "infra_failures"].iloc[0]) == 2


def test_the_report_follows_the_switch_and_says_so(infra_root, tmp_path):
    outs = {}
    for rule in ("fail", "exclude"):
        out = tmp_path / rule
        done = subprocess.run(
            [sys.executable, "-m", "fle_core", "--workspace", str(infra_root), "report", "--out", str(out),
             "--reps", "200", "--infrastructure", rule],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outs[rule] = out
    mm = {r: pl.read_csv(o / "model_metrics.csv").sort("model") for r, o in outs.items()}
    beta = {r: m.filter(pl.col("model") == BETA).row(0, named=True) for r, m in mm.items()}
    assert beta["exclude"]["n"] == beta["fail"]["n"] - 2
    assert "left out of every number" in (outs["exclude"] / "report.html").read_text()
    assert "counted as failures (FLE" in (outs["fail"] / "report.html").read_text()
    bad = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(infra_root), "report", "--out", str(tmp_path / "x"),
         "--infrastructure", "maybe"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr
