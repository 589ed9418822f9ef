"""Read FLE ``programs`` tables (SQLite or Postgres) as lean Arrow batches.

The source database is FLE's system of record; we only ever ``SELECT`` from it.
Both kinds are read through ADBC's low-level API, which hands back Arrow record
batches that DuckDB ingests without a per-row Python hop.

The ``programs`` table occurs in several shapes (see ``programs_schema.py``): optional
columns missing, ``meta`` as TEXT or jsonb, fractional or text-typed numbers and
NULLs anywhere. ``lean_select`` builds one SELECT of ``LEAN_COLUMNS`` (never
``conversation_json`` / ``state_json``) with ``NULL`` for missing optional columns.

* Postgres: columns whose type does not fit are cast in SQL. The query has no
  bind parameters, because ADBC only streams a result through ``COPY`` (in ~4 MB
  batches) when it has none; the id bounds travel in session settings set by a
  parameterized ``set_config``.
* SQLite has no column types, and ADBC's driver infers a batch's Arrow types from
  the values it sees first (an all-NULL start makes a REAL column "int64" and the
  next real value then fails). A typed *sentinel row* (``_s = 1``) comes first
  via ``UNION ALL`` to pin the types; readers drop it. Columns are read bare
  (fast); a batch whose types still differ (text in a REAL column, a BLOB) raises
  ``SourceError`` and sync re-reads with ``robust=True`` (per-value conversion).
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pyarrow as pa

from fle_core.errors import ConfigError, SchemaError, SourceError, SourceUnavailable
from fle_core.sources.programs_schema import DIALECTS, REQUIRED_COLUMNS
from fle_core.workspace import SourceSpec, sqlite_path

if TYPE_CHECKING:
    import polars as pl

# Lean column name -> (programs column, logical type). Order is the batch schema.
# Types: "int" (BIGINT), "real" (DOUBLE), "text", "ts" (timestamp, or text for SQLite).
LEAN_COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("id", "int"),
    "version": ("version", "int"),
    "instance": ("instance", "int"),
    "depth": ("depth", "real"),
    "value": ("value", "real"),
    "holdout_value": ("holdout_value", "real"),
    "raw_reward": ("raw_reward", "real"),
    "model": ("model", "text"),
    "prompt_tokens": ("prompt_token_usage", "int"),
    "completion_tokens": ("completion_token_usage", "int"),
    "total_tokens": ("token_usage", "int"),
    "ticks": ("ticks", "int"),
    "created_at": ("created_at", "ts"),
    "version_description": ("version_description", "text"),
    "meta": ("meta", "text"),
    "achievements_json": ("achievements_json", "text"),
    "timing_metrics_json": ("timing_metrics_json", "text"),
}
CODE_COLUMNS: dict[str, tuple[str, str]] = {"code": ("code", "text"), "response": ("response", "text")}

DETAIL_TEXT_CHARS = 20_000  # conversation_json is cut to this many characters on demand
_CONNECT_TIMEOUT_S = 10
_PG_BATCH_BYTES = 16 * 1024 * 1024  # fewer, larger COPY batches: ~10% less client CPU than 4 MB
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PG_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")
_SQLITE_BUSY_TIMEOUT_MS = 10_000  # wait out a rollback-journal writer instead of "database is locked"


def dialect_of(spec: SourceSpec) -> str:
    """``sqlite`` or ``postgres`` by the URL's scheme (``ConfigError`` otherwise)."""
    scheme = spec.scheme()
    if scheme not in DIALECTS:
        raise ConfigError(
            f"Source {spec.name!r} has an unsupported URL scheme {scheme!r}",
            hint="use sqlite:///PATH, postgresql://..., or a folder / s3:// URL of Inspect logs",
        )
    return DIALECTS[scheme]


