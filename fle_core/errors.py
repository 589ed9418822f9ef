"""One exception family for everything the workbench can report to a user.

Every error carries a short, user-facing ``message`` and an optional ``hint``
saying what to do next. The CLI and the Streamlit layer render these without a
traceback; anything that is *not* a ``FleError`` is a bug and is shown as one.
"""

from __future__ import annotations


class FleError(Exception):
    """Base class: an expected condition with a clear message for the user."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(FleError):
    """The workspace config or a sweep config is invalid."""


class SourceError(FleError):
    """A source database is unreachable, or its ``programs`` table is unusable."""


class SourceUnavailable(SourceError):
    """The source could not be connected to at all (server down, file missing)."""


class SchemaError(SourceError):
    """The source's ``programs`` table lacks a required column."""


class WarehouseBusy(FleError):
    """The DuckDB warehouse stayed locked by a writer past the retry budget."""


class WarehouseMissing(FleError):
    """No warehouse exists yet in the workspace (nothing has been synced)."""


class UnknownTask(FleError):
    """A task key is not in the registry (and no quota override names it)."""


class QueueError(FleError):
    """The sweep control store rejected an operation (unknown sweep, bad state)."""


class ViewNotFound(FleError):
    """A shared-view permalink does not exist (or was made in another workspace)."""


class MetricError(FleError):
    """Input to a metric or comparison is unusable (missing column, k < 1, c > n, ...)."""


class WarehouseUnusable(FleError):
    """The warehouse file cannot be used: not a DuckDB file, another layout, a full disk,
    no permission to write it."""
