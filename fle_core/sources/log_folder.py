"""Sources of kind ``inspect``: a folder of Inspect logs, local or in object storage.

Everything that depends on the source being a folder of logs lives here: its location
(a resolved absolute path, or ``s3://bucket/prefix`` without credentials, plus the
S3-compatible endpoint in use), whether it is there, one listing of what it holds
(``log_store``), where a sweep job of the ``fle`` preset writes its log
(``sweeps/<sweep>/<cell>.<attempt>/``, with ``fle-job.json`` beside it), whether that
job's log is complete, and the job's samples for W&B. Reading one log's content is
``inspect_logs``'s.

Two log folders overlap when one is inside the other: syncing both would read the
inner folder's logs twice, so such a pair is refused (``overlaps``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from fle_core.errors import SourceUnavailable
from fle_core.sources import inspect_logs
from fle_core.sources.base import Holds, JobRef, JobVerdict, Source
from fle_core.sources.log_store import JOB_FILE, Listing, LogFile, LogStore, is_remote, open_store
from fle_core.workspace import SourceSpec

if TYPE_CHECKING:
    import polars as pl

_JOBS_DIR = "sweeps"


def safe_name(name: str) -> str:
    """A folder name made of letters, digits and ``-_.`` (never hidden, never empty)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).lstrip(".") or "_"


def job_folder(sweep_id: str, cell_id: str, attempt: int) -> str:
    """Where a job of the ``fle`` preset writes its log, relative to the source's folder."""
    return f"{_JOBS_DIR}/{safe_name(sweep_id)}/{safe_name(cell_id)}.{int(attempt)}"


