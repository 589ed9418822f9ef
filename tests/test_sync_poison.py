"""One bad row never stops a source: poison rows among good ones, on real SQLite and Postgres.

Each test puts rows of one bad kind among ~2,000 good rows and checks that every
good row arrives exactly as in the source, and that the bad row is kept and
flagged (or quarantined with its id and reason). The expected values come from
the source itself (``fixtures_fle.source_rows``), not from the code under test.
"""

from __future__ import annotations

import sqlite3

import pytest
from fixtures_fle import create_postgres, create_sqlite, insert_rows, make_rows, source_ids, source_rows

from fle_core import warehouse
from fle_core.warehouse import catalog
from fle_core.warehouse.sync import sync

GOOD = 60  # trajectories: ~2,000 rows with make_rows' step counts


def _steps(ws):
    return {r["id"]: r for r in warehouse.query(ws, "SELECT * FROM steps ORDER BY id").iter_rows(named=True)}


def _sqlite_source(tmp_path, n=GOOD, seed=1):
    url = create_sqlite(tmp_path / "s.db", make_rows(n, seed=seed, text_kb=0.05))
    return url, tmp_path / "s.db"


def _assert_good_rows_intact(ws, expected, bad_ids):
    """Every source row is in the warehouse once; every good row is exactly as in the source.

    ``expected`` is ``source_rows(url)`` read before the bad values were written."""
    got = _steps(ws)
    assert sorted(got) == [r["id"] for r in expected], "no row lost, none duplicated"
    for r in expected:
        if r["id"] in bad_ids:
            continue
        row = got[r["id"]]
        assert row["value"] == pytest.approx(r["value"])
        assert row["total_tokens"] == r["token_usage"]
        assert row["version_description"] == r["version_description"]
        assert row["meta"] == r["meta"]
        assert row["parse_flags"] is None
    return got


# ------------------------------------------------------------------ item 2: invalid UTF-8
@pytest.mark.parametrize("column", ["version_description", "meta", "model", "achievements_json"])
@pytest.mark.parametrize("storage", ["text", "blob"])
def test_invalid_utf8_row_is_kept_flagged_and_the_rest_syncs(workspace, tmp_path, column, storage):
    url, path = _sqlite_source(tmp_path)
    expected = source_rows(url)
    bad = b"model:gpt-4o\ntype:iron_ore_throughput \xff\xfe end"
    with sqlite3.connect(path) as con:
        value = "CAST(? AS TEXT)" if storage == "text" else "?"
        con.execute(f"UPDATE programs SET {column} = {value} WHERE id = 500", [bad])
    res = sync(workspace, url)
    assert res.rows_added == len(source_ids(url))
    got = _assert_good_rows_intact(workspace, expected, {500})
    row = got[500]
    assert "invalid_utf8" in row["parse_flags"]
    assert row[column] == bad.decode("utf-8", errors="replace")  # kept, bad bytes as U+FFFD
    assert row["value"] is not None and row["version"] is not None
    assert sync(workspace, url).rows_added == 0  # and the source is not stuck on it


