"""``fle-core leaderboard``: FLE's leaderboard files, validated against FLE's own, and the full table.

The warehouse holds a programs-era database (two systems on lab tasks, one of them
also in open play with ``achievements_json``) and Inspect open-play logs written by
real inspect_ai with FLE's ``achievements`` scorer. The FLE files are checked
against a real submission from FLE's repository (``tests/fixtures/fle_leaderboard``,
see SOURCE.md) and run through FLE's own ``process-results.js`` with Node.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures_fle import create_sqlite
from gate_fixtures import cli, outcome_rows

from fle_core.report import leaderboard as lb
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "fle_leaderboard"
FLE_RECORD = json.loads((FIXTURES / "claude-3-5-sonnet.json").read_text())
ORE, PLATE = "iron_ore_throughput", "iron_plate_throughput"
ITEMS = {"static": {"iron-ore": 5, "coal": 0, "stone": 2}, "dynamic": {"iron-plate": 3}}


@pytest.fixture(scope="module")
def home(tmp_path_factory, inspect_logs_dir) -> Path:
    tmp = tmp_path_factory.mktemp("leaderboard")
    logs = tmp / "logs"
    shutil.copytree(inspect_logs_dir / "openplay", logs / "openplay")
    home = tmp / "ws"
    home.mkdir()
    (home / "config.toml").write_text(f'[sources.runs]\nkind = "inspect"\npath = "{logs}"\n')
    ws = Workspace.open(home)
    outcomes = {
        ("gpt-4o", ORE): [True, True, False, False],  # 2/4
        ("gpt-4o", PLATE): [True, False, False, False],  # 1/4
        ("gpt-4o", "open_play"): [1000.0, 3000.0, 2500.0],
        ("claude", ORE): [True, True, True, False],  # 3/4
    }
    rows = outcome_rows(outcomes, achievements={("gpt-4o", "open_play"): ITEMS})
    sync(ws, source=create_sqlite(tmp / "legacy.db", rows))
    sync(ws, source="runs")
    return home


def _json_type(value) -> str:
    return (
        "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__
    )


def _check_fle_shape(record: dict) -> None:
    """Our file has FLE's keys with the JSON types of FLE's own file; a key it cannot fill is
    left out and named (with a reason) under fle_core.unfilled; fle_core is the only extra key."""
    extra = set(record) - set(FLE_RECORD)
    assert extra == {"fle_core"}, extra
    unfilled = record["fle_core"]["unfilled"]
    for key, value in FLE_RECORD.items():
        if key in record:
            assert _json_type(record[key]) == _json_type(value), key
            assert key not in unfilled
        else:
            assert unfilled.get(key), f"{key} is neither filled nor explained"
    assert record["name"] and len(record["submissionDate"]) == 10


def test_fle_files_have_fles_shape_and_the_figures_by_hand(home, tmp_path, inspect_logs_dir):
    out = tmp_path / "results"
    done = cli(home, "leaderboard", "--format", "fle", "--out", str(out), "--submitted-by", "tester",
               "--date", "2026-05-01", "--reps", "500", "--name", "gpt-4o=GPT-4o")  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["claude.json", "gpt-4o.json", "mockllm-alpha.json"]
    records = {p.name: json.loads(p.read_text()) for p in out.iterdir()}
    for record in records.values():
        _check_fle_shape(record)
    gpt = records["gpt-4o.json"]
    assert (
        gpt["name"] == "GPT-4o" and gpt["submittedBy"] == "tester" and gpt["submissionDate"] == "2026-05-01"
    )
    assert gpt["labTasksSuccessRate"] == 37.5  # (2/4 + 1/4) / 2 tasks
    assert gpt["productionScore"] == round((1000 + 3000 + 2500) / 3)
    assert gpt["milestones"] == 3.0  # iron-ore, stone, iron-plate (coal is 0)
    assert gpt["automationMilestones"] == 1.0  # iron-plate
    figures = gpt["fle_core"]["figures"]
    lab = figures["labTasksSuccessRate"]
    assert (lab["trials"], lab["tasks"], lab["tasks_in_suite"]) == (8, 2, 24) and len(
        lab["missing_tasks"]
    ) == 22
    assert lab["ci_low"] <= 37.5 <= lab["ci_high"] and lab["unit"] == "percent"
    assert figures["productionScore"]["trials"] == 3
    meta = gpt["fle_core"]
    assert (
        meta["system"] == "gpt-4o"
        and meta["data_version"] == 2
        and meta["suite_version"].startswith("lab-play@")
    )
    assert set(meta["unfilled"]) == {"mostComplexItem"} and "no order of item complexity" in lb.NO_COMPLEXITY
    claude = records["claude.json"]
    assert claude["labTasksSuccessRate"] == 75.0
    assert set(claude["fle_core"]["unfilled"]) == {
        "productionScore",
        "milestones",
        "automationMilestones",
        "mostComplexItem",
    }
    # Inspect open play: milestones from FLE's achievements scorer, automation not recorded
    from inspect_ai.log import read_eval_log

    values = [
        s.scores["achievements"].value
        for p in sorted((inspect_logs_dir / "openplay").glob("*.eval"))
        for s in (read_eval_log(str(p)).samples or [])
    ]
    alpha = records["mockllm-alpha.json"]
    assert alpha["milestones"] == round(sum(values) / len(values), 1)
    assert (
        "automationMilestones" not in alpha
        and "Inspect logs do not" in alpha["fle_core"]["unfilled"]["automationMilestones"]
    )
    assert "labTasksSuccessRate" not in alpha
    assert "warning: gpt-4o: labTasksSuccessRate is over 2 of the 24 lab tasks" in done.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_fles_own_processing_keeps_our_figures(home, tmp_path):
    """FLE's update-leaderboard script, run on its own submission plus ours."""
    repo = tmp_path / "fle"
    results = repo / "docs" / "leaderboard" / "results"
    (repo / ".github" / "scripts").mkdir(parents=True)
    shutil.copy(FIXTURES / "process-results.js", repo / ".github" / "scripts")
    (repo / "docs" / "leaderboard" / "processed").mkdir(parents=True)
    results.mkdir(parents=True)
    shutil.copy(FIXTURES / "claude-3-5-sonnet.json", results)
    done = cli(
        home, "leaderboard", "--format", "fle", "--out", str(results), "--systems", "gpt-4o", "--reps", "200"
    )
    assert done.returncode == 0, done.stderr
    run = subprocess.run(
        ["node", str(repo / ".github" / "scripts" / "process-results.js")], capture_output=True, text=True
    )
    assert run.returncode == 0 and "Processed 2 result files" in run.stdout, run.stderr
    combined = json.loads((repo / "docs" / "leaderboard" / "processed" / "combined-results.json").read_text())
    ours = next(r for r in combined if r["name"] == "gpt-4o")
    mine = json.loads((results / "gpt-4o.json").read_text())
    for key in ("productionScore", "milestones", "automationMilestones", "labTasksSuccessRate"):
        assert ours[key] == mine[key]
    assert ours["mostComplexItem"] == "none"  # FLE's own default for a field left out
    assert set(ours) == set(FLE_RECORD)  # FLE kept its fields and dropped our extra key


