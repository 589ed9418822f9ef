"""Which warehouse source a location is: one location is one source, whatever names it.

The warehouse keys its rows by a source's name (a label) and records each name's
location in ``source_state``. Before a source is synced, ``resolve`` decides, under the
write lock, where its rows go, so that nothing is ever silently merged or split:

* the location is already in the warehouse under **the same name**: sync it;
* under **another name**: a source given by location (``--source PATH``) syncs into
  that source; a configured name takes the rows over (they are relabelled, in one
  transaction, and the user is told);
* a new location whose **name is taken** by another location: a source given by
  location gets a longer name made from its location (``sqlite:b/data.db``); a
  configured name keeps its rows only when the new location holds the same data (a
  moved file: a few stored rows or logs compared), else it is refused with one
  ``ConfigError`` naming both places;
* a log folder **inside (or around)** a folder the warehouse already holds is refused:
  its logs would be counted twice.

Rows written before locations were recorded (warehouses of schema 2) get their location
from the ``display_url`` they were synced from, where that is an absolute location.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fle_core import sources
from fle_core.errors import ConfigError
from fle_core.sources import Source, recorded
from fle_core.warehouse import _runs
from fle_core.warehouse import store as warehouse
from fle_core.workspace import Workspace

log = logging.getLogger(__name__)

#: ``evidence(con, name)``: what the warehouse stored for a source name, in the form its
#: kind's ``Source.same_data`` compares (the syncer of that kind supplies it).
Evidence = Callable[[Any, str], Any]
_MAX_NAME_DEPTH = 64


@dataclass
class Resolution:
    """Where a source's rows go, and what must change in the warehouse first."""

    source: Source  # under the name its rows are (or will be) stored
    rename_from: str | None = None  # an existing source to relabel to ``source.name``
    relocate: bool = False  # the name's stored location changes to ``source.location``
    notes: list[str] = field(default_factory=list)

    @property
    def changes_warehouse(self) -> bool:
        return bool(self.rename_from or self.relocate)


@dataclass(frozen=True)
class _Known:
    name: str
    kind: str | None
    location: str | None
    display: str | None


def known_sources(con) -> list[_Known]:
    """The sources the warehouse holds, with locations (back-filled for older rows)."""
    rows = con.execute(
        "SELECT source, kind, location, display_url FROM source_state ORDER BY source"
    ).fetchall()
    return [_Known(n, k, loc or _legacy_location(k, d), d) for n, k, loc, d in rows]


def _legacy_location(kind: str | None, display: str | None) -> str | None:
    """A schema-2 row's location from the URL it was synced from, when that names one
    place (an absolute path, a host and database); None when it does not."""
    if not kind or not display:
        return None
    source = recorded(kind, "legacy", display)
    return source.location if source is not None else None


def resolve(ws: Workspace, source: Source, configured: set[str], evidence: Evidence) -> Resolution:
    """Decide where ``source``'s rows go (see the module doc). ``configured``: the names in
    ``config.toml`` (a name the user chose is never replaced by a derived one)."""
    if not ws.warehouse_path.exists():
        return Resolution(source)
    with warehouse.reader(ws) as con:
        known = known_sources(con)
        return _decide(con, source, known, configured, evidence)


def _decide(con, source: Source, known: list[_Known], configured: set[str], evidence: Evidence) -> Resolution:
    by_name = {k.name: k for k in known}
    same = next((k for k in known if k.location == source.location), None)
    if same is not None:
        return _known_location(source, same, by_name, configured)
    _refuse_overlap(source, known)
    mine = by_name.get(source.name)
    if mine is None:
        return Resolution(source)
    if source.adhoc:
        # the name's data may be this very source: recorded before locations were (schema 2),
        # or at a place that is gone (a moved workspace); the stored rows decide
        if (mine.location is None or _gone(mine)) and source.same_data(evidence(con, source.name)):
            note = f"source {source.name!r} moved from {mine.display} to {source.display}; its rows are kept"
            return Resolution(source, relocate=True, notes=[note] if mine.location else [])
        return Resolution(source.renamed(_free_name(source, by_name)))
    if source.same_data(evidence(con, source.name)):
        was = mine.display or "an unrecorded location"
        note = f"source {source.name!r} moved from {was} to {source.display}; its rows are kept"
        return Resolution(source, relocate=True, notes=[note])
    raise ConfigError(
        f"Source {source.name!r} in the warehouse holds data from {mine.display or 'another location'}, "
        f"not from {source.display}",
        hint=f"to keep both, give the new location another name in config.toml; to drop the old rows, "
        f"run `fle-core source remove {source.name}`",
    )


def _known_location(
    source: Source, same: _Known, by_name: dict[str, _Known], configured: set[str]
) -> Resolution:
    """The location is already in the warehouse, as ``same``."""
    if same.name == source.name:
        return Resolution(source)
    if source.adhoc:
        return Resolution(
            source.renamed(same.name),
            notes=[f"{source.display} is source {same.name!r} (same location); synced into it"],
        )
    if same.name in configured:
        raise ConfigError(
            f"Sources {source.name!r} and {same.name!r} are the same location ({source.display})",
            hint=f"keep one of [sources.{source.name}] and [sources.{same.name}] in config.toml",
        )
    if source.name in by_name:
        raise ConfigError(
            f"Source {source.name!r} is {source.display}, which the warehouse holds as {same.name!r}, "
            f"and it also holds {source.name!r} from {by_name[source.name].display}",
            hint=f"remove one of them first: `fle-core source remove {source.name}`",
        )
    note = f"source {same.name!r} is now called {source.name!r} (the same location, {source.display})"
    return Resolution(source, rename_from=same.name, notes=[note])


