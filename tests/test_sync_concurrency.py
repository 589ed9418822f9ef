"""Sync under real processes: SIGKILL mid-way and resume, readers during a sync, two syncs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from fixtures_fle import (
    create_sqlite,
    insert_rows,
    make_rows,
    source_ids,
)

from fle_core import warehouse
from fle_core.errors import WarehouseMissing
from fle_core.warehouse.sync import sync

BATCH = 100


def _configure(ws, **sync_opts):
    ws.config["sync"] = {"batch_rows": BATCH, "writer_hold_s": 0, **sync_opts}
    ws.save_config()


def _sync_cmd(ws, url):
    return [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "sync", "--source", url]


def _ids(ws):
    return warehouse.query(ws, "SELECT id FROM steps ORDER BY id")["id"].to_list()


def _consistent(ws):
    """Trajectories summarise exactly the committed steps (no half-applied batch)."""
    n, traj = warehouse.query(
        ws,
        "SELECT (SELECT count(*) FROM steps WHERE version IS NOT NULL) AS n, "
        "(SELECT coalesce(sum(steps), 0) FROM trajectories) AS t",
    ).row(0)
    assert n == traj


PACED_SYNC = textwrap.dedent("""
    import sys
    from fle_core.warehouse.sync import sync
    from fle_core.workspace import Workspace

    def paced(done, total):  # report each committed batch, then wait for the test's go-ahead
        print(done, total, flush=True)
        sys.stdin.readline()

    sync(Workspace.open(sys.argv[1]), sys.argv[2], progress=paced)
""")


@pytest.mark.parametrize(
    ("kind", "hold_s"),
    [("sqlite", 0), ("sqlite", 60), pytest.param("postgres", 60, marks=pytest.mark.postgres)],
    ids=["sqlite-connection-released", "sqlite-connection-open", "postgres-connection-open"],
)
def test_sigkill_midway_then_resume_has_no_duplicates_or_gaps(workspace, tmp_path, request, kind, hold_s):
    rows = make_rows(30, seed=40, text_kb=0.05)
    if kind == "sqlite":
        url = create_sqlite(tmp_path / "s.db", rows)
    else:
        from fixtures_fle import create_postgres

        url = create_postgres(request.getfixturevalue("pg_server").create_database(), rows)
    all_ids = source_ids(url)
    _configure(workspace, writer_hold_s=hold_s)
    proc = subprocess.Popen(
        [sys.executable, "-c", PACED_SYNC, str(workspace.root), url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        done, total = map(int, line.split())
        assert total == len(all_ids)
        if done >= 3 * BATCH:  # three batches committed; the sync still holds the lock
            proc.send_signal(signal.SIGKILL)
            break
        proc.stdin.write("\n")
        proc.stdin.flush()
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    ids = _ids(workspace)
    assert ids == all_ids[: 3 * BATCH], "committed rows must be a gap-free prefix of whole batches"
    _consistent(workspace)
    assert warehouse.query(workspace, "SELECT watermark FROM source_state").item() == ids[-1]
    assert warehouse.query(workspace, "SELECT status FROM sync_runs").item() == "running"

    res = sync(workspace, url)
    assert res.rows_added == len(all_ids) - len(ids)
    assert _ids(workspace) == all_ids
    _consistent(workspace)
    runs = warehouse.query(workspace, "SELECT status FROM sync_runs ORDER BY sync_id")["status"].to_list()
    assert runs == ["interrupted", "ok"]


def test_cli_sync_killed_at_a_random_moment_resumes(workspace, tmp_path):
    """SIGKILL wherever it lands (maybe inside a write transaction): still no dups, no gaps."""
    url = create_sqlite(tmp_path / "k.db", make_rows(60, seed=41, text_kb=0.05))
    all_ids = source_ids(url)
    _configure(workspace, writer_hold_s=0)
    for delay in (0.9, 1.3):  # after start-up (~0.8 s of imports), during the copy
        proc = subprocess.Popen(
            [*_sync_cmd(workspace, url), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if workspace.warehouse_path.exists():
            ids = _ids(workspace)
            assert ids == all_ids[: len(ids)]
            _consistent(workspace)
    sync(workspace, url)
    assert _ids(workspace) == all_ids
    _consistent(workspace)


READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from fle_core import warehouse
    from fle_core.workspace import Workspace
    ws = Workspace.open(sys.argv[1], create=False)
    stop = Path(sys.argv[2])
    seen = []
    while not stop.exists():
        try:
            with warehouse.reader(ws) as con:
                n = con.execute("SELECT count(*) FROM steps").fetchone()[0]
                t = con.execute("SELECT coalesce(sum(steps), 0) FROM trajectories").fetchone()[0]
                wm = con.execute("SELECT max(watermark) FROM source_state").fetchone()[0]
                mx = con.execute("SELECT coalesce(max(id), 0) FROM steps").fetchone()[0]
            seen.append([n, int(t), wm, mx])
        except Exception as exc:  # noqa: BLE001
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "seen": seen}))
            sys.exit(1)
        time.sleep(0.005)
    print(json.dumps({"seen": seen}))
""")


