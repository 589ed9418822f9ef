"""The cost, reliability and planner charts: valid Vega-Lite whose data and encodings carry
the finished frames (``stats.cost.frontier``, ``bootstrap.pass_at_k_curve``,
``reliability.consistency``, ``variance.plan_curves``), rendered offline to SVG, and the
task cells that show infrastructure failures."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import vl_convert as vlc
from chart_helpers import data_rows, subtitle_text, units

from fle_core import charts as C
from fle_core.charts.base import ChartError
from fle_core.stats import bootstrap, cost, reliability, variance


def _summaries(n_models: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_models):
        for t in range(6):
            p = float(rng.uniform(0.1, 0.9))
            for _ in range(5):
                rows.append(
                    (f"model-{m:02d}", f"task_{t}", bool(rng.random() < p), float(rng.uniform(0.01, 0.05)),
                     int(rng.integers(1000, 4000)), float(rng.uniform(30, 300)))
                )  # fmt: skip
    return pl.DataFrame(
        rows, schema=["model", "task", "success", "cost_usd", "total_tokens", "duration_s"], orient="row"
    )


def _svg(chart) -> str:
    return vlc.vegalite_to_svg(chart.to_dict(validate=True))


@pytest.mark.parametrize("n_models", [2, 8, 30])
def test_frontier_chart_carries_both_intervals_and_the_share(n_models):
    s = _summaries(n_models)
    front = cost.frontier(s, reps=200, seed=0)
    chart = C.frontier_chart(front, omitted=["ghost"])
    spec = chart.to_dict(validate=True)
    rows = data_rows(spec)
    assert {r["model"] for r in rows} == set(front["model"])
    kind = lambda u: u["mark"]["type"] if isinstance(u["mark"], dict) else u["mark"]
    rules = [u["encoding"] for u in units(spec) if kind(u) == "rule"]
    assert {r["x2"]["field"] for r in rules if "x2" in r} == {"rate_ci_high"}
    assert {r["y2"]["field"] for r in rules if "y2" in r} == {"cost_hi_drawn"}
    point = next(u for u in units(spec) if kind(u) == "point")
    assert point["encoding"]["size"]["field"] == "frontier_share"
    assert "USD" in spec["title"]["text"] and "ghost" in subtitle_text(spec)
    assert "$" in json.dumps(spec["layer"][-1]["encoding"]["y"]["axis"]["format"])
    assert "<svg" in _svg(chart)


def test_frontier_chart_draws_an_unbounded_upper_cost_to_the_top():
    front = pl.DataFrame(
        {
            "model": ["a", "b"],
            "unit": ["tokens", "tokens"],
            "success_rate": [0.5, 0.1],
            "rate_ci_low": [0.3, 0.0],
            "rate_ci_high": [0.7, 0.3],
            "cost_per_success": [2000.0, 9000.0],
            "cost_ci_low": [1500.0, 4000.0],
            "cost_ci_high": [3000.0, None],
            "on_frontier": [True, False],
            "frontier_share": [1.0, 0.0],
            "n": [10, 10],
            "successes": [5, 1],
        }
    )
    spec = C.frontier_chart(front).to_dict(validate=True)
    rows = {r["model"]: r for r in data_rows(spec)}
    assert rows["b"]["unbounded"] and rows["b"]["cost_hi_drawn"] >= 9000 * 1.5
    assert "tokens" in spec["title"]["text"]


@pytest.mark.parametrize("n_models", [2, 8, 30])
def test_pass_k_chart_stacks_pass_at_k_over_pass_hat_k(n_models):
    s = _summaries(n_models)
    at = bootstrap.pass_at_k_curve(s, (1, 2, 3, 5), reps=100, seed=0)
    hat = bootstrap.pass_at_k_curve(s, (1, 2, 3, 5), reps=100, seed=0, estimator="pass_hat_k")
    spec = C.pass_k_chart(at, hat).to_dict(validate=True)
    assert [p["title"]["text"] for p in spec["vconcat"]] == ["pass@k by model", "pass^k by model"]
    # pass^k can only fall with k, pass@k only rise: the two panels hold different numbers
    assert data_rows(spec["vconcat"][0], spec.get("datasets")) != data_rows(
        spec["vconcat"][1], spec.get("datasets")
    )
    assert spec["config"]["legend"]["columns"] == 2
    _svg(C.pass_k_chart(at, hat))


@pytest.mark.parametrize("n_models", [2, 30])
def test_consistency_chart_has_outcome_and_resources(n_models):
    cons = reliability.consistency(_summaries(n_models))
    spec = C.consistency_chart(cons).to_dict(validate=True)
    assert [p["title"] for p in spec["vconcat"]] == ["Outcome", "Resources"]
    resources = {r["resource"] for r in data_rows(spec["vconcat"][1], spec.get("datasets"))}
    assert resources == {"tokens", "dollars", "time"}
    _svg(C.consistency_chart(cons))
    with pytest.raises(ChartError, match="twice"):
        C.consistency_chart(cons.with_columns(pl.lit(None, pl.Float64).alias("outcome_consistency")))


def test_planner_chart_marks_today_and_the_target():
    parts = variance.variance_components(_summaries(4))
    curves = variance.plan_curves(parts)
    spec = C.planner_chart(curves, 0.05, target_label="±5 points").to_dict(validate=True)
    panels = spec["vconcat"]
    assert [p["title"] for p in panels] == [
        "Epochs per task (tasks as today)",
        "Tasks (epochs per task as today)",
    ]
    text = json.dumps(spec, ensure_ascii=False)
    assert '"target": 0.05' in text and "±5 points" in text and "datum.current" in text
    _svg(C.planner_chart(curves, 0.05))


def test_task_cells_show_infrastructure_failures_only_when_there_are_some():
    group = pl.DataFrame(
        {
            "model": ["a", "a", "b"],
            "task": ["x", "y", "x"],
            "n": [6, 4, 0],
            "n_scored": [6, 4, 0],
            "successes": [2, 1, None],
            "success_rate": [2 / 6, 0.25, None],
            "infra_failures": [3, 0, 2],
        }
    )
    heat = C.task_heatmap_chart(group, infrastructure="exclude").to_dict(validate=True)
    text = json.dumps(heat, ensure_ascii=False)
    assert "Infrastructure failures (left out)" in text and "⚠n" in subtitle_text(heat)
    rows = {(r["model"], r["task"]): r for r in data_rows(heat)}
    assert rows[("a", "x")]["infra"] == 3 and rows[("b", "x")]["value"] is None
    cls = C.classification_heatmap_chart(group).to_dict(validate=True)
    outcomes = {(r["model"], r["task"]): r["outcome"] for r in data_rows(cls)}
    assert outcomes[("b", "x")] == "all left out" and outcomes[("a", "x")] == "partial"
    quiet = C.task_heatmap_chart(group.with_columns(pl.lit(0).alias("infra_failures"))).to_dict(validate=True)
    assert "Infrastructure failures" not in json.dumps(quiet) and "⚠" not in subtitle_text(quiet)
    _svg(C.task_heatmap_chart(group))
