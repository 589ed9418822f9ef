"""Inspect logs in object storage: a real S3 API (moto's server on a loopback port), real logs
written by inspect_ai, real syncs. The reference is inspect_ai's own reader on local copies
of the same logs; the request counts come from the server's access log."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from fle_core import analysis, warehouse
from fle_core.errors import ConfigError, SourceUnavailable
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

BUCKET = "fle-eval-logs"


@pytest.fixture
def bucket(s3, tmp_path, inspect_logs_dir):
    """A fresh bucket holding ``main`` and ``errors`` under ``runs/``; the local copies too."""
    client = boto3.client("s3", endpoint_url=s3.endpoint)
    name = f"{BUCKET}-{tmp_path.name[-20:].lower().replace('_', '-')}".strip("-")
    client.create_bucket(Bucket=name)
    local = tmp_path / "local"
    for folder in ("main", "errors"):
        shutil.copytree(inspect_logs_dir / folder, local / folder)
    for path in sorted(local.rglob("*.eval")):
        client.upload_file(str(path), name, f"runs/{path.relative_to(local)}")
    return client, name, local


def _reference(local: Path) -> dict[tuple[str, str, int], tuple[bool | None, float | None]]:
    """(log file, sample, epoch) → FLE's scorer's (quota_achieved, production_score), read with
    inspect_ai's public API."""
    from inspect_ai.log import read_eval_log_samples

    out = {}
    for path in sorted(local.rglob("*.eval")):
        for s in read_eval_log_samples(str(path), all_samples_required=False):
            score = (s.scores or {}).get("comprehensive_factorio_scorer")
            meta = score.metadata if score else {}
            out[(path.name, str(s.id), int(s.epoch))] = (
                meta.get("quota_achieved"),
                meta.get("production_score"),
            )
    return out


def _synced(ws: Workspace) -> dict[tuple[str, str, int], tuple[bool | None, float | None]]:
    rows = warehouse.query(
        ws,
        "SELECT path, sample_id, epoch, fle_success, final_score FROM inspect_samples WHERE superseded_by IS NULL",
    )
    return {
        (Path(r["path"]).name, r["sample_id"], r["epoch"]): (r["fle_success"], r["final_score"])
        for r in rows.iter_rows(named=True)
    }


def test_logs_in_a_bucket_sync_to_what_the_scorer_recorded_and_resync_incrementally(workspace, s3, bucket):
    client, name, local = bucket
    url = f"s3://{name}/runs"
    first = sync(workspace, url)
    assert first.sources == (f"s3:{name}/runs",)
    assert first.problems == {}
    ref = _reference(local)
    got = _synced(workspace)
    assert got.keys() == ref.keys()
    for key, (achieved, production) in ref.items():
        assert got[key][0] == achieved, key
        if production is not None:  # an errored sample's scorer records none
            assert got[key][1] == pytest.approx(production), key
    # and everything else equals a sync of the same logs from a local folder
    local_ws = Workspace.open(workspace.root.parent / "local_ws")
    sync(local_ws, str(local))
    cols = "path, sample_id, epoch, version, task, model, quota, final_score, fle_success, has_error, error, failure_kind, steps, total_tokens"
    order = " ORDER BY path, sample_id, epoch"
    theirs = warehouse.query(local_ws, f"SELECT {cols} FROM inspect_samples{order}")
    assert warehouse.query(workspace, f"SELECT {cols} FROM inspect_samples{order}").equals(theirs)
    summaries = analysis.load_summaries(workspace)
    assert summaries.height == len(ref)

    # unchanged: one listing request, no object read, no new data version
    version, seen = warehouse.data_version(workspace), len(s3.requests())
    again = sync(workspace, url)
    new = s3.requests()[seen:]
    assert again.details[0].unchanged and warehouse.data_version(workspace) == version
    assert len(new) == 1 and "list-type=2" in new[0], new

    # one log rewritten in place (same key, new content): only that object is read again
    victim = sorted(local.rglob("*.eval"))[0]
    other = sorted(local.rglob("*.eval"))[-1]
    client.upload_file(str(other), name, f"runs/{victim.relative_to(local)}")
    seen = len(s3.requests())
    changed = sync(workspace, url)
    reads = [r for r in s3.requests()[seen:] if "list-type=2" not in r]
    assert changed.details[0].logs_read == 1
    assert len(reads) == 1 and victim.name in reads[0], reads


def test_a_configured_bucket_source_and_its_nested_prefix(workspace, s3, bucket):
    _, name, local = bucket
    workspace.config_path.write_text(f'[sources.team]\nkind = "inspect"\npath = "s3://{name}/runs/"\n')
    ws = Workspace.open(workspace.root)
    result = sync(ws)
    assert "team" in result.sources
    assert len(_synced(ws)) == len(_reference(local))
    with pytest.raises(ConfigError, match="overlaps source 'team'"):
        sync(ws, f"s3://{name}/runs/main")
    assert sync(ws, f"s3://{name}/runs").sources == ("team",)  # the same place by another route


def test_an_unreachable_store_is_one_clear_error_and_changes_nothing(workspace, s3, bucket, monkeypatch):
    _, name, _ = bucket
    url = f"s3://{name}/runs"
    sync(workspace, url)
    version = warehouse.data_version(workspace)
    before = warehouse.query(workspace, "SELECT count(*) AS n FROM steps")["n"][0]
    import socket

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(SourceUnavailable, match="cannot list"):
        sync(workspace, url)
    assert warehouse.data_version(workspace) == version
    assert warehouse.query(workspace, "SELECT count(*) AS n FROM steps")["n"][0] == before
    out = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(workspace.root), "sync", "--source", url],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 2
    assert [line for line in out.stderr.splitlines() if line.startswith("error:")], out.stderr
    assert "Traceback" not in out.stderr
    secret = s3.env()["AWS_SECRET_ACCESS_KEY"]
    assert secret not in out.stdout + out.stderr
    stored = warehouse.query(workspace, "SELECT string_agg(coalesce(error, ''), ' ') AS e FROM sync_runs")
    assert secret not in str(stored["e"][0])


def test_a_log_still_being_written_in_a_bucket_shows_as_running(
    workspace, s3, bucket, inspect_logs_dir, tmp_path
):
    client, name, _ = bucket
    import zipfile

    import zipfile_zstd  # noqa: F401 - lets stdlib zipfile read inspect's zstd members

    finished = sorted((inspect_logs_dir / "main").glob("*.eval"))[0]
    partial = tmp_path / "running.eval"
    with zipfile.ZipFile(finished) as zin, zipfile.ZipFile(partial, "w") as zout:
        for info in zin.infolist():
            if info.filename != "header.json":  # a running log has no header yet
                zout.writestr(info.filename, zin.read(info.filename))
    if "_journal/start.json" not in zipfile.ZipFile(partial).namelist():
        pytest.fail("the fixture log has no _journal/start.json to stand in for a running log")
    client.upload_file(str(partial), name, "live/running.eval")
    sync(workspace, f"s3://{name}/live")
    status = warehouse.query(workspace, "SELECT status FROM inspect_logs")["status"].to_list()
    assert status == ["started"]
