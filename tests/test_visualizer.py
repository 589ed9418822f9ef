"""ResultsVisualizer: the old method names return the shared builders' charts."""

from __future__ import annotations

import polars as pl
import pytest
from _chart_frames import contract_frames, model_names

import fle_core
from fle_core import charts as C
from fle_core.charts.base import SIMULATED_SUFFIX, ChartError, ModelPalette
from fle_core.report import REPORT_FILE, DataVersion, ReportError
from fle_core.report.visualizer import ResultsVisualizer


@pytest.fixture(scope="module")
def frames():
    return contract_frames(3)


def _colours(spec: dict) -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(node):
        if isinstance(node, dict):
            enc = node.get("encoding", {}).get("color", {})
            if enc.get("field") in ("model", "model_x") and "range" in enc.get("scale", {}):
                found.update(zip(enc["scale"]["domain"], enc["scale"]["range"], strict=True))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    return found


def chart_values_of(spec: dict) -> list[dict]:
    """Every data row inlined in a Vega-Lite spec (top-level datasets and inline values)."""
    rows: list[dict] = []
    for values in spec.get("datasets", {}).values():
        rows += values

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("data"), dict) and "values" in node["data"]:
                rows.extend(node["data"]["values"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in spec.items() if k != "datasets"})
    return rows


def test_exported_from_the_package():
    assert fle_core.ResultsVisualizer is ResultsVisualizer


def test_old_names_return_the_builders_charts(frames):
    viz = ResultsVisualizer()
    pairs = [
        (
            viz.plot_model_comparison(frames["model_metrics"], metric="success_rate"),
            C.model_comparison_chart(frames["model_metrics"], "success_rate"),
        ),
        (viz.plot_pass_at_k(frames["model_metrics"]), C.pass_at_k_chart(frames["model_metrics"])),
        (viz.plot_reward_distribution(frames["summaries"]), C.reward_distribution_chart(frames["summaries"])),
        (viz.plot_efficiency_scatter(frames["summaries"]), C.efficiency_scatter_chart(frames["summaries"])),
        (viz.plot_learning_curves(frames["steps"]), C.learning_curves_chart(frames["steps"])),
        (
            viz.plot_task_difficulty_heatmap(frames["group_metrics"]),
            C.task_heatmap_chart(frames["group_metrics"]),
        ),
        (
            viz.plot_task_outcomes(frames["group_metrics"]),
            C.classification_heatmap_chart(frames["group_metrics"]),
        ),
        (viz.plot_pass_histogram(frames["group_metrics"]), C.pass_histogram_chart(frames["group_metrics"])),
        (
            viz.plot_interval_estimates(frames["interval_estimates"]),
            C.interval_estimates_chart(frames["interval_estimates"]),
        ),
        (
            viz.plot_performance_profile(frames["performance_profile"]),
            C.performance_profile_chart(frames["performance_profile"]),
        ),
        (
            viz.plot_probability_of_improvement(frames["probability_of_improvement"]),
            C.probability_of_improvement_chart(frames["probability_of_improvement"]),
        ),
        (viz.plot_cost(frames["model_metrics"]), C.cost_chart(frames["model_metrics"])),
    ]
    for got, want in pairs:
        assert got.to_dict(validate=True) == want.to_dict()
    one_axis = viz.plot_learning_curves(frames["steps"], x="time").to_dict()
    assert one_axis == C.learning_curve_chart(frames["steps"], "time").to_dict()


def test_models_argument_fixes_colours_across_calls(frames):
    everyone = model_names(5)
    viz = ResultsVisualizer(models=everyone)
    pal = ModelPalette.from_models(everyone)
    one = frames["model_metrics"].filter(pl.col("model") == frames["model_metrics"]["model"][2])
    for chart in (
        viz.plot_model_comparison(one),
        viz.plot_pass_at_k(frames["pass_at_k_curve"]),
        viz.plot_efficiency_scatter(frames["summaries"]),
    ):
        colours = _colours(chart.to_dict())
        assert colours and all(colours[m] == pal.colour(m) for m in colours)
    # without models=, the lone model of `one` would take the first colour
    alone = _colours(ResultsVisualizer().plot_model_comparison(one).to_dict())
    assert list(alone.values()) == [ModelPalette.from_models(one["model"]).colour(one["model"][0])]


