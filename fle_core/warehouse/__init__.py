"""The local DuckDB warehouse: its file, the sync that fills it, and what it holds.

* ``store``: schema, the single writer (``writer`` / ``write_lock`` +
  ``rw_connection``), ``transaction``, read-only ``reader`` / ``query``,
  ``data_version``; re-exported here, so ``from fle_core import warehouse; warehouse.query(...)``;
* ``sync``: the dispatcher (which syncer a source's kind gets: ``syncers``), one run's
  skeleton; ``programs_sync`` and ``inspect_sync`` the two pipelines, sharing
  ``_writing`` (options, session, batch context);
* ``inspect_rows``: an Inspect sample as warehouse rows;
* ``identity``: one location, one source (names are labels; relabel, relocate, remove);
* ``_stream``: how sync reads a ``programs`` table (parallel id-range chunks, in order);
* ``_runs``: the one writer of ``sync_runs`` and ``sync_notes``; a ``--full`` rebuild
  beside the old rows and its swap;
* ``_poison``: rows that must not stop a source (repair + flag, quarantine);
* ``demo``: removing the simulated demo data;
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
