"""Bad input and broken surroundings give one ``error:`` line and exit 2, never a traceback.

Real parts throughout: the ``fle-core`` CLI as a subprocess, SQLite and DuckDB
files written byte by byte, a rollback-journal writer process holding its lock,
a process without root's permission to read a file, and a report with emoji
model names rendered by vl-convert.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap

import duckdb
import pytest
from fixtures_fle import create_sqlite, make_rows, source_ids

from fle_core import warehouse
from fle_core.errors import ConfigError, FleError, SchemaError
from fle_core.warehouse.sync import sync


def cli(ws, *args, timeout=120):
    proc = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_clear(rc, err, *needles):
    """Exit 2, one ``error:`` line (plus an optional ``hint:``), no traceback."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and " INFO " not in line]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and all(line.startswith(("error: ", "hint: ")) for line in lines), err
    for needle in needles:
        assert needle in errors[0], err
    return errors[0]


@pytest.fixture
def synced(workspace, tmp_path):
    url = create_sqlite(tmp_path / "src.db", make_rows(6, seed=1, text_kb=0.05))
    sync(workspace, url)
    return workspace, url


# ------------------------------------------------------------------ CLI arguments
@pytest.mark.parametrize("runs", ["-1", "99999999999999999999"])
def test_status_with_a_bad_run_count(synced, runs):
    ws, _ = synced
    rc, _, err = cli(ws, "status", "--runs", runs)
    assert_clear(rc, err, "--runs", runs)


def test_report_with_a_negative_seed(synced, tmp_path):
    ws, _ = synced
    rc, _, err = cli(ws, "report", "--seed", "-1", "--out", str(tmp_path / "r"))
    assert_clear(rc, err, "--seed")


# ------------------------------------------------------------------ configuration
def test_a_malformed_ipv6_source_url(workspace):
    rc, _, err = cli(workspace, "sync", "--source", "postgresql://eval:s3cret@[::1/fle")
    line = assert_clear(rc, err, "malformed URL")
    assert "s3cret" not in err and "s3cret" not in line
    workspace.config["sources"] = {"prod": {"url": "postgresql://eval@[fe80::1/fle"}}
    workspace.save_config()
    rc, _, err = cli(workspace, "sync", "--source", "prod")
    assert_clear(rc, err, "'prod'", "malformed URL")


def test_a_control_store_url_that_is_not_postgres(workspace):
    workspace.config["control"] = {"url": "mysql://x"}
    workspace.save_config()
    rc, _, err = cli(workspace, "sweep", "list")
    assert_clear(rc, err, "[control]", "'mysql'")


def test_a_negative_batch_size_is_rejected_not_clamped(workspace, tmp_path):
    url = create_sqlite(tmp_path / "s.db", make_rows(2, seed=2, text_kb=0.05))
    workspace.config["sync"] = {"batch_rows": -5}
    with pytest.raises(ConfigError, match="batch_rows"):
        sync(workspace, url)
    assert not workspace.warehouse_path.exists()
    workspace.save_config()
    rc, _, err = cli(workspace, "sync", "--source", url)
    assert_clear(rc, err, "batch_rows", "-5")


# ------------------------------------------------------------------ sources
@pytest.mark.parametrize("ids", [["a1", "a2"], ["1", "10", "9"]], ids=["text-ids", "numeric-text-ids"])
def test_an_sqlite_programs_id_of_type_text(workspace, tmp_path, ids):
    """Text ids sort as text ("9" > "10"): the watermark would skip rows, so refuse clearly."""
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE programs (id TEXT PRIMARY KEY, value REAL, version INTEGER, depth REAL)")
        con.executemany("INSERT INTO programs VALUES (?, 1.0, 1, 0)", [(i,) for i in ids])
    with pytest.raises(SchemaError, match=r"programs\.id"):
        sync(workspace, f"sqlite:///{path}")
    rc, _, err = cli(workspace, "sync", "--source", f"sqlite:///{path}")
    assert_clear(rc, err, "programs.id")


