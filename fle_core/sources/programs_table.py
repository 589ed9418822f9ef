"""Sources of kind ``sqlite`` and ``postgres``: FLE's legacy ``programs`` table.

Everything that depends on the source being a ``programs`` table lives here (the SQL
itself is in ``programs``): the location that identifies the database, whether it is
there, the highest sweep version, whether a sweep job left its rows, a job's steps
for W&B, and whether stored rows are still what the database holds.

Locations: ``sqlite:////abs/resolved/path.db`` (symlinks and relative paths resolved);
``postgresql://host:port/database`` (host lower-cased, default port filled in, no
user, password or options: one database reached by two users is one source).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast
from urllib.parse import parse_qsl

from fle_core.errors import FleError, SourceUnavailable
from fle_core.sources.base import Holds, JobRef, JobVerdict, Source
from fle_core.workspace import SourceSpec, split_url, sqlite_path, sqlite_url

if TYPE_CHECKING:
    import polars as pl

#: One stored step as sync saw it: (id, version, instance, depth, value).
StoredRow = tuple[int, int | None, int | None, float | None, float | None]

_VERIFY_TRIES = 6  # a busy database is not a failed job: retry with backoff


def _programs():
    """The ``programs`` reader, imported when first used: it brings pyarrow, which the
    runner process only needs once it reads a table through ADBC."""
    from fle_core.sources import programs

    return programs


class ProgramsSource(Source):
    """A database holding FLE's ``programs`` table (one subclass per SQL dialect)."""

    holds: ClassVar[Holds] = "programs"
    unit: ClassVar[str] = "rows"
    watermarked: ClassVar[bool] = True
    dialect: ClassVar[str]

    @property
    def url(self) -> str:
        """The connectable URL (secrets filled in): never show or log it."""
        return self.spec.resolved_url()

    def connect(self):
        """``programs.connect`` for this source (a context manager)."""
        return _programs().connect(self.spec)

    def check_readable(self) -> None:
        with self.connect() as conn:
            _programs().column_types(conn)

    # ---- sweeps --------------------------------------------------------------------
    def verify_job(self, job: JobRef, exit_code: int, *, retry: bool = True) -> JobVerdict:
        """A job is complete when it exited 0 and left at least one row of its version."""
        if exit_code != 0:
            return JobVerdict(
                "failed", f"exit code {exit_code}" + (" (killed by signal)" if exit_code < 0 else "")
            )
        try:
            steps = self._retry(lambda: self.step_count(job.version), _VERIFY_TRIES if retry else 1)
        except SourceUnavailable:
            raise
        except FleError as exc:
            return JobVerdict("failed", f"exit 0 but the trajectory could not be verified: {exc}")
        if steps < 1:
            return JobVerdict("empty", f"exit 0 but version {job.version} has no steps in the source")
        return JobVerdict("succeeded")

    def step_count(self, version: int) -> int:
        return _programs().version_step_count(self.spec, version)

    def max_version(self) -> int:
        return _programs().max_version(self.spec)

    @staticmethod
    def _retry(read, tries: int = _VERIFY_TRIES) -> int:
        delay = 0.05
        for i in range(tries):
            try:
                return int(read())
            except FleError:
                if i == tries - 1:
                    raise
                time.sleep(delay)
                delay *= 2
        return 0

    def job_steps(self, job: JobRef) -> pl.DataFrame:
        import polars as pl

        with self.connect() as conn:
            cols = _programs().column_types(conn)
            tokens = "token_usage" if "token_usage" in cols else "NULL"  # a fixed column name, not input
            tbl = conn.arrow(
                f"SELECT depth, value, {tokens} AS total_tokens FROM programs WHERE version = ? ORDER BY depth, id",
                [int(job.version)],
            )
        return cast(pl.DataFrame, pl.from_arrow(tbl)).with_columns(  # a Table gives a DataFrame
            pl.col("depth").cast(pl.Float64),
            pl.col("value").cast(pl.Float64),
            pl.col("total_tokens").cast(pl.Int64),
        )

    def best_values(self, jobs: list[JobRef]) -> dict[int, float]:
        out: dict[int, float] = {}
        with self.connect() as conn:
            for job in jobs:
                best = conn.scalar("SELECT MAX(value) FROM programs WHERE version = ?", [int(job.version)])
                if best is not None and math.isfinite(float(best)):
                    out[job.version] = float(best)
        return out

    def step_detail(self, version: int, instance: int) -> pl.DataFrame:
        """Per-step code, response and conversation, fetched on demand (``programs``)."""
        return _programs().fetch_step_detail(self.spec, version, instance)

    # ---- identity ------------------------------------------------------------------
    def same_data(self, stored: Sequence[StoredRow]) -> bool:
        """Whether this database holds the rows sync stored for a source of this name (a
        few rows by id, compared on version, instance, depth and value). Decides whether
        a configured source whose location changed (a moved file, a renamed host) is the
        same data, so its watermark may be kept. No rows stored: nothing to contradict."""
        if not stored:
            return True
        with self.connect() as conn:
            _programs().column_types(conn)
            theirs = {}
            for row_id, *_ in stored:
                tbl = conn.arrow(
                    "SELECT id, version, instance, depth, value FROM programs WHERE id = ?", [int(row_id)]
                )
                if tbl.num_rows:
                    theirs[row_id] = tuple(tbl.column(c)[0].as_py() for c in range(tbl.num_columns))
        return all(_same_row(row, theirs.get(row[0])) for row in stored)


