"""``SweepConfig``: what a sweep runs, validated before anything is queued.

A sweep is models × tasks × parameter permutations × trials. Every cell is one
agent run (one FLE ``version``). The parameter grid follows PyExpUtils: the
grid's keys are sorted, the *last* key varies fastest, and a single integer
index ``i`` over ``[0, P × N)`` (P permutations, N trials) maps to
``(permutation = i % P, trial = i // P)`` and back with ``index_of``. That
mapping is stable: it depends only on the grid and the trial count, so a
resumed sweep enumerates exactly the same cells.

Configs load from and save to JSON or TOML (``load_config`` / ``save_config``).
Invalid input raises ``ConfigError`` with one line per problem. The record
carries ``schema_version``; version 1 (the old FLE framework's field names:
``enable_wandb``, ``max_concurrent_processes``, ``retry_failed_runs``,
``output_dir``) is upgraded on load.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, cast

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fle_core.errors import ConfigError
from fle_core.tasks import TaskRegistry, normalize_task_key

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# Cells above this need ``confirm_large=True`` (the CLI's ``--yes``).
LARGE_SWEEP_CELLS = 2000

Scalar = str | int | float | bool


class SweepConfig(BaseModel):
    """One sweep's definition. Construct with keywords; bad input → ``ConfigError``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    schema_version: int = SCHEMA_VERSION
    """Record format version; older records are upgraded by ``_upgrade``."""
    name: str
    """Human name; also the prefix of the generated sweep id."""
    models: list[str]
    """Model names passed to the executor as ``{model}``."""
    tasks: list[str]
    """Task keys or FLE gym ids (``Factorio-iron_ore_throughput_16-v0``)."""
    num_trials_per_config: int = Field(default=1, ge=1, le=10_000)
    """Trials per (model, task, permutation)."""
    grid: dict[str, list[Scalar]] = Field(default_factory=dict)
    """Parameter grid, PyExpUtils style: every permutation runs every trial."""
    executor: str = "simulate"
    """Name of an executor preset (built-in or ``[executors.NAME]`` in config.toml)."""
    source: str = "local"
    """Configured source the jobs write to (and completion is verified against)."""
    max_concurrent: int = Field(default=2, ge=1, le=1024)
    """Most jobs of this sweep running at once, across all runners."""
    timeout_s: float = Field(default=3600.0, gt=0)
    """Per-job wall-clock limit; the job's whole process group is killed after it."""
    max_retries: int = Field(default=2, ge=0, le=100)
    """Failed attempts retried (each with a new version) before a cell is ``failed``."""
    retry_backoff_s: float = Field(default=5.0, ge=0)
    """Delay before retry n is ``retry_backoff_s × 2**(n-1)``, capped at ``retry_backoff_max_s``."""
    retry_backoff_max_s: float = Field(default=300.0, ge=0)
    early_stop_on_success: bool = False
    """Once a (model, task, params) succeeds, its pending trials become ``early_stopped``."""
    order: Literal["shuffled", "task_inner"] = "task_inner"
    """Claim order: ``task_inner`` (tasks vary fastest) or ``shuffled`` with ``seed``."""
    seed: int = 0
    """Seed for ``shuffled`` order and for the simulate executor."""
    wandb: bool = False
    """Log one W&B run per job and a sweep summary run."""
    wandb_project: str | None = None
    """W&B project; default: ``[wandb] project`` from config.toml."""
    tags: list[str] = Field(default_factory=list)
    """Extra W&B tags (``sweep:{id}`` is always added)."""
    confirm_large: bool = False
    """Must be true to launch more than ``LARGE_SWEEP_CELLS`` cells."""
    description: str = ""
    """Free text about the sweep (the old framework's field; kept in the stored config)."""
    output_dir: str | None = None
    """Folder for the final sweep report (``sweep_report_<time>.json`` and ``.md``),
    written by ``SweepManager.run_sweep()`` / ``generate_final_report()``."""

    # ---- the old framework's field names, readable (they are upgraded on input) -----
    @property
    def enable_wandb(self) -> bool:
        """The old name of ``wandb``."""
        return self.wandb

    @property
    def max_concurrent_processes(self) -> int:
        """The old name of ``max_concurrent``."""
        return self.max_concurrent

    @property
    def retry_failed_runs(self) -> bool:
        """The old flag: failed runs are retried (``max_retries > 0``)."""
        return self.max_retries > 0

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_format_errors(exc), hint="see docs/sweeps.md for the fields") from None

    # ---- validation --------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """Upgrade schema 1 (the old framework's names) to the current schema."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if int(data.get("schema_version", 1 if _looks_v1(data) else SCHEMA_VERSION)) < 2:
            if "enable_wandb" in data:
                data["wandb"] = bool(data.pop("enable_wandb"))
            if "max_concurrent_processes" in data:
                data["max_concurrent"] = data.pop("max_concurrent_processes")
            if data.pop("retry_failed_runs", True) is False:
                data["max_retries"] = 0
            _upgrade_order(data)
            _drop_no_effect(data)
            data["schema_version"] = SCHEMA_VERSION
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("name must not be empty")
        return v

    @field_validator("models", "tasks")
    @classmethod
    def _names(cls, v: list[str], info) -> list[str]:
        v = [s.strip() for s in v]
        if not v:
            raise ValueError(f"no {info.field_name}: give at least one")
        if any(not s for s in v):
            raise ValueError(f"{info.field_name} contains an empty name")
        dupes = sorted({s for s in v if v.count(s) > 1})
        if dupes:
            raise ValueError(f"duplicate {info.field_name}: {', '.join(dupes)}")
        return v

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid parameter {key!r} has no values")
        return {k: list(v[k]) for k in sorted(v)}

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        registry = _default_registry()
        registry.validate(self.tasks)  # raises UnknownTask (a FleError) with a hint
        keys = [normalize_task_key(t) for t in self.tasks]
        if len(set(keys)) != len(keys):
            raise ValueError("tasks name the same task twice (gym id and key?)")
        if self.num_cells() > LARGE_SWEEP_CELLS and not self.confirm_large:
            raise ValueError(
                f"the sweep has {self.num_cells()} cells (> {LARGE_SWEEP_CELLS}); "
                "set confirm_large=True (CLI: --yes) to launch it"
            )
        return self

    def validate_tasks(self, registry: TaskRegistry) -> None:
        """Check the tasks against a specific workspace's registry."""
        registry.validate(self.tasks)

    # ---- grid indexing (PyExpUtils) -------------------------------------
    def num_permutations(self) -> int:
        return math.prod(len(v) for v in self.grid.values()) if self.grid else 1

    def permutation(self, index: int) -> dict[str, Scalar]:
        """The ``index % P``-th permutation; the last (sorted) key varies fastest."""
        index %= self.num_permutations()
        out: dict[str, Scalar] = {}
        for key in reversed(list(self.grid)):
            values = self.grid[key]
            out[key] = values[index % len(values)]
            index //= len(values)
        return {k: out[k] for k in self.grid}

    def split_index(self, index: int) -> tuple[int, int]:
        """Index → (permutation, trial): ``(i % P, i // P)``."""
        if not 0 <= index < self.num_indices():
            raise ConfigError(f"index {index} is outside [0, {self.num_indices()})")
        p = self.num_permutations()
        return index % p, index // p

    def index_of(self, permutation: int, trial: int) -> int:
        """(permutation, trial) → index: ``trial × P + permutation``."""
        p = self.num_permutations()
        if not (0 <= permutation < p and 0 <= trial < self.num_trials_per_config):
            raise ConfigError(f"(permutation {permutation}, trial {trial}) is outside the grid")
        return trial * p + permutation

    def num_indices(self) -> int:
        return self.num_permutations() * self.num_trials_per_config

    def num_cells(self) -> int:
        return len(self.models) * len(self.tasks) * self.num_indices()

    def cells(self) -> list[dict[str, Any]]:
        """Every cell in launch order (see ``order``).

        Keys: ``model, task, env_id, params_json, perm_index, trial, order_index``;
        ``task`` is the registry key, ``env_id`` the name as written in the config.
        """
        rows = []
        for (mi, model), (ti, env_id), idx in itertools.product(
            enumerate(self.models), enumerate(self.tasks), range(self.num_indices())
        ):
            perm, trial = idx % self.num_permutations(), idx // self.num_permutations()
            rows.append(
                {
                    "model": model,
                    "task": normalize_task_key(env_id),
                    "env_id": env_id,
                    "params_json": params_json(self.permutation(perm)),
                    "perm_index": perm,
                    "trial": trial,
                    "_key": (perm, mi, trial, ti),
                }
            )
        if self.order == "shuffled":
            import random

            random.Random(self.seed).shuffle(rows)
        else:
            rows.sort(key=lambda r: cast("tuple", r["_key"]))  # permutation, model, trial, then task fastest
        for i, r in enumerate(rows):
            r.pop("_key")
            r["order_index"] = i
        return rows

    # ---- serialization --------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        return {k: v for k, v in data.items() if v is not None}  # TOML has no null

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepConfig:
        if not isinstance(data, dict):
            raise ConfigError("a sweep config must be a table/object")
        return cls(**data)


