"""The local DuckDB warehouse: its file, the sync that fills it, and what it holds.

* ``store``: schema, the single writer (``writer`` / ``write_lock`` +
  ``rw_connection``), read-only ``reader`` / ``query``, ``data_version``;
  re-exported here, so ``from fle_core import warehouse; warehouse.query(...)``;
* ``sync``: incremental, batch-atomic sync of sources into the warehouse;
* ``_stream``: how sync reads a source (parallel id-range chunks, in order);
* ``_runs``: sync runs, a ``--full`` rebuild beside the old rows and its swap;
* ``_poison``: rows that must not stop a source (repair + flag, quarantine);
* ``catalog``: read-only questions about what the warehouse holds.
"""

from fle_core.warehouse.store import (
    DDL,
    SCHEMA_VERSION,
    data_version,
    ensure_schema,
    last_sync_id,
    query,
    reader,
    rollback,
    rw_connection,
    set_data_version,
    table_ddl,
    translate_io_errors,
    write_lock,
    writer,
)

__all__ = [
    "DDL",
    "SCHEMA_VERSION",
    "data_version",
    "ensure_schema",
    "last_sync_id",
    "query",
    "reader",
    "rollback",
    "rw_connection",
    "set_data_version",
    "table_ddl",
    "translate_io_errors",
    "write_lock",
    "writer",
]