BUSY_WRITER = textwrap.dedent("""
    import sqlite3, sys, time
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")   # a rollback-journal writer: readers get SQLITE_BUSY
    con.execute("UPDATE programs SET ticks = ticks WHERE id = 1")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.execute("COMMIT")
""")


def test_an_sqlite_source_waits_for_a_rollback_journal_writer(workspace, tmp_path):
    url = create_sqlite(tmp_path / "j.db", make_rows(5, seed=3, text_kb=0.05))
    with sqlite3.connect(tmp_path / "j.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    writer = subprocess.Popen(
        [sys.executable, "-c", BUSY_WRITER, str(tmp_path / "j.db"), "2.0"], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "locked"
    res = sync(workspace, url)  # without a busy timeout: "database is locked" at once
    writer.wait(timeout=30)
    assert res.rows_added == len(source_ids(url))


READ_AS_NOBODY = textwrap.dedent("""
    import os, sys
    from fle_core.errors import SourceUnavailable
    from fle_core.sources import programs
    from fle_core.workspace import SourceSpec
    with programs.connect(SourceSpec("warm", sys.argv[2])):  # load the driver while still root
        pass
    os.setegid(65534)
    os.seteuid(65534)   # "nobody": no CAP_DAC_OVERRIDE, so the file mode applies
    try:
        with programs.connect(SourceSpec("locked", sys.argv[1])) as conn:
            programs.column_types(conn)
        print("READ")
    except SourceUnavailable as exc:
        print("ERROR", exc.message, "|", exc.hint)
""")


def test_an_unreadable_sqlite_file_says_permission_denied(tmp_path):
    good = create_sqlite(tmp_path / "ok.db", make_rows(1, seed=4, text_kb=0.05))
    locked = create_sqlite(tmp_path / "locked.db", make_rows(1, seed=4, text_kb=0.05))
    os.chmod(tmp_path / "locked.db", 0)
    os.chmod(tmp_path, 0o755)
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    out = subprocess.run(
        [sys.executable, "-c", READ_AS_NOBODY, locked, good], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERROR"), out.stdout
    assert "permission denied" in out.stdout.lower()
    assert "is the database running" not in out.stdout
    assert "allocate memory" not in out.stdout


# ------------------------------------------------------------------ the warehouse file
def test_a_foreign_file_at_the_warehouse_path(workspace):
    """An SQLite file where the warehouse should be: DuckDB would try to download its sqlite
    extension to read it. A clear error instead, for readers and for sync."""
    with sqlite3.connect(workspace.warehouse_path) as con:
        con.execute("CREATE TABLE t (x)")
    rc, _, err = cli(workspace, "status")
    assert_clear(rc, err, "not a DuckDB warehouse file")
    assert "extension" not in err.lower()
    with pytest.raises(FleError, match="not a DuckDB warehouse"):
        warehouse.data_version(workspace)
    url = create_sqlite(workspace.root / "s.db", make_rows(1, seed=5, text_kb=0.05))
    rc, _, err = cli(workspace, "sync", "--source", url)
    assert_clear(rc, err, "not a DuckDB warehouse file")


def test_another_programs_duckdb_file_at_the_warehouse_path(workspace, tmp_path):
    con = duckdb.connect(str(workspace.warehouse_path))
    con.execute("CREATE TABLE orders (id INTEGER)")
    con.close()
    rc, _, err = cli(workspace, "status")
    assert_clear(rc, err, "not a warehouse of fle-core")
    url = create_sqlite(tmp_path / "s.db", make_rows(1, seed=6, text_kb=0.05))
    with pytest.raises(FleError, match="not a warehouse of fle-core"):
        sync(workspace, url)
    con = duckdb.connect(str(workspace.warehouse_path))
    assert [r[0] for r in con.execute("SHOW TABLES").fetchall()] == ["orders"]  # left alone
    con.close()


def test_a_corrupt_warehouse(synced):
    ws, url = synced
    data = bytearray(ws.warehouse_path.read_bytes())
    for i in range(4096, len(data), 7):  # keep the header, ruin the rest
        data[i] = (data[i] + 91) % 256
    ws.warehouse_path.write_bytes(bytes(data))
    rc, _, err = cli(ws, "status")
    assert_clear(rc, err, "warehouse")
    rc, _, err = cli(ws, "sync", "--source", url)
    assert_clear(rc, err, "warehouse")


def _old_warehouse(ws, drop: str):
    """A warehouse as an older fle-core wrote it: schema 1, no sync_notes, one column fewer."""
    con = duckdb.connect(str(ws.warehouse_path))
    con.execute("DROP TABLE IF EXISTS sync_notes")
    con.execute("DELETE FROM meta_info WHERE key IN ('data_version', 'ddl')")  # schema 1 had neither
    con.execute("UPDATE meta_info SET value = '1' WHERE key = 'schema_version'")
    con.execute(f"ALTER TABLE steps DROP COLUMN {drop}")
    con.close()


def test_an_older_warehouse_is_upgraded_in_place_and_a_viewer_is_told_how(synced):
    from fle_core.warehouse import catalog
    from fle_core.workspace import Workspace

    ws, url = synced
    rows = catalog.overview(ws)["rows"].to_list()
    _old_warehouse(ws, "simulated")
    viewer = Workspace.open(ws.root, read_only=True)  # may not write: says how to upgrade
    with pytest.raises(FleError, match=r"steps\.simulated is missing") as err:
        catalog.overview(viewer)
    assert "fle-core sync" in str(err.value)
    rc, _out, err_text = cli(ws, "status")  # a writable workspace opens, upgraded in place
    assert rc == 0 and "Traceback" not in err_text, err_text
    assert catalog.overview(viewer)["rows"].to_list() == rows  # nothing lost
    rc, _, err_text = cli(ws, "sync", "--source", url)
    assert rc == 0, err_text
    assert warehouse.data_version(ws) == 1  # the no-op sync changed nothing


def test_an_older_warehouse_that_cannot_be_upgraded_in_place(synced):
    ws, url = synced
    _old_warehouse(ws, "sync_id")  # NOT NULL: cannot be added to existing rows
    rc, _, err = cli(ws, "sync", "--source", url)
    assert_clear(rc, err, "steps.sync_id is missing")
    assert "move warehouse.duckdb aside" in err


# ------------------------------------------------------------------ the report
def test_the_report_survives_emoji_model_names(workspace, tmp_path):
    """vl-convert failed on a label that Vega cut inside an emoji; no report.html was written."""
    models = ["m" * 13 + "🐳🐳🐳🐳-v3", "deepseek-🐳-v3", "gpt-4o"]
    url = create_sqlite(tmp_path / "e.db", make_rows(18, seed=7, models=models, text_kb=0.05))
    sync(workspace, url)
    rc, _out, err = cli(workspace, "report", "--out", str(tmp_path / "rep"), "--reps", "50", timeout=300)
    assert rc == 0, err
    assert (tmp_path / "rep" / "report.html").exists()
    svg = (tmp_path / "rep" / "charts" / "probability_of_improvement.svg").read_text()
    assert "<svg" in svg and "🐳" in svg


def test_the_comparison_markdown_escapes_model_names(workspace, tmp_path):
    models = ["<script>alert(1)</script>", "a|b*c_d [x](http://e.x)"]
    url = create_sqlite(tmp_path / "h.db", make_rows(12, seed=8, models=models, text_kb=0.05))
    sync(workspace, url)
    rc, _, err = cli(workspace, "report", "--out", str(tmp_path / "rep"), "--reps", "50", timeout=300)
    assert rc == 0, err
    md = (tmp_path / "rep" / "comparison.md").read_text()
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert r"a\|b\*c_d \[x\](http://e.x)" in md  # "_" inside a word cannot emphasize
    for line in md.splitlines():
        if line.startswith("| Metric"):
            assert line.count("|") - line.count(r"\|") == 7  # six cells: no name splits the table


# ------------------------------------------------------------------ the repository
def test_streamlit_secrets_are_never_committed():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        ["git", "check-ignore", "-q", ".streamlit/secrets.toml"], cwd=root, capture_output=True
    )
    assert out.returncode == 0, ".streamlit/secrets.toml must be in .gitignore"
