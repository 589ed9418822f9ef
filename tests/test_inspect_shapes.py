"""Inspect logs as Inspect writes them now and next, on fixtures made by Inspect itself.

Chunked samples (``inspect log convert-chunked``), FLE 0.4.3's own scorer crashing into
``scorer_error``, ``invalidate_samples`` + ``write_eval_log``, an eval-set with ``--limit``,
``retry_on_error`` and a model fallback, a sharded run and its merged log, runs that are
different systems, FLE's Docker-sandbox failures, and layouts the reader does not know.
Expected values come from inspect_ai's own public API (and, for shards, the listing
``inspect view`` shows), never from the code under test.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fle_core import analysis, warehouse
from fle_core.analysis import outcomes, systems
from fle_core.sources import inspect_logs
from fle_core.sources.inspect_logs import LogRef
from fle_core.sources.transcript import read_transcript
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace


def _setup(tmp_path, inspect_logs_dir, *folders: str) -> tuple[Workspace, Path]:
    logs = tmp_path / "logs"
    logs.mkdir(parents=True)
    for folder in folders:
        shutil.copytree(inspect_logs_dir / folder, logs / folder)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "config.toml").write_text(f'[sources.runs]\nkind = "inspect"\npath = "{logs}"\n')
    return Workspace.open(root), logs


def _api(folder: Path) -> list[tuple[Path, object]]:
    from inspect_ai.log import read_eval_log_samples

    return [
        (p, s)
        for p in sorted(folder.rglob("*.eval"))
        for s in read_eval_log_samples(str(p), all_samples_required=False)
    ]


def _keyed(ws: Workspace, **kw) -> pl.DataFrame:
    """Summaries with each trajectory's (log file, sample, epoch), comparable across folders."""
    s = analysis.load_summaries(ws, **kw)
    keys = warehouse.query(
        ws, "SELECT version, instance, path, sample_id FROM inspect_samples WHERE superseded_by IS NULL"
    ).with_columns(pl.col("path").str.split("/").list.last().alias("file"))
    return s.join(keys.drop("path"), on=["version", "instance"]).drop("source", "version")


# ---------------------------------------------------------------- acceptance
def test_chunked_logs_sync_like_the_originals_scored_by_fles_own_scorer(tmp_path, inspect_logs_dir):
    """Held-out check: logs scored by FLE 0.4.3's scorer and converted with
    ``inspect log convert-chunked`` give the same (model, task) trajectories, successes and
    errors as the originals, and both match what inspect_ai reads from the originals."""
    ws_a, logs_a = _setup(tmp_path / "a", inspect_logs_dir, "fle043")
    ws_b, logs_b = _setup(tmp_path / "b", inspect_logs_dir, "chunked")
    ra, rb = sync(ws_a, source="runs"), sync(ws_b, source="runs")
    assert ra.problems == rb.problems == {}
    with zipfile.ZipFile(next(logs_b.rglob("*.eval"))) as z:  # the conversion really chunked them
        assert any(n.endswith("/sample.json") for n in z.namelist())
        assert not any(n.count("/") == 1 and n.startswith("samples/") for n in z.namelist())
    key = ["file", "sample_id", "instance"]
    a, b = _keyed(ws_a).sort(key), _keyed(ws_b).sort(key)
    assert a.height == b.height == 4 * 2 * 2 + 2  # 2 models × 2 tasks × 2 samples × 2 epochs + open play
    assert_frame_equal(a, b)
    ref = {(p.name, str(s.id), s.epoch): s for p, s in _api(logs_a)}
    assert len(ref) == a.height
    crashed = 0
    for row in a.iter_rows(named=True):
        s = ref[(row["file"], row["sample_id"], row["instance"])]
        if row["task"] == "open_play_production":
            assert row["success"] is None
            continue
        score = s.scores["comprehensive_factorio_scorer"]
        if "scorer_error" in (score.metadata or {}):  # FLE's scorer raised: value False, no score
            crashed += 1
            assert score.value is False and row["error_occurred"] and row["success"] is False
            continue
        meta = score.metadata
        assert row["success"] is (
            meta["production_score"] >= meta["expected_score"] and not meta["has_error"]
        )
        assert row["final_reward"] == pytest.approx(meta["production_score"])
    assert crashed == 2 and {True, False} <= set(a["success"].drop_nulls())
    # the steps and the failure counts agree too
    sa, sb = (analysis.load_steps(w).drop("source", "id", "version") for w in (ws_a, ws_b))
    assert_frame_equal(sa.sort(sa.columns, nulls_last=True), sb.sort(sb.columns, nulls_last=True))
    fa = outcomes.failure_counts(ws_a, analysis.load_summaries(ws_a))
    assert_frame_equal(fa, outcomes.failure_counts(ws_b, analysis.load_summaries(ws_b)))
    assert fa.filter(pl.col("model") == "mockllm/beta")["errors"].item() == 2


