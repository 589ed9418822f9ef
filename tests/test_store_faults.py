"""Runners and Slurm pilots after an SQLite control-store fault (issue 23, item 11).

The fault is real: ``control.db`` and its WAL are made immutable (``chattr +i``, which
holds for root too, unlike ``chmod``), so every write fails, and a runner that opens
the store meanwhile gets a connection SQLite opened read-only. Runners are real
subprocesses; pilots are real ``sbatch`` jobs on the test Slurm cluster. Before the
fix a runner that opened the store during the fault never wrote again (0 cells after
the store was writable), ignored SIGTERM while it could not record, and a pilot held
its allocation for good.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_helpers import alive, config, executions, make_ws, runner_cmd, wait_for

from fle_core import sweeps as sm
from fle_core.workspace import Workspace


@pytest.fixture
def read_only_store():
    """``freeze(ws)`` / ``thaw(ws)``: make the workspace's control store immutable and back."""
    frozen: list[list[str]] = []

    def files(ws: Workspace) -> list[str]:
        return [str(ws.control_path), f"{ws.control_path}-wal"]

    def freeze(ws: Workspace) -> None:
        subprocess.run(["chattr", "+i", *files(ws)], check=True, capture_output=True)
        frozen.append(files(ws))

    def thaw(ws: Workspace) -> None:
        subprocess.run(["chattr", "-i", *files(ws)], check=True, capture_output=True)

    yield freeze, thaw
    for f in frozen:
        subprocess.run(["chattr", "-i", *f], capture_output=True)


def start_runner(ws: Workspace, *extra: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen(runner_cmd(ws, *extra), stdout=fh, stderr=subprocess.STDOUT)


def test_a_runner_started_while_the_store_is_read_only_resumes_once_it_is_writable(tmp_path, read_only_store):
    freeze, thaw = read_only_store
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=[f"slow-{i}" for i in range(4)], max_concurrent=2))
    freeze(ws)
    runner = start_runner(ws, "--once", "--max-concurrent", "2", log=tmp_path / "runner.log")
    try:
        time.sleep(4)  # it opened the store read-only and cannot heartbeat
        assert runner.poll() is None and not executions(ws)
        thaw(ws)
        assert runner.wait(timeout=60) == 0, (tmp_path / "runner.log").read_text()
    finally:
        if runner.poll() is None:
            runner.kill()
    assert {c.status for c in sm.open_store(ws).cells(sweep_id)} == {"succeeded"}
    text = (tmp_path / "runner.log").read_text()
    assert "readonly database" in text and "reachable again" in text


def test_sigterm_drains_within_the_drain_timeout_while_the_store_is_read_only(tmp_path, read_only_store):
    """Jobs run, the store turns read-only, SIGTERM: the runner stops its jobs at the drain
    timeout and exits, although it cannot record anything; no job process is left."""
    freeze, _thaw = read_only_store
    ws = make_ws(tmp_path / "ws")
    sm.launch(ws, config(ws, models=["hang-a", "hang-b"], max_concurrent=2))
    runner = start_runner(ws, "--max-concurrent", "2", "--drain-timeout", "2", log=tmp_path / "runner.log")
    try:
        wait_for(lambda: len(executions(ws)) == 2)
        freeze(ws)
        time.sleep(2)
        t0 = time.monotonic()
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 0
        took = time.monotonic() - t0
    finally:
        if runner.poll() is None:
            runner.kill()
    assert took < 2 + 3 + 10, took  # drain timeout + kill grace + one store retry
    wait_for(lambda: not any(alive(r["pid"]) or alive(r["grandchild"]) for r in executions(ws)), timeout=5)
    assert "not recorded" in (tmp_path / "runner.log").read_text()


def test_a_runner_gives_up_after_store_outage_max_s(tmp_path, read_only_store):
    """A store that stays read-only: the runner stops its jobs and exits (code 3) after
    ``[runner] store_outage_max_s``, saying why."""
    freeze, _thaw = read_only_store
    ws = make_ws(tmp_path / "ws", extra="[runner]\nstore_outage_max_s = 3\n")
    sm.launch(ws, config(ws, models=["hang-a"], max_concurrent=1))
    runner = start_runner(ws, "--max-concurrent", "1", log=tmp_path / "runner.log")
    try:
        wait_for(lambda: len(executions(ws)) == 1)
        freeze(ws)
        assert runner.wait(timeout=40) == 3
    finally:
        if runner.poll() is None:
            runner.kill()
    (rec,) = executions(ws)
    wait_for(lambda: not (alive(rec["pid"]) or alive(rec["grandchild"])), timeout=5)
    assert "store_outage_max_s" in (tmp_path / "runner.log").read_text()


# ---- Slurm pilots ---------------------------------------------------------------------------
def _submit(ws: Workspace, pilots: int) -> str:
    """Pilots that start 6 s after their submission is recorded (the store is frozen then)."""
    out = subprocess.run(
        [
            *(sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "runner"),
            *("--slurm", str(pilots), "--lease-seconds", "5", "--max-concurrent", "2"),
            "--sbatch-arg=--begin=now+6",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _states(cluster, job_id: str) -> set[str]:
    out = cluster.run("squeue", "-h", "-r", f"--jobs={job_id}", "-o", "%T", check=False).stdout
    return set(out.split())


@pytest.mark.slurm
@pytest.mark.slow
def test_pilots_that_started_during_the_fault_finish_the_sweep_once_the_store_is_back(
    slurm, tmp_path, read_only_store
):
    freeze, thaw = read_only_store
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=[f"slow-{i}" for i in range(6)], max_concurrent=4))
    job = _submit(ws, 2)
    freeze(ws)
    wait_for(lambda: _states(slurm, job) == {"RUNNING"}, timeout=60)
    time.sleep(5)
    assert not executions(ws)  # they cannot claim while the store is read-only
    thaw(ws)
    st = sm.open_store(ws)
    wait_for(lambda: {c.status for c in st.cells(sweep_id)} == {"succeeded"}, timeout=90)
    wait_for(lambda: not _states(slurm, job), timeout=60)  # --once pilots leave when done


@pytest.mark.slurm
@pytest.mark.slow
def test_a_pilot_that_cannot_reach_the_store_gives_its_allocation_back(slurm, tmp_path, read_only_store):
    freeze, _thaw = read_only_store
    ws = make_ws(tmp_path / "ws", extra="[runner]\nstore_outage_max_s = 5\n")
    sm.launch(ws, config(ws, models=["ok"], max_concurrent=1))
    job = _submit(ws, 1)
    freeze(ws)
    wait_for(lambda: _states(slurm, job) == {"RUNNING"}, timeout=60)
    t0 = time.monotonic()
    wait_for(lambda: not _states(slurm, job), timeout=60)
    assert time.monotonic() - t0 < 40
    logs = list((ws.root / "logs").rglob(f"pilot-{job}_*.log"))
    assert logs and "store_outage_max_s" in logs[0].read_text()
