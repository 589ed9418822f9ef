"""AppTest for every page: empty workspace, populated workspace, bad query parameters.

The populated workspace is built with real parts: an FLE SQLite source written by
``tests/fixtures_fle.py`` and synced with ``fle_core.warehouse.sync.sync`` into a real
DuckDB warehouse. Assertions are on content (leaderboard values against an
independent computation from the warehouse, empty-state text, warnings).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_helpers import APP, ROOT, assert_clean, chart_rows, run_page, texts
from streamlit.testing.v1 import AppTest

from fle_core.names import short_task


# ---------------------------------------------------------------- empty workspace
@pytest.fixture
def empty_ws(workspace, monkeypatch):
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    return workspace


@pytest.mark.parametrize("page", ["compare", "tasks", "trajectories"])
def test_analysis_pages_on_empty_workspace_say_what_to_do(empty_ws, page):
    at = run_page(page)
    assert_clean(at)
    body = texts(at)
    assert "Sync a source on **Sources & sync**" in body or "Sources & sync" in body
    assert "demo sweep" in body


def test_sources_on_empty_workspace_lists_local_and_offers_sync(empty_ws):
    at = run_page("sources")
    assert_clean(at)
    table = at.dataframe[0].value
    assert "local" in list(table["source"])
    assert any(b.label == "Sync now" for b in at.button)
    assert "Nothing has been synced into this workspace yet" in texts(at)


# ---------------------------------------------------------------- populated workspace
# ``populated_root`` (session-scoped) and ``populated`` are in conftest.py.


def test_sources_populated_shows_history_and_flagged_rows(populated):
    at = run_page("sources")
    assert_clean(at)
    frames = [d.value for d in at.dataframe]
    history = next(f for f in frames if "watermark_after" in f.columns)
    assert list(history["status"]) == ["ok"]
    from fle_core import warehouse

    n_steps = warehouse.query(populated, "SELECT count(*) AS n FROM steps")["n"][0]
    assert int(history["rows_added"].iloc[0]) == n_steps
    flagged = next(f for f in frames if "parse_flags" in f.columns)
    flags = set(",".join(flagged["parse_flags"]).split(","))
    assert {"malformed_meta", "unparsed_task"} <= flags


def test_sources_sync_now_runs_a_real_incremental_sync(populated_root, tmp_path, monkeypatch):
    """Sync now on a copy of the populated workspace picks up rows added to the source."""
    import shutil

    import fixtures_fle as fx

    from fle_core import warehouse
    from fle_core.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(populated_root, root)
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    ws = Workspace.open(root)
    before = warehouse.data_version(ws)
    fx.insert_sqlite(ws.local_source_path, fx.make_rows(2, seed=9, first_version=7000, max_steps=5))
    at = run_page("sources")
    next(b for b in at.button if b.label == "Sync now").click().run()
    assert_clean(at)
    assert warehouse.data_version(ws) == before + 1
    labels = [s.label for s in at.status]
    assert any(label.startswith("Synced `local`: +") and " rows (watermark " in label for label in labels), (
        labels
    )


@pytest.mark.parametrize("params", [{"src_source": "no-such-source"}])
def test_sources_bad_params_warn(populated, params):
    at = run_page("sources", params)
    assert_clean(at)
    assert any("src_source=no-such-source" in w.value for w in at.warning)


# ---------------------------------------------------------------- sweeps and monitor
def test_sweeps_preview_and_launch_from_the_form(empty_ws):
    from fle_core import sweeps

    at = run_page("sweeps")
    assert_clean(at)
    assert any("**12 jobs**: 3 models × 2 tasks × 1 grid permutation × 2 trials" in i.value for i in at.info)
    assert "No sweeps yet." in texts(at)
    at.text_input(key="new_name").set_value("ui-sweep")
    at.number_input(key="new_trials").set_value(3)
    at.checkbox(key="new_runner").uncheck()
    at.run()
    assert any("**18 jobs**" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Launch sweep").click().run()
    assert_clean(at)
    sweeps = sweeps.list_sweeps(empty_ws)
    assert sweeps["name"].to_list() == ["ui-sweep"] and sweeps["total"].to_list() == [18]
    assert any(f"Launched `{sweeps['sweep_id'][0]}`" in s.value for s in at.success)
    listed = next(d.value for d in at.dataframe if "sweep_id" in d.value.columns)
    assert list(listed["sweep_id"]) == sweeps["sweep_id"].to_list()
    # executor and source sit under the picker, so the table fits the column
    assert "executor" not in listed.columns
    assert any("Executor simulate · writes to source local" in c.value for c in at.caption)


def test_sweeps_bad_grid_is_a_clear_error_and_nothing_launches(empty_ws):
    at = run_page("sweeps")
    at.text_area(key="new_grid").set_value("temperature = ").run()
    assert_clean(at)
    assert any("not valid TOML" in e.value for e in at.error)
    assert not [b for b in at.button if b.label == "Launch sweep"]


def test_sweeps_bad_param_warns(empty_ws):
    from fle_core import sweeps
    from fle_core.sweeps import config as sweep_config

    sweep_id = sweeps.launch(empty_ws, sweep_config.demo_config())
    at = run_page("sweeps", {"swp_sweep": "no-such-sweep"})
    assert_clean(at)
    assert any("swp_sweep=no-such-sweep" in w.value for w in at.warning)
    assert at.selectbox(key="swp_sweep").value == sweep_id


@pytest.fixture(scope="module")
def ran_sweep(tmp_path_factory):
    """A sweep with 2 good cells and 1 always-crashing cell, run by a real runner process."""
    import subprocess
    import sys

    from fle_core import sweeps
    from fle_core.sweeps.config import SweepConfig
    from fle_core.workspace import Workspace

    root = tmp_path_factory.mktemp("ran") / "ws"
    ws = Workspace.open(root)
    ws.config = {
        "executors": {"crashy": {"kind": "simulate", "crash_rate": 1.0, "steps": 4, "step_delay": 0.0}}
    }
    ws.save_config()
    ok = sweeps.launch(
        ws,
        SweepConfig(
            name="ok",
            models=["gpt-4o (simulated)", "gpt-4o-mini (simulated)"],
            tasks=["iron_ore_throughput"],
            executor="simulate-fast",
            max_retries=0,
        ),
    )
    bad = sweeps.launch(
        ws,
        SweepConfig(
            name="bad",
            models=["llama (simulated)"],
            tasks=["iron_ore_throughput"],
            executor="crashy",
            max_retries=0,
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(root), "runner", "--once"],
        check=True,
        timeout=120,
        capture_output=True,
        env={**__import__("os").environ, "FLE_CORE_HOME": str(root)},
    )
    return root, ok, bad


def test_monitor_shows_finished_sweep_grid_and_progress(ran_sweep, monkeypatch):
    root, ok, _ = ran_sweep
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    at = run_page("monitor", {"mon_sweep": ok})
    assert_clean(at)
    progress = at.get("progress")[0].proto
    assert progress.value == 100 and "2/2 cells ran (2 succeeded)" in progress.text
    spec, grid = chart_rows(at, "Sweep cells by state")
    assert sorted(grid["model"].to_list()) == ["gpt-4o (simulated)", "gpt-4o-mini (simulated)"]
    assert set(grid["task"]) == {"iron_ore_throughput"}
    assert grid["trial"].to_list() == [0, 0] and set(grid["state"]) == {"succeeded"}
    assert (grid["attempts"] >= 1).all()
    assert spec["encoding"]["color"]["field"] == "state"
    assert "No failed attempts." in texts(at)


def test_monitor_shows_failures_with_log_tail(ran_sweep, monkeypatch):
    root, _, bad = ran_sweep
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    at = run_page("monitor", {"mon_sweep": bad})
    assert_clean(at)
    assert "Failures (1)" in texts(at)
    assert [e.label for e in at.expander if e.label.startswith("llama (simulated)")]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics.get("Failed") == "1"
    _, grid = chart_rows(at, "Sweep cells by state")  # the failed cell is in the grid with its error
    (cell,) = grid.iter_rows(named=True)
    assert cell["state"] == "failed" and cell["model"] == "llama (simulated)"
    assert cell["last_error"], cell


def test_monitor_bad_params_warn_and_fall_back(ran_sweep, monkeypatch):
    root, _, _ = ran_sweep
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    at = run_page("monitor", {"mon_sweep": "nope", "mon_every": "abc"})
    assert_clean(at)
    warned = " ".join(w.value for w in at.warning)
    assert "mon_sweep=nope" in warned and "mon_every=abc" in warned
    assert at.get("progress")


def test_sweeps_offers_only_the_actions_a_sweep_can_take(ran_sweep, monkeypatch):
    """A completed sweep offers no Resume, Pause or Cancel; one with a failed cell offers
    Retry failed only; the Monitor offers neither Pause nor Resume for them."""
    root, ok, bad = ran_sweep
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    offered = {}
    for sweep_id in (ok, bad):
        at = run_page("sweeps", {"swp_sweep": sweep_id})
        assert_clean(at)
        offered[sweep_id] = sorted(b.label for b in at.button if b.key and b.key.startswith("op_"))
        mon = run_page("monitor", {"mon_sweep": sweep_id, "mon_live": "0"})
        assert not [b.label for b in mon.button if b.label in ("Pause", "Resume")]
    assert offered == {ok: [], bad: ["Retry failed"]}
    assert "Nothing to do: the sweep is completed." in texts(run_page("sweeps", {"swp_sweep": ok}))


def test_monitor_empty_workspace(empty_ws):
    at = run_page("monitor")
    assert_clean(at)
    assert "No sweeps to monitor." in texts(at)


def test_read_only_hides_every_action(empty_ws, monkeypatch):
    from fle_core import sweeps
    from fle_core.sweeps import config as sweep_config

    sweeps.launch(empty_ws, sweep_config.demo_config())
    monkeypatch.setenv("FLE_READ_ONLY", "1")
    labels = set()
    for page in ("overview", "sources", "sweeps"):
        at = run_page(page)
        assert_clean(at)
        assert "Read-only mode" in texts(at)
        labels |= {b.label for b in at.button}
    assert not labels & {
        "Run a simulated demo sweep",
        "Sync now",
        "Launch sweep",
        "Resume",
        "Retry failed",
        "Pause",
        "Cancel…",
    }


# ---------------------------------------------------------------- analysis pages, populated
def _expected_success(ws) -> dict[str, tuple[int, int]]:
    """Independent of fle_core.stats.metrics: per model (successes, scored) from raw warehouse steps."""
    from fle_core import warehouse

    raw = warehouse.query(
        ws,
        "SELECT source, version, instance, any_value(model) AS model, "
        "any_value(task) AS task, max(value) AS best FROM steps GROUP BY ALL",
    )
    reg = ws.task_registry()
    out: dict[str, list[int]] = {}
    for row in raw.iter_rows(named=True):
        quota = reg.quota(row["task"])
        if quota is None or row["model"] is None:
            continue
        hit = out.setdefault(row["model"], [0, 0])
        hit[0] += int(row["best"] is not None and row["best"] >= quota)
        hit[1] += 1
    return {m: (s, n) for m, (s, n) in out.items()}


def _solved(row) -> tuple[int, int]:
    """The leaderboard's "Solved" text, ``successes / scored trials``, as two numbers."""
    succ, scored = row["solved"].split(" / ")
    return int(succ), int(scored)


