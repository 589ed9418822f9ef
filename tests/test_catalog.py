"""Catalog queries and the `fle-core sync` / `fle-core status` CLI (secrets never shown)."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys

import pytest
from fixtures_fle import anomalous_rows, create_sqlite, expected_derived, make_rows, source_rows

from fle_core.errors import SourceUnavailable, WarehouseMissing
from fle_core.warehouse import catalog
from fle_core.warehouse.sync import sync

SECRET = "Sup3r-s3cret-pw"


def _two_sources(ws, tmp_path):
    a = create_sqlite(tmp_path / "a.db", make_rows(8, seed=1) + anomalous_rows())
    b = create_sqlite(tmp_path / "b.db", make_rows(5, seed=2, models=["gemini-2", "gpt-4o"]))
    ws.config["sources"] = {"alpha": {"url": a}, "beta": {"url": b}}
    sync(ws)
    return {"alpha": a, "beta": b}


def test_catalog_before_any_sync_raises_missing(workspace):
    with pytest.raises(WarehouseMissing):
        catalog.overview(workspace)


def test_overview_counts_match_the_sources(workspace, tmp_path):
    urls = _two_sources(workspace, tmp_path)
    ov = {r["source"]: r for r in catalog.overview(workspace).iter_rows(named=True)}
    assert set(ov) == {"alpha", "beta"}
    for name, url in urls.items():
        rows = source_rows(url)
        derived = [expected_derived(r) for r in rows]
        o = ov[name]
        assert o["rows"] == len(rows)
        assert o["trajectories"] == len(
            {
                (r["version"], d["instance"])
                for r, d in zip(rows, derived, strict=True)
                if r["version"] is not None
            }
        )
        assert o["models"] == len({d["model"] for d in derived if d["model"]})
        assert o["tasks"] == len({d["task"] for d in derived if d["task"]})
        assert o["flagged_rows"] == sum(1 for d in derived if d["parse_flags"])
        assert o["simulated_rows"] == sum(1 for d in derived if d["simulated"])
        assert o["watermark"] == max(r["id"] for r in rows)
        assert o["kind"] == "sqlite"


def test_history_states_and_attention(workspace, tmp_path):
    urls = _two_sources(workspace, tmp_path)
    sync(workspace, "alpha")
    (tmp_path / "b.db").unlink()
    with pytest.raises(SourceUnavailable):
        sync(workspace, "beta")
    hist = catalog.sync_history(workspace, limit=2)
    assert hist["status"].to_list() == ["failed", "ok"]
    assert hist.height == 2 and hist["sync_id"].to_list() == sorted(hist["sync_id"].to_list(), reverse=True)
    assert (hist["duration_s"] >= 0).all()
    states = {r["source"]: r for r in catalog.source_states(workspace).iter_rows(named=True)}
    assert states["alpha"]["last_status"] == "ok" and states["alpha"]["last_sync_id"] == 3
    assert states["beta"]["last_status"] == "failed" and "does not exist" in states["beta"]["last_error"]
    assert states["beta"]["last_sync_id"] == 2  # the last *successful* sync
    att = catalog.attention_rows(workspace, limit=3)
    assert att.height == 3 and att["parse_flags"].null_count() == 0
    summary = catalog.attention_summary(workspace)
    flagged = sum(1 for r in source_rows(urls["alpha"]) if expected_derived(r)["parse_flags"])
    assert summary.filter(summary["source"] == "alpha")["rows"].sum() == flagged


def test_trajectory_steps_in_step_order(workspace, tmp_path):
    url = create_sqlite(tmp_path / "t.db", make_rows(7, seed=3))
    res = sync(workspace, url)
    with sqlite3.connect(tmp_path / "t.db") as con:  # shuffle nothing, but ask the source directly
        want = [
            r[0]
            for r in con.execute(
                "SELECT id FROM programs WHERE version = 7 AND instance = 1 ORDER BY depth, id"
            )
        ]
    got = catalog.trajectory_steps(workspace, res.source, 7, 1)
    assert got["id"].to_list() == want and len(want) > 0
    assert catalog.trajectory_steps(workspace, res.source, 7, 5).height == 0
    traj = catalog.trajectories(workspace, res.source)
    assert traj.height == 8  # version 7 has two instances


# ------------------------------------------------------------------ CLI
def _cli(ws, *args, env_extra=None):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_sync_and_status(workspace):
    create_sqlite(workspace.local_source_path, make_rows(4, seed=5))
    out = _cli(workspace, "sync")
    assert out.returncode == 0, out.stderr
    n = len(source_rows(f"sqlite:///{workspace.local_source_path}"))
    assert f"synced local: +{n} rows (watermark 0 -> {n})" in out.stdout
    assert f"{n}/{n} rows" in out.stderr
    again = _cli(workspace, "sync", "--source", "local", "--quiet")
    assert "+0 rows" in again.stdout and again.stderr == ""
    st = _cli(workspace, "status", "--runs", "1")
    assert st.returncode == 0
    assert f"rows {n}" in st.stdout and "#2 local ok +0 rows" in st.stdout and "#1 " not in st.stdout


def test_cli_status_on_a_synced_workspace_never_imports_polars(workspace):
    """Start-up (issue 21): ``fle-core status`` reads its rows with DuckDB alone; Polars is
    half of what the command cost (``bench/cli.py``). ``-X importtime`` lists every import."""
    create_sqlite(workspace.local_source_path, make_rows(3, seed=2))
    assert _cli(workspace, "sync", "--quiet").returncode == 0
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fle_core", "--workspace", str(workspace.root), "status"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "trajectories 3" in done.stdout, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "duckdb" in imported  # the check can see what was imported
    assert not {m for m in imported if m.split(".")[0] in ("polars", "pandas", "pyarrow")}


def test_cli_status_on_empty_workspace(workspace):
    st = _cli(workspace, "status")
    assert st.returncode == 0 and "nothing synced yet" in st.stdout


@pytest.mark.postgres
def test_cli_never_prints_secrets(workspace, pg_server):
    """A password from the environment reaches Postgres but never the output or warehouse."""
    from fixtures_fle import create_postgres

    url = create_postgres(pg_server.create_database(), make_rows(3, seed=6))
    host = url.split("@", 1)[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    workspace.config["sources"] = {
        "prod": {"url": f"postgresql://postgres@{host}", "password_env": "FLE_PROD_PW"},
        "down": {"url": f"postgresql://postgres@127.0.0.1:{closed}/x", "password_env": "FLE_PROD_PW"},
    }
    workspace.save_config()
    env = {"FLE_PROD_PW": SECRET}
    ok = _cli(workspace, "sync", "--source", "prod", env_extra=env)
    assert ok.returncode == 0, ok.stderr
    down = _cli(workspace, "sync", "--source", "down", env_extra=env)
    assert down.returncode == 2 and "Cannot connect to source 'down'" in down.stderr
    st = _cli(workspace, "status", env_extra=env)
    for out in (ok, down, st):
        assert SECRET not in out.stdout + out.stderr
    assert "postgres:***@" in st.stdout
    states = catalog.source_states(workspace)
    assert SECRET not in str(states.rows())
    assert workspace.config_path.read_text().count(SECRET) == 0
