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
* ``hostile/``   a swallowed error whose text is Markdown and HTML (the app must show it literally).

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
    _evalset(out / "evalset")
    _cancelled(out / "cancelled")


def _cancelled(log_dir: Path) -> None:
    """SIGINT while the eval runs: Inspect stops and writes the log with status cancelled."""
    import os
    import signal
    import threading

    threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with contextlib.suppress(KeyboardInterrupt):
        _eval(
            _task(env_id="iron_ore_throughput", step_delay=0.25, steps=4),
            "mockllm/alpha",
            log_dir,
            epochs=6,
            max_samples=1,
            log_buffer=1,
        )


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