class InspectLogSource(Source):
    """A folder (searched recursively), one log file, or an object-storage prefix of Inspect logs."""

    kind: ClassVar[str] = "inspect"
    holds: ClassVar[Holds] = "inspect_logs"
    unit: ClassVar[str] = "logs"
    watermarked: ClassVar[bool] = False

    @classmethod
    def recorded(cls, name: str, where: str) -> InspectLogSource | None:
        if not (where.startswith("/") or is_remote(where)):
            return None
        return cls(SourceSpec(name, "", path=where.split("?endpoint=")[0]))

    @cached_property
    def store(self) -> LogStore:
        return open_store(self.spec.resolved_url(), self.name)

    @property
    def remote(self) -> bool:
        return is_remote(self.spec.resolved_url())

    @property
    def location(self) -> str:
        return self.store.location

    def derived_name(self, depth: int = 1) -> str:
        """``inspect:logs`` (then ``inspect:runs/logs``, …) for a folder; ``s3:bucket/prefix``
        for object storage (then with the endpoint's host, for another S3-compatible store)."""
        base, _, endpoint = self.location.partition("?endpoint=")
        if self.remote:
            name = base.replace("://", ":", 1)
            return name if depth <= 1 else f"{name}@{urlsplit(endpoint).netloc or 'default'}"
        parts = PurePosixPath(base).parts
        return "inspect:" + (base if depth >= len(parts) else "/".join(parts[-depth:]))

    def overlaps_location(self, location: str) -> bool:
        """The same place, or one folder inside the other (on the same store)."""
        a, _, end_a = self.location.partition("?endpoint=")
        b, _, end_b = location.partition("?endpoint=")
        if end_a != end_b:
            return False
        return a == b or b.startswith(a.rstrip("/") + "/") or a.startswith(b.rstrip("/") + "/")

    def present(self) -> bool:
        # object storage is always tried (like a database server): "unreachable" is worth saying
        return True if self.remote else self.store.exists()

    def check_readable(self) -> None:
        self.listing()

    # ---- what it holds -------------------------------------------------------------
    def listing(self, under: str = "") -> Listing:
        """One pass over the folder (``SourceUnavailable`` when it cannot be listed)."""
        return self.store.listing(under)

    def identify(self, files: Sequence[LogFile]) -> list[LogFile]:
        """``files`` with their content identity where the listing lacks one (a local log:
        one small read each; object storage: the ETag, nothing read)."""
        return self.store.identify(files)

    def read_ahead(self, files: Sequence[LogFile]) -> Iterator[LogFile]:
        """``files`` in order, each fetched before it is yielded: in object storage, a few
        at a time concurrently (one round trip per window, not per log); locally, as is."""
        return self.store.read_ahead(files)

    def log_ref(self, rel: str, size: int | None = None) -> inspect_logs.LogRef:
        """One log to read (``size`` as listed spares object storage a request)."""
        return inspect_logs.LogRef(
            self.store.name_of(rel), lambda: self.store.open(rel, size), self.store.url(rel)
        )

    def log_url(self, rel: str) -> str:
        """What ``inspect view`` / inspect_ai opens for this log (a path or a URL)."""
        return self.store.url(rel)

    def job_facts(self, folder: str) -> dict | None:
        """The ``fle-job.json`` facts of a log folder (``""`` is the root), or None."""
        rel = f"{folder}/{JOB_FILE}" if folder else JOB_FILE
        return inspect_logs.parse_job_file(self.store.read_small(rel))

    def same_data(self, stored: Mapping[str, int]) -> bool:
        """Whether this folder holds logs sync stored for a source of this name (path → size):
        at least one of them, unchanged. Decides whether a configured source whose
        location changed (a moved folder) is the same data. Nothing stored: True."""
        if not stored:
            return True
        try:
            found = {f.rel: f.size for f in self.listing().logs}
        except SourceUnavailable:
            return False
        return any(found.get(rel) == size for rel, size in stored.items())

    # ---- sweeps --------------------------------------------------------------------
    def _jobs(self) -> dict[str, dict]:
        """Job folder → its ``fle-job.json`` facts, for every job under ``sweeps/``."""
        try:
            listing = self.listing(_JOBS_DIR)
        except SourceUnavailable:
            if self.remote:
                raise
            return {}  # no folder yet: no job has run
        dirs = sorted(d for d in listing.job_dirs if d.startswith(_JOBS_DIR + "/"))
        out = {}
        for d in dirs:
            facts = self.job_facts(d)
            if facts:
                out[d] = facts
        return out

    def max_version(self) -> int:
        return max((int(f["version"]) for f in self._jobs().values()), default=0)

    def _newest_log(self, job: JobRef) -> tuple[str, inspect_logs.RawLog | None, str | None]:
        """(the newest log's file name, the log, why there is none)."""
        folder = job_folder(job.sweep_id, job.cell_id, job.attempt)
        try:
            logs = self.listing(folder).logs
        except SourceUnavailable:
            if self.remote:
                raise
            logs = []  # the source folder itself is gone
        where = self.store.url(folder)
        if not logs:
            return where, None, f"it wrote no Inspect log in {where}"
        newest = max(logs, key=lambda f: (f.mtime_ns, f.rel))
        name = self.store.name_of(newest.rel)
        try:
            return name, inspect_logs.read_log(self.log_ref(newest.rel, newest.size)), None
        except inspect_logs.LogReadError as exc:
            return name, None, f"its log cannot be read: {exc}"

    def verify_job(self, job: JobRef, exit_code: int, *, retry: bool = True) -> JobVerdict:
        """A job is complete when it exited 0 and its newest log has status ``success`` with
        the expected sample (``{task}_eval``, epoch 1) scored and no error."""
        name, raw, why = self._newest_log(job)
        if raw is not None:
            ok, why = inspect_logs.job_verdict(raw, name, expected_sample=f"{job.task}_eval")
            if ok and exit_code == 0:
                return JobVerdict("succeeded")
        if exit_code != 0:
            return JobVerdict("failed", f"exit code {exit_code}" + (f": {why}" if why else ""))
        return JobVerdict("failed", f"exit 0 but {why}")

    def job_samples(self, job: JobRef) -> list[inspect_logs.SampleFacts]:
        """The samples of the job's newest log (empty when it left no readable log)."""
        _, raw, _ = self._newest_log(job)
        if raw is None:
            return []
        patterns = inspect_logs.compile_patterns()
        return [inspect_logs.sample_facts(s, raw.eval, None, patterns) for s in raw.samples]

    def job_steps(self, job: JobRef) -> pl.DataFrame:
        import polars as pl

        rows = [
            (d, v, s.total_tokens if i == len(s.values) - 1 else None)
            for s in self.job_samples(job)
            for i, (d, v) in enumerate(zip(s.depths, s.values, strict=True))
        ]
        return pl.DataFrame(
            rows, schema={"depth": pl.Float64, "value": pl.Float64, "total_tokens": pl.Int64}, orient="row"
        )
