"""Untrusted Inspect logs: one malformed field costs its sample (or its log), never the source.

Every case puts a poisoned log beside good ones, all written by real inspect_ai, and syncs:
sync never raises, every good sample is in the warehouse, the poisoned sample is named with
its log and the reason in ``sync_notes`` (and by ``fle-core status``), and the poisoned
log's other samples are kept. The held-out acceptance check compares every untouched
log's (model, task) cells with FLE 0.4.3's own scorer's verdicts in the logs.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from fle_core import analysis, warehouse
from fle_core.warehouse import catalog
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

BIG = 10**400


def _workspace(tmp_path: Path, logs: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir(parents=True)
    (root / "config.toml").write_text(f'[sources.runs]\nkind = "inspect"\npath = "{logs}"\n')
    return Workspace.open(root)


def _json_log(inspect_logs_dir: Path) -> dict:
    return json.loads(next((inspect_logs_dir / "json").glob("*.json")).read_text())


def _samples(ws: Workspace) -> set[tuple[str, str, int]]:
    rows = warehouse.query(ws, "SELECT path, sample_id, epoch FROM inspect_samples")
    return {(r["path"], r["sample_id"], r["epoch"]) for r in rows.iter_rows(named=True)}


def _first(d: dict) -> dict:
    return d["samples"][0]


def _score(d: dict) -> dict:
    return _first(d)["scores"]["comprehensive_factorio_scorer"]


# (name, mutation, level): "sample" costs the first sample only, "log" the whole log
POISON: list[tuple[str, Callable[[dict], object], str]] = [
    ("epoch abc", lambda d: _first(d).update(epoch="abc"), "sample"),
    ("epoch beyond int64", lambda d: _first(d).update(epoch=2**70), "sample"),
    ("epoch beyond int32", lambda d: _first(d).update(epoch=2**40), "sample"),
    ("400-digit production score", lambda d: _score(d)["metadata"].update(production_score=BIG), "sample"),
    (
        "400-digit per-step score",
        lambda d: _first(d)["store"].update({"TrajectoryData:scores": [1.0, BIG]}),
        "sample",
    ),
    (
        "tokens beyond int64",
        lambda d: [u.update(input_tokens=2**70) for u in _first(d)["model_usage"].values()],
        "sample",
    ),
    ("400-digit total_time", lambda d: _first(d).update(total_time=BIG), "sample"),
    (
        "started_at before year 1 in UTC",
        lambda d: _first(d).update(started_at="0001-01-01T00:00:00+14:00"),
        "sample",
    ),
    (
        "fallback count not a number",
        lambda d: _first(d).update(model_fallbacks=[{"model": "a", "count": "x"}]),
        "sample",
    ),
    ("trajectory_length 400 digits", lambda d: _first(d)["metadata"].update(trajectory_length=BIG), "sample"),
    ("eval a list", lambda d: d.update(eval=[1]), "log"),
    ("created an object", lambda d: d["eval"].update(created={"a": 1}), "log"),
    ("model a list", lambda d: d["eval"].update(model=[1]), "log"),
    ("epochs abc", lambda d: d["eval"]["config"].update(epochs="abc"), "log"),
]
# kept whole: the malformed part is not one sync needs, or is read leniently (null)
HARMLESS: list[tuple[str, Callable[[dict], object]]] = [
    ("a score's metadata a list", lambda d: _score(d).update(metadata=[1])),
    ("a sample's metadata a list", lambda d: _first(d).update(metadata=[1, 2])),
    ("task_id beyond int64", lambda d: d["eval"].update(task_id=2**70)),
    ("ticks beyond int64", lambda d: _first(d)["store"].update({"TrajectoryData:ticks": [2**70] * 8})),
    ("results a list", lambda d: d.update(results=[1])),
    ("log metadata a list", lambda d: d.update(metadata=[1])),
]


def _folder(tmp_path: Path, base: dict, mutate: Callable[[dict], object] | None) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    for i, poison in enumerate((None, mutate)):
        doc = copy.deepcopy(base)
        doc["eval"]["task_id"] = f"task-{i}"  # two logs, not eval-set copies of one
        if poison is not None:
            poison(doc)
        (logs / f"{'good' if poison is None else 'poison'}.json").write_text(json.dumps(doc))
    return logs


@pytest.mark.parametrize(("name", "mutate", "level"), POISON, ids=[p[0] for p in POISON])
def test_a_malformed_field_costs_its_sample_or_log_and_nothing_else(
    tmp_path, inspect_logs_dir, name, mutate, level
):
    base = _json_log(inspect_logs_dir)
    ws = _workspace(tmp_path, _folder(tmp_path, base, mutate))
    sync(ws, source="runs")  # never raises
    first, second = ((s["id"], s["epoch"]) for s in base["samples"][:2])
    got = _samples(ws)
    good = {("good.json", str(i), e) for i, e in (first, second)}
    assert good <= got, "a good log lost samples"
    poisoned = {(p, i, e) for p, i, e in got if p == "poison.json"}
    expected = set() if level == "log" else {("poison.json", str(second[0]), second[1])}
    assert poisoned == expected
    notes = catalog.quarantined(ws)["detail"].to_list()
    assert len(notes) == 1 and notes[0].startswith("poison.json: "), notes
    if level == "sample":
        assert "sample 'iron_ore_throughput_eval' epoch" in notes[0]
    # a second sync reads nothing again, and the note stays listed
    sync(ws, source="runs")
    assert catalog.quarantined(ws)["detail"].to_list() == notes


@pytest.mark.parametrize(("name", "mutate"), HARMLESS, ids=[h[0] for h in HARMLESS])
def test_a_malformed_field_sync_does_not_need_loses_nothing(tmp_path, inspect_logs_dir, name, mutate):
    base = _json_log(inspect_logs_dir)
    ws = _workspace(tmp_path, _folder(tmp_path, base, mutate))
    sync(ws, source="runs")
    assert len(_samples(ws)) == 2 * len(base["samples"])
    assert catalog.quarantined(ws).is_empty()


def test_status_and_the_cli_name_the_quarantined_sample(tmp_path, inspect_logs_dir):
    ws = _workspace(tmp_path, _folder(tmp_path, _json_log(inspect_logs_dir), POISON[0][1]))
    cli = [sys.executable, "-m", "fle_core", "--workspace", str(ws.root)]
    done = subprocess.run([*cli, "sync"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (
        "left out: poison.json: sample 'iron_ore_throughput_eval' epoch 'abc': epoch 'abc' is not an integer"
        in done.stderr
    )
    status = subprocess.run([*cli, "status"], capture_output=True, text=True, timeout=300)
    assert status.returncode == 0
    assert "left out for a malformed field (1;" in status.stdout
    assert "poison.json: sample 'iron_ore_throughput_eval' epoch 'abc'" in status.stdout


# ---------------------------------------------------------------- .eval logs
def rewrite_eval(src: Path, dst: Path, change: Callable[[str, dict], object]) -> None:
    """``src`` re-zipped (deflate) with ``change(member, doc)`` applied to each JSON member."""
    import zipfile_zstd  # noqa: F401 - lets stdlib zipfile read inspect's zstd members

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(".json"):
                doc = json.loads(data)
                change(info.filename, doc)
                data = json.dumps(doc).encode()
            zout.writestr(info.filename, data)


def test_one_bad_sample_in_an_eval_log_keeps_the_others(tmp_path, inspect_logs_dir):
    logs = tmp_path / "logs"
    shutil.copytree(inspect_logs_dir / "fle043", logs)
    victim = sorted(logs.glob("*iron-ore*.eval"))[0]
    first = []

    def poison(member: str, doc: dict) -> None:
        if member.startswith("samples/") and not first:
            first.append(member)
            doc["epoch"] = "abc"

    rewrite_eval(victim, tmp_path / "poison.eval", poison)
    shutil.move(tmp_path / "poison.eval", victim)
    ws = _workspace(tmp_path, logs)
    clean_ws = _workspace(tmp_path / "clean", _copy(inspect_logs_dir / "fle043", tmp_path / "clean" / "logs"))
    sync(ws, source="runs")
    sync(clean_ws, source="runs")
    got, want = _samples(ws), _samples(clean_ws)
    assert len(got) == len(want) - 1 and got < want
    notes = catalog.quarantined(ws)["detail"].to_list()
    assert len(notes) == 1 and notes[0].startswith(victim.name + ": sample ") and "'abc'" in notes[0]


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------- the folder itself
def test_dangling_and_looping_symlinks_and_a_non_utf8_name_are_named_not_fatal(tmp_path, inspect_logs_dir):
    logs = _copy(inspect_logs_dir / "fle043", tmp_path / "logs")
    (logs / "dangling.eval").symlink_to(tmp_path / "gone.eval")
    (logs / "self.eval").symlink_to(logs / "self.eval")
    odd = os.fsencode(str(logs)) + b"/caf\xe9.json"
    shutil.copy(next((inspect_logs_dir / "json").glob("*.json")), odd.decode("utf-8", "surrogateescape"))
    ws = _workspace(tmp_path, logs)
    sync(ws, source="runs")
    clean = _workspace(tmp_path / "clean", _copy(inspect_logs_dir / "fle043", tmp_path / "clean" / "logs"))
    sync(clean, source="runs")
    assert _samples(ws) == _samples(clean)
    notes = sorted(catalog.quarantined(ws)["detail"])
    assert notes == [
        "caf\\xe9.json: not listed: a file name that is not UTF-8 (rename the file)",
        "dangling.eval: not listed: a dangling symlink (No such file or directory)",
        "self.eval: not listed: a symlink loop (Too many levels of symbolic links)",
    ]


def test_symlinked_sub_folders_are_followed_once_and_loops_are_named(tmp_path, inspect_logs_dir):
    """Critical 4: logs in a symlinked sub-folder were skipped silently (24 of 48)."""
    logs = tmp_path / "logs"
    _copy(inspect_logs_dir / "fle043", logs / "real")
    elsewhere = _copy(inspect_logs_dir / "main", tmp_path / "elsewhere")
    (logs / "linked").symlink_to(elsewhere)
    (logs / "real" / "back").symlink_to(logs)  # a loop up to the root
    (logs / "again").symlink_to(logs / "real")  # a second route to a folder already listed
    ws = _workspace(tmp_path, logs)
    sync(ws, source="runs")
    want_ws = _workspace(tmp_path / "flat", tmp_path / "flat" / "logs")
    _copy(inspect_logs_dir / "fle043", tmp_path / "flat" / "logs" / "real")
    _copy(inspect_logs_dir / "main", tmp_path / "flat" / "logs" / "linked")
    sync(want_ws, source="runs")
    assert _samples(ws) == _samples(want_ws)
    cells = ["model", "task", "trajectories", "successes"]
    got = (
        analysis.load_summaries(ws)
        .group_by("model", "task")
        .agg(pl.len().alias("trajectories"), pl.col("success").sum().alias("successes"))
    )
    want = (
        analysis.load_summaries(want_ws)
        .group_by("model", "task")
        .agg(pl.len().alias("trajectories"), pl.col("success").sum().alias("successes"))
    )
    assert got.sort(cells).to_dicts() == want.sort(cells).to_dicts()
    notes = sorted(catalog.quarantined(ws)["detail"])
    assert len(notes) == 2 and all("a symlink loop or a second route to" in n for n in notes), notes
    assert {n.split(":")[0] for n in notes} == {"again", "real/back"}


def test_a_zip_bomb_costs_its_sample_with_a_clear_note(tmp_path, inspect_logs_dir):
    """A sample member inflating past ``MAX_MEMBER_BYTES`` (here 600 MiB of zeros, 0.6 MB
    zipped) is quarantined, named, and its log's other samples sync; the old reader
    inflated it whole."""
    from fle_core.sources.log_zip import MAX_MEMBER_BYTES

    logs = _copy(inspect_logs_dir / "fle043", tmp_path / "logs")
    victim = sorted(logs.glob("*iron-ore*.eval"))[0]
    rewrite_eval(victim, tmp_path / "bomb.eval", lambda _m, _d: None)
    zeros = bytes(16 << 20)
    chunks = (MAX_MEMBER_BYTES >> 24) + 6
    with (
        zipfile.ZipFile(tmp_path / "bomb.eval", "a", zipfile.ZIP_DEFLATED) as z,
        z.open("samples/bomb_epoch_1.json", "w", force_zip64=True) as member,
    ):
        for _ in range(chunks):
            member.write(zeros)
    assert (tmp_path / "bomb.eval").stat().st_size < 5 << 20
    shutil.move(tmp_path / "bomb.eval", victim)
    ws = _workspace(tmp_path, logs)
    result = sync(ws, source="runs")
    assert not result.problems
    assert {p for p, _i, _e in _samples(ws)} == {p.name for p in logs.glob("*.eval")}
    assert sum(p == victim.name for p, _i, _e in _samples(ws)) == 4  # its 2 samples x 2 epochs
    (note,) = catalog.quarantined(ws)["detail"].to_list()
    assert note.startswith(f"{victim.name}: samples/bomb_epoch_1.json: ") and "zip bomb" in note
    assert f"would inflate to {chunks << 24:,} bytes, over the 512 MiB" in note


def test_logs_are_parsed_with_the_writer_released(tmp_path, inspect_logs_dir):
    """A reader gets in while sync waits on a log that is slow to read (a FIFO that blocks
    until written): the old sync held the warehouse's writer while it parsed logs."""
    import threading

    base = _json_log(inspect_logs_dir)
    logs = _folder(tmp_path, base, None)
    ws = _workspace(tmp_path, logs)
    sync(ws, source="runs")
    fifo = logs / "slow.json"
    os.mkfifo(fifo)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(sync(ws, source="runs")), daemon=True)
    worker.start()
    try:
        with warehouse.reader(ws, budget_s=5.0) as con:  # WarehouseBusy while the writer is held
            assert con.execute("SELECT count(*) FROM inspect_samples").fetchone()[0] == len(base["samples"])
    finally:
        doc = copy.deepcopy(base)
        doc["eval"]["task_id"] = "slow"
        with open(fifo, "w") as fh:  # lets the blocked read finish
            fh.write(json.dumps(doc))
        worker.join(timeout=120)
    assert done and len(_samples(ws)) == 2 * len(base["samples"])


