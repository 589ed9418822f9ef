"""Fault injection on the data side, at CI scale: the attack loops of issue 12, repeated.

* ``sync`` (the CLI, a real subprocess) SIGKILLed at random moments, on SQLite and
  Postgres, incremental and ``--full`` mixed, while new rows keep arriving;
* a poison row of every kind seen in the wild among good rows, with kills too;
* a full disk (a small tmpfs when this machine can mount one, else a file-size
  limit on the sync process), then space again.

After every fault the warehouse must hold a gap-free prefix of the source's ids,
each once, with trajectories summing exactly those steps; after the last,
undisturbed sync it must hold every source row once. ``FLE_FAULT_SEED`` picks
the kill moments (the default keeps CI repeatable).
"""

from __future__ import annotations

import gc
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from fixtures_fle import create_postgres, create_sqlite, insert_rows, make_rows, source_ids

from fle_core import warehouse
from fle_core.warehouse.sync import sync

SEED = int(os.environ.get("FLE_FAULT_SEED", "1212"))
BATCH = 100


def _sync_cmd(ws, url, full=False, quiet=True):
    cmd = [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), "sync", "--source", url]
    return cmd + (["--quiet"] if quiet else []) + (["--full"] if full else [])


def assert_prefix_once(ws, url):
    """No row duplicated, no gap: the warehouse holds the source's ids up to its highest, once."""
    if not ws.warehouse_path.exists():
        return []
    ids = warehouse.query(ws, "SELECT id FROM steps ORDER BY id")["id"].to_list()
    assert len(ids) == len(set(ids)), "a row was written twice"
    src = source_ids(url)
    top = ids[-1] if ids else None
    assert ids == [i for i in src if top is not None and i <= top], "a row below the watermark is missing"
    n, traj = warehouse.query(
        ws,
        "SELECT (SELECT count(*) FROM steps WHERE version IS NOT NULL) AS n, "
        "(SELECT coalesce(sum(steps), 0) FROM trajectories) AS t",
    ).row(0)
    assert n == traj, "trajectories must summarise exactly the committed steps"
    return ids


