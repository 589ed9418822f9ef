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
* ``facts``: ``attempts_for_sync``, the sweep facts handed to the warehouse sync;
* ``simulate``: a simulated FLE agent (``python -m fle_core.sweeps.simulate``);
* ``manager``: ``SweepManager``, the old framework's scripting name.

The sweeps layer sits beside the data layers: jobs write sources, and the runner
syncs the warehouse, handing sync the sweep facts through
``warehouse.sync.AttemptsProvider`` (``facts.attempts_for_sync``).

The operations are re-exported lazily (PEP 562): ``import fle_core.sweeps.facts``
or ``.runner`` must not pull in polars and pydantic models it does not use.
"""

from __future__ import annotations

from fle_core._lazy import lazy_exports

_OPERATIONS = (
    "ACTIONS",
    "STATES",
    "SweepStatus",
    "attempts_frame",
    "available_actions",
    "cancel",
    "cells_frame",
    "ensure_runner",
    "executor_presets",
    "failures",
    "launch",
    "list_sweeps",
    "new_sweep_id",
    "pause",
    "pilots",
    "resume",
    "retry_failed",
    "runners",
    "slurm_settings",
    "status",
    "stop_runner",
    "stored_config",
    "submit_pilots",
)
_EXPORTS = {
    **dict.fromkeys(_OPERATIONS, "fle_core.sweeps.operations"),
    "open_store": "fle_core.sweeps.store",
    "attempts_for_sync": "fle_core.sweeps.facts",
    "ensure_follower": "fle_core.sweeps.follow",
    "follower_pid": "fle_core.sweeps.follow",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