def _board(at: AppTest):
    return next(d.value for d in at.dataframe if "ci_95" in d.value.columns)


def test_overview_populated_contents_and_leaderboard(populated):
    """Real and simulated data: the leaderboard leaves the simulated models out by default
    and has them back, badged, with the switch on (``ov_sim=1``)."""
    from fle_core import warehouse

    n_steps = warehouse.query(populated, "SELECT count(*) AS n FROM steps")["n"][0]
    simulated = {"gpt-4o (simulated)", "gpt-4o-mini (simulated)"}
    expected = _expected_success(populated)
    for params in ({}, {"ov_sim": "1"}):
        at = run_page("overview", params)
        assert_clean(at)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Steps"] == f"{n_steps:,}" and metrics["Sources"] == "1"
        board = _board(at)
        shown = {m: v for m, v in expected.items() if params or m not in simulated}
        assert set(board["model"].dropna()) == set(shown)
        for model, (succ, scored) in shown.items():
            row = board[board["model"] == model].iloc[0]
            assert _solved(row) == (succ, scored), model
            assert row["success_rate"] == pytest.approx(succ / scored)
        assert list(board["success_rate"].dropna()) == sorted(board["success_rate"].dropna(), reverse=True)
        assert any("Simulated data" in m.value for m in at.markdown) == bool(params)
        assert at.toggle(key="ov_sim").value == bool(params)


