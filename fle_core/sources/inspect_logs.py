"""Read Inspect AI eval logs, the only thing ``fle inspect-eval`` (FLE >= 0.4) writes.

This module knows the log *format*; where logs are kept (a local folder, object
storage) is ``log_store``'s, and what a folder of logs is as a source is
``log_folder``'s. A log is read through a ``LogRef`` (its name and a way to open it).
``.eval`` logs are zip files (``log_zip``: ``header.json`` is written last, so a running
or killed log has only ``_journal/start.json`` plus the samples finished so far);
``.json`` logs hold the whole ``EvalLog`` in one document.

Two readers give the same raw dicts (the JSON shape of Inspect's ``EvalSample``):

* the **fast** reader parses the zip members (zstd, deflate or stored) and the JSON
  directly, about 10x cheaper per sample than validating pydantic models. It follows
  the log's *structure*, not its version number: a sample is a monolith member or a
  chunked folder (shell + ``metadata.json``), told apart by member names, and a layout
  it does not know fails that log with a named reason (``log_zip.sample_layout``). It
  reads log format versions it knows (``FAST_FORMAT_VERSIONS``);
* any other version goes through **inspect_ai's public API** (``read_eval_log`` /
  ``read_eval_log_samples``), imported lazily because importing it costs ~2 s.
  (inspect_ai 0.3.285 cannot read chunked samples itself.)

``sample_facts`` (its own module) maps one raw sample to what the warehouse keeps;
``log_facts`` the log-level facts (tags and edits, mid-run config changes, solver,
package versions, generate config). Messages and events stay in the log; the
``transcript`` module reads one sample's on demand.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fle_core.errors import SourceUnavailable
from fle_core.sources.log_zip import LogReadError, SampleMembers, ZipLog, loads, sample_layout
from fle_core.sources.sample_facts import (  # re-exported: the format's public names
    INFRA_PATTERNS as INFRA_PATTERNS,
)
from fle_core.sources.sample_facts import (
    STORE as STORE,
)
from fle_core.sources.sample_facts import (
    Malformed as Malformed,
)
from fle_core.sources.sample_facts import (
    SampleFacts as SampleFacts,
)
from fle_core.sources.sample_facts import (
    as_dict as as_dict,
)
from fle_core.sources.sample_facts import (
    classify as classify,
)
from fle_core.sources.sample_facts import (
    compile_patterns as compile_patterns,
)
from fle_core.sources.sample_facts import (
    error_text as error_text,
)
from fle_core.sources.sample_facts import (
    num as num,
)
from fle_core.sources.sample_facts import (
    sample_facts as sample_facts,
)

__all__ = [
    "FAST_FORMAT_VERSIONS",
    "INFRA_PATTERNS",
    "LogFacts",
    "LogReadError",
    "LogRef",
    "Malformed",
    "RawLog",
    "SampleFacts",
    "classify",
    "compile_patterns",
    "expected_samples",
    "headline",
    "job_verdict",
    "log_facts",
    "parse_job_file",
    "read_log",
    "sample_facts",
]

#: Log format versions (``EvalLog.version``) the fast reader understands.
FAST_FORMAT_VERSIONS = frozenset({2})
#: Job-file keys the ``fle`` preset records (FLE's settings Inspect never writes into the log).
JOB_SETTINGS = ("solver", "trajectory_length", "vision", "scenario", "fle_version")
#: ``GenerateConfig`` fields that change what the model does (so two runs differing in one
#: are two systems); connection, timeout, cache and seed settings are not among them.
GENERATE_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "frequency_penalty",
    "presence_penalty",
    "reasoning_effort",
    "reasoning_tokens",
    "reasoning_summary",
    "reasoning_history",
    "verbosity",
    "effort",
    "system_message",
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
    """The sweep job facts (``version``, ``sweep_id``, ``cell_id``, ``attempt``, and FLE's
    settings ``JOB_SETTINGS``) the ``fle`` preset left in a job's log folder
    (``fle-job.json``), or None."""
    if data is None:
        return None
    try:
        facts = json.loads(data)
    except ValueError:
        return None
    return facts if isinstance(facts, dict) and isinstance(facts.get("version"), int) else None


@dataclass
class RawLog:
    """A log as raw JSON dicts: ``status`` is Inspect's (``started`` while running);
    ``header`` holds the log-level keys besides ``eval`` (``plan``, ``invalidated``,
    ``tags``, ``metadata``, ``log_updates``, ``config_updates``)."""

    format: str  # "eval" | "json"
    reader: str  # "fast" | "inspect_ai"
    version: int | None
    status: str
    eval: dict[str, Any]
    results: dict[str, Any] | None
    error: dict[str, Any] | None
    samples: list[dict[str, Any]]
    header: dict[str, Any]
    #: samples that could not be read, each "where: reason" (the others are in ``samples``)
    bad_samples: list[str] = field(default_factory=list)


_HEADER_KEYS = ("plan", "invalidated", "tags", "metadata", "log_updates", "config_updates")


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
        raise LogReadError(f"{ref.name}: {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def _read_fast(ref: LogRef) -> RawLog | None:
    """The zip / JSON parsed directly; None for a format version this reader does not know."""
    if ref.suffix == ".json":
        with ref.open() as fh:
            doc = loads(fh.read())
        if not isinstance(doc, dict) or "eval" not in doc:
            raise LogReadError(f"{ref.name}: not an Inspect log (no 'eval' field)")
        if doc.get("version") not in FAST_FORMAT_VERSIONS:
            return None
        samples = doc.get("samples") or []
        if not isinstance(samples, list):
            raise LogReadError(f"{ref.name}: unknown log layout: 'samples' is not a list")
        good, bad = _each_sample(
            (f"samples[{i}]", functools.partial(_same, s)) for i, s in enumerate(samples)
        )
        return RawLog(
            "json",
            "fast",
            doc.get("version"),
            str(doc.get("status") or "started"),
            doc["eval"],
            doc.get("results"),
            doc.get("error"),
            good,
            {k: doc[k] for k in _HEADER_KEYS if k in doc},
            bad,
        )
    with ref.open() as fh, ZipLog(fh, ref.name) as zf:
        names = zf.names()
        head = zf.json("header.json") if "header.json" in names else None
        start = head or (zf.json("_journal/start.json") if "_journal/start.json" in names else None)
        if not isinstance(start, dict):
            raise LogReadError(f"{ref.name}: no header.json and no _journal/start.json")
        if start.get("version") not in FAST_FORMAT_VERSIONS:
            return None
        samples, bad = _each_sample(
            (m.member, functools.partial(_zip_sample, zf, m)) for m in sample_layout(names, ref.name)
        )
    if not isinstance(start.get("eval"), dict):
        raise LogReadError(f"{ref.name}: unknown log layout: the header has no 'eval' object")
    return RawLog(
        "eval",
        "fast",
        start.get("version"),
        str(head.get("status")) if head else "started",
        start["eval"],
        head.get("results") if head else None,
        head.get("error") if head else None,
        samples,
        {k: start[k] for k in _HEADER_KEYS if k in start},
        bad,
    )


def _zip_sample(zf: ZipLog, members: SampleMembers) -> Any:
    sample = _load_sample(zf.read(members.member))
    if members.shape == "chunked" and isinstance(sample, dict):  # its metadata is beside the shell
        sample["metadata"] = zf.json(members.metadata) if members.metadata else {}
    return sample


def _same(value: Any) -> Any:
    return value


def _each_sample(found: Iterable[tuple[str, Callable[[], Any]]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Each sample read on its own: one that cannot be read (damaged member, not JSON, not a
    sample) is named with its reason in the second list, and the others are kept."""
    good: list[dict[str, Any]] = []
    bad: list[str] = []
    for where, load in found:
        try:
            good.append(_checked(load(), where, ""))
        except Exception as exc:  # noqa: BLE001 - one unreadable sample costs only itself
            text = " ".join(str(exc).split())[:300].removeprefix(": ")
            bad.append(
                f"{where}: {text if isinstance(exc, LogReadError) else f'{type(exc).__name__}: {text}'}"
            )
    return good, bad


