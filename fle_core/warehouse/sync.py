"""Sync of FLE sources into the DuckDB warehouse: the dispatcher.

One run per source (see ``docs/sync.md``), the same skeleton for every kind:

1. **Which source.** ``fle_core.sources`` picks the adapter; ``identity.resolve`` decides
   under which name its rows are kept (one location is one source, whatever route names
   it; see ``identity``) and refuses what would count trajectories twice.
2. **Read.** The syncer for what the source holds (``SYNCERS``: ``programs_sync`` for a
   ``programs`` table, ``inspect_sync`` for a folder of Inspect logs) connects and plans.
   A source that is down or unusable changes no data (a ``failed`` run is recorded when
   a warehouse exists); a plan with nothing to do opens no run at all.
3. **Write.** Under the cross-process write lock (held for the whole ``sync()``), open a
   *run* in ``sync_runs``; the syncer writes batches, each one transaction; the run is
   finished with its counts, and ``sweep_attempts`` refreshed from the control store.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from fle_core import sources
from fle_core.errors import FleError, SourceUnavailable
from fle_core.sources import Source
from fle_core.warehouse import _runs, identity
from fle_core.warehouse import store as warehouse
from fle_core.warehouse._runs import ATTEMPT_COLUMNS as ATTEMPT_COLUMNS  # the sweeps layer's facts
from fle_core.warehouse._runs import Run
from fle_core.warehouse._writing import DEFAULT_BATCH_ROWS as DEFAULT_BATCH_ROWS
from fle_core.warehouse._writing import AttemptsProvider as AttemptsProvider
from fle_core.warehouse._writing import Context, Options, Session
from fle_core.warehouse._writing import Progress as Progress
from fle_core.warehouse.syncers import SYNCERS
from fle_core.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSync:
    """What one source's sync did, in the source's own terms."""

    name: str
    unit: str  # "rows" of a programs table, "logs" of a folder
    rows_added: int  # step rows written
    watermark_before: int | None  # programs tables only: the highest synced id before / after
    watermark_after: int | None
    logs_read: int = 0
    rows_removed: int = 0  # steps synced before that this run took out (logs removed or replaced)
    logs_removed: int = 0
    unchanged: bool = False  # nothing to read: no run was opened

    def text(self) -> str:
        """One line for people: rows and the watermark for a table, logs and steps for a folder."""
        if self.unit == "rows":
            return f"+{self.rows_added:,} rows (watermark {self.watermark_before} -> {self.watermark_after})"
        if self.unchanged:
            return "no log changed"
        logs = f"{self.logs_read:,} log{'' if self.logs_read == 1 else 's'} read"
        if self.logs_removed:
            logs += f", {self.logs_removed:,} log{'' if self.logs_removed == 1 else 's'} removed"
        gone = f", -{self.rows_removed:,} steps (removed or replaced)" if self.rows_removed else ""
        return f"{logs}, +{self.rows_added:,} steps{gone}"


@dataclass(frozen=True)
class SyncResult:
    """What one ``sync()`` call did. Per-source figures are keyed by source name."""

    sources: tuple[str, ...]
    sync_ids: tuple[int, ...]
    rows_added: int
    watermark_before: dict[str, int]
    watermark_after: dict[str, int]
    duration_s: float
    full: bool = False
    rows_by_source: dict[str, int] = field(default_factory=dict)
    #: per source, what was kept but could not be read (e.g. a corrupt Inspect log: name + reason)
    problems: dict[str, list[str]] = field(default_factory=dict)
    data_version: int = 0
    warnings: tuple[str, ...] = ()
    #: per source: what was read and written, in its own unit
    details: tuple[SourceSync, ...] = ()
    #: things said about where rows went (a path that is a configured source, a rename)
    notes: tuple[str, ...] = ()
    #: per source, what was left out for a malformed field (Inspect: "path: sample …: reason")
    quarantined: dict[str, list[str]] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The synced source name(s), comma-joined."""
        return ", ".join(self.sources)

    @property
    def sync_id(self) -> int:
        """The newest sync run id of this call (``data_version`` only moves when data changed)."""
        return max(self.sync_ids, default=0)


