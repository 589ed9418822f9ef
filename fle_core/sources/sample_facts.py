"""What the warehouse keeps of one Inspect sample (a trajectory), from its raw JSON.

``sample_facts`` maps one raw sample (the JSON shape of Inspect's ``EvalSample``, as
either reader of ``inspect_logs`` gives it) to ``SampleFacts``: where FLE puts each field,
the per-step data from the ``TrajectoryData`` store, tokens, cost, times, and every kind
of failure. Each field's origin is listed in ``docs/inspect.md``. The rules that matter:

* **Errors** come from Inspect (the sample's ``error``), from FLE's solver (which
  swallows its own exceptions into ``TrajectoryData:error``), or from the scorer:
  ``has_error``/``error`` in its metadata, or ``scorer_error`` (FLE's
  ``comprehensive_factorio_scorer`` returns ``value=False`` with only that key when it
  raises: an error, never a zero).
* **Infrastructure** failures (game server, RCON, server pool, FLE's Docker sandbox,
  the model API) are told apart from the agent failing by their text (``INFRA_PATTERNS``).
* **Invalidation** (``inspect_ai.log.invalidate_samples``) is kept with its author,
  reason and time; the sample stays in the warehouse, and metrics leave it out.
* ``error_retries`` (errors Inspect retried before this result) and ``model_fallbacks``
  (requests another model served) are counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fle_core.tasks import normalize_task_key

STORE = "TrajectoryData:"

#: Error text that marks an *infrastructure* failure (the game server, RCON, the
#: server pool, FLE's Docker sandbox, the model API), not the agent failing the task.
#: Case-insensitive regexes; ``[inspect] infrastructure_patterns`` in config.toml adds more.
#: None has a ``.*``: "A, later on the same line B" is ``INFRA_PAIRS``, matched in linear
#: time (``\b502\b.*(error|…)`` took 15 s on 20 KB of "502 502 …": quadratic backtracking).
INFRA_PATTERNS: tuple[str, ...] = (
    r"could not connect to",
    r"\brcon\b",
    r"no factorio containers available",
    r"servers are in use",
    r"failed to create factorio environment",
    r"exceeds available containers",
    r"game server",
    r"connection (refused|reset|aborted|lost|closed)",
    r"connectionerror",
    r"broken pipe",
    r"server disconnected",
    r"ratelimiterror|rate limit",
    r"apiconnectionerror|apitimeouterror|internalservererror|serviceunavailable",
    # FLE's --sandbox mode: Inspect's Docker sandbox (SandboxUnavailableError, a container
    # found not running, OOM-killed, or a sandbox that never came up)
    r"sandboxunavailable|sandbox_unavailable|sandbox (is )?unavailable",
    r"container (exited|died|was killed|not found)",
    r"oom[- ]?kill|out of memory",
    r"cannot connect to the docker daemon",
)
#: ``(A, B)``: A, then later on the same line B (what ``A.*B`` meant, without backtracking).
INFRA_PAIRS: tuple[tuple[str, str], ...] = (
    (r"\b50[234]\b", r"error|gateway|unavailable"),
    (r"container\b", r"\b(is )?not running"),
    (r"docker (daemon|compose)\b", r"error|failed|not running|unavailable"),
)
#: Only the first and last this many characters of an error are classified: the cause is
#: at the start (the message) or the end (a traceback's last line), and the work stays
#: bounded on a 50 MB error.
CLASSIFY_CHARS = 4096


class Malformed(ValueError):
    """A field of a log or sample that cannot be what Inspect writes there (an epoch
    ``"abc"``, a number beyond float range, a timestamp before year 1): that sample (or
    log) is quarantined with this reason, and the rest syncs."""


#: FLE's throughput scorer first, then its other scorers, then any scorer.
_FLE_SCORERS = ("comprehensive_factorio_scorer", "throughput_proportion_scorer", "production_score")


@dataclass
class SampleFacts:
    """What the warehouse keeps of one (sample, epoch): the trajectory and its steps."""

    sample_id: str
    epoch: int
    task: str
    model: str
    quota: float | None  # the log's own (expected_production_score); the registry's applies at load
    values: list[float]
    depths: list[float]
    ticks: list[int | None]
    steps_from: str  # "store" (TrajectoryData:scores) | "score" (one step: the final score)
    final_score: float | None
    fle_success: bool | None  # FLE's own quota_achieved (None: open play / no score)
    has_error: bool
    error: str | None
    error_source: str | None  # "sample" (Inspect) | "store" (swallowed by FLE) | "score"
    limit: str | None
    failure_kind: str | None  # "infrastructure" | "error" | "limit" | None
    scores_json: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    total_cost: float | None = None  # dollars: the sum of ModelUsage.total_cost
    total_time: float | None = None
    working_time: float | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    invalidated_by: str | None = None  # invalidate_samples' author
    invalidated_reason: str | None = None
    invalidated_at: datetime | None = None
    error_retries: int = 0
    retry_errors: str | None = None  # the retried errors' messages
    fallbacks: int = 0  # requests another model served (sum of ModelFallback.count)
    fallbacks_json: str | None = None  # [{model, fallback_model, count}]
    automated_production_score: float | None = None
    trajectory_length: int | None = None  # sample metadata (FLE sets it from --trajectory-length)
    solver_variant: str | None = None  # sample metadata (FLE's open_play_<solver> tasks)
    open_play: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def invalidated(self) -> bool:
        return self.invalidated_by is not None or self.invalidated_at is not None


def num(v: Any) -> float | None:
    """A number as a float (None when absent or not a number); ``Malformed`` for an
    integer beyond float range (JSON allows 10**400)."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int):
        try:
            return float(v)
        except OverflowError:
            raise Malformed(f"a number with {len(str(abs(v)))} digits, beyond float range") from None
    if isinstance(v, float):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _floats(v: Any) -> list[float] | None:
    """A non-empty list of numbers as floats, else None."""
    if not isinstance(v, list) or not v:
        return None
    try:
        return list(map(float, v))
    except OverflowError:
        raise Malformed("a per-step score beyond float range") from None
    except (TypeError, ValueError):
        return None