def test_infrastructure_text_is_classified_on_its_ends_in_linear_time():
    """Item 9: ``\\b50[234]\\b.*(error|…)`` backtracked quadratically (15 s on 20 KB). The
    timing is in bench/classify.py; here the verdicts on adversarial and cut text."""
    from fle_core.sources import sample_facts as sf

    pats = sf.compile_patterns()
    hostile = "503 " * 250_000  # 1 MB of "503" with no keyword after it
    assert sf.classify(hostile, None, pats) == "error"
    assert sf.classify(hostile + "gateway", None, pats) == "infrastructure"  # in the last KB
    assert sf.classify("502 then a line\nbad gateway", None, pats) == "error"  # not the same line
    assert sf.classify("HTTP 502 Bad Gateway", None, pats) == "infrastructure"
    assert sf.classify("container abc is not running", None, pats) == "infrastructure"
    assert sf.classify("docker daemon failed to start", None, pats) == "infrastructure"
    middle = "x" * 100_000 + " rcon " + "x" * 100_000  # beyond the first and last 4 KB
    assert sf.classify(middle, None, pats) == "error"
    assert sf.classify("RCON timeout " + "x" * 100_000, None, pats) == "infrastructure"


def test_a_huge_error_text_is_stored_cut_at_1_mib_with_a_marker(tmp_path, inspect_logs_dir):
    base = _json_log(inspect_logs_dir)
    ws = _workspace(
        tmp_path, _folder(tmp_path, base, lambda d: _first(d).update(error={"message": "é" * (3 << 20)}))
    )
    sync(ws, source="runs")
    row = warehouse.query(
        ws, "SELECT error, failure_kind FROM inspect_samples WHERE path = 'poison.json' AND error IS NOT NULL"
    ).row(0, named=True)
    head, marker = row["error"].rsplit("\n", 1)
    assert len(head.encode()) == 1 << 20 and set(head) == {"é"}
    assert marker == f"[… cut at 1 MiB: {6 << 20:,} bytes in all]"
    assert row["failure_kind"] == "error"