def test_compare_populated_leaderboard_headline_and_exports(populated):
    at = run_page("compare", {"cmp_model": ["gpt-4o", "claude-3-5-sonnet", "llama-3.3-70b"]})
    assert_clean(at)
    expected = _expected_success(populated)
    board = _board(at)
    assert set(board["model"]) == {"gpt-4o", "claude-3-5-sonnet", "llama-3.3-70b"}
    best = max(
        ("gpt-4o", "claude-3-5-sonnet", "llama-3.3-70b"), key=lambda m: expected[m][0] / expected[m][1]
    )
    succ, scored = expected[best]
    head = next(m.value for m in at.markdown if m.value.startswith("Leader:"))
    # the headline names a leader only when the paired tests say so (issue 19)
    from fle_core import analysis
    from fle_core.stats.leader import leading_system

    chosen = analysis.load_summaries(populated, models=["gpt-4o", "claude-3-5-sonnet", "llama-3.3-70b"])
    standing = leading_system(chosen, correction="holm", reps=1000, seed=0)
    assert standing.top[0] == best and f"**{best}**" in head
    if standing.leader is None:
        assert head.startswith("Leader: none. No significant difference between")
        assert f"**{best}** {succ / scored * 100:.1f}%" in head
        assert all(f"**{m}**" in head for m in standing.top)
    else:
        assert head.startswith(f"Leader: **{best}**") and f"{succ}/{scored} scored trials" in head
        assert (standing.comparisons["p_adjusted"] < 0.05).all()
    assert "Holm-adjusted" in head and "paired by task" in head
    assert not [b for b in at.get("download_button")]  # lazy tabs: Export not computed
    at = run_page(
        "compare", {"cmp_model": ["gpt-4o", "claude-3-5-sonnet", "llama-3.3-70b"], "cmp_tab": "Export"}
    )
    assert_clean(at)
    labels = [b.label for b in at.get("download_button")]
    assert {"Markdown (experiment log)", "Leaderboard CSV", "Comparisons CSV"} <= set(labels)
    md = next(m.value for m in at.markdown if "| Metric |" in m.value)
    assert "gpt-4o" in md and "Verdict" in md
    assert not at.warning


