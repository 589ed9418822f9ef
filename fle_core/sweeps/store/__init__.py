"""The durable sweep control store: records, the contract, SQLite and Postgres backends.

* ``records``: the records (pydantic, ``Literal`` statuses), one per table row;
* ``base``: the schema and its migrations, the ``ControlStore`` contract and
  ``SqlControlStore``, which implements it once in portable SQL;
* ``sqlite``: the embedded store (``control.db``, WAL, ``BEGIN IMMEDIATE``);
* ``postgres``: the shared store for several hosts (``FOR UPDATE SKIP LOCKED``).

``open_store(ws)`` picks the backend from the workspace's ``[control]`` table.
"""

from __future__ import annotations

from fle_core.errors import ConfigError
from fle_core.sweeps.store.base import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ControlStore,
    SqlControlStore,
    cell_id_for,
)
from fle_core.sweeps.store.records import (
    MAX_LOST,
    TERMINAL_CELL,
    AttemptRecord,
    CellRecord,
    Claim,
    Finish,
    PilotSubmission,
    RunnerRecord,
    SweepRecord,
)
from fle_core.sweeps.store.sqlite import SqliteControlStore
from fle_core.workspace import SourceSpec, Workspace

__all__ = [
    "MAX_LOST",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TERMINAL_CELL",
    "AttemptRecord",
    "CellRecord",
    "Claim",
    "ControlStore",
    "Finish",
    "PilotSubmission",
    "RunnerRecord",
    "SqlControlStore",
    "SqliteControlStore",
    "SweepRecord",
    "cell_id_for",
    "open_store",
]


def open_store(ws: Workspace) -> ControlStore:
    """The workspace's control store: ``[control]`` Postgres if configured, else SQLite.

    ``[control]`` takes ``url`` (secret-free), ``password_env`` or ``url_env``, like a source."""
    ctl = ws.section("control")
    if ctl.get("url") or ctl.get("url_env"):
        from fle_core.sweeps.store.postgres import PostgresControlStore

        spec = SourceSpec(
            "control", str(ctl.get("url", "")), ctl.get("url_env"), ctl.get("password_env"), ws.secrets
        )
        scheme = spec.scheme()
        if scheme not in ("postgresql", "postgres"):
            raise ConfigError(
                f"[control] url in {ws.config_path} has the scheme {scheme!r}; the shared control "
                "store must be Postgres",
                hint="use postgresql://USER@HOST:PORT/DB, or remove [control] to use the embedded "
                "SQLite store (control.db)",
            )
        return PostgresControlStore(spec.resolved_url())
    return SqliteControlStore(ws.control_path, read_only=ws.read_only)
