"""``fle-core sync --follow``: the app host syncs what runners on other hosts write.

A ``runner --once --no-sync`` subprocess stands in for Slurm pilots (it never opens
the warehouse); a ``sync --follow`` subprocess on the same workspace must keep the
warehouse current while the sweep runs and exit 0 once it has synced every cell.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from fle_core import sweeps, warehouse
from fle_core.sweeps import config as sweep_config
from fle_core.sweeps.follow import follow
from fle_core.workspace import Workspace


def _cli(ws: Workspace, *args: str) -> list[str]:
    return [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), *args]


def _synced(ws: Workspace, sweep_id: str) -> int:
    sql = "SELECT count(*) AS n FROM trajectories WHERE sweep_id = ?"
    return int(warehouse.query(ws, sql, [sweep_id])["n"][0])


def test_follow_syncs_while_the_sweep_runs_and_ends_with_every_cell(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    sweep_id = sweeps.launch(ws, sweep_config.demo_config())  # 12 simulated cells
    follower = subprocess.Popen(
        _cli(ws, "sync", "--follow", sweep_id, "--every", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    runner = subprocess.run(
        _cli(ws, "runner", "--once", "--no-sync"), capture_output=True, text=True, timeout=180
    )
    assert runner.returncode == 0, runner.stdout + runner.stderr
    out, _ = follower.communicate(timeout=120)
    assert follower.returncode == 0, out
    assert sweeps.status(ws, sweep_id).status == "completed"
    assert _synced(ws, sweep_id) == 12  # the runner synced nothing; the follower synced it all
    passes = [line for line in out.splitlines() if line.startswith("synced local:")]
    assert len(passes) >= 2, out  # it synced while the sweep ran, then once more at the end


def test_follow_of_a_paused_sweep_passes_once_and_a_missing_source_is_said(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    sweep_id = sweeps.launch(ws, sweep_config.demo_config())
    sweeps.pause(ws, sweep_id)  # nothing runs and nothing can start: one last pass, no waiting
    lines: list[str] = []
    naps: list[float] = []
    # no job ran, so FLE's SQLite file does not exist yet: the pass fails and says why
    assert follow(ws, sweep_id, 5, say=lines.append, sleep=naps.append) is False
    assert naps == [] and len(lines) == 1
    assert lines[0].startswith("error: sync of local failed: Source 'local': SQLite file")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--follow", "nope"], "error: Unknown sweep"),
        (["--follow", "x", "--every", "0"], "error: --every must be between 1 and 3600 s"),
        (["--follow", "x", "--full"], "error: --follow syncs the sweep's own source"),
    ],
)
def test_follow_bad_input_is_one_error_line_and_exit_2(tmp_path, args, message):
    ws = Workspace.open(tmp_path / "ws")
    proc = subprocess.run(_cli(ws, "sync", *args), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr
