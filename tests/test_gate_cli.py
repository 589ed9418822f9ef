"""``fle-core gate`` as CI runs it: a real subprocess on a warehouse built by a real sync.

Two FLE ``programs`` databases (SQLite) are synced with ``fle-core sync``: the
first holds a baseline, a clearly worse system, a twin with the baseline's exact
outcomes, a system too small to test and two configs of one model; the second
(synced later, data version 2) holds a worse run of a model the first also holds. The gate must
exit 1 on the worse system and name the metric, 0 on the twin, and 2 with one
``error:`` line (no traceback) for every kind of bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gate_fixtures import add_source, cli, outcome_rows

from fle_core import saved_views, warehouse
from fle_core.workspace import Workspace

TASKS = ["iron_ore_throughput", "iron_plate_throughput", "steel_plate_throughput", "inserter_throughput"]
BASE = [True, True, True, True, True, False, True, False]  # 6/8 on every task
WORSE = [True, False, False, False, False, False, False, False]  # 1/8


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("gate")
    home = tmp / "ws"
    first: dict = {}
    for t in TASKS:
        first[("baseline-model", t)] = BASE
        first[("worse-model", t)] = WORSE
        first[("twin-model", t)] = BASE
        first[("gpt-4o", t)] = BASE[:4] + BASE[:4]
        first[("candidate-model", t)] = BASE
    first[("tiny-model", TASKS[0])] = [False, False]
    first[("tiny-base", TASKS[0])] = [True, True]
    first[("lonely-model", "crude_oil_throughput")] = BASE
    add_source(home, tmp / "main.db", outcome_rows(first))
    second = {("candidate-model", t): WORSE for t in TASKS}
    add_source(home, tmp / "pr.db", outcome_rows(second, first_version=1))
    ws = Workspace.open(home)
    # gpt-4o ran under two sweep configs: two systems share the model name
    versions = warehouse.query(
        ws, "SELECT DISTINCT version FROM steps WHERE model = 'gpt-4o' ORDER BY version"
    )["version"].to_list()
    with warehouse.writer(ws) as con:
        con.executemany(
            "INSERT INTO sweep_attempts (source, version, sweep_id, model, params_json, status) "
            "VALUES ('sqlite:main.db', ?, 'sw', 'gpt-4o', ?, 'succeeded')",
            [(v, '{"prompt": "v1"}' if i % 2 else '{"prompt": "v2"}') for i, v in enumerate(versions)],
        )
    return home


def _errors(done) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def test_a_clearly_worse_candidate_fails_with_exit_1_and_names_the_metric(home, tmp_path):
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    done = cli(home, "gate", "--baseline", "baseline-model", "--candidate", "worse-model",
               "--markdown", str(md), "--json", str(js))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "gate: FAILED (regressed: success)" in done.stdout
    text = md.read_text()
    assert text.startswith("## Regression gate: failed: success regressed")
    assert "| success (4 tasks) | 0.7500 +/- 0.4399 | 0.1250 +/- 0.3360 |" in text
    assert "**Regressed**" in text and "### Tasks that regressed most (4 of 4 got worse)" in text
    assert (
        "| iron\\_ore\\_throughput | 6/8 | 1/8 | -62.5 [" in text
        or "| iron_ore_throughput | 6/8 | 1/8 |" in text
    )
    result = json.loads(js.read_text())
    assert result["exit_code"] == 1 and result["regressed"] == ["success"] and not result["passed"]
    assert result["baseline"]["system"] == "baseline-model" and result["tasks"] == sorted(TASKS)
    row = result["metrics"][0]
    assert row["diff"] == pytest.approx(1 / 8 - 6 / 8) and row["p_adjusted"] < 0.05


def test_the_baselines_exact_outcomes_pass_with_exit_0(home):
    done = cli(home, "gate", "--baseline", "baseline-model", "--candidate", "twin-model",
               "--metric", "success", "--metric", "mean_score")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "gate: passed (no checked metric regressed)" in done.stdout
    assert "No task got worse." in done.stdout and _errors(done) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--candidate", "no-such-model"], "error: no system named 'no-such-model' in the warehouse"),
        (["--candidate", "worse-modle"], "error: no system named 'worse-modle'"),
        (
            ["--candidate", "gpt-4o"],
            "error: 'gpt-4o' names 2 systems: gpt-4o [prompt=v1], gpt-4o [prompt=v2]",
        ),
        (["--candidate", "lonely-model"], "error: no common tasks: baseline-model ran"),
        (["--candidate", "worse-model", "--metric", "accuracy"], "error: unknown gate metric 'accuracy'"),
        (["--candidate", "worse-model", "--margin", "x"], "error: --margin 'x' is not [METRIC=]NUMBER"),
        (
            ["--candidate", "worse-model", "--margin", "mean_score=0.1"],
            "error: --margin names metric(s) not checked",
        ),
        (
            ["--candidate", "worse-model", "--tasks", "open_play"],
            "error: task(s) not run by both sides: open_play",
        ),
        (["--candidate", "worse-model@99"], "error: data version 99 does not exist"),
        (["--candidate", "sweep:nightly"], "error: no trajectories from sweep 'nightly'"),
        (["--candidate", "baseline-model"], "error: the baseline 'baseline-model' and the candidate"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(home, args, message):
    done = cli(home, "gate", "--baseline", "baseline-model", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = _errors(done)
    assert len(errors) == 1 and errors[0].startswith(message), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_the_unknown_system_hint_lists_close_names(home):
    done = cli(home, "gate", "--baseline", "baseline-model", "--candidate", "worse-modle")
    assert "hint: did you mean 'worse-model', " in done.stderr


def test_too_few_trials_exits_2_and_says_how_many_are_needed(home):
    done = cli(home, "gate", "--baseline", "tiny-base", "--candidate", "tiny-model")
    assert done.returncode == 2
    assert _errors(done) == [
        "error: too few trials to test success: with 2 trial(s) per task on 1 task(s), even the most "
        "extreme outcome gives p = 0.167, not below α = 0.05"
    ]
    assert "hint: run at least 4 trials per task on each side or compare more tasks" in done.stderr


def test_a_named_system_among_configs_works(home):
    done = cli(
        home, "gate", "--baseline", "gpt-4o [prompt=v1]", "--candidate", "gpt-4o [prompt=v2]", "--quiet"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "gate: passed (no checked metric regressed)"


def test_sides_by_source_and_data_version(home):
    """The same model in two sources: the PR's run (synced second) is worse than main's."""
    done = cli(home, "gate", "--baseline", "candidate-model@source:sqlite:main.db",
               "--candidate", "candidate-model@source:sqlite:pr.db", "--quiet")  # fmt: skip
    assert done.returncode == 1, done.stderr
    # data version 1 held only main.db: the model then, against the PR's source alone
    done = cli(home, "gate", "--baseline", "candidate-model@1", "--candidate", "source:sqlite:pr.db",
               "--quiet")  # fmt: skip
    assert done.returncode == 1, done.stderr
    # the model now pools both sources, and shares main's trajectories with version 1: said, not hidden
    done = cli(home, "gate", "--baseline", "candidate-model@1", "--candidate", "candidate-model", "--quiet")
    assert "warning: the sides share 32 trajectories" in done.stderr
    # a source alone is ambiguous when it holds several systems
    done = cli(home, "gate", "--baseline", "source:sqlite:main.db", "--candidate", "worse-model")
    assert done.returncode == 2 and _errors(done)[0].startswith(
        "error: source 'sqlite:main.db' holds 9 systems"
    )


def test_top_limits_the_regressed_tasks_listed(home):
    done = cli(home, "gate", "--baseline", "baseline-model", "--candidate", "worse-model", "--top", "2")
    assert "### Tasks that regressed most (4 of 4 got worse, the 2 worst shown)" in done.stdout
    section = done.stdout.split("### Tasks that regressed most", 1)[1]
    assert sum(line.startswith("| ") and "_throughput |" in line for line in section.splitlines()) == 2


def test_a_margin_lets_a_small_drop_pass(home):
    # worse by 62.5 points: a 0.7 margin is not exceeded, 0.2 is
    done = cli(
        home,
        "gate",
        "--baseline",
        "baseline-model",
        "--candidate",
        "worse-model",
        "--margin",
        "0.7",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    done = cli(
        home,
        "gate",
        "--baseline",
        "baseline-model",
        "--candidate",
        "worse-model",
        "--margin",
        "success=0.2",
        "--quiet",
    )
    assert done.returncode == 1


def test_a_configured_app_url_pins_a_link_to_what_changed(home, tmp_path):
    ws = Workspace.open(home)
    config = home / "config.toml"
    before = config.read_text() if config.exists() else ""
    config.write_text(before + '\n[app]\nurl = "https://fle.example.org/"\n')
    try:
        md = tmp_path / "gate.md"
        done = cli(
            home, "gate", "--baseline", "baseline-model", "--candidate", "worse-model", "--markdown", str(md)
        )
        assert done.returncode == 1
        line = next(
            x for x in md.read_text().splitlines() if x.startswith("[Open this comparison in the app](")
        )
        url = line.split("(", 1)[1].rstrip(")")
        assert url.startswith("https://fle.example.org/compare?view=")
        view = saved_views.load_view(ws, url.rsplit("=", 1)[1])
        assert view.page == "compare" and view.data_version == warehouse.data_version(ws)
        assert view.params == {
            "cmp_tab": "What changed",
            "cmp_chg_a": "baseline-model",
            "cmp_chg_b": "worse-model",
        }
    finally:
        config.write_text(before)
