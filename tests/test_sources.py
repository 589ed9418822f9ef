"""Reading FLE sources: introspection, lean batches, on-demand detail, clear failures."""

from __future__ import annotations

import sqlite3

import pyarrow as pa
import pytest
from fixtures_fle import (
    Variant,
    create_sqlite,
    make_rows,
    source_rows,
)

from fle_core.errors import SchemaError, SourceUnavailable
from fle_core.sources import programs
from fle_core.sources.programs_schema import OLD_MISSING, PROGRAMS_COLUMNS
from fle_core.workspace import SourceSpec


def _spec(url: str) -> SourceSpec:
    return SourceSpec("src", url)


def test_introspection_and_counts(build_source):
    rows = make_rows(9, seed=3)
    spec = _spec(build_source(rows))
    assert programs.program_columns(spec) == {c for c, _, _ in PROGRAMS_COLUMNS}
    assert programs.max_version(spec) == 9
    for v in (1, 7):  # version 7 is a two-agent run
        expected = sum(1 for r in rows if r["version"] == v)
        assert programs.version_step_count(spec, v) == expected
        assert programs.version_step_count(spec, v, 0) == sum(
            1 for r in rows if r["version"] == v and r["instance"] == 0
        )
    assert programs.version_step_count(spec, 999) == 0


def test_old_variant_lacks_optional_columns(build_source):
    spec = _spec(build_source(make_rows(3, seed=1), Variant(schema="old")))
    cols = programs.program_columns(spec)
    assert not cols & OLD_MISSING
    assert {"id", "value", "version", "depth", "meta"} <= cols


def test_empty_source_has_version_zero(build_source):
    assert programs.max_version(_spec(build_source([]))) == 0


def test_step_detail_is_truncated_and_matches_source(build_source):
    rows = make_rows(4, seed=5, text_kb=2)
    url = build_source(rows)
    stored = [r for r in source_rows(url) if r["version"] == 2 and r["instance"] == 0]
    detail = programs.fetch_step_detail(_spec(url), 2, 0, max_chars=50)
    assert detail.columns == [
        "id",
        "depth",
        "value",
        "code",
        "response",
        "conversation_json",
        "conversation_chars",
    ]
    assert detail["id"].to_list() == [r["id"] for r in sorted(stored, key=lambda r: (r["depth"], r["id"]))]
    assert detail["code"].to_list() == [r["code"] for r in stored]
    full = conversations(url)
    for rec in detail.iter_rows(named=True):
        conv = full[rec["id"]]
        assert rec["conversation_json"] == conv[:50]
        assert rec["conversation_chars"] == len(conv) > 50


def conversations(url: str) -> dict[int, str]:
    """id -> conversation_json straight from the source, independent of fle_core."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///") :]) as con:
            return dict(con.execute("SELECT id, conversation_json FROM programs"))
    import psycopg

    with psycopg.connect(url) as con:
        return dict(con.execute("SELECT id, conversation_json FROM programs").fetchall())


def test_step_detail_old_variant_has_null_missing_columns(tmp_path):
    rows = make_rows(2, seed=2)
    url = create_sqlite(tmp_path / "old.db", rows, Variant(schema="old"))
    detail = programs.fetch_step_detail(_spec(url), 1, 0)
    assert detail.height == sum(1 for r in rows if r["version"] == 1)
    assert detail["code"].null_count() == 0  # code exists in the old variant


def test_missing_sqlite_file_is_unavailable(tmp_path):
    missing = tmp_path / "nope" / "data.db"
    with pytest.raises(SourceUnavailable) as err:
        programs.max_version(_spec(f"sqlite:///{missing}"))
    assert str(missing) in err.value.message
    assert not missing.exists()  # connecting must not create the file


def test_no_programs_table_and_missing_required_column(tmp_path):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(SchemaError, match="no `programs` table"):
        programs.program_columns(_spec(f"sqlite:///{empty}"))
    bad = tmp_path / "bad.db"
    with sqlite3.connect(bad) as con:
        con.execute("CREATE TABLE programs (id INTEGER PRIMARY KEY, value REAL, version INTEGER)")
    with pytest.raises(SchemaError, match="depth"):
        programs.program_columns(_spec(f"sqlite:///{bad}"))


@pytest.mark.postgres
def test_postgres_down_is_unavailable_and_secret_free(monkeypatch):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FLE_TEST_PW", "s3cret-Pa55")
    spec = SourceSpec("prod", f"postgresql://eval@127.0.0.1:{port}/fle", password_env="FLE_TEST_PW")
    assert "s3cret-Pa55" in spec.resolved_url()
    with pytest.raises(SourceUnavailable) as err:
        programs.max_version(spec)
    text = str(err.value)
    assert "s3cret-Pa55" not in text and "prod" in text and "***" in text


def test_sqlite_batches_keep_types_when_first_rows_are_null(tmp_path):
    """ADBC infers SQLite types from the first rows; the sentinel must pin them."""
    rows = make_rows(400, seed=9, max_steps=40, text_kb=0.05)
    for r in rows[:9000]:
        r["raw_reward"] = None
        r["timing_metrics_json"] = None
    url = create_sqlite(tmp_path / "n.db", rows)
    with programs.connect(_spec(url)) as conn:
        cols = programs.column_types(conn)
        batches = list(programs.lean_batches(conn, cols, 0, 10**9))
    assert len(batches) > 1
    assert all(b.schema == batches[0].schema for b in batches)
    assert batches[0].schema.field("raw_reward").type == pa.float64()
    table = pa.Table.from_batches(batches)
    assert table.column("id").to_pylist() == list(range(1, len(rows) + 1))
    expected = [r["raw_reward"] for r in rows]
    assert table.column("raw_reward").to_pylist() == expected


def test_lean_batches_respect_bounds(build_source):
    rows = make_rows(10, seed=4)
    url = build_source(rows)
    with programs.connect(_spec(url)) as conn:
        cols = programs.column_types(conn)
        ids = pa.Table.from_batches(list(programs.lean_batches(conn, cols, 5, 20))).column("id").to_pylist()
        assert "conversation_json" not in programs.lean_select(conn, cols)
        assert "state_json" not in programs.lean_select(conn, cols, copy_code=True)
    assert ids == list(range(6, 21))
