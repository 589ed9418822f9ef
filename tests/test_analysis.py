"""The scripting API over a real DuckDB warehouse built in a temporary workspace.

Rows go straight into ``steps`` / ``sweep_attempts`` through ``warehouse.writer``
(no sync involved); results are checked against hand computation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import polars as pl
import pytest

from fle_core import warehouse
from fle_core.analysis import (
    DatabaseAnalyzer,
    PerformanceAnalyzer,
    PerformanceMetrics,
    load_steps,
    load_summaries,
)
from fle_core.errors import MetricError, WarehouseMissing
from fle_core.stats.metrics import pass_at_k
from fle_core.tasks import TaskRegistry

T0 = datetime(2026, 3, 1, 8, 0, 0)
COLS = (
    "source, id, version, instance, depth, value, model, task, sweep_id, error_occurred, "
    "production_score, simulated, prompt_tokens, completion_tokens, total_tokens, created_at, "
    "sync_id"
)


def _traj(
    source, version, model, task, values, *, sweep=None, sync_id=1, start=T0, instance=0, first_id=None
):
    """Rows for one trajectory; ids increase with depth (inserted in reverse to test ordering)."""
    base = first_id if first_id is not None else version * 100 + instance * 1000
    return [
        (
            source,
            base + d,
            version,
            instance,
            float(d),
            v,
            model,
            task,
            sweep,
            d == 1,
            None,
            False,
            100,
            20,
            120,
            start + timedelta(minutes=d),
            sync_id,
        )
        for d, v in enumerate(values)
    ][::-1]


@pytest.fixture
def ws(workspace):
    rows = []
    # gpt-4o: iron_ore 3 trials (2 successes), crude_oil 1 trial (success)
    rows += _traj("local", 1, "gpt-4o", "iron_ore_throughput", [1.0, 20.0, 4.0], sweep="sw1")
    rows += _traj("local", 2, "gpt-4o", "iron_ore_throughput", [16.0], sweep="sw1")
    rows += _traj("local", 3, "gpt-4o", "iron_ore_throughput", [2.0, 3.0], sweep="sw1")
    rows += _traj("local", 4, "gpt-4o", "crude_oil_throughput", [300.0], sweep="sw1")
    # claude: iron_ore 2 trials (0 successes), one step synced later (sync 2)
    rows += _traj("local", 5, "claude", "iron_ore_throughput", [5.0, 6.0], sweep="sw2")
    rows += _traj("local", 6, "claude", "iron_ore_throughput", [15.0], sweep="sw2", sync_id=2)
    # a failed attempt (superseded by version 8) and an attempt still running
    rows += _traj("local", 7, "claude", "iron_ore_throughput", [99.0], sweep="sw2")
    rows += _traj("local", 8, "claude", "iron_ore_throughput", [1.0], sweep="sw2")
    rows += _traj("local", 9, "claude", "iron_ore_throughput", [50.0], sweep="sw2")
    # another source, old data, a task key with an underscore-wildcard lookalike
    rows += _traj("prod", 101, "gpt-4o", "ironXore_throughput", [1.0], start=T0 - timedelta(days=30))
    with warehouse.writer(workspace) as con:
        con.executemany(f"INSERT INTO steps ({COLS}) VALUES ({', '.join('?' * 17)})", rows)
        con.executemany(
            "INSERT INTO sweep_attempts (source, version, sweep_id, status) VALUES (?, ?, ?, ?)",
            [
                ("local", 5, "sw2", "succeeded"),
                ("local", 6, "sw2", "succeeded"),
                ("local", 7, "sw2", "failed"),
                ("local", 8, "sw2", "succeeded"),
                ("local", 9, "sw2", "running"),
            ],
        )
    return workspace


def test_load_steps_contract_order_and_attempt_exclusion(ws):
    steps = load_steps(ws)
    assert steps.columns == [
        "source",
        "id",
        "version",
        "instance",
        "depth",
        "value",
        "model",
        "task",
        "sweep_id",
        "error_occurred",
        "production_score",
        "simulated",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "created_at",
        "config",
    ]
    runs = (
        steps.with_row_index("pos")
        .group_by("source", "version", "instance")
        .agg(pl.col("pos"), pl.col("depth"))
    )
    for pos, depth in runs.select("pos", "depth").iter_rows():  # the fast path's order
        assert pos == list(range(pos[0], pos[0] + len(pos))) and depth == sorted(depth)
    assert set(steps["version"].unique()) == {1, 2, 3, 4, 5, 6, 8, 101}  # 7 failed, 9 running
    with_failed = load_steps(ws, include_failed_attempts=True)
    assert {7, 9} <= set(with_failed["version"].unique())
    assert steps.height == 3 + 1 + 2 + 1 + 2 + 1 + 1 + 1


def test_load_steps_filters(ws):
    assert set(load_steps(ws, sources=["prod"])["source"]) == {"prod"}
    assert set(load_steps(ws, versions=[1, 4])["version"]) == {1, 4}
    assert set(load_steps(ws, models="claude")["version"]) == {5, 6, 8}
    assert set(load_steps(ws, tasks=["crude_oil_throughput"])["version"]) == {4}
    assert set(load_steps(ws, sweep_id="sw1")["version"]) == {1, 2, 3, 4}
    assert set(load_steps(ws, as_of_sync=1)["version"]) == {1, 2, 3, 4, 5, 8, 101}
    recent = load_steps(ws, since=T0 + timedelta(minutes=2))
    assert set(recent["version"]) == {1}  # any step since -> the whole trajectory
    aware = (T0 + timedelta(minutes=2)).replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert load_steps(ws, since=aware).equals(recent)
    assert load_steps(ws, versions=[1]).height == 3
    assert load_steps(ws, models=[]).height == 0


def test_task_pattern_is_literal_and_not_sql(ws):
    d = DatabaseAnalyzer(ws)
    assert set(d.get_results_by_model_and_task("gpt-4o", "iron_ore")["task"]) == {"iron_ore_throughput"}
    assert set(d.get_results_by_model_and_task("gpt-4o", "ore")["task"]) == {
        "iron_ore_throughput",
        "ironXore_throughput",
    }
    assert d.get_results_by_model_and_task("gpt-4o", "%").height == 0
    evil = "x'; DROP TABLE steps; --"
    assert d.get_results_by_model_and_task(evil, evil).height == 0
    assert load_steps(ws).height > 0  # table still there


def test_summaries_and_database_analyzer_by_hand(ws):
    d = DatabaseAnalyzer(ws)
    s = d.get_trajectory_summaries([1, 2, 3]).sort("version")
    assert s["success"].to_list() == [True, True, False]
    assert s["final_reward"].to_list() == [4.0, 16.0, 3.0]
    assert s["best_reward"].to_list() == [20.0, 16.0, 3.0]
    assert s["first_success_step"].to_list() == [1.0, 0.0, None]
    assert s["total_tokens"].to_list() == [360, 120, 240]
    assert s["duration_s"].to_list() == [120.0, 0.0, 60.0]
    by_sweep = d.get_trajectory_summaries_by_sweep("sw2")
    assert set(by_sweep["version"]) == {5, 6, 8}
    recent = d.get_recent_results(hours=1, now=T0 + timedelta(minutes=30))
    assert "prod" not in set(recent["source"]) and recent.height == 7
    with pytest.raises(MetricError):
        d.get_recent_results(hours=0)


def test_model_comparison_and_task_breakdown(ws):
    d = DatabaseAnalyzer(ws)
    cmp = d.get_model_comparison(["gpt-4o", "claude"], min_trajectories=1, k_values=(1, 2))
    gpt = cmp.filter(pl.col("model") == "gpt-4o").row(0, named=True)
    # gpt-4o: iron_ore 2/3 (local) + ironXore 0/1 unscored (unknown task) + crude_oil 1/1
    assert gpt["n"] == 5 and gpt["n_scored"] == 4 and gpt["successes"] == 3
    assert gpt["pass_at_1"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert gpt["pass_at_2"] == pytest.approx(pass_at_k(3, 2, 2))  # crude_oil lacks trials
    assert gpt["tasks_lacking_2"] == ["crude_oil_throughput"]
    claude = cmp.filter(pl.col("model") == "claude").row(0, named=True)
    assert claude["n"] == 3 and claude["successes"] == 0  # failed attempt 7 excluded
    assert d.get_model_comparison(min_trajectories=4)["model"].to_list() == ["gpt-4o"]
    tb = d.get_task_breakdown("gpt-4o")
    assert set(tb["task"]) == {"iron_ore_throughput", "crude_oil_throughput", "ironXore_throughput"}
    iron = tb.filter(pl.col("task") == "iron_ore_throughput").row(0, named=True)
    assert (iron["n"], iron["successes"], iron["pass_at_3"]) == (3, 2, 1.0)


def test_registry_overrides_from_workspace_config(ws):
    ws.config["tasks"] = {"iron_ore_throughput": {"quota": 18}}
    s = load_summaries(ws, versions=[1, 2]).sort("version")
    assert s["success"].to_list() == [True, False]
    strict = load_summaries(
        ws, versions=[1, 2], registry=TaskRegistry.from_config({"iron_ore_throughput": {"quota": 25}})
    )
    assert strict["success"].to_list() == [False, False]


def test_calculate_metrics_by_hand(ws):
    s = DatabaseAnalyzer(ws).get_trajectory_summaries([1, 2, 3, 4])
    m = PerformanceAnalyzer.calculate_metrics(s, k_values=[1, 3])
    assert isinstance(m, PerformanceMetrics)
    assert m.total_trajectories == 4 and m.successful_trajectories == 3
    assert m.success_rate == pytest.approx(0.75)
    assert m.pass_at_1 == pytest.approx((2 / 3 + 1.0) / 2)  # a probability, not a reward
    assert m.pass_at_k[3] == pytest.approx(1.0) and m.pass_at_k_tasks[3] == 1
    assert m.tasks_lacking_trials[3] == ["gpt-4o/crude_oil_throughput"]
    assert m.mean_reward == pytest.approx((20 + 16 + 3 + 300) / 4)
    assert m.max_reward == 300.0 and m.min_reward == 3.0
    assert m.tokens_per_success == pytest.approx((360 + 120 + 120) / 3)
    lo, hi = m.confidence_interval
    assert lo < 0.75 < hi
    final = PerformanceAnalyzer.calculate_metrics(s, reward_column="final_reward", success_threshold=4.0)
    assert final.success_rate == pytest.approx(3 / 4)  # 4, 16, 3, 300 >= 4
    assert final.success_definition == "final_reward >= 4"


def test_to_dict_keeps_zeros_and_pandas_input(ws):
    s = DatabaseAnalyzer(ws).get_trajectory_summaries([3, 5, 6])  # no successes at all
    m = PerformanceAnalyzer.calculate_metrics(s.to_pandas(), k_values=[1])
    d = m.to_dict()
    assert d["success_rate"] == 0.0 and d["pass_at_1"] == 0.0 and d["successful_trajectories"] == 0
    assert "tokens_per_success" in d and d["tokens_per_success"] is None
    assert isinstance(pd.DataFrame([d]), pd.DataFrame)
    with pytest.raises(MetricError):
        PerformanceAnalyzer.calculate_metrics(s.drop("success"))
    with pytest.raises(MetricError):
        PerformanceAnalyzer.calculate_metrics(s, reward_column="nope")


def test_comparison_helpers_wrap_compare(ws):
    s = load_summaries(ws)
    out = PerformanceAnalyzer.compare_models(s, "gpt-4o", "claude", reps=50)
    assert out["task"].to_list() == ["iron_ore_throughput", "ALL"]
    md = PerformanceAnalyzer.comparison_markdown(out)
    assert "| Metric | claude (n=3) | gpt-4o (n=3) | Change | p-value | Verdict |" in md
    assert PerformanceAnalyzer.trials_needed(0.2, 0.4) == 82


def test_missing_warehouse_is_a_clear_error(workspace):
    with pytest.raises(WarehouseMissing):
        DatabaseAnalyzer(workspace).get_trajectory_summaries([1])


def test_default_workspace_comes_from_environment(ws):
    """DatabaseAnalyzer() with no argument opens $FLE_CORE_HOME (set by the fixture)."""
    default = DatabaseAnalyzer().get_trajectory_summaries([1, 2])
    assert default.equals(DatabaseAnalyzer(ws).get_trajectory_summaries([1, 2]))
    assert DatabaseAnalyzer(str(ws.root)).get_trajectory_summaries([1]).height == 1


def test_loaded_steps_take_the_in_place_fast_path(ws):
    """load_steps' row order must satisfy the summaries' fast path (no re-sort)."""
    from fle_core.stats.metrics import _aggregate_runs, _conform_steps

    assert _aggregate_runs(_conform_steps(load_steps(ws, include_failed_attempts=True))) is not None


# ---------------------------------------------------------------- configs (grid permutations)
CFG_A = '{"prompt": "v2", "temperature": 0.2}'
CFG_B = '{"prompt": "v2", "temperature": 0.8}'


@pytest.fixture
def cfg_ws(workspace):
    """gpt-4o under two configs (A: 2/3 successes, B: 0/2), one attempt with empty params,
    a plain run, an odd trajectory (model varies) under config B, a failed attempt under A."""
    q = "iron_ore_throughput"  # quota 16
    rows = []
    rows += _traj("local", 1, "gpt-4o", q, [1.0, 20.0], sweep="sw")
    rows += _traj("local", 2, "gpt-4o", q, [16.0], sweep="sw")
    rows += _traj("local", 3, "gpt-4o", q, [2.0], sweep="sw")
    rows += _traj("local", 4, "gpt-4o", q, [5.0, 6.0], sweep="sw")
    rows += _traj("local", 5, "gpt-4o", q, [3.0], sweep="sw")
    rows[-1] = (*rows[-1][:6], "claude", *rows[-1][7:])  # odd: model varies
    rows += _traj("local", 5, "gpt-4o", q, [1.0, 2.0], sweep="sw", first_id=900)
    rows += _traj("local", 6, "gpt-4o", q, [30.0], sweep="sw")  # params "{}"
    rows += _traj("local", 7, "gpt-4o", q, [40.0])  # plain run
    rows += _traj("local", 8, "gpt-4o", q, [99.0], sweep="sw")  # failed attempt, config A
    attempts = [
        (1, CFG_A, "succeeded"),
        (2, CFG_A, "succeeded"),
        (3, CFG_A, "succeeded"),
        (4, CFG_B, "succeeded"),
        (5, CFG_B, "succeeded"),
        (6, "{}", "succeeded"),
        (8, CFG_A, "failed"),
    ]
    with warehouse.writer(workspace) as con:
        con.executemany(f"INSERT INTO steps ({COLS}) VALUES ({', '.join('?' * 17)})", rows)
        con.executemany(
            "INSERT INTO sweep_attempts (source, version, sweep_id, model, task, "
            "params_json, status) VALUES ('local', ?, 'sw', 'gpt-4o', ?, ?, ?)",
            [(v, q, p, s) for v, p, s in attempts],
        )
    return workspace


def test_summaries_carry_the_attempt_config(cfg_ws):
    s = load_summaries(cfg_ws)
    by_version = dict(zip(s["version"], s["config"], strict=True))
    assert by_version == {1: CFG_A, 2: CFG_A, 3: CFG_A, 4: CFG_B, 5: CFG_B, 6: None, 7: None}
    steps = load_steps(cfg_ws)
    assert steps.filter(pl.col("version") == 4)["config"].to_list() == [CFG_B, CFG_B]
    assert steps.filter(pl.col("version") == 7)["config"].to_list() == [None]


@pytest.mark.parametrize(
    "kwargs", [{}, {"configs": [CFG_B]}, {"include_failed_attempts": True}, {"success_threshold": 4.0}]
)
def test_sql_and_polars_summaries_agree_on_config(cfg_ws, kwargs):
    """Version 5 is odd (takes the Polars fallback); both paths give the same config."""
    from polars.testing import assert_frame_equal

    from fle_core.stats.metrics import summarize_trajectories

    kwargs = dict(kwargs)
    threshold = kwargs.pop("success_threshold", None)
    got = load_summaries(cfg_ws, success_threshold=threshold, **kwargs)
    want = summarize_trajectories(
        load_steps(cfg_ws, **kwargs), cfg_ws.task_registry(), success_threshold=threshold
    )
    assert got["config"].drop_nulls().len() > 0
    assert_frame_equal(got.drop("system"), want)  # load_summaries adds what ran (analysis.systems)


def test_configs_filter(cfg_ws):
    def versions(**kw):
        return sorted(load_summaries(cfg_ws, **kw)["version"].to_list())

    assert versions(configs=[CFG_A]) == [1, 2, 3]
    assert versions(configs=['{"temperature": 0.2, "prompt": "v2"}']) == [1, 2, 3]  # key order
    assert versions(configs=[CFG_A, CFG_B]) == [1, 2, 3, 4, 5]
    assert versions(configs=["(none)"]) == [6, 7] == versions(configs=[None])
    assert versions(configs=[CFG_B, "(none)"]) == [4, 5, 6, 7]
    assert versions(configs=["x'); DROP TABLE steps; --"]) == []
    assert versions(configs=[]) == []
    assert versions(configs=[CFG_A], include_failed_attempts=True) == [1, 2, 3, 8]
    assert sorted(load_steps(cfg_ws, configs=CFG_B)["version"].unique().to_list()) == [4, 5]
    assert versions() == [1, 2, 3, 4, 5, 6, 7]  # the table survived


def test_label_systems_compares_model_config_systems(cfg_ws):
    from fle_core.analysis import label_systems
    from fle_core.stats.metrics import model_metrics

    s = load_summaries(cfg_ws)
    labelled = label_systems(s)
    assert labelled.height == s.height and labelled["version"].to_list() == s["version"].to_list()
    names = dict(zip(labelled["version"], labelled["model"], strict=True))
    assert names[1] == "gpt-4o [prompt=v2, temperature=0.2]"
    assert names[4] == "gpt-4o [prompt=v2, temperature=0.8]"
    assert names[6] == names[7] == "gpt-4o"
    assert set(labelled["base_model"]) == {"gpt-4o"}
    board = {r["model"]: (r["successes"], r["n"]) for r in model_metrics(labelled).iter_rows(named=True)}
    # computed by hand from cfg_ws: A 20/16/2 -> 2 of 3; B 6, 3 -> 0 of 2; none 30, 40 -> 2 of 2
    assert board == {
        "gpt-4o [prompt=v2, temperature=0.2]": (2, 3),
        "gpt-4o [prompt=v2, temperature=0.8]": (0, 2),
        "gpt-4o": (2, 2),
    }
    again = label_systems(labelled.drop("model").rename({"base_model": "model"}))
    assert again.select(labelled.columns).equals(labelled)  # deterministic


def test_label_systems_keeps_labels_unique_and_validates():
    from fle_core.analysis import config_label, label_systems

    f = pl.DataFrame(
        {"model": ["m", "m", "m", None], "config": ['{"t": 1}', '{"t": "1"}', None, None], "x": [1, 2, 3, 4]}
    )
    out = label_systems(f)
    assert out["model"].to_list() == ['m [{"t": 1}]', 'm [{"t": "1"}]', "m", None]
    assert out["x"].to_list() == [1, 2, 3, 4]
    assert config_label('{"a": [1, 2], "b": true, "c": "x y"}') == "a=[1, 2], b=true, c=x y"
    assert config_label(None) == "(none)" and config_label("not json") == "not json"
    assert (
        label_systems(f.with_columns(sw=pl.lit("s1")), by=("model", "config", "sw"))["model"][2]
        == "m [sw=s1]"
    )
    with pytest.raises(MetricError, match="first"):
        label_systems(f, by=("config",))
    with pytest.raises(MetricError, match="lacks"):
        label_systems(f.drop("config"))
