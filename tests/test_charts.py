"""Chart builders: Vega-Lite-valid specs whose data and encodings match the input frames.

Frames follow the contracts in docs/architecture.md (tests/_chart_frames.py);
the last tests feed the real metrics/bootstrap/compare outputs into the builders.
"""

from __future__ import annotations

import datetime as dt
import math
import random

import polars as pl
import pytest
import vl_convert as vlc
from _chart_frames import contract_frames, model_names
from chart_helpers import data_rows, subtitle_text, title_text, tooltip_fields, units

from fle_core import charts as C
from fle_core.charts.base import (
    DASHES,
    OKABE_ITO,
    SHAPES,
    SIMULATED_SUFFIX,
    ChartError,
    ModelPalette,
    chart_values,
)

# ---------------------------------------------------------------- spec helpers


def colour_maps(spec: dict) -> list[dict[str, str]]:
    """domain → range of every model colour scale in the spec."""
    maps = []
    for u in units(spec):
        enc = u.get("encoding", {}).get("color", {})
        scale = enc.get("scale", {})
        if enc.get("field") in ("model", "model_x", "model_label", "model_x_label") and "range" in scale:
            maps.append(dict(zip(scale["domain"], scale["range"], strict=True)))
    return maps


def axis_titles(spec: dict) -> set[str]:
    return {
        u["encoding"][ch]["title"]
        for u in units(spec)
        for ch in ("x", "y")
        if ch in u.get("encoding", {}) and u["encoding"][ch].get("title")
    }


def all_builders(f: dict, palette=None) -> dict:
    kw = {"palette": palette}
    out = {
        "comparison": lambda: C.model_comparison_chart(f["model_metrics"], **kw),
        "comparison_iqm": lambda: C.model_comparison_chart(f["interval_estimates"], "iqm", **kw),
        "pass_at_k": lambda: C.pass_at_k_chart(f["pass_at_k_curve"], **kw),
        "pass_at_k_wide": lambda: C.pass_at_k_chart(f["model_metrics"], **kw),
        "rewards": lambda: C.reward_distribution_chart(f["summaries"], **kw),
        "efficiency": lambda: C.efficiency_scatter_chart(f["summaries"], **kw),
        "learning": lambda: C.learning_curves_chart(f["steps"], **kw),
        "cost": lambda: C.cost_chart(f["model_metrics"], **kw),
        "heatmap": lambda: C.task_heatmap_chart(f["group_metrics"], **kw),
        "heatmap_pass3": lambda: C.task_heatmap_chart(f["group_metrics"], "pass_at_3", **kw),
        "outcomes": lambda: C.classification_heatmap_chart(f["group_metrics"], **kw),
        "passes": lambda: C.pass_histogram_chart(f["group_metrics"], **kw),
        "intervals": lambda: C.interval_estimates_chart(f["interval_estimates"], **kw),
        "profile": lambda: C.performance_profile_chart(f["performance_profile"], **kw),
    }
    if f["probability_of_improvement"].height:
        out["poi"] = lambda: C.probability_of_improvement_chart(f["probability_of_improvement"], **kw)
    return out


@pytest.fixture(scope="module")
def frames3():
    return contract_frames(3)


@pytest.fixture(scope="module", params=[1, 30], ids=["1-model", "30-models"])
def frames_n(request):
    n = request.param
    # Model i's skill falls with i; with 30 models make sure several succeed somewhere.
    return n, contract_frames(n, trials=3 if n == 1 else 2)


# ---------------------------------------------------------------- palette


def test_palette_is_a_pure_function_of_the_sorted_model_list():
    a = ModelPalette.from_models(["zeta", "alpha", "mid", "alpha"])
    b = ModelPalette.from_models(["mid", "zeta", "alpha"])
    assert a == b and a.models == ("alpha", "mid", "zeta")
    assert [a.colour(m) for m in a.models] == list(OKABE_ITO[:3])
    assert a.colour("mid") == b.colour("mid")
    with pytest.raises(ChartError, match="not in the chart palette"):
        a.colour("unknown")


def test_palette_for_30_models_gives_distinct_colour_shape_and_dash_pairs():
    pal = ModelPalette.from_models(model_names(30))
    assert len({(pal.colour(m), pal.shape(m)) for m in pal.models}) == 30
    assert len({(pal.colour(m), tuple(pal.dash(m))) for m in pal.models}) == 30
    assert {pal.colour(m) for m in pal.models} == set(OKABE_ITO)
    # model 9 (0-based 8) starts the second shape / dash group
    ninth = pal.models[8]
    assert pal.colour(ninth) == OKABE_ITO[0] and pal.shape(ninth) == SHAPES[1]
    assert pal.dash(ninth) == list(DASHES[1])


def test_subset_charts_keep_each_models_colour(frames3):
    pal = ModelPalette.from_models([*model_names(3), "another-model"])
    subset = frames3["model_metrics"].filter(pl.col("model") != model_names(3)[0])
    spec = C.model_comparison_chart(subset, palette=pal).to_dict(validate=True)
    (cmap,) = colour_maps(spec)
    assert set(cmap) == set(subset["model"])
    assert all(cmap[m] == pal.colour(m) for m in cmap)


def test_same_model_same_colour_across_every_chart_and_call():
    f = contract_frames(30, trials=2)
    pal = ModelPalette.from_frames(*f.values())
    seen: dict[str, set[str]] = {}
    for build in all_builders(f, pal).values():
        for cmap in colour_maps(build().to_dict()):
            for model, colour in cmap.items():
                seen.setdefault(model, set()).add(colour)
    assert len(seen) == 30
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert all(next(iter(seen[m])) == pal.colour(m) for m in seen)
    # without an explicit palette the mapping is the frame's own sorted list, every call
    first = colour_maps(C.pass_at_k_chart(f["pass_at_k_curve"]).to_dict())
    again = colour_maps(C.pass_at_k_chart(f["pass_at_k_curve"]).to_dict())
    assert first == again and first[0] == {m: pal.colour(m) for m in pal.models}


# ---------------------------------------------------------------- every chart, 1 and 30 models


def test_every_chart_validates_for_1_and_30_models(frames_n):
    n, f = frames_n
    builders = all_builders(f)
    assert ("poi" in builders) == (n > 1)
    for name, build in builders.items():
        spec = build().to_dict(validate=True)  # Vega-Lite schema validation
        assert tooltip_fields(spec), f"{name} has no tooltips"
        assert all("(" in t for t in axis_titles(spec) if t not in ("Model", "Task", "X vs Y")), (
            name,
            axis_titles(spec),
        )  # units in parentheses
        for cmap in colour_maps(spec):
            assert len(cmap) <= n and set(cmap.values()) <= set(OKABE_ITO)
        rows = data_rows(spec)
        models = {r.get("model", r.get("model_x")) for r in rows} - {None}
        if name not in ("cost",):  # cost drops models without successes
            assert len(models) == n or name == "poi", (name, len(models))


def test_every_chart_renders_offline_for_30_models():
    n, f = 30, contract_frames(30, trials=2)
    # 435 pairs render slowly in vl-convert; the report plots the leader's 29 pairs instead.
    f["probability_of_improvement"] = f["probability_of_improvement"].filter(
        pl.col("model_x") == model_names(30)[0]
    )
    for name, build in all_builders(f).items():
        svg = vlc.vegalite_to_svg(build().to_dict())
        assert svg.startswith("<svg") and len(svg) > 2000, name
        if n == 30 and name in ("comparison", "pass_at_k", "efficiency"):
            assert "model-23" in svg  # the 30th model is drawn (axis label / legend)


def test_legends_list_all_30_models():
    f = contract_frames(30, trials=2)
    spec = C.pass_at_k_chart(f["pass_at_k_curve"]).to_dict()
    legends = [
        u["encoding"]["color"]["legend"] for u in units(spec) if "legend" in u["encoding"].get("color", {})
    ]
    assert legends and all(lg["symbolLimit"] > 30 for lg in legends)