def _depths(steps: Any, n: int) -> list[float]:
    """Depth of each score: FLE's ``steps[i]["step"] - 1`` when every step has its number
    (a step that raised is skipped by FLE, so numbers can jump), else 0..n-1."""
    if isinstance(steps, list) and len(steps) == n:
        try:
            return [float(s["step"]) - 1.0 for s in steps]
        except (TypeError, KeyError, ValueError):
            pass
    return [float(i) for i in range(n)]


def timestamp(v: Any) -> datetime | None:
    """An ISO timestamp as a naive UTC datetime (None when absent or unreadable)."""
    if not isinstance(v, str) or not v:
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    try:
        return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt
    except OverflowError:
        raise Malformed(f"timestamp {v[:40]!r} is out of range in UTC") from None


def epoch_of(v: Any) -> int:
    """A sample's epoch (1 when absent): a whole number from 1, or ``Malformed``. Inspect
    numbers epochs 1, 2, ...; ``1.5`` or ``0`` taken as 1 would merge two trajectories."""
    if v is None or v == "":
        return 1
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise Malformed(f"epoch {_short(v)} is not an integer from 1")
    return v


def _ticks(v: Any, n: int) -> list[int | None]:
    """Per-step game ticks: an integer that fits 64 bits, else null (a tick is a detail,
    not a reason to drop the sample's scores)."""
    if not isinstance(v, list) or len(v) != n:
        return [None] * n
    return [
        t if isinstance(t, int) and not isinstance(t, bool) and -(2**63) <= t < 2**63 else None for t in v
    ]


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _usage(model_usage: Any) -> dict[str, Any]:
    """Token and cost totals over every model a sample used."""
    tot: dict[str, Any] = {}
    if not isinstance(model_usage, dict):
        return tot
    keys = {
        "input_tokens": "input_tokens",
        "output_tokens": "output_tokens",
        "total_tokens": "total_tokens",
        "reasoning_tokens": "reasoning_tokens",
        "input_tokens_cache_read": "cache_read_tokens",
        "input_tokens_cache_write": "cache_write_tokens",
    }
    for usage in model_usage.values():
        if not isinstance(usage, dict):
            continue
        for src, dst in keys.items():
            if isinstance(usage.get(src), int):
                tot[dst] = tot.get(dst, 0) + usage[src]
        if isinstance(usage.get("total_cost"), (int, float)):
            tot["total_cost"] = tot.get("total_cost", 0.0) + float(usage["total_cost"])
    return tot


