"""Full rebuilds, pinned views, the data version and late Postgres commits, on real databases.

* ``sync --full`` rebuilds beside the old rows and swaps them in: a reader never
  sees a half-rebuilt source, even when the rebuild is SIGKILLed; rows keep the
  sync id that first brought them in, so a view pinned to an old sync shows the
  same numbers, and says plainly when the rebuild removed or changed its rows.
* A sync that changes nothing leaves the data version alone.
* A Postgres row that commits far below the watermark is found and synced.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap

import polars as pl
import pytest
from app_helpers import assert_clean, run_page
from fixtures_fle import create_sqlite, insert_rows, make_rows, source_ids

from fle_core import analysis, saved_views, warehouse
from fle_core.warehouse import catalog
from fle_core.warehouse.sync import ATTEMPT_COLUMNS, sync

BATCH = 100


def _ids(ws):
    return warehouse.query(ws, "SELECT id FROM steps ORDER BY id")["id"].to_list()


def _summaries(ws, as_of):
    return analysis.load_summaries(ws, as_of_sync=as_of).sort("source", "version", "instance")


def _headline(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Leader:"))


# ------------------------------------------------------------------ item 3: pinned views
def test_a_view_pinned_before_a_full_rebuild_shows_the_same_numbers(workspace, tmp_path, monkeypatch):
    url = create_sqlite(workspace.local_source_path, make_rows(30, seed=1, text_kb=0.05))
    sync(workspace, "local")
    pinned = warehouse.data_version(workspace)
    before = _summaries(workspace, pinned)
    view = saved_views.save_view(workspace, "compare", {"cmp_reps": "200"}, pinned)
    at = run_page("compare", {"view": view})
    shared = _headline(at)

    insert_rows(url, make_rows(5, seed=2, first_version=500, models=["gpt-4o"], text_kb=0.05))
    sync(workspace, "local")
    full = sync(workspace, "local", full=True)
    assert full.rows_added == len(source_ids(url))
    assert _ids(workspace) == source_ids(url)

    after = _summaries(workspace, pinned)
    assert after.equals(before), "the pinned view must compute from exactly the same rows"
    opened = run_page("compare", {"view": view})
    assert_clean(opened)
    assert _headline(opened) == shared
    assert not any("rebuilt" in w.value for w in opened.warning)
    assert catalog.rebuilds_since(workspace, pinned).is_empty()


def test_a_rebuild_that_removed_rows_of_a_pinned_view_says_so(workspace, monkeypatch):
    create_sqlite(workspace.local_source_path, make_rows(30, seed=3, text_kb=0.05))
    sync(workspace, "local")
    pinned = warehouse.data_version(workspace)
    view = saved_views.save_view(workspace, "compare", {}, pinned)
    with sqlite3.connect(workspace.local_source_path) as con:  # someone cleaned up the source
        removed = con.execute("DELETE FROM programs WHERE version IN (1, 2)").rowcount
        con.execute("UPDATE programs SET value = value + 1 WHERE version = 3")
        changed = con.execute("SELECT count(*) FROM programs WHERE version = 3").fetchone()[0]
    full = sync(workspace, "local", full=True)
    opened = run_page("compare", {"view": view})
    assert_clean(opened)
    warned = [w.value for w in opened.warning if "rebuilt" in w.value]
    assert len(warned) == 1 and f"{removed + changed:,} row" in warned[0]
    assert "numbers can differ" in warned[0]
    notes = catalog.rebuilds_since(workspace, pinned)
    assert notes.height == 1
    assert notes.row(0, named=True)["rows"] == removed + changed
    assert notes["sync_id"].to_list() == [full.sync_id]
    assert catalog.rebuilds_since(workspace, full.sync_id).is_empty()  # a view made after it


# ------------------------------------------------------------------ item 6: killed rebuild
PACED_FULL = textwrap.dedent("""
    import sys
    from fle_core.warehouse.sync import sync
    from fle_core.workspace import Workspace

    def paced(done, total):  # report each committed batch, then wait for the test's go-ahead
        print(done, total, flush=True)
        sys.stdin.readline()

    sync(Workspace.open(sys.argv[1]), sys.argv[2], full=True, progress=paced)
