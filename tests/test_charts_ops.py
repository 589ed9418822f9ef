"""Operational charts (charts.ops): sweep cell grid, pairwise comparison matrix, tokens per step.

Each spec is validated against the Vega-Lite schema; assertions are on the data
rows and encodings the browser gets. The comparison matrix is also fed the real
``compare.pairwise_comparisons`` output, and the cell grid the real
``sweeps.cells_frame`` of a sweep in a real SQLite control store.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import vl_convert as vlc
from _chart_frames import contract_frames, model_names, steps_frame
from chart_helpers import data_rows, title_text, tooltip_fields, units

from fle_core import charts as C
from fle_core.charts.base import SIMULATED_SUFFIX, ChartError
from fle_core.charts.ops import EXTRA_STATE_COLOURS, STATE_COLOURS, VERDICT_SYMBOLS

STATES = ["succeeded", "running", "pending", "failed", "early_stopped", "cancelled"]
CELL_SCHEMA = {
    "cell_id": pl.String,
    "sweep_id": pl.String,
    "model": pl.String,
    "task": pl.String,
    "env_id": pl.String,
    "params_json": pl.String,
    "trial": pl.Int64,
    "status": pl.String,
    "attempts": pl.Int64,
    "failures": pl.Int64,
    "version": pl.Int64,
    "last_outcome": pl.String,
    "last_error": pl.String,
    "updated_at": pl.Datetime("us", "UTC"),
}


def subtitle_text(spec: dict) -> str:
    """A chart's subtitle as one string (long subtitles are wrapped into a list of lines)."""
    sub = spec["title"]["subtitle"]
    return " ".join(sub) if isinstance(sub, list) else sub


def cells(models: int, tasks: int, trials: int, states=STATES, params=("{}",)) -> pl.DataFrame:
    """A ``cells_frame``-shaped frame; states cycle so every state appears."""
    rows, i = [], 0
    now = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
    for m in model_names(models):
        for t in range(tasks):
            for p in params:
                for trial in range(trials):
                    state = states[i % len(states)]
                    rows.append(
                        dict(
                            cell_id=f"c{i}",
                            sweep_id="sw",
                            model=m,
                            task=f"task_{t:02d}",
                            env_id=f"env_{t}",
                            params_json=p,
                            trial=trial,
                            status=state,
                            attempts=1 + i % 3,
                            failures=int(state == "failed"),
                            version=100 + i if state != "pending" else None,
                            last_outcome=state if state in ("succeeded", "failed") else None,
                            last_error=f"exit 1 in cell {i}" if state == "failed" else None,
                            updated_at=now,
                        )
                    )
                    i += 1
    return pl.DataFrame(rows, schema=CELL_SCHEMA)


def colour_scale(spec: dict, field: str) -> dict[str, str]:
    for u in units(spec):
        enc = u.get("encoding", {}).get("color", {})
        if enc.get("field") == field and "range" in enc.get("scale", {}):
            return dict(zip(enc["scale"]["domain"], enc["scale"]["range"], strict=True))
    raise AssertionError(f"no colour scale on {field}")


def by_pair(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["model_a"], r["model_b"]): r for r in rows}


# ---------------------------------------------------------------- sweep cells


def test_one_cell_grid_is_valid_and_carries_the_cell():
    frame = cells(1, 1, 1, states=["running"])
    spec = C.sweep_cells_chart(frame).to_dict(validate=True)
    (row,) = data_rows(spec)
    assert (row["model"], row["task"], row["trial"], row["state"]) == (
        "claude-3.5-sonnet",
        "task_00",
        0,
        "running",
    )
    assert row["row"] == "claude-3.5-sonnet · task_00"
    assert spec["encoding"]["x"]["field"] == "trial" and spec["encoding"]["y"]["field"] == "row"
    assert spec["height"] >= 20 and spec["width"] >= 160
    assert "1 cell: 1 running" in subtitle_text(spec)
    vlc.vegalite_to_svg(spec)  # renders