def test_a_scorer_crash_is_an_error_not_a_zero(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "fle043")
    sync(ws, source="runs")
    rows = warehouse.query(
        ws,
        "SELECT path, sample_id, epoch, has_error, error, error_source, failure_kind, fle_success "
        "FROM inspect_samples WHERE error_source = 'score' ORDER BY sample_id",
    )
    crashed = [
        (p.name, str(s.id), s.epoch)
        for p, s in _api(logs)
        if "comprehensive_factorio_scorer" in s.scores
        and "scorer_error" in (s.scores["comprehensive_factorio_scorer"].metadata or {})
    ]
    assert sorted(
        (Path(r["path"]).name, r["sample_id"], r["epoch"]) for r in rows.iter_rows(named=True)
    ) == sorted(crashed)
    assert rows["failure_kind"].to_list() == ["error", "error"] and rows["has_error"].all()
    assert all("the scorer raised" in e for e in rows["error"])


def test_an_invalidated_sample_no_longer_counts(tmp_path, inspect_logs_dir):
    """Held-out check: ``invalidate_samples`` + ``write_eval_log`` on epoch 1."""
    from inspect_ai.log import read_eval_log

    ws, logs = _setup(tmp_path, inspect_logs_dir, "invalidated")
    sync(ws, source="runs")
    log = read_eval_log(str(next(logs.rglob("*.eval"))))
    invalid = {(str(s.id), s.epoch): s.invalidation for s in log.samples if s.invalidation}
    assert log.invalidated and len(invalid) == 2
    s = _keyed(ws)
    assert s.height == 2 and set(s["instance"]) == {2}  # only the valid samples count
    everything = _keyed(ws, include_invalidated=True)
    assert everything.height == 4
    kept = warehouse.query(
        ws, "SELECT sample_id, epoch, invalidated_by, invalidated_reason FROM inspect_samples ORDER BY ALL"
    )
    for r in kept.iter_rows(named=True):
        inv = invalid.get((r["sample_id"], r["epoch"]))
        assert r["invalidated_by"] == (inv.author if inv else None)
        assert r["invalidated_reason"] == (inv.reason if inv else None)
    counts = outcomes.failure_counts(ws, analysis.load_summaries(ws))
    assert counts["invalidated"].item() == 2 and counts["trajectories"].item() == 2
    head = warehouse.query(ws, "SELECT invalidated, tags, log_metadata, edits_json FROM inspect_logs").row(
        0, named=True
    )
    assert head["invalidated"] and json.loads(head["tags"]) == log.tags
    assert json.loads(head["log_metadata"]) == log.metadata
    edit = json.loads(head["edits_json"])[0]
    assert edit["author"] == log.log_updates[0].provenance.author == "bob" and len(edit["edits"]) == 2
    # with the original log beside it (same task), the valid copy of each sample counts
    ws2, _ = _setup(tmp_path / "both", inspect_logs_dir, "invalidated", "fle043")
    sync(ws2, source="runs")
    both = _keyed(ws2).filter(pl.col("model") == "mockllm/alpha", pl.col("task") == "iron_ore_throughput")
    assert both.height == 4 and set(both["file"]) == {Path(p).name for p in logs.rglob("*.eval")}


