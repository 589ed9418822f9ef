"""The two sides of a run-vs-run comparison: what a side names, and how two sides differ.

A **side** is one system's trajectories — a system as ``analysis.label_systems``
defines it (today: model + sweep config) — optionally narrowed to a sweep or a
source and pinned to a data version. ``resolve_side`` is the one place a side's
text becomes trajectories (the gate, ``changes`` and the Compare page's "What
changed" tab all call it), so widening what a system is changes every caller at
once. Grammar (docs/gate.md)::

    SIDE      := TARGET QUALIFIER*
    TARGET    := SYSTEM | "sweep:" ID | "source:" NAME
    QUALIFIER := "@sweep:" ID | "@source:" NAME | "@" N        (N: a data version)

``gpt-4o``, ``gpt-4o@12``, ``sweep:nightly``, ``gpt-4o@source:inspect:pr-123``. A
plain model name works wherever it names exactly one system. ``differences`` lists
why two sides may not be comparable (each reason one small check), for warnings.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from fle_core import warehouse
from fle_core.analysis import outcomes
from fle_core.analysis.loaders import load_summaries
from fle_core.analysis.systems import label_systems, part_differences
from fle_core.errors import MetricError
from fle_core.stats.metrics import TRAJECTORY_KEY
from fle_core.workspace import Workspace

PROGRAMS, INSPECT = "programs", "inspect"
_QUALIFIER = re.compile(r"^(sweep:.+|source:.+|\d+)$")


class UnknownSide(MetricError):
    """A side names nothing, or more than one system."""


@dataclass(frozen=True)
class SideSpec:
    """A side's text, parsed (nothing looked up yet)."""

    text: str
    system: str | None = None
    sweep: str | None = None
    source: str | None = None
    as_of: int | None = None


@dataclass(frozen=True)
class Side:
    """A resolved side: its system and its trajectories (summaries with system labels)."""

    spec: SideSpec
    system: str
    summaries: pl.DataFrame

    @property
    def label(self) -> str:
        """How reports name the side: the system label, or the text typed when it says more."""
        return self.system if self.spec.text == self.system else self.spec.text


def parse_side(text: str) -> SideSpec:
    """Split ``SYSTEM@sweep:ID@source:NAME@N`` into its parts (see the module doc).

    Qualifiers are read from the right while they look like one, so a system label
    that itself contains ``@`` stays whole.
    """
    text = (text or "").strip()
    if not text:
        raise UnknownSide("a side cannot be empty", hint="name a system, sweep:ID or source:NAME")
    parts = text.split("@")
    quals: list[str] = []
    while len(parts) > 1 and _QUALIFIER.match(parts[-1]):
        quals.insert(0, parts.pop())
    head = "@".join(parts)
    if head.startswith(("sweep:", "source:")):
        quals.insert(0, head)
        head = ""
    found: dict[str, str | int] = {}
    for q in quals:
        key, value = ("as_of", q) if q.isdigit() else q.split(":", 1)
        if key in found or not value:
            raise UnknownSide(f"side {text!r} names {key} twice or leaves it empty")
        found[key] = int(value) if key == "as_of" else value
    return SideSpec(text, head or None, **found)  # type: ignore[arg-type]


def _listing(names, limit: int = 12) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def resolve_side(text: str, universe: Callable[[int | None], pl.DataFrame]) -> Side:
    """The trajectories a side names. ``universe(as_of)`` gives the summaries at a data
    version with system labels (``load_universe``). Raises ``UnknownSide`` with the
    choices when the side names nothing, or several systems."""
    spec = parse_side(text)
    frame = universe(spec.as_of)
    pool = frame.filter(pl.col("model").is_not_null())
    for column, value, what in (("source", spec.source, "source"), ("sweep_id", spec.sweep, "sweep")):
        if value is None:
            continue
        pool = pool.filter(pl.col(column) == value)
        if pool.is_empty():
            known = frame[column].drop_nulls().unique().sort().to_list()
            raise UnknownSide(f"no trajectories from {what} {value!r}", hint=f"{what}s: {_listing(known)}")
    systems = sorted(pool["model"].unique().to_list())
    if spec.system is None:
        if len(systems) != 1:
            where = f"sweep {spec.sweep!r}" if spec.sweep else f"source {spec.source!r}"
            raise UnknownSide(
                f"{where} holds {len(systems)} systems: {_listing(systems)}",
                hint=f"name one, e.g. '{systems[0]}@{text}'",
            )
        return Side(spec, systems[0], pool.filter(pl.col("model") == systems[0]))
    if spec.system in systems:
        system = spec.system
    else:
        named = sorted(pool.filter(pl.col("base_model") == spec.system)["model"].unique().to_list())
        if len(named) > 1:
            raise UnknownSide(
                f"{spec.system!r} names {len(named)} systems: {_listing(named)}",
                hint="name one of them in full (quoted), or narrow with @sweep:ID or @source:NAME",
            )
        if not named:
            everywhere = set(frame["model"].drop_nulls()) | set(frame["base_model"].drop_nulls())
            if spec.system in everywhere:
                raise UnknownSide(f"system {spec.system!r} has no trajectories in {text!r}")
            close = difflib.get_close_matches(spec.system, systems, n=3, cutoff=0.5)
            raise UnknownSide(
                f"no system named {spec.system!r}"
                + (f" at data version {spec.as_of}" if spec.as_of else "")
                + " in the warehouse",
                hint=(f"did you mean {', '.join(map(repr, close))}? " if close else "")
                + f"systems: {_listing(systems)}",
            )
        system = named[0]
    return Side(spec, system, pool.filter(pl.col("model") == system))