def _kill_loop(ws, url, rng, rounds, grow=None):
    """Start ``fle-core sync`` (sometimes ``--full``) and SIGKILL it at a random moment.

    Readers must never see rows disappear: the source only grows, and a killed
    ``--full`` must leave the old rows in place, not a half-rebuilt source."""
    kinds = []
    seen = len(assert_prefix_once(ws, url))
    for _ in range(rounds):
        if grow is not None and rng.random() < 0.5:
            grow()  # FLE keeps writing while we sync
        full = rng.random() < 0.4
        proc = subprocess.Popen(
            _sync_cmd(ws, url, full, quiet=False),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # the first progress line means the run is open (start-up takes 1-3 s on a busy machine);
        # then kill anywhere in the copy, at a commit or between two
        first = proc.stderr.readline()
        time.sleep(rng.uniform(0.0, 1.2))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        err = first + err
        assert "Traceback" not in err, err
        kinds.append(("full" if full else "inc", proc.returncode))
        now = len(assert_prefix_once(ws, url))
        assert now >= seen, f"readers saw {seen - now} rows disappear after a killed {kinds[-1][0]} sync"
        seen = now
    return kinds


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.timeout(600)
def test_random_sigkills_of_sync_lose_and_duplicate_nothing(workspace, tmp_path, request, kind):
    rng = random.Random(SEED + (kind == "postgres"))
    rows = make_rows(80, seed=SEED, text_kb=0.05)
    if kind == "sqlite":
        url = create_sqlite(tmp_path / "s.db", rows)
    else:
        url = create_postgres(request.getfixturevalue("pg_server").create_database(), rows)
    workspace.config["sync"] = {"batch_rows": BATCH // 2, "writer_hold_s": rng.choice([0, 5])}
    workspace.save_config()
    version = [1000]

    def grow():
        version[0] += 5
        insert_rows(url, make_rows(5, seed=version[0], first_version=version[0], text_kb=0.05))

    kinds = _kill_loop(workspace, url, rng, rounds=8, grow=grow)
    assert any(code == -signal.SIGKILL for _, code in kinds), "no sync was actually killed"
    res = sync(workspace, url)
    assert assert_prefix_once(workspace, url) == source_ids(url)
    assert sync(workspace, url).rows_added == 0
    runs = warehouse.query(workspace, "SELECT status, full_rebuild, rows_added FROM sync_runs")
    assert "running" not in runs["status"].to_list() and res.sync_id == runs.height - 1
    cut = runs.filter((runs["status"] == "interrupted") & (runs["rows_added"] > 0))
    assert cut.height >= 2 and cut["full_rebuild"].any(), f"no kill landed mid-copy: {runs}"


# ------------------------------------------------------------------ poison among good rows
BAD_UTF8 = b"bad \xff\xfe bytes"


def _poison_sqlite(path):
    """One row of every bad kind, at ids spread over the source. Returns {id: expected flag}."""
    with sqlite3.connect(path) as con:
        ids = [r[0] for r in con.execute("SELECT id FROM programs ORDER BY id")]
        pick = iter(ids[50::97])
        expect = {}

        def put(sql, params, flag):
            row = next(pick)
            con.execute(sql.replace("@id", str(row)), params)
            expect[row] = flag

        for col in ("version_description", "meta", "model", "achievements_json"):
            put(f"UPDATE programs SET {col} = CAST(? AS TEXT) WHERE id = @id", [BAD_UTF8], "invalid_utf8")
            put(f"UPDATE programs SET {col} = ? WHERE id = @id", [BAD_UTF8], "invalid_utf8")  # a BLOB
        put("UPDATE programs SET token_usage = ? WHERE id = @id", [2**63 - 1], "token_overflow")
        put("UPDATE programs SET prompt_token_usage = ? WHERE id = @id", [-(2**63)], "token_overflow")
        put(
            "UPDATE programs SET meta = ? WHERE id = @id",
            ['{"pad": "' + "x" * (2 << 20) + '"}'],
            "text_truncated",
        )
        put(
            "UPDATE programs SET version_description = ? WHERE id = @id",
            ["model:gpt-4o\ntype:iron_ore_throughput\nnum_agents:99999999999"],
            None,
        )
        put("UPDATE programs SET created_at = ? WHERE id = @id", [1700000000], None)
        put("UPDATE programs SET created_at = ? WHERE id = @id", [1700000000.25], None)
        put("UPDATE programs SET value = 'n/a', depth = '2.5' WHERE id = @id", [], None)
    return expect


@pytest.mark.timeout(600)
def test_poison_rows_of_every_kind_among_good_rows_with_kills(workspace, tmp_path):
    rng = random.Random(SEED + 7)
    url = create_sqlite(tmp_path / "p.db", make_rows(70, seed=SEED + 1, text_kb=0.05))
    expect = _poison_sqlite(tmp_path / "p.db")
    workspace.config["sync"] = {"batch_rows": BATCH * 3, "writer_hold_s": 0}
    workspace.save_config()
    _kill_loop(workspace, url, rng, rounds=3)
    res = sync(workspace, url)
    assert res.sync_id >= 1
    assert assert_prefix_once(workspace, url) == source_ids(url)
    got = warehouse.query(workspace, "SELECT id, parse_flags, created_at, num_agents, value FROM steps")
    flags = dict(zip(got["id"].to_list(), got["parse_flags"].to_list(), strict=True))
    for row_id, flag in expect.items():
        if flag:
            assert flag in (flags[row_id] or ""), (row_id, flags[row_id])
    good = {i: f for i, f in flags.items() if i not in expect}
    assert all(f is None for f in good.values()), "a good row was flagged"
    assert got.filter(got["created_at"].is_null()).height == 0, "epoch created_at must become timestamps"


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_poison_rows_in_postgres_with_kills(workspace, pg_server):
    import uuid

    import psycopg

    rng = random.Random(SEED + 9)
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url(), autocommit=True) as con:
        con.execute(
            f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    url = create_postgres(pg_server.url(name), make_rows(60, seed=SEED + 2, text_kb=0.05))
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("ALTER TABLE programs ALTER COLUMN token_usage TYPE bigint")
        ids = [r[0] for r in con.execute("SELECT id FROM programs ORDER BY id")]
        bad = {
            ids[40]: "invalid_utf8",
            ids[400]: "token_overflow",
            ids[800]: "text_truncated",
            ids[1200]: None,
        }
        con.execute(
            "UPDATE programs SET meta = convert_from('\\x7b22e9223a317d'::bytea, 'SQL_ASCII') WHERE id = %s",
            [ids[40]],
        )
        con.execute("UPDATE programs SET token_usage = %s WHERE id = %s", [2**63 - 1, ids[400]])
        con.execute("UPDATE programs SET achievements_json = repeat('y', 3000000) WHERE id = %s", [ids[800]])
        con.execute(
            "UPDATE programs SET version_description = 'model:m' || chr(10) || 'type:iron_ore_throughput' "
            "|| chr(10) || 'num_agents:99999999999' WHERE id = %s",
            [ids[1200]],
        )
    workspace.config["sync"] = {"batch_rows": BATCH * 3, "writer_hold_s": 0}
    workspace.save_config()
    _kill_loop(workspace, url, rng, rounds=3)
    sync(workspace, url)
    assert assert_prefix_once(workspace, url) == source_ids(url)
    got = warehouse.query(workspace, "SELECT id, parse_flags FROM steps")
    flags = dict(zip(got["id"].to_list(), got["parse_flags"].to_list(), strict=True))
    for row_id, flag in bad.items():
        assert (flag is None and flags[row_id] is None) or flag in (flags[row_id] or ""), (
            row_id,
            flags[row_id],
        )
    assert sum(1 for f in flags.values() if f) == 3


# ------------------------------------------------------------------ a full disk
@pytest.fixture
def small_disk(tmp_path):
    """``(root, grow)``: a 6 MB tmpfs for the workspace and a function that enlarges it; or, where
    this machine cannot mount, ``(root, None)`` and syncs run under a file-size limit instead."""
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(root)], capture_output=True
    )
    if mounted.returncode:
        yield root, None
        return

    def grow():
        subprocess.run(["mount", "-o", "remount,size=256m", str(root)], check=True)

    try:
        yield root, grow
    finally:
        gc.collect()
        if subprocess.run(["umount", str(root)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(root)], check=True)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (6 << 20, 6 << 20))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead


