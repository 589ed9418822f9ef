"""Inspect logs written by real inspect_ai, for the tests (generated once per session).

``python tests/inspect_fixtures.py OUT`` runs the FLE-shaped task of
``fle_inspect_task.py`` on ``mockllm/...`` models and writes these folders:

* ``main/``      3 models × 2 tasks, 3 epochs, ``.eval`` (zstd), per-step store;
* ``json/``      one ``.json`` log (2 epochs);
* ``nostore/``   no per-step data (the final score is the only step);
* ``deflate/``   a copy of a ``main`` log re-zipped with deflate members (older inspect);
* ``errors/``    an Inspect sample error (log status ``error``), a swallowed RCON error
  (infrastructure), a swallowed agent-side error, a token limit hit;
* ``openplay/``  open play (``production_score`` and ``achievements`` scorers, no quota);
* ``quota/``     ``sufuric_acid_throughput`` whose log says quota 16 (the registry's is 250);
* ``evalset/``   an eval-set whose first attempt failed on epoch 2 and was retried with
  ``retry_cleanup=False``, so both attempts' logs are on disk;
* ``cancelled/`` an eval interrupted (SIGINT) after its first samples: status ``cancelled``;
* ``hostile/``   a swallowed error whose text is Markdown and HTML (the app must show it literally);
* ``fle043/``    2 models × 2 tasks × 2 epochs scored by FLE 0.4.3's own scorer
  (``fle_0_4_3_scorers.py``), one epoch of which crashes that scorer (``scorer_error``), and
  open play scored by FLE's ``production_score``/``automated_production_score``;
* ``chunked/``   ``fle043/`` converted by ``inspect log convert-chunked`` (every sample chunked);
* ``invalidated/`` one ``fle043`` log with epoch 1 invalidated (``invalidate_samples``) and its
  tags/metadata edited (``edit_eval_log``), written back with ``write_eval_log``;
* ``limits/``    one ``fle043`` log with the ``config_updates`` record ``inspect ctl config``
  appends when it retunes a running eval (built with inspect_ai's public ``ConfigUpdate``);
* ``retries/``   an eval-set run with ``--limit 1`` of a 2-sample task, ``retry_on_error=1`` (each
  sample's first attempt fails) and a model fallback at step 2;
* ``shards/``    a run sharded by sample (``run.shards/0/``, ``run.shards/1/``) and its merged log
  ``run.eval`` (``EvalSpec.shards``), written after the shards (inspect_ai 0.3.285 reads and
  lists shards but has no command that writes them, so they are written with its public API);
* ``systems/``   one model and task under two solvers (plan names), two trajectory lengths and a
  reasoning effort;
* ``sandbox/``   an error of FLE's Docker sandbox mode (infrastructure).

It runs in its own process so inspect_ai's state never leaks into the test process.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASK = str(HERE / "fle_inspect_task.py")
MODELS = ("mockllm/alpha", "mockllm/beta", "mockllm/gamma")
#: an error message that would be Markdown if the app rendered it as such
HOSTILE = "**Session expired.** [Log in again](http://evil.example/login) <script>x</script>"
TASKS = ("iron_ore_throughput", "iron_plate_throughput")


def _eval(tasks, model, log_dir: Path, **kw):
    from inspect_ai import eval as inspect_eval

    logs = inspect_eval(
        tasks, model=model, log_dir=str(log_dir), display="none", log_level="error", log_realtime=False, **kw
    )
    return logs


def _task(**args):
    sys.path.insert(0, str(HERE))
    from fle_inspect_task import throughput

    return throughput(**args)


def rezip_deflate(src: Path, dst: Path) -> None:
    """The same log with deflate members (how older inspect_ai wrote ``.eval`` files)."""
    import zipfile_zstd  # noqa: F401 - lets stdlib zipfile read inspect's zstd members

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for model in MODELS:
        _eval([_task(env_id=t) for t in TASKS], model, out / "main", epochs=3)
    _eval(_task(env_id="iron_ore_throughput"), "mockllm/alpha", out / "json", epochs=2, log_format="json")
    _eval(_task(env_id="iron_ore_throughput", per_step=False), "mockllm/alpha", out / "nostore", epochs=2)
    (out / "deflate").mkdir(exist_ok=True)
    first = sorted((out / "main").glob("*.eval"))[0]
    rezip_deflate(first, out / "deflate" / first.name)
    err = out / "errors"
    _eval(_task(env_id="iron_ore_throughput", raise_at=3), "mockllm/alpha", err / "sample_error", epochs=1)
    _eval(_task(env_id="iron_ore_throughput", swallow_error_at=2), "mockllm/beta", err / "infra", epochs=2)
    _eval(
        _task(
            env_id="iron_ore_throughput", swallow_error_at=4, error_text="agent program crashed the planner"
        ),
        "mockllm/gamma",
        err / "agent",
        epochs=1,
    )
    _eval(_task(env_id="iron_ore_throughput", token_limit=300), "mockllm/alpha", err / "limit", epochs=1)
    _eval(_task(env_id="open_play_production", quota="none"), "mockllm/alpha", out / "openplay", epochs=2)
    _eval(_task(env_id="sufuric_acid_throughput", quota="16"), "mockllm/alpha", out / "quota", epochs=2)
    _eval(
        _task(env_id="iron_ore_throughput", swallow_error_at=2, error_text=HOSTILE),
        "mockllm/delta",
        out / "hostile",
    )
    _eval(
        _task(
            env_id="iron_ore_throughput",
            swallow_error_at=2,
            error_text="SandboxUnavailableError: container factorio-0 is not running (OOM-killed)",
        ),
        "mockllm/beta",
        out / "sandbox",
    )
    _evalset(out / "evalset")
    _fle043(out)
    _retries(out / "retries")
    _shards(out / "shards")
    _systems(out / "systems")
    _cancelled(out / "cancelled")


def _fle043(out: Path) -> None:
    """Logs scored by FLE 0.4.3's own scorer, their chunked conversion, and an invalidation."""
    import subprocess

    for model in MODELS[:2]:
        for env_id in TASKS:
            crash = 2 if (model, env_id) == (MODELS[1], TASKS[1]) else None
            _eval(
                _task(env_id=env_id, scorers="fle", scorer_crash_epoch=crash, samples=2),
                model,
                out / "fle043",
                epochs=2,
            )
    _eval(
        _task(env_id="open_play_production", quota="none", scorers="fle"), MODELS[0], out / "fle043", epochs=2
    )
    inspect = Path(sys.executable).with_name("inspect")
    subprocess.run(
        [str(inspect), "log", "convert-chunked", str(out / "fle043"), "--output-dir", str(out / "chunked")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from inspect_ai.log import (
        MetadataEdit,
        ProvenanceData,
        TagsEdit,
        edit_eval_log,
        invalidate_samples,
        read_eval_log,
        write_eval_log,
    )

    first = sorted((out / "fle043").glob("*.eval"))[0]
    log = read_eval_log(str(first))
    uuids = [s.uuid for s in log.samples or [] if s.epoch == 1]
    log = invalidate_samples(
        log, uuids, ProvenanceData(author="alice", reason="Factorio server restarted mid-run")
    )
    log = edit_eval_log(
        log,
        [TagsEdit(tags_add=["rerun-needed"]), MetadataEdit(metadata_set={"note": "server restarted"})],
        ProvenanceData(author="bob", reason="triage"),
    )
    (out / "invalidated").mkdir()
    write_eval_log(log, str(out / "invalidated" / first.name))
    # the record `inspect ctl config --token-limit … --reason …` appends to a running eval's log
    from inspect_ai.log import ConfigUpdate, ConfigValueChange

    second = sorted((out / "fle043").glob("*.eval"))[1]
    log = read_eval_log(str(second))
    change = ConfigValueChange(config="eval", name="token_limit", value=90000, previous=50000)
    log.config_updates = [
        ConfigUpdate(
            changes=[change],
            scope="task",
            provenance=ProvenanceData(author="carol", reason="raise the limit"),
        )
    ]
    (out / "limits").mkdir()
    write_eval_log(log, str(out / "limits" / second.name))


def _retries(log_dir: Path) -> None:
    """An eval-set with --limit 1 whose sample fails once and is retried (error_retries)."""
    from inspect_ai import eval_set

    marker = log_dir.parent / "retry-marker"
    ok, _ = eval_set(
        [_task(env_id="steel_plate_throughput", samples=2, retry_marker=str(marker), fallback_at=2)],
        log_dir=str(log_dir),
        model="mockllm/alpha",
        epochs=2,
        limit=1,
        retry_on_error=1,
        retry_attempts=0,
        display="none",
        log_level="error",
        log_realtime=False,
    )
    assert ok


def _shards(root: Path) -> None:
    """A run sharded by sample and its merged log, written after the shards."""
    import os

    from inspect_ai.log import EvalShardEntry, EvalShards, read_eval_log, write_eval_log

    ids = ["iron_plate_throughput_eval", "iron_plate_throughput_eval_1"]
    parts = []
    for k, sample in enumerate(ids):
        _eval(
            _task(env_id="iron_plate_throughput", samples=2),
            "mockllm/gamma",
            root / "run.shards" / str(k),
            epochs=2,
            sample_id=sample,
        )
        parts.append(next((root / "run.shards" / str(k)).glob("*.eval")))
    logs = [read_eval_log(str(p)) for p in parts]
    task_id = logs[0].eval.task_id
    for path, log in zip(parts, logs, strict=True):  # one task, as the shards of one run are
        log.eval.task_id = task_id
        write_eval_log(log, str(path))
    merged = logs[0].model_copy(deep=True)
    merged.samples = [s for log in logs for s in log.samples or []]
    merged.eval.dataset.sample_ids = ids
    merged.eval.shards = EvalShards(
        selection="ids",
        ledger=[
            EvalShardEntry(
                shard=str(k),
                log=p.name,
                status="success",
                samples=len(log.samples or []),
                selected=1,
                selection_digest="-",
                size=p.stat().st_size,
            )
            for k, (p, log) in enumerate(zip(parts, logs, strict=True))
        ],
    )
    write_eval_log(merged, str(root / "run.eval"))
    for p in parts:  # the shards were last written before the merge
        os.utime(p, (1_700_000_000, 1_700_000_000))
    os.utime(root / "run.eval", (1_700_000_100, 1_700_000_100))


def _systems(log_dir: Path) -> None:
    """One model and task run as different systems: FLE solver, trajectory length, reasoning."""
    env = "iron_plate_throughput"
    _eval(_task(env_id=env), "mockllm/alpha", log_dir, epochs=2)
    _eval(_task(env_id=env, solver_name="factorio_text_only_solver"), "mockllm/alpha", log_dir, epochs=2)
    _eval(_task(env_id=env, steps=4), "mockllm/alpha", log_dir, epochs=2)
    _eval(_task(env_id=env), "mockllm/alpha", log_dir, epochs=2, reasoning_effort="high")


def _cancelled(log_dir: Path) -> None:
    """SIGINT while the eval runs: Inspect stops and writes the log with status cancelled.

    The eval would take 12 s (6 epochs × 8 steps × 0.25 s, one sample at a time); the
    signal comes after 3 s. On a loaded machine the signal can land before Inspect has
    started its samples, so the log's status is checked and the run tried again (later
    signal) until Inspect wrote ``cancelled``."""
    import os
    import shutil
    import signal
    import threading

    from inspect_ai.log import list_eval_logs, read_eval_log

    for delay in (3.0, 5.0, 7.0):
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
        threading.Timer(delay, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        with contextlib.suppress(KeyboardInterrupt):
            _eval(
                _task(env_id="iron_ore_throughput", step_delay=0.25, steps=8),
                "mockllm/alpha",
                log_dir,
                epochs=6,
                max_samples=1,
                log_buffer=1,
            )
        found = [read_eval_log(i, header_only=True) for i in list_eval_logs(str(log_dir))]
        if [f.status for f in found] == ["cancelled"]:
            return
    raise AssertionError(f"inspect_ai did not write a cancelled log: {[f.status for f in found]}")


def _evalset(log_dir: Path) -> None:
    """First attempt: epoch 2 fails (the marker file exists); second: retried, both logs kept."""
    from inspect_ai import eval_set

    marker = log_dir.parent / "fail-epoch-2"
    marker.touch()
    args = {"env_id": "iron_gear_wheel_throughput", "fail_marker": str(marker)}
    ok, _ = eval_set(
        [_task(**args)],
        log_dir=str(log_dir),
        model="mockllm/alpha",
        epochs=2,
        retry_attempts=0,
        display="none",
        log_level="error",
        retry_cleanup=False,
        log_realtime=False,
    )
    assert not ok
    marker.unlink()
    ok, _ = eval_set(
        [_task(**args)],
        log_dir=str(log_dir),
        model="mockllm/alpha",
        epochs=2,
        retry_attempts=0,
        display="none",
        log_level="error",
        retry_cleanup=False,
        log_realtime=False,
    )
    assert ok


if __name__ == "__main__":
    target = Path(sys.argv[1])
    if target.exists():
        shutil.rmtree(target)
    generate(target)