@dataclass
class SourceConn:
    """An open ADBC connection to one source.

    Uses ADBC's low-level API (not its DB-API module, whose import pulls in
    ``pyarrow.dataset`` and pandas and costs seconds of CLI start-up).
    """

    spec: SourceSpec
    dialect: str  # "sqlite" | "postgres": the SQL differences below are the dialect's
    database: Any  # adbc_driver_manager.AdbcDatabase (untyped; imported lazily)
    connection: Any  # adbc_driver_manager.AdbcConnection

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def arrow(self, sql: str, params: list | None = None) -> pa.Table:
        """Run one parameterized query (``?`` placeholders) and return an Arrow table."""
        with self._statement(sql, params) as reader:
            return reader.read_all()

    def scalar(self, sql: str, params: list | None = None):
        tbl = self.arrow(sql, params)
        return tbl.column(0)[0].as_py() if tbl.num_rows else None

    def stream(self, sql: str, params: list | None = None) -> Iterator[pa.RecordBatch]:
        """Yield record batches of a query as the driver produces them (bounded memory)."""
        with self._statement(sql, params, batch_rows=8192) as reader:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (OSError, pa.ArrowException) as exc:
                    raise SourceError(
                        f"Reading source {self.spec.name!r} failed: {scrub(str(exc), self.spec)}"
                    ) from None
                yield batch

    @contextlib.contextmanager
    def _statement(self, sql: str, params: list | None, batch_rows: int | None = None):
        import adbc_driver_manager as adbc

        stmt = adbc.AdbcStatement(self.connection)
        try:
            try:
                stmt.set_sql_query(self._placeholders(sql))
                if batch_rows and self.is_sqlite:
                    stmt.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
                elif batch_rows:  # Postgres: bound the driver's batches by bytes (memory)
                    stmt.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(_PG_BATCH_BYTES)})
                if params:
                    stmt.bind(_param_batch(params))
                handle, _ = stmt.execute_query()
                reader = pa.RecordBatchReader._import_from_c(handle.address)
            except adbc.Error as exc:
                raise SourceError(
                    f"Query on source {self.spec.name!r} ({self.spec.display_url()}) "
                    f"failed: {scrub(str(exc), self.spec)}"
                ) from None
            yield reader
        finally:
            stmt.close()

    def close(self) -> None:
        self.connection.close()
        self.database.close()

    def _placeholders(self, sql: str) -> str:
        """Postgres: ``?`` → ``$1, $2, …``, leaving quoted text alone (a ``?`` in a
        regex literal such as ``'[-+]?'`` is not a parameter)."""
        if self.is_sqlite:
            return sql
        n = 0

        def number(m: re.Match) -> str:
            nonlocal n
            if m.group(0) != "?":
                return m.group(0)  # a '…' literal or a "…" identifier, unchanged
            n += 1
            return f"${n}"

        return _PG_TOKENS.sub(number, sql)


def _param_batch(params: list) -> pa.RecordBatch:
    """One row of bind parameters (ints and strings).

    Built from raw buffers because ``pa.array`` imports pandas (seconds of
    start-up) just to check whether its input is a pandas object.
    """
    arrays = []
    for p in params:
        if isinstance(p, int) and not isinstance(p, bool):
            arrays.append(pa.Array.from_buffers(pa.int64(), 1, [None, pa.py_buffer(struct.pack("<q", p))]))
        elif isinstance(p, str):
            data = p.encode()
            arrays.append(
                pa.Array.from_buffers(
                    pa.string(), 1, [None, pa.py_buffer(struct.pack("<ii", 0, len(data))), pa.py_buffer(data)]
                )
            )
        else:
            raise TypeError(f"unsupported bind parameter type {type(p).__name__}")
    return pa.RecordBatch.from_arrays(arrays, names=[f"p{i}" for i in range(len(params))])


def scrub(text: str, spec: SourceSpec) -> str:
    """Remove any password (and the raw URL) from a driver message."""
    try:
        url = spec.resolved_url()
    except Exception:  # noqa: BLE001 - an unresolvable URL has no secret to scrub
        return text.strip()
    text = text.replace(url, spec.display_url())
    try:
        parts = urlsplit(url)
        pw = parts.password
    except ValueError:  # a malformed URL: drop anything after a colon-at pair
        return " ".join(re.sub(r":[^@/\s]*@", ":***@", text).split())
    if pw:
        text = text.replace(pw, "***")
    for k, v in parse_qsl(parts.query):
        if k.lower() == "password" and v:
            text = text.replace(v, "***")
    return " ".join(text.split())


