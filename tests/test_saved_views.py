"""Permalinks: round trip through a real SQLite file, clear errors for bad ids."""

from __future__ import annotations

import sqlite3

import pytest

from fle_core import saved_views as sv
from fle_core.errors import ConfigError, ViewNotFound


def test_round_trip_restores_params_and_version(workspace):
    params = {"cmp_models": ["gpt-4o", "claude-3.5"], "cmp_k": "5"}
    view_id = sv.save_view(workspace, "compare", params, data_version=7)
    assert len(view_id) == 10
    view = sv.load_view(workspace, view_id)
    assert view.page == "compare"
    assert view.params == params
    assert view.data_version == 7
    assert view.created_at.tzinfo is not None


def test_ids_are_distinct_and_listed_newest_first(workspace):
    ids = [sv.save_view(workspace, "tasks", {"tsk_metric": str(i)}, i) for i in range(5)]
    assert len(set(ids)) == 5
    listed = sv.list_views(workspace)
    assert [v.id for v in listed] == ids[::-1]


def test_views_db_is_wal(workspace):
    sv.save_view(workspace, "compare", {}, 0)
    con = sqlite3.connect(workspace.root / sv.VIEWS_DB)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


@pytest.mark.parametrize("bad", ["", "short", "'; DROP TABLE views; --", "ABCDEFGHIJ", "x" * 500])
def test_malformed_ids_raise_view_not_found(workspace, bad):
    with pytest.raises(ViewNotFound) as err:
        sv.load_view(workspace, bad)
    assert err.value.hint


def test_unknown_id_raises_view_not_found(workspace):
    sv.save_view(workspace, "compare", {}, 0)
    with pytest.raises(ViewNotFound, match="No shared view"):
        sv.load_view(workspace, "abcdefghij")


def test_unknown_id_before_any_view_was_saved(workspace):
    with pytest.raises(ViewNotFound):
        sv.load_view(workspace, "abcdefghij")
    assert sv.list_views(workspace) == []


@pytest.mark.parametrize("params", [{"k": 3}, {"k": [1, 2]}, {"": "x"}, {"k": {"a": "b"}}])
def test_non_string_params_are_rejected(workspace, params):
    with pytest.raises(ConfigError):
        sv.save_view(workspace, "compare", params, 0)
    assert sv.list_views(workspace) == []