def _gone(k: _Known) -> bool:
    """Whether a recorded location no longer exists (a servers and buckets always "exists")."""
    source = recorded(k.kind, k.name, k.location) if k.kind and k.location else None
    return source is not None and not source.present()


def _refuse_overlap(source: Source, known: list[_Known]) -> None:
    """A log folder inside or around one the warehouse holds would count its logs twice."""
    for k in known:
        if k.location is not None and source.overlaps_location(k.location):
            raise ConfigError(
                f"{source.display} overlaps source {k.name!r} ({k.display}), which the warehouse "
                "already holds: its logs would be counted twice",
                hint=f"sync {k.name!r} instead, or remove it first (`fle-core source remove {k.name}`)",
            )


def _free_name(source: Source, by_name: dict[str, _Known]) -> str:
    """The shortest name made from the location that no other location holds."""
    for depth in range(2, _MAX_NAME_DEPTH):
        name = source.derived_name(depth)
        if name not in by_name:
            return name
    return source.location


def add_source(ws: Workspace, name: str, where: str, password_env: str | None = None) -> Source:
    """Check a new ``[sources.NAME]`` entry on the server (``sources.new_source``: name,
    allowed roots, readable now, no overlap with a configured source) and against what
    the warehouse holds (these identity rules), then write it to ``config.toml``."""
    from fle_core.sources.new_source import checked_entry
    from fle_core.warehouse.syncers import SYNCERS

    source, entry = checked_entry(ws, name, where, password_env)
    configured = {*(ws.config.get("sources") or {}), name}
    if ws.warehouse_path.exists():
        with warehouse.reader(ws) as con:
            _decide(con, source, known_sources(con), configured, SYNCERS[source.holds].evidence)
    ws.add_source_entry(name, entry)
    return source


def source_named(ws: Workspace, name: str) -> Source:
    """The source whose rows the warehouse keeps under ``name``: the configured one (it has
    the secrets), else the location recorded when it was synced. ``ConfigError`` when the
    warehouse holds no such source."""
    if name in (ws.config.get("sources") or {}) or name in ws.sources():
        return sources.get(ws, name)
    if ws.warehouse_path.exists():
        with warehouse.reader(ws) as con:
            for k in known_sources(con):
                found = (
                    recorded(k.kind, k.name, k.location) if k.name == name and k.kind and k.location else None
                )
                if found is not None:
                    return found
    raise ConfigError(
        f"No source {name!r} is configured or recorded in the warehouse",
        hint="sync it first, or add it under [sources.NAME] in config.toml",
    )


# ---------------------------------------------------------------- applying it
def apply(con, res: Resolution) -> None:
    """Relabel and relocate as resolved, in one transaction (the caller holds the writer)."""
    if not res.changes_warehouse:
        return
    with warehouse.transaction(con):
        if res.rename_from:
            rename(con, res.rename_from, res.source.name)
        if res.relocate:
            con.execute(
                "UPDATE source_state SET location = ?, display_url = ? WHERE source = ?",
                [res.source.location, res.source.display, res.source.name],
            )


def rename(con, old: str, new: str) -> None:
    """Relabel every row of source ``old`` as ``new`` (inside the caller's transaction)."""
    for table in warehouse.source_tables():
        con.execute(f"UPDATE {table} SET source = ? WHERE source = ?", [new, old])


def held_steps(ws: Workspace, name: str) -> int:
    """How many steps the warehouse keeps for source ``name`` (``ConfigError`` if none is held)."""
    with warehouse.reader(ws) as con:
        if warehouse.scalar(con, "SELECT count(*) FROM source_state WHERE source = ?", [name]) == 0:
            raise _not_held(con, name)
        return int(warehouse.scalar(con, "SELECT count(*) FROM steps WHERE source = ?", [name]))


def _not_held(con, name: str) -> ConfigError:
    names = [r[0] for r in con.execute("SELECT source FROM source_state ORDER BY 1").fetchall()]
    return ConfigError(
        f"The warehouse holds no source {name!r}", hint=f"it holds: {', '.join(names) or 'nothing yet'}"
    )


def remove(ws: Workspace, name: str) -> int:
    """Delete every row of source ``name`` from the warehouse (the source itself is not
    touched); the number of steps removed. ``ConfigError`` for a name it does not hold."""
    with warehouse.writer(ws) as con:
        if warehouse.scalar(con, "SELECT count(*) FROM source_state WHERE source = ?", [name]) == 0:
            names = [r[0] for r in con.execute("SELECT source FROM source_state ORDER BY 1").fetchall()]
            raise ConfigError(
                f"The warehouse holds no source {name!r}",
                hint=f"it holds: {', '.join(names) or 'nothing yet'}",
            )
        with warehouse.transaction(con):
            steps = int(warehouse.scalar(con, "SELECT count(*) FROM steps WHERE source = ?", [name]))
            for table in warehouse.source_tables():
                con.execute(f"DELETE FROM {table} WHERE source = ?", [name])
            _runs.record_removal(con, name, steps)
    return steps
