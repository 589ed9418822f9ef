"""A source is known by its location, never its name: nothing is silently merged or split.

Real SQLite files, real Inspect logs (written by inspect_ai), real syncs into a real DuckDB
warehouse; the expected counts come from the source files themselves.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fixtures_fle import create_sqlite, insert_sqlite, make_rows

from fle_core import warehouse
from fle_core.errors import ConfigError
from fle_core.warehouse import identity
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

HERE = Path(__file__).resolve().parent
LEGACY = HERE / "fixtures" / "legacy_warehouse" / "warehouse-1476846.tar.gz"


def _rows_by_source(ws: Workspace) -> dict[str, int]:
    rows = warehouse.query(ws, "SELECT source, count(*) AS n FROM steps GROUP BY source")
    return dict(zip(rows["source"].to_list(), rows["n"].to_list(), strict=True))


def _trajectories(ws: Workspace) -> int:
    return int(warehouse.query(ws, "SELECT count(*) AS n FROM trajectories")["n"][0])


def _programs_rows(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM programs").fetchone()[0])
    finally:
        con.close()


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _logs(tmp_path: Path, inspect_logs_dir: Path, where: str, folder: str = "main") -> Path:
    dest = tmp_path / where
    shutil.copytree(inspect_logs_dir / folder, dest)
    return dest


def _config(ws: Workspace, text: str) -> Workspace:
    ws.config_path.write_text(text)
    return Workspace.open(ws.root)


# ---------------------------------------------------------------- same name, two places
def test_two_sqlite_files_with_one_name_are_two_sources_each_synced_completely(workspace, tmp_path):
    a, b = tmp_path / "runs" / "a" / "data.db", tmp_path / "runs" / "b" / "data.db"
    a.parent.mkdir(parents=True)
    b.parent.mkdir(parents=True)
    create_sqlite(a, make_rows(4, seed=1, max_steps=12))
    create_sqlite(b, make_rows(12, seed=2, max_steps=12))
    first = sync(workspace, f"sqlite:///{a}")
    second = sync(workspace, f"sqlite:///{b}")
    assert first.sources != second.sources
    counts = _rows_by_source(workspace)
    assert counts == {first.source: _programs_rows(a), second.source: _programs_rows(b)}
    assert second.rows_added == _programs_rows(b) > _programs_rows(a)  # not "+N above a's watermark"
    # each keeps its own watermark: new rows in b arrive in b, nothing moves in a
    insert_sqlite(b, make_rows(2, seed=3, max_steps=4, first_version=500))
    assert sync(workspace, f"sqlite:///{a}").rows_added == 0
    assert sync(workspace, f"sqlite:///{b}").rows_added == _programs_rows(b) - counts[second.source]


def test_two_log_folders_with_one_name_are_two_sources(workspace, tmp_path, inspect_logs_dir):
    x = _logs(tmp_path, inspect_logs_dir, "x/logs", "main")
    y = _logs(tmp_path, inspect_logs_dir, "y/logs", "errors")
    sx = sync(workspace, str(x))
    sy = sync(workspace, str(y))
    assert sx.source != sy.source
    logs = warehouse.query(workspace, "SELECT source, count(*) AS n FROM inspect_logs GROUP BY source")
    held = dict(zip(logs["source"].to_list(), logs["n"].to_list(), strict=True))
    assert held == {sx.source: len(list(x.rglob("*.eval"))), sy.source: len(list(y.rglob("*.eval")))}
    assert sync(workspace, str(x)).details[0].unchanged  # x's logs were never treated as removed


# ---------------------------------------------------------------- one place, two routes
def test_one_log_folder_by_config_and_by_path_is_counted_once(
    workspace, tmp_path, inspect_logs_dir, monkeypatch
):
    logs = _logs(tmp_path, inspect_logs_dir, "team_logs")
    ws = _config(workspace, f'[sources.team]\nkind = "inspect"\npath = "{logs}"\n')
    sync(ws, "team")
    once = _trajectories(ws)
    assert once == 3 * 2 * 3  # models × tasks × epochs
    link = tmp_path / "link"
    link.symlink_to(logs)
    monkeypatch.chdir(tmp_path)
    for route in (str(logs), str(link), "team_logs", str(logs) + "/"):
        assert sync(ws, route).sources == ("team",), route
    assert _trajectories(ws) == once
    assert set(_rows_by_source(ws)) == {"team"}


def test_a_path_synced_first_is_taken_over_by_the_configured_name(workspace, tmp_path, inspect_logs_dir):
    logs = _logs(tmp_path, inspect_logs_dir, "shared")
    first = sync(workspace, str(logs))
    assert first.source == "inspect:shared"
    ws = _config(workspace, f'[sources.team]\nkind = "inspect"\npath = "{logs}"\n')
    result = sync(ws)
    assert result.sources == ("team",)
    assert any("now called 'team'" in n for n in result.notes)
    assert set(_rows_by_source(ws)) == {"team"}
    assert _trajectories(ws) == 18


def test_the_default_log_folder_configured_by_name_is_one_source(workspace, inspect_logs_dir):
    shutil.copytree(inspect_logs_dir / "main", workspace.inspect_logs_path)
    ws = _config(workspace, '[sources.team]\nkind = "inspect"\npath = "inspect_logs"\n')
    result = sync(ws)  # every configured source: local_inspect is covered by team
    assert result.sources == ("team",)
    assert _trajectories(ws) == 18


# ---------------------------------------------------------------- nesting is refused
def test_a_folder_inside_a_configured_folder_is_refused(workspace, tmp_path, inspect_logs_dir):
    logs = _logs(tmp_path, inspect_logs_dir, "all", ".")
    ws = _config(workspace, f'[sources.team]\nkind = "inspect"\npath = "{logs}"\n')
    sync(ws, "team")
    before = _trajectories(ws)
    with pytest.raises(ConfigError, match="overlaps source 'team'"):
        sync(ws, str(logs / "main"))
    out = _cli(ws, "sync", "--source", str(logs / "errors"))
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "team" in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    assert _trajectories(ws) == before


def test_a_folder_around_one_the_warehouse_holds_is_refused(workspace, tmp_path, inspect_logs_dir):
    logs = _logs(tmp_path, inspect_logs_dir, "all", ".")
    inner = sync(workspace, str(logs / "main"))
    ws = _config(workspace, f'[sources.team]\nkind = "inspect"\npath = "{logs}"\n')
    with pytest.raises(ConfigError, match=f"overlaps source '{inner.source}'"):
        sync(ws, "team")
    assert set(_rows_by_source(ws)) == {inner.source}


def test_two_configured_sources_at_one_place_are_refused(workspace, tmp_path, inspect_logs_dir):
    logs = _logs(tmp_path, inspect_logs_dir, "logs")
    ws = _config(
        workspace,
        f'[sources.a]\nkind = "inspect"\npath = "{logs}"\n\n[sources.b]\nkind = "inspect"\npath = "{logs / "."}"\n',
    )
    with pytest.raises(ConfigError, match="'a' and 'b'"):
        sync(ws)
    assert not ws.warehouse_path.exists()


# ---------------------------------------------------------------- a configured name moves
def test_a_configured_name_pointing_at_other_data_is_refused(workspace, tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    create_sqlite(a, make_rows(3, seed=1))
    create_sqlite(b, make_rows(5, seed=2))
    ws = _config(workspace, f'[sources.prod]\nurl = "sqlite:///{a}"\n')
    sync(ws, "prod")
    ws = _config(workspace, f'[sources.prod]\nurl = "sqlite:///{b}"\n')
    with pytest.raises(ConfigError, match="holds data from"):
        sync(ws, "prod")
    assert _rows_by_source(ws) == {"prod": _programs_rows(a)}


def test_a_configured_file_that_moved_keeps_its_rows_and_watermark(workspace, tmp_path):
    a = tmp_path / "old" / "fle.db"
    a.parent.mkdir()
    create_sqlite(a, make_rows(3, seed=1))
    ws = _config(workspace, f'[sources.prod]\nurl = "sqlite:///{a}"\n')
    n = sync(ws, "prod").rows_added
    moved = tmp_path / "new" / "fle.db"
    moved.parent.mkdir()
    shutil.move(a, moved)
    insert_sqlite(moved, make_rows(1, seed=9, max_steps=3, first_version=900))
    ws = _config(workspace, f'[sources.prod]\nurl = "sqlite:///{moved}"\n')
    result = sync(ws, "prod")
    assert any("moved from" in note for note in result.notes)
    assert result.rows_added == _programs_rows(moved) - n  # continued from the watermark
    assert _rows_by_source(ws) == {"prod": _programs_rows(moved)}


# ---------------------------------------------------------------- remove
def test_source_remove_drops_its_rows_only(workspace, tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    create_sqlite(a, make_rows(3, seed=1))
    create_sqlite(b, make_rows(3, seed=2))
    ra, rb = sync(workspace, f"sqlite:///{a}"), sync(workspace, f"sqlite:///{b}")
    version = warehouse.data_version(workspace)
    assert identity.remove(workspace, ra.source) == _programs_rows(a)
    assert _rows_by_source(workspace) == {rb.source: _programs_rows(b)}
    assert warehouse.data_version(workspace) > version  # cached views see the change
    with pytest.raises(ConfigError, match="holds no source"):
        identity.remove(workspace, "nope")


# ---------------------------------------------------------------- upgrade in place
def test_a_warehouse_of_the_previous_release_opens_and_continues(tmp_path):
    """The fixture was written by the release before locations were recorded; it is unpacked
    somewhere else (a moved workspace), so every recorded absolute path is stale too."""
    with tarfile.open(LEGACY) as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "w" / "ws"
    ws = Workspace.open(root)
    before = {"local": 17, "team": 48, "sqlite:data.db": 7}
    assert _rows_by_source(ws) == before  # opens (upgraded in place), every row kept
    states = warehouse.query(ws, "SELECT source, watermark FROM source_state ORDER BY source")
    assert dict(zip(states["source"], states["watermark"], strict=True))["local"] == 17

    result = sync(ws)  # every configured source: local (data.db) and team (../team_logs)
    assert set(result.sources) == {"local", "team"}
    assert result.rows_by_source["local"] == 0  # read on from its watermark
    assert _rows_by_source(ws) == before  # the moved logs may be re-read, but count once
    assert any("moved from" in n for n in result.notes)
    insert_sqlite(root / "data.db", make_rows(1, seed=4, max_steps=3, first_version=700))
    grown = _programs_rows(root / "data.db")
    assert sync(ws, "local").rows_added == grown - 17  # continues from its watermark
    # the source synced by URL keeps its name and its rows, and is not copied again
    again = sync(ws, f"sqlite:///{tmp_path / 'w' / 'runs' / 'data.db'}")
    assert again.sources == ("sqlite:data.db",) and again.rows_added == 0
    assert _rows_by_source(ws) == {**before, "local": grown}


# ---------------------------------------------------------------- what sync says about a folder
def test_sync_and_status_speak_of_logs_for_a_log_folder(workspace, tmp_path, inspect_logs_dir):
    logs = _logs(tmp_path, inspect_logs_dir, "logs")
    n_logs = len(list(logs.rglob("*.eval")))
    out = _cli(workspace, "sync", "--source", str(logs))
    assert out.returncode == 0, out.stderr
    steps = _rows_by_source(workspace)["inspect:logs"]
    assert f"{n_logs}/{n_logs} logs" in out.stderr and " rows" not in out.stderr
    assert f"synced inspect:logs: {n_logs} logs read, +{steps:,} steps" in out.stdout
    assert "watermark" not in out.stdout
    again = _cli(workspace, "sync", "--source", str(logs), "--quiet")
    assert "synced inspect:logs: no log changed" in again.stdout
    status = _cli(workspace, "status")
    assert f"logs {n_logs}" in status.stdout and "watermark" not in status.stdout
    assert "(0 -> 0)" not in status.stdout and "(None -> None)" not in status.stdout