def _checked(sample: Any, where: str, log_name: str) -> dict[str, Any]:
    """A sample must be an object with its id and epoch; anything else fails the log, named
    (the epoch's value is checked with the other fields: ``sample_facts.epoch_of``)."""
    if not isinstance(sample, dict) or "id" not in sample or "epoch" not in sample:
        what = type(sample).__name__ if not isinstance(sample, dict) else "an object without id and epoch"
        raise LogReadError(f"{log_name}: unknown sample layout: {where} is {what}, not a sample")
    return sample


def _sample_decoder():
    """A msgspec decoder for the sample fields sync uses: it skips ``messages``, ``events``
    and the rest without building them (~6x faster than parsing the whole sample)."""
    global _SAMPLE_DECODER
    if _SAMPLE_DECODER is None:
        import msgspec

        class _Sample(msgspec.Struct):
            id: Any = None
            epoch: Any = None
            uuid: Any = None
            scores: Any = None
            metadata: Any = None
            store: Any = None
            model_usage: Any = None
            model_fallbacks: Any = None
            started_at: Any = None
            completed_at: Any = None
            total_time: Any = None
            working_time: Any = None
            error: Any = None
            error_retries: Any = None
            invalidation: Any = None
            limit: Any = None

        _SAMPLE_DECODER = (msgspec.json.Decoder(_Sample), msgspec.structs.asdict, msgspec.DecodeError)
    return _SAMPLE_DECODER


