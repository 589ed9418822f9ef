"""Rows that must not stop a source: repair what can be repaired, flag it, quarantine the rest.

A source of 2,000 good rows and one bad one must sync the 2,000. Two layers:

* ``clean(table)`` repairs the bad values seen in the wild before a batch reaches
  DuckDB, and records what it did per row in a ``_flags`` column (sync appends it
  to ``parse_flags``): invalid UTF-8 (TEXT or BLOB) is decoded with U+FFFD
  replacement (``invalid_utf8``); a text value over ``MAX_TEXT_BYTES`` is cut
  there (``text_truncated``: a 50 MB ``meta`` would exhaust the writer's memory);
  a token count outside ``±TOKEN_LIMIT`` becomes NULL (``token_overflow``: two
  int64-max counts overflow the trajectory's sum).
* ``DATA_ERRORS`` are the errors a batch can raise because of what one row holds.
  Sync then writes the batch in halves, and a single row that still fails is
  *quarantined*: a placeholder row with its id, no values and the flag
  ``quarantined:<reason>``, so it is listed with the flagged rows and never read
  again. Running out of memory only splits batches: one cleaned row (at most a
  few MB) cannot exhaust the writer, so that error is the machine's, and so is
  any I/O error (a full disk). At most ``MAX_QUARANTINED`` rows per run: beyond
  that the error is not about rows, and sync stops with it.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

MAX_TEXT_BYTES = 1 << 20  # FLE's meta / descriptions are < 1 KB; code and responses < 200 KB
TOKEN_LIMIT = 2**31 - 1  # no step uses 2 billion tokens; sums of ~4e9 such steps still fit int64
TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "total_tokens")
MAX_QUARANTINED = 100

DATA_ERRORS: tuple[type[BaseException], ...] = (
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.OutOfMemoryException,
    UnicodeError,
)


def clean(table: pa.Table) -> pa.Table:
    """``table`` with bad values repaired and a ``_flags`` column (null when clean)."""
    n = table.num_rows
    flags: list[list[str] | None] = [None] * n
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = _clean_text(col, flags)
        elif name in TOKEN_COLUMNS and pa.types.is_integer(col.type):
            col = _clean_tokens(col, flags)
        columns[name] = col
    marks = [",".join(dict.fromkeys(f)) if f else None for f in flags] if any(flags) else None
    out = pa.table(columns)
    return out.append_column("_flags", pa.array(marks, pa.string()) if marks else pa.nulls(n, pa.string()))


def _flag(flags: list[list[str] | None], rows, name: str) -> None:
    for i in rows:
        marks = flags[i]
        if marks is None:
            marks = flags[i] = []
        marks.append(name)


def _clean_text(col: pa.ChunkedArray, flags: list[list[str] | None]) -> pa.ChunkedArray:
    try:
        col.validate(full=True)  # UTF-8 check: vectorized, cheap next to the read
    except pa.ArrowInvalid:
        values = col.cast(pa.binary()).to_pylist()
        bad = []
        for i, v in enumerate(values):
            if v is None:
                continue
            try:
                values[i] = v.decode("utf-8")
            except UnicodeDecodeError:
                values[i] = v.decode("utf-8", errors="replace")
                bad.append(i)
        _flag(flags, bad, "invalid_utf8")
        col = pa.chunked_array([pa.array(values, pa.string())])
    # Only array-to-array compute and ``as_py()`` on the clean path: any Python value passed
    # into pyarrow.compute imports pandas (~2 s, once per process).
    longest = pc.max(pc.binary_length(col)).as_py()
    if longest is None or longest <= MAX_TEXT_BYTES:
        return col
    values = col.to_pylist()
    long_rows = [i for i, v in enumerate(values) if v is not None and len(v.encode()) > MAX_TEXT_BYTES]
    for i in long_rows:
        values[i] = values[i].encode()[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore")
    _flag(flags, long_rows, "text_truncated")
    return pa.chunked_array([pa.array(values, pa.string())])


def _clean_tokens(col: pa.ChunkedArray, flags: list[list[str] | None]) -> pa.ChunkedArray:
    bounds = pc.min_max(col).as_py()
    if bounds["min"] is None or (bounds["min"] >= -TOKEN_LIMIT and bounds["max"] <= TOKEN_LIMIT):
        return col
    values = col.to_pylist()
    over = [i for i, v in enumerate(values) if v is not None and abs(v) > TOKEN_LIMIT]
    _flag(flags, over, "token_overflow")
    for i in over:
        values[i] = None
    return pa.chunked_array([pa.array(values, col.type)])


def quarantinable(exc: BaseException) -> bool:
    """Whether one row alone can cause ``exc`` (memory and I/O errors are the machine's)."""
    return isinstance(exc, DATA_ERRORS) and not isinstance(exc, duckdb.OutOfMemoryException)


def reason(exc: BaseException) -> str:
    """A short, stable reason for a quarantine flag (the full message goes to the log)."""
    if isinstance(exc, (UnicodeError, duckdb.InvalidInputException)):
        return "invalid_value"
    return "unconvertible_value"
