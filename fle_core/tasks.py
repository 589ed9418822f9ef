"""The task registry and the parsers that derive a task key from FLE rows.

FLE lab-play tasks are throughput tasks: a trajectory is *solved* when its best
step value reaches the task's quota. ``open_play`` has no quota; its score is
``production_score``. Quotas can be overridden and tasks added from the
workspace config (``[tasks.<key>] quota = ...``) without code changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fle_core.errors import UnknownTask

LAB_PLAY_STEPS = 64
LAB_PLAY_HOLDOUT_S = 60

_QUOTA_16 = [
    "iron_ore",
    "iron_plate",
    "iron_gear_wheel",
    "steel_plate",
    "stone_wall",
    "sulfur",
    "plastic_bar",
    "inserter",
    "electronic_circuit",
    "advanced_circuit",
    "processing_unit",
    "engine_unit",
    "battery",
    "low_density_structure",
    "piercing_round",
    "automation_science_pack",
    "logistics_science_pack",
    "chemical_science_pack",
    "military_science_pack",
    "production_science_pack",
    "utility_science_pack",
]
# "sufuric" is FLE's real key, misspelling included.
_QUOTA_250 = ["crude_oil", "petroleum_gas", "sufuric_acid"]

OPEN_PLAY = "open_play"
#: FLE ≥ 0.4's open-play env id (``fle/eval/inspect/integration/eval_set.py``, OPEN_PLAY_PRODUCTION)
OPEN_PLAY_PRODUCTION = "open_play_production"


@dataclass(frozen=True)
class Task:
    """One benchmark task. ``quota`` is None for tasks scored without success."""

    key: str
    quota: float | None
    kind: str = "throughput"  # "throughput" | "open_play"
    steps: int = LAB_PLAY_STEPS


def default_tasks() -> dict[str, Task]:
    tasks = {f"{n}_throughput": Task(f"{n}_throughput", 16.0) for n in _QUOTA_16}
    tasks.update({f"{n}_throughput": Task(f"{n}_throughput", 250.0) for n in _QUOTA_250})
    tasks[OPEN_PLAY] = Task(OPEN_PLAY, None, kind="open_play", steps=5000)
    tasks[OPEN_PLAY_PRODUCTION] = Task(OPEN_PLAY_PRODUCTION, None, kind="open_play", steps=5000)
    return tasks


@dataclass
class TaskRegistry:
    """Lab-play defaults plus user overrides. Lookups are by task key."""

    tasks: dict[str, Task] = field(default_factory=default_tasks)

    @classmethod
    def from_config(cls, overrides: Mapping[str, Mapping] | None) -> TaskRegistry:
        """Apply ``{key: {"quota": q, "kind": ..., "steps": ...}}`` over the defaults."""
        tasks = default_tasks()
        for key, spec in (overrides or {}).items():
            base = tasks.get(key, Task(key, None))
            quota = spec.get("quota", base.quota)
            tasks[key] = Task(
                key,
                None if quota is None else float(quota),
                kind=str(spec.get("kind", base.kind)),
                steps=int(spec.get("steps", base.steps)),
            )
        return cls(tasks)

    def __contains__(self, key: str) -> bool:
        return key in self.tasks

    def get(self, key: str) -> Task:
        try:
            return self.tasks[key]
        except KeyError:
            raise UnknownTask(
                f"Unknown task {key!r}",
                hint="add it under [tasks] in the workspace config.toml",
            ) from None

    def quota(self, key: str | None) -> float | None:
        task = self.tasks.get(key) if key else None
        return task.quota if task else None

    def quotas(self) -> dict[str, float | None]:
        return {k: t.quota for k, t in self.tasks.items()}

    def validate(self, keys: list[str]) -> None:
        unknown = [k for k in keys if normalize_task_key(k) not in self.tasks]
        if unknown:
            raise UnknownTask(
                f"Unknown task(s): {', '.join(map(repr, unknown))}",
                hint="add them under [tasks] in the workspace config.toml",
            )


# Gym-style ids such as "Factorio-iron_ore_throughput_16-v0" map to registry keys.
_GYM_ID = re.compile(r"^Factorio-(?P<key>.+?)(?:_\d+)?-v\d+$")


def normalize_task_key(raw: str) -> str:
    """Map FLE env ids (``Factorio-iron_ore_throughput_16-v0``) to registry keys."""
    raw = raw.strip()
    m = _GYM_ID.match(raw)
    return m.group("key") if m else raw


@dataclass(frozen=True)
class Description:
    """What ``version_description`` says; ``parsed`` is False when no task was found."""

    model: str | None
    task: str | None
    num_agents: int | None
    parsed: bool


_KV = re.compile(r"^\s*([A-Za-z_][\w\- ]*?)\s*[:=]\s*(.*?)\s*$")


def parse_version_description(text: str | None) -> Description:
    """Parse ``"model:gpt-4o\\ntype:iron_ore_throughput\\nnum_agents:1"``.

    Tolerates other shapes seen in old data: ``;``/``,`` separators, ``=``
    instead of ``:``, ``task:``/``env_id:`` instead of ``type:``, and gym ids.
    Unknown shapes return ``parsed=False``; the caller keeps the row.
    """
    if not text:
        return Description(None, None, None, False)
    fields: dict[str, str] = {}
    for part in re.split(r"[\n;,]", text):
        m = _KV.match(part)
        if m:
            fields.setdefault(m.group(1).strip().lower(), m.group(2))
    task = fields.get("type") or fields.get("task") or fields.get("env_id") or fields.get("task_key")
    agents = fields.get("num_agents")
    try:
        num_agents = int(agents) if agents not in (None, "") else None
    except ValueError:
        num_agents = None
    task_key = normalize_task_key(task) if task else None
    return Description(fields.get("model") or None, task_key or None, num_agents, bool(task_key))


@dataclass(frozen=True)
class Meta:
    """The fields of ``programs.meta`` the workbench uses; ``ok`` is False if malformed."""

    model: str | None = None
    task: str | None = None
    sweep_id: str | None = None
    process_id: str | None = None
    error_occurred: bool | None = None
    production_score: float | None = None
    simulated: bool = False
    ok: bool = True


def parse_meta(raw: str | dict | None) -> Meta:
    """Parse ``meta`` stored as TEXT (JSON) or already-decoded jsonb."""
    if raw is None or raw == "":
        return Meta()
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except (ValueError, TypeError):
            return Meta(ok=False)
    if not isinstance(raw, dict):
        return Meta(ok=False)
    score = raw.get("production_score")
    try:
        score = None if score is None else float(score)
    except (TypeError, ValueError):
        score = None
    err = raw.get("error_occurred")
    task = raw.get("task") or raw.get("task_key") or raw.get("env_id")
    return Meta(
        model=_str_or_none(raw.get("model")),
        task=normalize_task_key(str(task)) if task else None,
        sweep_id=_str_or_none(raw.get("sweep_id")),
        process_id=_str_or_none(raw.get("process_id")),
        error_occurred=None if err is None else bool(err),
        production_score=score,
        simulated=bool(raw.get("simulated", False)),
    )


def _str_or_none(v) -> str | None:
    return None if v is None or v == "" else str(v)
