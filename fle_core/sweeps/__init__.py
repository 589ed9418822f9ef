"""Sweeps: what to run, the durable queue, the runner that works it, and the jobs.

* ``config``: ``SweepConfig`` (validated, versioned), grid indexing, load/save;
* ``store``: the control store (records, contract, SQLite and Postgres backends);
* ``operations``: launch, pause, resume, retry, cancel, status and the frames the
  CLI and the app show; re-exported here (``from fle_core import sweeps;
  sweeps.launch(ws, config)``);
* ``executors``: named server-side presets that turn a claimed job into an argv;
* ``runner``: the sidecar runner loop (leases, timeouts, drain, store outages);
* ``runner_sync``: the runner's warehouse sync on a worker thread;
* ``slurm``: runner pilots as one Slurm job array; their states from squeue;
* ``job_tracking``: W&B runs for finished jobs and sweeps;
* ``simulate``: a simulated FLE agent (``python -m fle_core.sweeps.simulate``);
* ``manager``: ``SweepManager``, the old framework's scripting name.

The sweeps layer sits beside the data layers: jobs write sources, and the runner
syncs the warehouse, handing sync the sweep facts through
``warehouse.sync.AttemptsProvider`` (``attempts_for_sync``).
"""

from fle_core.sweeps.operations import (
    STATES,
    SweepStatus,
    attempts_for_sync,
    attempts_frame,
    cancel,
    cells_frame,
    ensure_runner,
    executor_presets,
    failures,
    launch,
    list_sweeps,
    new_sweep_id,
    pause,
    pilots,
    resume,
    retry_failed,
    runners,
    slurm_settings,
    status,
    stored_config,
    submit_pilots,
)
from fle_core.sweeps.store import open_store

__all__ = [
    "STATES",
    "SweepStatus",
    "attempts_for_sync",
    "attempts_frame",
    "cancel",
    "cells_frame",
    "ensure_runner",
    "executor_presets",
    "failures",
    "launch",
    "list_sweeps",
    "new_sweep_id",
    "open_store",
    "pause",
    "pilots",
    "resume",
    "retry_failed",
    "runners",
    "slurm_settings",
    "status",
    "stored_config",
    "submit_pilots",
]