def test_expected_samples_follow_the_samples_that_ran_under_limit(tmp_path, inspect_logs_dir):
    from inspect_ai.log import read_eval_log

    ws, logs = _setup(tmp_path, inspect_logs_dir, "retries")
    sync(ws, source="runs")
    head = read_eval_log(str(next(logs.rglob("*.eval"))), header_only=True)
    assert head.eval.dataset.samples == 2 and len(head.eval.dataset.sample_ids) == 1  # --limit 1
    row = warehouse.query(ws, "SELECT expected_samples, samples FROM inspect_logs").row(0, named=True)
    assert row["expected_samples"] == len(head.eval.dataset.sample_ids) * head.eval.config.epochs == 2
    assert row["samples"] == 2
    assert outcomes.failure_counts(ws, analysis.load_summaries(ws))["missing"].item() == 0


def test_error_retries_and_model_fallbacks_are_recorded_and_counted(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "retries")
    sync(ws, source="runs")
    got = {
        r["epoch"]: r
        for r in warehouse.query(
            ws,
            "SELECT epoch, error_retries, retry_errors, fallbacks, fallbacks_json, has_error FROM inspect_samples",
        ).iter_rows(named=True)
    }
    for _, s in _api(logs):
        row = got[s.epoch]
        assert row["error_retries"] == len(s.error_retries) == 1
        assert s.error_retries[0].message in row["retry_errors"]
        assert row["fallbacks"] == sum(f.count for f in s.model_fallbacks) == 1
        assert json.loads(row["fallbacks_json"])[0]["fallback_model"] == s.model_fallbacks[0].fallback_model
        assert row["has_error"] is False  # retried and then succeeded: not an error
    counts = outcomes.failure_counts(ws, analysis.load_summaries(ws)).row(0, named=True)
    assert (counts["retried"], counts["fallbacks"], counts["errors"]) == (2, 2, 0)


def test_shards_and_merged_logs_follow_inspects_rule(tmp_path, inspect_logs_dir):
    """What counts is what ``inspect view`` lists (``without_merged_shards``): the merged log
    hides shards written before it; a shard written after it shows again, and its samples
    still count once."""
    from inspect_ai.log import list_eval_logs
    from inspect_ai.log._file import without_merged_shards

    ws, logs = _setup(tmp_path, inspect_logs_dir, "shards")

    def inspect_view_lists() -> set[str]:
        listed = without_merged_shards(list_eval_logs(str(logs)))
        names = [i.name.removeprefix("file://").removeprefix("file:") for i in listed]
        return {Path(n).relative_to(logs).as_posix() for n in names}

    sync(ws, source="runs")
    rows = warehouse.query(ws, "SELECT path, status, merged_into FROM inspect_logs ORDER BY path")
    counted = set(rows.filter(pl.col("status") != "merged")["path"])
    assert counted == inspect_view_lists() == {"shards/run.eval"}
    assert len(list_eval_logs(str(logs))) == 3  # the shards are listed, but hidden
    assert set(rows.filter(pl.col("status") == "merged")["merged_into"]) == {"shards/run.eval"}
    s = _keyed(ws)
    assert s.height == 4 and set(s["file"]) == {"run.eval"}
    # a shard rewritten after the merge (a retry) shows again; each sample still counts once
    shard = next((logs / "shards" / "run.shards" / "1").glob("*.eval"))
    os.utime(shard, (1_700_000_200, 1_700_000_200))
    sync(ws, source="runs")
    rows = warehouse.query(ws, "SELECT path, status FROM inspect_logs ORDER BY path")
    assert set(rows.filter(pl.col("status") != "merged")["path"]) == inspect_view_lists()
    assert len(inspect_view_lists()) == 2
    s = _keyed(ws)
    assert s.height == 4 and sorted(s.group_by("sample_id", "instance").len()["len"]) == [1, 1, 1, 1]


def test_a_layout_the_reader_does_not_know_fails_that_log_by_name(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "chunked", "main")
    first, second = sorted((logs / "chunked").glob("*.eval"))[:2]
    with zipfile.ZipFile(first, "a") as z:  # a member no shape of Inspect's has
        z.writestr("samples/iron_ore_throughput_eval_epoch_1/widgets/0.json", b"[]")
    with zipfile.ZipFile(second, "a") as z:  # a sample folder without its shell
        z.writestr("samples/ghost_epoch_1/events/0.json", b"[]")
    result = sync(ws, source="runs")
    problems = result.problems["runs"]
    assert len(problems) == 2
    assert any(first.name in p and "widgets/0.json" in p and "unknown sample layout" in p for p in problems)
    assert any(second.name in p and "without sample.json" in p for p in problems)
    # the rest synced: main, and the chunked logs left (two throughput logs of 4, open play of 2)
    assert warehouse.query(ws, "SELECT count(*) FROM trajectories").item() == 18 + 4 + 4 + 2