# ---------------------------------------------------------------- held-out acceptance
def test_acceptance_json_logs_with_epoch_abc_and_a_score_of_10_400(tmp_path, inspect_logs_dir):
    """Held-out check: in a folder of JSON logs (FLE 0.4.3's scorer, written back as
    ``.json`` by inspect_ai), one sample with ``"epoch": "abc"`` and another log with a
    score of 10**400 never make sync print a traceback, and every untouched log's (model,
    task) cells match the verdicts FLE's own scorer wrote into the logs."""
    from inspect_ai.log import read_eval_log, write_eval_log

    logs = tmp_path / "logs"
    logs.mkdir()
    for src in sorted((inspect_logs_dir / "fle043").glob("*.eval")):
        write_eval_log(read_eval_log(str(src)), str(logs / (src.stem + ".json")), format="json")
    # poison the two logs with the fewest successes, so the untouched ones hold some
    throughput = sorted(
        (p for p in logs.glob("*.json") if "open-play" not in p.name),
        key=lambda p: (p.read_text().count('"quota_achieved": true'), p.name),
    )
    abc, huge = throughput[0], throughput[1]
    doc = json.loads(abc.read_text())
    doc["samples"][0]["epoch"] = "abc"
    abc.write_text(json.dumps(doc))
    doc = json.loads(huge.read_text())
    doc["samples"][-1]["scores"]["comprehensive_factorio_scorer"]["metadata"]["production_score"] = BIG
    huge.write_text(json.dumps(doc))
    ws = _workspace(tmp_path, logs)
    cli = [sys.executable, "-m", "fle_core", "--workspace", str(ws.root)]
    for args in (["sync"], ["sync"], ["status"]):
        done = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "Traceback" not in done.stdout + done.stderr, done.stderr
    # the reference: FLE's scorer's own verdict in each untouched log, per (model, task)
    want: dict[tuple[str, str], list[int]] = {}
    for path in throughput[2:]:
        log = json.loads(path.read_text())
        for s in log["samples"]:
            meta = s["scores"]["comprehensive_factorio_scorer"]["metadata"]
            cell = want.setdefault((log["eval"]["model"], meta.get("env_id") or log["eval"]["task"]), [0, 0])
            cell[0] += 1
            cell[1] += bool(meta.get("quota_achieved")) and "scorer_error" not in meta
    keys = warehouse.query(
        ws, "SELECT version, instance, path FROM inspect_samples WHERE superseded_by IS NULL"
    )
    summaries = analysis.load_summaries(ws).join(keys, on=["version", "instance"])
    got = (
        summaries.filter(pl.col("path").is_in([p.name for p in throughput[2:]]))
        .group_by("model", "task")
        .agg(pl.len().alias("n"), pl.col("success").sum().alias("k"))
    )
    assert {(r["model"], r["task"]): [r["n"], r["k"]] for r in got.iter_rows(named=True)} == want
    assert len(want) == 2 and sum(k for _n, k in want.values()) > 0
    # the poisoned logs keep their good samples; the two bad ones are named
    held = {p for p, _i, _e in _samples(ws)}
    assert abc.name in held and huge.name in held
    notes = sorted(catalog.quarantined(ws)["detail"])
    assert len(notes) == 2
    assert notes[0].startswith(abc.name) and "epoch 'abc' is not an integer" in notes[0]
    assert notes[1].startswith(huge.name) and "beyond float range" in notes[1]
