"""Slurm pilots on a real one-node cluster (munged, slurmctld, slurmd; tests/slurm_cluster.py).

Every sweep here is worked only by pilots that ``fle-core runner --slurm N`` (or
``sweep launch/resume --slurm N``) submitted with the real ``sbatch``; states come
from the real ``squeue``/``scontrol``; cancels are real ``scancel``s. Jobs are the
simulator or ``JOB_SCRIPT`` from runner_helpers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from runner_helpers import alive, config, executions, make_ws, wait_for

from fle_core import sweeps as sm
from fle_core import warehouse
from fle_core.sweeps import slurm as slurm_mod
from fle_core.sweeps.config import SweepConfig
from fle_core.workspace import Workspace

pytestmark = pytest.mark.slurm


def cli(ws: Workspace, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def submit(ws: Workspace, *args: str) -> str:
    """``fle-core runner --slurm ...``: the Slurm job id it prints."""
    return cli(ws, "runner", "--lease-seconds", "5", *args).stdout.strip()


def states(cluster, job_id: str) -> dict[str, str]:
    out = cluster.run("squeue", "-h", "-r", "--states=all", f"--jobs={job_id}", "-o", "%i|%T").stdout
    return dict(line.split("|") for line in out.split())


def runner_of(ws: Workspace, job_id: str, task: int) -> str | None:
    for r in sm.open_store(ws).runners():
        if (r.slurm_job_id, r.slurm_array_task_id) == (job_id, task):
            return r.runner_id
    return None


@pytest.mark.postgres
@pytest.mark.slow
def test_pilots_alone_complete_24_cells_exactly_once_while_one_is_scancelled(slurm, tmp_path, pg_url):
    """A 24-cell simulated sweep on a Postgres control store, worked only by three pilots;
    array task 1 is scancel'ed while it runs jobs. Its jobs are requeued (not failed), the
    others finish the sweep, every cell succeeds exactly once, and no pilot opened the
    warehouse: the app host's sync afterwards brings in all 24."""
    ws_root = tmp_path / "ws"
    ws_root.mkdir()
    (ws_root / "config.toml").write_text(
        f'[control]\nurl = "{pg_url}"\n\n[executors.sim]\nkind = "simulate"\nsteps = 8\nstep_delay = 0.25\n'
    )
    ws = Workspace.open(ws_root)
    cfg = SweepConfig(
        name="slurm24",
        models=["gpt-4o", "claude-3-5-sonnet", "gpt-4o-mini", "llama-3.3-70b"],
        tasks=["iron_ore_throughput", "iron_plate_throughput"],
        num_trials_per_config=3,
        executor="sim",
        max_concurrent=6,
        max_retries=0,
        timeout_s=120,
    )
    sweep_id = sm.launch(ws, cfg)
    job = submit(ws, "--slurm", "3", "--max-concurrent", "2", "--grace-seconds", "30")
    assert job.isdigit()
    st = sm.open_store(ws)

    def busy_task_1():
        rid = runner_of(ws, job, 1)
        running = [a for a in st.attempts(sweep_id) if a.runner_id == rid and a.status == "running"]
        return rid if rid and running else None

    victim = wait_for(busy_task_1, timeout=60)
    slurm.run("scancel", f"{job}_1")
    wait_for(lambda: sm.status(ws, sweep_id).status == "completed", timeout=180)
    wait_for(lambda: set(states(slurm, job).values()) <= slurm_mod.TERMINAL_STATES, timeout=60)

    cells = st.cells(sweep_id)
    assert len(cells) == 24 and {(c.status, c.failures) for c in cells} == {("succeeded", 0)}
    attempts = st.attempts(sweep_id)
    assert sorted(a.cell_id for a in attempts if a.status == "succeeded") == sorted(c.cell_id for c in cells)
    assert len({a.version for a in attempts}) == len(attempts)
    cut = {a.outcome for a in attempts if a.runner_id == victim}
    assert "requeued" in cut and cut <= {"succeeded", "requeued"}, cut  # scancel cost no retry
    assert {a.outcome for a in attempts} <= {"succeeded", "requeued"}
    assert states(slurm, job) == {f"{job}_0": "COMPLETED", f"{job}_1": "CANCELLED", f"{job}_2": "COMPLETED"}

    view = sm.pilots(ws)
    assert view.slurm_error is None
    rows = {r["pilot"]: r for r in view.frame.iter_rows(named=True)}
    assert sorted(rows) == [f"{job}_0", f"{job}_1", f"{job}_2"]
    assert rows[f"{job}_1"]["slurm_state"] == "CANCELLED"
    assert sum(r["jobs_run"] for r in rows.values()) == len(attempts)
    assert all(Path(r["log_path"]).is_file() and r["node"] == slurm.host for r in rows.values())

    assert not ws.warehouse_path.exists()  # pilots wrote the source and the control store only
    from fle_core.warehouse import reader
    from fle_core.warehouse.sync import sync

    sync(ws, attempts=sm.attempts_for_sync(ws))  # the app host syncs what they wrote
    with reader(ws) as con:
        n = con.execute(
            "SELECT COUNT(*) FROM sweep_attempts WHERE sweep_id = ? AND status = 'succeeded'", [sweep_id]
        ).fetchone()[0]
    assert n == 24


