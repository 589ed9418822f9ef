"""Read Inspect AI eval logs, the only thing ``fle inspect-eval`` (FLE >= 0.4) writes.

This module knows the log *format*; where logs are kept (a local folder, object
storage) is ``log_store``'s, and what a folder of logs is as a source is
``log_folder``'s. A log is read through a ``LogRef`` (its name and a way to open it).
``.eval`` logs are zip files
(``header.json`` is written last, so a running or killed log has only
``_journal/start.json`` plus the ``samples/*.json`` finished so far); ``.json`` logs
hold the whole ``EvalLog`` in one document.

Two readers give the same raw dicts (the JSON shape of Inspect's ``EvalSample``):

* the **fast** reader parses the zip members (zstd, deflate or stored) and the JSON
  directly, about 10x cheaper per sample than validating pydantic models; it only
  reads log format versions it knows (``FAST_FORMAT_VERSIONS``);
* any other version goes through **inspect_ai's public API** (``read_eval_log`` /
  ``read_eval_log_samples``), imported lazily because importing it costs ~2 s.

``sample_facts`` maps one raw sample to what the warehouse keeps (see
``docs/inspect.md``): where FLE puts each field, the per-step data from the
``TrajectoryData`` store, tokens, times, and every kind of failure.
Messages, events and images stay in the log; ``read_transcript`` fetches one
sample's programs and the game's output on demand.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fle_core.errors import SourceError, SourceUnavailable
from fle_core.tasks import normalize_task_key

#: Log format versions (``EvalLog.version``) the fast reader understands.
FAST_FORMAT_VERSIONS = frozenset({2})
_STORE = "TrajectoryData:"

#: Error text that marks an *infrastructure* failure (the game server, RCON, the
#: server pool, the model API), not the agent failing the task. Case-insensitive
#: regexes; ``[inspect] infrastructure_patterns`` in config.toml adds more.
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
    r"\b50[234]\b.*(error|gateway|unavailable)",
)


# ---------------------------------------------------------------- one log
@dataclass(frozen=True)
class LogRef:
    """One log to read: its file ``name`` (for messages), a way to ``open`` it as a seekable
    binary file, and the ``url`` inspect_ai's own readers open (a path or a storage URL)."""

    name: str
    open: Callable[[], contextlib.AbstractContextManager[IO[bytes]]]
    url: str

    @property
    def suffix(self) -> str:
        return "." + self.name.rsplit(".", 1)[-1] if "." in self.name else ""

    @classmethod
    def local(cls, path: Path) -> LogRef:
        return cls(path.name, lambda: open(path, "rb"), str(path))


def parse_job_file(data: bytes | None) -> dict[str, Any] | None:
    """The sweep job facts (``version``, ``sweep_id``, ``cell_id``, ``attempt``) the ``fle``
    preset left in a job's log folder (``fle-job.json``), or None."""
    if data is None:
        return None
    try:
        facts = json.loads(data)
    except ValueError:
        return None
    return facts if isinstance(facts, dict) and isinstance(facts.get("version"), int) else None


# ---------------------------------------------------------------- reading one log
@dataclass
class RawLog:
    """A log as raw JSON dicts: ``status`` is Inspect's (``started`` while running)."""

    format: str  # "eval" | "json"
    reader: str  # "fast" | "inspect_ai"
    version: int | None
    status: str
    eval: dict[str, Any]
    results: dict[str, Any] | None
    error: dict[str, Any] | None
    samples: list[dict[str, Any]]


class LogReadError(SourceError):
    """A log that cannot be read (corrupt zip, not JSON, not an Inspect log)."""


