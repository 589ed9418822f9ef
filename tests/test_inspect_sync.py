"""Inspect logs (what ``fle inspect-eval`` writes) as a source, on logs written by real inspect_ai.

Expected values are computed independently in the tests: each log is read again with
inspect_ai's own public API (``read_eval_log_samples``) and FLE's scorer rule is applied
by hand (success = production score >= quota with no error), then compared with what
sync and ``load_summaries`` derived.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest

from fle_core import analysis, warehouse
from fle_core.analysis import outcomes
from fle_core.sources import inspect_logs
from fle_core.warehouse.sync import select_sources, sync
from fle_core.workspace import Workspace

HERE = Path(__file__).resolve().parent


def _setup(tmp_path, inspect_logs_dir, *folders: str) -> tuple[Workspace, Path]:
    logs = tmp_path / "logs"
    logs.mkdir(parents=True)
    for folder in folders:
        shutil.copytree(inspect_logs_dir / folder, logs / folder)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "config.toml").write_text(f'[sources.runs]\nkind = "inspect"\npath = "{logs}"\n')
    return Workspace.open(root), logs


def _api_samples(folder: Path) -> list[tuple[Path, object]]:
    """Every (log, sample) read with inspect_ai's public API: the independent reference."""
    from inspect_ai.log import read_eval_log_samples

    out = []
    for path in sorted(
        p for p in folder.rglob("*") if p.suffix in (".eval", ".json") and "eval-set" not in p.name
    ):
        if path.name == "logs.json":
            continue
        out += [(path, s) for s in read_eval_log_samples(str(path), all_samples_required=False)]
    return out


def _by_key(ws: Workspace) -> dict[tuple[str, int], dict]:
    """Summaries keyed by (log file name, epoch)."""
    s = analysis.load_summaries(ws)
    keys = warehouse.query(
        ws, "SELECT path, version, instance FROM inspect_samples WHERE superseded_by IS NULL"
    )
    j = s.join(keys, on=["version", "instance"])
    return {(Path(r["path"]).name, r["instance"]): r for r in j.iter_rows(named=True)}


def test_a_folder_of_logs_becomes_one_trajectory_per_sample_and_epoch(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "main")
    result = sync(ws, source="runs")
    assert result.problems == {}
    got = _by_key(ws)
    ref = _api_samples(logs)
    assert len(got) == len(ref) == 3 * 2 * 3  # models × tasks × epochs
    steps = analysis.load_steps(ws)
    for path, sample in ref:
        row = got[(path.name, sample.epoch)]
        meta = sample.scores["comprehensive_factorio_scorer"].metadata
        quota = sample.metadata["expected_production_score"]
        from inspect_ai.log import read_eval_log

        assert row["model"] == read_eval_log(str(path), header_only=True).eval.model  # provider prefix kept
        assert row["model"].startswith("mockllm/")
        assert row["task"] == sample.metadata["env_id"]
        assert row["quota"] == quota == 16.0
        assert row["success"] is (meta["production_score"] >= quota and not meta["has_error"])
        assert row["final_reward"] == pytest.approx(meta["production_score"])
        scores = sample.store["TrajectoryData:scores"]
        assert row["steps"] == len(scores) and row["best_reward"] == pytest.approx(max(scores))
        traj = steps.filter((pl.col("version") == row["version"]) & (pl.col("instance") == sample.epoch))
        assert traj.sort("depth")["value"].to_list() == pytest.approx(scores)  # learning curves
        usage = sample.model_usage[row["model"]]
        assert row["total_tokens"] == usage.total_tokens
        assert row["completion_tokens"] == usage.output_tokens
        assert row["prompt_tokens"] == usage.input_tokens + (usage.input_tokens_cache_read or 0)
        assert row["duration_s"] == pytest.approx(sample.total_time)
    # several models succeed and fail: the rule is exercised both ways
    assert {r["success"] for r in got.values()} == {True, False}
    cost = warehouse.query(ws, "SELECT sum(total_cost) AS c FROM inspect_samples").item()
    assert cost == pytest.approx(sum(s.model_usage[next(iter(s.model_usage))].total_cost for _, s in ref))


