"""Build FLE source databases (SQLite files, Postgres databases) with realistic rows.

Shared by the sync tests, other engineers' tests and ``bench/sync.py``. Rows are
deterministic for a given seed and look like FLE 0.4.x output:

* one trajectory = one ``(version, instance)``; up to 64 steps, ``depth`` 0..n-1
  (or fractional ``(len(messages)-2)/2`` in the ``fractional_depth`` variant);
* ``version_description`` in FLE's ``"model:M\\ntype:TASK\\nnum_agents:N"`` form;
* ``meta`` JSON with ``model``, ``process_id``, ``sweep_id``, ``error_occurred``
  and, for open play, ``production_score``;
* ``achievements_json``, token counts, ``created_at`` increasing per step;
* ``code`` / ``response`` / ``conversation_json`` / ``state_json`` texts whose size
  is set by ``text_kb`` (conversation grows with depth, as FLE's does).

``anomalous_rows()`` returns hand-made rows of the kinds seen in the wild
(malformed meta, unparseable description, NULLs everywhere, gym ids ...).
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fle_core.sources.programs_schema import OLD_MISSING, insertable_columns, programs_ddl

MODELS = ["gpt-4o", "claude-3-5-sonnet", "deepseek-v3", "gemini-2", "llama-3.3-70b", "gpt-4o-mini"]
TASKS = [
    "iron_ore_throughput",
    "iron_plate_throughput",
    "electronic_circuit_throughput",
    "crude_oil_throughput",
    "automation_science_pack_throughput",
    "open_play",
]
_T0 = datetime(2025, 3, 1, 12, 0, 0)


@dataclass(frozen=True)
class Variant:
    """A source schema variant: which FLE shape to create."""

    schema: str = "current"  # "current" | "old" (optional columns missing)
    meta_jsonb: bool = False  # Postgres only: meta stored as jsonb
    fractional_depth: bool = False  # depth = (len(messages) - 2) / 2 with odd message counts


def _text(rng: random.Random, n_chars: int, words: list[str]) -> str:
    out: list[str] = []
    size = 0
    while size < n_chars:
        w = words[rng.randrange(len(words))]
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n_chars]


_WORDS = [
    "place_entity",
    "Prototype.BurnerMiningDrill",
    "Position(x=12.5, y=-3.5)",
    "iron-ore",
    "inspect_inventory()",
    "print(",
    "craft_item",
    "harvest_resource",
    "nearest(Resource.IronOre)",
    "connect_entities",
    "Direction.UP",
    "assert",
    "sleep(10)",
    "electricity",
    "chest",
]


def make_rows(
    n_trajectories: int = 20,
    *,
    seed: int = 0,
    max_steps: int = 64,
    first_version: int = 1,
    models: list[str] | None = None,
    tasks: list[str] | None = None,
    text_kb: float = 0.5,
    variant: Variant = Variant(),
    sweep_id: str | None = "sweep-demo",
) -> list[dict]:
    """Rows for ``n_trajectories`` trajectories (versions ``first_version``..).

    Every 7th version has two instances (a two-agent run). Step counts vary in
    ``[1, max_steps]``. Returns dicts keyed by ``programs`` column (no ``id``).
    """
    rng = random.Random(seed)
    models = models or MODELS
    tasks = tasks or TASKS
    rows: list[dict] = []
    for t in range(n_trajectories):
        version = first_version + t
        model = models[t % len(models)]
        task = tasks[(t // len(models)) % len(tasks)]
        agents = 2 if version % 7 == 0 else 1
        skill = 0.3 + 0.7 * (1 - models.index(model) / max(1, len(models))) if model in models else 0.5
        for instance in range(agents):
            rows.extend(
                _trajectory(
                    rng, version, instance, agents, model, task, skill, max_steps, text_kb, variant, sweep_id
                )
            )
    return rows


def _trajectory(
    rng, version, instance, agents, model, task, skill, max_steps, text_kb, variant, sweep_id
) -> list[dict]:
    steps = rng.randint(1, max_steps)
    quota = 250.0 if task.startswith(("crude_oil", "petroleum", "sufuric")) else 16.0
    pid = f"{rng.randrange(10_000, 99_999)}"
    start = _T0 + timedelta(minutes=version * 97 + instance)
    value = 0.0
    out = []
    for d in range(steps):
        value = max(0.0, value + rng.gauss(skill * quota / 20, quota / 25))
        err = rng.random() < 0.05
        meta = {
            "model": model,
            "process_id": pid,
            "sweep_id": sweep_id,
            "error_occurred": err,
            "version": version,
            "instance": instance,
        }
        if task == "open_play":
            meta["production_score"] = round(value * 37.5, 3)
        depth = d + (0.5 if variant.fractional_depth and d % 2 else 0.0)
        conv_chars = int(text_kb * 1024 * (0.25 + 1.5 * d / max(1, max_steps)))
        prompt = rng.randint(1_500, 6_000) + 400 * d
        completion = rng.randint(100, 900)
        out.append(
            {
                "code": _text(rng, int(text_kb * 300), _WORDS),
                "value": round(value, 4),
                "visits": 0,
                "parent_id": None,
                "state_json": _text(rng, int(text_kb * 512), _WORDS),
                "conversation_json": json.dumps(
                    [{"role": "assistant", "content": _text(rng, conv_chars, _WORDS)}]
                ),
                "completion_token_usage": completion,
                "prompt_token_usage": prompt,
                "token_usage": prompt + completion,
                "response": _text(rng, int(text_kb * 200), _WORDS),
                "holdout_value": round(value * 0.97, 4),
                "raw_reward": None if d % 3 else round(value, 4),
                "version": version,
                "version_description": f"model:{model}\ntype:{task}\nnum_agents:{agents}",
                "model": model,
                "meta": json.dumps(meta),
                "achievements_json": json.dumps(
                    {"static": {"iron-ore": 10 * d}, "dynamic": {"iron-plate": d}}
                ),
                "instance": instance,
                "depth": depth,
                "advantage": None,
                "ticks": 3600 * (d + 1),
                "created_at": (start + timedelta(seconds=20 * d)).strftime("%Y-%m-%d %H:%M:%S"),
                "timing_metrics_json": None
                if d % 2
                else json.dumps({"step_s": round(rng.uniform(2, 30), 2)}),
            }
        )
    return out


def anomalous_rows(first_version: int = 9000) -> list[dict]:
    """Rows as found in old/odd data. Each dict has a ``_why`` key (not a column)."""
    v = first_version
    base = {
        "value": 1.0,
        "depth": 0.0,
        "instance": 0,
        "model": None,
        "code": "print(1)",
        "created_at": "2025-01-01 00:00:00",
    }
    return [
        {
            **base,
            "_why": "malformed_meta",
            "version": v,
            "meta": "{not json",
            "version_description": "model:gpt-4o\ntype:iron_ore_throughput\nnum_agents:1",
        },
        {
            **base,
            "_why": "meta_not_object",
            "version": v + 1,
            "meta": "[1, 2]",
            "version_description": "model:gpt-4o\ntype:iron_plate_throughput\nnum_agents:1",
        },
        {
            **base,
            "_why": "unparsed_description",
            "version": v + 2,
            "version_description": "a free-form note",
            "meta": json.dumps({"model": "claude-3-5-sonnet", "error_occurred": False}),
        },
        {
            **base,
            "_why": "task_from_meta_gym_id",
            "version": v + 3,
            "version_description": "old run",
            "meta": json.dumps(
                {
                    "model": "gemini-2",
                    "env_id": "Factorio-steel_plate_throughput_16-v0",
                    "error_occurred": 1,
                    "sweep_id": "s-old",
                }
            ),
        },
        {
            "_why": "nulls_everywhere",
            "version": v + 4,
            "value": None,
            "depth": None,
            "instance": None,
            "model": None,
            "meta": None,
            "version_description": None,
            "created_at": None,
            "code": None,
        },
        {
            **base,
            "_why": "legacy_description",
            "version": v + 5,
            "meta": "",
            "version_description": "model=llama-3.3-70b; task=Factorio-iron_gear_wheel_throughput_16-v0",
        },
        {
            **base,
            "_why": "open_play_score",
            "version": v + 6,
            "version_description": "model:gpt-4o\ntype:open_play\nnum_agents:1",
            "meta": json.dumps({"model": "gpt-4o", "production_score": "123.5", "simulated": True}),
        },
        {
            **base,
            "_why": "null_version",
            "version": None,
            "version_description": "model:gpt-4o\ntype:iron_ore_throughput\nnum_agents:1",
            "meta": "{}",
        },
    ]


def _columns(variant: Variant) -> list[str]:
    return insertable_columns("old" if variant.schema == "old" else "current")


def _row_values(rows: list[dict], cols: list[str]) -> list[tuple]:
    return [tuple(r.get(c) for c in cols) for r in rows]


# ---------------------------------------------------------------- SQLite
def create_sqlite(path: Path | str, rows: list[dict] | None = None, variant: Variant = Variant()) -> str:
    """Create (or extend) an FLE SQLite DB at ``path``; returns its ``sqlite:///`` URL."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.execute(programs_ddl("sqlite", "old" if variant.schema == "old" else "current"))
    if rows:
        insert_sqlite(path, rows, variant)
    return f"sqlite:///{path.resolve()}"