def test_the_public_api_on_a_chunked_log_fails_that_log_with_a_named_reason(
    tmp_path, inspect_logs_dir, monkeypatch
):
    """inspect_ai 0.3.285 cannot read chunked samples: a log the fast reader does not take
    (an unknown format version) fails by name, and the other logs sync."""
    monkeypatch.setattr(inspect_logs, "FAST_FORMAT_VERSIONS", frozenset())
    ws, _ = _setup(tmp_path, inspect_logs_dir, "chunked", "main")
    result = sync(ws, source="runs")
    problems = result.problems["runs"]
    assert len(problems) == 5 and all(p.split(":")[0].endswith(".eval") and "chunked" in p for p in problems)
    assert warehouse.query(ws, "SELECT count(*) FROM trajectories").item() == 18


def test_fast_reader_and_public_api_agree_on_every_new_shape(tmp_path, inspect_logs_dir, monkeypatch):
    folders = ("fle043", "invalidated", "retries", "shards", "systems", "errors", "sandbox", "limits")
    ws_fast, _ = _setup(tmp_path / "a", inspect_logs_dir, *folders)
    sync(ws_fast, source="runs")
    monkeypatch.setattr(inspect_logs, "FAST_FORMAT_VERSIONS", frozenset())
    ws_api, _ = _setup(tmp_path / "b", inspect_logs_dir, *folders)
    sync(ws_api, source="runs")
    readers = warehouse.query(ws_api, "SELECT DISTINCT reader FROM inspect_logs WHERE reader IS NOT NULL")
    assert readers["reader"].to_list() == ["inspect_ai"]
    for kw in ({}, {"include_invalidated": True}):
        assert_frame_equal(
            analysis.load_summaries(ws_fast, **kw).sort("version", "instance"),
            analysis.load_summaries(ws_api, **kw).sort("version", "instance"),
        )
    cols = (
        "path, sample_id, epoch, version, superseded_by, has_error, error, error_source, failure_kind, "
        "invalidated_by, invalidated_reason, invalidated_at, error_retries, retry_errors, fallbacks, "
        "fallbacks_json, automated_production_score, solver, trajectory_length, generate_config, "
        "inspect_version, total_cost"
    )
    q = f"SELECT {cols} FROM inspect_samples ORDER BY path, sample_id, epoch"
    assert_frame_equal(warehouse.query(ws_fast, q), warehouse.query(ws_api, q))
    q = "SELECT path, status, merged_into, expected_samples, invalidated, tags, edits_json, solver FROM inspect_logs ORDER BY path"
    assert_frame_equal(warehouse.query(ws_fast, q), warehouse.query(ws_api, q))


def test_fle_sandbox_failures_are_infrastructure(tmp_path, inspect_logs_dir):
    ws, _ = _setup(tmp_path, inspect_logs_dir, "sandbox")
    sync(ws, source="runs")
    row = warehouse.query(ws, "SELECT failure_kind, error FROM inspect_samples").row(0, named=True)
    assert row["failure_kind"] == "infrastructure" and "SandboxUnavailableError" in row["error"]
    pats = inspect_logs.compile_patterns()
    for text in (
        "sandbox_unavailable: docker exec failed",
        "Container abc123 is not running (exit 137)",
        "the container was OOM-killed",
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock",
    ):
        assert inspect_logs.classify(text, None, pats) == "infrastructure", text
    assert inspect_logs.classify("agent program crashed the planner", None, pats) == "error"