# --------------------------------------------------------------------------- loading ---
def load_universe(ws: Workspace, as_of: int | None = None) -> pl.DataFrame:
    """Summaries at a data version with system labels (``label_systems``: ``model`` is
    the system, ``base_model`` the model) and what Inspect logs add per trajectory:
    ``era`` (``programs`` or ``inspect``), ``epoch``, ``log_path``, ``sample_id``,
    ``failure_kind`` (null for programs-era trajectories)."""
    summ = label_systems(load_summaries(ws, as_of_sync=as_of))
    found = outcomes.load_outcomes(ws, as_of_sync=as_of).select(
        *TRAJECTORY_KEY,
        pl.col("epoch").cast(pl.Int64),
        pl.col("path").alias("log_path"),
        "sample_id",
        "failure_kind",
    )
    found = found.unique(subset=list(TRAJECTORY_KEY), keep="first")
    out = summ.join(found, on=list(TRAJECTORY_KEY), how="left", maintain_order="left")
    era = pl.when(pl.col("log_path").is_not_null()).then(pl.lit(INSPECT)).otherwise(pl.lit(PROGRAMS))
    return out.with_columns(era.alias("era"))


def resolve_sides(
    ws: Workspace, baseline: str, candidate: str, *, as_of: int | None = None
) -> tuple[Side, Side]:
    """Both sides, each at its own data version (``@N``) or ``as_of`` (default: the
    latest); the warehouse is read once per data version. The sides must differ."""
    latest = warehouse.data_version(ws)
    if latest == 0:
        raise UnknownSide("nothing has been synced into this workspace yet", hint="run `fle-core sync` first")
    cache: dict[int | None, pl.DataFrame] = {}

    def universe(version: int | None) -> pl.DataFrame:
        version = version if version is not None else as_of
        if version is not None and not 1 <= version <= latest:
            raise UnknownSide(
                f"data version {version} does not exist", hint=f"data versions run from 1 to {latest}"
            )
        if version not in cache:
            cache[version] = load_universe(ws, version)
        return cache[version]

    a, b = resolve_side(baseline, universe), resolve_side(candidate, universe)
    keys_a, keys_b = (s.summaries.select(TRAJECTORY_KEY).sort(TRAJECTORY_KEY) for s in (a, b))
    if keys_a.height == keys_b.height and keys_a.equals(keys_b):
        raise UnknownSide(
            f"the baseline {baseline!r} and the candidate {candidate!r} are the same trajectories",
            hint="compare two systems, or one system at two data versions or in two sources",
        )
    return a, b


def side_options(universe: pl.DataFrame) -> list[str]:
    """What a side can be, for a picker: every system, then ``sweep:ID`` and ``source:NAME``."""
    systems = sorted(universe["model"].drop_nulls().unique().to_list())
    sweeps = sorted(universe["sweep_id"].drop_nulls().unique().to_list())
    sources = sorted(universe["source"].drop_nulls().unique().to_list())
    return systems + [f"sweep:{s}" for s in sweeps] + [f"source:{s}" for s in sources]


# ---------------------------------------------------------------- comparability ---
@dataclass(frozen=True)
class Difference:
    """One reason two sides may not be comparable: a short code and a sentence."""

    reason: str
    text: str