def test_simulated_rows_put_simulated_data_in_every_title():
    f = contract_frames(2, simulated=True)
    for name, build in all_builders(f).items():
        spec = build().to_dict()
        text = title_text(spec)
        if name in ("comparison_iqm", "pass_at_k", "intervals", "profile", "poi"):
            assert SIMULATED_SUFFIX not in text  # bootstrap frames carry no simulated column ...
        else:
            assert text.endswith(SIMULATED_SUFFIX), name
    # ... so callers pass it explicitly (the report and visualizer do)
    spec = C.interval_estimates_chart(f["interval_estimates"], simulated=True).to_dict()
    assert title_text(spec).endswith(SIMULATED_SUFFIX)
    real = contract_frames(2)
    assert SIMULATED_SUFFIX not in title_text(C.model_comparison_chart(real["model_metrics"]).to_dict())


# ---------------------------------------------------------------- data and encodings per chart


def test_model_comparison_bars_and_wilson_error_bars(frames3):
    mm = frames3["model_metrics"]
    spec = C.model_comparison_chart(mm).to_dict(validate=True)
    rows = {r["model"]: r for r in data_rows(spec)}
    for r in mm.iter_rows(named=True):
        assert rows[r["model"]]["value"] == pytest.approx(r["success_rate"])
        assert rows[r["model"]]["ci_low"] == pytest.approx(r["success_ci_low"])
        assert rows[r["model"]]["ci_high"] == pytest.approx(r["success_ci_high"])
    bar, rule = units(spec)
    assert bar["mark"]["type"] == "bar" and rule["mark"]["type"] == "rule"
    assert (
        bar["encoding"]["x"]["field"] == "value"
        and bar["encoding"]["x"]["title"] == "Success rate (% of trials)"
    )
    assert rule["encoding"]["x"]["field"] == "ci_low" and rule["encoding"]["x2"]["field"] == "ci_high"
    order = mm.sort(["success_rate", "model"], descending=[True, False])["model"].to_list()
    assert bar["encoding"]["y"]["sort"] == order
    assert {"model", "value", "ci_low", "ci_high", "n", "successes"} <= tooltip_fields(spec)
    assert subtitle_text(spec) == "95% Wilson score interval"


def test_model_comparison_from_interval_estimates_and_bad_metric(frames3):
    ie = frames3["interval_estimates"]
    spec = C.model_comparison_chart(ie, "optimality_gap").to_dict(validate=True)
    want = ie.filter(pl.col("metric") == "optimality_gap")
    assert sorted(r["value"] for r in data_rows(spec)) == pytest.approx(sorted(want["estimate"]))
    with pytest.raises(ChartError, match="no rows for metric 'median'"):
        C.model_comparison_chart(ie, "median")
    spec = C.model_comparison_chart(frames3["model_metrics"], "tokens_per_success").to_dict()
    assert len(units(spec)) == 1  # no interval for this metric: no error-bar layer
    assert "no interval" in subtitle_text(spec)


def test_pass_at_k_curve_with_bands(frames3):
    curve = frames3["pass_at_k_curve"]
    spec = C.pass_at_k_chart(curve).to_dict(validate=True)
    rows = data_rows(spec)
    assert len(rows) == curve.height
    assert {(r["model"], r["k"]): r["estimate"] for r in rows} == pytest.approx(
        {(r["model"], r["k"]): r["estimate"] for r in curve.iter_rows(named=True)}
    )
    marks = [u["mark"]["type"] for u in units(spec)]
    assert marks == ["area", "line", "point"]
    area = units(spec)[0]
    assert area["encoding"]["y"]["field"] == "ci_low" and area["encoding"]["y2"]["field"] == "ci_high"
    line = units(spec)[1]
    assert line["encoding"]["strokeDash"]["field"] == "model_label"
    # 0 % and 100 % sit just inside the plot: the domain has a little room beyond them
    assert line["encoding"]["y"]["scale"]["domain"] == [-0.04, 1.04]
    assert line["encoding"]["y"]["axis"]["values"] == [0, 0.25, 0.5, 0.75, 1]
    assert line["encoding"]["x"]["title"] == "k (attempts per task)"