@pytest.mark.slow
def test_a_pilot_at_its_time_limit_requeues_its_job_and_another_pilot_completes_it(slurm, tmp_path):
    """Pilot A has a one-minute limit and asks for SIGTERM 59 s before it (``--signal``);
    its job needs longer (``long`` hangs on a first attempt). When the signal comes, A
    drains for 2 s, requeues the job and exits before the limit; pilot B, submitted with
    a longer limit, completes it. No retry is used."""
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["long"], max_retries=0, timeout_s=600))
    a = submit(ws, "--slurm", "1", "--time=1", "--grace-seconds", "59", "--drain-timeout", "2")
    wait_for(lambda: len(executions(ws)) == 1, timeout=60)
    b = submit(ws, "--slurm", "1", "--time=10")
    wait_for(lambda: sm.status(ws, sweep_id).status == "completed", timeout=120)
    first, second = sm.open_store(ws).attempts(sweep_id)
    assert (first.outcome, first.status, first.runner_id) == ("requeued", "superseded", runner_of(ws, a, 0))
    assert (second.outcome, second.runner_id) == ("succeeded", runner_of(ws, b, 0))
    assert sm.open_store(ws).cells(sweep_id)[0].failures == 0
    assert not alive(executions(ws)[0]["pid"])
    wait_for(lambda: states(slurm, a) == {f"{a}_0": "COMPLETED"}, timeout=60)  # drained before the limit
    log = Path(ws.logs_dir / "slurm" / f"pilot-{a}_0.log").read_text()
    assert "requeued 1" in log


