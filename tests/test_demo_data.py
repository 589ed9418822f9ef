"""Simulated (demo) data kept apart from real data, and removed on request.

A workspace whose local FLE SQLite source holds real rows and the simulator's rows,
synced for real. Once real data exists, every analysis page leaves the simulated
trajectories out by default and has them back with its switch (``?<page>_sim=1``);
**Remove demo data** (Sources & sync, not in read-only mode) and ``fle-core
remove-demo`` delete them from the warehouse and from the local source, so a
``sync --full`` does not bring them back; an active demo sweep blocks it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from app_helpers import assert_clean, run_page, texts

from fle_core import warehouse
from fle_core.workspace import Workspace

REAL = ["gpt-4o", "claude-3-5-sonnet"]
SIM = ["gpt-4o (simulated)", "claude (simulated)"]
TASK = "iron_ore_throughput"


@pytest.fixture
def mixed(tmp_path, monkeypatch) -> Workspace:
    """Real rows (fixtures_fle) and 4 simulated trajectories in the local source, synced."""
    import fixtures_fle as fx

    from fle_core.sweeps.simulate import simulate_trajectory
    from fle_core.warehouse.sync import sync

    root = tmp_path / "ws"
    monkeypatch.setenv("FLE_CORE_HOME", str(root))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    ws = Workspace.open(root)
    url = fx.create_sqlite(ws.local_source_path, fx.make_rows(12, seed=5, models=REAL, tasks=[TASK]))
    for i, model in enumerate(SIM * 2):
        simulate_trajectory(url, model, TASK, 7000 + i, trial=i, seed=i, steps=6, sweep_id="demo")
    sync(ws, "local")
    return ws


def _models(ws: Workspace, simulated: bool) -> set[str]:
    rows = warehouse.query(ws, "SELECT DISTINCT model FROM trajectories WHERE simulated = ?", [simulated])
    return set(rows["model"].drop_nulls())


def _source_simulated_rows(ws: Workspace) -> int:
    with sqlite3.connect(ws.local_source_path) as con:
        return con.execute(
            "SELECT count(*) FROM programs WHERE meta LIKE '%\"simulated\": true%'"
        ).fetchone()[0]


def _options(at, label_start: str) -> set[str]:
    return set(next(m for m in at.multiselect if m.label.startswith(label_start)).options)


@pytest.mark.parametrize(
    ("page", "key", "box"), [("compare", "cmp_sim", "Models"), ("tasks", "tsk_sim", "Models")]
)
def test_analysis_pages_leave_simulated_data_out_once_real_data_exists(mixed, page, key, box):
    assert _models(mixed, True) == set(SIM) and _models(mixed, False) == set(REAL)
    at = run_page(page)
    assert_clean(at)
    assert at.toggle(key=key).value is False
    assert key not in at.query_params
    assert _options(at, box) == set(REAL)
    assert "Simulated data" not in texts(at)
    at = run_page(page, {key: "1"})
    assert_clean(at)
    assert at.toggle(key=key).value is True
    assert _options(at, box) == set(REAL) | set(SIM)
    assert at.query_params.get(key) == "1"  # the switch is in the link


def test_compare_headline_never_names_a_simulated_model_by_default(mixed):
    at = run_page("compare")
    assert_clean(at)
    headline = next(m.value for m in at.markdown if m.value.startswith("Leader:"))
    assert "simulated" not in headline
    board = next(d.value for d in at.dataframe if "ci_95" in d.value.columns)
    assert set(board["model"].dropna()) == set(REAL)


def test_trajectories_picker_offers_simulated_runs_only_with_the_switch(mixed):
    at = run_page("trajectories")
    assert_clean(at)
    shown = " ".join(at.selectbox(key="trj_id").options)
    assert not any(m in shown for m in SIM)
    at = run_page("trajectories", {"trj_sim": "1"})
    assert_clean(at)
    shown = " ".join(at.selectbox(key="trj_id").options)
    assert all(m in shown for m in SIM)


def test_remove_demo_data_from_the_sources_page(mixed):
    before = warehouse.data_version(mixed)
    assert _source_simulated_rows(mixed) == 4 * 6
    at = run_page("sources")
    assert_clean(at)
    assert "Simulated demo data" in texts(at)
    at.button(key="_demo_remove").click().run()
    assert _models(mixed, True) == set(SIM)  # nothing happens before the confirmation
    at.button(key="_demo_yes").click().run()
    assert_clean(at)
    assert "Removed 24 simulated steps (4 trajectories) from the warehouse and 24 simulator rows" in texts(at)
    assert _models(mixed, True) == set() and _models(mixed, False) == set(REAL)
    assert warehouse.query(mixed, "SELECT count(*) AS n FROM steps WHERE simulated")["n"][0] == 0
    assert _source_simulated_rows(mixed) == 0
    assert warehouse.data_version(mixed) > before  # every cache keyed on the version misses
    assert not [b for b in at.button if b.key == "_demo_remove"]  # nothing left to remove
    # a full rebuild copies the source again: the demo rows do not come back
    from fle_core.warehouse.sync import sync

    sync(mixed, "local", full=True)
    assert _models(mixed, True) == set() and _models(mixed, False) == set(REAL)


def test_read_only_mode_hides_remove_demo_data(mixed, monkeypatch):
    monkeypatch.setenv("FLE_READ_ONLY", "1")
    at = run_page("sources")
    assert_clean(at)
    assert "Simulated demo data" in texts(at)
    assert not [b for b in at.button if b.key in ("_demo_remove", "_demo_yes")]


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_remove_demo_dry_run_then_for_real(mixed):
    dry = _cli(mixed, "remove-demo", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "local: 24 simulated steps (4 trajectories) would be removed" in dry.stdout
    assert _models(mixed, True) == set(SIM)
    done = _cli(mixed, "remove-demo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Removed 24 simulated steps (4 trajectories)")
    assert _models(mixed, True) == set() and _source_simulated_rows(mixed) == 0
    again = _cli(mixed, "remove-demo")
    assert again.returncode == 0 and again.stdout.strip() == "No simulated data to remove."


def test_cli_remove_demo_refuses_while_a_demo_sweep_runs(mixed):
    from fle_core import sweeps
    from fle_core.sweeps import config as sweep_config

    sweep_id = sweeps.launch(mixed, sweep_config.demo_config())  # active, no runner
    out = _cli(mixed, "remove-demo")
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: Sweep {sweep_id} still runs on the simulator")
    assert "Traceback" not in out.stderr
    assert _models(mixed, True) == set(SIM)  # nothing removed
    sweeps.cancel(mixed, sweep_id)
    assert _cli(mixed, "remove-demo").returncode == 0
    assert _models(mixed, True) == set()