def test_pass_at_k_with_one_k_draws_its_intervals_as_bars(frames3):
    """2 trials per task leave only k = 1: an area over one k draws nothing, so the
    promised interval must be drawn as a bar per model, and the subtitle must say so."""
    curve = frames3["pass_at_k_curve"].filter(pl.col("k") == 1)
    spec = C.pass_at_k_chart(curve).to_dict(validate=True)
    marks = [u["mark"]["type"] for u in units(spec)]
    assert marks == ["rule", "line", "point"]
    bar = units(spec)[0]
    assert bar["encoding"]["y"]["field"] == "ci_low" and bar["encoding"]["y2"]["field"] == "ci_high"
    assert "band" not in subtitle_text(spec) and "bar: 95%" in subtitle_text(spec)
    rows = data_rows(spec)
    assert {r["model"]: (r["ci_low"], r["ci_high"]) for r in rows} == {
        r["model"]: (r["ci_low"], r["ci_high"]) for r in curve.iter_rows(named=True)
    }


def test_pass_at_k_from_wide_model_metrics_drops_missing_k(frames3):
    mm = frames3["model_metrics"]  # 2 tasks × 3 trials: pass@5 and pass@8 are null
    spec = C.pass_at_k_chart(mm).to_dict(validate=True)
    rows = data_rows(spec)
    assert sorted({r["k"] for r in rows}) == [1, 3]
    for r in rows:
        assert r["estimate"] == pytest.approx(
            mm.filter(pl.col("model") == r["model"])[f"pass_at_{r['k']}"][0]
        )
        assert r["n_tasks"] == 2
    assert [u["mark"]["type"] for u in units(spec)] == ["line", "point"]  # no band without CIs


def test_reward_distribution_has_both_measures_per_trajectory(frames3):
    s = frames3["summaries"].with_columns(
        pl.when(pl.col("version") == pl.col("version").min())
        .then(float("nan"))
        .otherwise(pl.col("final_reward"))
        .alias("final_reward")
    )
    spec = C.reward_distribution_chart(s).to_dict(validate=True)
    rows = data_rows(spec)
    assert len(rows) == 2 * s.height - 1  # the NaN final reward is not drawn
    best = sorted(r["reward"] for r in rows if r["measure"] == "Best reward")
    assert best == pytest.approx(sorted(s["best_reward"]))
    assert spec["facet"]["column"]["field"] == "measure"
    assert [u["mark"]["type"] for u in units(spec)] == ["boxplot", "tick"]
    assert {"version", "instance", "task", "reward"} <= tooltip_fields(spec)
    with pytest.raises(ChartError, match="Unknown reward column"):
        C.reward_distribution_chart(s, "median_reward")


def test_efficiency_scatter_points(frames3):
    s = frames3["summaries"]
    spec = C.efficiency_scatter_chart(s).to_dict(validate=True)
    rows = data_rows(spec)
    assert sorted((r["total_tokens"], r["reward"]) for r in rows) == sorted(
        zip(s["total_tokens"].cast(pl.Float64).to_list(), s["best_reward"].to_list(), strict=True)
    )
    (u,) = units(spec)
    assert u["encoding"]["x"]["title"] == "Total tokens per trajectory (tokens)"
    assert u["encoding"]["shape"]["field"] == "model_label"


def test_learning_curve_by_step_matches_an_independent_mean(frames3):
    steps = frames3["steps"]
    spec = C.learning_curve_chart(steps, "step").to_dict(validate=True)
    rows = data_rows(spec)
    for r in rows:
        vals = steps.filter((pl.col("model") == r["model"]) & (pl.col("depth") == r["x"]))["value"].to_list()
        assert r["n"] == len(vals)
        mean = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
        assert r["mean"] == pytest.approx(mean)
        assert r["ci_high"] - r["mean"] == pytest.approx(1.96 * sd / math.sqrt(len(vals)))
    assert len(rows) == steps.select("model", "depth").unique().height
    # whole steps: the axis never ticks between two of them
    axes = [layer["encoding"]["x"]["axis"] for layer in spec["layer"] if "x" in layer.get("encoding", {})]
    assert axes and all(a.get("tickMinStep") == 1 and a.get("format") == "d" for a in axes)


