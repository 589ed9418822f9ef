from __future__ import annotations

import psycopg
import pytest

from fle_core.errors import ConfigError, UnknownTask
from fle_core.tasks import TaskRegistry, parse_meta, parse_version_description
from fle_core.workspace import Workspace, mask_url


def test_registry_defaults_and_overrides():
    reg = TaskRegistry()
    assert reg.quota("iron_ore_throughput") == 16
    assert reg.quota("sufuric_acid_throughput") == 250  # FLE's real (misspelled) key
    assert reg.quota("open_play") is None
    assert len([t for t in reg.tasks.values() if t.quota == 16]) == 21
    reg2 = TaskRegistry.from_config({"iron_ore_throughput": {"quota": 20}, "new_throughput": {"quota": 5}})
    assert reg2.quota("iron_ore_throughput") == 20 and reg2.quota("new_throughput") == 5
    with pytest.raises(UnknownTask):
        reg.validate(["iron_ore_throughput", "nope"])


@pytest.mark.parametrize(
    ("text", "model", "task", "agents", "parsed"),
    [
        ("model:gpt-4o\ntype:iron_ore_throughput\nnum_agents:1", "gpt-4o", "iron_ore_throughput", 1, True),
        (
            "model=claude; task=Factorio-iron_plate_throughput_16-v0",
            "claude",
            "iron_plate_throughput",
            None,
            True,
        ),
        ("just some free text", None, None, None, False),
        (None, None, None, None, False),
        ("type:\nmodel:x", "x", None, None, False),
    ],
)
def test_parse_version_description(text, model, task, agents, parsed):
    d = parse_version_description(text)
    assert (d.model, d.task, d.num_agents, d.parsed) == (model, task, agents, parsed)


def test_parse_meta_text_jsonb_and_malformed():
    assert parse_meta('{"model": "m", "sweep_id": "s1", "error_occurred": true}').sweep_id == "s1"
    assert parse_meta({"production_score": "12.5"}).production_score == 12.5
    assert parse_meta("{not json").ok is False
    assert parse_meta("[1, 2]").ok is False
    assert parse_meta(None).ok is True


def test_workspace_sources_and_masking(tmp_path, monkeypatch):
    root = tmp_path / "w"
    root.mkdir()
    (root / "config.toml").write_text(
        '[sources.prod]\nurl = "postgresql://eval@db:5432/fle"\npassword_env = "PW"\n'
    )
    monkeypatch.setenv("PW", "s3cr:et")
    ws = Workspace.open(root)
    prod = ws.source("prod")
    assert "s3cr" in prod.resolved_url()
    assert "s3cr" not in prod.display_url() and "***" in prod.display_url()
    assert ws.source().name == "local"
    assert mask_url("postgresql://u:p@h/db?password=x") == "postgresql://u:***@h/db?password=***"
    assert mask_url("postgresql://h/db?password=x") == "postgresql://h/db?password=***"
    assert mask_url("sqlite:///rel/x.db") == "sqlite:///rel/x.db"
    assert mask_url("postgresql://u@h:5/db") == "postgresql://u@h:5/db"
    with pytest.raises(ConfigError):
        ws.source("missing")


def test_bad_config_is_a_clear_error(tmp_path):
    (tmp_path / "config.toml").write_text("[[[ nope")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Workspace.open(tmp_path)


@pytest.mark.postgres
def test_postgres_fixture_is_real(pg_url):
    with psycopg.connect(pg_url) as con:
        assert con.execute("select 1 + 1").fetchone()[0] == 2