""")


def _snapshot(ws):
    """What a reader sees: step ids, and trajectories summing exactly those steps."""
    ids = _ids(ws)
    traj = warehouse.query(ws, "SELECT coalesce(sum(steps), 0) AS n FROM trajectories")["n"].item()
    versioned = warehouse.query(ws, "SELECT count(*) AS n FROM steps WHERE version IS NOT NULL")["n"].item()
    assert traj == versioned, "trajectories summarise exactly the visible steps"
    return ids


def test_a_killed_full_rebuild_never_shows_readers_a_half_rebuilt_source(workspace, tmp_path):
    url = create_sqlite(tmp_path / "s.db", make_rows(40, seed=4, text_kb=0.05))
    workspace.config["sync"] = {"batch_rows": BATCH, "writer_hold_s": 0}
    workspace.save_config()
    sync(workspace, url)
    old = _snapshot(workspace)
    version = warehouse.data_version(workspace)
    proc = subprocess.Popen(
        [sys.executable, "-c", PACED_FULL, str(workspace.root), url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    batches = 0
    for line in proc.stdout:
        done, _total = map(int, line.split())
        if done:  # a batch is committed (and the writer has let readers in)
            assert _snapshot(workspace) == old, f"a reader saw a half-rebuilt source after {done} rows"
        if done >= 3 * BATCH:
            proc.send_signal(signal.SIGKILL)
            break
        batches += 1
        proc.stdin.write("\n")
        proc.stdin.flush()
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and batches >= 3
    assert _snapshot(workspace) == old, "the killed rebuild left the old rows in place"
    assert warehouse.data_version(workspace) == version

    insert_rows(url, make_rows(2, seed=5, first_version=900, text_kb=0.05))
    inc = sync(workspace, url)  # an ordinary sync carries on from the old watermark
    assert inc.rows_added == len(source_ids(url)) - len(old)
    assert _snapshot(workspace) == source_ids(url)
    runs = warehouse.query(workspace, "SELECT status, full_rebuild FROM sync_runs ORDER BY sync_id")
    assert runs.rows() == [("ok", False), ("interrupted", True), ("ok", False)]

    full = sync(workspace, url, full=True)
    assert full.rows_added == len(source_ids(url))
    assert _snapshot(workspace) == source_ids(url)
    tables = warehouse.query(workspace, "SELECT table_name FROM duckdb_tables()")["table_name"].to_list()
    assert not [t for t in tables if t.startswith("rebuild_")]


# ------------------------------------------------------------------ issue 13 item 10
def _attempts(status: str) -> pl.DataFrame:
    row = {c: None for c in ATTEMPT_COLUMNS}
    row.update(source="local", version=1, sweep_id="s", cell_id="c", status=status, trial=0, attempt=1)
    return pl.DataFrame([row], schema_overrides={"version": pl.Int64, "trial": pl.Int32, "attempt": pl.Int32})


def test_a_sync_that_changes_nothing_keeps_the_data_version(workspace):
    url = create_sqlite(workspace.local_source_path, make_rows(10, seed=6, text_kb=0.05))
    first = sync(workspace, "local")
    assert warehouse.data_version(workspace) == first.sync_id == 1
    view = saved_views.save_view(workspace, "compare", {}, 1)

    idle = sync(workspace, "local")
    assert idle.rows_added == 0 and idle.sync_id == 2
    assert warehouse.data_version(workspace) == 1
    opened = run_page("compare", {"view": view})
    assert_clean(opened)
    assert not any("Newer data exists" in i.value for i in opened.info)
    assert any("the latest data" in c.value for c in opened.caption)

    same = sync(workspace, "local", attempts=lambda: _attempts("succeeded"))  # new sweep facts
    assert warehouse.data_version(workspace) == same.sync_id == 3
    sync(workspace, "local", attempts=lambda: _attempts("succeeded"))  # the same facts
    assert warehouse.data_version(workspace) == 3
    retried = sync(workspace, "local", attempts=lambda: _attempts("failed"))  # a status changed
    assert warehouse.data_version(workspace) == retried.sync_id == 5
    assert retried.data_version == 5

    insert_rows(url, make_rows(1, seed=7, first_version=50, text_kb=0.05))
    more = sync(workspace, "local")
    assert more.rows_added > 0 and warehouse.data_version(workspace) == more.sync_id == 6
    opened = run_page("compare", {"view": view})
    assert any("Newer data exists (sync 6)" in i.value for i in opened.info)
    history = catalog.sync_history(workspace)
    assert history.height == 6  # every run is in the history, changed data or not


def test_the_first_sync_of_an_empty_source_still_counts_as_synced(workspace):
    create_sqlite(workspace.local_source_path, [])
    res = sync(workspace, "local")
    assert res.rows_added == 0 and warehouse.data_version(workspace) == 1  # 0 means never synced
    sync(workspace, "local")
    assert warehouse.data_version(workspace) == 1


# ------------------------------------------------------------------ item 5: late commits
@pytest.mark.postgres
def test_a_postgres_row_committed_far_below_the_watermark_is_found_and_synced(workspace, pg_server):
    import psycopg
    from fixtures_fle import create_postgres

    url = create_postgres(pg_server.create_database(), make_rows(20, seed=8, text_kb=0.05))
    workspace.config["sync"] = {"pg_overlap_ids": 5}
    with psycopg.connect(url) as con:  # a slow transaction: its id is far below the others
        late = con.execute(
            "DELETE FROM programs WHERE id = (SELECT max(id) - 100 FROM programs) RETURNING *"
        ).fetchone()
        cols = [d.name for d in con.execute("SELECT * FROM programs LIMIT 0").description]
    first = sync(workspace, url)
    assert first.watermark_after[first.source] - late[0] > 5
    with psycopg.connect(url) as con:
        con.execute(
            f"INSERT INTO programs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})", list(late)
        )
    res = sync(workspace, url)
    assert res.rows_added == 1
    assert _ids(workspace) == source_ids(url)
    assert first.warnings == ()
    assert len(res.warnings) == 1 and f"ids {late[0]}..{late[0]}" in res.warnings[0]
    notes = catalog.sync_notes(workspace)
    assert notes.filter(pl.col("kind") == "warning")["sync_id"].to_list() == [res.sync_id]
    quiet = sync(workspace, url)
    assert quiet.rows_added == 0 and quiet.warnings == ()