def test_simulated_override_reaches_the_titles(frames):
    spec = ResultsVisualizer(simulated=True).plot_interval_estimates(frames["interval_estimates"]).to_dict()
    assert spec["title"]["text"].endswith(SIMULATED_SUFFIX)


def test_create_comprehensive_report_writes_and_returns_files(tmp_path):
    f = contract_frames(2, trials=2)
    viz = ResultsVisualizer()
    files = viz.create_comprehensive_report(
        model_metrics=f["model_metrics"],
        results_df=f["summaries"],
        output_dir=tmp_path / "out",
        group_metrics=f["group_metrics"],
        data_version=DataVersion(sync_id=9),
    )
    assert files[0] == tmp_path / "out" / REPORT_FILE
    assert all(p.exists() and p.stat().st_size > 0 for p in files)
    names = {p.name for p in files}
    assert {
        "summaries.csv",
        "summaries.parquet",
        "model_metrics.csv",
        "group_metrics.parquet",
        "model_comparison.svg",
        "task_outcomes.svg",
    } <= names
    html = files[0].read_text()
    assert html.count('class="chart-spec"') == len([p for p in files if p.suffix == ".svg"])
    with pytest.raises(ReportError, match="needs results_df"):
        viz.create_comprehensive_report(model_metrics=f["model_metrics"], output_dir=tmp_path / "x")


def test_old_parameters_title_save_path_and_dict_input(tmp_path):
    """The old signatures: title= and save_path= on every plot, PerformanceMetrics dicts,
    summaries for the heatmaps, and the two plots the old class had that were missing."""
    from fle_core.analysis import PerformanceAnalyzer

    f = contract_frames(2, trials=3)
    summaries = f["summaries"]
    by_model = {
        m: PerformanceAnalyzer.calculate_metrics(part, k_values=[1, 2])
        for (m,), part in summaries.group_by("model", maintain_order=True)
    }
    viz = ResultsVisualizer()
    spec = viz.plot_model_comparison(by_model, title="Lab play", save_path=tmp_path / "mc.svg").to_dict()
    assert spec["title"]["text"].startswith("Lab play")
    assert (tmp_path / "mc.svg").read_text().startswith("<svg")
    rates = {r["model"]: r["value"] for r in chart_values_of(spec) if "ci_low" in r}
    assert rates == pytest.approx({m: v.success_rate for m, v in by_model.items()})
    only_k1 = viz.plot_pass_at_k(by_model, k_values=[1], save_path=tmp_path / "pk.html").to_dict()
    assert {r["k"] for r in chart_values_of(only_k1)} == {1}
    assert "vega" in (tmp_path / "pk.html").read_text()
    heat = viz.plot_task_success_classification_heatmap(summaries, title="Outcomes").to_dict()
    assert heat["title"]["text"].startswith("Outcomes")
    outcomes = {(r["model"], r["task"]): r["outcome"] for r in chart_values_of(heat) if "outcome" in r}
    counts = summaries.group_by("model", "task").agg(pl.col("success").sum().alias("s"), pl.len().alias("n"))
    assert len(outcomes) == counts.height
    for m, t, s_, _n in counts.iter_rows():
        assert (outcomes[(m, t)] == "none") == (s_ == 0)
    per_task = viz.plot_task_specific_pass_at_k(summaries, k_values=[1, 2], save_path=tmp_path / "tp.json")
    assert len(per_task.to_dict()["concat"]) == summaries["task"].n_unique()
    threshold = viz.plot_task_difficulty_heatmap(
        summaries, success_threshold=0.0, title="Any reward"
    ).to_dict()
    assert all(
        r["success_rate"] == 1.0 for r in chart_values_of(threshold) if r.get("success_rate") is not None
    )
    assert viz.plot_reward_distribution(summaries, "task", "best_reward", "By task").to_dict()["title"]
    with pytest.raises(ChartError, match="total_tokens on x"):
        viz.plot_efficiency_scatter(summaries, x_col="steps")
