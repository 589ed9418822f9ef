"""An ``sbatch`` that does not answer in time (issue 23, item 12), on the real test cluster.

``sbatch`` on PATH is a wrapper around the real one: in the first case it submits at
once and answers only 30 s later (slurmctld took the job; the reply is slow), against
``[slurm] submit_timeout_s = 3``. Before, the CLI said "no Slurm pilots were
submitted" and exited 2 while the pilots ran unrecorded (``cancel`` could not stop
them; submitting again doubled them). Now the submission is found by its unique
name, recorded, and the sweep completes with every cell once. In the second case the
wrapper only submits 5 s after it was called (a late submission after we gave up):
the timeout kills it with everything it started, nothing is ever submitted, and the
CLI says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_helpers import config, executions, make_ws, wait_for

from fle_core import sweeps as sm

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

LATE_ANSWER = """#!/bin/sh
out=$({real} "$@"); rc=$?
sleep 30
echo "$out"
exit $rc
"""

LATE_SUBMIT = """#!/bin/sh
(sleep 5; exec {real} "$@") &
wait
"""


def _which(name: str) -> str:
    for d in os.environ["PATH"].split(os.pathsep):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise AssertionError(f"{name} is not on PATH")


def _wrapped_env(tmp_path: Path, script: str) -> dict[str, str]:
    bindir = tmp_path / "slow-bin"
    bindir.mkdir()
    wrapper = bindir / "sbatch"
    wrapper.write_text(script.format(real=_which("sbatch")))
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}


def _launch(ws, tmp_path: Path, env: dict[str, str], models: list[str]) -> subprocess.CompletedProcess:
    cfg = tmp_path / "c.json"
    cfg.write_text(config(ws, models=models, max_concurrent=2).model_dump_json())
    argv = [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "sweep", "launch", str(cfg)]
    return subprocess.run(
        [*argv, "--slurm", "1", "--jobs-per-pilot", "2"], capture_output=True, text=True, timeout=120, env=env
    )


def _our_jobs(cluster) -> list[str]:
    out = cluster.run("squeue", "-h", "--states=all", "-o", "%F|%j", check=False).stdout
    return sorted({line.split("|")[0] for line in out.split() if "|fle-runner" in line})


def test_a_slow_sbatch_is_reconciled_recorded_and_never_doubled(slurm, tmp_path):
    ws = make_ws(tmp_path / "ws", extra="[slurm]\nsubmit_timeout_s = 3\n")
    before = _our_jobs(slurm)
    t0 = time.monotonic()
    proc = _launch(ws, tmp_path, _wrapped_env(tmp_path, LATE_ANSWER), ["slow-a", "slow-b", "slow-c"])
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t0 < 30  # not the wrapper's 30 s: it was killed at the timeout
    assert "no Slurm pilots were submitted" not in proc.stderr
    sweep_id = proc.stdout.splitlines()[0].strip()
    (sub,) = sm.open_store(ws).submissions()
    assert f"Slurm job {sub.job_id}" in proc.stdout
    assert [j for j in _our_jobs(slurm) if j not in before] == [sub.job_id]  # submitted once
    st = sm.open_store(ws)
    wait_for(lambda: {c.status for c in st.cells(sweep_id)} == {"succeeded"}, timeout=90)
    assert sorted(r["argv"][0] for r in executions(ws)) == ["slow-a", "slow-b", "slow-c"]  # each once


def test_an_sbatch_killed_at_its_timeout_submits_nothing_and_says_so(slurm, tmp_path):
    ws = make_ws(tmp_path / "ws", extra="[slurm]\nsubmit_timeout_s = 2\n")
    before = _our_jobs(slurm)
    proc = _launch(ws, tmp_path, _wrapped_env(tmp_path, LATE_SUBMIT), ["ok"])
    assert proc.returncode == 2
    assert "did not answer within 2s" in proc.stderr and "no pilots were submitted" in proc.stderr
    assert "Traceback" not in proc.stderr
    time.sleep(6)  # past the moment the wrapper would have submitted
    assert _our_jobs(slurm) == before
    assert sm.open_store(ws).submissions() == []


DEAD_SQUEUE = """#!/bin/sh
echo "slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2
exit 1
"""


def test_when_squeue_cannot_tell_either_the_cli_says_it_is_unknown(slurm, tmp_path):
    """sbatch hangs and squeue cannot reach the controller: the CLI must not claim that
    nothing was submitted; it says it is unknown and how to look."""
    ws = make_ws(tmp_path / "ws", extra="[slurm]\nsubmit_timeout_s = 2\n")
    env = _wrapped_env(tmp_path, "#!/bin/sh\nsleep 30\n")
    (Path(env["PATH"].split(os.pathsep)[0]) / "squeue").write_text(DEAD_SQUEUE)
    (Path(env["PATH"].split(os.pathsep)[0]) / "squeue").chmod(0o755)
    proc = _launch(ws, tmp_path, env, ["ok"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no Slurm pilots were submitted" not in proc.stderr
    assert "whether pilots were submitted is unknown" in proc.stderr
    assert "squeue --name=fle-runner." in proc.stderr
