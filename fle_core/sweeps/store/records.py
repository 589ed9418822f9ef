"""Control-store records: pydantic models with ``Literal`` statuses, one per table row.

``base`` (schema, contract, portable SQL) and the backends build and return these;
the API (``sweeps.operations``) and the runner read them. Fields added by a later
migration have defaults, so a record reads the same before and after it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

SweepStatus = Literal["active", "paused", "cancelled", "completed"]
CellStatus = Literal["pending", "running", "succeeded", "failed", "early_stopped", "cancelled"]
AttemptStatus = Literal["running", "succeeded", "failed", "superseded", "cancelled"]
Outcome = Literal["succeeded", "failed", "timed_out", "empty", "lost", "cancelled", "requeued"]
RunnerStatus = Literal["running", "draining", "stopped"]
TERMINAL_CELL = ("succeeded", "failed", "early_stopped", "cancelled")
MAX_LOST = 3.0  # lost-attempt charge at which a cell is failed (see ``expire_leases``; no retries used)


class SweepRecord(BaseModel):
    sweep_id: str
    name: str
    status: SweepStatus
    config_json: str
    executor: str
    source: str
    max_concurrent: int
    max_retries: int
    retry_backoff_s: float
    retry_backoff_max_s: float
    early_stop: bool
    wandb: bool
    created_at: float
    updated_at: float
    completed_at: float | None = None


class CellRecord(BaseModel):
    cell_id: str
    sweep_id: str
    model: str
    task: str
    env_id: str
    params_json: str
    trial: int
    order_index: int
    status: CellStatus
    attempts: int
    failures: int
    lost: int
    not_before: float
    cancel_requested: bool
    updated_at: float
    requeues: int = 0
    """Attempts drained by their runner (SIGTERM, Slurm time limit, scancel): never charged."""
    lost_charge: float = 0.0
    """Sum over lost attempts of 1/K, K = jobs its runner lost at once; failed at ``MAX_LOST``."""


class AttemptRecord(BaseModel):
    attempt_id: str
    cell_id: str
    sweep_id: str
    attempt: int
    version: int
    source: str
    source_key: str
    status: AttemptStatus
    outcome: Outcome | None = None
    exit_code: int | None = None
    started_at: float
    ended_at: float | None = None
    log_path: str | None = None
    error: str | None = None
    runner_id: str
    host: str
    pid: int | None = None
    proc_start: str | None = None
    lease_until: float


class RunnerRecord(BaseModel):
    runner_id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    lease_s: float
    status: RunnerStatus
    slurm_job_id: str | None = None
    """The Slurm (array) job id when the runner is a pilot (``SLURM_ARRAY_JOB_ID``)."""
    slurm_array_task_id: int | None = None
    node: str | None = None
    """The node it runs on (``SLURMD_NODENAME``, else the host name)."""
    jobs_run: int = 0
    """Jobs this runner has claimed so far."""
    log_path: str | None = None
    """Where the runner's own output goes (a pilot's ``--output`` file), when known."""


class PilotSubmission(BaseModel):
    """One ``sbatch --array`` of runner pilots (``fle-core runner --slurm N``)."""

    job_id: str
    submitted_at: float
    pilots: int
    sweep_ids: list[str] | None = None
    """The sweeps its pilots are restricted to; None: any active sweep."""
    log_dir: str
    status: Literal["submitted", "cancelled"] = "submitted"
    cancelled_at: float | None = None


class Claim(BaseModel):
    """A claimed job: the cell, its new attempt (with its reserved version), the sweep."""

    cell: CellRecord
    attempt: AttemptRecord
    sweep: SweepRecord


class Finish(BaseModel):
    """What ``finish_attempt`` decided. ``stale``: the attempt was no longer ours."""

    stale: bool = False
    cell_status: CellStatus | None = None
    attempt_status: AttemptStatus | None = None
    retry_at: float | None = None
    early_stopped: int = 0