def test_learning_curve_by_time_bins_elapsed_in_a_unit_that_fits(frames3):
    steps = frames3["steps"]
    spec = C.learning_curve_chart(steps, "time", time_bins=4).to_dict(validate=True)
    rows = data_rows(spec)
    key = ["source", "version", "instance"]
    seconds = steps.with_columns(
        (pl.col("created_at") - pl.col("created_at").min().over(key)).dt.total_seconds().alias("e")
    )["e"]
    # under 2 minutes in seconds, under 2 hours in minutes, else hours (the axis says which)
    unit, per = (
        ("seconds", 1)
        if seconds.max() < 120
        else ("minutes", 60)
        if seconds.max() < 7200
        else ("hours", 3600)
    )
    assert unit in units(spec)[0]["encoding"]["x"]["title"]
    width = seconds.max() / per / 4
    assert sorted({round(r["x"], 9) for r in rows}) <= sorted(round(width * (i + 0.5), 9) for i in range(4))
    assert sum(r["n"] for r in rows) == steps.height
    both = C.learning_curves_chart(steps).to_dict(validate=True)
    assert len(both["hconcat"]) == 2
    with pytest.raises(ChartError, match="Unknown learning-curve axis"):
        C.learning_curve_chart(steps, "tokens")


def test_cost_chart_marks_the_pareto_frontier():
    mm = pl.DataFrame(
        {
            "model": ["a", "b", "c", "d", "e"],
            "success_rate": [0.5, 0.3, 0.3, 0.1, 0.0],
            "tokens_per_success": [4000.0, 1000.0, 2000.0, 500.0, None],
            "n": [10] * 5,
            "successes": [5, 3, 3, 1, 0],
        }
    )
    spec = C.cost_chart(mm).to_dict(validate=True)
    rows = {r["model"]: r["on_frontier"] for r in data_rows(spec)}
    assert rows == {"a": True, "b": True, "c": False, "d": True}
    assert "not shown (no successes, so no cost per success): e" in subtitle_text(spec)
    line, _ring, points = units(spec)
    assert line["transform"] == [{"filter": "datum.on_frontier"}] and line["mark"]["type"] == "line"
    assert points["encoding"]["y"]["scale"]["type"] == "log"
    with pytest.raises(ChartError, match="No model has a success"):
        C.cost_chart(mm.filter(pl.col("model") == "e"))


def test_long_name_lists_in_subtitles_are_cut():
    mm = pl.DataFrame(
        {
            "model": [f"m{i:02d}" for i in range(12)],
            "success_rate": [0.5] + [0.0] * 11,
            "tokens_per_success": [100.0] + [None] * 11,
        }
    )
    spec = C.cost_chart(mm).to_dict()
    assert subtitle_text(spec).endswith("m01, m02, m03, m04, m05 and 6 more")
    # a long subtitle wraps onto lines (never cut at the chart's width)
    assert all(len(line) <= 95 for line in spec["title"]["subtitle"])


def _dominated(i, pts):
    xi, yi = pts[i]
    return any(xj >= xi and yj <= yi and (xj > xi or yj < yi) for j, (xj, yj) in enumerate(pts) if j != i)


def test_pareto_frontier_against_brute_force():
    rng = random.Random(11)
    for trial in range(300):
        n = rng.randint(0, 12)
        # a small value grid forces many ties
        pts = [
            (rng.choice([0.0, 0.1, 0.2, 0.3, None]), rng.choice([1.0, 2.0, 3.0, float("nan"), None]))
            for _ in range(n)
        ]
        got = C.pareto_frontier([p[0] for p in pts], [p[1] for p in pts])
        valid = [i for i, (x, y) in enumerate(pts) if x is not None and y is not None and y == y]
        clean = {i: pts[i] for i in valid}
        want = [i in clean and not _dominated(valid.index(i), [clean[j] for j in valid]) for i in range(n)]
        assert got == want, (trial, pts)
    # the other orientation: maximize both
    assert C.pareto_frontier([1, 2, 3], [1, 2, 3], minimize_y=False) == [False, False, True]
    assert C.pareto_frontier([1, 2, 3], [3, 2, 1], minimize_y=False) == [True, True, True]
    assert C.pareto_frontier([1, 2, 3], [3, 2, 1], maximize_x=False, minimize_y=False) == [True, False, False]