def test_automated_production_score_before_fle_pr_368_is_missing(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "fle043")
    sync(ws, source="runs")
    rows = warehouse.query(ws, "SELECT task, open_play, automated_production_score AS a FROM inspect_samples")
    open_play = rows.filter(pl.col("open_play"))
    ref = [s.scores["automated_production_score"].value for p, s in _api(logs) if "open-play" in p.name]
    assert sorted(open_play["a"].to_list()) == sorted(ref)  # open play: FLE's own value
    throughput = rows.filter(~pl.col("open_play"))
    stored = [
        s.store.get("TrajectoryData:automated_production_score")
        for p, s in _api(logs)
        if "open-play" not in p.name
    ]
    assert set(stored) == {0.0} and throughput["a"].null_count() == throughput.height  # always 0: missing
    assert inspect_logs.automated_score_is_real("0.4.4", [0.0]) is True
    assert inspect_logs.automated_score_is_real("0.4.3", [5.0]) is False
    assert inspect_logs.automated_score_is_real(None, [0.0, 2.5]) is True


# ---------------------------------------------------------------- systems
def test_runs_that_are_different_systems_are_told_apart(tmp_path, inspect_logs_dir):
    from inspect_ai.log import read_eval_log

    ws, logs = _setup(tmp_path, inspect_logs_dir, "systems")
    sync(ws, source="runs")
    plain = analysis.load_summaries(ws)
    assert set(plain["model"]) == {"mockllm/alpha"}  # existing callers still see the model
    s = analysis.label_systems(plain)
    assert s["model"].n_unique() == 4 and set(s["base_model"]) == {"mockllm/alpha"}
    heads = [read_eval_log(str(p), header_only=True) for p in sorted(logs.rglob("*.eval"))]
    plans = {h.plan.steps[0].solver for h in heads}
    assert plans == {"fle_like_solver", "factorio_text_only_solver"}
    labels = set(s["model"])
    assert any("solver=text_only" in lab for lab in labels)  # FLE's variant name, from the plan
    assert any("steps=4" in lab for lab in labels)
    assert any("reasoning_effort=high" in lab for lab in labels)
    assert not any("inspect_ai" in lab or "era" in lab for lab in labels)  # only the parts that differ
    pooled = systems.pooled_systems(plain)
    assert pooled.row(0, named=True)["systems"] == 4 and pooled["model"].to_list() == ["mockllm/alpha"]
    short = next(lab for lab in labels if "steps=4" in lab)
    base = next(lab for lab in labels if "steps=8" in lab and "text_only" not in lab and "high" not in lab)
    assert systems.comparability(s, short, base) == ["trajectory length differs (4 vs 8 steps)"]
    warnings = systems.comparability(plain, "mockllm/alpha", "mockllm/alpha")
    assert any("pools 4 systems" in w for w in warnings)


def test_the_gate_and_what_changed_name_the_parts_two_systems_differ_in(tmp_path, inspect_logs_dir):
    from fle_core.analysis.sides import differences, resolve_sides

    ws, _ = _setup(tmp_path, inspect_logs_dir, "systems")
    sync(ws, source="runs")
    labels = set(analysis.label_systems(analysis.load_summaries(ws))["model"])
    short = next(lab for lab in labels if "steps=4" in lab)
    base = next(lab for lab in labels if "steps=8" in lab and "text_only" not in lab and "high" not in lab)
    a, b = resolve_sides(ws, base, short)
    found = {d.reason: d.text for d in differences(a, b)}
    assert found.get("trajectory_length", "").startswith("trajectory length differs (8 vs 4 steps)"), found
    assert "era" not in found and "solver" not in found  # only what differs, the era once at most


def test_programs_and_inspect_runs_are_different_eras(tmp_path, inspect_logs_dir):
    from fixtures_fle import create_sqlite, make_rows

    ws, _ = _setup(tmp_path, inspect_logs_dir, "main")
    create_sqlite(ws.local_source_path, make_rows(4, seed=1, max_steps=3))
    sync(ws)
    s = analysis.load_summaries(ws)
    eras = {json.loads(v)["era"] for v in s["system"]}
    assert eras == {"factorio-1.1", "factorio-2.0"}
    assert json.loads(s.filter(pl.col("source") == "local")["system"][0]) == {"era": "factorio-1.1"}
    labelled = analysis.label_systems(s)  # one system per model here: labels stay bare
    assert set(labelled["model"]) == set(s["model"])
    programs = s.filter(pl.col("source") == "local")["model"][0]
    warnings = systems.comparability(s, programs, "mockllm/alpha")
    assert any(
        w.startswith("Factorio version / FLE era differs (factorio-1.1 vs factorio-2.0)") for w in warnings
    )