def _pg_url(url: str) -> str:
    """Add a connect timeout so a black-holed host fails instead of hanging."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("connect_timeout", str(_CONNECT_TIMEOUT_S))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


@contextlib.contextmanager
def connect(spec: SourceSpec) -> Iterator[SourceConn]:
    """Open a source for reading; ``SourceUnavailable`` when it is down or missing."""
    import adbc_driver_manager as adbc

    dialect = dialect_of(spec)
    database = connection = None
    try:
        if dialect == "sqlite":
            import adbc_driver_sqlite as sqlite_driver

            path = sqlite_path(spec.resolved_url())
            if not path.is_file():
                raise SourceUnavailable(
                    f"Source {spec.name!r}: SQLite file {path} does not exist",
                    hint="check the path, or run FLE once to create it",
                )
            if not os.access(path, os.R_OK):
                raise SourceUnavailable(
                    f"Source {spec.name!r}: permission denied reading SQLite file {path}",
                    hint="give the user running fle-core read access to the file",
                )
            database = sqlite_driver.connect("file:" + quote(str(Path(path).resolve())) + "?mode=ro")
        else:
            import adbc_driver_postgresql as pg_driver

            database = pg_driver.connect(_pg_url(spec.resolved_url()))
        connection = adbc.AdbcConnection(database)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001
        if database is not None:
            database.close()
        raise SourceUnavailable(
            f"Cannot connect to source {spec.name!r} at {spec.display_url()}: {scrub(str(exc), spec)}",
            hint="is it an SQLite database file?"
            if dialect == "sqlite"
            else "is the database running and reachable?",
        ) from None
    conn = SourceConn(spec, dialect, database, connection)
    if conn.is_sqlite:
        try:
            conn.scalar(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        except SourceError:
            conn.close()
            raise
    try:
        yield conn
    finally:
        conn.close()


# ---------------------------------------------------------------- introspection
def column_types(conn: SourceConn) -> dict[str, str]:
    """``programs`` column name -> lower-cased declared type. ``SchemaError`` if no table."""
    if conn.is_sqlite:
        tbl = conn.arrow("SELECT name, type FROM pragma_table_info('programs')")
    else:
        tbl = conn.arrow(
            "SELECT column_name AS name, data_type AS type FROM information_schema.columns "
            "WHERE table_name = 'programs' AND table_schema = current_schema()"
        )
    cols = {
        str(n): str(t or "").lower()
        for n, t in zip(tbl.column("name").to_pylist(), tbl.column("type").to_pylist(), strict=True)
    }
    if not cols:
        raise SchemaError(
            f"Source {conn.spec.name!r} has no `programs` table", hint="is this an FLE database?"
        )
    missing = REQUIRED_COLUMNS - cols.keys()
    if missing:
        raise SchemaError(
            f"Source {conn.spec.name!r}: `programs` lacks required column(s) {', '.join(sorted(missing))}"
        )
    id_type = cols["id"]
    if not ("int" in id_type if conn.is_sqlite else id_type in _PG_INTS):
        raise SchemaError(
            f"Source {conn.spec.name!r}: `programs.id` is {id_type or 'untyped'}, not an integer",
            hint="sync reads rows in id order and needs integer ids (FLE creates INTEGER/BIGSERIAL ids)",
        )
    return cols


def program_columns(spec: SourceSpec) -> set[str]:
    """The column names of the source's ``programs`` table (``SchemaError`` if unusable)."""
    with connect(spec) as conn:
        return set(column_types(conn))


def max_version(spec: SourceSpec) -> int:
    """Highest ``programs.version`` in the source, 0 when empty."""
    with connect(spec) as conn:
        column_types(conn)
        return int(conn.scalar("SELECT max(version) FROM programs") or 0)