def test_state_colours_are_fixed_and_the_legend_lists_every_contract_state():
    spec = C.sweep_cells_chart(cells(2, 2, 3, states=["succeeded", "failed"])).to_dict(validate=True)
    scale = colour_scale(spec, "state")
    assert scale == STATE_COLOURS  # all six, in order, even though two are present
    assert scale == {
        "succeeded": "#009E73",
        "running": "#56B4E9",
        "pending": "#E5E5E5",  # docs/report.md
        "failed": "#D55E00",
        "early_stopped": "#F0E442",
        "cancelled": "#777777",
    }
    assert list(scale) == STATES
    assert len(set(scale.values())) == len(scale)  # distinct
    # each drawn cell keeps its own state
    states = {(r["model"], r["task"], r["trial"]): r["state"] for r in data_rows(spec)}
    assert set(states.values()) == {"succeeded", "failed"} and len(states) == 12


def test_unknown_states_get_their_own_colour_after_the_contract_states():
    frame = cells(1, 2, 4, states=["succeeded", "zombie", "lost", "failed"])
    scale = colour_scale(C.sweep_cells_chart(frame).to_dict(validate=True), "state")
    assert list(scale)[:6] == STATES and list(scale)[6:] == ["lost", "zombie"]
    assert scale["lost"] == EXTRA_STATE_COLOURS[0] and scale["zombie"] == EXTRA_STATE_COLOURS[1]


def test_cells_tooltip_names_model_task_trial_state_attempts_version_error():
    spec = C.sweep_cells_chart(cells(2, 2, 3)).to_dict(validate=True)
    assert {
        "model",
        "task",
        "trial",
        "state",
        "attempts",
        "failures",
        "version",
        "last_error",
    } <= tooltip_fields(spec)
    failed = [r for r in data_rows(spec) if r["state"] == "failed"]
    assert failed and all(r["last_error"].startswith("exit 1 in cell") for r in failed)
    assert all(r["updated_at"].startswith("2026-11-21T08:00:00") for r in data_rows(spec))


def test_cells_rows_include_params_only_when_the_sweep_has_them():
    plain = C.sweep_cells_chart(cells(1, 1, 2)).to_dict(validate=True)
    assert "params_json" not in tooltip_fields(plain)
    grid = cells(1, 1, 2, params=('{"temperature":0.0}', '{"temperature":0.7}'))
    spec = C.sweep_cells_chart(grid).to_dict(validate=True)
    labels = {r["row"] for r in data_rows(spec)}
    assert labels == {
        'claude-3.5-sonnet · task_00 · {"temperature":0.0}',
        'claude-3.5-sonnet · task_00 · {"temperature":0.7}',
    }
    assert "params_json" in tooltip_fields(spec)
    assert subtitle_text(spec).startswith("rows: model · task · params;")


def test_two_thousand_cells_stay_on_a_screen_with_every_cell_drawn():
    frame = cells(10, 20, 10)  # 200 rows × 10 trials
    spec = C.sweep_cells_chart(frame).to_dict(validate=True)
    rows = data_rows(spec)
    assert len(rows) == 2000
    assert len({(r["row"], r["trial"]) for r in rows}) == 2000  # no two cells share a rect
    assert spec["height"] <= 200 * 8 and spec["width"] <= 600
    assert [r["row"] for r in rows] == sorted(r["row"] for r in rows)  # data order = row order
    assert spec["encoding"]["y"]["sort"] is None
    counts = pl.DataFrame(rows).group_by("state").len()
    for state, n in counts.iter_rows():
        assert f"{n} {state.replace('_', ' ')}" in subtitle_text(spec)


def test_cells_bad_input_raises_chart_error():
    with pytest.raises(ChartError, match="lacks column"):
        C.sweep_cells_chart(cells(1, 1, 1).drop("status"))
    with pytest.raises(ChartError, match="no rows"):
        C.sweep_cells_chart(cells(1, 1, 1).head(0))