def test_task_heatmap_cells_and_missing_cells(frames3):
    gm = frames3["group_metrics"]
    spec = C.task_heatmap_chart(gm, "pass_at_5").to_dict(validate=True)  # n=3 < 5: all null
    rows = data_rows(spec)
    assert len(rows) == gm.height and all(r["value"] is None for r in rows)
    missing, cells, *texts = units(spec)  # value text, and its ⚠n line for infrastructure failures
    assert missing["transform"] == [{"filter": "datum.value === null"}]
    assert texts and all(t["mark"]["type"] == "text" for t in texts)
    spec = C.task_heatmap_chart(gm).to_dict(validate=True)
    rows = {(r["model"], r["task"]): r["value"] for r in data_rows(spec)}
    assert rows == pytest.approx(
        {(r["model"], r["task"]): r["success_rate"] for r in gm.iter_rows(named=True)}
    )
    cells = units(spec)[1]
    assert cells["encoding"]["color"]["scale"] == {"domain": [0, 1], "scheme": "viridis"}
    # tasks on the y axis, sorted, shown without the common "_throughput" suffix
    assert cells["encoding"]["y"]["sort"] == [
        t.removesuffix("_throughput") for t in sorted(gm["task"].unique())
    ]


def test_classify_outcomes_by_hand():
    gm = pl.DataFrame(
        {
            "model": ["m"] * 5,
            "task": list("abcde"),
            "n": [4, 4, 4, 3, 2],
            "n_scored": [4, 4, 4, 3, 0],
            "successes": [0, 2, 4, 3, None],
        }
    )
    out = C.classify_outcomes(gm)
    assert out["outcome"].to_list() == ["none", "partial", "full", "full", "no quota"]
    spec = C.classification_heatmap_chart(gm).to_dict(validate=True)
    labels = {r["task"]: (r["outcome"], r["label"]) for r in data_rows(spec)}
    assert labels == {
        "a": ("none", "0/4"),
        "b": ("partial", "2/4"),
        "c": ("full", "4/4"),
        "d": ("full", "3/3"),
        "e": ("no quota", "–"),
    }
    cells = units(spec)[0]
    assert cells["encoding"]["color"]["scale"]["domain"] == ["none", "partial", "full", "no quota"]


def test_pass_histogram_orders_tasks_by_total_passes():
    gm = pl.DataFrame(
        {
            "model": ["x", "y", "x", "y", "x"],
            "task": ["t1", "t1", "t2", "t2", "open_play"],
            "n": [5, 5, 5, 5, 5],
            "successes": [1, 0, 3, 2, None],
        }
    )
    spec = C.pass_histogram_chart(gm).to_dict(validate=True)
    assert units(spec)[0]["encoding"]["y"]["sort"] == ["t2", "t1"]  # one bar per task, most passes first
    assert sum(r["successes"] for r in data_rows(spec)) == 6
    assert "no quota (not shown): open_play" in subtitle_text(spec)


def test_rliable_charts(frames3):
    ie = frames3["interval_estimates"]
    spec = C.interval_estimates_chart(ie).to_dict(validate=True)
    # one panel per metric, two a row, each x axis titled with its own unit
    metrics = ie["metric"].unique().to_list()
    assert len(spec["concat"]) == len(metrics) and spec["columns"] == 2
    titles = {p["layer"][0]["encoding"]["x"]["title"] for p in spec["concat"]}
    assert "Success rate (% of trials)" in titles and len(titles) == len(metrics)
    shown = [r for p in spec["concat"] for r in spec["datasets"][p["data"]["name"]]]
    assert len(shown) == ie.height
    prof = C.performance_profile_chart(frames3["performance_profile"]).to_dict(validate=True)
    assert [u["mark"]["type"] for u in units(prof)] == ["area", "line", "point"]
    assert units(prof)[1]["encoding"]["y"]["scale"]["domain"] == [0, 1]
    poi = frames3["probability_of_improvement"]
    spec = C.probability_of_improvement_chart(poi).to_dict(validate=True)
    pairs = [r["pair"] for r in data_rows(spec) if "pair" in r]
    # each pair once, turned so that X is the likelier winner (P ≥ ½), most decisive first
    want = []
    for x, y, p in zip(poi["model_x"], poi["model_y"], poi["estimate"], strict=True):
        want.append((max(p, 1 - p), f"{x} > {y}" if p >= 0.5 else f"{y} > {x}"))
    assert sorted(pairs) == sorted(w for _, w in want) and len(set(pairs)) == len(pairs)
    assert [r["estimate"] for r in data_rows(spec) if "pair" in r] == sorted(
        (e for e, _ in want), reverse=True
    )
    assert units(spec)[0]["encoding"]["y"]["sort"] is None and len(pairs) == 3
    assert spec["datasets"][units(spec)[2]["data"]["name"]] == [{"p": 0.5}]  # the no-difference line