def test_first_success_step_uses_the_logs_own_quota(tmp_path, inspect_logs_dir):
    """sufuric_acid_throughput: the log says quota 16 (FLE's task config), the registry 250."""
    ws, logs = _setup(tmp_path, inspect_logs_dir, "quota")
    sync(ws, source="runs")
    s = analysis.load_summaries(ws)
    assert ws.task_registry().quota("sufuric_acid_throughput") == 250.0
    assert s["quota"].to_list() == [16.0, 16.0]
    for row, (_, sample) in zip(
        s.sort("instance").iter_rows(named=True),
        sorted(_api_samples(logs), key=lambda x: x[1].epoch),
        strict=True,
    ):
        scores = sample.store["TrajectoryData:scores"]
        first = next((i for i, v in enumerate(scores) if v >= 16.0), None)
        assert row["first_success_step"] == first
        assert row["normalized_reward"] == pytest.approx(max(scores) / 16.0)
    # a user-chosen threshold still replaces every quota
    t = analysis.load_summaries(ws, success_threshold=1.0)
    assert t["quota"].to_list() == [1.0, 1.0] and t["success"].all()


def test_no_per_step_data_gives_one_step_with_the_final_score(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "nostore")
    sync(ws, source="runs")
    got = _by_key(ws)
    for path, sample in _api_samples(logs):
        row = got[(path.name, sample.epoch)]
        assert "TrajectoryData:scores" not in sample.store or not sample.store["TrajectoryData:scores"]
        assert row["steps"] == 1
        assert row["final_reward"] == pytest.approx(
            sample.scores["comprehensive_factorio_scorer"].metadata["production_score"]
        )
    assert set(warehouse.query(ws, "SELECT steps_from FROM inspect_samples")["steps_from"]) == {"score"}


def test_json_eval_and_deflate_logs_read_alike(tmp_path, inspect_logs_dir):
    """The .json log and the .eval logs of the same (model, task, epoch) carry the same
    scores (the task is seeded); a deflate re-zip of an .eval reads identically."""
    ws, _ = _setup(tmp_path, inspect_logs_dir, "json", "main", "deflate")
    sync(ws, source="runs")
    logs = warehouse.query(ws, "SELECT path, format, status FROM inspect_logs ORDER BY path")
    assert set(logs["format"]) == {"eval", "json"} and set(logs["status"]) == {"success"}
    s = _by_key(ws)
    json_rows = {k[1]: v for k, v in s.items() if k[0].endswith(".json")}
    eval_rows = {
        k[1]: v
        for k, v in s.items()
        if v["model"] == "mockllm/alpha" and v["task"] == "iron_ore_throughput" and k[0].endswith(".eval")
    }
    assert set(json_rows) == {1, 2}
    for epoch, row in json_rows.items():
        assert row["best_reward"] == eval_rows[epoch]["best_reward"]
        assert row["final_reward"] == eval_rows[epoch]["final_reward"]
    # the deflate copy is the same run (same task id): it counts once, not twice
    samples = warehouse.query(
        ws,
        "SELECT path, superseded_by FROM inspect_samples WHERE path LIKE 'deflate/%' OR superseded_by LIKE 'deflate/%'",
    )
    assert samples.height == 6 and samples["superseded_by"].null_count() == 3


def test_fast_reader_and_public_api_give_identical_frames(tmp_path, inspect_logs_dir, monkeypatch):
    """Every fixture log through both readers: the same steps and summaries."""
    folders = ("main", "json", "nostore", "errors", "openplay", "quota", "evalset")
    ws_fast, _ = _setup(tmp_path / "a", inspect_logs_dir, *folders)
    sync(ws_fast, source="runs")
    monkeypatch.setattr(inspect_logs, "FAST_FORMAT_VERSIONS", frozenset())  # an unknown version
    ws_api, _ = _setup(tmp_path / "b", inspect_logs_dir, *folders)
    sync(ws_api, source="runs")
    readers = warehouse.query(ws_api, "SELECT DISTINCT reader FROM inspect_logs")["reader"].to_list()
    assert readers == ["inspect_ai"]
    assert warehouse.query(ws_fast, "SELECT DISTINCT reader FROM inspect_logs")["reader"].to_list() == [
        "fast"
    ]
    from polars.testing import assert_frame_equal

    key = ["version", "instance", "depth"]
    assert_frame_equal(
        analysis.load_steps(ws_fast).drop("id").sort(key), analysis.load_steps(ws_api).drop("id").sort(key)
    )
    assert_frame_equal(
        analysis.load_summaries(ws_fast).sort(["version", "instance"]),
        analysis.load_summaries(ws_api).sort(["version", "instance"]),
    )
    cols = "path, sample_id, epoch, version, superseded_by, quota, final_score, has_error, error, failure_kind, limit_hit, steps, total_tokens, total_cost, total_time, started_at"
    q = f"SELECT {cols} FROM inspect_samples ORDER BY path, sample_id, epoch"
    assert_frame_equal(warehouse.query(ws_fast, q), warehouse.query(ws_api, q))


