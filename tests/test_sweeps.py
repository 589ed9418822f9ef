"""Sweep operations (API + CLI), resume idempotency, concurrent runners on SQLite and
Postgres queues, ``SweepManager``, ``ensure_runner`` and W&B offline logging."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
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
from fle_core.errors import QueueError
from fle_core.sweeps.config import SweepConfig, save_config
from fle_core.sweeps.manager import SweepManager
from fle_core.workspace import Workspace


def test_resume_is_idempotent_and_never_reruns_completed_cells(tmp_path):
    ws = make_ws(tmp_path / "ws")
    cfg = config(ws, models=["ok", "crash"], num_trials_per_config=2, max_retries=0)
    sweep_id = sm.launch(ws, cfg)
    run_once(ws)
    st = sm.status(ws, sweep_id)
    assert (st.counts["succeeded"], st.counts["failed"], st.status) == (2, 2, "completed")
    ok_versions = {a.version for a in sm.open_store(ws).attempts(sweep_id) if a.status == "succeeded"}

    assert sm.resume(ws, sweep_id) == 2  # the two failed cells
    assert sm.resume(ws, sweep_id) == 0  # idempotent: nothing more to do
    assert sm.status(ws, sweep_id).counts["pending"] == 2
    run_once(ws)
    runs = Counter(r["argv"][0] for r in executions(ws))
    assert runs == {"ok": 2, "crash": 4}  # completed cells were not rerun
    assert {a.version for a in sm.open_store(ws).attempts(sweep_id) if a.status == "succeeded"} == ok_versions

    # Resuming with a bigger config fills only the missing cells.
    bigger = cfg.model_copy(update={"num_trials_per_config": 3})
    assert sm.resume(ws, sweep_id, config=bigger) == 2 + 2  # 2 new cells + 2 failed again
    assert sm.resume(ws, sweep_id, config=bigger) == 0
    run_once(ws)
    assert Counter(r["argv"][0] for r in executions(ws)) == {"ok": 3, "crash": 7}
    with pytest.raises(QueueError):
        sm.resume(ws, sweep_id, config=cfg.model_copy(update={"name": "other"}))


def test_pause_resume_retry_status_and_eta(tmp_path):
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["ok", "crash"], num_trials_per_config=3, max_concurrent=1))
    sm.pause(ws, sweep_id)
    with pytest.raises(QueueError):
        sm.pause(ws, sweep_id)
    run_once(ws)  # a paused sweep gives the runner nothing to do
    assert executions(ws) == [] and sm.status(ws, sweep_id).status == "paused"
    assert sm.resume(ws, sweep_id) == 0
    assert sm.status(ws, sweep_id).status == "active"
    run_once(ws)
    st = sm.status(ws, sweep_id)
    assert st.counts == {
        "pending": 0,
        "running": 0,
        "succeeded": 3,
        "failed": 3,
        "early_stopped": 0,
        "cancelled": 0,
    }
    assert st.median_attempt_s is not None and st.median_attempt_s > 0
    assert sm.retry_failed(ws, sweep_id) == 3
    st = sm.status(ws, sweep_id)
    assert st.status == "active" and st.eta_s == pytest.approx(3 * st.median_attempt_s)  # 3 waves of 1
    fails = sm.failures(ws, sweep_id, tail_lines=3)
    assert fails.height == 3 and set(fails["outcome"]) == {"failed"} and set(fails["exit_code"]) == {3}
    assert all(len(t.splitlines()) <= 3 for t in fails["log_tail"])
    cells = sm.cells_frame(ws, sweep_id)
    assert cells.columns[:8] == [
        "cell_id",
        "sweep_id",
        "model",
        "task",
        "env_id",
        "params_json",
        "trial",
        "status",
    ]
    lst = sm.list_sweeps(ws)
    assert lst.row(0, named=True)["total"] == 6 and lst.row(0, named=True)["pending"] == 3


def test_early_stop_marks_pending_trials(tmp_path):
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(
        ws, config(ws, models=["ok"], num_trials_per_config=4, max_concurrent=1, early_stop_on_success=True)
    )
    run_once(ws)
    assert sorted(sm.cells_frame(ws, sweep_id)["status"]) == ["early_stopped"] * 3 + ["succeeded"]
    assert len(executions(ws)) == 1


def _two_runners(ws: Workspace, n_models: int = 8, trials: int = 4) -> str:
    sweep_id = sm.launch(
        ws,
        config(
            ws, models=[f"slow{i}" for i in range(n_models)], num_trials_per_config=trials, max_concurrent=6
        ),
    )
    procs = [
        subprocess.Popen(
            runner_cmd(ws, "--once", "--max-concurrent", "3"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    return sweep_id


def _assert_each_job_ran_once(ws: Workspace, sweep_id: str, n: int) -> None:
    runs = executions(ws)
    per_cell = Counter(r["cell"] for r in runs)
    assert len(per_cell) == n and set(per_cell.values()) == {1}
    assert len({r["version"] for r in runs}) == n
    runners = {a.runner_id for a in sm.open_store(ws).attempts(sweep_id)}
    assert len(runners) == 2, "both runners should have taken work"
    assert_each_cell_succeeded_once(ws, sweep_id, n)


@pytest.mark.slow
def test_two_runners_on_a_sqlite_queue_never_share_a_job(tmp_path):
    ws = make_ws(tmp_path / "ws", delay=0.05)
    sweep_id = _two_runners(ws)
    _assert_each_job_ran_once(ws, sweep_id, 32)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_runners_on_a_postgres_queue_never_share_a_job(tmp_path, pg_url):
    ws = make_ws(tmp_path / "ws", delay=0.05, extra=f'[control]\nurl = "{pg_url}"\n')
    sweep_id = _two_runners(ws)
    assert not ws.control_path.exists()  # the queue really is in Postgres
    _assert_each_job_ran_once(ws, sweep_id, 32)


def main(ws: Workspace, capsys, *args: str) -> tuple[int, str, str]:
    """``fle-core`` in-process (the runner tests run it as a real process)."""
    from fle_core.cli import main as cli_main

    code = cli_main(["--workspace", str(ws.root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_launch_status_pause_resume_retry_cancel(tmp_path, capsys):
    ws = make_ws(tmp_path / "ws")
    path = save_config(config(ws, models=["ok", "crash"]), tmp_path / "sweep.toml")
    code, out, err = main(ws, capsys, "sweep", "launch", str(path), "--no-runner")
    assert code == 0, err
    sweep_id = out.strip().splitlines()[0]
    assert main(ws, capsys, "sweep", "list")[1].count(sweep_id[:20]) == 1
    status = json.loads(main(ws, capsys, "sweep", "status", sweep_id, "--json")[1])
    assert status["counts"]["pending"] == 2 and status["total"] == 2
    assert main(ws, capsys, "sweep", "pause", sweep_id)[0] == 0
    assert sm.status(ws, sweep_id).status == "paused"
    assert main(ws, capsys, "runner", "--once", "--no-sync")[0] == 0
    assert executions(ws) == []
    code, out, _ = main(ws, capsys, "sweep", "resume", sweep_id, "--no-runner")
    assert code == 0 and "touched 0" in out
    assert main(ws, capsys, "runner", "--once", "--no-sync")[0] == 0
    assert sm.status(ws, sweep_id).status == "completed"
    assert "exit code 3" in main(ws, capsys, "sweep", "failures", sweep_id)[1]
    assert (
        main(ws, capsys, "sweep", "retry", sweep_id, "--no-runner")[1].strip().endswith("touched 1 cell(s)")
    )
    assert sm.status(ws, sweep_id).counts["pending"] == 1
    code, out, _ = main(ws, capsys, "sweep", "cancel", sweep_id)
    assert code == 0 and "touched 1" in out
    assert sm.status(ws, sweep_id).status == "cancelled"


def test_cli_errors_exit_non_zero(tmp_path, capsys):
    ws = make_ws(tmp_path / "ws")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "models": [], "tasks": ["iron_ore_throughput"]}))
    code, _, err = main(ws, capsys, "sweep", "launch", str(bad))
    assert code == 2 and "no models" in err and "Traceback" not in err
    code, _, err = main(ws, capsys, "sweep", "status", "no-such-sweep")
    assert code == 2 and "Unknown sweep" in err
    big = tmp_path / "big.json"
    big.write_text(
        json.dumps(
            {
                "name": "b",
                "models": ["ok"],
                "tasks": ["iron_ore_throughput"],
                "executor": "job",
                "num_trials_per_config": 2500,
            }
        )
    )
    assert main(ws, capsys, "sweep", "launch", str(big), "--no-runner")[0] == 2
    code, out, err = main(ws, capsys, "sweep", "launch", str(big), "--no-runner", "--yes")
    assert code == 0, err
    assert sm.status(ws, out.strip()).total == 2500
    unknown = tmp_path / "u.json"
    unknown.write_text(
        json.dumps({"name": "u", "models": ["ok"], "tasks": ["iron_ore_throughput"], "executor": "rm -rf"})
    )
    code, _, err = main(ws, capsys, "sweep", "launch", str(unknown), "--no-runner")
    assert code == 2 and "Unknown executor" in err
    # The real console entry point, once: a failure is one line and exit code 2.
    proc = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "sweep", "pause", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: Unknown sweep")


def _stop_runners(ws: Workspace) -> None:
    for r in sm.runners(ws).filter(pl.col("alive")).iter_rows(named=True):
        try:
            os.kill(r["pid"], signal.SIGTERM)
        except ProcessLookupError:
            continue
        wait_for(lambda pid=r["pid"]: not alive(pid), timeout=20)


def test_ensure_runner_starts_one_detached_runner(tmp_path):
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["ok"], num_trials_per_config=3))
    pid = sm.ensure_runner(ws, extra_args=["--no-sync"])
    try:
        assert pid and alive(pid)
        wait_for(lambda: sm.runners(ws)["alive"].any(), timeout=30)
        assert sm.ensure_runner(ws) is None  # one is alive already
        wait_for(lambda: sm.status(ws, sweep_id).status == "completed", timeout=30)
        row = sm.runners(ws).row(0, named=True)
        assert row["pid"] == pid and row["status"] == "running"
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), timeout=20)
    assert sm.runners(ws).row(0, named=True)["alive"] is False


def test_a_runner_stopped_from_the_app_leaves_no_zombie(tmp_path):
    """The app (this process) starts a runner and stops it: once it exits, its pid is gone
    from the process table, not left as a zombie until the app itself exits."""
    ws = make_ws(tmp_path / "ws")
    pid = sm.ensure_runner(ws, extra_args=["--no-sync"])
    assert pid
    runner_id = wait_for(lambda: next(iter(sm.runners(ws).filter(pl.col("alive"))["runner_id"]), None))
    assert sm.stop_runner(ws, runner_id) == pid
    # nothing here waits on the child: only whoever started it can reap it
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=20), (
        f"runner {pid} exited but stays in the process table: "
        + Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    )


def test_sweep_manager_scripting_api(tmp_path):
    ws = make_ws(tmp_path / "ws", delay=0.0)
    cfg = config(ws, models=["ok-a", "ok-b", "ok-c"], num_trials_per_config=2)
    mgr = SweepManager(cfg, workspace=ws)
    frame = mgr.run_sweep(sync=False)
    assert frame.height == 6 and set(frame["status"]) == {"succeeded"}
    assert mgr.status().status == "completed"
    again = SweepManager.resume_sweep(cfg, mgr.sweep_id, ws)
    frame2 = again.run_sweep(sync=False)  # resume of a finished sweep: nothing reruns
    assert frame2.select("cell_id", "version").equals(frame.select("cell_id", "version"))
    assert len(versions_with_rows(ws)) == 6 and len(executions(ws)) == 6
    presets = {p["name"]: p for p in sm.executor_presets(ws)}
    assert {"simulate", "simulate-fast", "fle", "fle-legacy"} <= set(presets)
    assert presets["fle"]["command"][:2] == ["fle", "inspect-eval"]
    assert presets["fle-legacy"]["command"][:2] == ["fle", "eval"]
    att = sm.attempts_frame(ws)
    assert att.columns == [
        "source",
        "version",
        "sweep_id",
        "cell_id",
        "model",
        "task",
        "params_json",
        "trial",
        "attempt",
        "status",
    ]
    assert att.height == 6 and set(att["source"]) == {"local"}


@pytest.mark.slow
def test_wandb_offline_runs_hold_the_logged_values(workspace, tmp_path):
    ws = workspace
    cfg = SweepConfig(
        name="wb",
        models=["gpt-4o"],
        tasks=["iron_ore_throughput"],
        num_trials_per_config=2,
        executor="simulate-fast",
        max_concurrent=2,
        wandb=True,
        wandb_project="fle-test",
        tags=["nightly"],
        max_retries=0,
    )
    mgr = SweepManager(cfg, workspace=ws)
    mgr.run_sweep(sync=False)
    from fle_core.tracking import read_offline_run

    wandb_dir = Path(os.environ["WANDB_DIR"])
    runs = [read_offline_run(p) for p in sorted(wandb_dir.rglob("offline-run-*")) if p.is_dir()]
    jobs = [r for r in runs if r.job_type == "trajectory"]
    summaries = [r for r in runs if r.job_type == "sweep_summary"]
    events = [e for e in sm.open_store(ws).events(mgr.sweep_id) if e["kind"].startswith("wandb")]
    assert (len(jobs), len(summaries)) == (2, 1), (runs, events)
    attempts = {a.version: a for a in sm.open_store(ws).attempts(mgr.sweep_id)}
    for run in jobs:
        assert f"sweep:{mgr.sweep_id}" in run.tags and "nightly" in run.tags
        assert run.project == "fle-test"
        cfgd = run.config
        assert cfgd["sweep_id"] == mgr.sweep_id and cfgd["completion_status"] == "successful"
        assert cfgd["version"] in attempts and cfgd["attempt"] == 1 and cfgd["retry_count"] == 0
        # History matches the rows the simulator wrote for this version.
        import sqlite3

        con = sqlite3.connect(ws.local_source_path)
        rows = con.execute(
            "SELECT depth, value FROM programs WHERE version = ? ORDER BY depth", (cfgd["version"],)
        ).fetchall()
        con.close()
        assert [h["reward"] for h in run.history] == pytest.approx([v for _, v in rows])
        assert run.summary["final_reward"] == pytest.approx(rows[-1][1])
    table = summaries[0].table("sweep_summary")
    assert table.row(0, named=True)["cells"] == 2 and table.row(0, named=True)["n"] == 2


def test_sweep_manager_status_summary_and_final_report_in_output_dir(workspace, tmp_path):
    """SweepConfig(output_dir=...) gets the old framework's sweep report (JSON + Markdown),
    checked against success counted straight from the source's programs rows."""
    import sqlite3

    out = tmp_path / "results"
    cfg = SweepConfig(
        name="report",
        models=["gpt-4o (simulated)", "gpt-4o-mini (simulated)"],
        tasks=["iron_ore_throughput"],
        num_trials_per_config=3,
        executor="simulate-fast",
        max_concurrent=2,
        max_retries=0,
        output_dir=str(out),
        description="nightly check",
    )
    mgr = SweepManager(cfg, workspace=workspace)
    assert mgr.get_status_summary()["total_jobs"] == 0  # not launched yet
    mgr.run_sweep()
    summary = mgr.get_status_summary()
    assert (summary["total_jobs"], summary["completed"], summary["pending"]) == (6, 6, 0)
    assert summary["completion_rate"] == 1.0 and summary["elapsed_time"].total_seconds() > 0
    files = sorted(out.iterdir())
    assert [p.suffix for p in files] == [".json", ".md"]
    report = json.loads(files[0].read_text())
    assert report["sweep_id"] == mgr.sweep_id and report["sweep_config"]["description"] == "nightly check"
    assert report["execution_summary"]["total_trajectories"] == 6
    con = sqlite3.connect(workspace.local_source_path)
    best = con.execute(
        "SELECT model, version, max(value) FROM programs WHERE json_extract(meta, '$.sweep_id') = ? "
        "GROUP BY model, version, instance",
        (mgr.sweep_id,),
    ).fetchall()
    for model in cfg.models:
        mine = [b for m, _, b in best if m == model]
        got = report["results_by_model"][model]
        assert got["num_trajectories"] == len(mine) == 3
        assert got["success_count"] == sum(b >= 16 for b in mine)
    text = files[1].read_text()
    assert f"# Sweep report: {mgr.sweep_id}" in text and "## Results by model" in text
    assert "| gpt-4o (simulated) | 3 |" in text
    again = mgr.generate_final_report()
    assert (
        len(again["files"]) == 2 and again["results_by_task"]["iron_ore_throughput"]["num_trajectories"] == 6
    )
