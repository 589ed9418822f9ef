"""FLE ``programs`` databases whose outcomes are chosen trial by trial (gate and changes tests).

``outcome_rows({(model, task): [True, False, ...]})`` gives one short trajectory per
trial whose best value reaches the task's quota exactly when the trial is True (a
float is used as the best value itself). ``build_warehouse`` writes the rows into
a real SQLite ``programs`` table and syncs it with ``fle-core sync`` (a real
subprocess) or ``warehouse.sync`` in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from fixtures_fle import create_sqlite

from fle_core.tasks import TaskRegistry

_T0 = datetime(2026, 4, 1, 9, 0, 0)
Outcomes = Mapping[tuple[str, str], Sequence[bool | float]]


def outcome_rows(
    outcomes: Outcomes,
    *,
    first_version: int = 1,
    sweep_id: str | None = None,
    steps: int = 2,
    achievements: Mapping[tuple[str, str], dict] | None = None,
    quotas: Mapping[str, float] | None = None,
) -> list[dict]:
    """``programs`` rows: one trajectory (version) per trial, ``steps`` steps each.

    The last step holds the best value (the quota for True, 0 for False, or the
    float given); earlier steps climb to it. ``achievements[(model, task)]`` is the
    ``achievements_json`` every step of those trajectories carries. ``quotas`` adds
    tasks the registry lacks (configure them in the workspace too: ``[tasks.KEY]``).
    """
    registry = TaskRegistry.from_config({k: {"quota": q} for k, q in (quotas or {}).items()})
    rows: list[dict] = []
    version = first_version
    for (model, task), trials in outcomes.items():
        quota = registry.tasks[task].quota if task in registry.tasks else None
        for trial, outcome in enumerate(trials):
            best = float(outcome) if not isinstance(outcome, bool) else (quota if outcome else 0.0) or 0.0
            start = _T0 + timedelta(minutes=version)
            for d in range(steps):
                value = best * (d + 1) / steps
                meta = {"model": model, "sweep_id": sweep_id, "error_occurred": False, "trial": trial}
                if task == "open_play":
                    meta["production_score"] = value
                rows.append(
                    {
                        "code": "pass",
                        "value": value,
                        "visits": 0,
                        "parent_id": None,
                        "state_json": None,
                        "conversation_json": None,
                        "completion_token_usage": 100,
                        "prompt_token_usage": 1000 + d,
                        "token_usage": 1100 + d,
                        "response": "ok",
                        "holdout_value": value,
                        "raw_reward": None,
                        "version": version,
                        "version_description": f"model:{model}\ntype:{task}\nnum_agents:1",
                        "model": model,
                        "meta": json.dumps(meta),
                        "achievements_json": json.dumps((achievements or {}).get((model, task)))
                        if achievements and (model, task) in achievements
                        else None,
                        "instance": 0,
                        "depth": float(d),
                        "advantage": None,
                        "ticks": 60 * (d + 1),
                        "created_at": (start + timedelta(seconds=10 * d)).strftime("%Y-%m-%d %H:%M:%S"),
                        "timing_metrics_json": None,
                    }
                )
            version += 1
    return rows


def cli(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``fle-core ARGS`` as a real subprocess on the workspace ``home``."""
    env = {**os.environ, "FLE_CORE_HOME": str(home), "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-m", "fle_core", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def add_source(home: Path, db: Path, rows: list[dict], *, with_cli: bool = True) -> str:
    """Write ``rows`` into the SQLite file ``db`` and sync it into the workspace at ``home``;
    returns the ad-hoc source name sync gives it (``sqlite:<file name>``)."""
    url = create_sqlite(db, rows)
    if with_cli:
        done = cli(home, "sync", "--source", url, "--quiet")
        assert done.returncode == 0, done.stderr
    else:
        from fle_core.warehouse.sync import sync
        from fle_core.workspace import Workspace

        sync(Workspace.open(home), url)
    return f"sqlite:{db.name}"