def read_log(ref: LogRef | Path, *, force_api: bool = False) -> RawLog:
    """Read a log with the fast reader when its format version is known, else the public API.

    ``LogReadError`` when the log itself cannot be read; a store that cannot be reached
    (``SourceUnavailable``) propagates, so a network failure never reads as a bad log."""
    ref = LogRef.local(ref) if isinstance(ref, Path) else ref
    try:
        if not force_api:
            raw = _read_fast(ref)
            if raw is not None:
                return raw
        return _read_api(ref)
    except (LogReadError, SourceUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure names the file and the reason
        raise LogReadError(f"{ref.name}: {type(exc).__name__}: {exc}") from None


def _read_fast(ref: LogRef) -> RawLog | None:
    """The zip / JSON parsed directly; None for a format version this reader does not know."""
    if ref.suffix == ".json":
        with ref.open() as fh:
            doc = _loads(fh.read())
        if not isinstance(doc, dict) or "eval" not in doc:
            raise LogReadError(f"{ref.name}: not an Inspect log (no 'eval' field)")
        if doc.get("version") not in FAST_FORMAT_VERSIONS:
            return None
        return RawLog(
            "json",
            "fast",
            doc.get("version"),
            str(doc.get("status") or "started"),
            doc["eval"],
            doc.get("results"),
            doc.get("error"),
            [s for s in doc.get("samples") or [] if isinstance(s, dict)],
        )
    with ref.open() as fh, _Zip(fh, ref.name) as zf:
        names = zf.names()
        head = zf.json("header.json") if "header.json" in names else None
        start = head or (zf.json("_journal/start.json") if "_journal/start.json" in names else None)
        if start is None:
            raise LogReadError(f"{ref.name}: no header.json and no _journal/start.json")
        if start.get("version") not in FAST_FORMAT_VERSIONS:
            return None
        samples = [
            _load_sample(zf.read(n))
            for n in sorted(names)
            if n.startswith("samples/") and n.endswith(".json")
        ]
    return RawLog(
        "eval",
        "fast",
        start.get("version"),
        str(head.get("status")) if head else "started",
        start["eval"],
        head.get("results") if head else None,
        head.get("error") if head else None,
        samples,
    )


def _sample_decoder():
    """A msgspec decoder for the sample fields sync uses: it skips ``messages``, ``events``
    and the rest without building them (~6x faster than parsing the whole sample)."""
    global _SAMPLE_DECODER
    if _SAMPLE_DECODER is None:
        import msgspec

        class _Sample(msgspec.Struct):
            id: Any = None
            epoch: Any = None
            scores: Any = None
            metadata: Any = None
            store: Any = None
            model_usage: Any = None
            started_at: Any = None
            completed_at: Any = None
            total_time: Any = None
            working_time: Any = None
            error: Any = None
            limit: Any = None

        _SAMPLE_DECODER = (msgspec.json.Decoder(_Sample), msgspec.structs.asdict, msgspec.DecodeError)
    return _SAMPLE_DECODER


_SAMPLE_DECODER: Any = None


def _load_sample(data: bytes) -> dict[str, Any]:
    """One sample's fields that sync uses (``_sample_decoder``); a document msgspec refuses
    (e.g. a NaN literal) is parsed whole instead, so the result is the same dict."""
    decoder, asdict, error = _sample_decoder()
    try:
        return {k: v for k, v in asdict(decoder.decode(data)).items() if v is not None}
    except error:
        return _loads(data)


def _loads(data: bytes) -> Any:
    """JSON → Python objects with pydantic-core's parser (2-3x faster than ``json.loads``,
    same result; NaN and Infinity allowed, as Python's ``json`` writes them)."""
    from pydantic_core import from_json

    return from_json(data, allow_inf_nan=True)


class _Zip:
    """Zip members read by offset: stdlib ``zipfile`` lists them, but Python 3.11 cannot
    decompress zstd (method 93), which inspect_ai writes."""

    _ZSTD, _DEFLATE, _STORED = 93, 8, 0

    def __init__(self, fh: IO[bytes], name: str):
        self.name = name
        self._fh = fh  # owned by the caller
        try:
            self._zip = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError) as exc:
            raise LogReadError(f"{name}: not a readable zip ({exc})") from None

    def __enter__(self) -> _Zip:
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    def names(self) -> set[str]:
        return set(self._zip.namelist())

    def read(self, name: str) -> bytes:
        info = self._zip.getinfo(name)
        self._fh.seek(info.header_offset)
        local = self._fh.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise LogReadError(f"{self.name}: member {name} has a bad local header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        self._fh.seek(info.header_offset + 30 + name_len + extra_len)
        data = self._fh.read(info.compress_size)
        if info.compress_type == self._ZSTD:
            import zstandard

            out = b"".join(_zstd_frames(zstandard.ZstdDecompressor(), data))
        elif info.compress_type == self._DEFLATE:
            out = zlib.decompress(data, -15)
        elif info.compress_type == self._STORED:
            out = data
        else:
            raise LogReadError(f"{self.name}: member {name} uses compression {info.compress_type}")
        if len(out) != info.file_size or zlib.crc32(out) != info.CRC:
            raise LogReadError(f"{self.name}: member {name} is damaged (size or CRC mismatch)")
        return out

    def json(self, name: str) -> Any:
        return _loads(self.read(name))


def _zstd_frames(dctx, data: bytes) -> Iterator[bytes]:
    """Decompress every frame (inspect_ai caps frames at 200 MiB of input)."""
    while data:
        obj = dctx.decompressobj()
        yield obj.decompress(data)
        data = obj.unused_data


def _read_api(ref: LogRef) -> RawLog:
    """The same dicts through inspect_ai's public log API (any format version it reads)."""
    from inspect_ai.log import read_eval_log, read_eval_log_samples

    head = read_eval_log(ref.url, header_only=True)
    samples = []
    if head.status != "started" or ref.suffix == ".eval":
        for sample in read_eval_log_samples(ref.url, all_samples_required=False):
            samples.append(sample.model_dump(mode="json", exclude_none=True))
    dumped = head.model_dump(mode="json", exclude_none=True)
    return RawLog(
        "json" if ref.suffix == ".json" else "eval",
        "inspect_ai",
        head.version,
        str(head.status),
        dumped["eval"],
        dumped.get("results"),
        dumped.get("error"),
        samples,
    )


def read_transcript(url: str, sample_id: str, epoch: int, max_chars: int = 20_000) -> list[dict[str, str]]:
    """One sample's transcript for the trajectory viewer, read from the log (a path or a
    storage URL) on demand: ``[{"role", "text"}]`` (the agent's programs and the game's
    output), each text cut to ``max_chars``. Uses inspect_ai's public API
    (``read_eval_log_sample``)."""
    from inspect_ai.log import read_eval_log_sample

    name = url.rstrip("/").rsplit("/", 1)[-1]
    try:
        sample = read_eval_log_sample(url, id=sample_id, epoch=int(epoch))
    except Exception as exc:  # noqa: BLE001 - shown to the user with the file's name
        raise LogReadError(f"{name}: cannot read sample {sample_id} epoch {epoch}: {exc}") from None
    out = []
    for msg in sample.messages:
        text = msg.text if hasattr(msg, "text") else str(msg.content)
        out.append({"role": str(msg.role), "text": text[:max_chars]})
    return out


# ---------------------------------------------------------------- FLE's fields
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
    total_cost: float | None = None
    total_time: float | None = None
    working_time: float | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _floats(v: Any) -> list[float] | None:
    """A non-empty list of numbers as floats, else None."""
    if not isinstance(v, list) or not v:
        return None
    try:
        return list(map(float, v))
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


def _ts(v: Any) -> datetime | None:
    if not isinstance(v, str) or not v:
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


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


def _error_text(err: Any) -> str | None:
    if isinstance(err, dict):
        return str(err.get("message") or err.get("traceback") or "") or None
    return str(err) if err else None


def classify(error: str | None, limit: str | None, patterns: Sequence[re.Pattern[str]]) -> str | None:
    """``infrastructure`` when the error text matches a pattern, ``error`` for any other
    error, ``limit`` when only a sample limit was hit, else None."""
    if error:
        return "infrastructure" if any(p.search(error) for p in patterns) else "error"
    return "limit" if limit else None


def compile_patterns(extra: Sequence[str] = ()) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in (*INFRA_PATTERNS, *extra)]


