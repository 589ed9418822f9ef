"""The ``fle`` preset (``fle inspect-eval``), ``fle-legacy``, and what a job may see.

The end-to-end test runs a real runner against a stand-in ``fle`` (``fake_fle.py``) that
parses FLE 0.4.3's ``inspect-eval`` flags and runs real ``inspect eval`` on the
FLE-shaped test task; the job's log then joins the warehouse through the sweep's
attempt records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from fle_core import analysis, sources
from fle_core import sweeps as sm
from fle_core.errors import ConfigError
from fle_core.sources import JobRef
from fle_core.sweeps.config import SweepConfig, task_registry
from fle_core.sweeps.executors import (
    BASE_ENV,
    Job,
    builtin_presets,
    fle_server_range,
    get_preset,
)
from fle_core.sweeps.facts import attempts_for_sync
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

HERE = Path(__file__).resolve().parent


def _job(source_url: str, **kw) -> Job:
    base = dict(
        sweep_id="sw-1",
        cell_id="c1",
        attempt=2,
        model="openai/gpt-4o",
        task="iron_ore_throughput",
        env_id="iron_ore_throughput",
        trial=0,
        params={},
        version=41,
        source_url=source_url,
    )
    return Job(**{**base, **kw})


def _config(ws: Workspace, **kw) -> SweepConfig:
    base = dict(
        name="fle",
        models=["m"],
        tasks=["iron_ore_throughput"],
        executor="fle",
        source="local_inspect",
        max_concurrent=2,
        timeout_s=300,
        max_retries=0,
        retry_backoff_s=0,
    )
    with task_registry(ws.task_registry()):
        return SweepConfig(**{**base, **kw})


def test_fle_preset_runs_inspect_eval_with_the_jobs_own_log_dir(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    spec = ws.source("local_inspect")
    cmd = get_preset(ws, "fle").build(_job(spec.resolved_url(), model="-h"), tmp_path / "work")
    log_dir = ws.inspect_logs_path / "sweeps" / "sw-1" / "c1.2"
    assert cmd.argv == [
        "fle",
        "inspect-eval",
        "--env-id=iron_ore_throughput",
        "--model=-h",
        "--epochs=1",
        f"--log-dir={log_dir}",
    ]
    assert cmd.log_dir == log_dir
    facts = json.loads((log_dir / "fle-job.json").read_text())
    assert facts["version"] == 41 and facts["sweep_id"] == "sw-1" and facts["attempt"] == 2
    assert (cmd.env["FLE_SERVER_START"], cmd.env["FLE_SERVER_END"]) == ("0", "1")


def test_the_server_range_comes_from_the_jobs_slot(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "config.toml").write_text("[executors.fle]\nservers_per_job = 2\nfirst_server = 10\n")
    ws = Workspace.open(tmp_path / "ws")
    ranges = set()
    for slot in range(4):
        env = get_preset(ws, "fle").build(_job(str(ws.inspect_logs_path), slot=slot), tmp_path).env
        ranges.add((int(env["FLE_SERVER_START"]), int(env["FLE_SERVER_END"])))
    assert ranges == {(10, 12), (12, 14), (14, 16), (16, 18)}  # disjoint: no two jobs share a server
    assert fle_server_range(3, 2, 10) == (16, 18) and fle_server_range(0, 1) == (0, 1)


def test_fle_preset_needs_an_inspect_source(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(ConfigError, match="local folder of Inspect logs"):
        get_preset(ws, "fle").build(_job("sqlite:////tmp/x.db"), tmp_path)
    with pytest.raises(ConfigError, match="writes Inspect logs"):
        sm.launch(ws, _config(ws, source="local"))
    with pytest.raises(ConfigError, match="writes a programs table"):
        sm.launch(ws, _config(ws, executor="simulate"))


def test_fle_legacy_keeps_fle_eval_with_a_run_config(tmp_path):
    cmd = builtin_presets()["fle-legacy"].build(_job("sqlite:////tmp/x.db", env_id="Factorio-x-v0"), tmp_path)
    assert cmd.argv[:3] == ["fle", "eval", "--config"]
    assert json.loads(Path(cmd.argv[3]).read_text()) == [
        {"env_id": "Factorio-x-v0", "model": "openai/gpt-4o", "version": 41}
    ]
    assert builtin_presets()["fle-legacy"].writes() == "programs"  # judged by programs rows, as before


def test_a_job_inherits_only_what_it_needs():
    runner_env = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "FLE_CONTROL_PASSWORD": "hunter2",
        "FLE_PROD_URL": "postgresql://eval:secret@db/fle",
        "AWS_SECRET_ACCESS_KEY": "k",
        "OPENAI_API_KEY": "sk-1",
        "RANDOM_TOKEN": "t",
    }
    presets = builtin_presets()
    sim = presets["simulate"].environment(runner_env)
    assert sim == {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    fle = presets["fle"].environment(runner_env)
    assert fle["OPENAI_API_KEY"] == "sk-1" and fle["AWS_SECRET_ACCESS_KEY"] == "k"
    assert "FLE_CONTROL_PASSWORD" not in fle and "FLE_PROD_URL" not in fle and "RANDOM_TOKEN" not in fle
    assert "PATH" in BASE_ENV


def test_a_value_that_looks_like_an_option_is_never_one(tmp_path):
    """Simulate passes --model=VALUE; a command template with a bare {model} refuses '-h'."""
    sim = builtin_presets()["simulate"].build(_job("sqlite:////tmp/x.db", model="--source=evil"), tmp_path)
    assert "--model=--source=evil" in sim.argv and "--source=sqlite:////tmp/x.db" in sim.argv
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "config.toml").write_text(
        '[executors.bare]\ncommand = ["agent", "--model", "{model}"]\n'
        '[executors.safe]\ncommand = ["agent", "--", "{model}"]\n'
    )
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(ConfigError, match="would be read as an option"):
        get_preset(ws, "bare").build(_job("x", model="-h"), tmp_path)
    assert get_preset(ws, "bare").build(_job("x", model="gpt-4o"), tmp_path).argv[-1] == "gpt-4o"
    assert get_preset(ws, "safe").build(_job("x", model="-h"), tmp_path).argv == ["agent", "--", "-h"]


def _runner(ws: Workspace, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "fle_core",
        "--workspace",
        str(ws.root),
        "runner",
        "--no-sync",
        "--lease-seconds",
        "5",
        "--once",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_simulated_jobs_take_dash_models_and_not_the_runners_secrets(tmp_path):
    """Issue 12 items 11 and 12 through a real runner: a model called '-h' runs, and the
    job's environment has no control-store password and no other source's URL."""
    root = tmp_path / "ws"
    root.mkdir()
    dump = tmp_path / "env.json"
    script = tmp_path / "job.py"
    script.write_text(
        "import json, os, sys\n"
        f"json.dump(dict(os.environ), open({str(dump)!r}, 'w'))\n"
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
    )
    ws = Workspace.open(root)
    sweep = sm.launch(
        ws,
        _config(
            ws, models=["-h", "--source=sqlite:////tmp/evil.db"], executor="simulate-fast", source="local"
        ),
    )
    env = {**os.environ, "FLE_CONTROL_PASSWORD": "hunter2", "FLE_PROD_URL": "postgresql://u:secret@db/x"}
    _runner(ws, env)
    cells = sm.open_store(ws).cells(sweep)
    assert {c.status for c in cells} == {"succeeded"}, sm.failures(ws, sweep)["log_tail"].to_list()
    sync(ws, source="local", attempts=attempts_for_sync(ws))
    assert set(analysis.load_summaries(ws)["model"]) == {"-h", "--source=sqlite:////tmp/evil.db"}
    assert not Path("/tmp/evil.db").exists()
    (root / "config.toml").write_text(
        f'[executors.dump]\nkind = "command"\ncommand = ["{sys.executable}", "{script}", "-m", '
        '"fle_core.sweeps.simulate", "--source={source_url}", "--model={model}", "--task={task}", '
        '"--version={version}", "--steps=2", "--step-delay=0"]\n'
    )
    ws = Workspace.open(root)
    sm.launch(ws, _config(ws, name="dump", models=["m"], executor="dump", source="local"))
    _runner(ws, env)
    seen = json.loads(dump.read_text())
    assert "FLE_CONTROL_PASSWORD" not in seen and "FLE_PROD_URL" not in seen
    assert seen["FLE_MODEL"] == "m" and seen["FLE_CORE_HOME"] == str(root) and "PATH" in seen


@pytest.mark.slow
def test_the_fle_preset_end_to_end_through_the_runner(tmp_path):
    """Three cells: one completes; one exits 0 but FLE swallowed an RCON error; one's sample
    errors (log status error). Only the first counts as completed; the Monitor's failure
    view shows each log's own error; the logs join the warehouse through the attempts."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fle = bindir / "fle"
    fle.write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / "fake_fle.py"} "$@"\n')
    fle.chmod(0o755)
    ws = Workspace.open(tmp_path / "ws")
    models = ["mockllm/gamma", "mockllm/swallow", "mockllm/raise"]
    sweep = sm.launch(ws, _config(ws, models=models))
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "FLE_CONTROL_PASSWORD": "hunter2",
    }
    _runner(ws, env)
    store = sm.open_store(ws)
    status = {c.model: c.status for c in store.cells(sweep)}
    assert status == {"mockllm/gamma": "succeeded", "mockllm/swallow": "failed", "mockllm/raise": "failed"}
    fails = {r["model"]: r for r in sm.failures(ws, sweep).iter_rows(named=True)}
    assert fails["mockllm/swallow"]["exit_code"] == 0
    assert (
        "FLE swallowed an error" in fails["mockllm/swallow"]["error"]
        and "RCON" in fails["mockllm/swallow"]["error"]
    )
    assert "sandbox exploded" in fails["mockllm/raise"]["error"]  # the log's error, not a bare exit code
    attempts = {a.cell_id: a for a in store.attempts(sweep)}
    cells = {c.model: c for c in store.cells(sweep)}
    job_dir = ws.inspect_logs_path / "sweeps" / sweep / f"{cells['mockllm/gamma'].cell_id}.1"
    assert (job_dir / "fle-job.json").exists()
    for env_file in (ws.inspect_logs_path / "sweeps" / sweep).glob("*/env.txt"):
        env_of = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        slot = int(env_of["FLE_JOB_SLOT"])  # the runner's slot decides the job's Factorio servers
        assert (int(env_of["FLE_SERVER_START"]), int(env_of["FLE_SERVER_END"])) == (slot, slot + 1)
        assert "FLE_CONTROL_PASSWORD" not in env_of
    result = sync(ws, source="local_inspect", attempts=attempts_for_sync(ws))
    assert result.problems == {}
    s = analysis.load_summaries(ws)  # failed attempts are excluded, as for programs jobs
    assert s["model"].to_list() == ["mockllm/gamma"]
    assert s["version"].to_list() == [attempts[cells["mockllm/gamma"].cell_id].version]
    assert s["sweep_id"].to_list() == [sweep]
    assert analysis.load_summaries(ws, sweep_id=sweep).height == 1
    everything = analysis.load_summaries(ws, include_failed_attempts=True)
    assert set(everything["model"]) == set(models)
    assert everything.filter(pl.col("model") != "mockllm/gamma")["success"].to_list() == [False, False]
    # the W&B path reads the job's steps from its log too (the runner's per-job runs)
    source = sources.get(ws, "local_inspect")
    a, c = attempts[cells["mockllm/gamma"].cell_id], cells["mockllm/gamma"]
    job = JobRef(sweep, c.cell_id, a.attempt, a.version, c.task)
    steps = source.job_steps(job)
    assert steps["value"].to_list() == pytest.approx(
        analysis.load_steps(ws, versions=[a.version]).sort("depth")["value"].to_list()
    )
    assert source.best_values([job]) == {a.version: pytest.approx(max(steps["value"]))}