_SAMPLE_DECODER: Any = None


def _load_sample(data: bytes) -> Any:
    """One sample's fields that sync uses (``_sample_decoder``); a document msgspec refuses
    (e.g. a NaN literal, or not an object at all) is parsed whole instead."""
    decoder, asdict, error = _sample_decoder()
    try:
        return {k: v for k, v in asdict(decoder.decode(data)).items() if v is not None}
    except error:
        return loads(data)


def _read_api(ref: LogRef) -> RawLog:
    """The same dicts through inspect_ai's public log API (any format version it reads)."""
    from inspect_ai.log import read_eval_log, read_eval_log_samples

    head = read_eval_log(ref.url, header_only=True)
    samples = []
    if head.status != "started" or ref.suffix == ".eval":
        for sample in read_eval_log_samples(ref.url, all_samples_required=False):
            samples.append(sample.model_dump(mode="json", exclude_none=True))
    if ref.suffix == ".eval":
        _check_all_read(ref, len(samples), head.eval.packages.get("inspect_ai"))
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
        {k: dumped[k] for k in _HEADER_KEYS if k in dumped},
    )


def _check_all_read(ref: LogRef, read: int, version: str | None) -> None:
    """The public API skips samples in a shape its version does not know (0.3.285 reads no
    chunked sample and says nothing): fewer samples than the zip holds fails the log."""
    with ref.open() as fh, ZipLog(fh, ref.name) as zf:
        layout = sample_layout(zf.names(), ref.name)
    if read < len(layout):
        chunked = sum(s.shape == "chunked" for s in layout)
        raise LogReadError(
            f"{ref.name}: inspect_ai read {read} of its {len(layout)} samples"
            + (f" ({chunked} chunked; the log was written by inspect_ai {version})" if chunked else "")
        )


# ---------------------------------------------------------------- log-level facts
@dataclass
class LogFacts:
    """What a log says about the run as a whole, beyond its samples (see docs/inspect.md)."""

    invalidated: bool
    tags: list[str]
    metadata: dict[str, Any]
    edits: list[dict[str, Any]]  # log_updates: [{author, reason, timestamp, edits: [...]}]
    config_updates: list[dict[str, Any]]  # [{author, reason, timestamp, scope, changes: [...]}]
    solver: str | None  # FLE's solver variant, else the plan's solver names
    inspect_version: str | None
    fle_version: str | None
    generate_config: dict[str, Any]  # GENERATE_FIELDS that are set


_FLE_SOLVER = re.compile(r"^factorio_(?P<variant>[a-z0-9_]+?)_solver$")
_FLE_PACKAGES = ("factorio-learning-environment", "factorio_learning_environment", "fle")


def plan_solver(plan: Any) -> str | None:
    """The solver a log's plan ran, as FLE names it: ``factorio_<variant>_solver`` (FLE's
    ``SOLVER_MAP``) → ``<variant>``; other solvers keep their registry names (package
    prefix dropped), several joined with ``+``."""
    steps = as_dict(plan).get("steps")
    names = []
    for step in steps if isinstance(steps, list) else []:
        name = str(as_dict(step).get("solver") or "").rsplit("/", 1)[-1]
        if name:
            m = _FLE_SOLVER.match(name)
            names.append(m.group("variant") if m else name)
    return "+".join(names) or None


def _provenance(update: dict[str, Any], what: str) -> dict[str, Any]:
    prov = as_dict(update.get("provenance"))
    return {
        "author": prov.get("author"),
        "reason": prov.get("reason"),
        "timestamp": prov.get("timestamp"),
        what: update.get(what) or [],
    }