def max_id(conn: SourceConn) -> int:
    """Highest ``programs.id`` (0 when empty); ``SchemaError`` when an id is not an integer."""
    return _int_id(conn, conn.scalar("SELECT max(id) FROM programs"), 0)


def min_id(conn: SourceConn) -> int:
    """Lowest ``programs.id`` (1 when empty): ids of 0 or below are rare but legal."""
    return _int_id(conn, conn.scalar("SELECT min(id) FROM programs"), 1)


def _int_id(conn: SourceConn, value, empty: int) -> int:
    if value is None:
        return empty
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise SchemaError(
        f"Source {conn.spec.name!r}: `programs.id` holds a non-integer value ({str(value)[:40]!r})",
        hint="sync reads rows in id order and needs integer ids",
    )


def version_step_count(spec: SourceSpec, version: int, instance: int | None = None) -> int:
    """Number of ``programs`` rows of one version (optionally one instance)."""
    with connect(spec) as conn:
        column_types(conn)
        if instance is None:
            n = conn.scalar("SELECT count(*) FROM programs WHERE version = ?", [int(version)])
        else:
            n = conn.scalar(
                "SELECT count(*) FROM programs WHERE version = ? AND instance = ?",
                [int(version), int(instance)],
            )
        return int(n or 0)


# ---------------------------------------------------------------- lean selects
_PG_INTS = ("smallint", "integer", "bigint")
_PG_FLOATS = ("double precision", "real")
_PG_TEXTS = ("text", "character varying", "character")
# Numeric text Postgres can always convert to ``numeric`` (bounded digits and exponent),
# so one junk value never fails the whole read.
_NUM_RE = r"^\s*[-+]?([0-9]{1,200}\.?[0-9]{0,200}|\.[0-9]{1,200})([eE][-+]?[0-9]{1,3})?\s*$"


def _expr(conn: SourceConn, cols: dict[str, str], src: str, typ: str, robust: bool = False) -> str:
    """A SQL expression for one lean column (NULL when the column is missing).

    SQLite, fast path: the bare column, text ones through ``CAST(… AS TEXT)``
    (the sentinel row pins the Arrow type; a value of another storage class
    makes the driver fail and sync retries with ``robust=True``, which converts
    per value and turns junk into NULL).
    Postgres: the bare column when its type already fits, else a safe cast.
    """
    if not _IDENT.match(src):  # column names are ours, but keep SQL text provably static
        raise ValueError(src)
    if src not in cols:
        return (
            "NULL"
            if conn.is_sqlite
            else "NULL::" + {"int": "bigint", "real": "float8", "text": "text", "ts": "timestamp"}[typ]
        )
    if conn.is_sqlite:
        if robust:
            return _sqlite_robust(src, typ)
        # The driver writes a REAL it meets in a text column as "%e" ("1.700000e+09"),
        # losing digits; SQLite's own CAST keeps them (and is free for TEXT values).
        return f"CAST({src} AS TEXT)" if typ in ("text", "ts") else src
    ctype = cols[src]
    if typ == "ts":
        if ctype == "timestamp with time zone":
            return f"({src} AT TIME ZONE 'UTC')"
        return src if ctype.startswith("timestamp") else f"{src}::text"
    if typ == "text":
        return src if ctype in _PG_TEXTS else f"{src}::text"
    if ctype in _PG_INTS or (typ == "real" and ctype in _PG_FLOATS):
        return src
    if ctype in _PG_FLOATS or ctype == "numeric":
        return _pg_number(src, typ, ctype == "numeric")
    numeric = f"(CASE WHEN {src}::text ~ '{_NUM_RE}' THEN {src}::text::numeric END)"
    return _pg_number(numeric, typ, True)


def _pg_number(src: str, typ: str, numeric: bool) -> str:
    """``src`` (float8 or numeric) as bigint or float8; out-of-range values become NULL
    (a cast error would fail the read of every row, not just this one)."""
    if typ == "int":
        return f"(CASE WHEN abs({src}) < 9.2e18 THEN round({src})::bigint END)"
    if not numeric:
        return src
    return (
        f"(CASE WHEN abs({src}) >= 1e308 THEN NULL WHEN abs({src}) < 1e-300 THEN 0::float8 "
        f"ELSE {src}::float8 END)"
    )


