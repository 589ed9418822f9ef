"""Shard logs and their merged log: which logs of a folder count, by Inspect's own rule.

A sharded run writes one log per worker under ``<dir>/<name>.shards/<k>/`` and a merge
writes ``<dir>/<name>.eval`` (or ``<name>-recovered.eval`` after a manual recovery) with
all of their samples. ``inspect view`` and ``list_eval_logs`` hide a shard when its
merged log is in the same listing with status ``success`` and the shard was last written
*before* it (inspect_ai's ``_shard_listing.filter_merged_shards``); a tie, a running or
failed merge, or a shard written after the merge (a retry) keeps the shard visible, so
ongoing work is never hidden. Sync follows the same rule: a hidden shard is recorded
(``merged_into``) but its samples are not read, so they count once, through the merged
log. A visible shard is an ordinary log; its samples meet the merged log's copies in
the eval-set rule (same task, sample and epoch count once).

Needs only the listing (names and modification times) plus the status of the merged
logs that could hide a shard (``merged_logs_to_check``).
"""

from __future__ import annotations

from collections.abc import Iterable, Set

from fle_core.sources.log_store import LogFile

SHARDS_SUFFIX = ".shards"
_RECOVERED = "-recovered"


def merged_candidates(rel: str) -> list[str] | None:
    """The merged logs a shard at ``<dir>/<name>.shards/<k>/<file>`` belongs to, or None
    when ``rel`` does not follow the shard layout."""
    parts = rel.split("/")
    if len(parts) < 3:
        return None
    shards_dir = parts[-3]
    if not shards_dir.endswith(SHARDS_SUFFIX) or shards_dir == SHARDS_SUFFIX:
        return None
    base = "/".join(parts[:-3])
    stem = shards_dir[: -len(SHARDS_SUFFIX)]
    prefix = f"{base}/{stem}" if base else stem
    return [f"{prefix}.eval", f"{prefix}{_RECOVERED}.eval"]


def merged_logs_to_check(logs: Iterable[LogFile]) -> list[str]:
    """The merged logs whose status decides whether a shard is hidden: those in the
    listing that are newer than at least one of their shards."""
    logs = list(logs)
    mtimes = {f.rel: f.mtime_ns for f in logs}
    out: set[str] = set()
    for f in logs:
        for cand in merged_candidates(f.rel) or []:
            if cand in mtimes and f.mtime_ns < mtimes[cand]:
                out.add(cand)
    return sorted(out)


def hidden_shards(logs: Iterable[LogFile], finished: Set[str]) -> dict[str, str]:
    """Shard path → the merged log that covers it, for every shard Inspect hides.

    ``finished``: merged logs (paths) whose status is ``success``. When both a merged log
    and its ``-recovered`` copy are listed, both must be finished and the older one
    decides, so fewer shards are hidden."""
    logs = list(logs)
    mtimes = {f.rel: f.mtime_ns for f in logs}
    out: dict[str, str] = {}
    for f in logs:
        cands = merged_candidates(f.rel)
        if cands is None:
            continue
        present = [c for c in cands if c in mtimes]
        if not present or any(c not in finished for c in present):
            continue
        oldest = min(present, key=lambda c: mtimes[c])
        if f.mtime_ns < mtimes[oldest]:
            out[f.rel] = oldest
    return out