def error_text(err: Any) -> str | None:
    if isinstance(err, dict):
        return str(err.get("message") or err.get("traceback") or "") or None
    return str(err) if err else None


class _Then:
    """``A`` then, later on the same line, ``B``: linear in the text (each line is
    searched once for ``A`` and once after it for ``B``)."""

    def __init__(self, first: str, then: str):
        self.first = re.compile(first, re.IGNORECASE)
        self.then = re.compile(then, re.IGNORECASE)

    def search(self, text: str) -> bool:
        for line in text.split("\n"):
            m = self.first.search(line)
            if m is not None and self.then.search(line, m.end()):
                return True
        return False


def bounded(text: str, keep: int = CLASSIFY_CHARS) -> str:
    """The first and last ``keep`` characters of ``text`` (all of it when short)."""
    return text if len(text) <= 2 * keep else text[:keep] + "\n" + text[-keep:]


def classify(error: str | None, limit: str | None, patterns: Sequence[Any]) -> str | None:
    """``infrastructure`` when the error text matches a pattern (its first and last
    ``CLASSIFY_CHARS`` characters are searched), ``error`` for any other error, ``limit``
    when only a sample limit was hit, else None."""
    if error:
        text = bounded(error)
        return "infrastructure" if any(p.search(text) for p in patterns) else "error"
    return "limit" if limit else None


def compile_patterns(extra: Sequence[str] = ()) -> list[Any]:
    """The matchers ``classify`` uses: ``INFRA_PATTERNS``, ``INFRA_PAIRS`` and ``extra``
    (regexes from config.toml); each has ``search(text)``."""
    out: list[Any] = [re.compile(p, re.IGNORECASE) for p in (*INFRA_PATTERNS, *extra)]
    return out + [_Then(a, b) for a, b in INFRA_PAIRS]


def _fle_score(scores: dict[str, Any]) -> dict[str, Any] | None:
    for name in _FLE_SCORERS:
        if isinstance(scores.get(name), dict):
            return scores[name]
    return next((s for s in scores.values() if isinstance(s, dict)), None)


def _errors(raw: dict, store: dict, scores: dict, score_meta: dict) -> tuple[str | None, str | None]:
    """The sample's error and where it was found (see the module doc), first found wins."""
    sample_err = error_text(raw.get("error"))
    if sample_err:
        return sample_err, "sample"
    store_err = store.get(STORE + "error") or None
    if store_err:
        return str(store_err), "store"
    crashed = next(
        (
            str(as_dict(s.get("metadata")).get("scorer_error"))
            for s in scores.values()
            if isinstance(s, dict) and as_dict(s.get("metadata")).get("scorer_error")
        ),
        None,
    )
    if crashed:
        return f"the scorer raised: {crashed}", "score"
    score_err = score_meta.get("error") or None
    if score_err or score_meta.get("has_error"):
        return str(score_err or "the scorer reports an error"), "score"
    return None, None


def _retries(raw: dict) -> tuple[int, str | None]:
    retries = [r for r in raw.get("error_retries") or [] if isinstance(r, dict)]
    if not retries:
        return 0, None
    text = " | ".join(error_text(r) or "?" for r in retries)
    return len(retries), text[:2000]


def _fallbacks(raw: dict) -> tuple[int, str | None]:
    found = [f for f in raw.get("model_fallbacks") or [] if isinstance(f, dict)]
    if not found:
        return 0, None
    rows = [
        {
            "model": f.get("model"),
            "fallback_model": f.get("fallback_model"),
            "count": _count(f.get("count")),
        }
        for f in found
    ]
    return sum(int(r["count"] or 0) for r in rows), json.dumps(rows, sort_keys=True)


def _count(v: Any) -> int:
    if v is None:
        return 1
    if isinstance(v, bool) or not isinstance(v, int):
        raise Malformed(f"a model fallback count {_short(v)} is not an integer")
    return v


