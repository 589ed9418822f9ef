"""The simulated FLE agent: rows, determinism, crashes, calibration, CLI.

Real SQLite files, a real PostgreSQL (fixture ``pg_url``) and real
subprocesses (``python -m fle_core.sweeps.simulate``). Calibration is checked with an
exact binomial test (scipy) against the FLE paper figures, not a fixed number.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from scipy.stats import binomtest

from fle_core.sources.programs_schema import PROGRAMS_COLUMNS, programs_ddl
from fle_core.sweeps import simulate as sim
from fle_core.tasks import TaskRegistry, parse_meta, parse_version_description

ALL_COLUMNS = [c for c, _, _ in PROGRAMS_COLUMNS]


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fle_core.sweeps.simulate", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def _sqlite_rows(path: Path, version: int | None = None) -> list[dict]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    sql = "SELECT * FROM programs" + (" WHERE version = ?" if version is not None else "")
    rows = [dict(r) for r in con.execute(sql + " ORDER BY id", [] if version is None else [version])]
    con.close()
    return rows


def _check_rows(
    rows: list[dict],
    *,
    model: str,
    task: str,
    version: int,
    steps: int,
    sweep_id: str | None,
    quota: float | None,
) -> None:
    """Assert FLE's formats on a full trajectory's rows (shared by SQLite and Postgres)."""
    assert len(rows) == steps
    assert [r["depth"] for r in rows] == [float(i) for i in range(steps)]
    assert {r["version"] for r in rows} == {version}
    assert {r["instance"] for r in rows} == {0}
    assert {r["model"] for r in rows} == {model}
    assert {r["version_description"] for r in rows} == {f"model:{model}\ntype:{task}\nnum_agents:1"}
    desc = parse_version_description(rows[0]["version_description"])
    assert (desc.model, desc.task, desc.num_agents, desc.parsed) == (model, task, 1, True)
    ids = [r["id"] for r in rows]
    assert rows[0]["parent_id"] is None and [r["parent_id"] for r in rows[1:]] == ids[:-1]
    for r in rows:
        meta = r["meta"] if isinstance(r["meta"], dict) else json.loads(r["meta"])
        assert meta["simulated"] is True and meta["model"] == model and meta["sweep_id"] == sweep_id
        assert isinstance(meta["error_occurred"], bool) and isinstance(meta["process_id"], int)
        assert isinstance(meta["production_score"], float)
        parsed = parse_meta(r["meta"])
        assert parsed.ok and parsed.simulated and parsed.model == model
        ach = json.loads(r["achievements_json"])
        assert set(ach) == {"static", "dynamic"}
        assert r["token_usage"] == r["prompt_token_usage"] + r["completion_token_usage"]
        assert 40 <= r["completion_token_usage"] < 3000
        assert 200 < len(r["code"]) < 5000 and 100 < len(r["response"]) < 3000
        assert len(r["conversation_json"]) < 8000
        assert r["holdout_value"] == r["value"] and r["value"] >= 0
        assert r["created_at"] is not None
    prompts = [r["prompt_token_usage"] for r in rows]
    assert prompts == sorted(prompts) and prompts[-1] > prompts[0]
    if quota is not None:
        best = max(r["value"] for r in rows)
        reg_p = sim.success_probability(model, task)
        assert 0 < reg_p < 1
        outcome = sim.trajectory_values(model, task, 0, 0, steps, quota)
        assert (best >= quota) == outcome.success


def test_cli_writes_full_trajectory_to_sqlite(tmp_path):
    db = tmp_path / "data.db"
    proc = _run(
        [
            "--source",
            f"sqlite:///{db}",
            "--model",
            "gpt-4o",
            "--task",
            "iron_ore_throughput",
            "--version",
            "7",
            "--steps",
            "12",
            "--sweep-id",
            "sw1",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    rows = _sqlite_rows(db)
    assert list(rows[0]) == ALL_COLUMNS
    _check_rows(
        rows, model="gpt-4o", task="iron_ore_throughput", version=7, steps=12, sweep_id="sw1", quota=16.0
    )
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    stamps = [datetime.fromisoformat(r["created_at"]) for r in rows]
    assert stamps == sorted(stamps)


def test_cli_reads_fle_environment_defaults(tmp_path):
    db = tmp_path / "env.db"
    proc = _run(
        [],
        env={
            "FLE_SOURCE_URL": f"sqlite:///{db}",
            "FLE_MODEL": "gemini-2",
            "FLE_TASK": "crude_oil_throughput",
            "FLE_VERSION": "11",
            "FLE_TRIAL": "2",
            "FLE_SWEEP_ID": "swenv",
            "FLE_STEPS": "5",
        },
    )
    assert proc.returncode == 0, proc.stderr
    rows = _sqlite_rows(db)
    assert len(rows) == 5 and {r["version"] for r in rows} == {11}
    meta = json.loads(rows[0]["meta"])
    assert (meta["sweep_id"], meta["trial"], meta["task"]) == ("swenv", 2, "crude_oil_throughput")


@pytest.mark.postgres
def test_postgres_rows_and_jsonb_meta(pg_url):
    out = sim.simulate_trajectory(
        pg_url, "claude-3-5-sonnet", "sufuric_acid_throughput", 3, steps=10, sweep_id="pg"
    )
    assert out.rows_written == 10 and not out.crashed
    with psycopg.connect(pg_url) as con:
        cur = con.execute("SELECT * FROM programs ORDER BY id")
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert names == ALL_COLUMNS
    _check_rows(
        rows,
        model="claude-3-5-sonnet",
        task="sufuric_acid_throughput",
        version=3,
        steps=10,
        sweep_id="pg",
        quota=250.0,
    )
    assert isinstance(rows[0]["created_at"], datetime)


@pytest.mark.postgres
def test_postgres_existing_old_table_with_jsonb(pg_url):
    """An older FLE table (fewer columns, meta as jsonb) gets only its own columns."""
    with psycopg.connect(pg_url) as con:
        con.execute(programs_ddl("postgres", "old", meta_jsonb=True))
    proc = _run(
        [
            "--source",
            pg_url,
            "--model",
            "gpt-4o-mini",
            "--task",
            "open_play",
            "--version",
            "5",
            "--steps",
            "6",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(pg_url) as con:
        metas = [r[0] for r in con.execute("SELECT meta FROM programs ORDER BY depth")]
        values = [r[0] for r in con.execute("SELECT value FROM programs ORDER BY depth")]
    assert all(isinstance(m, dict) and m["simulated"] is True for m in metas)
    scores = [m["production_score"] for m in metas]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] > 0
    assert np.allclose(np.diff(scores), np.diff(values))


def test_deterministic_for_a_seed(tmp_path):
    def rows_for(db: Path, version: int, trial: int, seed: int):
        sim.simulate_trajectory(
            f"sqlite:///{db}",
            "deepseek-v3",
            "inserter_throughput",
            version,
            trial=trial,
            seed=seed,
            steps=9,
            error_rate=0.3,
        )
        keep = [
            "code",
            "value",
            "response",
            "prompt_token_usage",
            "completion_token_usage",
            "achievements_json",
            "depth",
            "state_json",
        ]
        return [
            {k: r[k] for k in keep} | {"err": json.loads(r["meta"])["error_occurred"]}
            for r in _sqlite_rows(db, version)
        ]

    a = rows_for(tmp_path / "a.db", 1, trial=4, seed=9)
    b = rows_for(tmp_path / "b.db", 1, trial=4, seed=9)
    c = rows_for(tmp_path / "a.db", 2, trial=5, seed=9)
    assert a == b
    assert [r["code"] for r in a] != [r["code"] for r in c]
    assert any(r["err"] for r in a)  # error_rate 0.3 over 9 steps, fixed seed


def test_crash_rate_one_exits_nonzero_with_partial_trajectory(tmp_path):
    db = tmp_path / "crash.db"
    proc = _run(
        [
            "--source",
            f"sqlite:///{db}",
            "--model",
            "gpt-4o",
            "--task",
            "iron_plate_throughput",
            "--version",
            "4",
            "--steps",
            "16",
            "--crash-rate",
            "1.0",
        ]
    )
    assert proc.returncode == sim.EXIT_CRASH
    assert "simulated crash" in proc.stderr
    n = len(_sqlite_rows(db, 4))
    assert 1 <= n < 16
    # A retry gets a new version and draws its crash point again.
    points = {sim.crash_point(0, "gpt-4o", "iron_plate_throughput", 0, v, 64, 0.5) for v in range(40)}
    assert None in points and len(points) > 3


def test_bad_input_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    base = ["--source", url, "--model", "m", "--version", "1"]
    bad_rate = _run([*base, "--task", "iron_ore_throughput", "--crash-rate", "2"])
    assert bad_rate.returncode == sim.EXIT_USAGE and "crash rate" in bad_rate.stderr
    unknown = _run([*base, "--task", "no_such_task"])
    assert unknown.returncode == sim.EXIT_USAGE and "Unknown task" in unknown.stderr
    missing = _run(["--model", "m"])
    assert missing.returncode == sim.EXIT_USAGE and "--source" in missing.stderr
    with pytest.raises(sim.FleError):
        sim.simulate_trajectory("mysql://h/db", "m", "iron_ore_throughput", 1, steps=2)
    # A source that rejects the rows: a clear error naming the source, exit code 2.
    strict = tmp_path / "strict.db"
    sqlite3.connect(strict).execute(
        "CREATE TABLE programs (id INTEGER PRIMARY KEY, "
        "value REAL CHECK (value < 0), version INTEGER, depth REAL)"
    )
    rejected = _run(
        [
            "--source",
            f"sqlite:///{strict}",
            "--model",
            "m",
            "--version",
            "1",
            "--task",
            "iron_ore_throughput",
            "--steps",
            "2",
        ]
    )
    assert rejected.returncode == sim.EXIT_USAGE
    assert "Writing a row to sqlite:" in rejected.stderr and "IntegrityError" in rejected.stderr


def test_workspace_custom_task_is_known(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    (home / "config.toml").write_text("[tasks.my_widget_throughput]\nquota = 4\n")
    proc = _run(
        [
            "--source",
            f"sqlite:///{home / 'data.db'}",
            "--model",
            "m",
            "--version",
            "1",
            "--task",
            "my_widget_throughput",
            "--steps",
            "3",
        ],
        env={"FLE_CORE_HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr


def test_injection_like_model_name_is_stored_literally(tmp_path):
    db = tmp_path / "inj.db"
    evil = "x'; DROP TABLE programs; -- $(touch {p}) `touch {p}`".format(p=tmp_path / "pwned")
    proc = _run(
        [
            "--source",
            f"sqlite:///{db}",
            "--model",
            evil,
            "--task",
            "stone_wall_throughput",
            "--version",
            "1",
            "--steps",
            "3",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    rows = _sqlite_rows(db)
    assert {r["model"] for r in rows} == {evil}
    assert json.loads(rows[0]["meta"])["model"] == evil
    assert rows[0]["version_description"] == f"model:{evil}\ntype:stone_wall_throughput\nnum_agents:1"
    assert not (tmp_path / "pwned").exists()


def test_concurrent_simulators_share_one_sqlite_file(tmp_path):
    db = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fle_core.sweeps.simulate",
                "--source",
                f"sqlite:///{db}",
                "--model",
                "gpt-4o",
                "--task",
                "iron_ore_throughput",
                "--version",
                str(v),
                "--steps",
                "20",
            ],
            stderr=subprocess.PIPE,
        )
        for v in range(1, 5)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    counts = (
        sqlite3.connect(db)
        .execute("SELECT version, COUNT(*) FROM programs GROUP BY version ORDER BY version")
        .fetchall()
    )
    assert counts == [(v, 20) for v in range(1, 5)]


@pytest.mark.parametrize(
    "name,key",
    [
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"),
        ("gpt-4o", "gpt-4o"),
        ("openai/gpt-4o-2024-08-06", "gpt-4o"),
        ("GPT-4o-mini", "gpt-4o-mini"),
        ("deepseek-chat", "deepseek-v3"),
        ("deepseek/deepseek-v3", "deepseek-v3"),
        ("gemini-2.0-flash", "gemini-2"),
        ("meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b"),
        ("my-local-model", "default"),
    ],
)
def test_model_name_spellings(name, key):
    assert sim.model_profile(name).key == key


def test_harder_tasks_are_less_likely():
    for model in sim.PROFILES:
        p = [
            sim.success_probability(model, t)
            for t in (
                "iron_ore_throughput",
                "electronic_circuit_throughput",
                "utility_science_pack_throughput",
            )
        ]
        assert p[0] > p[1] > p[2]
        mean = np.mean([sim.success_probability(model, t) for t in sim.LAB_PLAY_TASKS])
        assert mean == pytest.approx(sim.PROFILES[model].target, abs=1e-9)


def test_success_rates_are_calibrated_to_the_paper():
    """Simulated outcomes (best value >= quota) match each model's paper figure."""
    quotas = TaskRegistry().quotas()
    trials = 100  # per task: 2,400 trajectories per model
    counts = {}
    for model, profile in sim.PROFILES.items():
        successes = 0
        for task in sim.LAB_PLAY_TASKS:
            for trial in range(trials):
                out = sim.trajectory_values(model, task, trial, 2024, 8, quotas[task])
                hit = bool(out.values.max() >= quotas[task])
                assert hit == out.success
                if hit:
                    assert out.first_success_step == int(np.argmax(out.values >= quotas[task]))
                successes += hit
        n = trials * len(sim.LAB_PLAY_TASKS)
        counts[model] = (successes, n)
        assert binomtest(successes, n, profile.target).pvalue > 0.001, (model, successes / n)
    # The test has power: the best model's count is inconsistent with the weakest's rate.
    k, n = counts["claude-3-5-sonnet"]
    assert binomtest(k, n, sim.PROFILES["gpt-4o-mini"].target).pvalue < 1e-6


