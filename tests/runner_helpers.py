"""Sweep-runner plumbing shared by the runner, Slurm and fault tests: a workspace with a
sweep, the runner's argv, waiting on cells, and checks that every cell ran once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from fle_core import sweeps as sm
from fle_core.sweeps.config import SweepConfig, task_registry
from fle_core.workspace import Workspace

JOB_SCRIPT = r"""
import json, os, sqlite3, subprocess, sys, time
out, url, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
model = os.environ["FLE_MODEL"]
rec = {"argv": argv, "url": url, "pid": os.getpid(), "cell": os.environ["FLE_CELL_ID"],
       "attempt": int(os.environ["FLE_ATTEMPT"]), "version": int(os.environ["FLE_VERSION"]),
       "env": {k: v for k, v in os.environ.items() if k.startswith("FLE_")}}
if model.startswith("hang"):
    gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    rec["grandchild"] = gc.pid
with open(out, "a") as fh:
    fh.write(json.dumps(rec) + "\n")
if model.startswith("hang") or (model.startswith("long") and rec["attempt"] == 1):
    time.sleep(300)
if model.startswith("killer"):
    os.kill(os.getppid(), 9)
    time.sleep(60)
if model.startswith("slow"):
    time.sleep(float(os.environ.get("JOB_DELAY", "0.3")))
if model.startswith("crash"):
    sys.exit(3)
if model.startswith("empty"):
    sys.exit(0)
from fle_core.sources.programs_schema import programs_ddl
con = sqlite3.connect(url[len("sqlite:///"):], timeout=60)
con.execute("PRAGMA busy_timeout = 60000")
for _ in range(200):  # two jobs creating a new file: switching to WAL can be BUSY without waiting
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute(programs_ddl("sqlite"))
        break
    except sqlite3.OperationalError:
        time.sleep(0.05)
with con:
    for d in range(3):
        con.execute("INSERT INTO programs (version, depth, value, model, instance, meta) VALUES (?,?,?,?,0,?)",
                    (rec["version"], d, float(d), model, json.dumps({"sweep_id": os.environ["FLE_SWEEP_ID"]})))
"""


def make_ws(root: Path, extra: str = "", delay: float = 0.3) -> Workspace:
    """A workspace whose config has a ``job`` command preset running JOB_SCRIPT."""
    root.mkdir(parents=True, exist_ok=True)
    script = root / "job.py"
    script.write_text(JOB_SCRIPT)
    execs = root / "executions.jsonl"
    cmd = [
        sys.executable,
        str(script),
        str(execs),
        "{source_url}",
        "{model}",
        "{task}",
        "{version}",
        "{params_json}",
    ]
    (root / "config.toml").write_text(
        f'[executors.job]\nkind = "command"\ncommand = {json.dumps(cmd)}\n'
        f'env = {{ JOB_DELAY = "{delay}" }}\n{extra}'
    )
    return Workspace.open(root)


def executions(ws: Workspace) -> list[dict]:
    path = ws.root / "executions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def config(ws: Workspace, **kw) -> SweepConfig:
    base = dict(
        name="t",
        models=["ok"],
        tasks=["iron_ore_throughput"],
        executor="job",
        max_concurrent=4,
        timeout_s=60,
        max_retries=0,
        retry_backoff_s=0,
    )
    with task_registry(ws.task_registry()):
        return SweepConfig(**{**base, **kw})


def runner_cmd(ws: Workspace, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fle_core",
        "--workspace",
        str(ws.root),
        "runner",
        "--no-sync",
        "--lease-seconds",
        "2",
        *extra,
    ]


def run_once(ws: Workspace, *extra: str, timeout: float = 90) -> subprocess.CompletedProcess:
    proc = subprocess.run(runner_cmd(ws, "--once", *extra), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(pred, timeout: float = 30, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def versions_with_rows(ws: Workspace) -> dict[int, int]:
    con = sqlite3.connect(ws.local_source_path)
    try:
        return dict(con.execute("SELECT version, COUNT(*) FROM programs GROUP BY version").fetchall())
    finally:
        con.close()


def assert_each_cell_succeeded_once(ws: Workspace, sweep_id: str, n: int) -> None:
    st = sm.open_store(ws)
    cells = st.cells(sweep_id)
    assert len(cells) == n and {c.status for c in cells} == {"succeeded"}
    attempts = st.attempts(sweep_id)
    ok = [a for a in attempts if a.status == "succeeded"]
    assert sorted(a.cell_id for a in ok) == sorted(c.cell_id for c in cells)  # exactly one each
    assert len({a.version for a in attempts}) == len(attempts)  # versions never reused
    rows = versions_with_rows(ws)
    assert all(rows.get(a.version, 0) >= 1 for a in ok)
    frame = sm.attempts_frame(ws)
    assert frame.filter(frame["status"] == "succeeded").height == n
