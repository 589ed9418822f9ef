"""The contract every kind of source keeps (``Source``), and the facts it hands around.

A source is known by its **location** (``Source.location``): an absolute, resolved
path or a credential-free, normalized URL. Its name is a label for people. Each kind
(``programs_table`` for FLE's ``programs`` table in SQLite or Postgres, ``log_folder``
for folders of Inspect logs, local or in object storage) keeps everything that
depends on the kind in its own module; callers (sync, the runner, job tracking, sweep
operations) ask the adapter and never branch on the kind. ``fle_core.sources``
(the registry) picks the adapter for a ``SourceSpec``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from fle_core.workspace import SourceSpec

if TYPE_CHECKING:
    import polars as pl

#: What a source holds, which is what a sweep executor must write into it.
Holds = Literal["programs", "inspect_logs"]
Outcome = Literal["succeeded", "failed", "empty"]


@dataclass(frozen=True)
class JobRef:
    """One sweep job, as a source needs to find its result."""

    sweep_id: str
    cell_id: str
    attempt: int
    version: int
    task: str


@dataclass(frozen=True)
class JobVerdict:
    """Whether a finished job's result is in the source and complete."""

    outcome: Outcome
    reason: str | None = None


class Source(ABC):
    """One place trajectories come from. Subclasses are the kinds (see the module doc)."""

    #: a short word for people and for ``source_state.kind``
    kind: ClassVar[str]
    #: what the source holds (the warehouse picks its syncer by this)
    holds: ClassVar[Holds]
    #: what sync counts while it reads this source ("rows" of a table, "logs" of a folder)
    unit: ClassVar[str]
    #: whether sync reads it up to a watermark (the highest id read); a folder of logs is
    #: compared log by log instead, and has none
    watermarked: ClassVar[bool]

    def __init__(self, spec: SourceSpec):
        self.spec = spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.display})"

    # ---- identity ------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The label people use (a configured name, or one derived from the location)."""
        return self.spec.name

    @property
    def adhoc(self) -> bool:
        """Given by location (``--source PATH/URL``), so its name was chosen by nobody."""
        return self.spec.adhoc

    @property
    @abstractmethod
    def location(self) -> str:
        """The canonical location: equal for every route to the same data, different for
        different data. Never holds a secret."""

    @property
    def display(self) -> str:
        """Where the source is, safe to show (passwords masked)."""
        return self.spec.display_url()

    @abstractmethod
    def derived_name(self, depth: int = 1) -> str:
        """A name made from the location, for a source given by location: ``depth`` more
        trailing path parts are used when a shorter name is taken by another location."""

    def overlaps(self, other: Source) -> bool:
        """Whether syncing both would read some data twice (the same location; for log
        folders also one inside the other)."""
        return self.overlaps_location(other.location)

    def overlaps_location(self, location: str) -> bool:
        """``overlaps`` for a recorded location."""
        return self.location == location

    @classmethod
    @abstractmethod
    def recorded(cls, name: str, where: str) -> Source | None:
        """The source at a location the warehouse recorded (or the URL a row was synced
        from); None when ``where`` does not name one place (a relative path)."""

    def renamed(self, name: str) -> Source:
        """The same source under another label."""
        from dataclasses import replace

        return type(self)(replace(self.spec, name=name))

    # ---- presence and change -------------------------------------------------------
    @abstractmethod
    def present(self) -> bool:
        """Whether the source exists now (a default source that is absent is skipped)."""

    @abstractmethod
    def check_readable(self) -> None:
        """Raise a clear ``SourceError`` unless the source can be read right now."""

    # ---- sweeps --------------------------------------------------------------------
    @abstractmethod
    def max_version(self) -> int:
        """The highest sweep version the source holds (0 when none): the runner's version
        floor, so versions stay unique even with a new control store."""

    @abstractmethod
    def verify_job(self, job: JobRef, exit_code: int, *, retry: bool = True) -> JobVerdict:
        """Is the finished job's result in the source, and complete? ``SourceUnavailable``
        when the source cannot be asked right now (the runner asks again later); ``retry``
        waits out a busy database a few times first."""

    @abstractmethod
    def job_steps(self, job: JobRef) -> pl.DataFrame:
        """One job's steps for W&B: ``depth`` (f64), ``value`` (f64), ``total_tokens`` (i64)."""

    def best_values(self, jobs: list[JobRef]) -> dict[int, float]:
        """version → the best finite step value of that job (jobs with none are left out)."""
        import math

        out: dict[int, float] = {}
        for job in jobs:
            values = [x for x in self.job_steps(job)["value"].to_list() if x is not None and math.isfinite(x)]
            if values:
                out[job.version] = max(values)
        return out

    @abstractmethod
    def same_data(self, stored) -> bool:
        """Whether this location holds what the warehouse stored under this source's name
        (the evidence is the syncer's: a few rows by id, or logs by path and size). Lets a
        configured source keep its data when its location changed (a moved file)."""