def params_json(params: dict[str, Any]) -> str:
    """Canonical JSON for a permutation (sorted keys, no spaces); part of a cell's key."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def load_config(
    path: str | Path, registry: TaskRegistry | None = None, confirm_large: bool = False
) -> SweepConfig:
    """Read a ``.json`` or ``.toml`` sweep config (tasks checked against ``registry``).

    ``confirm_large=True`` (the CLI's ``--yes``) allows more than ``LARGE_SWEEP_CELLS`` cells."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"Sweep config {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{path}: use a .json or .toml file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    if confirm_large and isinstance(data, dict):
        data = {**data, "confirm_large": True}
    if registry is None:
        return SweepConfig.from_dict(data)
    with task_registry(registry):
        return SweepConfig.from_dict(data)


def save_config(config: SweepConfig, path: str | Path) -> Path:
    """Write JSON or TOML by suffix, atomically (tmp + rename)."""
    path = Path(path)
    data = config.to_dict()
    if path.suffix.lower() == ".toml":
        text = tomli_w.dumps(data)
    elif path.suffix.lower() == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        raise ConfigError(f"{path}: use a .json or .toml file")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def demo_config(name: str = "demo") -> SweepConfig:
    """A tiny simulated sweep: 3 models × 2 tasks × 2 trials (12 cells), seconds to run."""
    return SweepConfig(
        name=name,
        models=["claude-3-5-sonnet (simulated)", "gpt-4o (simulated)", "gpt-4o-mini (simulated)"],
        tasks=["iron_ore_throughput", "iron_gear_wheel_throughput"],
        num_trials_per_config=2,
        executor="simulate-fast",
        max_concurrent=2,
        timeout_s=120,
        max_retries=1,
        retry_backoff_s=0.5,
        tags=["demo", "simulated"],
    )


# ---- helpers ----------------------------------------------------------------
_REGISTRY: ContextVar[TaskRegistry | None] = ContextVar("fle_sweep_registry", default=None)


@contextmanager
def task_registry(registry: TaskRegistry) -> Iterator[None]:
    """Validate configs built inside this block against ``registry`` (a workspace's)."""
    token = _REGISTRY.set(registry)
    try:
        yield
    finally:
        _REGISTRY.reset(token)


def _default_registry() -> TaskRegistry:
    """The registry in context, else the default workspace's ($FLE_CORE_HOME or ./.fle)."""
    reg = _REGISTRY.get()
    if reg is not None:
        return reg
    from fle_core.workspace import Workspace

    try:
        return Workspace.open(create=False).task_registry()
    except ConfigError:
        return TaskRegistry()


#: old (schema 1) fields with no effect here, and why; accepted with a warning
NO_EFFECT_V1 = {
    "log_interval_minutes": "progress is live in the Monitor page and `fle-core sweep status`",
    "save_intermediate_results": "every step is always in the source database",
    "server_configs": "Factorio servers belong to the executor preset (config.toml [executors])",
    "api_key_config_file": "API keys belong to the executor's environment, never to a sweep config",
}
_V1_ONLY = {"enable_wandb", "max_concurrent_processes", "retry_failed_runs", "shuffle_execution_order",
            "task_inner_loop_mode", "api_keys", *NO_EFFECT_V1}  # fmt: skip


def _looks_v1(data: dict) -> bool:
    return bool(_V1_ONLY & set(data))


def _upgrade_order(data: dict) -> None:
    """The old ``shuffle_execution_order`` / ``task_inner_loop_mode`` flags → ``order``."""
    shuffle = data.pop("shuffle_execution_order", None)
    inner = data.pop("task_inner_loop_mode", None)
    if inner:
        data.setdefault("order", "task_inner")
    elif shuffle:
        data.setdefault("order", "shuffled")
    elif shuffle is False or inner is False:
        data.setdefault("order", "task_inner")


def _drop_no_effect(data: dict) -> None:
    if data.pop("api_keys", None):
        raise ConfigError(
            "api_keys in a sweep config would store secrets in the control store",
            hint="give keys to the executor through its environment (docs/sweeps.md)",
        )
    for key, why in NO_EFFECT_V1.items():
        if key in data:
            data.pop(key)
            log.warning("sweep config field %r has no effect here: %s", key, why)


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}")
    return "Invalid sweep config: " + "; ".join(lines)