@pytest.mark.slow
def test_two_sweeps_on_one_cluster_pilots_never_run_a_paused_or_cancelled_sweep(slurm, tmp_path):
    """Two sweeps share two pilots. Sweep B is paused, then sweep A is cancelled: no job of
    either starts after that, and since no other sweep needs the pilots any more, the
    cancel scancels them. Resuming B with a pilot of its own finishes it, each cell once."""
    ws = make_ws(tmp_path / "ws", delay=1.5)
    sweep_a = sm.launch(ws, config(ws, name="A", models=[f"slow-a{i}" for i in range(8)], max_concurrent=2))
    sweep_b = sm.launch(ws, config(ws, name="B", models=[f"slow-b{i}" for i in range(8)], max_concurrent=2))
    job = submit(ws, "--slurm", "2", "--max-concurrent", "2")
    st = sm.open_store(ws)
    wait_for(lambda: any(c.status == "succeeded" for c in st.cells(sweep_b)), timeout=60)
    sm.pause(ws, sweep_b)
    t_pause = time.time()
    wait_for(lambda: not any(c.status == "running" for c in st.cells(sweep_b)), timeout=30)
    wait_for(lambda: sum(c.status == "succeeded" for c in st.cells(sweep_a)) >= 2, timeout=60)
    sm.cancel(ws, sweep_a)
    t_cancel = time.time()
    wait_for(lambda: set(states(slurm, job).values()) <= slurm_mod.TERMINAL_STATES, timeout=60)
    assert set(states(slurm, job).values()) == {"CANCELLED"}
    assert [s.status for s in st.submissions()] == ["cancelled"]
    assert all(a.started_at <= t_pause for a in st.attempts(sweep_b))
    assert all(a.started_at <= t_cancel for a in st.attempts(sweep_a))
    assert {c.status for c in st.cells(sweep_a)} <= {"succeeded", "cancelled"}
    assert {a.outcome for a in st.attempts(sweep_a)} <= {"succeeded", "cancelled"}
    b_cells = st.cells(sweep_b)
    assert {c.status for c in b_cells} == {"succeeded", "pending"} and {c.failures for c in b_cells} == {0}

    out = cli(ws, "sweep", "resume", sweep_b, "--slurm", "1", "--jobs-per-pilot", "2").stdout
    assert "pilots: Slurm job" in out
    wait_for(lambda: sm.status(ws, sweep_b).status == "completed", timeout=120)
    assert_each_cell_succeeded_once_of(ws, sweep_b, 8)


def assert_each_cell_succeeded_once_of(ws: Workspace, sweep_id: str, n: int) -> None:
    st = sm.open_store(ws)
    cells = st.cells(sweep_id)
    ok = [a for a in st.attempts(sweep_id) if a.status == "succeeded"]
    assert len(cells) == n and {c.status for c in cells} == {"succeeded"}
    assert sorted(a.cell_id for a in ok) == sorted(c.cell_id for c in cells)
    runs = [r for r in executions(ws) if r["cell"] in {c.cell_id for c in cells}]
    assert len(runs) == n  # each ran once: nothing after the pause, nothing twice


def test_cancelling_a_sweep_scancels_the_pilots_launched_for_it(slurm, tmp_path):
    ws = make_ws(tmp_path / "ws")
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(config(ws, name="C", models=["hang-1", "hang-2"], max_concurrent=2).model_dump_json())
    out = cli(ws, "sweep", "launch", str(cfg_path), "--slurm", "1", "--jobs-per-pilot", "2").stdout
    sweep_id, pilots_line = out.splitlines()[:2]
    job = pilots_line.split("Slurm job ")[1].split()[0]
    wait_for(lambda: len(executions(ws)) == 2, timeout=60)
    cli(ws, "sweep", "cancel", sweep_id)
    wait_for(lambda: states(slurm, job) == {f"{job}_0": "CANCELLED"}, timeout=60)
    st = sm.open_store(ws)
    wait_for(lambda: {c.status for c in st.cells(sweep_id)} == {"cancelled"}, timeout=30)
    assert {a.outcome for a in st.attempts(sweep_id)} == {"cancelled"}
    assert not any(alive(r["pid"]) or alive(r["grandchild"]) for r in executions(ws))
    assert st.submissions()[0].status == "cancelled"