def test_demo_clock_and_in_process_result(tmp_path):
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    out = sim.simulate_trajectory(
        f"sqlite:///{tmp_path / 'd.db'}", "llama-3.3-70b", "iron_ore_throughput", 9, steps=6, start_time=start
    )
    rows = _sqlite_rows(tmp_path / "d.db")
    stamps = [datetime.fromisoformat(r["created_at"]) for r in rows]
    assert stamps[0] == start.replace(tzinfo=None)
    gaps = np.diff([s.timestamp() for s in stamps])
    assert ((gaps >= 20) & (gaps <= 90)).all()
    assert out.row_ids == [r["id"] for r in rows]
    assert out.best_value == max(r["value"] for r in rows)


def test_every_simulator_flag_and_env_variable_is_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "simulate.md").read_text()
    parser = sim.build_parser()
    flags = [max(a.option_strings, key=len) for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(flags) == 12
    missing = [f for f in flags if f"`{f}`" not in docs]
    env_vars = set(re.findall(r"FLE_[A-Z_]+", Path(sim.__file__).read_text()))
    missing += [v for v in sorted(env_vars) if v not in docs]
    assert missing == []


def test_unreachable_postgres_is_a_clear_error_without_the_password():
    proc = _run(
        [
            "--source",
            "postgresql://eval:hunter2-secret@127.0.0.1:1/fle",
            "--model",
            "m",
            "--task",
            "iron_ore_throughput",
            "--version",
            "1",
            "--steps",
            "2",
        ]
    )
    assert proc.returncode == sim.EXIT_USAGE
    assert "Cannot connect to postgresql://eval:***@127.0.0.1:1/fle" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout


def test_step_delay_spaces_the_steps(tmp_path):
    db = tmp_path / "slow.db"
    proc = _run(
        [
            "--source",
            f"sqlite:///{db}",
            "--model",
            "gpt-4o",
            "--task",
            "iron_ore_throughput",
            "--version",
            "1",
            "--steps",
            "4",
            "--step-delay",
            "0.2",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    stamps = [datetime.fromisoformat(r["created_at"]).timestamp() for r in _sqlite_rows(db)]
    gaps = np.diff(stamps)
    assert len(gaps) == 3 and (gaps >= 0.19).all()


@pytest.mark.postgres
def test_concurrent_simulators_create_and_share_a_postgres_table(pg_url):
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fle_core.sweeps.simulate",
                "--source",
                pg_url,
                "--model",
                "gpt-4o",
                "--task",
                "iron_ore_throughput",
                "--version",
                str(v),
                "--steps",
                "15",
            ],
            stderr=subprocess.PIPE,
        )
        for v in range(1, 5)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with psycopg.connect(pg_url) as con:
        counts = con.execute(
            "SELECT version, COUNT(*), COUNT(DISTINCT depth) FROM programs GROUP BY version ORDER BY version"
        ).fetchall()
    assert counts == [(v, 15, 15) for v in range(1, 5)]