def test_failures_are_data_and_infrastructure_is_told_apart(tmp_path, inspect_logs_dir):
    ws, _ = _setup(tmp_path, inspect_logs_dir, "errors", "main")
    result = sync(ws, source="runs")
    assert result.problems == {}
    rows = warehouse.query(
        ws,
        "SELECT split_part(path, '/', 2) AS case_, failure_kind, error_source, error, limit_hit, log_status "
        "FROM inspect_samples WHERE path LIKE 'errors/%' ORDER BY path, epoch",
    )
    by = {}
    for r in rows.iter_rows(named=True):
        by.setdefault(r["case_"], []).append(r)
    assert [r["failure_kind"] for r in by["infra"]] == ["infrastructure", "infrastructure"]
    assert all(r["error_source"] == "store" and "RCON" in r["error"] for r in by["infra"])  # swallowed by FLE
    assert by["agent"][0]["failure_kind"] == "error" and "planner" in by["agent"][0]["error"]
    assert (
        by["sample_error"][0]["error_source"] == "sample"
        and "sandbox exploded" in by["sample_error"][0]["error"]
    )
    assert by["sample_error"][0]["log_status"] == "error"
    assert by["limit"][0]["failure_kind"] == "limit" and by["limit"][0]["limit_hit"].startswith("token")
    log_err = warehouse.query(
        ws, "SELECT error FROM inspect_logs WHERE path LIKE 'errors/sample_error/%'"
    ).item()
    assert "sandbox exploded" in log_err
    s = analysis.load_summaries(ws)
    keyed = s.join(
        warehouse.query(ws, "SELECT version, instance, path FROM inspect_samples"), on=["version", "instance"]
    )
    errored = keyed.filter(pl.col("path").str.contains("errors/(infra|agent|sample_error)"))
    assert errored["error_occurred"].all() and not errored["success"].any()
    counts = {r["model"]: r for r in outcomes.failure_counts(ws, s).iter_rows(named=True)}
    assert counts["mockllm/beta"]["infrastructure"] == 2 and counts["mockllm/beta"]["trajectories"] == 2 + 6
    assert counts["mockllm/gamma"]["errors"] == 1
    assert counts["mockllm/alpha"]["errors"] == 1 and counts["mockllm/alpha"]["limits"] == 1


def test_open_play_has_scores_but_no_quota(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "openplay")
    sync(ws, source="runs")
    s = _by_key(ws)
    for path, sample in _api_samples(logs):
        row = s[(path.name, sample.epoch)]
        assert row["quota"] is None and row["success"] is None
        assert row["final_reward"] == pytest.approx(sample.scores["production_score"].value)
        assert row["production_score"] == pytest.approx(sample.scores["production_score"].value)
    scores = warehouse.query(ws, "SELECT scores_json FROM inspect_samples")["scores_json"].to_list()
    assert all("automated_production_score" in j and "production_score" in j for j in scores)


def test_the_logs_headline_accuracy_is_labelled_as_mean_throughput_proportion(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "main")
    sync(ws, source="runs")
    heads = warehouse.query(ws, "SELECT path, headline_label, headline_value FROM inspect_logs")
    for r in heads.iter_rows(named=True):
        assert (
            "mean throughput proportion" in r["headline_label"]
            and "not a success rate" in r["headline_label"]
        )
        samples = [s for p, s in _api_samples(logs) if p.name == Path(r["path"]).name]
        props = [
            min(s.scores["comprehensive_factorio_scorer"].metadata["production_score"] / 16.0, 1.0)
            for s in samples
        ]
        assert r["headline_value"] == pytest.approx(sum(props) / len(props))  # not the success rate
    s = analysis.load_summaries(ws)
    assert s["success"].mean() != pytest.approx(heads["headline_value"].mean())


