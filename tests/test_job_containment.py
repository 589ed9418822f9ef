"""Jobs cannot escape the runner (issue 23, item 13).

Real runner subprocesses run real jobs that start a ``setsid`` daemon by a double
fork (the daemon's parent is init, its session and group are its own) and a
plain double-forked orphan (same session, parent gone). On success, timeout and
cancel, every one of those processes is gone afterwards. Each case runs on both
containment routes: ``cgroup`` (a cgroup v2 directory the runner owns; this
machine allows it, and the test fails rather than skips if it does not) and
``session`` (own session + environment marker + child subreaper).

A job that prints far more than a small ``[runner] job_log_cap_mb`` leaves a log
of about the cap holding the start and the end of its output and a note of the cut.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runner_helpers import alive, config, make_ws, run_once, runner_cmd, wait_for

from fle_core import sweeps as sm
from fle_core.sweeps.containment import Containment
from fle_core.workspace import Workspace

ESCAPER = r"""
import json, os, sys, time
out, model = sys.argv[1], os.environ["FLE_MODEL"]
def spawn(new_session):
    r, w = os.pipe()
    if os.fork() == 0:                      # child
        if new_session:
            os.setsid()
        if os.fork() == 0:                  # grandchild: parent exits, so it is re-parented
            os.close(r)
            os.write(w, str(os.getpid()).encode()); os.close(w)
            for fd in (0, 1, 2):            # a real daemon lets go of the job's output too
                os.dup2(os.open(os.devnull, os.O_RDWR), fd)
            time.sleep(300)
            os._exit(0)
        os._exit(0)
    os.close(w)
    pid = int(os.read(r, 32)); os.close(r)
    return pid
rec = {"pid": os.getpid(), "daemon": spawn(True), "orphan": spawn(False), "model": model}
with open(out, "a") as fh:
    fh.write(json.dumps(rec) + "\n")
if model.startswith("hang"):
    time.sleep(300)
"""

CHATTY = r"""
import os, sys
line = b"x" * 99 + b"\n"
sys.stdout.buffer.write(b"FIRST-LINE\n")
for _ in range(int(os.environ["CHATTY_LINES"])):
    sys.stdout.buffer.write(line)
sys.stdout.buffer.write(b"LAST-LINE\n")
sys.stdout.flush()
"""


def escaper_ws(root: Path, route: str, extra: str = ""):
    """A workspace whose ``job`` preset runs ESCAPER on the given containment route."""
    make_ws(root, extra=f'[runner]\ncontainment = "{route}"\n{extra}')
    script = root / "escaper.py"
    script.write_text(ESCAPER)
    cfg = (root / "config.toml").read_text()
    (root / "config.toml").write_text(
        cfg
        + f'\n[executors.escaper]\nkind = "command"\ncommand = {json.dumps([sys.executable, str(script), str(root / "escapes.jsonl")])}\n'
    )
    return Workspace.open(root)


def escapes(root: Path) -> list[dict]:
    path = root / "escapes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def all_gone(recs: list[dict]) -> bool:
    return not any(alive(r[k]) for r in recs for k in ("pid", "daemon", "orphan"))


def test_the_cgroup_route_is_available_on_this_machine():
    """The CI machine allows the cgroup route; if this fails, the cgroup cases below would
    silently test the session route, so it is said here."""
    c = Containment("auto")
    try:
        assert c.route == "cgroup", c.why
    finally:
        c.close()


@pytest.mark.parametrize("route", ["cgroup", "session"])
def test_a_setsid_daemon_and_a_double_fork_die_with_a_successful_job(tmp_path, route):
    ws = escaper_ws(tmp_path / "ws", route)
    sweep_id = sm.launch(ws, config(ws, models=["ok-a", "ok-b"], executor="escaper"))
    run_once(ws)
    recs = escapes(ws.root)
    assert len(recs) == 2
    assert all(r["daemon"] != r["pid"] for r in recs)
    wait_for(lambda: all_gone(recs), timeout=5)
    # the job wrote no rows, so it fails as "empty"; what matters is that it ran and ended
    assert {a.exit_code for a in sm.open_store(ws).attempts(sweep_id)} == {0}


@pytest.mark.parametrize("route", ["cgroup", "session"])
def test_a_setsid_daemon_dies_with_a_timed_out_job(tmp_path, route):
    ws = escaper_ws(tmp_path / "ws", route)
    sweep_id = sm.launch(ws, config(ws, models=["hang"], executor="escaper", timeout_s=1.5))
    run_once(ws)
    (rec,) = escapes(ws.root)
    wait_for(lambda: all_gone([rec]), timeout=5)
    (a,) = sm.open_store(ws).attempts(sweep_id)
    assert a.outcome == "timed_out"


@pytest.mark.parametrize("route", ["cgroup", "session"])
def test_a_setsid_daemon_dies_with_a_cancelled_job(tmp_path, route):
    ws = escaper_ws(tmp_path / "ws", route)
    sweep_id = sm.launch(ws, config(ws, models=["hang-a", "hang-b"], executor="escaper"))
    runner = subprocess.Popen(
        runner_cmd(ws, "--max-concurrent", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(escapes(ws.root)) == 2)
        recs = escapes(ws.root)
        assert all(alive(r["daemon"]) and alive(r["orphan"]) for r in recs)
        sm.cancel(ws, sweep_id)
        wait_for(lambda: {c.status for c in sm.open_store(ws).cells(sweep_id)} == {"cancelled"}, timeout=20)
        wait_for(lambda: all_gone(recs), timeout=5)
        assert runner.poll() is None
    finally:
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 0, runner.stderr.read()


def test_a_runner_left_no_cgroup_behind(tmp_path):
    """The runner's cgroup directories are removed when it stops."""
    ws = escaper_ws(tmp_path / "ws", "cgroup")
    sm.launch(ws, config(ws, models=["ok"], executor="escaper"))
    before = _runner_cgroups()
    run_once(ws)
    assert _runner_cgroups() == before