def test_compare_filters_narrow_the_data(populated):
    at = run_page("compare", {"cmp_task": "iron_ore_throughput", "cmp_model": "gpt-4o"})
    assert_clean(at)
    board = _board(at)
    assert list(board["model"]) == ["gpt-4o"]
    assert "1 model · 1 task" in texts(at)  # singular, not "1 models"
    at = run_page(
        "compare", {"cmp_task": "iron_ore_throughput", "cmp_model": "gpt-4o", "cmp_tab": "Pairwise"}
    )
    assert_clean(at)
    assert "Pairwise comparisons need at least two models." in texts(at)


@pytest.mark.parametrize(
    "params,bad",
    [
        ({"cmp_model": "no-such-model"}, "cmp_model=no-such-model"),
        ({"cmp_k": "0"}, "cmp_k=0"),
        ({"cmp_reps": "lots"}, "cmp_reps=lots"),
        ({"cmp_reps": "99999999"}, "cmp_reps=99999999"),
        ({"cmp_corr": "bonferroni'; drop"}, "cmp_corr=bonferroni'; drop"),
        ({"cmp_tab": "Secrets"}, "cmp_tab=Secrets"),
        ({"view": "zzzzzzzzzz"}, None),
    ],
)
def test_compare_bad_params_get_a_clear_message(populated, params, bad):
    at = run_page("compare", params)
    assert_clean(at)
    if bad:
        assert any(bad in w.value for w in at.warning), [w.value for w in at.warning]
    else:
        assert any("No shared view 'zzzzzzzzzz'" in e.value for e in at.error)
    assert _board(at) is not None  # falls back to defaults and still renders


def test_tasks_populated(populated):
    at = run_page("tasks", {"tsk_metric": "pass_at_k", "tsk_k": "2"})
    assert_clean(at)
    assert "pass@2 is shown only where" in texts(at)
    assert len(at.get("vega_lite_chart")) == 1  # lazy tabs: only the heatmap ran
    at = run_page("tasks", {"tsk_tab": "Difficulty ranking"})
    assert_clean(at)
    ranking = next(d.value for d in at.dataframe if "ci_95" in d.value.columns)
    rates = ranking["success_rate"].dropna().tolist()
    assert rates == sorted(rates)  # hardest first
    assert short_task("iron_ore_throughput") in set(ranking["task"])  # tables: the one short form
    at = run_page("tasks", {"tsk_tab": "None / partial / full"})
    assert_clean(at)
    counts = next(d.value for d in at.dataframe if "Outcome" in d.value.columns)
    assert set(counts["Outcome"]) <= {"none", "partial", "full", "no quota"}
    assert counts["(model, task) cells"].sum() > 0