def test_resync_is_incremental_and_the_data_version_moves_only_with_rows(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "main")
    first = sync(ws, source="runs")
    runs = warehouse.query(ws, "SELECT count(*) AS n FROM sync_runs").item()
    again = sync(ws, source="runs")
    assert again.rows_added == 0 and again.sync_id == first.sync_id == warehouse.data_version(ws)
    assert warehouse.query(ws, "SELECT count(*) AS n FROM sync_runs").item() == runs  # no run at all
    # one log is rewritten (re-zipped: new size and mtime, the same samples): it is read
    # again, but its identical rows keep their sync ids and the data version stays
    changed = sorted(logs.rglob("*.eval"))[0]
    tmp = changed.with_suffix(".tmp")
    shutil.copy(changed, tmp)
    from inspect_fixtures import rezip_deflate

    rezip_deflate(tmp, changed)
    tmp.unlink()
    third = sync(ws, source="runs")
    assert third.sync_id > first.sync_id and third.rows_added == 3 * 8
    assert third.data_version == first.data_version
    ids = warehouse.query(ws, "SELECT path, max(sync_id) AS s FROM inspect_samples GROUP BY path")
    assert set(ids["s"]) == {first.sync_id}
    assert warehouse.query(ws, "SELECT count(*) FROM trajectories").item() == 18
    # a removed log takes its rows with it
    changed.unlink()
    fourth = sync(ws, source="runs")
    assert fourth.sync_id > third.sync_id
    assert warehouse.query(ws, "SELECT count(*) FROM trajectories").item() == 15
    assert warehouse.query(ws, "SELECT count(*) FROM steps").item() == 15 * 8
    # a full rebuild reads every log again and lands on the same rows and versions
    before = analysis.load_summaries(ws).drop("config").sort(["version", "instance"])
    stamps = "SELECT version, instance, depth, sync_id FROM steps ORDER BY ALL"
    stamped = warehouse.query(ws, stamps)
    rebuilt = sync(ws, source="runs", full=True)
    assert rebuilt.rows_added == 15 * 8
    from polars.testing import assert_frame_equal

    assert_frame_equal(analysis.load_summaries(ws).drop("config").sort(["version", "instance"]), before)
    # nothing changed in the logs: rows keep their sync ids (pinned views) and the version stays
    assert_frame_equal(warehouse.query(ws, stamps), stamped)
    assert rebuilt.data_version == fourth.data_version == warehouse.data_version(ws)


def test_an_eval_set_retry_counts_each_sample_once(tmp_path, inspect_logs_dir):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "evalset")
    sync(ws, source="runs")
    s = analysis.load_summaries(ws)
    assert s.height == 2 and sorted(s["instance"]) == [1, 2]
    rows = warehouse.query(
        ws,
        "SELECT s.path, s.epoch, s.superseded_by, l.status FROM inspect_samples s JOIN inspect_logs l USING (source, path)",
    )
    assert rows.height == 4
    live = rows.filter(pl.col("superseded_by").is_null())
    assert set(live["status"]) == {"success"}  # both from the retry
    assert not s["error_occurred"].any()
    # without the retry's log, the first attempt counts again (its epoch 2 errored)
    newer = logs / "evalset" / Path(live["path"][0]).name
    newer.unlink()
    sync(ws, source="runs")
    s = analysis.load_summaries(ws)
    assert s.height == 2 and s.sort("instance")["error_occurred"].to_list() == [False, True]