def insert_sqlite(
    path: Path | str, rows: list[dict], variant: Variant = Variant(), chunk: int = 20_000
) -> None:
    cols = _columns(variant)
    sql = f"INSERT INTO programs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    con = sqlite3.connect(path)
    try:
        for i in range(0, len(rows), chunk):
            con.executemany(sql, _row_values(rows[i : i + chunk], cols))
            con.commit()
    finally:
        con.close()


# ---------------------------------------------------------------- Postgres
def create_postgres(url: str, rows: list[dict] | None = None, variant: Variant = Variant()) -> str:
    """Create ``programs`` in the database at ``url`` and load ``rows`` (COPY)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute(
            programs_ddl(
                "postgres", "old" if variant.schema == "old" else "current", meta_jsonb=variant.meta_jsonb
            )
        )
    if rows:
        insert_postgres(url, rows, variant)
    return url


def insert_postgres(url: str, rows: list[dict], variant: Variant = Variant()) -> None:
    """COPY rows in. With jsonb meta, non-JSON meta cannot exist and is loaded as NULL."""
    import psycopg

    cols = _columns(variant)
    with psycopg.connect(url) as con, con.cursor() as cur:
        with cur.copy(f"COPY programs ({', '.join(cols)}) FROM STDIN") as cp:
            for r in rows:
                vals = [r.get(c) for c in cols]
                if variant.meta_jsonb:
                    vals[cols.index("meta")] = _jsonb_or_none(r.get("meta"))
                cp.write_row(vals)
        con.commit()


def _jsonb_or_none(meta):
    if meta is None:
        return None
    try:
        json.loads(meta)
        return meta
    except (TypeError, ValueError):
        return None


def source_ids(url: str) -> list[int]:
    """All ``programs.id`` of a source, sorted (for no-gap / no-dup checks)."""
    if url.startswith("sqlite:///"):
        from fle_core.workspace import sqlite_path

        with sqlite3.connect(sqlite_path(url)) as con:
            return [r[0] for r in con.execute("SELECT id FROM programs ORDER BY id")]
    import psycopg

    with psycopg.connect(url) as con:
        return [r[0] for r in con.execute("SELECT id FROM programs ORDER BY id")]


def strip_for_variant(rows: list[dict], variant: Variant) -> list[dict]:
    """Drop columns an old schema lacks (so expectations match what was stored)."""
    if variant.schema != "old":
        return rows
    return [{k: v for k, v in r.items() if k not in OLD_MISSING} for r in rows]


def source_rows(url: str) -> list[dict]:
    """Every ``programs`` row of a source as a dict (heavy text columns left out)."""
    heavy = {"conversation_json", "state_json"}
    if url.startswith("sqlite:///"):
        from fle_core.workspace import sqlite_path

        with sqlite3.connect(sqlite_path(url)) as con:
            con.row_factory = sqlite3.Row
            rows = [dict(r) for r in con.execute("SELECT * FROM programs ORDER BY id")]
    else:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(url, row_factory=dict_row) as con:
            rows = list(con.execute("SELECT * FROM programs ORDER BY id"))
    return [{k: v for k, v in r.items() if k not in heavy} for r in rows]


def expected_derived(r: dict) -> dict:
    """What sync must derive for one source row, computed independently in Python."""
    from fle_core.tasks import parse_meta, parse_version_description

    desc = parse_version_description(r.get("version_description"))
    meta = parse_meta(r.get("meta"))
    task = desc.task if desc.parsed else (meta.task or None)  # "" counts as no task
    flags = [
        f
        for f, bad in (
            ("unparsed_task", task is None),
            ("malformed_meta", not meta.ok),
            ("missing_version", r.get("version") is None),
        )
        if bad
    ]
    return {
        "model": r.get("model") or meta.model or desc.model,
        "task": task,
        "num_agents": desc.num_agents,
        "sweep_id": meta.sweep_id,
        "error_occurred": meta.error_occurred,
        "production_score": meta.production_score,
        "simulated": meta.simulated,
        "parse_flags": ",".join(flags) or None,
        "instance": -1 if r.get("instance") is None else r["instance"],
    }


def insert_rows(url: str, rows: list[dict], variant: Variant = Variant()) -> None:
    """Append rows to an existing source of either kind."""
    if url.startswith("sqlite:///"):
        from fle_core.workspace import sqlite_path

        insert_sqlite(sqlite_path(url), rows, variant)
    else:
        insert_postgres(url, rows, variant)