def test_a_command_preset_writing_inspect_logs_is_judged_by_its_log(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "config.toml").write_text(
        '[executors.mine]\ncommand = ["my-eval", "--log-dir={log_dir}", "--model={model}"]\n'
    )
    ws = Workspace.open(tmp_path / "ws")
    preset = get_preset(ws, "mine")
    job = _job(str(ws.inspect_logs_path))
    cmd = preset.build(job, tmp_path)
    assert (cmd.log_dir / "fle-job.json").exists()
    assert preset.writes() == "inspect_logs"  # so its sweeps need a folder of logs, judged by the log
    verdict = sources.get(ws, "local_inspect").verify_job(
        JobRef(job.sweep_id, job.cell_id, job.attempt, job.version, job.task), 0
    )
    assert verdict.outcome == "failed" and "wrote no Inspect log" in (verdict.reason or "")
    assert builtin_presets()["simulate"].writes() == "programs"


def test_fles_settings_are_passed_and_recorded_in_the_job_file(tmp_path, inspect_logs_dir):
    """--solver, --trajectory-length, --vision, --scenario: from the sweep's params (else the
    preset's options), passed to `fle inspect-eval`, written to fle-job.json, read by sync
    as part of the trajectory's system."""
    import shutil

    ws = Workspace.open(tmp_path / "ws")
    (ws.root / "config.toml").write_text('[executors.fle]\nkind = "fle"\nscenario = "open_world"\n')
    ws = Workspace.open(tmp_path / "ws")
    spec = ws.source("local_inspect")
    job = _job(spec.resolved_url(), params={"solver": "hud", "trajectory_length": 8, "vision": "true"})
    cmd = get_preset(ws, "fle").build(job, tmp_path / "work")
    assert cmd.argv[-4:] == ["--solver=hud", "--trajectory-length=8", "--vision", "--scenario=open_world"]
    facts = json.loads((cmd.log_dir / "fle-job.json").read_text())
    assert (facts["solver"], facts["trajectory_length"], facts["vision"], facts["scenario"]) == (
        "hud",
        8,
        True,
        "open_world",
    )
    plain = get_preset(Workspace.open(tmp_path / "other"), "fle").build(
        _job(str(tmp_path / "other" / "inspect_logs"), cell_id="c2"), tmp_path / "work2"
    )
    assert not any(a.startswith(("--solver", "--vision", "--scenario")) for a in plain.argv)
    defaults = json.loads((plain.log_dir / "fle-job.json").read_text())
    assert (defaults["solver"], defaults["trajectory_length"], defaults["vision"]) == (
        "controlled",
        64,
        False,
    )
    # a log in the job's folder: sync reads the settings as the trajectory's system
    log = sorted((inspect_logs_dir / "main").glob("*.eval"))[0]
    shutil.copy(log, cmd.log_dir / log.name)
    sync(ws, source="local_inspect")
    system = json.loads(analysis.load_summaries(ws)["system"][0])
    assert (system["solver"], system["vision"], system["scenario"]) == ("hud", True, "open_world")
    assert system["trajectory_length"] == 8  # the sample's own metadata (FLE sets it from the flag)
    assert "fle_like_solver" not in json.dumps(system)  # the job file names the solver, not the plan
