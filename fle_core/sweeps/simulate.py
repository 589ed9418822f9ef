"""A SIMULATED FLE agent: writes realistic ``programs`` rows, one per step.

Everything it writes is simulated and says so (``meta.simulated = true``). It
lets sweeps, sync, metrics and the app run end to end without Factorio or an
LLM. CLI (flags default to ``FLE_*`` variables; see docs/simulate.md)::

    python -m fle_core.sweeps.simulate --source sqlite:///.fle/data.db --model gpt-4o \\
        --task iron_ore_throughput --version 42 [--instance 0] [--trial 3] [--sweep-id S]
        [--seed 0] [--steps 64] [--step-delay 0.5] [--crash-rate 0.05] [--error-rate 0.1]

Exit codes: 0 complete; 3 simulated crash (partial trajectory); 2 bad input or
an unusable source. Why it is shaped this way: success is drawn once per
trajectory from ``success_probability`` (calibrated so a model's mean over the
24 lab-play tasks is its FLE-paper figure) and the value curve is built to
cross the quota exactly when it succeeded; the trajectory is a pure function of
(seed, model, task, trial), while the crash draw also depends on the version so
retries are not doomed; like FLE lab play, runs never stop early on success.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np

from fle_core.errors import ConfigError, FleError, SourceError, SourceUnavailable
from fle_core.sources.programs_schema import programs_ddl
from fle_core.tasks import LAB_PLAY_STEPS, TaskRegistry, normalize_task_key
from fle_core.workspace import ENV_HOME, Workspace, mask_url, sqlite_path

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CRASH = 3
OPEN_PLAY_DEFAULT_STEPS = 200
DEFAULT_ERROR_RATE = 0.1

# ---------------------------------------------------------------------------
# Model skill profiles (FLE paper v0.1, lab-play success %, PRODUCT.md)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelProfile:
    """How a simulated model behaves. ``target`` is its mean lab-play success rate."""

    key: str
    target: float
    completion_mean: float = 350.0  # tokens per reply
    system_tokens: int = 3200  # prompt tokens at step 0 (system prompt + API docs)
    context_limit: int = 120_000


PROFILES: dict[str, ModelProfile] = {
    p.key: p
    for p in [
        ModelProfile("claude-3-5-sonnet", 0.219, completion_mean=420),
        ModelProfile("gpt-4o", 0.166, completion_mean=360),
        ModelProfile("deepseek-v3", 0.151, completion_mean=480, context_limit=60_000),
        ModelProfile("gemini-2", 0.130, completion_mean=390),
        ModelProfile("llama-3.3-70b", 0.063, completion_mean=300),
        ModelProfile("gpt-4o-mini", 0.052, completion_mean=280),
    ]
}
DEFAULT_PROFILE = ModelProfile("default", 0.10)

# Most specific patterns first ("gpt-4o-mini" before "gpt-4o"); matched against
# the normalized name (lower case, "." "_" " " → "-").
_ALIASES: list[tuple[str, str]] = [
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("gpt-4o", "gpt-4o"),
    ("claude-3-5-sonnet", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet", "claude-sonnet-3-5"),
    ("claude-3-5-sonnet", "claude-35-sonnet"),
    ("deepseek-v3", "deepseek-v3"),
    ("deepseek-v3", "deepseek-chat"),
    ("gemini-2", "gemini-2"),
    ("llama-3.3-70b", "llama-3-3-70b"),
    ("llama-3.3-70b", "llama3-3-70b"),
]


def model_profile(model: str) -> ModelProfile:
    """The skill profile for a model name in any common spelling; unknown → default."""
    norm = model.lower()
    for ch in "._ /:":
        norm = norm.replace(ch, "-")
    for key, pattern in _ALIASES:
        if pattern in norm:
            return PROFILES[key]
    return DEFAULT_PROFILE


# Task difficulty in [0, 1] (0 easiest). Ordered by how deep the production
# chain is; the FLE paper reports most models only solve the first few.
TASK_DIFFICULTY: dict[str, float] = {
    "iron_ore": 0.0,
    "iron_plate": 0.1,
    "stone_wall": 0.15,
    "iron_gear_wheel": 0.2,
    "automation_science_pack": 0.3,
    "inserter": 0.35,
    "steel_plate": 0.35,
    "electronic_circuit": 0.45,
    "crude_oil": 0.45,
    "logistics_science_pack": 0.55,
    "petroleum_gas": 0.6,
    "military_science_pack": 0.6,
    "piercing_round": 0.6,
    "sulfur": 0.65,
    "plastic_bar": 0.65,
    "engine_unit": 0.7,
    "battery": 0.75,
    "sufuric_acid": 0.75,
    "advanced_circuit": 0.8,
    "chemical_science_pack": 0.85,
    "low_density_structure": 0.9,
    "processing_unit": 0.95,
    "production_science_pack": 0.95,
    "utility_science_pack": 1.0,
}
LAB_PLAY_TASKS = [f"{k}_throughput" for k in TASK_DIFFICULTY]
_SPREAD = 5.0  # logit range between the easiest and the hardest task


def _task_offset(task: str) -> float:
    base = normalize_task_key(task).removesuffix("_throughput")
    return _SPREAD * (0.5 - TASK_DIFFICULTY.get(base, 0.5))


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@lru_cache(maxsize=64)
def _intercept(target: float) -> float:
    """Logit intercept so that the mean over the lab-play tasks equals ``target``."""
    offsets = np.array([_task_offset(t) for t in LAB_PLAY_TASKS])
    lo, hi = -20.0, 20.0
    for _ in range(100):  # bisection: the mean is monotone in the intercept
        mid = (lo + hi) / 2
        if float(np.mean(_sigmoid(mid + offsets))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def success_probability(model: str, task: str) -> float:
    """P(a simulated trajectory of ``model`` on ``task`` reaches the quota).

    Averaged uniformly over ``LAB_PLAY_TASKS`` this equals the model's paper
    figure (``model_profile(model).target``). Tasks outside the difficulty table
    get the middle difficulty.
    """
    profile = model_profile(model)
    return float(_sigmoid(_intercept(profile.target) + _task_offset(task)))


# ---------------------------------------------------------------------------
# Deterministic random streams
# ---------------------------------------------------------------------------


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded from a stable hash of ``parts`` (not Python's ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


@dataclass(frozen=True)
class Outcome:
    """The numeric trajectory. ``values[i]`` is the reward at depth ``i``."""

    values: np.ndarray
    production_score: np.ndarray
    success: bool | None  # None for open play (no quota)
    quota: float | None
    first_success_step: int | None


def trajectory_values(
    model: str, task: str, trial: int, seed: int, steps: int, quota: float | None
) -> Outcome:
    """The value curve of one trajectory; pure and deterministic.

    Throughput tasks: success is drawn with ``success_probability``; a success
    crosses ``quota`` first at a step in the last three quarters of the run, a
    failure plateaus below 97% of it. Open play (``quota is None``): ``value`` is
    the production-score growth since step 0 and ``production_score`` the total.
    """
    rng = _rng("values", seed, model, task, trial)
    t = np.arange(steps, dtype=float)
    if quota is None:
        skill = model_profile(model).target / 0.15
        inc = rng.lognormal(mean=np.log(40 * skill), sigma=0.8, size=steps) * (1 + t / 20)
        inc[0] = 0.0
        growth = np.round(np.cumsum(inc), 2)
        base = float(rng.uniform(80, 120))
        return Outcome(growth, np.round(base + growth, 2), None, None, None)
    success = bool(rng.random() < success_probability(model, task))
    noise = rng.normal(1.0, 0.06, size=steps).clip(0.7, 1.3)
    if success:
        first = int(rng.integers(math.ceil(0.25 * (steps - 1)), steps)) if steps > 1 else 0
        ramp = (t / max(first, 1)) ** rng.uniform(1.2, 2.5)
        values = quota * 0.9 * ramp * noise
        values[:first] = np.floor(np.minimum(values[:first], 0.97 * quota) * 100) / 100
        peak = quota * rng.uniform(1.0, 1.5)
        after = peak * rng.normal(1.0, 0.05, size=steps - first).clip(0.85, 1.15)
        after[0] = max(after[0], quota)
        values[first:] = np.ceil(after * 100) / 100
        values[first] = max(values[first], quota)
    else:
        first = None
        reach = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.05, 0.95))
        start = rng.uniform(0.1, 0.6) * steps
        ramp = np.clip((t - start) / max(steps - start, 1), 0, 1) ** 0.7
        values = np.floor(np.minimum(quota * reach * ramp * noise, 0.97 * quota) * 100) / 100
    values = np.maximum(values, 0.0)
    score = np.round(np.cumsum(values) * 3.5 + rng.uniform(50, 150), 2)
    return Outcome(values, score, success, quota, first)


# ---------------------------------------------------------------------------
# Row content (texts sized like FLE's, kept modest)
# ---------------------------------------------------------------------------


def _item(task: str) -> str:
    base = normalize_task_key(task).removesuffix("_throughput")
    return base.replace("sufuric", "sulfuric").replace("_", "-")


def _proto(item: str) -> str:
    return "".join(w.capitalize() for w in item.split("-"))


_CODE_LINES = [
    "# Find the nearest {res} patch and move there\npos = nearest(Resource.{res})\nmove_to(pos)",
    "drill = place_entity(Prototype.BurnerMiningDrill, position=pos, direction=Direction.NORTH)\n"
    "insert_item(Prototype.Coal, drill, quantity=5)",
    "furnace = place_entity_next_to(Prototype.StoneFurnace, reference_position=drill.drop_position,\n"
    "                               direction=Direction.SOUTH, spacing=0)",
    "craft_item(Prototype.{proto}, quantity={n})\nprint(f'Crafted {n} {item}')",
    "assembler = place_entity(Prototype.AssemblingMachine1, position=Position(x={x}, y={y}))\n"
    "set_entity_recipe(assembler, Prototype.{proto})",
    "belt = connect_entities(drill.drop_position, assembler.position, Prototype.TransportBelt)\n"
    "print(f'Connected with {{len(belt.belts)}} belts')",
    "inventory = inspect_inventory()\nprint(f'Inventory: {{inventory}}')",
    "sleep({n})\nentities = get_entities(radius=20)\nassert any(e.status == EntityStatus.WORKING "
    "for e in entities), 'nothing is working'",
    "harvest_resource(nearest(Resource.Stone), quantity={n})\ncraft_item(Prototype.StoneFurnace, 2)",
    "inserter = place_entity_next_to(Prototype.BurnerInserter, reference_position=furnace.position,\n"
    "                                direction=Direction.RIGHT)\ninserter = rotate_entity(inserter, "
    "Direction.LEFT)",
]
_RESOURCES = ["IronOre", "CopperOre", "Coal", "Stone", "CrudeOil", "Water"]


def _code(rng: np.random.Generator, task: str, step: int) -> str:
    item = _item(task)
    fmt = {
        "res": _RESOURCES[int(rng.integers(len(_RESOURCES)))],
        "proto": _proto(item),
        "item": item,
        "n": int(rng.integers(2, 30)),
        "x": int(rng.integers(-40, 40)),
        "y": int(rng.integers(-40, 40)),
    }
    picks = rng.choice(len(_CODE_LINES), size=int(rng.integers(3, 7)), replace=False)
    body = "\n\n".join(_CODE_LINES[i].format(**fmt) for i in picks)
    return f"# Step {step}: work towards automating {item} production\n{body}\n"


def _response(rng: np.random.Generator, task: str, error: bool, value: float) -> str:
    item = _item(task)
    lines = [
        f"{i}: ('{msg}',)"
        for i, msg in enumerate(
            [
                f"Moved to Position(x={int(rng.integers(-50, 50))}, y={int(rng.integers(-50, 50))})",
                f"Placed BurnerMiningDrill at Position(x={int(rng.integers(-50, 50))}.5, y=3.5)",
                f"Inventory: {{'coal': {int(rng.integers(0, 50))}, 'iron-plate': {int(rng.integers(0, 80))}, "
                f"'{item}': {int(rng.integers(0, 20))}}}",
            ]
        )
    ]
    if error:
        lines.append(
            "Error occurred in the following lines:\n  Line 7: insert_item(Prototype.Coal, drill, 5)\n"
            f"AssertionError: ('Could not insert coal into burner-mining-drill: entity too far "
            f"away ({rng.uniform(10, 30):.1f} > 10)',)"
        )
    lines.append(f"Throughput of {item} over the holdout window: {value:.2f} per 60s")
    return "\n".join(lines)


def _achievements(values_so_far: np.ndarray, task: str, rng: np.random.Generator) -> str:
    n = len(values_so_far)
    static = {
        "iron-ore": 20 * n + int(rng.integers(0, 20)),
        "stone-furnace": min(2 + n // 4, 12),
        "burner-mining-drill": min(1 + n // 5, 10),
        "coal": 10 * n,
    }
    produced = int(float(np.sum(values_so_far)))
    dynamic = {_item(task): produced} if produced else {}
    if produced:
        dynamic["iron-plate"] = produced * 2
    return json.dumps({"static": static, "dynamic": dynamic})


def _conversation(code: str, response: str, task: str) -> str:
    """The last exchange only: FLE repeats the whole history, we stay small."""
    return json.dumps(
        {
            "messages": [
                {
                    "role": "system",
                    "content": f"You are an agent playing Factorio. Task: build an automatic "
                    f"{_item(task)} factory meeting the quota.",
                },
                {"role": "assistant", "content": code},
                {"role": "user", "content": response},
            ]
        }
    )


def _state(step: int, rng: np.random.Generator) -> str:
    return json.dumps(
        {
            "tick": 600 * (step + 1),
            "entities": int(2 + step * rng.uniform(0.5, 1.5)),
            "research": {"current": None, "progress": 0.0},
        }
    )


@dataclass
class StepRow:
    """One ``programs`` row (column name → value); ``created_at`` filled at write time."""

    columns: dict[str, object]
    error: bool


def generate_rows(
    model: str,
    task: str,
    *,
    version: int,
    trial: int = 0,
    seed: int = 0,
    instance: int = 0,
    sweep_id: str | None = None,
    steps: int | None = None,
    error_rate: float = DEFAULT_ERROR_RATE,
    quota: float | None = None,
    process_id: int | None = None,
) -> tuple[Outcome, list[StepRow]]:
    """All rows of one trajectory, without touching a database (pure, deterministic).

    ``quota`` is the task's quota (None for open play); ``steps`` defaults to 64
    (lab play) or ``OPEN_PLAY_DEFAULT_STEPS``.
    """
    if steps is None:
        steps = OPEN_PLAY_DEFAULT_STEPS if quota is None else LAB_PLAY_STEPS
    outcome = trajectory_values(model, task, trial, seed, steps, quota)
    text_rng = _rng("text", seed, model, task, trial)
    err_rng = _rng("errors", seed, model, task, trial)
    errors = err_rng.random(steps) < error_rate
    profile = model_profile(model)
    completions = text_rng.normal(profile.completion_mean, profile.completion_mean / 3, steps)
    completions = np.clip(completions, 40, None).astype(int)
    description = f"model:{model}\ntype:{task}\nnum_agents:1"
    rows = []
    for i in range(steps):
        value = float(outcome.values[i])
        code = _code(text_rng, task, i)
        response = _response(text_rng, task, bool(errors[i]), value)
        prompt = min(profile.system_tokens + int(np.sum(completions[:i])) + 450 * i, profile.context_limit)
        meta = {
            "model": model,
            "process_id": process_id,
            "sweep_id": sweep_id,
            "error_occurred": bool(errors[i]),
            "production_score": float(outcome.production_score[i]),
            "simulated": True,
            "task": task,
            "trial": trial,
            "seed": seed,
        }
        cols = {
            "code": code,
            "value": value,
            "visits": 1,
            "parent_id": None,
            "state_json": _state(i, text_rng),
            "conversation_json": _conversation(code, response, task),
            "completion_token_usage": int(completions[i]),
            "prompt_token_usage": prompt,
            "token_usage": prompt + int(completions[i]),
            "response": response,
            "holdout_value": value,
            "raw_reward": None,
            "version": version,
            "version_description": description,
            "model": model,
            "meta": json.dumps(meta),
            "achievements_json": _achievements(outcome.values[: i + 1], task, text_rng),
            "instance": instance,
            "depth": float(i),
            "advantage": None,
            "ticks": 3600 * (i + 1),
            "timing_metrics_json": json.dumps(
                {
                    "llm_s": round(float(text_rng.uniform(2, 25)), 2),
                    "exec_s": round(float(text_rng.uniform(0.2, 8)), 2),
                }
            ),
        }
        rows.append(StepRow(cols, bool(errors[i])))
    return outcome, rows


# ---------------------------------------------------------------------------
# Writing to a source (SQLite file or Postgres)
# ---------------------------------------------------------------------------


def _display(url: str) -> str:
    """The URL for messages: passwords masked (SQLite URLs carry none)."""
    return url if url.startswith("sqlite:") else mask_url(url)


class _Writer:
    """Inserts rows into ``programs`` over one connection, keeping only existing columns."""

    def __init__(self, url: str):
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite:") else "postgres"
        if url.split(":", 1)[0] not in ("sqlite", "postgresql", "postgres"):
            raise ConfigError(
                f"Unsupported source URL scheme in {_display(url)!r}",
                hint="use sqlite:///PATH or postgresql://...",
            )
        self.con = self._connect_sqlite() if self.dialect == "sqlite" else self._connect_pg()

    def _connect_sqlite(self):
        path = sqlite_path(self.url)
        if not path.parent.exists():
            raise SourceUnavailable(f"Folder of SQLite source {path} does not exist")
        con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA busy_timeout = 30000")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute(programs_ddl("sqlite"))
        self.columns = {r[1]: r[2].upper() for r in con.execute("PRAGMA table_info(programs)")}
        return con

    def _connect_pg(self):
        import psycopg

        try:
            con = psycopg.connect(self.url, connect_timeout=10)
        except psycopg.Error as exc:
            raise SourceUnavailable(f"Cannot connect to {_display(self.url)}: {type(exc).__name__}") from None
        for attempt in range(5):  # concurrent simulators may race on CREATE TABLE
            try:
                con.execute(programs_ddl("postgres"))
                con.commit()
                break
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                con.rollback()
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'programs' AND table_schema = current_schema()"
        ).fetchall()
        con.commit()
        self.columns = {name: dtype.upper() for name, dtype in rows}
        return con

    def insert(self, cols: dict[str, object]) -> int:
        """Insert and commit one row; a database error becomes a ``SourceError``."""
        try:
            return self._insert(cols)
        except (sqlite3.Error, *self._pg_errors()) as exc:  # type: ignore[misc]  # mypy#9652: starred exception tuples
            raise SourceError(
                f"Writing a row to {_display(self.url)} failed: "
                f"{type(exc).__name__}: {str(exc).strip()[:200]}"
            ) from None

    def _pg_errors(self) -> tuple[type[BaseException], ...]:
        if self.dialect != "postgres":
            return ()
        import psycopg

        return (psycopg.Error,)

    def _insert(self, cols: dict[str, object]) -> int:
        names = [n for n in cols if n in self.columns]
        values = [self._adapt(n, cols[n]) for n in names]
        if self.dialect == "sqlite":
            sql = (
                f"INSERT INTO programs ({', '.join(names)}) "  # names: fixed column list
                f"VALUES ({', '.join('?' * len(names))})"
            )
            self.con.execute("BEGIN IMMEDIATE")
            try:
                cur = self.con.execute(sql, values)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            return int(cur.lastrowid)
        sql = (
            f"INSERT INTO programs ({', '.join(names)}) "
            f"VALUES ({', '.join(['%s'] * len(names))}) RETURNING id"
        )
        new_id = self.con.execute(sql, values).fetchone()[0]
        self.con.commit()
        return int(new_id)

    def _adapt(self, name: str, value: object) -> object:
        if self.dialect == "postgres" and name == "meta" and self.columns.get(name) == "JSONB":
            from psycopg.types.json import Jsonb

            return Jsonb(json.loads(value)) if isinstance(value, str) else value
        if isinstance(value, datetime) and self.dialect == "sqlite":
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()


@dataclass
class SimResult:
    """What one simulated run did. ``crashed`` runs wrote a partial trajectory."""

    version: int
    rows_written: int
    steps_planned: int
    crashed: bool
    success: bool | None
    best_value: float
    first_success_step: int | None
    row_ids: list[int] = field(default_factory=list)


def crash_point(
    seed: int, model: str, task: str, trial: int, version: int, steps: int, crash_rate: float
) -> int | None:
    """Number of rows written before a simulated crash, or None for no crash.

    Depends on the version too, so a retry (which gets a new version) of a
    crashed trial draws again instead of crashing at the same place forever.
    """
    rng = _rng("crash", seed, model, task, trial, version)
    if crash_rate <= 0 or rng.random() >= crash_rate:
        return None
    return int(rng.integers(1, steps)) if steps > 1 else 1


def simulate_trajectory(
    source_url: str,
    model: str,
    task: str,
    version: int,
    *,
    instance: int = 0,
    trial: int = 0,
    sweep_id: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    step_delay: float = 0.0,
    crash_rate: float = 0.0,
    error_rate: float = DEFAULT_ERROR_RATE,
    registry: TaskRegistry | None = None,
    start_time: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SimResult:
    """Write one simulated trajectory into ``source_url``, committing each step.

    ``start_time`` (for demo data) stamps ``created_at`` on a simulated clock
    (20–90 s per step) instead of the wall clock. A simulated crash returns a
    result with ``crashed=True`` after writing part of the trajectory; the CLI
    turns that into exit code 3.
    """
    _check_rates(crash_rate, error_rate, step_delay, steps)
    registry = registry or TaskRegistry()
    quota = registry.get(normalize_task_key(task)).quota
    outcome, rows = generate_rows(
        model,
        task,
        version=version,
        trial=trial,
        seed=seed,
        instance=instance,
        sweep_id=sweep_id,
        steps=steps,
        error_rate=error_rate,
        quota=quota,
        process_id=os.getpid(),
    )
    stop = crash_point(seed, model, task, trial, version, len(rows), crash_rate)
    clock = _clock(start_time, _rng("clock", seed, model, task, trial))
    writer = _Writer(source_url)
    ids: list[int] = []
    try:
        for i, row in enumerate(rows):
            if stop is not None and i >= stop:
                break
            cols = dict(row.columns, parent_id=ids[-1] if ids else None, created_at=next(clock))
            ids.append(writer.insert(cols))
            if step_delay > 0 and i < len(rows) - 1:
                sleep(step_delay)
    finally:
        writer.close()
    written = outcome.values[: len(ids)]
    return SimResult(
        version,
        len(ids),
        len(rows),
        stop is not None,
        outcome.success,
        float(np.max(written)) if len(written) else float("nan"),
        outcome.first_success_step,
        ids,
    )


def _clock(start: datetime | None, rng: np.random.Generator) -> Iterator[datetime]:
    """UTC timestamps (naive, like FLE's CURRENT_TIMESTAMP): wall clock or simulated."""
    t = start.astimezone(UTC).replace(tzinfo=None) if start and start.tzinfo else start
    while True:
        if t is None:
            yield datetime.now(UTC).replace(tzinfo=None)
        else:
            yield t
            t = t + timedelta(seconds=float(rng.uniform(20, 90)))


def _check_rates(crash_rate: float, error_rate: float, step_delay: float, steps: int | None) -> None:
    for name, rate in (("crash rate", crash_rate), ("error rate", error_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"The {name} must be between 0 and 1, got {rate}")
    if step_delay < 0:
        raise ConfigError(f"The step delay must be >= 0 seconds, got {step_delay}")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def _env(name: str, *alts: str) -> str | None:
    for key in (name, *alts):
        if os.environ.get(key):
            return os.environ[key]
    return None


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m fle_core.sweeps.simulate`` flags; each defaults to its FLE_* variable."""
    p = argparse.ArgumentParser(
        prog="python -m fle_core.sweeps.simulate",
        description="SIMULATED FLE agent: writes realistic programs rows (meta.simulated=true).",
    )
    p.add_argument(
        "--source",
        default=_env("FLE_SOURCE_URL", "FLE_SOURCE"),
        help="sqlite:///PATH or postgresql://... [FLE_SOURCE_URL]",
    )
    p.add_argument("--model", default=_env("FLE_MODEL"), help="model name [FLE_MODEL]")
    p.add_argument("--task", default=_env("FLE_TASK"), help="task key [FLE_TASK]")
    p.add_argument("--version", type=int, default=_env("FLE_VERSION"), help="[FLE_VERSION]")
    p.add_argument("--instance", type=int, default=int(_env("FLE_INSTANCE") or 0))
    p.add_argument("--trial", type=int, default=int(_env("FLE_TRIAL") or 0))
    p.add_argument("--sweep-id", default=_env("FLE_SWEEP_ID"))
    p.add_argument("--seed", type=int, default=int(_env("FLE_SEED") or 0))
    p.add_argument(
        "--steps",
        type=int,
        default=_int_or_none(_env("FLE_STEPS")),
        help="trajectory length (default 64 lab play, 200 open play)",
    )
    p.add_argument(
        "--step-delay",
        type=float,
        default=float(_env("FLE_STEP_DELAY") or 0.0),
        help="seconds to sleep between steps",
    )
    p.add_argument(
        "--crash-rate",
        type=float,
        default=float(_env("FLE_CRASH_RATE") or 0.0),
        help="probability that the run crashes mid-trajectory",
    )
    p.add_argument(
        "--error-rate",
        type=float,
        default=float(_env("FLE_ERROR_RATE") or DEFAULT_ERROR_RATE),
        help="probability that a step is an error step (meta.error_occurred)",
    )
    return p


def _int_or_none(text: str | None) -> int | None:
    return None if text in (None, "") else int(text)


def _registry() -> TaskRegistry:
    """The workspace's registry (custom tasks, quota overrides) when one is set."""
    home = os.environ.get(ENV_HOME)
    if home and os.path.isdir(home):
        return Workspace.open(home, create=False).task_registry()
    return TaskRegistry()


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ValueError as exc:  # a malformed FLE_* default
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    missing = [f for f in ("source", "model", "task", "version") if getattr(args, f) in (None, "")]
    if missing:
        print(f"error: missing {', '.join('--' + m for m in missing)} (or FLE_* variables)", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = simulate_trajectory(
            args.source,
            args.model,
            args.task,
            int(args.version),
            instance=args.instance,
            trial=args.trial,
            sweep_id=args.sweep_id,
            seed=args.seed,
            steps=args.steps,
            step_delay=args.step_delay,
            crash_rate=args.crash_rate,
            error_rate=args.error_rate,
            registry=_registry(),
        )
    except FleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if result.crashed:
        print(
            f"simulated crash after {result.rows_written}/{result.steps_planned} steps "
            f"(version {result.version})",
            file=sys.stderr,
        )
        return EXIT_CRASH
    print(
        f"simulated trajectory complete: version {result.version}, {result.rows_written} steps, "
        f"success={result.success}, best={result.best_value:.2f}"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
