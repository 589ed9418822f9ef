"""Adding a source (the Sources page's form and ``fle-core source add``): checked on the server.

Real files, real config writes, real CLI subprocesses, Streamlit's AppTest on the real page.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from fixtures_fle import create_sqlite, make_rows
from streamlit.testing.v1 import AppTest

from fle_core.errors import ConfigError
from fle_core.warehouse import identity
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _config(ws: Workspace) -> dict:
    return tomllib.loads(ws.config_path.read_text()) if ws.config_path.exists() else {}


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_folder_and_a_database_under_the_workspace_are_added_and_sync(workspace, inspect_logs_dir):
    shutil.copytree(inspect_logs_dir / "main", workspace.root / "team_logs")
    create_sqlite(workspace.root / "old.db", make_rows(3, seed=1))
    identity.add_source(workspace, "team", str(workspace.root / "team_logs"))
    identity.add_source(workspace, "old", "old.db")  # relative to the workspace
    entries = _config(workspace)["sources"]
    assert entries["team"] == {"kind": "inspect", "path": str((workspace.root / "team_logs").resolve())}
    assert entries["old"] == {"url": f"sqlite:///{(workspace.root / 'old.db').resolve()}"}
    ws = Workspace.open(workspace.root)
    assert set(sync(ws).sources) == {"team", "old"}


@pytest.mark.parametrize(
    ("name", "where", "why"),
    [
        ("x", "/etc", "outside the folders this server may read"),
        ("x", "../outside", "outside the folders this server may read"),
        ("x", "sqlite:////etc/passwd", "outside the folders this server may read"),
        ("x", "postgresql://eval:hunter2@db/fle", "Never type a password"),
        ("x", "postgresql://eval@db/fle?password=hunter2", "Never type a password"),
        ("../x", "evals", "not a usable source name"),
        ("a b", "evals", "not a usable source name"),
        ("local", "evals", "already exists"),
        ("x", "missing_folder", "Nothing at"),
        ("x", "ftp://host/logs", "Unsupported location"),
    ],
)
def test_what_the_server_refuses(workspace, tmp_path, name, where, why):
    (workspace.root / "evals").mkdir()
    (tmp_path / "outside").mkdir()
    before = workspace.config_path.read_text() if workspace.config_path.exists() else None
    with pytest.raises(ConfigError, match=why):
        identity.add_source(workspace, name, where)
    after = workspace.config_path.read_text() if workspace.config_path.exists() else None
    assert after == before  # nothing written


def test_a_symlink_out_of_the_allowed_folders_is_refused(workspace, tmp_path):
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (workspace.root / "innocent").symlink_to(secret)
    with pytest.raises(ConfigError, match="outside the folders"):
        identity.add_source(workspace, "x", "innocent")


def test_allowed_roots_come_from_the_config(workspace, tmp_path, inspect_logs_dir):
    shared = tmp_path / "shared"
    shutil.copytree(inspect_logs_dir / "main", shared / "logs")
    workspace.config_path.write_text(f'[app]\nsource_roots = ["{shared}"]\n')
    ws = Workspace.open(workspace.root)
    identity.add_source(ws, "shared", str(shared / "logs"))
    with pytest.raises(ConfigError, match="outside"):
        identity.add_source(ws, "own", str(ws.root))  # the workspace is no longer allowed


def test_a_source_that_would_count_logs_twice_is_refused(workspace, inspect_logs_dir):
    shutil.copytree(inspect_logs_dir / "main", workspace.root / "evals" / "main")
    identity.add_source(workspace, "all", "evals")
    ws = Workspace.open(workspace.root)
    with pytest.raises(ConfigError, match="overlaps the configured source 'all'"):
        identity.add_source(ws, "inner", "evals/main")
    assert set(_config(ws)["sources"]) == {"all"}


def test_a_folder_the_warehouse_holds_around_it_is_refused(workspace, inspect_logs_dir):
    shutil.copytree(inspect_logs_dir / "main", workspace.root / "evals" / "main")
    inner = sync(workspace, str(workspace.root / "evals" / "main"))
    with pytest.raises(ConfigError, match=f"overlaps source '{inner.source}'"):
        identity.add_source(workspace, "all", "evals")


def test_a_read_only_workspace_adds_nothing(workspace):
    (workspace.root / "evals").mkdir()
    viewer = Workspace.open(workspace.root, read_only=True)
    with pytest.raises(ConfigError, match="read-only"):
        identity.add_source(viewer, "x", "evals")


def test_two_adds_at_once_both_land(workspace, inspect_logs_dir):
    for name in ("a", "b"):
        shutil.copytree(inspect_logs_dir / "main", workspace.root / name)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "fle_core", "--workspace", str(workspace.root), "source", "add", n, n],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in ("a", "b")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert set(_config(workspace)["sources"]) == {"a", "b"}


def test_cli_add_list_remove(workspace, inspect_logs_dir):
    shutil.copytree(inspect_logs_dir / "main", workspace.root / "team_logs")
    out = _cli(workspace, "source", "add", "team", "team_logs")
    assert out.returncode == 0, out.stderr
    assert "fle-core sync --source team" in out.stdout
    listed = _cli(workspace, "source", "list")
    assert "team [inspect]" in listed.stdout and "(present)" in listed.stdout
    bad = _cli(workspace, "source", "add", "prod", "postgresql://eval:hunter2@db/fle")
    assert bad.returncode == 2 and "hunter2" not in bad.stdout + bad.stderr
    assert sum(line.startswith("error:") for line in bad.stderr.splitlines()) == 1
    assert _cli(workspace, "sync", "--source", "team").returncode == 0
    dry = _cli(workspace, "source", "remove", "team")
    assert dry.returncode == 2 and "--yes" in dry.stderr
    gone = _cli(workspace, "source", "remove", "team", "--yes")
    assert gone.returncode == 0 and "steps dropped" in gone.stdout, gone.stderr


# ---------------------------------------------------------------- the page
def _sources_page(monkeypatch, read_only: bool = False) -> AppTest:
    if read_only:
        monkeypatch.setenv("FLE_READ_ONLY", "1")
    else:
        monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/sources.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_sources_page_adds_a_log_folder(workspace, inspect_logs_dir, monkeypatch):
    shutil.copytree(inspect_logs_dir / "main", workspace.root / "team_logs")
    at = _sources_page(monkeypatch)
    at.text_input[0].input("team")
    at.text_input[1].input("team_logs")
    next(b for b in at.button if b.label == "Add source").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Added `team`" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert "team" in set(table["source"])  # listed in the same run
    assert "team" in _config(workspace)["sources"]


def test_the_sources_page_shows_why_a_path_is_refused(workspace, monkeypatch):
    at = _sources_page(monkeypatch)
    at.text_input[0].input("etc")
    at.text_input[1].input("/etc")
    next(b for b in at.button if b.label == "Add source").click().run()
    assert any("outside the folders" in e.value for e in at.error)
    assert "sources" not in _config(workspace)


def test_read_only_mode_hides_adding(workspace, monkeypatch):
    at = _sources_page(monkeypatch, read_only=True)
    assert not [b for b in at.button if b.label == "Add source"]
    assert not [e for e in at.expander if "Add a log folder" in e.label]
