"""``SweepManager``: the old framework's scripting name over the sweep operations."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import polars as pl

from fle_core.errors import QueueError
from fle_core.sweeps.config import SweepConfig
from fle_core.sweeps.operations import SweepStatus, cells_frame, ensure_runner, launch, resume, status
from fle_core.sweeps.store import open_store
from fle_core.workspace import Workspace


# ---- scripting API (the old framework's names) ------------------------------------------------
class SweepManager:
    """``SweepManager(config).run_sweep()`` / ``SweepManager.resume_sweep(config, id)``.

    Synchronous (the old framework was async). ``run_sweep(wait=True)`` runs an
    in-process runner restricted to this sweep until nothing is left, and
    returns ``cells_frame``; ``wait=False`` enqueues, ensures a background
    runner and returns at once."""

    def __init__(
        self,
        config: SweepConfig,
        workspace: Workspace | str | Path | None = None,
        existing_sweep_id: str | None = None,
    ):
        self.config = config
        self.ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
        self.sweep_id = existing_sweep_id
        self.is_resume = existing_sweep_id is not None

    @classmethod
    def resume_sweep(
        cls, config: SweepConfig, sweep_id: str, workspace: Workspace | str | Path | None = None
    ) -> SweepManager:
        return cls(config, workspace, existing_sweep_id=sweep_id)

    def run_sweep(
        self, wait: bool = True, max_concurrent: int | None = None, sync: bool = True
    ) -> pl.DataFrame:
        store = open_store(self.ws)
        try:
            if self.sweep_id is None:
                self.sweep_id = launch(self.ws, self.config, store=store)
            else:
                resume(self.ws, self.sweep_id, store=store, config=self.config)
            if not wait:
                ensure_runner(self.ws, store)
                return cells_frame(self.ws, self.sweep_id, store)
            from fle_core.sweeps.runner import Runner

            runner = Runner(
                self.ws,
                store,
                max_concurrent=max_concurrent or self.config.max_concurrent,
                sweep_ids=[self.sweep_id],
                sync=sync,
                runner_id=f"inproc:{os.getpid()}:{uuid.uuid4().hex[:6]}",
            )
            runner.run(once=True)
            return cells_frame(self.ws, self.sweep_id, store)
        finally:
            store.close()

    def status(self) -> SweepStatus:
        if self.sweep_id is None:
            raise QueueError("This sweep has not been launched yet")
        return status(self.ws, self.sweep_id)
