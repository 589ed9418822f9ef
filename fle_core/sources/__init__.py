"""Where FLE trajectories come from: one adapter per kind of source, and this registry.

* ``programs_table``: FLE's legacy ``programs`` table, in SQLite (``SqliteSource``) or
  Postgres (``PostgresSource``); the SQL itself is in ``programs`` (ADBC, lean Arrow
  batches) and the table's shapes in ``programs_schema``;
* ``log_folder``: folders of Inspect logs (``InspectLogSource``), local or in object
  storage; ``log_store`` lists and opens them, ``inspect_logs`` reads the log format
  (``log_zip`` the ``.eval`` zip and its chunked samples, ``log_shards`` sharded and
  merged logs, ``sample_facts`` what one sample says: outcome, failure kind, cost),
  ``transcript`` a sample's messages for the Trajectories viewer;
* ``new_source``: the server-side checks before a source is added from the app;
* ``runs``: per-run results files for the experiment-log compare (not a sync source).

``base.Source`` is the contract every adapter keeps. This module is the only place that
decides which adapter a source gets (``open_source``), and applies the identity rules
that need no warehouse: a location reached by a configured name and by a path is the
configured source; two configured sources may not overlap (``configured``). The rules
that need the warehouse (a location synced earlier under another name) are in
``fle_core.warehouse.identity``.

Sources only read; nothing here writes the warehouse. Adapter modules are imported
lazily: the CLI's start-up does not pay for pyarrow or fsspec.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from fle_core.errors import ConfigError
from fle_core.sources.base import JobRef, JobVerdict, Source
from fle_core.sources.programs_schema import DIALECTS
from fle_core.workspace import LOCAL_INSPECT_SOURCE, LOCAL_SOURCE, SourceSpec, Workspace

if TYPE_CHECKING:
    from fle_core.sources.log_folder import InspectLogSource
    from fle_core.sources.programs_table import ProgramsSource

__all__ = ["JobRef", "JobVerdict", "Source", "configured", "get", "open_source", "recorded"]

#: The adapter class for each kind of source: (module, class).
_ADAPTERS = {
    "sqlite": ("fle_core.sources.programs_table", "SqliteSource"),
    "postgres": ("fle_core.sources.programs_table", "PostgresSource"),
    "inspect": ("fle_core.sources.log_folder", "InspectLogSource"),
}
_DEFAULTS = (LOCAL_SOURCE, LOCAL_INSPECT_SOURCE)


def _kind(spec: SourceSpec) -> str:
    """Which kind a source is: logs have a ``path``, or a storage URL; databases a URL scheme."""
    from fle_core.sources.log_store import is_remote

    if spec.path is not None:
        return "inspect"
    scheme = spec.scheme()
    if is_remote(spec.resolved_url()):
        return "inspect"
    if scheme in DIALECTS:
        return DIALECTS[scheme]
    raise ConfigError(
        f"Source {spec.name!r} has an unsupported URL scheme {scheme!r}",
        hint="use sqlite:///PATH, postgresql://..., or a folder or s3:// URL of Inspect logs",
    )


def _adapter(kind: str) -> type[Source]:
    module, cls = _ADAPTERS[kind]
    return getattr(importlib.import_module(module), cls)


def recorded(kind: str, name: str, where: str) -> Source | None:
    """A source the warehouse recorded by kind and location (or the URL it was synced from);
    None for an unknown kind, or a location that does not name one place (a relative path)."""
    if kind not in _ADAPTERS:
        return None
    return _adapter(kind).recorded(name, where)


def open_source(spec: SourceSpec) -> Source:
    """The adapter for a source spec. A spec given by location (``adhoc``) is labelled with
    a name derived from its location."""
    source = _adapter(_kind(spec))(spec)
    return source.renamed(source.derived_name()) if spec.adhoc else source


def configured(ws: Workspace) -> dict[str, Source]:
    """The workspace's sources by name: ``config.toml``'s, plus the defaults (FLE's
    ``data.db`` and ``inspect_logs/``) unless a configured source overlaps them.

    ``ConfigError`` when two configured sources overlap (one location under two names, or
    a log folder inside another): every trajectory there would be counted twice. A source
    that cannot be opened yet (its ``url_env`` is not set) is left out here; asking for it
    by name (``get``) gives its error."""
    everything = {}
    for name, spec in ws.sources().items():
        try:
            everything[name] = open_source(spec)
        except ConfigError:
            continue
    mine = {n: s for n, s in everything.items() if n not in _DEFAULTS or _overridden(ws, n)}
    names = sorted(mine)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if mine[a].overlaps(mine[b]):
                raise ConfigError(
                    f"Sources {a!r} and {b!r} in {ws.config_path} overlap ({_relation(mine[a], mine[b])}): "
                    "their trajectories would be counted twice",
                    hint=f"keep one of [sources.{a}] and [sources.{b}]",
                )
    defaults = {
        n: s
        for n, s in everything.items()
        if n not in mine and not any(s.overlaps(other) for other in mine.values())
    }
    return {**defaults, **mine}


def _overridden(ws: Workspace, name: str) -> bool:
    return name in (ws.config.get("sources") or {})


def _relation(a: Source, b: Source) -> str:
    if a.location == b.location:
        return f"both are {a.display}"
    inner, outer = (a, b) if a.location.startswith(b.location.split("?")[0]) else (b, a)
    return f"{inner.display} is inside {outer.display}"


def get(ws: Workspace, name_or_url: str | None = None) -> Source:
    """A source by configured name, or by location (a database URL, a log folder or file,
    an ``s3://`` URL); default: ``default_source``, else ``local``.

    A location that is a configured source's is that source (so ``--source PATH`` syncs
    into ``[sources.team]`` when PATH is its folder). A log folder inside (or around) a
    configured one is refused with a ``ConfigError`` naming it."""
    spec = ws.source(name_or_url)
    source = open_source(spec)
    if not spec.adhoc:
        return source
    for name, other in configured(ws).items():
        if other.location == source.location:
            return other
        if source.overlaps(other):
            raise ConfigError(
                f"{source.display} overlaps source {name!r} ({_relation(source, other)}): "
                "syncing both would count its trajectories twice",
                hint=f"sync source {name!r} instead (`--source {name}`)",
            )
    return source


def inspect_source(source: Source) -> InspectLogSource:
    """``source`` as a folder of Inspect logs, or a ``ConfigError`` saying it is not one."""
    from fle_core.sources.log_folder import InspectLogSource

    if not isinstance(source, InspectLogSource):
        raise ConfigError(f"Source {source.name!r} is a {source.kind} database, not a folder of Inspect logs")
    return source


def programs_source(source: Source) -> ProgramsSource:
    """``source`` as a ``programs`` table, or a ``ConfigError`` saying it is not one."""
    from fle_core.sources.programs_table import ProgramsSource

    if not isinstance(source, ProgramsSource):
        raise ConfigError(f"Source {source.name!r} is a folder of Inspect logs, not a programs table")
    return source


def describe(ws: Workspace) -> list[dict[str, str]]:
    """The configured sources for people: name, kind, where (passwords masked), where the
    password comes from, and whether it is there; a source that cannot be opened says why."""
    found = configured(ws)
    rows = []
    for name, spec in sorted(ws.sources().items()):
        password = spec.password_env or spec.url_env or "—"
        source = found.get(name)
        if source is None and name in _DEFAULTS:
            continue  # a default covered by a configured source
        if source is None:
            try:
                source = open_source(spec)
            except ConfigError as exc:
                rows.append(_row(name, "?", spec.display_url(), str(exc), password))
                continue
        status = "present" if source.present() else "missing"
        rows.append(_row(name, source.kind, source.display, status, password))
    return rows


def _row(name: str, kind: str, where: str, status: str, password: str) -> dict[str, str]:
    return {"source": name, "kind": kind, "where": where, "status": status, "password from": password}
