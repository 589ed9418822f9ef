"""Chart rules a person notices, checked on specs (the browser test checks them as drawn).

Colours stable when a model is added, short labels that stay distinct, charts that
say what they leave out (P(improvement) pairs, pass@k k values), cost per success
against an independent computation.
"""

from __future__ import annotations

import polars as pl
import pytest
from layout_data import model_names

from fle_core import charts as C
from fle_core.charts.base import ModelPalette, short_labels, task_labels
from fle_core.stats import metrics
from pages._ui import notes


def _summ(models_starts: dict[str, str]) -> pl.DataFrame:
    rows = [{"model": m, "started_at": pl.Series([t]).str.to_datetime()[0]} for m, t in models_starts.items()]
    return pl.DataFrame(rows)


def test_adding_a_model_never_shifts_the_others_colours():
    before = ModelPalette.first_seen(_summ({"zeta": "2026-01-01", "alpha": "2026-01-02"}))
    # a later sweep adds a model whose name sorts first
    after = ModelPalette.first_seen(
        _summ({"zeta": "2026-01-01", "alpha": "2026-01-02", "aardvark": "2026-02-01"})
    )
    for m in ("zeta", "alpha"):
        assert after.colour(m) == before.colour(m) and after.shape(m) == before.shape(m)
    assert after.models == ("zeta", "alpha", "aardvark")
    # a chart showing only some models still takes their colours from the shared palette
    mm = pl.DataFrame(
        {"model": ["alpha"], "success_rate": [0.5], "success_ci_low": [0.1], "success_ci_high": [0.9]}
    )
    spec = C.model_comparison_chart(mm, palette=after).to_dict()
    colour = spec["layer"][0]["encoding"]["color"]["scale"]
    assert colour["domain"] == ["alpha"] and colour["range"] == [after.colour("alpha")]


def test_short_labels_are_short_distinct_and_keep_the_distinguishing_end():
    names = model_names(30)
    labels = short_labels(names)
    assert len(set(labels.values())) == 30  # no two models share a label
    assert all(len(v) <= 32 for v in labels.values())
    assert labels["deepseek-v3"] == "deepseek-v3"  # a short name is its own label
    long = "meta-llama/Llama-3.3-70B-Instruct-finetune-run-01"
    assert labels[long].endswith("run-01") and "…" in labels[long]
    # the label is a function of the name alone: the same whatever else is shown
    pal = ModelPalette.from_models(names, keep_order=True)
    assert pal.label(long) == labels[long] == short_labels([long])[long]
    assert task_labels(["iron_ore_throughput", "open_play"]) == {
        "iron_ore_throughput": "iron_ore",
        "open_play": "open_play",
    }


def _poi(n_models: int) -> pl.DataFrame:
    names = [f"m{i:02d}" for i in range(n_models)]
    rows = [
        {
            "model_x": a,
            "model_y": b,
            "estimate": 0.5 + (j - i) / (2 * n_models),
            "ci_low": 0.0,
            "ci_high": 1.0,
        }
        for i, a in enumerate(names)
        for j, b in enumerate(names)
        if i != j
    ]
    return pl.DataFrame(rows)


def test_probability_of_improvement_draws_each_pair_once_and_says_what_it_leaves_out():
    small = C.probability_of_improvement_chart(_poi(6)).to_dict()
    rows = [r for r in next(iter(small["datasets"].values())) if "pair" in r]
    assert len(rows) == 15 and all(r["estimate"] >= 0.5 for r in rows)  # 6·5/2 pairs, X the likelier winner
    big = C.probability_of_improvement_chart(_poi(30)).to_dict()
    rows = [r for r in next(iter(big["datasets"].values())) if "pair" in r]
    assert len(rows) == C.MAX_POI_PAIRS
    sub = " ".join(big["title"]["subtitle"])
    assert f"showing the {C.MAX_POI_PAIRS} of 435 pairs farthest from ½" in sub
    # the ones shown are the most decisive: none is closer to ½ than the 40th farthest pair
    fortieth = sorted(_poi(30)["estimate"].to_list(), reverse=True)[C.MAX_POI_PAIRS - 1]
    assert min(r["estimate"] for r in rows) == pytest.approx(fortieth)
    assert big["height"] == 20 * C.MAX_POI_PAIRS  # a readable row per pair


def _summaries(trials: dict[str, int]) -> pl.DataFrame:
    rows = []
    for task, n in trials.items():
        for i in range(n):
            for model in ("a", "b"):
                ok = (i + (model == "b")) % 2 == 0
                rows.append(
                    {
                        "model": model,
                        "task": task,
                        "success": ok,
                        "best_reward": 1.0 if ok else 0.0,
                        "total_tokens": 100 * (i + 1) if model == "a" else 50,
                    }
                )
    return pl.DataFrame(rows)


def test_pass_at_k_note_names_the_k_values_and_tasks_it_cannot_use():
    board = metrics.model_metrics(_summaries({"t1": 4, "t2": 2}), k_values=(1, 3, 5))
    note = notes.passk_coverage_note(board, [1, 3, 5])
    assert "k = 5 not shown" in note
    assert "k = 3 averages over fewer tasks: `t2` has fewer than 3 trials" in note
    assert notes.passk_coverage_note(board, [1]) is None


def test_cost_per_success_is_all_tokens_over_successes():
    summ = _summaries({"t1": 4, "t2": 2})
    got = {
        r["model"]: r["cost_per_success"]
        for r in metrics.model_metrics(summ, k_values=(1,)).iter_rows(named=True)
    }
    for model in ("a", "b"):
        mine = summ.filter(pl.col("model") == model)
        expected = mine["total_tokens"].sum() / mine["success"].sum()  # failed runs' tokens count
        assert got[model] == pytest.approx(expected)
    # it is not the mean tokens of the successful runs (the old "tokens per success")
    a = summ.filter(pl.col("model") == "a")
    assert got["a"] != pytest.approx(a.filter("success")["total_tokens"].mean())
    cells = metrics.group_metrics(summ, by=("model", "task"), k_values=(1,))
    row = cells.filter((pl.col("model") == "a") & (pl.col("task") == "t1")).row(0, named=True)
    t1 = a.filter(pl.col("task") == "t1")
    assert row["cost_per_success"] == pytest.approx(t1["total_tokens"].sum() / t1["success"].sum())