def _runner_cgroups() -> set[str]:
    c = Containment("cgroup")
    try:
        assert c.base is not None
        return {p.name for p in c.base.parent.glob("fle-runner-*")} - {c.base.name}
    finally:
        c.close()


def test_a_job_printing_far_past_the_cap_leaves_head_tail_and_a_note(tmp_path):
    """20 MB of output against a 1 MB cap: the log is about 1 MB, starts with the first
    line, ends with the last one and the exit footer, and says how much was cut."""
    root = tmp_path / "ws"
    ws = make_ws(root, extra="[runner]\njob_log_cap_mb = 1\n")
    (root / "chatty.py").write_text(CHATTY)
    cmd = [sys.executable, str(root / "chatty.py")]
    (root / "config.toml").write_text(
        (root / "config.toml").read_text()
        + f'\n[executors.chatty]\nkind = "command"\ncommand = {json.dumps(cmd)}\nenv = {{ CHATTY_LINES = "200000" }}\n'
    )
    ws = Workspace.open(root)
    sweep_id = sm.launch(ws, config(ws, models=["loud"], executor="chatty"))
    run_once(ws)
    (a,) = sm.open_store(ws).attempts(sweep_id)
    log = Path(a.log_path).read_bytes()
    assert 1_000_000 < len(log) < 1_002_000, len(log)
    assert b"FIRST-LINE\n" in log[:2000]
    assert b"x\nLAST-LINE\n\n# exit 0;" in log[-200:]
    total = 11 + 200_000 * 100 + 10
    note = [line for line in log.splitlines() if line.startswith(b"# [fle-core:")]
    assert len(note) == 1 and f"of {total:,} bytes are kept".encode() in note[0]
    assert not list(Path(a.log_path).parent.glob("*.tail*"))  # the tail files are gone


def test_output_under_the_cap_is_kept_whole(tmp_path):
    root = tmp_path / "ws"
    ws = make_ws(root, extra="[runner]\njob_log_cap_mb = 1\n")
    (root / "chatty.py").write_text(CHATTY)
    cmd = [sys.executable, str(root / "chatty.py")]
    (root / "config.toml").write_text(
        (root / "config.toml").read_text()
        + f'\n[executors.chatty]\nkind = "command"\ncommand = {json.dumps(cmd)}\nenv = {{ CHATTY_LINES = "5000" }}\n'
    )
    ws = Workspace.open(root)
    sweep_id = sm.launch(ws, config(ws, models=["quiet"], executor="chatty"))
    run_once(ws)
    (a,) = sm.open_store(ws).attempts(sweep_id)
    log = Path(a.log_path).read_bytes()
    assert log.count(b"x" * 99 + b"\n") == 5000 and b"fle-core:" not in log


def test_a_daemon_left_by_a_runner_killed_with_sigkill_is_ended_by_the_next_runner(tmp_path):
    """``kill -9`` of the runner: the job's leader dies with it (parent-death signal), its
    ``setsid`` daemon does not, until the next runner on the host starts and finds the
    dead runner's cgroup."""
    ws = escaper_ws(tmp_path / "ws", "cgroup")
    sm.launch(ws, config(ws, models=["hang"], executor="escaper"))
    first = subprocess.Popen(runner_cmd(ws), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(escapes(ws.root)) == 1)
        (rec,) = escapes(ws.root)
    finally:
        first.kill()
        first.wait()
    wait_for(lambda: not alive(rec["pid"]), timeout=5)
    assert alive(rec["daemon"])  # nothing but a cgroup holds it now
    second = subprocess.Popen(runner_cmd(ws), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: not alive(rec["daemon"]) and not alive(rec["orphan"]), timeout=30)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)
    for r in escapes(ws.root):  # the rerun of the cell was stopped by the SIGINT above
        wait_for(lambda r=r: all_gone([r]), timeout=5)


@pytest.mark.parametrize(
    "line",
    ['containment = "jail"', "job_log_cap_mb = -1", 'job_log_cap_mb = "lots"', "store_outage_max_s = 0"],
)
def test_a_bad_runner_setting_is_one_clear_error(tmp_path, line):
    ws = make_ws(tmp_path / "ws", extra=f"[runner]\n{line}\n")
    proc = subprocess.run(runner_cmd(ws, "--once"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: [runner]"), proc.stderr