def test_cells_of_a_real_sweep(workspace):
    """cells_frame of a launched (not yet run) sweep with a parameter grid, real SQLite store."""
    from fle_core import sweeps
    from fle_core.sweeps.config import SweepConfig

    sid = sweeps.launch(
        workspace,
        SweepConfig(
            name="grid",
            models=["gpt-4o (simulated)", "llama (simulated)"],
            tasks=["iron_ore_throughput"],
            num_trials_per_config=3,
            grid={"temperature": [0.0, 0.7]},
        ),
    )
    frame = sweeps.cells_frame(workspace, sid)
    spec = C.sweep_cells_chart(frame).to_dict(validate=True)
    rows = data_rows(spec)
    assert len(rows) == frame.height == 12
    assert len({r["row"] for r in rows}) == 4  # model × task × params
    assert len({(r["row"], r["trial"]) for r in rows}) == 12
    assert {(r["model"], r["trial"]) for r in rows} == set(zip(frame["model"], frame["trial"], strict=True))
    assert {r["state"] for r in rows} == set(frame["status"])


# ---------------------------------------------------------------- comparison matrix


@pytest.fixture(scope="module")
def real_comparisons():
    from fle_core.stats import compare, metrics

    f = contract_frames(4, trials=6)
    s = metrics.summarize_trajectories(
        f["steps"], {"iron_ore_throughput": 16.0, "iron_plate_throughput": 16.0}
    )
    return compare.pairwise_comparisons(s, reps=200, seed=1)


def test_matrix_diffs_equal_the_input_and_mirror_exactly(real_comparisons):
    spec = C.comparison_matrix_chart(real_comparisons).to_dict(validate=True)
    drawn = by_pair(data_rows(spec))
    every = real_comparisons.filter(pl.col("task") == "ALL")
    models = sorted(set(every["model_a"]) | set(every["model_b"]))
    assert len(drawn) == len(models) * (len(models) - 1)  # every ordered pair, no diagonal
    for r in every.iter_rows(named=True):
        fwd, back = drawn[(r["model_a"], r["model_b"])], drawn[(r["model_b"], r["model_a"])]
        for col in ("diff", "diff_ci_low", "diff_ci_high", "p_value", "p_adjusted", "prob_improvement"):
            assert fwd[col] == pytest.approx(r[col]), col
        assert (fwd["a_n"], fwd["b_n"]) == (r["a_n"], r["b_n"])
        assert back["diff"] == pytest.approx(-r["diff"])
        assert (back["diff_ci_low"], back["diff_ci_high"]) == pytest.approx(
            (-r["diff_ci_high"], -r["diff_ci_low"])
        )
        assert back["prob_improvement"] == pytest.approx(1 - r["prob_improvement"])
        assert back["p_adjusted"] == pytest.approx(r["p_adjusted"])
        assert fwd["symbol"] == VERDICT_SYMBOLS[r["verdict"]]
        assert back["correction"] == r["correction"] == "holm"


def test_matrix_encodings_diverge_around_zero_and_tooltips_carry_the_test(real_comparisons):
    spec = C.comparison_matrix_chart(real_comparisons).to_dict(validate=True)
    cells = [u for u in units(spec) if u["encoding"].get("color", {}).get("field") == "diff"]
    (cell,) = cells
    scale = cell["encoding"]["color"]["scale"]
    assert scale["domainMid"] == 0 and scale["domain"][0] == -scale["domain"][1]
    top = real_comparisons.filter(pl.col("task") == "ALL")["diff"].abs().max()
    assert scale["domain"][1] == pytest.approx(top)
    assert (
        cell["encoding"]["x"]["field"] == "model_b_label"
        and cell["encoding"]["y"]["field"] == "model_a_label"
    )
    assert {
        "diff",
        "diff_ci_low",
        "diff_ci_high",
        "p_value",
        "p_adjusted",
        "correction",
        "prob_improvement",
        "a_n",
        "b_n",
        "verdict",
    } <= tooltip_fields(spec)
    texts = [u for u in units(spec) if u["mark"]["type"] == "text"]
    assert any(u["encoding"]["text"]["field"] == "symbol" for u in texts)