def test_shell_syntax_in_slurm_options_reaches_sbatch_as_literal_argv(slurm, tmp_path):
    """A partition and extra args full of shell syntax: sbatch receives each as one literal
    argv element. The refused partition comes back verbatim in Slurm's own error and the
    sweep stays queued; accepted ones show up verbatim in the job record; the batch
    script is the constant one; no marker file is ever created."""
    marks = [Path(f"/tmp/fle-pwned-{uuid.uuid4().hex}-{i}") for i in range(4)]
    partition = f"debug; touch {marks[0]}"
    ws = make_ws(
        tmp_path / "ws",
        extra=f"[slurm]\nextra_args = {json.dumps([f'--comment=$(touch {marks[1]}) `id` ; x'])}\n",
    )
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(config(ws, models=["ok"]).model_dump_json())
    refused = cli(
        ws, "sweep", "launch", str(cfg_path), "--slurm", "1", f"--partition={partition}", check=False
    )
    assert refused.returncode == 2
    sweep_id = refused.stdout.strip()
    assert f"sweep {sweep_id} is queued, but no Slurm pilots were submitted" in refused.stderr
    assert "invalid partition" in refused.stderr.lower() and partition in refused.stderr
    st = sm.open_store(ws)
    assert sm.status(ws, sweep_id).status == "active" and {c.status for c in st.cells(sweep_id)} == {
        "pending"
    }
    assert st.submissions() == [] and st.runners() == []

    sm.cancel(ws, sweep_id)  # nothing to run: the accepted pilot below starts and exits
    job = submit(ws, "--slurm", "1", f"--sbatch-arg=--job-name=x'$(touch {marks[2]})'", "--mem", "100M")
    wait_for(lambda: states(slurm, job) == {f"{job}_0": "COMPLETED"}, timeout=60)
    record = slurm.run("scontrol", "show", "job", job).stdout
    assert f"Comment=$(touch {marks[1]}) `id` ; x" in record
    assert f"JobName=x'$(touch {marks[2]})'" in record
    assert "runner --once --no-sync" in record
    script = slurm.run("scontrol", "write", "batch_script", job, "-").stdout
    assert script == slurm_mod.PILOT_SCRIPT
    assert not any(m.exists() for m in marks)


def test_sbatch_missing_or_failing_is_a_clear_error_and_the_sweep_stays_queued(slurm, tmp_path, monkeypatch):
    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["ok"]))
    st = sm.open_store(ws)
    empty = tmp_path / "bin"
    empty.mkdir()
    with monkeypatch.context() as m:
        m.setenv("PATH", str(empty))
        with pytest.raises(slurm_mod.SlurmError, match="sbatch is not on PATH") as missing:
            sm.submit_pilots(ws, 2, sweep_ids=[sweep_id])
    assert "queued sweeps stay queued" in (missing.value.hint or "")
    dead = tmp_path / "dead.conf"  # a controller nobody listens on
    text = Path(slurm.conf).read_text()
    port = next(line for line in text.splitlines() if line.startswith("SlurmctldPort="))
    dead.write_text(text.replace(port, "SlurmctldPort=9").replace("MessageTimeout=5", "MessageTimeout=1"))
    monkeypatch.setenv("SLURM_CONF", str(dead))
    with pytest.raises(slurm_mod.SlurmError, match=r"sbatch failed .*Unable to contact slurm controller"):
        sm.submit_pilots(ws, 2, sweep_ids=[sweep_id])
    with pytest.raises(slurm_mod.ConfigError, match="extra_args element 'oops'"):
        sm.submit_pilots(ws, 1, overrides={"extra_args": ["oops"]})
    assert st.submissions() == [] and st.runners() == []
    assert sm.status(ws, sweep_id).status == "active"
    assert {c.status for c in st.cells(sweep_id)} == {"pending"}