@pytest.mark.timeout(600)
def test_a_full_disk_loses_nothing_and_names_the_cause(tmp_path, small_disk, monkeypatch):
    from fle_core.workspace import Workspace

    root, grow = small_disk
    ws = Workspace.open(root / "ws")
    monkeypatch.setenv("FLE_CORE_HOME", str(ws.root))
    url = create_sqlite(tmp_path / "big.db", make_rows(400, seed=SEED + 3, text_kb=2))
    ws.config["sync"] = {"batch_rows": 2000}
    ws.save_config()
    proc = subprocess.run(
        _sync_cmd(ws, url),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=None if grow else _limit_file_size,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error: The disk holding the warehouse is full" in proc.stderr
    assert "No space left" in proc.stderr or "too large" in proc.stderr
    assert "cannot rollback" not in proc.stderr
    committed = assert_prefix_once(ws, url)
    assert 0 < len(committed) < len(source_ids(url)), "the disk should fill part-way"
    errors = warehouse.query(ws, "SELECT error FROM sync_runs WHERE error IS NOT NULL")["error"].to_list()
    assert errors and all("cannot rollback" not in e for e in errors)
    assert any("No space left" in e or "too large" in e for e in errors)

    if grow:
        grow()
    res = sync(ws, url)  # space again: carries on from the last committed batch
    assert res.rows_added == len(source_ids(url)) - len(committed)
    assert assert_prefix_once(ws, url) == source_ids(url)