def _comparison(a, b, diff, verdict, p=0.01, task="ALL", poi=0.7):
    return dict(
        model_a=a,
        model_b=b,
        task=task,
        metric="success",
        a_mean=0.5,
        a_std=0.5,
        a_n=20,
        b_mean=0.5 - diff,
        b_std=0.5,
        b_n=24,
        diff=diff,
        diff_ci_low=diff - 0.1,
        diff_ci_high=diff + 0.1,
        change_pct=None,
        effect_size=None,
        effect_name="Cohen's h",
        test="cmh",
        p_value=p / 2,
        p_adjusted=p,
        correction="bh",
        prob_improvement=poi,
        verdict=verdict,
    )


def test_matrix_symbol_per_verdict_and_flipped_verdict_on_the_mirror():
    frame = pl.DataFrame(
        [
            _comparison("a", "b", 0.3, "significantly better"),
            _comparison("a", "c", -0.4, "significantly worse"),
            _comparison("b", "c", 0.05, "no significant difference", p=0.6),
            _comparison("a", "b", 0.9, "significantly better", task="t1"),
        ]
    )
    spec = C.comparison_matrix_chart(frame).to_dict(validate=True)
    drawn = by_pair(data_rows(spec))
    assert drawn[("a", "b")]["symbol"] == "▲" and drawn[("b", "a")]["symbol"] == "▼"
    assert drawn[("a", "c")]["symbol"] == "▼" and drawn[("c", "a")]["symbol"] == "▲"
    assert drawn[("b", "c")]["symbol"] == drawn[("c", "b")]["symbol"] == "·"
    assert drawn[("c", "a")]["verdict"] == "significantly better"
    assert drawn[("a", "b")]["diff"] == pytest.approx(0.3)  # the ALL row, not the per-task 0.9
    assert drawn[("b", "a")]["a_n"] == 24 and drawn[("b", "a")]["b_n"] == 20
    assert "bh-adjusted" in subtitle_text(spec)


def test_matrix_missing_pairs_are_drawn_as_not_compared():
    """Baseline mode: only (m, base) pairs exist; m1 vs m2 is a grey 'not compared' cell."""
    frame = pl.DataFrame(
        [
            _comparison("x", "base", 0.2, "significantly better"),
            _comparison("y", "base", -0.1, "no significant difference", p=0.4),
        ]
    )
    spec = C.comparison_matrix_chart(frame).to_dict(validate=True)
    gaps = {}
    for u in units(spec):
        rows = data_rows(u, spec.get("datasets"))
        if rows and "reason" in rows[0]:
            gaps = {(r["model_a"], r["model_b"]): r["reason"] for r in rows}
    assert gaps[("x", "y")] == gaps[("y", "x")] == "not compared"
    assert {gaps[(m, m)] for m in ("x", "y", "base")} == {"same model"}
    assert set(by_pair(data_rows(spec))) == {("x", "base"), ("y", "base"), ("base", "x"), ("base", "y")}
    # without mirroring: rows are A models, columns B models, nothing invented
    plain = C.comparison_matrix_chart(frame, mirror=False).to_dict(validate=True)
    assert set(by_pair(data_rows(plain))) == {("x", "base"), ("y", "base")}


def test_matrix_for_one_pair_and_for_thirty_models():
    one = C.comparison_matrix_chart(
        pl.DataFrame([_comparison("a", "b", 0.0, "no significant difference", p=1.0)])
    ).to_dict(validate=True)
    assert len(data_rows(one)) == 2
    scale = next(u for u in units(one) if u["encoding"].get("color", {}).get("field") == "diff")
    assert scale["encoding"]["color"]["scale"]["domain"] == [-1.0, 1.0]  # all-zero diffs: unit domain
    names = model_names(30)
    many = pl.DataFrame(
        [
            _comparison(a, b, 0.01 * (j - i), "no significant difference", p=0.5)
            for i, a in enumerate(names)
            for j, b in enumerate(names)
            if i < j
        ]
    )
    spec = C.comparison_matrix_chart(many).to_dict(validate=True)
    assert len(data_rows(spec)) == 30 * 29
    # 18 px cells at 30 models: the matrix and its labels fit a 1400 px window
    assert spec["width"] == spec["height"] == 30 * 18
    vlc.vegalite_to_svg(spec)


