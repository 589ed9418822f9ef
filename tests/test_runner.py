"""The runner with real subprocesses: completion, crashes, timeouts, retries, cancel, injection.

Jobs are either the real simulator (``simulate-fast``) or ``JOB_SCRIPT`` below:
a tiny agent that logs its argv/env to a file and writes FLE ``programs`` rows.
Its behaviour follows the model name's prefix: ``crash`` exits 3, ``empty``
exits 0 without rows, ``hang`` starts a grandchild and sleeps, ``slow`` sleeps
``JOB_DELAY`` first, ``long`` hangs on its first attempt only (a job that needed
more time than its first runner had), ``killer`` SIGKILLs its runner, anything
else succeeds at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from runner_helpers import (
    alive,
    assert_each_cell_succeeded_once,
    config,
    executions,
    make_ws,
    run_once,
    runner_cmd,
    versions_with_rows,
    wait_for,
)

from fle_core import sweeps as sm
from fle_core.sweeps.config import SweepConfig
from fle_core.sweeps.runner import Runner
from fle_core.workspace import Workspace


# ---- tests --------------------------------------------------------------------------------
@pytest.mark.slow
def test_simulated_sweep_completes_every_cell_exactly_once(workspace):
    ws = workspace
    cfg = SweepConfig(
        name="sim",
        models=["gpt-4o", "claude-3-5-sonnet", "gpt-4o-mini", "llama-3.3-70b"],
        tasks=["iron_ore_throughput", "iron_plate_throughput"],
        num_trials_per_config=3,
        executor="simulate-fast",
        max_concurrent=4,
        timeout_s=120,
        max_retries=0,
    )
    sweep_id = sm.launch(ws, cfg)
    assert cfg.num_cells() == 24
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fle_core",
            "--workspace",
            str(ws.root),
            "runner",
            "--once",
            "--max-concurrent",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert_each_cell_succeeded_once(ws, sweep_id, 24)
    assert len(versions_with_rows(ws)) == 24  # no stray versions in the source
    assert sm.status(ws, sweep_id).status == "completed"
    # The runner synced the warehouse, superseded attempts included.
    from fle_core import warehouse

    with warehouse.reader(ws) as con:
        n_traj = con.execute("SELECT COUNT(*) FROM trajectories WHERE sweep_id = ?", [sweep_id]).fetchone()[0]
        n_att = con.execute("SELECT COUNT(*) FROM sweep_attempts WHERE sweep_id = ?", [sweep_id]).fetchone()[
            0
        ]
    assert (n_traj, n_att) == (24, 24)


@pytest.mark.slow
def test_kill_9_the_runner_then_restart_loses_nothing(tmp_path):
    ws = make_ws(tmp_path / "ws", delay=0.4)
    sweep_id = sm.launch(ws, config(ws, models=["slow-a", "slow-b", "slow-c"], num_trials_per_config=8))
    runner = subprocess.Popen(
        runner_cmd(ws, "--max-concurrent", "4"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    st = sm.open_store(ws)
    wait_for(lambda: sum(c.status == "succeeded" for c in st.cells(sweep_id)) >= 5)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    in_flight = [a for a in st.attempts(sweep_id) if a.status == "running"]
    assert in_flight, "the runner should have died with jobs running"
    # PR_SET_PDEATHSIG: the dead runner's jobs do not run on as orphans.
    wait_for(lambda: not any(alive(a.pid) for a in in_flight), timeout=5)
    run_once(ws, "--max-concurrent", "4")
    assert_each_cell_succeeded_once(ws, sweep_id, 24)
    lost = [a for a in st.attempts(sweep_id) if a.outcome == "lost"]
    assert {a.attempt_id for a in lost} == {a.attempt_id for a in in_flight}
    assert all(a.status == "superseded" for a in lost)


def test_timeout_kills_the_whole_process_group(tmp_path):
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["hang"], timeout_s=1.0))
    t0 = time.monotonic()
    run_once(ws)
    assert time.monotonic() - t0 < 30
    (rec,) = executions(ws)
    assert not alive(rec["pid"]) and not alive(rec["grandchild"])
    (a,) = sm.open_store(ws).attempts(sweep_id)
    assert (a.outcome, a.status) == ("timed_out", "failed")
    assert sm.cells_frame(ws, sweep_id)["status"].to_list() == ["failed"]


def test_retries_stop_at_max_retries_each_with_a_new_version(tmp_path):
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["crash", "empty", "ok"], max_retries=2))
    run_once(ws)
    st = sm.open_store(ws)
    by_model = {c.model: c for c in st.cells(sweep_id)}
    assert {m: c.status for m, c in by_model.items()} == {
        "crash": "failed",
        "empty": "failed",
        "ok": "succeeded",
    }
    runs = executions(ws)
    assert sum(r["argv"][0] == "crash" for r in runs) == 3  # 1 try + 2 retries, then stop
    crash = [a for a in st.attempts(sweep_id) if a.cell_id == by_model["crash"].cell_id]
    assert [a.status for a in crash] == ["superseded", "superseded", "failed"]
    assert len({a.version for a in crash}) == 3
    empty = [a for a in st.attempts(sweep_id) if a.cell_id == by_model["empty"].cell_id]
    assert {a.outcome for a in empty} == {"empty"} and {a.exit_code for a in empty} == {0}
    fails = sm.failures(ws, sweep_id)
    assert fails.height == 6 and fails["log_tail"].str.contains("# exit").all()


def test_injection_in_names_runs_nothing(tmp_path):
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    evil_model = f"x; touch {marker}"
    evil_task = f"$(touch {marker}2)"
    ws = make_ws(tmp_path / "ws", extra=f'[tasks."{evil_task}"]\nquota = 1\n')
    cfg_text = (ws.root / "config.toml").read_text()  # switch to a one-string template (shlex path)
    script, execs = ws.root / "job.py", ws.root / "executions.jsonl"
    cfg_text += (
        f'[executors.jobstr]\nkind = "command"\ncommand = "{sys.executable} {script} {execs} '
        '{source_url} {model} {task} --p={params_json}"\n'
    )
    (ws.root / "config.toml").write_text(cfg_text)
    ws = Workspace.open(ws.root)
    sweep_id = sm.launch(
        ws,
        config(
            ws,
            models=[evil_model, "$(id)", "`id`"],
            tasks=[evil_task],
            executor="jobstr",
            grid={"p": ["'; id; '"]},
        ),
    )
    run_once(ws)
    assert not marker.exists() and not Path(f"{marker}2").exists()
    runs = executions(ws)
    assert sorted(r["argv"][0] for r in runs) == sorted([evil_model, "$(id)", "`id`"])
    assert {r["argv"][1] for r in runs} == {evil_task}
    assert {r["argv"][2] for r in runs} == {'--p={"p": "\'; id; \'"}'}
    assert {r["env"]["FLE_TASK"] for r in runs} == {evil_task}
    assert_each_cell_succeeded_once(ws, sweep_id, 3)


def test_cancel_kills_running_jobs_and_leaves_no_orphans(tmp_path):
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["hang-a", "hang-b", "hang-c"], max_concurrent=2))
    runner = subprocess.Popen(
        runner_cmd(ws, "--max-concurrent", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(executions(ws)) == 2)
        recs = executions(ws)
        assert all(alive(r["pid"]) and alive(r["grandchild"]) for r in recs)
        assert sm.cancel(ws, sweep_id) == 3
        wait_for(lambda: {c.status for c in sm.open_store(ws).cells(sweep_id)} == {"cancelled"}, timeout=20)
        wait_for(lambda: not any(alive(r["pid"]) or alive(r["grandchild"]) for r in recs), timeout=5)
        assert len(executions(ws)) == 2  # the third cell never started
        assert runner.poll() is None  # the runner itself lives on
    finally:
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=20) == 0, runner.stderr.read()
    assert sm.status(ws, sweep_id).status == "cancelled"


def test_sigterm_drains_and_sigint_requeues(tmp_path):
    ws = make_ws(tmp_path / "ws", delay=1.5)
    sweep_id = sm.launch(ws, config(ws, models=["slow-a", "slow-b", "slow-c", "slow-d"], max_concurrent=2))
    st = sm.open_store(ws)
    # SIGTERM: the two running jobs finish; nothing new starts; exit 0.
    runner = subprocess.Popen(
        runner_cmd(ws, "--max-concurrent", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: len(executions(ws)) == 2)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 0
    assert sorted(c.status for c in st.cells(sweep_id)) == ["pending", "pending", "succeeded", "succeeded"]
    # SIGINT: the running jobs are killed at once and requeued (no retry used); exit 130.
    runner = subprocess.Popen(
        runner_cmd(ws, "--max-concurrent", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: len(executions(ws)) == 4)
    t0 = time.monotonic()
    runner.send_signal(signal.SIGINT)
    assert runner.wait(timeout=30) == 130
    assert time.monotonic() - t0 < 1.4  # did not wait for the 1.5 s jobs
    assert not any(alive(r["pid"]) for r in executions(ws))
    cells = st.cells(sweep_id)
    assert sorted(c.status for c in cells) == ["pending", "pending", "succeeded", "succeeded"]
    assert all(c.failures == 0 for c in cells)
    assert sorted(a.outcome for a in st.attempts(sweep_id)) == [
        "requeued",
        "requeued",
        "succeeded",
        "succeeded",
    ]


def test_lease_expiry_and_backoff_with_step_now(tmp_path):
    """In-process runners driven by ``step(now)``: no sleeping for leases or backoff."""
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["hang"], max_retries=1, retry_backoff_s=100, timeout_s=1000))
    dead = Runner(ws, sm.open_store(ws), lease_s=30, sync=False, runner_id="dead")
    t = time.time()
    dead.step(t)
    wait_for(lambda: len(executions(ws)) == 1 and "grandchild" in executions(ws)[0])
    (rec,) = executions(ws)
    # "dead" never steps again. Another runner on this host waits out the lease, then
    # requeues the cell and kills the dead runner's leftover process group.
    live = Runner(ws, sm.open_store(ws), lease_s=30, sync=False, runner_id="live", max_concurrent=1)
    live.step(t + 29)
    assert len(executions(ws)) == 1 and alive(rec["pid"])
    t1 = t + 40  # leases are checked with each heartbeat (every lease_s / 3)
    live.step(t1)
    wait_for(lambda: not alive(rec["pid"]) and not alive(rec["grandchild"]), timeout=5)
    wait_for(lambda: len(executions(ws)) == 2)  # claimed anew (lease loss uses no retry)
    second = executions(ws)[1]
    assert second["version"] != rec["version"] and second["attempt"] == 2
    # Its timeout is enforced at the step's clock: SIGTERM to the group at t1 + 1000.
    live.step(t1 + 1001)
    wait_for(lambda: not alive(second["pid"]) and not alive(second["grandchild"]), timeout=5)
    live.step(t1 + 1001.1)
    cell = sm.open_store(ws).cells(sweep_id)[0]
    assert (cell.status, cell.failures) == ("pending", 1)
    assert cell.not_before == pytest.approx(t1 + 1001.1 + 100)
    live.step(t1 + 1001.1 + 99)  # still backing off
    assert len(executions(ws)) == 2
    live.step(t1 + 1001.1 + 101)
    wait_for(lambda: len(executions(ws)) == 3)
    live.step(t1 + 5000)  # timeout again: retries used up
    wait_for(lambda: not alive(executions(ws)[2]["pid"]), timeout=5)
    live.step(t1 + 5000.1)
    assert sm.open_store(ws).cells(sweep_id)[0].status == "failed"
    assert [a.outcome for a in sm.open_store(ws).attempts(sweep_id)] == ["lost", "timed_out", "timed_out"]


@pytest.mark.postgres
def test_source_password_never_reaches_logs_or_the_store(tmp_path, pg_url, monkeypatch):
    """A Postgres source with ``password_env``: the job gets the real URL, logs show ``***``."""
    import psycopg

    from fle_core.sources.programs_schema import programs_ddl

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(programs_ddl("postgres"))
    monkeypatch.setenv("FLE_TEST_PG_PW", "s3cret-pw")
    ws = make_ws(
        tmp_path / "ws", extra=f'[sources.team]\nurl = "{pg_url}"\npassword_env = "FLE_TEST_PG_PW"\n'
    )
    sweep_id = sm.launch(ws, config(ws, models=["crash"], source="team"))
    run_once(ws)
    (rec,) = executions(ws)
    assert ":s3cret-pw@" in rec["url"]  # the job itself did receive the real URL
    fails = sm.failures(ws, sweep_id)
    log_text = Path(fails["log_path"][0]).read_text()
    assert "s3cret-pw" not in log_text and "***" in log_text
    st = sm.open_store(ws)
    dumped = json.dumps([a.model_dump() for a in st.attempts(sweep_id)]) + json.dumps(st.events(sweep_id))
    assert "s3cret-pw" not in dumped


FAKE_FLE = r'''#!PYTHON
"""A stand-in for FLE's `fle eval --config FILE`: one trajectory per run-config entry."""
import json, os, sqlite3, sys
assert sys.argv[1:3] == ["eval", "--config"], sys.argv
entries = json.load(open(sys.argv[3]))
with open(os.environ["FAKE_FLE_LOG"], "a") as fh:
    fh.write(json.dumps(entries) + "\n")