# ---- the app: launch on Slurm from the Sweeps page, pilots on the Monitor ------------------------
def test_sweeps_page_launches_on_slurm_and_the_monitor_lists_the_pilots(slurm, workspace, monkeypatch):
    from app_helpers import assert_clean, run_page, texts

    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    at = run_page("sweeps")
    at.text_input(key="new_name").set_value("ui-slurm")
    at.number_input(key="new_trials").set_value(1)  # 6 cells: 3 models x 2 tasks
    at.radio(key="new_run_on").set_value("Slurm pilots").run()
    assert_clean(at)
    assert not [c for c in at.checkbox if c.key == "new_runner"]  # the local-runner choice is gone
    assert any("fle-core runner --once" in c.value for c in at.caption)
    at.number_input(key="new_pilots").set_value(2)
    at.number_input(key="new_jobs_per_pilot").set_value(2)
    next(b for b in at.button if b.label == "Launch sweep").click().run()
    assert_clean(at)
    (sweep_id,) = sm.list_sweeps(workspace)["sweep_id"].to_list()
    (sub,) = sm.open_store(workspace).submissions()
    assert sub.sweep_ids == [sweep_id] and sub.pilots == 2
    assert any(f"job `{sub.job_id}` with 2 pilot(s)" in s.value for s in at.success)
    # pilots never write the warehouse: the app host follows the sweep and syncs for them
    follower = sm.follower_pid(workspace, sweep_id)
    assert follower and any(f"`fle-core sync --follow`, pid {follower}" in c.value for c in at.caption)
    wait_for(lambda: sm.status(workspace, sweep_id).status == "completed", timeout=120)
    wait_for(lambda: sm.follower_pid(workspace, sweep_id) is None, timeout=90)  # it ends by itself
    synced = warehouse.query(
        workspace, "SELECT count(*) AS n FROM trajectories WHERE sweep_id = ?", [sweep_id]
    )["n"][0]
    assert synced == 6  # every cell's trajectory, synced on this host only

    at = run_page("monitor", {"mon_sweep": sweep_id, "mon_live": "0"})
    assert_clean(at)
    assert any(e.label.startswith("Slurm pilots") for e in at.expander)
    table = next(d.value for d in at.dataframe if "pilot" in d.value.columns)
    assert sorted(table["pilot"]) == [f"{sub.job_id}_0", f"{sub.job_id}_1"]
    assert set(table["slurm_state"]) <= {"RUNNING", "COMPLETING", "COMPLETED"}
    attempts = sm.open_store(workspace).attempts(sweep_id)  # 6 cells; a simulated crash adds a retry
    assert table["jobs_run"].sum() == len(attempts) and len(attempts) >= 6
    assert "Stopped cells" not in texts(at)


def test_sweeps_page_without_sbatch_keeps_the_sweep_queued_and_says_so(
    slurm, workspace, monkeypatch, tmp_path
):
    from app_helpers import assert_clean, run_page

    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    empty = tmp_path / "nobin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    at = run_page("sweeps")
    at.radio(key="new_run_on").set_value("Slurm pilots").run()
    assert any("`sbatch` is not on this host's PATH" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Launch sweep").click().run()
    assert_clean(at)
    (sweep_id,) = sm.list_sweeps(workspace)["sweep_id"].to_list()
    assert any("it is queued, but no Slurm pilots were submitted" in w.value for w in at.warning)
    assert any("sbatch is not on PATH" in c.value for c in at.code)
    assert sm.status(workspace, sweep_id).status == "active"
    assert sm.open_store(workspace).submissions() == []
    monkeypatch.setenv("FLE_READ_ONLY", "1")
    at = run_page("sweeps")
    assert not [r for r in at.radio if r.key == "new_run_on"]  # read-only hides it with the rest


def test_cancel_without_slurm_tools_still_cancels_and_names_the_pilots(tmp_path, monkeypatch):
    """The app host may lack Slurm's client tools: the sweep is cancelled first, then the
    error names the pilot job to scancel by hand."""
    from fle_core.sweeps.store import PilotSubmission

    ws = make_ws(tmp_path / "ws")
    sweep_id = sm.launch(ws, config(ws, models=["ok"]))
    st = sm.open_store(ws)
    st.add_submission(
        PilotSubmission(job_id="4242", submitted_at=time.time(), pilots=2, sweep_ids=[sweep_id], log_dir="/x")
    )
    empty = tmp_path / "nobin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(
        slurm_mod.SlurmError, match=f"Sweep {sweep_id} is cancelled, but its Slurm pilots 4242"
    ) as e:
        sm.cancel(ws, sweep_id)
    assert "squeue is not on PATH" in e.value.message and "scancel 4242" in (e.value.hint or "")
    assert sm.status(ws, sweep_id).status == "cancelled"
    assert any(ev["kind"] == "pilots_cancel_failed" for ev in st.events(sweep_id))
    view = sm.pilots(ws, sweep_id=sweep_id)  # the Monitor still lists them, and says why no state
    assert (
        view.frame["pilot"].to_list() == ["4242_0", "4242_1"] and "squeue is not on PATH" in view.slurm_error
    )