# ------------------------------------------------------------------ public API
def sync(
    ws: Workspace,
    source: str | None = None,
    full: bool = False,
    progress: Progress | None = None,
    attempts: AttemptsProvider | None = None,
) -> SyncResult:
    """Sync one source (name or location) or, with ``source=None``, the default ones.

    ``attempts`` supplies the sweep facts (``ATTEMPT_COLUMNS``) that decide
    which versions are superseded; it is called once per source, and the
    ``sweep_attempts`` table is replaced in the same transaction that finishes
    the run. ``None`` leaves that table as it is. The CLI, the app and the
    runner pass ``fle_core.sweeps.facts.attempts_for_sync``.

    ``None`` means ``default_source`` if the config sets it, else every
    configured source that exists (see ``select_sources``). With several
    sources, an error in one is raised after the others were synced.
    ``progress(done, total)`` is called after each committed batch, in the
    source's unit (``SourceSync.unit``: rows, or logs).
    """
    chosen = select_sources(ws, source)
    ctx = Context(ws, full, progress, Options.from_workspace(ws), attempts)
    configured = set((ws.config.get("sources") or {}).keys())
    t0 = time.monotonic()
    done: list[tuple[Run, SourceSync]] = []
    notes: list[str] = []
    errors: list[FleError] = []
    with warehouse.translate_io_errors(ws), warehouse.write_lock(ws):
        for src in chosen:
            try:
                with warehouse.translate_io_errors(ws):
                    resolution = identity.resolve(ws, src, configured, SYNCERS[src.holds].evidence)
                    notes += resolution.notes
                    done.append(_sync_source(ctx, resolution))
            except FleError as exc:
                if len(chosen) == 1:
                    raise
                log.error("sync of %s failed: %s", src.name, exc)
                errors.append(exc)
    if errors:
        raise errors[0]
    for run, _ in done:
        for note in run.warnings:
            log.warning("%s: %s", run.source, note)
    return _result(ws, done, full, time.monotonic() - t0, notes)


def _result(ws: Workspace, done: list[tuple[Run, SourceSync]], full: bool, took: float, notes) -> SyncResult:
    runs = [r for r, _ in done]
    return SyncResult(
        sources=tuple(r.source for r in runs),
        sync_ids=tuple(r.sync_id for r in runs),
        rows_added=sum(r.rows_added for r in runs),
        watermark_before={r.source: r.wm_before for r in runs},
        watermark_after={r.source: r.wm_after for r in runs},
        duration_s=took,
        full=full,
        rows_by_source={r.source: r.rows_added for r in runs},
        problems={r.source: r.problems for r in runs if r.problems},
        data_version=runs[-1].data_version if runs else warehouse.data_version(ws),
        warnings=tuple(f"{r.source}: {note}" for r in runs for note in r.warnings),
        details=tuple(d for _, d in done),
        notes=tuple(notes),
        quarantined={r.source: r.quarantine for r in runs if r.quarantine},
    )


def select_sources(ws: Workspace, source: str | None) -> list[Source]:
    """The sources a sync covers: the named one (or the one at a location); else
    ``default_source`` when the config sets it; else every configured source that exists
    (missing SQLite files and log folders are skipped; servers and buckets are always tried)."""
    if source is not None:
        return [sources.get(ws, source)]
    if ws.config.get("default_source"):
        return [sources.get(ws, None)]
    found = sources.configured(ws)
    chosen = [s for s in found.values() if s.present()]
    for name, spec in ws.sources().items():
        if name not in found:  # left out: covered by a configured source, or not openable
            sources.open_source(spec)  # the latter raises its error here

    if not chosen:
        raise SourceUnavailable(
            "No source to sync: neither FLE's data.db nor its inspect_logs/ folder is in the workspace, "
            "and no other source is configured",
            hint="pass --source sqlite:///PATH, postgresql://..., a folder or s3:// URL of Inspect logs, "
            "or add [sources.NAME] to config.toml",
        )
    return chosen


# ------------------------------------------------------------------ one source
def _sync_source(ctx: Context, resolution: identity.Resolution) -> tuple[Run, SourceSync]:
    """Sync one source, the same way for every kind (see the module doc). A failure before
    the run opens (source down, bad schema) is recorded as a ``failed`` run when a
    warehouse exists, and changes no data."""
    source = resolution.source
    syncer = SYNCERS[source.holds]
    run: Run | None = None
    try:
        frame = ctx.attempts() if ctx.attempts else None
        with syncer.reading(ctx, source, frame) as work:
            if work.unchanged() and not resolution.changes_warehouse:
                version = warehouse.data_version(ctx.ws)
                same = Run(source.name, version, 0, 0, data_version=version, unit=source.unit)
                return same, _summary(source, same, unchanged=True)
            session = Session(ctx.ws, ctx.options.writer_hold_s, ctx.options.writer_threads)
            try:
                identity.apply(session.con(), resolution)
                run = _runs.open_run(session.con(), source, full=work.rebuild)
                run.full, run.unit = ctx.full, source.unit
                work.copy(session, run)
                _runs.finish_run(session.con(), run, frame)
            finally:
                session.close()
    except BaseException as exc:
        _runs.record_abort(ctx.ws, source, run, exc, ctx.full)
        raise
    return run, _summary(source, run)


def _summary(source: Source, run: Run, unchanged: bool = False) -> SourceSync:
    rows = source.unit == "rows"
    return SourceSync(
        name=source.name,
        unit=source.unit,
        rows_added=run.rows_added,
        watermark_before=run.wm_before if rows else None,
        watermark_after=run.wm_after if rows else None,
        logs_read=run.logs_read,
        rows_removed=run.rows_removed,
        logs_removed=run.logs_removed,
        unchanged=unchanged,
    )