def _automated(scores: dict, store: dict) -> float | None:
    sc = scores.get("automated_production_score")
    if isinstance(sc, dict) and num(sc.get("value")) is not None:
        return num(sc.get("value"))
    for key in ("final_automated_score", "automated_production_score"):
        if num(store.get(STORE + key)) is not None:
            return num(store.get(STORE + key))
    return None


def sample_facts(
    raw: dict[str, Any],
    log_eval: dict[str, Any],
    registry_quota: float | None,
    patterns: Sequence[Any],
) -> SampleFacts:
    """Map one raw sample (Inspect's JSON shape) to ``SampleFacts`` (see docs/inspect.md)."""
    meta, store, scores = as_dict(raw.get("metadata")), as_dict(raw.get("store")), as_dict(raw.get("scores"))
    env_id = meta.get("env_id") or log_eval.get("task") or ""
    task = normalize_task_key(str(env_id)) if env_id else str(log_eval.get("task") or "")
    quota = num(meta.get("expected_production_score"))
    fle_score = _fle_score(scores)
    score_meta = as_dict((fle_score or {}).get("metadata"))
    if quota is None:
        quota = num(score_meta.get("expected_score"))
    open_play = quota is None and (
        meta.get("task_type") == "unbounded_production" or "production_score" in scores
    )
    error, source = _errors(raw, store, scores, score_meta)
    final = num(score_meta.get("production_score"))
    if final is None and fle_score is not None and source != "score":
        value = num(fle_score.get("value"))  # a crashed scorer's False is no score at all
        unit = quota or registry_quota
        if value is not None and open_play:
            final = value
        elif value is not None and unit:
            final = value * unit  # a proportion of the quota: back to production-score units
    if final is None:
        final = num(store.get(STORE + "final_score")) or num(store.get(STORE + "production_score"))
    values = _floats(store.get(STORE + "scores"))
    if values:
        steps_from = "store"
        ticks = _ticks(store.get(STORE + "ticks"), len(values))
        depths = _depths(store.get(STORE + "steps"), len(values))
    else:
        values = [final] if final is not None else []
        depths = [0.0] if values else []
        ticks = [None for _ in values]
        steps_from = "score"
    lim = raw.get("limit")
    limit = f"{lim.get('type')} limit {lim.get('limit')}" if isinstance(lim, dict) else None
    achieved = score_meta.get("quota_achieved")
    usage = _usage(raw.get("model_usage"))
    all_scores = {k: v.get("value") for k, v in scores.items() if isinstance(v, dict)}
    inval = as_dict(raw.get("invalidation"))
    retries, retry_text = _retries(raw)
    fallbacks, fallbacks_json = _fallbacks(raw)
    length = num(meta.get("trajectory_length"))
    return SampleFacts(
        sample_id=str(raw.get("id")),
        epoch=epoch_of(raw.get("epoch")),
        task=task,
        model=str(log_eval.get("model") or ""),
        quota=quota,
        values=values,
        depths=depths,
        ticks=ticks,
        steps_from=steps_from,
        final_score=final,
        fle_success=bool(achieved) if isinstance(achieved, bool) else None,
        has_error=error is not None,
        error=error,
        error_source=source,
        limit=limit,
        failure_kind=classify(error, limit, patterns),
        scores_json=json.dumps(all_scores, sort_keys=True, default=str) if all_scores else None,
        total_time=num(raw.get("total_time")),
        working_time=num(raw.get("working_time")),
        started_at=timestamp(raw.get("started_at")),
        completed_at=timestamp(raw.get("completed_at")),
        invalidated_by=(str(inval.get("author")) if inval.get("author") is not None else "")
        if inval
        else None,
        invalidated_reason=str(inval["reason"]) if inval.get("reason") else None,
        invalidated_at=timestamp(inval.get("timestamp")),
        error_retries=retries,
        retry_errors=retry_text,
        fallbacks=fallbacks,
        fallbacks_json=fallbacks_json,
        automated_production_score=_automated(scores, store),
        trajectory_length=int(length) if length is not None else None,
        solver_variant=str(meta["solver_variant"]) if meta.get("solver_variant") else None,
        open_play=bool(open_play),
        **usage,
    )