@pytest.mark.parametrize(
    "params,bad", [({"tsk_metric": "bogus"}, "tsk_metric=bogus"), ({"tsk_k": "-3"}, "tsk_k=-3")]
)
def test_tasks_bad_params(populated, params, bad):
    at = run_page("tasks", params)
    assert_clean(at)
    assert any(bad in w.value for w in at.warning)


def test_trajectories_populated_single_and_side_by_side(populated):
    from fle_core import warehouse

    row = warehouse.query(
        populated,
        "SELECT version, max(value) AS best, count(*) AS n FROM steps "
        "WHERE source = 'local' AND version = 5 AND instance = 0 "
        "GROUP BY version",
    ).row(0, named=True)
    at = run_page("trajectories", {"trj_id": "local:5:0"})
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Steps"] == f"{row['n']:,}"
    assert metrics["Best reward"] == f"{row['best']:,.2f}"
    _, tokens = chart_rows(at, "Tokens per step")
    raw = warehouse.query(
        populated,
        "SELECT depth, prompt_tokens, completion_tokens FROM steps "
        "WHERE source = 'local' AND version = 5 AND instance = 0",
    )
    expected = {
        ("prompt", r["depth"], r["prompt_tokens"])
        for r in raw.iter_rows(named=True)
        if r["prompt_tokens"] is not None
    }
    expected |= {
        ("completion", r["depth"], r["completion_tokens"])
        for r in raw.iter_rows(named=True)
        if r["completion_tokens"] is not None
    }
    drawn = {(r["kind"], r["step"], r["tokens"]) for r in tokens.iter_rows(named=True)}
    assert expected and drawn == expected
    other = at.selectbox(key="trj_other").options[1]
    at.selectbox(key="trj_other").select_index(1).run()
    assert_clean(at)
    assert len([m for m in at.metric if m.label == "Steps"]) == 2
    assert other


def test_trajectories_fetches_code_from_the_source_on_demand(populated):
    at = run_page("trajectories", {"trj_id": "local:5:0"})
    next(b for b in at.button if b.label.startswith("Fetch code and output")).click().run()
    assert_clean(at)
    import sqlite3

    con = sqlite3.connect(populated.local_source_path)
    codes = [
        r[0]
        for r in con.execute(
            "SELECT code FROM programs WHERE version = 5 AND instance = 0 ORDER BY depth, id"
        )
    ]
    con.close()
    shown = [c.value for c in at.code]
    assert shown[: len(codes)] == codes


@pytest.mark.parametrize(
    "params,bad",
    [({"trj_id": "local:999999:0"}, "trj_id=local:999999:0"), ({"trj_x": "sideways"}, "trj_x=sideways")],
)
def test_trajectories_bad_params(populated, params, bad):
    at = run_page("trajectories", params)
    assert_clean(at)
    assert any(bad in w.value for w in at.warning)