def test_corrupt_logs_are_reported_by_name_and_the_rest_syncs(tmp_path, inspect_logs_dir, capsys):
    ws, logs = _setup(tmp_path, inspect_logs_dir, "main")
    (logs / "garbage.eval").write_bytes(b"this is not a zip file at all")
    good = sorted(logs.rglob("*.eval"))[1]
    data = good.read_bytes()
    (logs / "truncated.eval").write_bytes(data[: len(data) // 2])
    member = logs / "damaged.eval"
    member.write_bytes(data)
    with zipfile.ZipFile(member) as z:
        info = next(i for i in z.infolist() if i.filename.startswith("samples/"))
    raw = bytearray(data)
    raw[info.header_offset + 30 + len(info.filename) + 5] ^= 0xFF  # flip a byte inside a sample
    member.write_bytes(bytes(raw))
    result = sync(ws, source="runs")
    problems = result.problems["runs"]
    assert len(problems) == 2
    assert any(p.startswith("garbage.eval:") and "zip" in p for p in problems)
    assert any(p.startswith("truncated.eval:") for p in problems)
    # a damaged sample costs only itself: the log's other samples are read (issue 23, item 8)
    (damaged,) = [q for q in result.quarantined["runs"] if q.startswith("damaged.eval")]
    assert damaged.startswith(f"damaged.eval: {info.filename}: ") and "damaged" in damaged
    assert (
        warehouse.query(ws, "SELECT count(*) FROM inspect_samples WHERE path = 'damaged.eval'").item()
        == len([n for n in zipfile.ZipFile(good).namelist() if n.startswith("samples/")]) - 1
    )
    assert warehouse.query(ws, "SELECT count(*) FROM trajectories").item() == 18  # the rest synced
    bad = warehouse.query(
        ws, "SELECT path, error FROM inspect_logs WHERE status = 'unreadable' ORDER BY path"
    )
    assert bad["path"].to_list() == ["garbage.eval", "truncated.eval"]
    run_note = warehouse.query(ws, "SELECT error FROM sync_runs ORDER BY sync_id DESC LIMIT 1").item()
    assert "2 log(s) could not be read" in run_note
    from fle_core.cli import main

    (logs / "garbage.eval").write_bytes(b"still garbage, but changed")
    assert main(["--workspace", str(ws.root), "sync", "--source", "runs"]) == 0
    assert "garbage.eval" in capsys.readouterr().err


def test_inspect_logs_and_a_programs_database_in_one_warehouse(tmp_path, inspect_logs_dir):
    from fixtures_fle import create_sqlite, make_rows

    ws, _ = _setup(tmp_path, inspect_logs_dir, "main")
    create_sqlite(ws.local_source_path, make_rows(6, seed=1, max_steps=5))
    result = sync(ws)  # every present source: local (programs) and runs (inspect)
    assert set(result.sources) == {"local", "runs"}
    s = analysis.load_summaries(ws)
    by_source = s.group_by("source").len().sort("source")
    assert by_source["source"].to_list() == ["local", "runs"] and by_source["len"].to_list()[1] == 18
    # the programs trajectories are summarized as before (registry quotas, best reward)
    local = s.filter(pl.col("source") == "local")
    assert local["quota"].drop_nulls().len() > 0
    want = local.with_columns((pl.col("best_reward") >= pl.col("quota")).alias("w"))
    assert (
        want.filter(pl.col("quota").is_not_null()).select(pl.col("w") == pl.col("success")).to_series().all()
    )
    from fle_core.report.load import load_report_frames

    frames, _ = load_report_frames(ws, reps=50)
    assert set(frames.summaries["source"]) == {"local", "runs"}


def test_fle_default_log_folder_is_found_next_to_the_local_source(tmp_path, inspect_logs_dir):
    root = tmp_path / ".fle"
    shutil.copytree(inspect_logs_dir / "json", root / "inspect_logs")
    ws = Workspace.open(root)
    assert "local_inspect" in [s.name for s in select_sources(ws, None)]
    result = sync(ws)
    assert result.sources == ("local_inspect",) and result.rows_added == 2 * 8
    # a single log file works as --source too
    one = next((root / "inspect_logs").glob("*.json"))
    ws2 = Workspace.open(tmp_path / "other")
    r = sync(ws2, source=str(one))
    assert r.rows_added == 16 and r.sources[0].startswith("inspect:")


def test_a_killed_log_shows_as_running_then_completes(tmp_path):
    """SIGKILL of `inspect eval` mid-run: the finished samples sync, the log shows as running;
    `inspect eval-retry` completes it and each (sample, epoch) counts once."""
    logs = tmp_path / "logs"
    inspect = Path(sys.executable).with_name("inspect")
    cmd = [
        str(inspect),
        "eval",
        f"{HERE / 'fle_inspect_task.py'}@throughput",
        "--model",
        "mockllm/beta",
        "--epochs",
        "3",
        "--max-samples",
        "1",
        "--log-buffer",
        "1",
        "--log-dir",
        str(logs),
        "--display",
        "none",
        "--no-log-realtime",
        "-T",
        "step_delay=0.25",
        "-T",
        "steps=4",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        log = None
        while time.time() < deadline:
            found = list(logs.glob("*.eval"))
            if found:
                try:
                    with zipfile.ZipFile(found[0]) as z:
                        if any(n.startswith("samples/") for n in z.namelist()):
                            log = found[0]
                            break
                except (zipfile.BadZipFile, OSError):
                    pass
            time.sleep(0.2)
        assert log is not None, "no finished sample appeared in the log"
        os.killpg(proc.pid, signal.SIGSTOP)  # frozen mid-run: a busy machine cannot let it finish first
        ws = Workspace.open(tmp_path / "ws")
        sync(ws, source=str(logs))
        status = warehouse.query(ws, "SELECT status, samples FROM inspect_logs").row(0)
        assert status[0] == "started" and 1 <= status[1] < 3
        s = analysis.load_summaries(ws)
        assert 1 <= s.height < 3
        assert outcomes.failure_counts(ws, s)["running"].item() == s.height
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    sync(ws, source=str(logs))  # the killed log, as it was left
    assert warehouse.query(ws, "SELECT status FROM inspect_logs").item() == "started"
    subprocess.run(
        [
            str(inspect),
            "eval-retry",
            str(log),
            "--log-dir",
            str(logs),
            "--display",
            "none",
            "--no-log-realtime",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    sync(ws, source=str(logs))
    statuses = sorted(warehouse.query(ws, "SELECT status FROM inspect_logs")["status"])
    assert statuses == ["started", "success"]
    s = analysis.load_summaries(ws)
    assert sorted(s["instance"]) == [1, 2, 3]  # each epoch once, though the killed log holds some too


def test_the_report_shows_infrastructure_failures_per_model(tmp_path, inspect_logs_dir):
    from fle_core.report.build import build_report
    from fle_core.report.load import load_report_frames

    ws, _ = _setup(tmp_path, inspect_logs_dir, "errors", "main")
    sync(ws, source="runs")
    frames, version = load_report_frames(ws, reps=50)
    by_model = {r["model"]: r for r in frames.failures.iter_rows(named=True)}
    assert by_model["mockllm/beta"]["infrastructure"] == 2
    files = build_report(frames, tmp_path / "report", data_version=version, image_format="svg")
    html = files.html.read_text()
    assert "Failures per model (Inspect logs)" in html and "infrastructure" in html
    assert (tmp_path / "report" / "failures.csv").exists()


def test_inspect_source_config_errors_are_clear(tmp_path):
    from fle_core.errors import ConfigError

    root = tmp_path / "ws"
    root.mkdir()
    (root / "config.toml").write_text('[sources.a]\nkind = "inspect"\n')
    with pytest.raises(ConfigError, match="needs path"):
        Workspace.open(root).sources()
    (root / "config.toml").write_text('[sources.a]\nkind = "mysql"\nurl = "x"\n')
    with pytest.raises(ConfigError, match="unknown kind"):
        Workspace.open(root).sources()
    (root / "config.toml").write_text('[sources.a]\nkind = "inspect"\npath = "nowhere"\n')
    from fle_core.errors import SourceUnavailable

    with pytest.raises(SourceUnavailable, match="no Inspect log folder"):
        sync(Workspace.open(root), source="a")


def test_a_cancelled_log_is_flagged_and_its_missing_samples_counted(tmp_path, inspect_logs_dir):
    ws, _ = _setup(tmp_path, inspect_logs_dir, "cancelled")
    sync(ws, source="runs")
    log = warehouse.query(ws, "SELECT status, error, samples, expected_samples FROM inspect_logs").row(
        0, named=True
    )
    assert log["status"] == "cancelled" and "cancelled" in log["error"]
    assert log["expected_samples"] == 6 and log["samples"] < 6
    s = analysis.load_summaries(ws)
    assert s.height == log["samples"]  # the finished samples are real trajectories
    if s.height:  # the log's unfinished samples are counted as missing for its model
        assert outcomes.failure_counts(ws, s)["missing"].item() == 6 - log["samples"]
