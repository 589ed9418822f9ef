"""The Monitor under runner and Slurm faults (issue 23: item 11's Monitor, and the hanging squeue).

* A runner whose heartbeats stopped (it cannot reach the control store, or died) was
  listed with status ``running`` right under "No runner is alive". The note and the
  table must agree: it is listed as *silent*, and the note says what that means.
* A hanging ``squeue`` blocked every Monitor render for its 20 s timeout. A render
  now waits at most 2 s, then shows the last answer and says it is stale. The hang
  is a real script on PATH that sleeps and then runs the real ``squeue`` of the test
  cluster; the states are the real cluster's.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest
from app_helpers import assert_clean, run_page, texts
from runner_helpers import config, make_ws, wait_for

from fle_core import sweeps
from fle_core.sweeps import config as sweep_config
from fle_core.sweeps.store.records import RunnerRecord


def _runner_table(at):
    return next(
        d.value for d in at.dataframe if "heartbeat_at" in d.value.columns and "host" in d.value.columns
    )


def test_a_silent_runner_is_not_listed_as_running_under_no_runner_is_alive(workspace, monkeypatch):
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    sweep_id = sweeps.launch(workspace, sweep_config.demo_config())
    now = time.time()
    sweeps.open_store(workspace).heartbeat(
        RunnerRecord(
            runner_id="r-silent",
            host="node-1",
            pid=4242,
            started_at=now - 900,
            heartbeat_at=now - 600,  # 10 min ago, lease 30 s
            lease_s=30,
            status="running",
        )
    )
    at = run_page("monitor", {"mon_sweep": sweep_id, "mon_live": "0"})
    assert_clean(at)
    body = texts(at)
    assert "No runner is alive" not in body
    assert "No runner has sent a heartbeat within its lease" in body and "silent" in body
    assert _runner_table(at)["status"].tolist() == ["silent"]


HANGING_SQUEUE = """#!{python}
import os, sys, time
time.sleep(60)
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


@pytest.mark.slurm
def test_a_hanging_squeue_does_not_block_the_monitor(slurm, tmp_path, monkeypatch):
    ws = make_ws(tmp_path / "ws")
    monkeypatch.setenv("FLE_CORE_HOME", str(ws.root))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    sweep_id = sweeps.launch(ws, config(ws, models=["hang-a"], max_concurrent=1))
    sweeps.submit_pilots(ws, 1, sweep_ids=[sweep_id], max_concurrent=1)
    wait_for(lambda: sweeps.pilots(ws).frame["slurm_state"].to_list() == ["RUNNING"], timeout=60)
    fresh = sweeps.pilots(ws, wait_s=10)  # the real squeue answers: cached as the last answer
    assert fresh.stale_s is None and fresh.frame["slurm_state"].to_list() == ["RUNNING"]

    real = _which("squeue")
    bindir = tmp_path / "hang-bin"
    bindir.mkdir()
    wrapper = bindir / "squeue"
    wrapper.write_text(HANGING_SQUEUE.format(python=sys.executable, real=real))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{path}")

    t0 = time.monotonic()
    view = sweeps.pilots(ws, wait_s=2)
    assert time.monotonic() - t0 < 10  # not squeue's 20 s timeout
    assert view.stale_s is not None and view.frame["slurm_state"].to_list() == ["RUNNING"]
    assert "did not answer within 2s" in (view.slurm_error or "")

    t0 = time.monotonic()
    at = run_page("monitor", {"mon_sweep": sweep_id, "mon_live": "0"})
    assert time.monotonic() - t0 < 15
    assert_clean(at)
    assert "Slurm states as of" in texts(at) and "(stale)" in texts(at)
    monkeypatch.setenv("PATH", path)
    sweeps.cancel(ws, sweep_id)


def _which(name: str) -> str:
    for d in os.environ["PATH"].split(os.pathsep):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise AssertionError(f"{name} is not on PATH")