@pytest.mark.postgres
def test_invalid_utf8_in_a_sql_ascii_postgres_database(workspace, pg_server):
    """Postgres stores any bytes in a SQL_ASCII database; such a row must not stop the source."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url(), autocommit=True) as con:
        con.execute(
            f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    url = create_postgres(pg_server.url(name), make_rows(GOOD, seed=2, text_kb=0.05))
    with psycopg.connect(url) as con:
        con.execute(
            "UPDATE programs SET meta = convert_from('\\x7b22e9223a317d'::bytea, 'SQL_ASCII') WHERE id = 77"
        )
    res = sync(workspace, url)
    assert res.rows_added == len(source_ids(url))
    got = _steps(workspace)
    assert sorted(got) == source_ids(url)
    assert "invalid_utf8" in got[77]["parse_flags"]
    assert got[77]["meta"] == '{"\ufffd":1}'
    assert sum(1 for r in got.values() if r["parse_flags"]) == 1


# ------------------------------------------------------------------ item 2: token sums
def test_int64_max_token_counts_do_not_overflow_the_trajectory(workspace, build_source, source_kind):
    rows = make_rows(GOOD, seed=3, text_kb=0.05)
    first = [i for i, r in enumerate(rows) if r["version"] == 5][:2]
    for i in first:  # two rows of one trajectory at int64 max: their sum overflows BIGINT
        rows[i]["token_usage"] = 2**63 - 1
    url = build_source([])
    if source_kind == "postgres":  # FLE's Postgres column is INTEGER; bigint deployments exist
        import psycopg

        with psycopg.connect(url, autocommit=True) as con:
            con.execute("ALTER TABLE programs ALTER COLUMN token_usage TYPE bigint")
    insert_rows(url, rows)
    ids = source_ids(url)
    bad = {ids[i] for i in first}
    sync(workspace, url)
    got = _assert_good_rows_intact(workspace, source_rows(url), bad)
    for i in bad:
        assert got[i]["parse_flags"] == "token_overflow" and got[i]["total_tokens"] is None
    traj = warehouse.query(
        workspace, "SELECT steps, total_tokens FROM trajectories WHERE version = 5 AND instance = 0"
    ).row(0, named=True)
    good = [r["token_usage"] for r in rows if r["version"] == 5 and r["instance"] == 0]
    assert traj["steps"] == len(good)
    assert traj["total_tokens"] == sum(t for t in good if t != 2**63 - 1)


def test_an_agent_count_beyond_int32_does_not_stop_the_source(workspace, tmp_path):
    url, path = _sqlite_source(tmp_path, seed=4)
    with sqlite3.connect(path) as con:
        con.execute(
            "UPDATE programs SET version_description = "
            "'model:gpt-4o' || char(10) || 'type:iron_ore_throughput' || char(10) || 'num_agents:99999999999' "
            "WHERE id = 10"
        )
    sync(workspace, url)
    got = _steps(workspace)
    assert sorted(got) == source_ids(url)
    assert got[10]["num_agents"] is None and got[10]["task"] == "iron_ore_throughput"


# ------------------------------------------------------------------ item 2: huge text
def test_four_50_mb_rows_in_one_batch_sync_with_the_text_cut_and_flagged(workspace, tmp_path):
    """Four ~50 MB ``meta`` values in one batch ran the writer out of its 512 MB."""
    from fle_core.warehouse import _poison

    url, path = _sqlite_source(tmp_path, n=20, seed=5)
    big = '{"model": "gpt-4o", "pad": "' + "x" * (50 * 1024 * 1024) + '"}'
    with sqlite3.connect(path) as con:
        con.execute("UPDATE programs SET meta = ? WHERE id IN (3, 4, 5, 6)", [big])
    res = sync(workspace, url)
    assert res.rows_added == len(source_ids(url))
    got = _steps(workspace)
    for i in (3, 4, 5, 6):
        assert "text_truncated" in got[i]["parse_flags"]
        assert len(got[i]["meta"].encode()) <= _poison.MAX_TEXT_BYTES
        assert got[i]["meta"] == big[: len(got[i]["meta"])]
    assert all(got[i]["parse_flags"] is None for i in got if i not in (3, 4, 5, 6))


# ------------------------------------------------------------------ the safety net
def test_a_row_duckdb_rejects_is_quarantined_with_its_id_and_reason(workspace, tmp_path, monkeypatch):
    """With the repair layer switched off, DuckDB itself rejects the invalid UTF-8: the batch
    is written in halves and that one row is quarantined; every other row arrives."""
    from fle_core.warehouse import _poison

    url, path = _sqlite_source(tmp_path, seed=6)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE programs SET meta = CAST(X'7b22ff223a317d' AS TEXT) WHERE id = 321")
    monkeypatch.setattr(_poison, "clean", _no_repair)
    res = sync(workspace, url)
    got = _steps(workspace)
    assert sorted(got) == source_ids(url)
    assert res.rows_added == len(got)
    assert got[321]["parse_flags"] == "quarantined:invalid_value"
    assert got[321]["value"] is None and got[321]["version"] is None
    assert sum(1 for r in got.values() if r["parse_flags"]) == 1
    att = catalog.attention_rows(workspace)
    assert att.filter(att["id"] == 321)["parse_flags"].to_list() == ["quarantined:invalid_value"]
    assert sync(workspace, url).rows_added == 0


def _no_repair(table):
    import pyarrow as pa

    return table.append_column("_flags", pa.nulls(table.num_rows, pa.string()))


# ------------------------------------------------------------------ item 1: Postgres text numbers
@pytest.mark.postgres
def test_postgres_text_typed_numbers_sync_as_numbers(workspace, pg_url):
    """``value``/``version``/``depth`` as text: the ``?`` of the numeric regex must stay a ``?``."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(
            "CREATE TABLE programs (id BIGSERIAL PRIMARY KEY, value TEXT, version TEXT, depth TEXT, "
            "instance INTEGER, model TEXT, meta TEXT, version_description TEXT, token_usage TEXT, "
            "created_at TEXT)"
        )
        vd = "model:gpt-4o\ntype:iron_ore_throughput\nnum_agents:1"
        rows = [
            ("1.5", "1", "0", "100", "2025-01-01 00:00:00"),
            ("+2", "1", "1.0", "1e3", "1700000000"),
            ("-.5e1", "1", " 2 ", "7", "1700000000.5"),
            ("n/a", "1", "3", "lots", None),  # junk: NULL, row kept
            ("1e400", "1", "4", "99999999999999999999999", None),  # out of range: NULL, row kept
        ]
        for value, version, depth, tokens, ts in rows:
            con.execute(
                "INSERT INTO programs (value, version, depth, instance, model, meta, version_description, "
                "token_usage, created_at) VALUES (%s, %s, %s, 0, 'gpt-4o', '{}', %s, %s, %s)",
                [value, version, depth, vd, tokens, ts],
            )
    sync(workspace, pg_url)
    got = warehouse.query(workspace, "SELECT * FROM steps ORDER BY id")
    assert got["value"].to_list() == [1.5, 2.0, -5.0, None, None]
    assert got["version"].to_list() == [1] * 5
    assert got["depth"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert got["total_tokens"].to_list() == [100, 1000, 7, None, None]
    assert got["parse_flags"].to_list() == [None] * 5
    assert [t and t.isoformat() for t in got["created_at"].to_list()] == [
        "2025-01-01T00:00:00",
        "2023-11-14T22:13:20",
        "2023-11-14T22:13:20.500000",
        None,
        None,
    ]
    traj = warehouse.query(workspace, "SELECT steps, best_value FROM trajectories").row(0, named=True)
    assert traj == {"steps": 5, "best_value": 2.0}


# ------------------------------------------------------------------ item 4: epoch created_at
@pytest.mark.parametrize("epoch", [1700000000, 1700000000.5])
def test_sqlite_epoch_created_at_becomes_a_timestamp(workspace, tmp_path, epoch):
    """Only the epoch value differs from FLE's text timestamps (no other odd value forces the
    per-value path): it must still become a timestamp, as docs/sync.md says."""
    url, path = _sqlite_source(tmp_path, n=5, seed=7)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE programs SET created_at = ? WHERE id = 3", [epoch])
    sync(workspace, url)
    got = _steps(workspace)
    want = "2023-11-14T22:13:20" + (".500000" if isinstance(epoch, float) else "")
    assert got[3]["created_at"].isoformat() == want
    assert got[4]["created_at"] is not None


# ------------------------------------------------------------------ ids sync must not miss
def test_ids_of_zero_and_below_are_synced(workspace, tmp_path):
    path = tmp_path / "z.db"
    url = create_sqlite(path, make_rows(3, seed=8, text_kb=0.05))
    with sqlite3.connect(path) as con:  # hand-made rows with ids 0 and -4 (INTEGER PRIMARY KEY)
        for new_id in (0, -4):
            con.execute(
                "INSERT INTO programs (id, value, version, depth, instance, meta, version_description) "
                "SELECT ?, value, version, depth + 100, instance, meta, version_description "
                "FROM programs WHERE id = 1",
                [new_id],
            )
    sync(workspace, url)
    assert sorted(_steps(workspace)) == source_ids(url)
    assert sync(workspace, url).rows_added == 0
