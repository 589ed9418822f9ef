"""Inspect sync integrity under faults (issue 23): nothing lost, counted twice or stale.

Each test disturbs a folder of logs written by real inspect_ai (``inspect_fixtures.py``)
the way the attack run did, then checks the warehouse against a clean sync of the same
folder into a fresh workspace, exactly, per (system, model, task) cell:

* a log replaced in place with the same size and mtime (only its content differs);
* ``fle-core sync --full`` (a real subprocess) SIGKILLed mid-run on a folder with eval-set
  retry copies (the same ``task_id`` in many files);
* a ``--full`` over unchanged logs (the data version and sync ids stay);
* removed logs, which the sync result, ``fle-core status`` and the history report.

``FLE_FAULT_SEED`` picks the kill moments (the default keeps CI repeatable).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest

from fle_core import analysis, warehouse
from fle_core.warehouse import catalog
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

SEED = int(os.environ.get("FLE_FAULT_SEED", "2323"))
ROOT = Path(__file__).resolve().parents[1]


def _workspace(root: Path, logs: Path, extra: str = "") -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(f'[sources.runs]\nkind = "inspect"\npath = "{logs}"\n{extra}')
    return Workspace.open(root)


def _cells(ws: Workspace) -> list[tuple]:
    """Per (system, model, task): trajectories, successes, steps and the summed final reward."""
    s = analysis.load_summaries(ws)
    return (
        s.group_by(["system", "model", "task"])
        .agg(
            pl.len().alias("n"),
            pl.col("success").sum().alias("successes"),
            pl.col("steps").sum().alias("steps"),
            pl.col("final_reward").sum().round(9).alias("reward"),
        )
        .sort(["system", "model", "task"])
        .rows()
    )


def _clean_cells(tmp_path: Path, logs: Path) -> list[tuple]:
    """The truth: a first sync of the folder as it is now, into a fresh workspace."""
    root = tmp_path / f"clean{len(list(tmp_path.glob('clean*')))}"
    ws = _workspace(root, logs)
    sync(ws, source="runs")
    return _cells(ws)


def _pad(path: Path, size: int) -> None:
    """Grow an ``.eval`` (a zip) to ``size`` bytes with a zip comment: same members, same log."""
    now = path.stat().st_size
    assert size - now <= 0xFFFF
    with zipfile.ZipFile(path, "a") as z:
        z.comment = b" " * (size - now)
    assert path.stat().st_size == size


def test_a_log_replaced_in_place_with_the_same_size_and_mtime_is_read_again(tmp_path, inspect_logs_dir):
    logs = tmp_path / "logs"
    shutil.copytree(inspect_logs_dir / "main", logs)
    found = sorted(logs.glob("*.eval"))
    target, other = found[0], found[-1]  # two different (model, task) logs
    spare = tmp_path / "spare.eval"
    shutil.copy(other, spare)
    size = max(p.stat().st_size for p in [*found, spare]) + 64
    for p in [*found, spare]:
        _pad(p, size)
    ws = _workspace(tmp_path / "ws", logs)
    first = sync(ws, source="runs")
    before = _cells(ws)
    st = target.stat()
    original = target.read_bytes()
    target.write_bytes(spare.read_bytes())  # replaced in place: same size ...
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the same mtime
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    truth = _clean_cells(tmp_path, logs)
    assert truth != before  # the replacement changes what the warehouse must hold

    again = sync(ws, source="runs")
    assert _cells(ws) == truth
    assert again.data_version > first.data_version == first.sync_id
    changed = warehouse.query(
        ws, "SELECT DISTINCT sync_id FROM inspect_samples WHERE path = ?", [target.name]
    )["sync_id"].to_list()
    assert changed == [again.sync_id]  # the changed rows carry the new sync id
    untouched = warehouse.query(ws, "SELECT DISTINCT sync_id FROM steps WHERE sync_id <> ?", [again.sync_id])
    assert untouched["sync_id"].to_list() == [first.sync_id]

    # --full over logs that did not change since: no new data version, no new sync ids
    stamps = "SELECT version, instance, depth, sync_id FROM steps ORDER BY ALL"
    stamped = warehouse.query(ws, stamps)
    rebuilt = sync(ws, source="runs", full=True)
    assert rebuilt.data_version == again.data_version == warehouse.data_version(ws)
    assert warehouse.query(ws, stamps).equals(stamped)
    assert _cells(ws) == truth

    # the old content back in place, then --full: the data version moves and only the
    # changed log's rows take the new sync id (a --full cannot be fooled by times either)
    target.write_bytes(original)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    truth2 = _clean_cells(tmp_path, logs)
    assert truth2 == before
    full = sync(ws, source="runs", full=True)
    assert full.data_version == full.sync_id > rebuilt.data_version
    assert _cells(ws) == truth2
    ids = warehouse.query(
        ws, "SELECT path, min(sync_id) AS lo, max(sync_id) AS hi FROM inspect_samples GROUP BY path"
    )
    by_path = {r["path"]: (r["lo"], r["hi"]) for r in ids.iter_rows(named=True)}
    assert by_path[target.name] == (full.sync_id, full.sync_id)
    assert all(v == (first.sync_id, first.sync_id) for k, v in by_path.items() if k != target.name)


def _retry_copies(tmp_path: Path, inspect_logs_dir: Path, copies: int) -> Path:
    """``main``'s logs plus ``copies`` eval-set retry copies of each (same task id, other files)."""
    logs = tmp_path / "logs"
    shutil.copytree(inspect_logs_dir / "main", logs / "main")
    for k in range(copies):
        shutil.copytree(inspect_logs_dir / "main", logs / f"retry{k:02d}")
    return logs