def test_json_csv_and_markdown_carry_every_figure_with_its_interval(home, tmp_path):
    done = cli(home, "leaderboard", "--format", "json", "--reps", "300", "--seed", "3")
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    assert board["schema_version"] == 1 and board["data_version"] == 2 and len(board["suite"]) == 24
    assert board["interval"] == {"method": "stratified bootstrap", "confidence": 0.95, "reps": 300, "seed": 3}
    by = {s["model"]: s for s in board["systems"]}
    assert set(by) == {"gpt-4o", "claude", "mockllm/alpha"}
    g = by["gpt-4o"]
    assert g["lab_success_rate"] == pytest.approx(0.375) and g["success_rate"] == pytest.approx(0.375)
    assert g["lab_success_rate_ci_low"] <= 0.375 <= g["lab_success_rate_ci_high"]
    assert g["trajectories"] == 11 and g["tasks"] == 3 and g["pass_at_1"] == pytest.approx(0.375)
    out = tmp_path / "board.csv"
    assert cli(home, "leaderboard", "--format", "csv", "--out", str(out), "--reps", "100").returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["model"] for r in rows} == set(by) and "lab_success_rate_ci_high" in rows[0]
    md = cli(home, "leaderboard", "--reps", "100").stdout
    assert md.splitlines()[0].startswith("| System | Lab success % (95% CI) |")
    assert "| claude | 75.0 [" in md and "Data version 2; suite lab-play@" in md


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--systems", "nobody"], "error: no system named 'nobody'"),
        (["--date", "May 1"], "error: --date 'May 1' is not YYYY-MM-DD"),
        (["--name", "gpt-4o"], "error: --name 'gpt-4o' is not SYSTEM=TEXT"),
        (["--as-of", "9"], "error: data version 9 does not exist"),
        (["--seed", "-1"], "error: --seed must be a whole number"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(home, args, message):
    done = cli(home, "leaderboard", *args)
    assert done.returncode == 2
    errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), done.stderr


def test_a_warehouse_without_open_play_leaves_those_figures_null():
    import polars as pl

    from fle_core.tasks import TaskRegistry

    summ = pl.DataFrame(
        {
            "model": ["a"] * 4,
            "task": [ORE] * 4,
            "success": [True, False, True, True],
            "normalized_reward": [1.0, 0.2, 1.1, 1.0],
            "best_reward": [16.0, 3.2, 17.6, 16.0],
            "production_score": [None] * 4,
            "source": ["s"] * 4,
            "version": [1, 2, 3, 4],
            "instance": [0] * 4,
        },
        schema_overrides={"production_score": pl.Float64},
    )
    empty = pl.DataFrame(schema={"source": pl.String, "version": pl.Int64, "instance": pl.Int64,
                                 "items_produced": pl.Int64, "items_automated": pl.Int64})  # fmt: skip
    row = lb.leaderboard_frame(summ, empty, TaskRegistry(), reps=50).row(0, named=True)
    assert row["lab_success_rate"] == pytest.approx(0.75) and row["production_score"] is None
    assert row["milestones"] is None and row["production_score_n"] is None


def test_file_names_follow_fles_convention():
    assert lb.fle_file_name("Claude 3.5 Sonnet") == "claude-3.5-sonnet.json"
    assert lb.fle_file_name("openai/gpt-4o [prompt=v2]") == "openai-gpt-4o-prompt-v2.json"
    assert lb.fle_file_name("///") == "system.json"