def _sqlite_robust(src: str, typ: str) -> str:
    """Per-value conversion for SQLite columns holding mixed storage classes."""
    numeric_text = f"CASE WHEN trim({src}) GLOB '*[0-9]*' AND NOT trim({src}) GLOB '*[^0-9eE.+-]*'"
    if typ == "real":
        return (
            f"CASE typeof({src}) WHEN 'real' THEN {src} WHEN 'integer' THEN CAST({src} AS REAL) "
            f"WHEN 'text' THEN {numeric_text} THEN CAST({src} AS REAL) END END"
        )
    if typ == "int":
        return (
            f"CASE typeof({src}) WHEN 'integer' THEN {src} "
            f"WHEN 'real' THEN CAST(round({src}) AS INTEGER) "
            f"WHEN 'text' THEN {numeric_text} THEN CAST(round(CAST({src} AS REAL)) AS INTEGER) END END"
        )
    if typ == "ts":  # FLE writes text; epoch seconds (seen in hand-made dumps) are converted by sync
        return f"CASE typeof({src}) WHEN 'null' THEN NULL ELSE CAST({src} AS TEXT) END"
    return f"CASE typeof({src}) WHEN 'text' THEN {src} WHEN 'null' THEN NULL ELSE CAST({src} AS TEXT) END"


_SENTINEL = {"int": "0", "real": "0.5", "text": "''", "ts": "''"}


def lean_select(conn: SourceConn, cols: dict[str, str], copy_code: bool = False, robust: bool = False) -> str:
    """SELECT of the lean columns for ``id > ? AND id <= ?`` ordered by id.

    Never reads ``conversation_json`` / ``state_json``. SQLite output starts with
    a sentinel row ``_s = 1`` (see module docstring); real rows have ``_s = 0``.
    """
    spec = {**LEAN_COLUMNS, **(CODE_COLUMNS if copy_code else {})}
    body = ", ".join(f"{_expr(conn, cols, src, typ, robust)} AS {name}" for name, (src, typ) in spec.items())
    if not conn.is_sqlite:
        # ADBC streams a Postgres result with COPY only for a query without bind
        # parameters (with parameters it buffers the whole result). The bounds
        # are therefore passed through session settings (set by lean_batches
        # with a parameterized set_config), keeping the SQL text static.
        return (
            f"SELECT 0 AS _s, {body} FROM programs WHERE id > current_setting('fle_sync.lo')::bigint "
            "AND id <= current_setting('fle_sync.hi')::bigint ORDER BY id"
        )
    where = "FROM programs WHERE id > ? AND id <= ? ORDER BY id"
    sentinel = ", ".join(f"{_SENTINEL[typ]} AS {name}" for name, (_, typ) in spec.items())
    return f"SELECT 1 AS _s, {sentinel} UNION ALL SELECT * FROM (SELECT 0 AS _s, {body} {where})"


