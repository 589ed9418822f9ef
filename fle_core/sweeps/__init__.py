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

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # the real names, for type checkers and IDEs (no import cost at run time;
    # `name as name` marks each as a re-export)
    from fle_core.sweeps.facts import attempts_for_sync as attempts_for_sync
    from fle_core.sweeps.follow import ensure_follower as ensure_follower
    from fle_core.sweeps.follow import follower_pid as follower_pid
    from fle_core.sweeps.operations import ACTIONS as ACTIONS
    from fle_core.sweeps.operations import STATES as STATES
    from fle_core.sweeps.operations import SweepStatus as SweepStatus
    from fle_core.sweeps.operations import attempts_frame as attempts_frame
    from fle_core.sweeps.operations import available_actions as available_actions
    from fle_core.sweeps.operations import cancel as cancel
    from fle_core.sweeps.operations import cells_frame as cells_frame
    from fle_core.sweeps.operations import ensure_runner as ensure_runner
    from fle_core.sweeps.operations import executor_presets as executor_presets
    from fle_core.sweeps.operations import failures as failures
    from fle_core.sweeps.operations import launch as launch
    from fle_core.sweeps.operations import list_sweeps as list_sweeps
    from fle_core.sweeps.operations import new_sweep_id as new_sweep_id
    from fle_core.sweeps.operations import pause as pause
    from fle_core.sweeps.operations import pilots as pilots
    from fle_core.sweeps.operations import resume as resume
    from fle_core.sweeps.operations import retry_failed as retry_failed
    from fle_core.sweeps.operations import runners as runners
    from fle_core.sweeps.operations import slurm_settings as slurm_settings
    from fle_core.sweeps.operations import status as status
    from fle_core.sweeps.operations import stop_runner as stop_runner
    from fle_core.sweeps.operations import stored_config as stored_config
    from fle_core.sweeps.operations import submit_pilots as submit_pilots
    from fle_core.sweeps.store import open_store as open_store

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