def sample_facts(
    raw: dict[str, Any],
    log_eval: dict[str, Any],
    registry_quota: float | None,
    patterns: Sequence[re.Pattern[str]],
) -> SampleFacts:
    """Map one raw sample (Inspect's JSON shape) to ``SampleFacts`` (see docs/inspect.md)."""
    meta, store, scores = _dict(raw.get("metadata")), _dict(raw.get("store")), _dict(raw.get("scores"))
    env_id = meta.get("env_id") or log_eval.get("task") or ""
    task = normalize_task_key(str(env_id)) if env_id else str(log_eval.get("task") or "")
    quota = _num(meta.get("expected_production_score"))
    fle_score = None
    for name in ("comprehensive_factorio_scorer", "throughput_proportion_scorer", "production_score"):
        if isinstance(scores.get(name), dict):
            fle_score = scores[name]
            break
    if fle_score is None and scores:
        fle_score = next((s for s in scores.values() if isinstance(s, dict)), None)
    score_meta = (fle_score or {}).get("metadata") or {}
    if quota is None:
        quota = _num(score_meta.get("expected_score"))
    open_play = quota is None and (
        meta.get("task_type") == "unbounded_production" or "production_score" in scores
    )
    final = _num(score_meta.get("production_score"))
    if final is None and fle_score is not None:
        value = _num(fle_score.get("value"))
        unit = quota or registry_quota
        if value is not None and open_play:
            final = value
        elif value is not None and unit:
            final = value * unit  # a proportion of the quota: back to production-score units
    if final is None:
        final = _num(store.get(_STORE + "final_score")) or _num(store.get(_STORE + "production_score"))
    values = _floats(store.get(_STORE + "scores"))
    if values:
        steps_from = "store"
        ticks_raw = store.get(_STORE + "ticks")
        ticks: list[int | None] = (
            ticks_raw
            if isinstance(ticks_raw, list) and len(ticks_raw) == len(values)
            else [None] * len(values)
        )  # a non-integer tick becomes null when the steps are written
        depths = _depths(store.get(_STORE + "steps"), len(values))
    else:
        values = [final] if final is not None else []
        depths = [0.0] if values else []
        ticks = [None for _ in values]
        steps_from = "score"
    sample_err = _error_text(raw.get("error"))
    store_err = store.get(_STORE + "error") or None
    score_err = score_meta.get("error") or None
    if sample_err:
        error, source = sample_err, "sample"
    elif store_err:
        error, source = str(store_err), "store"
    elif score_err or score_meta.get("has_error"):
        error, source = str(score_err or "the scorer reports an error"), "score"
    else:
        error, source = None, None
    lim = raw.get("limit")
    limit = f"{lim.get('type')} limit {lim.get('limit')}" if isinstance(lim, dict) else None
    achieved = score_meta.get("quota_achieved")
    usage = _usage(raw.get("model_usage"))
    all_scores = {k: v.get("value") for k, v in scores.items() if isinstance(v, dict)}
    return SampleFacts(
        sample_id=str(raw.get("id")),
        epoch=int(raw.get("epoch") or 1),
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
        total_time=_num(raw.get("total_time")),
        working_time=_num(raw.get("working_time")),
        started_at=_ts(raw.get("started_at")),
        completed_at=_ts(raw.get("completed_at")),
        **usage,
    )


