"""One Inspect log → the rows sync writes for it (``inspect_logs`` and ``inspect_samples``).

``inspect_sync`` decides which logs to read and writes the rows; this module reads one
log (``sources.inspect_logs``) and lays out its rows: the log's own facts, each sample's
facts (``sources.sample_facts``), the trajectory key, the eval-set dedup key, and the
facts that say which system ran (FLE's settings from the ``fle`` preset's job file, the
rest from the log), which ``analysis.systems`` composes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fle_core.errors import SourceUnavailable
from fle_core.sources import inspect_logs as il
from fle_core.sources.log_folder import InspectLogSource
from fle_core.sources.log_store import LogFile
from fle_core.warehouse.inspect_fit import fit
from fle_core.workspace import Workspace

VERSION_BASE = 2**50
#: What this reader derives from a log; a log stored by an older one is read again, so a
#: warehouse upgraded in place gets invalidation, scorer crashes, retries and systems.
FACTS_VERSION = 2


@dataclass
class LogRows:
    file: LogFile
    log_row: dict[str, Any]
    samples: list[tuple[il.SampleFacts, dict[str, Any]]]  # (facts, inspect_samples row)
    #: samples left out, each "path: sample …: reason" (a malformed field; see ``read_rows``)
    quarantined: list[str] = field(default_factory=list)


def _sample_version(rel: str, sample_id: str) -> int:
    digest = hashlib.blake2b(f"{rel}\0{sample_id}".encode(), digest_size=8).digest()
    return VERSION_BASE + int.from_bytes(digest, "big") % VERSION_BASE


def read_rows(
    ws: Workspace,
    source: InspectLogSource,
    f: LogFile,
    job_dirs: Mapping[str, str],
    hidden: dict[str, str],
    patterns,
) -> LogRows:
    """One log → its ``inspect_logs`` row and sample rows (an unreadable log gets a row too;
    a store that cannot be reached raises ``SourceUnavailable`` and stops the sync).
    ``job_dirs``: folders holding a job file -> the log owning the job's version (its newest);
    ``hidden``: shards their merged log covers.

    A log is untrusted: a sample with a malformed field (``il.Malformed``, or any value
    that does not fit its column, ``inspect_fit``) is quarantined, named in
    ``LogRows.quarantined``, and the log's other samples are kept; a malformed log-level
    field makes the log ``unreadable`` with the reason."""
    base = {
        "source": source.name,
        "path": f.rel,
        "size": f.size,
        "mtime_ns": f.mtime_ns,
        "etag": f.etag,
        "content_id": f.content_id,
        "facts_version": FACTS_VERSION,
    }
    if f.rel in hidden:  # a shard its merged log covers: counted there (log_shards)
        return LogRows(f, {**base, "status": "merged", "merged_into": hidden[f.rel], "samples": 0}, [])
    try:
        raw = il.read_log(source.log_ref(f.rel, f.size))
    except il.LogReadError as exc:
        return LogRows(f, {**base, "status": "unreadable", "error": str(exc)}, [])
    try:
        return _rows(ws, source, f, base, raw, job_dirs, patterns)
    except SourceUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed log-level field fails this log, named
        return LogRows(
            f, {**base, "status": "unreadable", "error": f"{f.rel}: malformed log: {reason(exc)}"}, []
        )


def reason(exc: BaseException) -> str:
    """Why a sample or log was quarantined, in one line of at most 300 characters."""
    text = " ".join(str(exc).split())[:300]
    return text if isinstance(exc, il.Malformed) else f"{type(exc).__name__}: {text}"


def _label(sample: dict[str, Any]) -> str:
    def short(v: Any) -> str:
        text = repr(v)
        return text if len(text) <= 40 else text[:37] + "..."

    return f"sample {short(sample.get('id'))} epoch {short(sample.get('epoch'))}"


def _rows(
    ws: Workspace,
    source: InspectLogSource,
    f: LogFile,
    base: dict,
    raw: il.RawLog,
    job_dirs: Mapping[str, str],
    patterns,
) -> LogRows:
    if not isinstance(raw.eval, dict):
        raise il.Malformed(f"'eval' is {type(raw.eval).__name__}, not an object")
    folder = f.rel.rsplit("/", 1)[0] if "/" in f.rel else ""
    job = source.job_facts(folder) if folder in job_dirs else None
    ev = raw.eval
    head = il.headline(raw.results)
    facts = il.log_facts(raw)
    registry = ws.task_registry()
    sample_ids = {str(s.get("id")) for s in raw.samples}
    owns = job_dirs.get(folder) == f.rel  # another log in a job folder keeps keys of its own
    job_version = int(job["version"]) if job and owns and len(sample_ids) <= 1 else None
    err = raw.error
    log_row = {
        **base,
        "status": raw.status,
        "format": raw.format,
        "reader": raw.reader,
        "format_version": raw.version,
        "task": ev.get("task"),
        "model": ev.get("model"),
        "task_id": ev.get("task_id"),
        "eval_id": ev.get("eval_id"),
        "eval_set_id": ev.get("eval_set_id"),
        "created": ev.get("created"),
        "expected_samples": il.expected_samples(ev),
        "samples": len(raw.samples),
        "error": (err.get("message") if isinstance(err, dict) else None)
        or ("the eval was cancelled" if raw.status == "cancelled" else None),
        "headline_label": head[0] if head else None,
        "headline_value": head[1] if head else None,
        "sweep_id": job.get("sweep_id") if job else None,
        "job_version": job_version,
        "invalidated": facts.invalidated,
        "tags": _json(facts.tags),
        "log_metadata": _json(facts.metadata),
        "edits_json": _json(facts.edits),
        "config_updates_json": _json(facts.config_updates),
        "solver": facts.solver,
        "fle_version": facts.fle_version,
        "inspect_version": facts.inspect_version,
        "generate_config": _json(facts.generate_config),
    }
    log_row = fit(log_row, "inspect_logs")
    system = _system_facts(facts, job)
    read: list[il.SampleFacts] = []
    quarantined: list[str] = [f"{f.rel}: {bad}" for bad in raw.bad_samples]
    seen: set[tuple[str, int]] = set()
    for s in raw.samples:
        try:
            env = il.as_dict(s.get("metadata")).get("env_id") or ev.get("task") or ""
            fa = il.sample_facts(s, ev, registry.quota(str(env)), patterns)
            if (fa.sample_id, fa.epoch) in seen:
                raise il.Malformed(f"sample {fa.sample_id!r} epoch {fa.epoch} is in this log twice")
            seen.add((fa.sample_id, fa.epoch))
            read.append(fa)
        except Exception as exc:  # noqa: BLE001 - untrusted sample: quarantined, named, the rest kept
            quarantined.append(f"{f.rel}: {_label(s)}: {reason(exc)}")
    automated_real = il.automated_score_is_real(
        system["fle_version"], [fa.automated_production_score for fa in read if not fa.open_play]
    )
    samples = []
    for facts_ in read:
        row = _sample_row(base["source"], f, ev, facts_, job, job_version)
        row |= {
            "automated_production_score": facts_.automated_production_score
            if facts_.open_play or automated_real
            else None,
            "solver": (job or {}).get("solver") or facts_.solver_variant or facts.solver,
            **system,
            "log_status": raw.status,
        }
        try:
            row = fit(row, "inspect_samples")
            _check_steps(facts_)
        except il.Malformed as exc:
            quarantined.append(f"{f.rel}: sample {facts_.sample_id!r} epoch {facts_.epoch}: {exc}")
            continue
        # the winner of a dedup key: a valid copy first, then the newest log
        row["_order"] = (not facts_.invalidated, log_row["created"] or "", f.mtime_ns, f.rel)
        row["_sweep_id"] = log_row["sweep_id"]
        samples.append((facts_, row))
    return LogRows(f, log_row, samples, quarantined)


def _check_steps(fa: il.SampleFacts) -> None:
    """What the steps hold beyond the sample row: the prompt-token sum must fit 64 bits."""
    prompt = (fa.input_tokens or 0) + (fa.cache_read_tokens or 0) + (fa.cache_write_tokens or 0)
    if prompt >= 2**63:
        raise il.Malformed(f"prompt tokens {prompt} do not fit a 64-bit integer")


def _sample_row(
    source: str, f: LogFile, ev: dict, facts_: il.SampleFacts, job: dict | None, job_version
) -> dict[str, Any]:
    """One ``inspect_samples`` row, before the log-wide facts and fitting."""
    return {
        "source": source,
        "path": f.rel,
        "sample_id": facts_.sample_id,
        "epoch": facts_.epoch,
        "version": job_version if job_version is not None else _sample_version(f.rel, facts_.sample_id),
        "instance": facts_.epoch,
        "dedup_key": f"{ev.get('task_id') or f.rel}|{facts_.sample_id}|{facts_.epoch}",
        "task": facts_.task,
        "model": facts_.model,
        "quota": facts_.quota,
        "final_score": facts_.final_score,
        "fle_success": facts_.fle_success,
        "has_error": facts_.has_error,
        "error": facts_.error,
        "error_source": facts_.error_source,
        "limit_hit": facts_.limit,
        "failure_kind": facts_.failure_kind,
        "steps_from": facts_.steps_from,
        "steps": len(facts_.values),
        "scores_json": facts_.scores_json,
        **{k: getattr(facts_, k) for k in _SAMPLE_FIELDS},
        "trajectory_length": facts_.trajectory_length or _int((job or {}).get("trajectory_length")),
    }


_SAMPLE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_cost",
    "total_time",
    "working_time",
    "started_at",
    "completed_at",
    "invalidated_by",
    "invalidated_reason",
    "invalidated_at",
    "error_retries",
    "retry_errors",
    "fallbacks",
    "fallbacks_json",
    "open_play",
)


def _system_facts(facts: il.LogFacts, job: dict | None) -> dict[str, Any]:
    """The log-wide facts that say which system ran (``analysis.systems`` composes them):
    FLE's settings from the ``fle`` preset's job file, the rest from the log."""
    job = job or {}
    vision = job.get("vision")
    return {
        "vision": bool(vision) if isinstance(vision, bool) else None,
        "scenario": str(job["scenario"]) if job.get("scenario") else None,
        "generate_config": _json(facts.generate_config) if facts.generate_config else None,
        "fle_version": facts.fle_version or (str(job["fle_version"]) if job.get("fle_version") else None),
        "inspect_version": facts.inspect_version,
        "limits_changed": bool(facts.config_updates),
    }


def _json(value: Any) -> str | None:
    return json.dumps(value, sort_keys=True, default=str) if value not in (None, [], {}) else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