def _same_row(ours: StoredRow, theirs: tuple | None) -> bool:
    if theirs is None:
        return False
    for a, b in zip(ours[1:], theirs[1:], strict=True):
        if a is None or b is None:
            if a is not None and b is not None:
                return False
            # sync stores a NULL instance as -1
            continue
        fa, fb = float(a), float(b)
        if not (fa == fb or (math.isnan(fa) and math.isnan(fb))):
            return False
    return True


class SqliteSource(ProgramsSource):
    """FLE's ``programs`` table in an SQLite file (``sqlite:///PATH``)."""

    kind: ClassVar[str] = "sqlite"
    dialect: ClassVar[str] = "sqlite"

    @classmethod
    def recorded(cls, name: str, where: str) -> SqliteSource | None:
        # sqlite:////abs/path is absolute; sqlite:///rel/path was relative to a folder now unknown
        return cls(SourceSpec(name, where)) if where.startswith("sqlite:////") else None

    @property
    def path(self) -> Path:
        return sqlite_path(self.url).expanduser().resolve()

    @property
    def location(self) -> str:
        return sqlite_url(self.path)

    def derived_name(self, depth: int = 1) -> str:
        return "sqlite:" + _tail(self.path, depth)

    def present(self) -> bool:
        return self.path.is_file()

    def max_version(self) -> int:
        return self._scalar("SELECT MAX(version) FROM programs", ())

    def step_count(self, version: int) -> int:
        return self._scalar("SELECT COUNT(*) FROM programs WHERE version = ?", (int(version),))

    def _scalar(self, sql: str, params: tuple) -> int:
        """One integer, read-only, with a busy timeout.

        The stdlib driver instead of ADBC here: it waits on a busy file (ADBC's read-only
        connection fails at once while a job writes), and it keeps pyarrow out of the
        runner process. A missing file or ``programs`` table counts as empty."""
        import sqlite3

        path = self.path
        if not path.is_file():
            return 0
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'programs'").fetchone() is None:
                    return 0
                return int(con.execute(sql, params).fetchone()[0] or 0)
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise SourceUnavailable(f"Source {self.name!r}: {exc}") from None


class PostgresSource(ProgramsSource):
    """FLE's ``programs`` table in a Postgres database (``postgresql://…``)."""

    kind: ClassVar[str] = "postgres"
    dialect: ClassVar[str] = "postgres"

    @classmethod
    def recorded(cls, name: str, where: str) -> PostgresSource | None:
        return cls(SourceSpec(name, where)) if where.startswith(("postgresql://", "postgres://")) else None

    @property
    def location(self) -> str:
        host, port, database = self._address()
        return f"postgresql://{host}:{port}/{database}"

    def _address(self) -> tuple[str, int, str]:
        """(host, port, database) as libpq would resolve them from the URL alone."""
        parts = split_url(self.url, self.name)
        query = dict(parse_qsl(parts.query))
        host = (parts.hostname or query.get("host") or os.environ.get("PGHOST") or "localhost").lower()
        port = parts.port or int(query.get("port") or os.environ.get("PGPORT") or 5432)
        user = parts.username or query.get("user") or os.environ.get("PGUSER") or ""
        database = parts.path.lstrip("/") or query.get("dbname") or os.environ.get("PGDATABASE") or user
        return host, port, database

    def derived_name(self, depth: int = 1) -> str:
        host, port, database = self._address()
        return f"postgresql:{host}/{database}" if depth <= 1 else f"postgresql:{host}:{port}/{database}"

    def present(self) -> bool:
        return True  # a server is always tried: "down" is an error worth reporting


def _tail(path: Path, depth: int) -> str:
    """The last ``depth`` parts of a path (the whole path when it has fewer)."""
    parts = path.parts
    return str(path) if depth >= len(parts) else "/".join(parts[-depth:])