con = sqlite3.connect(os.path.join(os.environ["FLE_CORE_HOME"], "data.db"), timeout=60)
from fle_core.sources.programs_schema import programs_ddl
con.execute(programs_ddl("sqlite"))
with con:
    for e in entries:
        con.execute("INSERT INTO programs (version, depth, value, model, instance) VALUES (?, 0, 1.0, ?, 0)",
                    (e["version"], e["model"]))
'''


def test_fle_legacy_preset_runs_fle_eval_with_the_reserved_version(tmp_path, monkeypatch):
    """The shipped ``fle-legacy`` preset (FLE < 0.4), end to end, with a fake ``fle`` on PATH.
    The job sees ``FAKE_FLE_LOG`` only because the preset names it in ``pass_env``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "fle"
    fake.write_text(FAKE_FLE.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_FLE_LOG", str(tmp_path / "fle.jsonl"))
    ws = make_ws(tmp_path / "ws", extra='[executors.fle-legacy]\npass_env = ["FAKE_FLE_LOG"]\n')
    sweep_id = sm.launch(
        ws,
        config(
            ws,
            models=["gpt-4o"],
            tasks=["Factorio-iron_ore_throughput_16-v0"],
            executor="fle-legacy",
            num_trials_per_config=2,
        ),
    )
    run_once(ws)
    assert_each_cell_succeeded_once(ws, sweep_id, 2)
    calls = [json.loads(line) for line in (tmp_path / "fle.jsonl").read_text().splitlines()]
    versions = sorted(a.version for a in sm.open_store(ws).attempts(sweep_id))
    assert sorted(c[0]["version"] for c in calls) == versions
    assert {c[0]["env_id"] for c in calls} == {"Factorio-iron_ore_throughput_16-v0"}
    assert {c[0]["model"] for c in calls} == {"gpt-4o"}


def test_a_runner_that_lost_its_own_lease_stops_its_copy(tmp_path):
    """If a runner's heartbeats lapse (e.g. the store was unreachable), its cells are requeued
    and it kills its own still-running copies, so a job never runs twice at once."""
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["hang"], max_retries=0, timeout_s=10_000))
    r = Runner(ws, sm.open_store(ws), lease_s=30, sync=False, runner_id="me")
    t = time.time()
    r.step(t)
    wait_for(lambda: executions(ws) and "grandchild" in executions(ws)[0])
    (rec,) = executions(ws)
    # Its heartbeats lapse (say the store was unreachable) and another runner expires the lease.
    assert [a.attempt_id for a in sm.open_store(ws).expire_leases(t + 31)] == list(r.running)
    r.step(t + 32)  # back: it learns the attempt is no longer its own and kills its copy
    wait_for(lambda: not alive(rec["pid"]) and not alive(rec["grandchild"]), timeout=5)
    r.step(t + 32.1)  # reaps it (result dropped as stale) and claims the requeued cell again
    wait_for(lambda: len(executions(ws)) == 2)
    attempts = sm.open_store(ws).attempts(sweep_id)
    assert attempts[0].outcome == "lost"
    assert len(attempts) == 2 and attempts[1].runner_id == "me"  # requeued and claimed again, fresh version
    assert attempts[1].version != attempts[0].version
    r.step(t + 32.1 + 10_001)  # time the second copy out so nothing is left running
    wait_for(lambda: not alive(executions(ws)[-1]["pid"]), timeout=5)
    r.step(t + 32.1 + 10_001.5)
    assert sm.open_store(ws).cells(sweep_id)[0].status == "failed"


def test_a_failing_sync_is_an_event_not_a_crash(tmp_path):
    ws = make_ws(tmp_path / "ws")
    ws.warehouse_path.mkdir()  # a directory where the DuckDB file should be: every sync fails
    sweep_id = sm.launch(ws, config(ws, models=["ok-a", "ok-b"]))
    runner = Runner(ws, sm.open_store(ws), sync=True, sync_interval_s=0)
    assert runner.run(once=True) == 0
    assert_each_cell_succeeded_once(ws, sweep_id, 2)
    events = [e for e in sm.open_store(ws).events() if e["kind"] == "sync_failed"]
    assert events and events[0]["message"].startswith("local:")


def test_each_running_job_gets_its_own_slot(tmp_path):
    """``FLE_JOB_SLOT``: jobs that overlap in time never share a slot, and slots stay below
    the runner's concurrency (so ``fle_server_range`` gives them disjoint servers)."""
    ws = make_ws(tmp_path / "ws", delay=0.4)
    sweep_id = sm.launch(ws, config(ws, models=[f"slow-{i}" for i in range(7)], max_concurrent=3))
    run_once(ws, "--max-concurrent", "3")
    slot_of = {r["version"]: int(r["env"]["FLE_JOB_SLOT"]) for r in executions(ws)}
    attempts = sm.open_store(ws).attempts(sweep_id)
    assert set(slot_of.values()) <= {0, 1, 2} and len(slot_of) == 7
    for a in attempts:
        for b in attempts:
            if a.attempt_id < b.attempt_id and a.started_at < b.ended_at and b.started_at < a.ended_at:
                assert slot_of[a.version] != slot_of[b.version], (a.attempt_id, b.attempt_id)
    assert len(set(slot_of.values())) == 3  # all three slots were used
