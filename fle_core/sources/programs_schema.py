"""FLE's ``programs`` table as it occurs in the wild, for fixtures and the simulator.

This is FLE's schema, not ours: the workbench only reads it (and the simulate
executor writes it, to behave like a real FLE agent). Tests, benchmarks and the
simulator create source databases through ``create_programs_table`` so that all
of them exercise the same variants.
"""

from __future__ import annotations

from typing import Literal

#: URL scheme → the SQL dialect of a database holding a ``programs`` table.
DIALECTS: dict[str, str] = {"sqlite": "sqlite", "postgresql": "postgres", "postgres": "postgres"}

# (name, sqlite type, postgres type). Order follows FLE 0.4.x.
PROGRAMS_COLUMNS: list[tuple[str, str, str]] = [
    ("id", "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"),
    ("code", "TEXT", "TEXT"),
    ("value", "REAL", "DOUBLE PRECISION"),
    ("visits", "INTEGER", "INTEGER"),
    ("parent_id", "INTEGER", "BIGINT"),
    ("state_json", "TEXT", "TEXT"),
    ("conversation_json", "TEXT", "TEXT"),
    ("completion_token_usage", "INTEGER", "INTEGER"),
    ("prompt_token_usage", "INTEGER", "INTEGER"),
    ("token_usage", "INTEGER", "INTEGER"),
    ("response", "TEXT", "TEXT"),
    ("holdout_value", "REAL", "DOUBLE PRECISION"),
    ("raw_reward", "REAL", "DOUBLE PRECISION"),
    ("version", "INTEGER", "INTEGER"),
    ("version_description", "TEXT", "TEXT"),
    ("model", "TEXT", "TEXT"),
    ("meta", "TEXT", "TEXT"),
    ("achievements_json", "TEXT", "TEXT"),
    ("instance", "INTEGER DEFAULT -1", "INTEGER DEFAULT -1"),
    ("depth", "REAL", "DOUBLE PRECISION"),
    ("advantage", "REAL", "DOUBLE PRECISION"),
    ("ticks", "INTEGER", "INTEGER"),
    ("created_at", "TIMESTAMP DEFAULT CURRENT_TIMESTAMP", "TIMESTAMP DEFAULT CURRENT_TIMESTAMP"),
    ("timing_metrics_json", "TEXT", "TEXT"),
]

# Columns absent from older FLE databases (pre-0.4 dumps seen in the wild).
OLD_MISSING = {
    "timing_metrics_json",
    "holdout_value",
    "raw_reward",
    "ticks",
    "achievements_json",
    "advantage",
    "completion_token_usage",
    "prompt_token_usage",
}

# Columns the workbench cannot work without.
REQUIRED_COLUMNS = {"id", "value", "version", "depth"}

Variant = Literal["current", "old"]


def programs_ddl(
    dialect: Literal["sqlite", "postgres"], variant: Variant = "current", meta_jsonb: bool = False
) -> str:
    """``CREATE TABLE programs`` for a dialect and schema variant."""
    cols = []
    for name, sqlite_t, pg_t in PROGRAMS_COLUMNS:
        if variant == "old" and name in OLD_MISSING:
            continue
        ctype = sqlite_t if dialect == "sqlite" else pg_t
        if name == "meta" and dialect == "postgres" and meta_jsonb:
            ctype = "JSONB"
        cols.append(f"{name} {ctype}")
    return f"CREATE TABLE IF NOT EXISTS programs ({', '.join(cols)})"


def insertable_columns(variant: Variant = "current") -> list[str]:
    return [n for n, _, _ in PROGRAMS_COLUMNS if n != "id" and not (variant == "old" and n in OLD_MISSING)]