# ---------------------------------------------------------------- permalinks
def _headline(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Leader:"))


def test_share_restores_filters_and_pins_the_data_version(populated_root, tmp_path, monkeypatch):
    import shutil

    import fixtures_fle as fx

    from fle_core import saved_views, warehouse
    from fle_core.warehouse.sync import sync as run_sync
    from fle_core.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(populated_root, root)
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    ws = Workspace.open(root)
    params = {"cmp_model": ["gpt-4o", "llama-3.3-70b"], "cmp_k": ["1", "2"], "cmp_reps": "200"}
    at = run_page("compare", params)
    shared_head = _headline(at)
    next(b for b in at.button if b.label == "Share").click().run()
    assert_clean(at)
    (view,) = saved_views.list_views(ws)
    assert view.page == "compare" and view.data_version == warehouse.data_version(ws) == 1
    assert view.params == params
    assert any(f"?view={view.id}" in c.value for c in at.code)

    # newer data for gpt-4o arrives: the shared view stays pinned to sync 1
    fx.insert_sqlite(
        ws.local_source_path,
        fx.make_rows(6, seed=11, first_version=8000, models=["gpt-4o"], tasks=["iron_ore_throughput"]),
    )
    run_sync(ws, "local")
    assert warehouse.data_version(ws) == 2
    opened = run_page("compare", {"view": view.id})
    assert_clean(opened)
    assert opened.multiselect(key="cmp_model").value == ["gpt-4o", "llama-3.3-70b"]
    assert opened.number_input(key="cmp_reps").value == 200
    assert _headline(opened) == shared_head
    assert any("as of sync 1" in i.value and "sync 2" in i.value for i in opened.info)

    next(b for b in opened.button if b.label == "Update to latest").click().run()
    assert_clean(opened)
    assert "view" not in opened.query_params
    assert _headline(opened) != shared_head
    assert opened.multiselect(key="cmp_model").value == ["gpt-4o", "llama-3.3-70b"]


def test_view_of_another_page_is_explained(populated):
    from fle_core import saved_views

    view_id = saved_views.save_view(populated, "tasks", {"tsk_k": "2"}, 1)
    at = run_page("compare", {"view": view_id})
    assert_clean(at)
    assert any("belongs to the tasks page" in w.value for w in at.warning)


def test_sweep_controls_pause_resume_cancel_from_the_ui(empty_ws):
    from fle_core import sweeps
    from fle_core.sweeps import config as sweep_config

    sweep_id = sweeps.launch(empty_ws, sweep_config.demo_config())
    at = run_page("sweeps", {"swp_sweep": sweep_id})
    next(b for b in at.button if b.label == "Pause").click().run()
    assert_clean(at)
    assert sweeps.status(empty_ws, sweep_id).status == "paused"
    next(b for b in at.button if b.label == "Cancel…").click().run()
    assert any(f"Cancel `{sweep_id}`?" in w.value for w in at.warning)
    assert sweeps.status(empty_ws, sweep_id).status == "paused"  # not before confirming
    next(b for b in at.button if b.label == "Yes, cancel it").click().run()
    assert_clean(at)
    assert sweeps.status(empty_ws, sweep_id).status == "cancelled"


def test_every_url_parameter_is_documented():
    """datasette-style: a page's URL key that docs/app.md does not name fails the build."""
    import re

    doc = (ROOT / "docs" / "app.md").read_text()
    keys = set()
    for page in (ROOT / "pages").glob("*.py"):
        text = page.read_text()
        keys |= set(re.findall(r'"((?:cmp|tsk|trj|mon|swp|src|ov)_[a-z]+)"', text))
        # the shared switch builds its key from the page's prefix: infrastructure_switch("cmp_", ...)
        keys |= {f"{p}infra" for p in re.findall(r'infrastructure_switch\("(\w+_)"', text)}
    for module in (ROOT / "pages" / "_ui").glob("*.py"):  # sections that keep their own URL state
        keys |= set(re.findall(r'url_\w+\(\s*"[^"]*",\s*"(\w+)"', module.read_text()))
    assert {"cmp_infra", "tsk_infra", "ov_infra", "cmp_pop", "cmp_plan_sys"} <= keys
    assert sorted(k for k in keys if f"`{k}`" not in doc) == []


def test_compare_pairwise_tab_shows_corrected_tests(populated):
    """Per-task Fisher p-values in the table match scipy on counts taken straight from the warehouse."""
    from scipy import stats

    from fle_core import warehouse

    models = ["gpt-4o", "llama-3.3-70b"]
    at = run_page("compare", {"cmp_model": models, "cmp_tab": "Pairwise"})
    assert_clean(at)
    comp = next(d.value for d in at.dataframe if "p_adjusted" in d.value.columns)
    row = comp[(comp["task"] == short_task("iron_plate_throughput"))].iloc[0]  # tables show short names
    raw = warehouse.query(
        populated,
        """
        SELECT model, count(*) AS n, count_if(best >= 16) AS s FROM (
            SELECT version, instance, any_value(model) AS model, max(value) AS best FROM steps
            WHERE task = 'iron_plate_throughput' AND model IN ('gpt-4o', 'llama-3.3-70b')
            GROUP BY version, instance) GROUP BY model""",
    )
    counts = {r["model"]: (r["s"], r["n"]) for r in raw.iter_rows(named=True)}
    (sa, na), (sb, nb) = counts[row["model_a"]], counts[row["model_b"]]
    expected = stats.fisher_exact([[sa, na - sa], [sb, nb - sb]]).pvalue
    assert row["p_value"] == pytest.approx(expected)
    assert row["p_adjusted"] >= row["p_value"]
    assert set(comp["verdict"]) <= {
        "significantly better",
        "significantly worse",
        "no significant difference",
    }
    # the matrix draws the across-task row and its mirror, with the table's numbers
    _, matrix = chart_rows(at, "Pairwise comparison across tasks")
    every = comp[comp["task"] == "ALL"].iloc[0]
    drawn = {(r["model_a"], r["model_b"]): r for r in matrix.iter_rows(named=True)}
    assert set(drawn) == {(every["model_a"], every["model_b"]), (every["model_b"], every["model_a"])}
    forward = drawn[(every["model_a"], every["model_b"])]
    backward = drawn[(every["model_b"], every["model_a"])]
    assert forward["diff"] == pytest.approx(every["diff"])
    assert backward["diff"] == pytest.approx(-every["diff"])
    assert forward["p_adjusted"] == pytest.approx(every["p_adjusted"])
    assert (
        forward["symbol"]
        == {"significantly better": "▲", "significantly worse": "▼", "no significant difference": "·"}[
            every["verdict"]
        ]
    )


@pytest.mark.parametrize("via", ["env", "streamlit_secrets"])
def test_source_passwords_never_reach_the_page(empty_ws, monkeypatch, via):
    empty_ws.config = {
        "sources": {
            "prod": {"url": "postgresql://eval@db.internal:5432/fle", "password_env": "FLE_PROD_PASSWORD"}
        }
    }
    empty_ws.save_config()
    secret = "hunter2-s3cret"
    at = AppTest.from_file(APP, default_timeout=60)
    if via == "env":
        monkeypatch.setenv("FLE_PROD_PASSWORD", secret)
    else:
        at.secrets["FLE_PROD_PASSWORD"] = secret
    at.run()
    at.switch_page("pages/sources.py").run()
    assert_clean(at)
    table = at.dataframe[0].value
    url = table[table["source"] == "prod"]["where"].iloc[0]
    assert url == "postgresql://eval:***@db.internal:5432/fle"  # the secret was found, and masked
    everything = texts(at) + "".join(d.value.to_csv() for d in at.dataframe)
    assert secret not in everything


# ---------------------------------------------------------------- sweep configs on Compare
CFG_LOW = '{"prompt": "v2", "temperature": 0.2}'
CFG_HIGH = '{"prompt": "v2", "temperature": 0.8}'
LOW, HIGH = "gpt-4o [prompt=v2, temperature=0.2]", "gpt-4o [prompt=v2, temperature=0.8]"


@pytest.fixture(scope="module")
def configs_root(tmp_path_factory) -> Path:
    """gpt-4o under two configs of one sweep (low: 3/4 successes, high: 1/4) and claude as a
    plain run (2/3), written straight into a real warehouse with a finished sync recorded;
    once for the module (its tests read it; one saves a view, which the others never list)."""
    from datetime import datetime, timedelta

    from fle_core import warehouse
    from fle_core.workspace import Workspace

    root = tmp_path_factory.mktemp("configs") / "ws"
    ws = Workspace.open(root)
    t0 = datetime(2026, 5, 1, 9)
    runs = (
        [("gpt-4o", CFG_LOW, b) for b in (20.0, 17.0, 30.0, 2.0)]
        + [("gpt-4o", CFG_HIGH, b) for b in (1.0, 3.0, 16.5, 0.0)]
        + [("claude", None, b) for b in (18.0, 1.0, 40.0)]
    )
    steps, attempts = [], []
    for version, (model, cfg, best) in enumerate(runs, start=1):
        sweep = "cfg-sweep" if cfg else None
        for depth, value in enumerate((0.5, best)):
            steps.append(
                (
                    "local",
                    version * 10 + depth,
                    version,
                    0,
                    float(depth),
                    value,
                    model,
                    "iron_ore_throughput",
                    sweep,
                    False,
                    False,
                    10,
                    5,
                    15,
                    t0 + timedelta(minutes=version + depth),
                    1,
                )
            )
        if cfg:
            attempts.append(("local", version, sweep, model, "iron_ore_throughput", cfg, "succeeded"))
    with warehouse.writer(ws) as con:
        con.executemany(
            "INSERT INTO steps (source, id, version, instance, depth, value, model, "
            "task, sweep_id, error_occurred, simulated, prompt_tokens, "
            "completion_tokens, total_tokens, created_at, sync_id) VALUES "
            f"({', '.join('?' * 16)})",
            steps,
        )
        con.executemany(
            "INSERT INTO sweep_attempts (source, version, sweep_id, model, task, "
            "params_json, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
            attempts,
        )
        con.execute(
            "INSERT INTO sync_runs (sync_id, source, started_at, finished_at, status) "
            "VALUES (1, 'local', ?, ?, 'ok')",
            [t0, t0],
        )
    return root


@pytest.fixture
def configs_ws(configs_root, monkeypatch):
    from fle_core.workspace import Workspace

    monkeypatch.setenv("FLE_CORE_HOME", str(configs_root))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    return Workspace.open(configs_root)


def _board_counts(at: AppTest) -> dict[str, tuple[int, int]]:
    board = _board(at)
    return {r["model"]: _solved(r) for _, r in board.iterrows()}


def test_compare_by_model_and_config_shows_one_row_per_system(configs_ws):
    at = run_page("compare")
    assert_clean(at)
    assert _board_counts(at) == {"gpt-4o": (4, 8), "claude": (2, 3)}
    picker = at.multiselect(key="cmp_config")
    assert set(picker.options) == {"prompt=v2, temperature=0.2", "prompt=v2, temperature=0.8", "(none)"}
    at = run_page("compare", {"cmp_by": "config"})
    assert_clean(at)
    # quota 16: low 20, 17, 30 pass; high 16.5 passes; claude 18, 40 pass
    assert _board_counts(at) == {LOW: (3, 4), HIGH: (1, 4), "claude": (2, 3)}
    assert "3 systems" in texts(at)
    at.radio(key="cmp_by").set_value("system").run()  # the default: what ran, configs pooled
    assert "cmp_by" not in at.query_params
    assert _board_counts(at) == {"gpt-4o": (4, 8), "claude": (2, 3)}
    at.radio(key="cmp_by").set_value("model").run()
    assert at.query_params["cmp_by"] == "model"
    assert _board_counts(at) == {"gpt-4o": (4, 8), "claude": (2, 3)}


def test_compare_config_filter_round_trips_through_the_url_and_share(configs_ws):
    from fle_core import saved_views

    at = run_page("compare", {"cmp_config": [CFG_LOW, "(none)"], "cmp_by": "config"})
    assert_clean(at)
    assert not at.warning
    assert _board_counts(at) == {LOW: (3, 4), "claude": (2, 3)}
    at.multiselect(key="cmp_config").unselect("(none)").run()
    assert at.query_params["cmp_config"] in (CFG_LOW, [CFG_LOW])  # the URL follows the widget
    assert _board_counts(at) == {LOW: (3, 4)}
    next(b for b in at.button if b.label == "Share").click().run()
    (view,) = saved_views.list_views(configs_ws)
    assert view.params == {"cmp_config": CFG_LOW, "cmp_by": "config"}
    opened = run_page("compare", {"view": view.id})
    assert_clean(opened)
    assert opened.multiselect(key="cmp_config").value == [CFG_LOW]
    assert _board_counts(opened) == {LOW: (3, 4)}


@pytest.mark.parametrize(
    "params,bad",
    [
        ({"cmp_config": '{"temperature": 9}'}, 'cmp_config={"temperature": 9}'),
        ({"cmp_config": "x'); DROP TABLE steps; --"}, "cmp_config=x'); DROP TABLE steps; --"),
        ({"cmp_by": "vibes"}, "cmp_by=vibes"),
    ],
)
def test_compare_bad_config_params_warn_and_fall_back(configs_ws, params, bad):
    at = run_page("compare", params)
    assert_clean(at)
    assert any(bad in w.value for w in at.warning), [w.value for w in at.warning]
    assert _board_counts(at) == {"gpt-4o": (4, 8), "claude": (2, 3)}


def test_compare_hides_config_controls_without_params(populated):
    at = run_page("compare", {"cmp_config": CFG_LOW, "cmp_by": "config"})
    assert_clean(at)
    assert not [m for m in at.multiselect if m.key == "cmp_config"]
    assert not [r for r in at.radio if r.key == "cmp_by"]
    warned = " ".join(w.value for w in at.warning)
    assert "cmp_config=" in warned and "cmp_by=config" in warned and "no trajectory" in warned
    assert "cmp_config" not in at.query_params


def test_compare_pairwise_by_config_uses_system_labels(configs_ws):
    at = run_page("compare", {"cmp_by": "config", "cmp_base": LOW, "cmp_tab": "Pairwise", "cmp_reps": "200"})
    assert_clean(at)
    assert not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="cmp_base").value == LOW
    comp = next(
        d.value for d in at.dataframe if "p_adjusted" in d.value.columns or "p_value" in d.value.columns
    )
    pairs = set(zip(comp["model_a"], comp["model_b"], strict=True))
    assert {(HIGH, LOW), ("claude", LOW)} <= pairs | {(b, a) for a, b in pairs}
    assert "gpt-4o" not in set(comp["model_a"]) | set(comp["model_b"])