def lean_batches(
    conn: SourceConn,
    cols: dict[str, str],
    after_id: int,
    upto_id: int,
    copy_code: bool = False,
    robust: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Stream lean rows with ``after_id < id <= upto_id`` in id order (sentinel removed).

    Columns: ``LEAN_COLUMNS`` (+ ``code, response`` with ``copy_code``). On
    SQLite a value of an unexpected storage class raises ``SourceError``;
    callers retry with ``robust=True``.
    """
    sql = lean_select(conn, cols, copy_code, robust)
    first = conn.is_sqlite
    expected = _sqlite_schema(copy_code) if conn.is_sqlite else None
    if not conn.is_sqlite:
        conn.scalar(
            "SELECT set_config('fle_sync.lo', ?, false) || set_config('fle_sync.hi', ?, false)",
            [str(int(after_id)), str(int(upto_id))],
        )
        params = None
    else:
        params = [int(after_id), int(upto_id)]
    for batch in conn.stream(sql, params):
        if expected is not None and not batch.schema.equals(expected):
            raise SourceError(
                f"Source {conn.spec.name!r}: column types differ from the expected "
                f"ones ({_schema_diff(batch.schema, expected)})"
            )
        if first and batch.num_rows:
            if batch.column(0)[0].as_py() != 1:  # the sentinel must come first
                raise SourceError(f"Source {conn.spec.name!r}: unexpected row order from SQLite")
            batch, first = batch.slice(1), False
        if batch.num_rows:
            yield batch.drop_columns(["_s"])


def _sqlite_schema(copy_code: bool) -> pa.Schema:
    """The Arrow schema a clean SQLite lean batch has (the sentinel pins it)."""
    arrow = {"int": pa.int64(), "real": pa.float64(), "text": pa.string(), "ts": pa.string()}
    spec = {**LEAN_COLUMNS, **(CODE_COLUMNS if copy_code else {})}
    return pa.schema([("_s", pa.int64())] + [(name, arrow[typ]) for name, (_, typ) in spec.items()])


def _schema_diff(got: pa.Schema, want: pa.Schema) -> str:
    return (
        ", ".join(
            f"{f.name}: {f.type} not {want.field(f.name).type}"
            for f in got
            if f.name in want.names and f.type != want.field(f.name).type
        )
        or "column set"
    )


def sparse_ids(conn: SourceConn, top: int) -> bool:
    """Postgres: True when the planner's row estimate says ids are mostly gaps
    (more than 4 ids per row below ``top``, the ``max_id`` the caller already
    read), so id ranges are a poor proxy for row counts."""
    est = conn.scalar("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass('programs')")
    return est is not None and est > 0 and top > 4 * est


def count_rows(conn: SourceConn, after_id: int, upto_id: int) -> int:
    return int(
        conn.scalar("SELECT count(*) FROM programs WHERE id > ? AND id <= ?", [int(after_id), int(upto_id)])
        or 0
    )


# ---------------------------------------------------------------- on-demand detail
def fetch_step_detail(
    spec: SourceSpec, version: int, instance: int, max_chars: int = DETAIL_TEXT_CHARS
) -> pl.DataFrame:
    """Per-step heavy text for the trajectory viewer, fetched from the source on demand.

    Columns: ``id, depth, value, code, response, conversation_json`` (cut to
    ``max_chars``), ``conversation_chars`` (full length). Missing columns are null.
    """
    with connect(spec) as conn:
        cols = column_types(conn)
        sel = []
        for name in ("code", "response"):
            sel.append(_expr(conn, cols, name, "text") + f" AS {name}")
        if "conversation_json" in cols:
            text = "CAST(conversation_json AS TEXT)" if conn.is_sqlite else "conversation_json::text"
            sel.append(f"substr({text}, 1, CAST(? AS INTEGER)) AS conversation_json")
            sel.append(f"length({text}) AS conversation_chars")
            params: list = [int(max_chars)]
        else:
            sel.append(_expr(conn, cols, "conversation_json", "text") + " AS conversation_json")
            sel.append(_expr(conn, cols, "conversation_chars", "int") + " AS conversation_chars")
            params = []
        inst = (
            "instance = ?" if instance is not None and instance >= 0 else "(instance = ? OR instance IS NULL)"
        )  # sync stores a NULL instance as -1
        sql = (
            f"SELECT {_expr(conn, cols, 'id', 'int')} AS id, "
            f"{_expr(conn, cols, 'depth', 'real')} AS depth, "
            f"{_expr(conn, cols, 'value', 'real')} AS value, {', '.join(sel)} "
            f"FROM programs WHERE version = ? AND {inst} ORDER BY depth, id"
        )
        tbl = conn.arrow(sql, [*params, int(version), int(instance)])
    import polars as pl

    df = cast(pl.DataFrame, pl.from_arrow(tbl))  # a Table always gives a DataFrame
    return df.with_columns(pl.col("conversation_chars").cast(pl.Int64))
