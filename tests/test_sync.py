"""Sync correctness on real SQLite files and a real Postgres server.

Expected values are computed independently, in Python, from the rows read
straight out of the source (``fixtures_fle.source_rows``) with ``fle_core.tasks``'
parsers, and compared with what the SQL in ``sync`` derived.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
from collections import Counter, defaultdict

import pytest
from fixtures_fle import (
    Variant,
    anomalous_rows,
    create_sqlite,
    expected_derived,
    insert_rows,
    make_rows,
    source_ids,
    source_rows,
)

from fle_core import warehouse
from fle_core.errors import SourceUnavailable
from fle_core.warehouse.sync import sync


def _steps(ws, source=None):
    sql = "SELECT * FROM steps" + (" WHERE source = ?" if source else "") + " ORDER BY source, id"
    return warehouse.query(ws, sql, [source] if source else None)


def assert_matches_source(ws, url, source_name):
    src = {r["id"]: r for r in source_rows(url)}
    got = _steps(ws, source_name)
    assert got["id"].to_list() == sorted(src), "ids must equal the source's: no gaps, no duplicates"
    for row in got.iter_rows(named=True):
        r = src[row["id"]]
        exp = expected_derived(r)
        for key, value in exp.items():
            assert row[key] == value, (key, row["id"], row[key], value)
        assert row["version"] == r["version"]
        assert row["value"] == (None if r["value"] is None else pytest.approx(r["value"]))
        assert row["depth"] == (None if r["depth"] is None else pytest.approx(float(r["depth"])))
        assert row["total_tokens"] == r.get("token_usage")
        assert row["version_description"] == r.get("version_description")
    return got


def expected_trajectories(url) -> dict:
    groups = defaultdict(list)
    for r in source_rows(url):
        if r["version"] is not None:
            groups[(r["version"], -1 if r["instance"] is None else r["instance"])].append(r)
    out = {}
    for key, rs in groups.items():
        finite = [r for r in rs if r["value"] is not None and math.isfinite(r["value"])]
        last = max(
            finite, key=lambda r: (-math.inf if r["depth"] is None else r["depth"], r["id"]), default=None
        )
        vals = [r["value"] for r in finite]
        out[key] = {
            "steps": len(rs),
            "best_value": max(vals) if vals else None,
            "final_value": None if last is None else last["value"],  # the last finite value
            "total_tokens": sum(r["token_usage"] for r in rs if r.get("token_usage") is not None)
            if any(r.get("token_usage") is not None for r in rs)
            else None,
            "model": Counter(
                expected_derived(r)["model"] for r in rs if expected_derived(r)["model"]
            ).most_common(1)[0][0]
            if any(expected_derived(r)["model"] for r in rs)
            else None,
        }
    return out


def assert_trajectories(ws, url, source_name):
    exp = expected_trajectories(url)
    got = warehouse.query(ws, "SELECT * FROM trajectories WHERE source = ?", [source_name])
    assert got.height == len(exp)
    for row in got.iter_rows(named=True):
        e = exp[(row["version"], row["instance"])]
        assert row["steps"] == e["steps"]
        assert row["final_value"] == (None if e["final_value"] is None else pytest.approx(e["final_value"]))
        assert row["best_value"] == (None if e["best_value"] is None else pytest.approx(e["best_value"]))
        assert row["total_tokens"] == e["total_tokens"]
        assert row["model"] == e["model"]


# ------------------------------------------------------------------ basics, both kinds
def test_sync_copies_and_derives_exactly(workspace, build_source):
    url = build_source(make_rows(25, seed=11) + anomalous_rows())
    progress = []
    res = sync(workspace, url, progress=lambda d, t: progress.append((d, t)))
    n = len(source_ids(url))
    assert res.rows_added == n and res.watermark_after[res.source] == max(source_ids(url))
    assert progress[0] == (0, n) and progress[-1] == (n, n)
    got = assert_matches_source(workspace, url, res.source)
    assert_trajectories(workspace, url, res.source)
    flags = dict(zip(got["id"].to_list(), got["parse_flags"].to_list(), strict=True))
    assert sorted(f for f in flags.values() if f) == sorted(
        ["malformed_meta", "malformed_meta", "unparsed_task", "unparsed_task", "missing_version"]
    )
    assert got.filter(got["code"].is_not_null()).height == 0  # lean: no code by default
    assert warehouse.data_version(workspace) == res.sync_id


def test_second_sync_is_idempotent_then_incremental(workspace, build_source):
    rows = make_rows(12, seed=2)
    url = build_source(rows)
    first = sync(workspace, url)
    again = sync(workspace, url)
    assert again.rows_added == 0 and again.sync_id == first.sync_id + 1
    assert _steps(workspace).height == len(rows)
    # FLE appends: more steps of version 12 plus a brand-new version
    more = [dict(r, depth=r["depth"] + 100) for r in rows if r["version"] == 12][:3]
    more += make_rows(1, seed=3, first_version=13)
    insert_rows(url, more)
    inc = sync(workspace, url)
    assert inc.rows_added == len(more)
    assert inc.watermark_before[inc.source] == first.watermark_after[first.source]
    assert_matches_source(workspace, url, inc.source)
    assert_trajectories(workspace, url, inc.source)
    runs = warehouse.query(workspace, "SELECT status, rows_added FROM sync_runs ORDER BY sync_id")
    assert runs["status"].to_list() == ["ok"] * 3
    assert runs["rows_added"].to_list() == [len(rows), 0, len(more)]


def test_full_rebuilds_one_source(workspace, build_source, tmp_path):
    url = build_source(make_rows(6, seed=4))
    other = create_sqlite(tmp_path / "other.db", make_rows(3, seed=5))
    sync(workspace, url)
    o = sync(workspace, other)
    full = sync(workspace, url, full=True)
    assert full.rows_added == len(source_ids(url)) and full.watermark_before[full.source] == 0
    steps = _steps(workspace)
    # rows keep the sync that first brought them in, so views pinned to it still see them
    assert set(steps.filter(steps["source"] == full.source)["sync_id"].to_list()) == {1}
    assert steps.filter(steps["source"] == o.source).height == len(source_ids(other))  # untouched
    assert_matches_source(workspace, url, full.source)
    assert (
        warehouse.query(
            workspace, "SELECT full_rebuild FROM sync_runs WHERE sync_id = ?", [full.sync_id]
        ).item()
        is True
    )


@pytest.mark.parametrize(
    "variant", [Variant(schema="old"), Variant(fractional_depth=True)], ids=["old-schema", "fractional-depth"]
)
def test_schema_variants(workspace, build_source, variant):
    url = build_source(make_rows(10, seed=6, variant=variant) + anomalous_rows(), variant)
    res = sync(workspace, url)
    got = assert_matches_source(workspace, url, res.source)
    assert_trajectories(workspace, url, res.source)
    if variant.schema == "old":
        assert got["holdout_value"].null_count() == got.height
        assert got["prompt_tokens"].null_count() == got.height
    else:
        assert any(d % 1 == 0.5 for d in got["depth"].drop_nulls().to_list())


@pytest.mark.postgres
def test_postgres_jsonb_meta(workspace, pg_server):
    from fixtures_fle import create_postgres

    variant = Variant(meta_jsonb=True)
    url = create_postgres(pg_server.create_database(), make_rows(8, seed=8) + anomalous_rows(), variant)
    res = sync(workspace, url)
    got = assert_matches_source(workspace, url, res.source)
    # jsonb cannot hold the malformed text, so only the non-object JSON stays flagged
    assert got["parse_flags"].to_list().count("malformed_meta") == 1
    assert got["sweep_id"].drop_nulls().len() > 0


def test_malformed_meta_and_unparsed_rows_are_kept_and_listed(workspace, tmp_path):
    from fle_core.warehouse import catalog

    url = create_sqlite(tmp_path / "a.db", anomalous_rows())
    sync(workspace, url)
    att = catalog.attention_rows(workspace)
    assert {"[1, 2]", "{not json"} <= set(att["meta"].drop_nulls().to_list())
    assert set(att["parse_flags"]) == {"malformed_meta", "unparsed_task", "missing_version"}
    assert "a free-form note" in att["version_description"].to_list()
    assert _steps(workspace).height == len(anomalous_rows())


def test_sqlite_mixed_value_types_fall_back_to_per_value_conversion(workspace, tmp_path):
    rows = make_rows(5, seed=12)
    url = create_sqlite(tmp_path / "mixed.db", rows)
    with sqlite3.connect(tmp_path / "mixed.db") as con:  # what hand-edited dumps contain
        con.execute("UPDATE programs SET value = 'n/a', depth = '2.5', created_at = 1700000000 WHERE id = 3")
        con.execute("UPDATE programs SET prompt_token_usage = 12.7, version_description = x'41' WHERE id = 4")
    sync(workspace, url)
    got = {r["id"]: r for r in _steps(workspace).iter_rows(named=True)}
    assert len(got) == len(rows)
    assert got[3]["value"] is None and got[3]["depth"] == 2.5
    assert got[3]["created_at"].isoformat() == "2023-11-14T22:13:20"
    assert got[4]["prompt_tokens"] == 13 and got[4]["version_description"] == "A"
    assert got[5]["value"] == pytest.approx(rows[4]["value"])


def test_copy_code_option(workspace, build_source):
    rows = make_rows(3, seed=13)
    url = build_source(rows)
    workspace.config["sync"] = {"copy_code": True, "batch_rows": 7}
    sync(workspace, url)
    got = _steps(workspace)
    assert got["code"].to_list() == [r["code"] for r in rows]
    assert got["response"].to_list() == [r["response"] for r in rows]


NASTY_TEXTS = [
    None,
    "",
    '"',
    '""',
    "a,b",
    "x\ny",
    "x\r\ny",
    "\\",
    "\\N",
    "NULL",
    "ü ☃ 𝄞",
    " lead ",
    '{"a": "b\\"c"}',
    "\t",
    '"quoted"',
    ",",
    "\n",
]


def test_nasty_text_round_trips_exactly(workspace, build_source):
    """NULL vs '', quotes, commas, CR/LF, backslashes, 'NULL'/'\\N' spellings and unicode
    reach the warehouse byte for byte (text columns are copied, never reinterpreted)."""
    rows = make_rows(4, seed=14)[: len(NASTY_TEXTS)]
    assert len(rows) == len(NASTY_TEXTS)
    for i, r in enumerate(rows):
        r["code"] = NASTY_TEXTS[i]
        r["response"] = NASTY_TEXTS[-1 - i]
        r["achievements_json"] = NASTY_TEXTS[(i + 5) % len(NASTY_TEXTS)]
        r["timing_metrics_json"] = NASTY_TEXTS[(i + 9) % len(NASTY_TEXTS)]
    url = build_source(rows)
    workspace.config["sync"] = {"copy_code": True, "batch_rows": 5}
    sync(workspace, url)
    got = _steps(workspace)
    for col in ("code", "response", "achievements_json", "timing_metrics_json"):
        assert got[col].to_list() == [r[col] for r in rows], col


# ------------------------------------------------------------------ several sources
def test_two_sources_with_colliding_versions(workspace, build_source, tmp_path):
    a = build_source(make_rows(6, seed=20), name="a")
    b = create_sqlite(tmp_path / "b.db", make_rows(6, seed=21, models=["gemini-2"]))
    workspace.config["sources"] = {"alpha": {"url": a}, "beta": {"url": b}}
    res = sync(workspace)  # every configured source that exists (no data.db here)
    assert set(res.sources) == {"alpha", "beta"} and len(set(res.sync_ids)) == 2
    for name, url in (("alpha", a), ("beta", b)):
        assert_matches_source(workspace, url, name)
        assert_trajectories(workspace, url, name)
    versions = warehouse.query(
        workspace,
        "SELECT source, count(DISTINCT version) AS n FROM trajectories GROUP BY source ORDER BY source",
    )
    assert versions["n"].to_list() == [6, 6]
    models = warehouse.query(workspace, "SELECT DISTINCT model FROM trajectories WHERE source = 'beta'")
    assert models["model"].to_list() == ["gemini-2"]


def test_no_source_at_all_is_a_clear_error(workspace):
    with pytest.raises(SourceUnavailable, match="No source to sync"):
        sync(workspace)
    assert not workspace.warehouse_path.exists()


def test_local_data_db_is_the_default_source(workspace):
    create_sqlite(workspace.local_source_path, make_rows(2, seed=1))
    res = sync(workspace)
    assert res.sources == ("local",)
    assert res.rows_added == len(source_ids(f"sqlite:///{workspace.local_source_path}"))


# ------------------------------------------------------------------ failures leave data unchanged
def test_source_down_leaves_warehouse_unchanged(workspace, build_source, source_kind):
    url = build_source(make_rows(5, seed=30))
    workspace.config["sources"] = {"prod": {"url": url}}
    sync(workspace, "prod")
    before = _steps(workspace)
    version = warehouse.data_version(workspace)
    if source_kind == "sqlite":
        from fle_core.workspace import sqlite_path

        sqlite_path(url).unlink()
    else:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        workspace.config["sources"]["prod"] = {"url": f"postgresql://postgres@127.0.0.1:{port}/x"}
    with pytest.raises(SourceUnavailable):
        sync(workspace, "prod")
    assert _steps(workspace).equals(before)
    assert warehouse.data_version(workspace) == version


def test_failed_query_records_error_without_secret(workspace, tmp_path, monkeypatch):
    """A source that connects but whose table is unusable: failed run, secret-free error."""
    bad = tmp_path / "bad.db"
    with sqlite3.connect(bad) as con:
        con.execute("CREATE TABLE programs (id INTEGER PRIMARY KEY, value REAL)")
    url = create_sqlite(tmp_path / "good.db", make_rows(2, seed=1))
    sync(workspace, url)  # warehouse exists
    from fle_core.errors import SchemaError

    with pytest.raises(SchemaError):
        sync(workspace, f"sqlite:///{bad}")
    run = warehouse.query(workspace, "SELECT status, error FROM sync_runs ORDER BY sync_id DESC LIMIT 1")
    assert run["status"].item() == "failed" and "version" in run["error"].item()


def test_meta_edge_values_follow_python_truthiness(workspace, tmp_path):
    metas = [
        '{"error_occurred": "false", "simulated": 1, "production_score": "7.5"}',
        '{"error_occurred": 0, "simulated": [], "production_score": true}',
        '{"error_occurred": null, "simulated": "", "model": 42}',
        '{"error_occurred": [0], "simulated": {}, "task": " Factorio-sulfur_throughput_16-v0 "}',
        '  {"model": "padded"}',
        "   ",
        "null",
        '"{\\"model\\": \\"x\\"}"',
    ]
    rows = [
        {
            "version": i + 1,
            "value": 1.0,
            "depth": 0.0,
            "instance": 0,
            "meta": m,
            "version_description": "free text",
        }
        for i, m in enumerate(metas)
    ]
    url = create_sqlite(tmp_path / "m.db", rows)
    sync(workspace, url)
    assert_matches_source(workspace, url, sync(workspace, url).source)
    got = _steps(workspace)
    assert got["task"].to_list()[3] == "sulfur_throughput"
    assert json.loads(metas[0])["error_occurred"] == "false" and got["error_occurred"].to_list()[0] is True


def test_sync_refreshes_sweep_attempts_from_the_control_store(workspace):
    """The attempts of the sweep control store land in ``sweep_attempts`` on each sync."""
    import time

    from fle_core import sweeps
    from fle_core.sweeps.config import demo_config
    from fle_core.sweeps.store import open_store

    create_sqlite(workspace.local_source_path, make_rows(2, seed=1))
    attempts = sweeps.attempts_for_sync(workspace)
    sync(workspace, attempts=attempts)
    assert warehouse.query(workspace, "SELECT count(*) FROM sweep_attempts").item() == 0
    cfg = demo_config()
    sweeps.launch(workspace, cfg)
    store = open_store(workspace)
    claims = [store.claim("r1", "host", time.time(), 30, {cfg.source: ("key", 2)}) for _ in range(2)]
    store.finish_attempt(claims[0].attempt.attempt_id, "r1", "failed", time.time(), exit_code=1)
    store.close()
    sync(workspace)  # no provider: the warehouse's copy is left alone
    assert warehouse.query(workspace, "SELECT count(*) FROM sweep_attempts").item() == 0
    sync(workspace, attempts=attempts)
    got = warehouse.query(workspace, "SELECT * FROM sweep_attempts ORDER BY version")
    want = sweeps.attempts_frame(workspace).sort("version")
    assert got.height == 2 and got.select(want.columns).equals(want)
    assert got["version"].to_list() == sorted(c.attempt.version for c in claims)
    assert "running" in set(got["status"])


def test_default_source_setting_limits_an_unnamed_sync(workspace, tmp_path):
    a = create_sqlite(tmp_path / "a.db", make_rows(2, seed=1))
    b = create_sqlite(tmp_path / "b.db", make_rows(2, seed=2))
    workspace.config.update({"sources": {"alpha": {"url": a}, "beta": {"url": b}}, "default_source": "beta"})
    assert sync(workspace).sources == ("beta",)


def test_sql_meta_parsing_agrees_with_python_on_a_random_corpus(workspace, tmp_path):
    """sync parses meta in SQL; fle_core.tasks.parse_meta is the reference (300 odd metas)."""
    import random

    rng = random.Random(1234)
    values = [
        True,
        False,
        0,
        1,
        2.5,
        -3,
        "",
        "x",
        "false",
        "0",
        "12.5",
        " 7 ",
        "nan",
        [],
        [0],
        {},
        {"a": 1},
        None,
        "gpt-4o",
        "Factorio-iron_plate_throughput_16-v0",
        " open_play ",
        "iron_ore_throughput",
    ]
    keys = [
        "model",
        "task",
        "task_key",
        "env_id",
        "sweep_id",
        "error_occurred",
        "production_score",
        "simulated",
        "process_id",
    ]
    rows = []
    for i in range(300):
        meta = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        for k in ("model", "task", "task_key", "env_id", "sweep_id"):  # text fields: no nested JSON
            if isinstance(meta.get(k), (dict, list)):
                meta.pop(k)
        rows.append(
            {
                "version": i + 1,
                "value": 1.0,
                "depth": 0.0,
                "instance": 0,
                "meta": json.dumps(meta),
                "version_description": rng.choice(["free text", None, "model:m1\ntype:sulfur_throughput"]),
            }
        )
    url = create_sqlite(tmp_path / "corpus.db", rows)
    res = sync(workspace, url)
    src = {r["id"]: r for r in source_rows(url)}
    for row in _steps(workspace).iter_rows(named=True):
        exp = expected_derived(src[row["id"]])
        for key, value in exp.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(row[key]), (key, src[row["id"]]["meta"])
            else:
                assert row[key] == value, (key, src[row["id"]]["meta"], row[key], value)
    assert res.rows_added == 300


def test_chunk_bounds_cover_the_range_exactly():
    from fle_core.warehouse._stream import chunk_bounds

    b = chunk_bounds(10, 1000, 990, 100)
    assert b[0][0] == 10 and b[-1][1] == 1000
    assert all(hi == nxt_lo for (_, hi), (nxt_lo, _) in itertools.pairwise(b))
    assert chunk_bounds(0, 10_000, 100, 50) is None  # 100 ids per row: too sparse for id ranges
    assert chunk_bounds(5, 5, 0, 100) == []


@pytest.mark.parametrize(
    ("gap", "workers"),
    [(10, 2), (3, 3), (1, 1)],
    ids=["sparse-one-stream", "gaps-parallel-chunks", "dense-one-worker"],
)
def test_sparse_ids_and_worker_counts_give_the_same_rows(workspace, tmp_path, gap, workers):
    rows = make_rows(12, seed=14)
    url = create_sqlite(tmp_path / "sparse.db", rows)
    with sqlite3.connect(tmp_path / "sparse.db") as con:  # ids 1*gap, 2*gap, ... (rows deleted)
        con.execute("UPDATE programs SET id = -id")
        con.execute("UPDATE programs SET id = -id * ?", [gap])
    # writer_threads varies with the case too: the rows must not depend on it
    workspace.config["sync"] = {"batch_rows": 37, "read_workers": workers, "writer_threads": workers}
    res = sync(workspace, url)
    assert res.rows_added == len(rows)
    assert_matches_source(workspace, url, res.source)
    assert_trajectories(workspace, url, res.source)


def test_bad_sync_config_is_a_config_error(workspace, tmp_path):
    from fle_core.errors import ConfigError

    url = create_sqlite(tmp_path / "c.db", make_rows(1, seed=1))
    for bad in ({"batch_rows": "many"}, {"writer_threads": "two"}):
        workspace.config["sync"] = bad
        with pytest.raises(ConfigError, match=r"\[sync\]"):
            sync(workspace, url)


def test_the_trajectories_table_agrees_with_the_summaries(workspace, build_source):
    """One trajectory aggregate (issue 22): the table sync writes and ``load_summaries``
    (stats' rule) give the same steps, best and final reward, also when a trajectory ends
    on a non-finite value (the table used to keep ``inf`` as the final value)."""
    import polars as pl

    from fle_core import analysis

    rows = make_rows(12, seed=5)
    last = {}
    for i, r in enumerate(rows):  # the row order is the id order
        key = (r["version"], r["instance"])
        if key not in last or (r["depth"], i) >= (last[key][0]["depth"], last[key][1]):
            last[key] = (r, i)
    for i, (r, _) in enumerate(sorted(last.values(), key=lambda x: x[1])[:6]):
        r["value"] = (math.inf, -math.inf)[i % 2]  # the trajectory ends on a non-finite value
    res = sync(workspace, build_source(rows))
    table = warehouse.query(
        workspace, "SELECT version, instance, steps, best_value, final_value FROM trajectories WHERE source = ?",
        [res.source],
    )  # fmt: skip
    summaries = analysis.load_summaries(workspace).filter(pl.col("source") == res.source)
    both = table.join(summaries, on=["version", "instance"], how="full", coalesce=True)
    assert both.height == table.height == summaries.height == len(last)
    assert both["steps"].to_list() == both["steps_right"].to_list()
    assert both["best_value"].to_list() == both["best_reward"].to_list()
    assert both["final_value"].to_list() == both["final_reward"].to_list()
    assert both.filter(pl.col("final_value").is_infinite()).is_empty()