# ---------------------------------------------------------------- input errors and conversion


def test_missing_columns_and_empty_frames_raise_chart_errors(frames3):
    with pytest.raises(ChartError, match=r"lacks column.*success_rate"):
        C.model_comparison_chart(frames3["model_metrics"].drop("success_rate"))
    with pytest.raises(ChartError, match="no rows"):
        C.efficiency_scatter_chart(frames3["summaries"].head(0))
    with pytest.raises(ChartError, match=r"No .* frame was given"):
        C.task_heatmap_chart(None)
    with pytest.raises(ChartError, match="Polars DataFrame"):
        C.cost_chart(frames3["model_metrics"].to_dicts())


def test_chart_values_are_plain_json():
    frame = pl.DataFrame(
        {
            "t": [dt.datetime(2026, 1, 2, 3, 4, 5)],
            "x": [float("nan")],
            "y": [float("inf")],
            "tasks": [["a", "b"]],
            "d": [dt.timedelta(seconds=90)],
            "model": [None],
        },
        schema_overrides={"model": pl.String},
    )
    (row,) = chart_values(frame)["values"]
    assert row == {"t": "2026-01-02T03:04:05", "x": None, "y": None, "tasks": "a;b", "d": 90.0, "model": None}


# ---------------------------------------------------------------- real metrics layer outputs


def test_real_metrics_outputs_feed_every_builder():
    from fle_core.stats import bootstrap, metrics

    f = contract_frames(4, trials=4)
    summaries = metrics.summarize_trajectories(
        f["steps"], {"iron_ore_throughput": 16.0, "iron_plate_throughput": 16.0}
    )
    gm = metrics.group_metrics(summaries)
    mm = metrics.model_metrics(summaries)
    real = dict(
        steps=f["steps"],
        summaries=summaries,
        group_metrics=gm,
        model_metrics=mm,
        interval_estimates=bootstrap.interval_estimates(summaries, reps=100, seed=1),
        pass_at_k_curve=bootstrap.pass_at_k_curve(summaries, (1, 2, 4), reps=100, seed=1),
        performance_profile=bootstrap.performance_profile(summaries, reps=100, seed=1),
        probability_of_improvement=bootstrap.probability_of_improvement(summaries, reps=100, seed=1),
    )
    pal = ModelPalette.from_frames(summaries)
    for name, build in all_builders(real, pal).items():
        if name == "cost" and mm["tokens_per_success"].is_null().all():
            continue
        spec = build().to_dict(validate=True)
        assert tooltip_fields(spec), name
    # values survive the trip into the spec
    spec = C.model_comparison_chart(mm).to_dict()
    assert {r["model"]: r["value"] for r in data_rows(spec)} == pytest.approx(
        dict(zip(mm["model"], mm["success_rate"], strict=True))
    )
    curve = real["pass_at_k_curve"]
    spec = C.pass_at_k_chart(curve).to_dict()
    assert (
        len(data_rows(spec)) == curve.filter(pl.col("estimate").is_not_null()).height
        or len(data_rows(spec)) == curve.height
    )
    outcomes = C.classify_outcomes(gm)
    assert (
        outcomes.filter(pl.col("outcome") == "full")["successes"]
        == outcomes.filter(pl.col("outcome") == "full")["n_scored"]
    ).all()


def test_charts_do_not_import_pandas():
    """Polars → Vega-Lite is explicit; the core chart path never loads pandas."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from _chart_frames import contract_frames\n"
        "from fle_core import charts as C\n"
        "f = contract_frames(2)\n"
        "for c in (C.pass_at_k_chart(f['pass_at_k_curve']), C.learning_curves_chart(f['steps']),\n"
        "          C.reward_distribution_chart(f['summaries']), C.task_heatmap_chart(f['group_metrics'])):\n"
        "    c.to_dict(validate=True)\n"
        "print('pandas' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