def headline(results: dict[str, Any] | None) -> tuple[str, float] | None:
    """The log's own headline metric ``(label, value)``, labelled for what it is: FLE's
    ``accuracy`` over ``comprehensive_factorio_scorer`` is the mean throughput proportion
    (``min(production / quota, 1)``), not a success rate."""
    if not isinstance(results, dict):
        return None
    for sc in results.get("scores") or []:
        metrics = sc.get("metrics") or {}
        for name, m in metrics.items():
            value = _num((m or {}).get("value"))
            if value is None:
                continue
            if sc.get("name") == "comprehensive_factorio_scorer" and name in ("accuracy", "mean"):
                return "mean throughput proportion (FLE's 'accuracy'; not a success rate)", value
            return f"{sc.get('name')} {name}", value
    return None


def expected_samples(log_eval: dict[str, Any]) -> int | None:
    """Samples × epochs the log was asked to run (None when the log does not say)."""
    ds = log_eval.get("dataset") or {}
    n = ds.get("samples")
    epochs = (log_eval.get("config") or {}).get("epochs") or 1
    return int(n) * int(epochs) if isinstance(n, int) else None


# ---------------------------------------------------------------- sweep jobs
def job_verdict(
    raw: RawLog, log_name: str, expected_sample: str, max_chars: int = 500
) -> tuple[bool, str | None]:
    """Did a job of the ``fle`` preset produce what it was asked for, judged by its newest
    log? ``(True, None)`` when the log has status ``success`` and the expected sample
    (epoch 1) is scored with no error; else ``(False, reason)`` with the log's own error,
    the sample's error or the error FLE swallowed into ``TrajectoryData:error``."""

    def cut(text: str) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= max_chars else text[: max_chars - 1] + "…"

    samples = [s for s in raw.samples if int(s.get("epoch") or 1) == 1]
    sample = next((s for s in samples if str(s.get("id")) == expected_sample), None)
    if sample is None and len(samples) == 1:
        sample = samples[0]
    sample_err = _error_text(sample.get("error")) if sample else None
    if raw.status != "success":
        why = _error_text(raw.error) or sample_err
        if raw.status == "started":
            what = "its log was never finished (no header.json: the eval was killed or crashed)"
        else:
            what = f"its log has status {raw.status}"
        return False, cut(what + (f": {why}" if why else ""))
    if sample is None:
        return False, cut(f"its log ({log_name}) has no sample {expected_sample} (epoch 1)")
    if sample_err:
        return False, cut(f"sample {sample.get('id')} errored: {sample_err}")
    if not sample.get("scores"):
        return False, cut(f"sample {sample.get('id')} was not scored")
    swallowed = (sample.get("store") or {}).get(_STORE + "error")
    if swallowed:
        return False, cut(f"FLE swallowed an error: {swallowed}")
    return True, None