def test_common_tasks_drop_what_one_system_did_not_run():
    frame = pl.DataFrame(
        {
            "model": ["a", "a", "a", "b", "b"],
            "task": ["t1", "t2", "t3", "t1", "t2"],
            "success": [True, False, True, True, True],
        }
    )
    kept, dropped = systems.common_tasks(frame)
    assert sorted(set(kept["task"])) == ["t1", "t2"] and dropped == {"a": ["t3"]}
    assert systems.dropped_note(dropped) == "Compared on the tasks every system ran; left out a: t3."
    same, none = systems.common_tasks(frame.filter(pl.col("task") != "t3"))
    assert none == {} and same.height == 4
    suites = systems.system_tasks(frame)
    assert suites.row(0, named=True) == {"model": "a", "tasks": ["t1", "t2", "t3"], "n_tasks": 3}


def test_a_warehouse_read_by_an_older_reader_reads_its_logs_again(tmp_path, inspect_logs_dir):
    ws, _ = _setup(tmp_path, inspect_logs_dir, "invalidated")
    sync(ws, source="runs")
    with warehouse.writer(ws) as con:  # as an older release left it: no facts, everything counted
        con.execute("UPDATE inspect_logs SET facts_version = NULL")
        con.execute("UPDATE inspect_samples SET invalidated_by = NULL, invalidated_at = NULL")
    assert analysis.load_summaries(ws).height == 4
    again = sync(ws, source="runs")
    assert again.rows_added == 4 * 8
    assert analysis.load_summaries(ws).height == 2


# ---------------------------------------------------------------- transcript
def test_the_transcript_comes_from_the_events_for_chunked_and_plain_samples(inspect_logs_dir):
    from inspect_ai.log import read_eval_log_sample

    plain = sorted((inspect_logs_dir / "fle043").glob("*.eval"))[0]
    chunked = inspect_logs_dir / "chunked" / plain.name
    sid = "iron_ore_throughput_eval"
    a = read_transcript(LogRef.local(plain), sid, 2)
    b = read_transcript(LogRef.local(chunked), sid, 2)
    assert a == b
    sample = read_eval_log_sample(str(plain), id=sid, epoch=2)
    outputs = [e.output.completion for e in sample.events if e.event == "model"]
    agent = [e for e in a if e["role"] == "agent"]
    assert [e["text"] for e in agent] == outputs and len(outputs) == 8  # one program per step
    assert [e["step"] for e in agent] == list(range(1, 9))
    assert a[0] == {"n": 1, "step": 0, "role": "task", "text": sample.input}
    game = [e for e in a if e["role"] == "game"]
    assert game[0]["text"].startswith("Step 1") and game[0]["step"] == 1
    assert a[-1]["role"] == "score"
    assert len(sample.messages) < len(a)  # the messages alone hold far less


def test_limits_changed_mid_run_are_recorded_and_make_another_system(tmp_path, inspect_logs_dir):
    from inspect_ai.log import read_eval_log

    ws, logs = _setup(tmp_path, inspect_logs_dir, "limits")
    sync(ws, source="runs")
    update = read_eval_log(str(next(logs.rglob("*.eval"))), header_only=True).config_updates[0]
    stored = json.loads(warehouse.query(ws, "SELECT config_updates_json FROM inspect_logs").item())[0]
    assert stored["author"] == update.provenance.author and stored["reason"] == update.provenance.reason
    assert stored["changes"][0]["name"] == "token_limit" and stored["changes"][0]["value"] == 90000
    assert warehouse.query(ws, "SELECT bool_and(limits_changed) FROM inspect_samples").item() is True
    ws2, _ = _setup(tmp_path / "both", inspect_logs_dir, "limits", "fle043")
    sync(ws2, source="runs")
    s = analysis.label_systems(analysis.load_summaries(ws2))
    retuned = {lab for lab in s["model"] if "limits=changed mid-run" in lab}
    assert len(retuned) == 1
    other = next(
        lab
        for lab in set(s["model"])
        if lab.startswith(next(iter(retuned)).split(" [")[0]) and lab not in retuned
    )
    assert any("changed mid-run" in w for w in systems.comparability(s, next(iter(retuned)), other))