def _eras(a: Side, b: Side) -> list[Difference]:
    ea, eb = (sorted(set(s.summaries["era"].to_list())) for s in (a, b))
    if ea == eb and len(ea) == 1:
        return []
    words = {PROGRAMS: "FLE's programs table (FLE ≤ 0.3)", INSPECT: "Inspect logs (FLE ≥ 0.4)"}
    return [
        Difference(
            "era",
            f"{a.label} comes from {' and '.join(words[e] for e in ea)}, {b.label} from "
            f"{' and '.join(words[e] for e in eb)}: success is decided differently (programs: the best "
            "step reaches the quota; Inspect: FLE's final score reaches the quota with no error).",
        )
    ]


def _tasks(a: Side, b: Side) -> list[Difference]:
    ta, tb = (set(s.summaries["task"].drop_nulls().to_list()) for s in (a, b))
    out = []
    for side, only in ((a, ta - tb), (b, tb - ta)):
        if only:
            out.append(
                Difference(
                    "tasks",
                    f"{len(only)} task(s) only {side.label} ran are left out: {_listing(sorted(only), 8)}.",
                )
            )
    return out


def _quotas(a: Side, b: Side) -> list[Difference]:
    qa, qb = (
        s.summaries.group_by("task").agg(pl.col("quota").drop_nulls().unique().sort().alias("q"))
        for s in (a, b)
    )
    both = qa.join(qb, on="task", suffix="_b").filter(pl.col("q") != pl.col("q_b")).sort("task")
    return [
        Difference(
            "quota",
            f"{r['task']}: quota {_listing(r['q']) or 'none'} in {a.label}, "
            f"{_listing(r['q_b']) or 'none'} in {b.label}.",
        )
        for r in both.iter_rows(named=True)
    ]


def _shared(a: Side, b: Side) -> list[Difference]:
    n = a.summaries.select(TRAJECTORY_KEY).join(b.summaries.select(TRAJECTORY_KEY), on=TRAJECTORY_KEY).height
    if not n:
        return []
    return [
        Difference(
            "shared",
            f"the sides share {n} trajectories: the tests assume independent samples "
            "(compare a data version with only what came after it, e.g. two sources).",
        )
    ]


def _simulated(a: Side, b: Side) -> list[Difference]:
    sim = [s.label for s in (a, b) if s.summaries["simulated"].fill_null(False).any()]
    if len(sim) == 1:
        return [Difference("simulated", f"{sim[0]} holds simulated trajectories; the other side does not.")]
    return []


def _infrastructure(a: Side, b: Side) -> list[Difference]:
    out = []
    for s in (a, b):
        n = int((s.summaries["failure_kind"] == "infrastructure").sum())
        if n:
            out.append(
                Difference(
                    "infrastructure",
                    f"{s.label} has {n} infrastructure failure(s) (game server, RCON, model API) counted "
                    "as unsolved: a change may be the infrastructure's, not the agent's.",
                )
            )
    return out


def _systems(a: Side, b: Side) -> list[Difference]:
    """What a system is beyond its model (``analysis.systems``): solver, trajectory length,
    settings, FLE and inspect_ai versions (the era is ``_eras``'); or a side that pools several."""
    if not all("system" in s.summaries.columns for s in (a, b)):
        return []
    found = {s.label: sorted(set(s.summaries["system"].drop_nulls().to_list())) for s in (a, b)}
    out = [
        Difference("pooled", f"{label} pools {len(systems)} systems: {_listing(systems, 4)}.")
        for label, systems in found.items()
        if len(systems) > 1
    ]
    (one_a, one_b) = found.values()
    if len(one_a) == 1 and len(one_b) == 1:
        parts = part_differences(one_a[0], one_b[0])
        # Across eras only the era is said: a programs run has no solver or inspect_ai
        # version to differ in, and ``_eras`` already explains what that means.
        if any(part == "era" for part, _ in parts):
            return out
        out += [Difference(part, text + ".") for part, text in parts]
    return out


#: The checks ``differences`` runs, in order; each takes the two sides.
CHECKS: tuple[Callable[[Side, Side], list[Difference]], ...] = (
    _eras,
    _systems,
    _tasks,
    _quotas,
    _shared,
    _simulated,
    _infrastructure,
)


def differences(a: Side, b: Side) -> list[Difference]:
    """Every reason the two sides may not be comparable (empty when none is found)."""
    return [d for check in CHECKS for d in check(a, b)]
