"""One rule for names, and a trajectory picker whose options tell runs apart.

* ``fle_core.names``: the short form of a task (``_throughput`` dropped) and of a model
  (head…tail past 32 characters), the same in charts, tables, filters and pickers;
  the full names stay in tooltips, the URL and exports.
* The Trajectories picker shows the epoch, the outcome and the best reward first (a
  narrow sidebar cuts the rest), in a fixed order (newest run first, its epochs in
  order).
"""

from __future__ import annotations

import polars as pl
import pytest
from app_helpers import assert_clean, chart_rows, run_page

from fle_core import names
from fle_core.charts.base import ModelPalette, task_labels
from pages import _ui
from pages._ui import labels

LONG = "meta-llama/Llama-3.3-70B-Instruct-finetune-run-02"


def test_one_short_form_per_name():
    assert names.short_task("iron_ore_throughput") == "iron_ore"
    assert names.short_task("open_play") == "open_play"
    assert names.short_task("_throughput") == "_throughput"
    assert names.short_model("gpt-4o") == "gpt-4o"
    short = names.short_model(LONG)
    assert (
        len(short) == names.LABEL_CHARS and short.startswith("meta-llama/Llam") and short.endswith("run-02")
    )
    # the charts use the same rule under their old names
    assert ModelPalette.from_models([LONG]).label(LONG) == short
    assert task_labels(["iron_ore_throughput"]) == {"iron_ore_throughput": "iron_ore"}
    # where two names of a view would read the same, they keep their full text
    assert names.task_labels(["iron_ore", "iron_ore_throughput"]) == {
        "iron_ore": "iron_ore",
        "iron_ore_throughput": "iron_ore_throughput",
    }


def test_tables_show_short_names_and_keep_other_columns():
    frame = pl.DataFrame(
        {"model": [LONG, "gpt-4o"], "task": ["iron_ore_throughput", "open_play"], "n": [3, 4]}
    )
    shown = labels.short_names(frame)
    assert shown["model"].to_list() == [names.short_model(LONG), "gpt-4o"]
    assert shown["task"].to_list() == ["iron_ore", "open_play"]
    assert shown["n"].to_list() == [3, 4]


def _summaries(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["source", "version", "instance", "model", "task", "success", "best_reward"],
        orient="row",
    )


def test_picker_labels_lead_with_epoch_outcome_and_best_reward_in_a_fixed_order():
    """The case of the issue: six epochs of one Inspect log read alike for their first
    60 characters, the sidebar cut them, and they came in the order 6, 5, 4, 2, 3, 1."""
    model, task = "mockllm/claude-3-5-sonnet", "iron_gear_wheel_throughput"
    rows = [("inspect", 1972792716567867, e, model, task, e % 2 == 0, 20.0 + e) for e in (6, 5, 4, 2, 3, 1)]
    rows.append(("inspect", 17, 0, "gpt-4o", "open_play", None, 3.0))
    got = _ui.trajectory_labels(_summaries(rows))
    keys = list(got)
    assert keys == [f"inspect:1972792716567867:{e}" for e in (1, 2, 3, 4, 5, 6)] + ["inspect:17:0"]
    assert got["inspect:1972792716567867:2"].startswith("#2 ✓ best 22.00 · mockllm/claude-3-5-sonnet")
    assert got["inspect:1972792716567867:3"].startswith("#3 ✗ best 23.00 · ")
    assert " · iron_gear_wheel · v1972792716567867" in got["inspect:1972792716567867:3"]
    assert got["inspect:17:0"] == "#0 best 3.00 · gpt-4o · open_play · v17"  # no quota: no mark
    # what a ~20-character sidebar shows still tells every option apart
    assert len({label[:16] for label in got.values()}) == len(got)


@pytest.mark.usefixtures("populated")
def test_difficulty_table_and_chart_name_tasks_alike():
    at = run_page("tasks", {"tsk_tab": "Difficulty ranking"})
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "ci_95" in d.value.columns)
    _, passes = chart_rows(at, "Passes per task")
    assert set(table["task"].dropna()) == set(passes["task_label"]), (
        "the table and the chart below it disagree"
    )
    assert "iron_ore" in set(table["task"]) and not any(
        t.endswith("_throughput") for t in table["task"].dropna()
    )


@pytest.mark.usefixtures("populated")
def test_filters_show_short_names_and_the_url_keeps_full_ones():
    at = run_page("compare", {"cmp_task": "iron_ore_throughput"})
    assert_clean(at)
    box = next(m for m in at.multiselect if m.key == "cmp_task")
    assert box.value == ["iron_ore_throughput"]
    assert box.format_func("iron_ore_throughput") == "iron_ore"
    assert at.query_params["cmp_task"] == "iron_ore_throughput"


@pytest.mark.usefixtures("populated")
def test_a_page_keeps_its_view_when_you_come_back_to_it_in_the_same_session():
    """Page switches stay in one session (st.navigation): Compare → Tasks → Compare shows the
    filters and tab Compare had, though the switch cleared the URL, as the sidebar's links do."""
    at = run_page("compare", {"cmp_model": ["gpt-4o", "llama-3.3-70b"], "cmp_tab": "pass@k"})
    assert_clean(at)
    assert at.multiselect(key="cmp_model").value == ["gpt-4o", "llama-3.3-70b"]
    at.switch_page("pages/tasks.py")
    at.query_params.clear()  # what a page switch does to the URL
    at.run()
    assert_clean(at)
    assert "cmp_model" not in at.query_params
    at.multiselect(key="tsk_model").set_value(["gpt-4o"]).run()
    at.switch_page("pages/compare.py")
    at.query_params.clear()
    at.run()
    assert_clean(at)
    assert at.multiselect(key="cmp_model").value == ["gpt-4o", "llama-3.3-70b"]
    assert at.query_params.get("cmp_tab") == "pass@k"
    at.switch_page("pages/tasks.py")
    at.query_params.clear()
    at.run()
    assert at.multiselect(key="tsk_model").value == ["gpt-4o"]


def test_a_system_label_keeps_its_params():
    label = "meta-llama/Llama-3.3-70B-Instruct-finetune-run-02 [prompt=v2, temperature=0.2]"
    assert names.short_model(label) == names.short_model(LONG) + " [prompt=v2, temperature=0.2]"
    assert names.short_model("gpt-4o [prompt=v2, temperature=0.2]") == "gpt-4o [prompt=v2, temperature=0.2]"