def log_facts(raw: RawLog) -> LogFacts:
    """The log-level facts of ``raw``: the effective tags and metadata (after edits), the
    edits and mid-run config changes with their provenance, and what names the system."""
    ev, head = raw.eval, raw.header
    packages = {str(k): str(v) for k, v in as_dict(ev.get("packages")).items()}
    meta = as_dict(head.get("metadata")) or as_dict(ev.get("metadata"))
    tags = head.get("tags") if head.get("tags") is not None else ev.get("tags")
    fle = next((packages[p] for p in _FLE_PACKAGES if p in packages), None) or meta.get("fle_version")
    gen = as_dict(ev.get("model_generate_config"))
    configs = []
    for update in head.get("config_updates") or []:
        if isinstance(update, dict):
            configs.append({**_provenance(update, "changes"), "scope": update.get("scope")})
    return LogFacts(
        invalidated=bool(head.get("invalidated")),
        tags=[str(t) for t in tags] if isinstance(tags, list) else [],
        metadata=meta,
        edits=[_provenance(u, "edits") for u in head.get("log_updates") or [] if isinstance(u, dict)],
        config_updates=configs,
        solver=plan_solver(head.get("plan")),
        inspect_version=packages.get("inspect_ai"),
        fle_version=str(fle) if fle else None,
        generate_config={k: gen[k] for k in GENERATE_FIELDS if gen.get(k) is not None},
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
            value = num((m or {}).get("value"))
            if value is None:
                continue
            if sc.get("name") == "comprehensive_factorio_scorer" and name in ("accuracy", "mean"):
                return "mean throughput proportion (FLE's 'accuracy'; not a success rate)", value
            return f"{sc.get('name')} {name}", value
    return None


def expected_samples(log_eval: dict[str, Any]) -> int | None:
    """Samples × epochs the log was asked to run (None when the log does not say): the
    samples are ``dataset.sample_ids`` (what ran, ``--limit`` and ``--sample-id``
    applied), else ``dataset.samples`` (the whole dataset, for logs without the list)."""
    ds = as_dict(log_eval.get("dataset"))
    ids = ds.get("sample_ids")
    n = len(ids) if isinstance(ids, list) else ds.get("samples")
    epochs = as_dict(log_eval.get("config")).get("epochs") or 1
    return int(n) * int(epochs) if isinstance(n, int) else None


# ---------------------------------------------------------------- sweep jobs
def job_verdict(
    raw: RawLog, log_name: str, expected_sample: str, max_chars: int = 500
) -> tuple[bool, str | None]:
    """Did a job of the ``fle`` preset produce what it was asked for, judged by its newest
    log? ``(True, None)`` when the log has status ``success`` and the expected sample
    (epoch 1) is scored with no error; else ``(False, reason)`` with the log's own error,
    the sample's error, the error FLE swallowed into ``TrajectoryData:error``, or the
    scorer's crash."""

    def cut(text: str) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= max_chars else text[: max_chars - 1] + "…"

    samples = [s for s in raw.samples if int(s.get("epoch") or 1) == 1]
    sample = next((s for s in samples if str(s.get("id")) == expected_sample), None)
    if sample is None and len(samples) == 1:
        sample = samples[0]
    sample_err = error_text(sample.get("error")) if sample else None
    if raw.status != "success":
        why = error_text(raw.error) or sample_err
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
    swallowed = as_dict(sample.get("store")).get(STORE + "error")
    if swallowed:
        return False, cut(f"FLE swallowed an error: {swallowed}")
    crashed = [
        as_dict(s.get("metadata")).get("scorer_error")
        for s in as_dict(sample.get("scores")).values()
        if isinstance(s, dict) and as_dict(s.get("metadata")).get("scorer_error")
    ]
    if crashed:
        return False, cut(f"the scorer raised: {crashed[0]}")
    return True, None


def log_status(ref: LogRef) -> str:
    """A log's status from its header alone (``started`` when it has none yet): what
    decides whether a merged log hides its shards. ``LogReadError`` when unreadable."""
    try:
        if ref.suffix == ".eval":
            with ref.open() as fh, ZipLog(fh, ref.name) as zf:
                if "header.json" not in zf.names():
                    return "started"
                return str(as_dict(zf.json("header.json")).get("status") or "started")
        with ref.open() as fh:
            return str(as_dict(loads(fh.read())).get("status") or "started")
    except (LogReadError, SourceUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001 - names the file and the reason
        raise LogReadError(f"{ref.name}: {type(exc).__name__}: {_first_line(exc)}") from None


#: The first FLE release whose throughput logs carry a real ``automated_production_score``
#: (FLE PR #368; before it the value was always 0).
AUTOMATED_SCORE_SINCE = (0, 4, 4)


def _version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    parts = re.findall(r"\d+", str(text).split("+")[0])[:3]
    return tuple(int(p) for p in parts) if parts else None


def automated_score_is_real(fle_version: str | None, throughput_values: list[float | None]) -> bool:
    """Whether a log's throughput ``automated_production_score`` means anything: its FLE
    version carries PR #368; or, with the version unknown, not every value is 0."""
    version = _version_tuple(fle_version)
    if version is not None:
        return version >= AUTOMATED_SCORE_SINCE
    return any(v not in (None, 0, 0.0) for v in throughput_values)