def test_reader_process_never_sees_errors_or_partial_batches(workspace, tmp_path):
    first = make_rows(1, seed=50, max_steps=10)
    url = create_sqlite(tmp_path / "r.db", first)
    _configure(workspace)
    sync(workspace, url)  # the warehouse exists before the reader starts
    insert_rows(url, make_rows(45, seed=51, first_version=2, text_kb=0.05))
    total = len(source_ids(url))
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(workspace.root), str(stop)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.0)  # the reader is looping
    slow_sync = (
        "import sys, time; from fle_core.warehouse.sync import sync; from fle_core.workspace import Workspace; "
        "sync(Workspace.open(sys.argv[1]), sys.argv[2], progress=lambda d, t: time.sleep(0.1))"
    )
    # a slow source (0.1 s per batch) gives the reader its chances between batches
    writer = subprocess.run(
        [sys.executable, "-c", slow_sync, str(workspace.root), url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    time.sleep(0.3)
    stop.touch()
    out, _ = reader.communicate(timeout=60)
    report = json.loads(out)
    assert writer.returncode == 0, writer.stderr
    assert reader.returncode == 0, report.get("error")
    seen = report["seen"]
    counts = [n for n, _, _, _ in seen]
    assert counts == sorted(counts), "a reader must never see rows disappear"
    assert counts[-1] == total
    base = len(first)
    all_ids = source_ids(url)
    for n, traj, wm, mx in seen:
        assert n == all_ids.index(mx) + 1, "rows must be exactly the source's prefix up to max(id)"
        assert (n - base) % BATCH == 0 or n == total, f"partial batch visible: {n}"
        assert traj == n, "trajectories must match the steps of the same snapshot"
        assert wm == mx, "the watermark commits together with its rows"
    assert len(set(counts)) >= 3, f"the reader did not interleave with the sync: {sorted(set(counts))}"


def test_two_concurrent_syncs_serialize(workspace, tmp_path):
    url = create_sqlite(tmp_path / "c.db", make_rows(40, seed=60, text_kb=0.05))
    _configure(workspace)
    procs = [
        subprocess.Popen(
            [*_sync_cmd(workspace, url), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    assert _ids(workspace) == source_ids(url)
    added = warehouse.query(workspace, "SELECT rows_added FROM sync_runs ORDER BY sync_id")["rows_added"]
    assert sorted(added.to_list()) == [0, len(source_ids(url))]
    _consistent(workspace)


@pytest.mark.postgres
def test_postgres_late_commit_inside_overlap_is_picked_up(workspace, pg_server):
    """An id below the watermark that commits late (out of order) is still synced, once."""
    import psycopg
    from fixtures_fle import create_postgres

    url = create_postgres(pg_server.create_database(), make_rows(5, seed=70))
    with psycopg.connect(url) as con:  # hold one row back: "still in an open transaction"
        late = con.execute(
            "DELETE FROM programs WHERE id = (SELECT max(id) - 3 FROM programs) RETURNING *"
        ).fetchone()
        cols = [d.name for d in con.execute("SELECT * FROM programs LIMIT 0").description]
    first = sync(workspace, url)
    assert late[0] not in _ids(workspace) and first.watermark_after[first.source] > late[0]
    with psycopg.connect(url) as con:  # ... which now commits, below the watermark
        con.execute(
            f"INSERT INTO programs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})", list(late)
        )
    res = sync(workspace, url)
    assert res.rows_added == 1
    assert _ids(workspace) == source_ids(url)
    _consistent(workspace)
    assert sync(workspace, url).rows_added == 0


def test_killed_first_creation_leaves_no_tableless_warehouse(workspace, tmp_path):
    """A writer killed while creating the schema leaves either no warehouse or a whole one."""
    script = textwrap.dedent("""
        import os, sys
        from fle_core.warehouse import store as warehouse
        from fle_core.workspace import Workspace
        ws = Workspace.open(sys.argv[1])
        real = warehouse.ensure_schema
        def dying(con):
            con.execute(warehouse.DDL[0])          # part of the schema...
            os._exit(9)                            # ...then killed
        warehouse.ensure_schema = dying
        with warehouse.writer(ws):
            pass
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(workspace.root)], timeout=60)
    assert proc.returncode == 9
    assert not workspace.warehouse_path.exists()
    with pytest.raises(WarehouseMissing), warehouse.reader(workspace):
        pass
    with warehouse.writer(workspace) as con:  # the next writer recovers from the leftover
        assert con.execute("SELECT count(*) FROM steps").fetchone()[0] == 0
    with warehouse.reader(workspace) as con:
        assert con.execute("SELECT count(*) FROM trajectories").fetchone()[0] == 0