def test_matrix_null_diff_and_bad_input():
    frame = pl.DataFrame([_comparison("a", "b", 0.2, "significantly better")]).with_columns(
        pl.lit(None, pl.Float64).alias("diff")
    )
    spec = C.comparison_matrix_chart(frame).to_dict(validate=True)
    assert {r["diff"] for r in data_rows(spec)} == {None}
    with pytest.raises(ChartError, match="task = 'ALL'"):
        C.comparison_matrix_chart(
            pl.DataFrame([_comparison("a", "b", 0.2, "significantly better", task="t1")])
        )
    with pytest.raises(ChartError, match="lacks column"):
        C.comparison_matrix_chart(pl.DataFrame([_comparison("a", "b", 0.2, "x")]).drop("verdict"))


# ---------------------------------------------------------------- tokens per step


def one_trajectory(depth: int = 6, simulated: bool = False) -> pl.DataFrame:
    steps = steps_frame(["gpt-4o"], ["iron_ore_throughput"], trials=1, depth=depth, simulated=simulated)
    return steps.with_columns((pl.col("depth") * 7).cast(pl.Int64).alias("completion_tokens"))


def test_tokens_per_step_data_equal_the_steps():
    steps = one_trajectory()
    spec = C.step_tokens_chart(steps).to_dict(validate=True)
    got = {(r["kind"], r["step"]): r["tokens"] for r in data_rows(spec)}
    want = {("prompt", d): p for d, p in zip(steps["depth"], steps["prompt_tokens"], strict=True)}
    want |= {("completion", d): c for d, c in zip(steps["depth"], steps["completion_tokens"], strict=True)}
    assert got == want
    assert spec["encoding"]["x"]["field"] == "step" and spec["encoding"]["y"]["stack"] == "zero"
    assert colour_scale(spec, "kind") == {"prompt": "#0072B2", "completion": "#E69F00"}
    assert {"step", "kind", "prompt_tokens", "completion_tokens", "step_total"} <= tooltip_fields(spec)
    total = int(steps["prompt_tokens"].sum() + steps["completion_tokens"].sum())
    assert f"{total:,} tokens" in subtitle_text(spec)
    assert spec["encoding"]["y"]["title"] == "Tokens per step (tokens)"


def test_tokens_one_step_many_steps_and_simulated_title():
    one = C.step_tokens_chart(one_trajectory(depth=1)).to_dict(validate=True)
    assert len(data_rows(one)) == 2
    many = C.step_tokens_chart(one_trajectory(depth=300, simulated=True)).to_dict(validate=True)
    assert len(data_rows(many)) == 600 and many["width"] <= 520
    assert title_text(many).endswith(SIMULATED_SUFFIX) and not title_text(one).endswith(SIMULATED_SUFFIX)


def test_tokens_missing_counts_and_bad_input():
    steps = one_trajectory(depth=4).with_columns(
        pl.when(pl.col("depth") == 2).then(None).otherwise(pl.col("prompt_tokens")).alias("prompt_tokens")
    )
    rows = data_rows(C.step_tokens_chart(steps).to_dict(validate=True))
    assert ("prompt", 2.0) not in {(r["kind"], r["step"]) for r in rows}  # unknown: no bar, not 0
    assert ("completion", 2.0) in {(r["kind"], r["step"]) for r in rows}
    only_prompt = C.step_tokens_chart(one_trajectory().drop("completion_tokens")).to_dict(validate=True)
    assert {r["kind"] for r in data_rows(only_prompt)} == {"prompt"}
    with pytest.raises(ChartError, match="no step of this trajectory has token counts".capitalize()):
        C.step_tokens_chart(
            one_trajectory().with_columns(
                pl.lit(None, pl.Int64).alias("prompt_tokens"),
                pl.lit(None, pl.Int64).alias("completion_tokens"),
            )
        )
    with pytest.raises(ChartError, match="one trajectory"):
        C.step_tokens_chart(steps_frame(["gpt-4o"], ["iron_ore_throughput"], trials=2))
    with pytest.raises(ChartError, match="lacks column"):
        C.step_tokens_chart(one_trajectory().drop("prompt_tokens", "completion_tokens"))