def _sync_cmd(ws: Workspace, full: bool) -> list[str]:
    cmd = [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "sync", "--source", "runs"]
    return cmd + (["--full"] if full else [])


@pytest.mark.timeout(900)
def test_a_killed_full_sync_with_retry_copies_leaves_exactly_a_clean_sync(tmp_path, inspect_logs_dir):
    """SIGKILL of ``fle-core sync --full`` at random moments: right after each kill, and after
    the next plain sync, every cell equals a clean sync (no copy counted twice)."""
    rng = random.Random(SEED)
    logs = _retry_copies(tmp_path, inspect_logs_dir, copies=15)
    truth = _clean_cells(tmp_path, logs)
    assert sum(c[3] for c in truth) == 18  # 3 models x 2 tasks x 3 epochs, each once
    # small batches: a --full commits many times, so a kill lands between commits
    ws = _workspace(tmp_path / "ws", logs, "[sync]\nbatch_rows = 60\n")
    sync(ws, source="runs")
    assert _cells(ws) == truth
    killed = 0
    for _ in range(4):
        proc = subprocess.Popen(
            _sync_cmd(ws, full=True), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        first = proc.stderr.read(1) if proc.stderr else ""  # progress ("\r" lines): the run is open
        time.sleep(rng.uniform(0.3, 3.0))  # a --full of these logs takes ~5 s
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in first + err, first + err
        killed += proc.returncode == -signal.SIGKILL
        assert _cells(ws) == truth, "a killed --full changed what readers see"
        after = sync(ws, source="runs")
        assert _cells(ws) == truth
        assert after.details[0].unchanged or after.rows_added == 0
    assert killed, "no sync was actually killed"
    # a kill landed while a run was open (the next run that opens marks it interrupted)
    cut = "SELECT count(*) FROM sync_runs WHERE status IN ('running', 'interrupted')"
    assert warehouse.query(ws, cut).item() >= 1
    done = sync(ws, source="runs", full=True)  # an undisturbed --full lands on the same cells
    assert _cells(ws) == truth and done.rows_added > 0


def test_two_tasks_in_one_fle_job_folder_keep_their_own_trajectories(tmp_path, inspect_logs_dir):
    """A job folder of the ``fle`` preset holding logs of two tasks: 6 samples stay 6
    trajectories, each of one task; the job's version goes to its newest log only."""
    main = sorted((inspect_logs_dir / "main").glob("*.eval"))
    ore = next(p for p in main if "iron-ore" in p.name)
    plate = next(p for p in main if "iron-plate" in p.name)
    plain = tmp_path / "plain"
    plain.mkdir()
    for p in (ore, plate):
        shutil.copy(p, plain / p.name)
    truth = _clean_cells(tmp_path, plain)
    logs = tmp_path / "logs"
    job = logs / "job-1"
    job.mkdir(parents=True)
    (job / "fle-job.json").write_text('{"version": 7, "sweep_id": "s1", "cell_id": "c1", "attempt": 1}')
    shutil.copy(ore, job / ore.name)
    time.sleep(0.01)
    shutil.copy(plate, job / plate.name)
    os.utime(job / plate.name, ns=(time.time_ns(), (job / ore.name).stat().st_mtime_ns + 10**9))
    ws = _workspace(tmp_path / "ws", logs)
    sync(ws, source="runs")
    assert _cells(ws) == truth
    mixed = warehouse.query(
        ws, "SELECT version, instance FROM steps GROUP BY ALL HAVING count(DISTINCT task) > 1"
    )
    assert mixed.is_empty()
    owner = warehouse.query(ws, "SELECT DISTINCT path FROM inspect_samples WHERE version = 7")["path"]
    assert owner.to_list() == [f"job-1/{plate.name}"]  # the newest log is the job's result
    # a newer log in the folder takes the job's version over; the old owner keeps keys of its own
    rerun = job / f"rerun-{ore.name}"
    shutil.copy(ore, rerun)
    os.utime(rerun, ns=(time.time_ns(), (job / plate.name).stat().st_mtime_ns + 10**9))
    sync(ws, source="runs")
    assert _cells(ws) == _clean_cells(tmp_path, logs) and len(_cells(ws)) == 2
    owner = warehouse.query(ws, "SELECT DISTINCT path FROM inspect_samples WHERE version = 7")["path"]
    assert owner.to_list() == [f"job-1/{rerun.name}"]
    assert warehouse.query(
        ws, "SELECT version, instance FROM steps GROUP BY ALL HAVING count(DISTINCT task) > 1"
    ).is_empty()


def test_a_fractional_epoch_is_refused_by_name_not_merged(tmp_path, inspect_logs_dir):
    """``epoch: 1.5`` must not become epoch 1 of the same sample (one trajectory of two)."""
    import json

    logs = tmp_path / "logs"
    shutil.copytree(inspect_logs_dir / "json", logs)
    path = next(logs.glob("*.json"))
    doc = json.loads(path.read_text())
    assert [s["epoch"] for s in doc["samples"]] == [1, 2]
    doc["samples"][1]["epoch"] = 1.5
    path.write_text(json.dumps(doc))
    ws = _workspace(tmp_path / "ws", logs)
    sync(ws, source="runs")
    (said,) = catalog.quarantined(ws)["detail"].to_list()  # the sample, named; its log's others sync
    assert said.startswith(path.name) and "epoch 1.5 is not an integer from 1" in said
    two = warehouse.query(
        ws,
        "SELECT version, instance FROM inspect_samples WHERE superseded_by IS NULL GROUP BY ALL HAVING count(*) > 1",
    )
    assert two.is_empty()
    longest = max(len((s.get("store") or {}).get("production_history") or [1]) for s in doc["samples"])
    assert warehouse.query(ws, "SELECT coalesce(max(steps), 0) FROM trajectories").item() <= max(longest, 8)


def _running_copy(path: Path, finished: int) -> None:
    """Rewrite ``path`` as the log Inspect leaves while it still runs: status ``started``, the
    first ``finished`` samples written, no results yet (the samples as they were, unchanged)."""
    from inspect_ai.log import read_eval_log, write_eval_log

    log = read_eval_log(str(path))
    assert log.samples is not None and len(log.samples) > finished
    log.status, log.samples, log.results = "started", log.samples[:finished], None
    path.unlink()
    write_eval_log(log, str(path))


def test_a_log_finishing_under_a_pinned_view_keeps_what_the_view_showed(tmp_path, inspect_logs_dir):
    """A view pinned while a log still ran (2 of its 3 samples finished) shows the same
    trajectories after the log completes: the finished samples keep their sync id, the new
    one appears only in the newer data version, and the warehouse equals a clean sync."""
    logs = tmp_path / "logs"
    shutil.copytree(inspect_logs_dir / "main", logs)
    target = sorted(logs.glob("*.eval"))[0]
    complete = tmp_path / "complete.eval"
    shutil.copy(target, complete)
    _running_copy(target, finished=2)
    ws = _workspace(tmp_path / "ws", logs)
    first = sync(ws, source="runs")
    assert warehouse.query(ws, "SELECT count(*) FROM inspect_logs WHERE status = 'started'").item() == 1
    pinned = warehouse.data_version(ws)
    shown = analysis.load_summaries(ws, as_of_sync=pinned)
    assert shown.height == 17 and _cells(ws) == _clean_cells(tmp_path, logs)

    shutil.copy(complete, target)  # the log finishes: its third sample and its results arrive
    os.utime(target, ns=(time.time_ns(), target.stat().st_mtime_ns + 10**9))
    done = sync(ws, source="runs")
    assert done.data_version > pinned  # new rows: the data version moves
    assert _cells(ws) == _clean_cells(tmp_path, logs) and analysis.load_summaries(ws).height == 18
    keys = ["version", "instance", "steps", "success", "final_reward"]
    after = analysis.load_summaries(ws, as_of_sync=pinned)
    assert after.select(keys).sort(keys).equals(shown.select(keys).sort(keys)), "the pinned view changed"
    ids = warehouse.query(
        ws, "SELECT epoch, sync_id FROM inspect_samples WHERE path = ? ORDER BY epoch", [target.name]
    ).rows()
    assert ids == [(1, first.sync_id), (2, first.sync_id), (3, done.sync_id)]
    assert catalog.rebuilds_since(ws, pinned).is_empty()  # nothing the view showed changed
    assert done.details[0].rows_removed == 0


def test_a_removed_log_is_shown_by_sync_status_and_a_pinned_view(tmp_path, inspect_logs_dir, monkeypatch):
    """Deleting a log takes its rows out: the sync line and ``fle-core status`` count them
    (not "+0 rows"), and a view pinned before says plainly that rows it was computed from
    were removed, and offers the update."""
    from streamlit.testing.v1 import AppTest

    from fle_core import saved_views

    logs = tmp_path / "logs"
    shutil.copytree(inspect_logs_dir / "main", logs)
    ws = _workspace(tmp_path / "ws", logs)
    sync(ws, source="runs")
    pinned = warehouse.data_version(ws)
    assert analysis.load_summaries(ws, as_of_sync=pinned).height == 18
    view_id = saved_views.save_view(ws, "compare", {}, pinned)
    gone = sorted(logs.glob("*.eval"))[-1]
    steps = warehouse.query(
        ws,
        "SELECT count(*) FROM steps s JOIN inspect_samples i USING (source, version, instance) WHERE i.path = ?",
        [gone.name],
    ).item()
    gone.unlink()

    out = subprocess.run(_sync_cmd(ws, full=False), capture_output=True, text=True, timeout=300, check=True)
    assert f"1 log removed, +0 steps, -{steps:,} steps" in out.stdout, out.stdout
    assert _cells(ws) == _clean_cells(tmp_path, logs)
    status = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "status"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f"+0 rows -{steps:,} rows" in status and "3 trajectories" in status, status

    (note,) = catalog.rebuilds_since(ws, pinned).iter_rows(named=True)
    assert note["kind"] == "removed" and note["rows"] == 3
    assert warehouse.data_version(ws) > pinned
    monkeypatch.setenv("FLE_CORE_HOME", str(ws.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/compare.py")
    at.query_params["view"] = view_id
    at.run()
    assert not at.exception
    said = " ".join(str(w.value) for w in at.warning)
    assert "lost or changed rows" in said and "1 log removed" in said and "keeps no old copies" in said, said
    assert any(b.label == "Update to latest" for b in at.button)


@pytest.mark.parametrize("folders", [["main"], ["main", "retries", "evalset", "cancelled", "shards"]])
def test_a_full_sync_of_unchanged_logs_keeps_the_data_version(tmp_path, inspect_logs_dir, folders):
    """``--full`` right after the first sync, nothing changed: data version 1 stays 1, every
    row keeps sync id 1 and no pinned view is told its rows changed (retry copies, eval-set
    folders, cancelled and sharded logs included)."""
    logs = tmp_path / "logs"
    for folder in folders:
        shutil.copytree(inspect_logs_dir / folder, logs / folder)
    ws = _workspace(tmp_path / "ws", logs)
    first = sync(ws, source="runs")
    assert first.data_version == 1
    truth = _cells(ws)
    full = sync(ws, source="runs", full=True)
    assert full.sync_id == 2 and full.data_version == warehouse.data_version(ws) == 1
    for table in ("steps", "inspect_samples"):
        assert warehouse.query(ws, f"SELECT DISTINCT sync_id FROM {table}")["sync_id"].to_list() == [1]
    assert _cells(ws) == truth and catalog.rebuilds_since(ws, 1).is_empty()
