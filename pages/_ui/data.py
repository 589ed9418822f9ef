"""UI layer, part 3: cached data access keyed on the warehouse data version.

Every loader is an ``st.cache_data`` function whose key holds the workspace root, the
data version (latest, or pinned by a shared view), the selection and the settings; the
``Workspace`` is passed as ``_ws`` (not hashed). No connection is held between runs:
each load opens the warehouse read-only for one query (the sync can always write).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import polars as pl
import streamlit as st

from fle_core.errors import WarehouseMissing
from fle_core.workspace import Workspace
from pages._ui.control import control_store
from pages._ui.core import data_version
from pages._ui.frames import parse_traj_key
from pages._ui.state import Pin


# ---------------------------------------------------------------- selection + cached compute
@dataclass(frozen=True)
class Selection:
    """Which trajectories an analysis uses; empty tuple = no filter on that column."""

    sources: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()  # params JSON strings; NO_CONFIG = runs without params
    systems: str = "system"  # "system" (analysis.systems), "config" (model + config), or "model"
    infrastructure: str = "fail"  # fle_core.stats.infrastructure rule: "fail" (FLE's) or "exclude"
    simulated: bool = True  # False: leave out simulated (demo) trajectories (``simulated_switch``)


#: Compare-by choices: what one row of the leaderboard / one series of a chart is.
SYSTEMS = {"system": "system", "config": "system + sweep config", "model": "model (pools its systems)"}
NO_CONFIG = "(none)"  # = fle_core.analysis.NO_CONFIG (kept here so pages need no import)


def _config_key(ws: Workspace) -> str:
    """Cache-key part for settings that change metrics (task quotas, the price table)."""
    return json.dumps(
        {"tasks": ws.config.get("tasks") or {}, "prices": ws.config.get("prices") or {}},
        sort_keys=True,
        default=str,
    )


@st.cache_data(show_spinner=False, max_entries=8)
def _summaries(
    _ws: Workspace, root: str, version: int, as_of: int | None, cfg: str, invalidated: bool = False
) -> pl.DataFrame:
    from fle_core import analysis

    return analysis.load_summaries(_ws, as_of_sync=as_of, include_invalidated=invalidated)


def summaries(ws: Workspace, pin: Pin, *, include_invalidated: bool = False) -> pl.DataFrame:
    """All trajectory summaries at the pinned data version (cached per version); samples
    invalidated in their Inspect log only with ``include_invalidated`` (the viewer)."""
    if pin.version == 0:
        raise WarehouseMissing(
            "Nothing has been synced into this workspace yet",
            hint="sync a source on Sources & sync, or run the demo sweep on Overview",
        )
    return _summaries(ws, str(ws.root), pin.version, pin.as_of, _config_key(ws), include_invalidated)


def select(frame: pl.DataFrame, sel: Selection) -> pl.DataFrame:
    """Filter summaries by the selection (simulated/source/model/task/sweep/config) and apply
    its infrastructure rule (``stats.infrastructure.apply_rule``, the loader's own switch).

    With ``sel.systems`` ``"system"`` (the default) or ``"config"`` the result's ``model``
    is the system label (``analysis.label_systems``; the model itself stays in
    ``base_model``), so every metric and chart compares systems; ``"model"`` pools them.
    """
    from fle_core.stats import infrastructure

    if not sel.simulated and "simulated" in frame.columns:
        frame = frame.filter(~pl.col("simulated").fill_null(False))
    for col, values in (
        ("source", sel.sources),
        ("model", sel.models),
        ("task", sel.tasks),
        ("sweep_id", sel.sweeps),
    ):
        if values and col in frame.columns:
            frame = frame.filter(pl.col(col).is_in(list(values)))
    if sel.configs and "config" in frame.columns:
        keep = pl.col("config").is_in([c for c in sel.configs if c != NO_CONFIG])
        if NO_CONFIG in sel.configs:
            keep = keep | pl.col("config").is_null()
        frame = frame.filter(keep)
    if sel.systems == "config" and "config" in frame.columns:
        from fle_core.analysis import label_systems

        frame = label_systems(frame)  # model, sweep config and what ran
    elif sel.systems == "system" and "system" in frame.columns:
        from fle_core.analysis import systems

        frame = systems.label_systems(frame, by=systems.SYSTEM_ONLY)  # what ran (configs pooled)
    return infrastructure.apply_rule(frame, sel.infrastructure)


def suite_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Summaries for suite-level numbers: the tasks every system ran (``analysis.systems``)."""
    from fle_core.analysis import systems

    return systems.common_tasks(frame)[0]


def distinct(frame: pl.DataFrame, col: str) -> list[str]:
    """Sorted distinct non-null values of a column (widget options)."""
    if col not in frame.columns or frame.is_empty():
        return []
    return sorted(v for v in frame[col].drop_nulls().unique().to_list())


_COMPUTE: dict[str, Callable[..., Any]] = {}
_WITH_EVERYTHING: set[str] = set()  # they also get the selection before the infrastructure rule


def compute_fn(name: str, *, everything: bool = False):
    """Register a named computation over selected summaries (cached by ``compute``); with
    ``everything=True`` it also gets ``everything=`` (infrastructure failures kept)."""

    def deco(fn):
        _COMPUTE[name] = fn
        if everything:
            _WITH_EVERYTHING.add(name)
        return fn

    return deco


# Named computations pages may ask for. Each takes the selected summaries frame.
compute_fn("summaries")(lambda s: s)  # the selected summaries themselves


@compute_fn("leaderboard")
def _c_leaderboard(s: pl.DataFrame, k_values: list[int], population: str = "tasks") -> pl.DataFrame:
    from fle_core.stats import metrics

    return metrics.model_metrics(suite_frame(s), k_values=tuple(k_values), population=population)


@compute_fn("intervals")
def _c_intervals(s: pl.DataFrame, reps: int, seed: int, population: str = "tasks") -> pl.DataFrame:
    from fle_core.stats import bootstrap

    return bootstrap.interval_estimates(suite_frame(s), reps=reps, seed=seed, population=population)


@compute_fn("passk_curve")
def _c_passk(s: pl.DataFrame, k_values: list[int], **kw: Any) -> pl.DataFrame:
    """``kw``: reps, seed, population, estimator (pass@k or pass^k)."""
    from fle_core.stats import bootstrap

    return bootstrap.pass_at_k_curve(suite_frame(s), k_values=tuple(k_values), **kw)


@compute_fn("pairwise")
def _c_pairwise(
    s: pl.DataFrame, metric: str, correction: str, baseline: str | None, reps: int, seed: int
) -> pl.DataFrame:
    from fle_core.stats import compare

    return compare.pairwise_comparisons(
        s, metric=metric, correction=correction, baseline=baseline, reps=reps, seed=seed
    )


@st.cache_data(show_spinner=False, max_entries=64)
def _compute(
    _ws: Workspace,
    name: str,
    root: str,
    version: int,
    as_of: int | None,
    cfg: str,
    sel: tuple,
    kwargs_json: str,
) -> Any:
    chosen = Selection(*sel)
    everything = _summaries(_ws, root, version, as_of, cfg)
    kwargs = json.loads(kwargs_json)
    if name in _WITH_EVERYTHING:
        kwargs["everything"] = select(everything, replace(chosen, infrastructure="fail"))
    return _COMPUTE[name](select(everything, chosen), **kwargs)


def compute(ws: Workspace, pin: Pin, name: str, sel: Selection, **kwargs) -> Any:
    """Run a registered computation on the selected summaries; cached on the data version."""
    summaries(ws, pin)  # raises the friendly WarehouseMissing before first sync
    sel_key = tuple(asdict(sel).values())
    return _compute(
        ws,
        name,
        str(ws.root),
        pin.version,
        pin.as_of,
        _config_key(ws),
        sel_key,
        json.dumps(kwargs, sort_keys=True),
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _catalog(_ws: Workspace, what: str, root: str, version: int) -> Any:
    from fle_core.warehouse import catalog

    return getattr(catalog, what)(_ws)


def catalog(ws: Workspace, what: str, version: int | None = None) -> Any:
    """A ``fle_core.warehouse.catalog`` read (warehouse contents, sync history), cached per sync
    run: a run that changed no data (or failed) still belongs in the history."""
    from pages._ui.core import last_sync_id

    return _catalog(ws, what, str(ws.root), last_sync_id(ws) if version is None else version)


def known_models(ws: Workspace) -> list[str]:
    """Models with synced trajectories (widget options); none before the first sync."""
    version = data_version(ws)
    return distinct(summaries(ws, Pin(version, None)), "model") if version else []


def palette(summ: pl.DataFrame):
    """The one model → colour mapping of every chart on every page: from all the summaries
    at the page's data version (not the filtered ones), in the order of each model's first
    trajectory (``ModelPalette.first_seen``), so filters and later models shift no colour."""
    from fle_core.charts.base import ModelPalette

    return ModelPalette.first_seen(summ)


@st.cache_data(show_spinner=False, max_entries=32)
def _trajectory_steps(_ws: Workspace, root: str, version: int, as_of: int | None, key: str) -> pl.DataFrame:
    from fle_core import analysis

    source, ver, instance = parse_traj_key(key)
    # one trajectory, picked by its key: an invalidated sample is shown too (marked by the page)
    steps = analysis.load_steps(
        _ws, sources=[source], versions=[ver], as_of_sync=as_of, include_invalidated=True
    )
    return steps.filter(pl.col("instance") == instance)


def trajectory_steps(ws: Workspace, pin: Pin, key: str) -> pl.DataFrame:
    """The steps frame of one trajectory (``source:version:instance``), ordered by depth."""
    steps = _trajectory_steps(ws, str(ws.root), pin.version, pin.as_of, key)
    return steps.sort("depth", "id")


def step_detail_if_synced(steps: pl.DataFrame) -> pl.DataFrame | None:
    """Code/output straight from the warehouse when ``[sync] copy_code`` copied them."""
    if "code" in steps.columns and steps["code"].is_not_null().any():
        cols = [c for c in ("id", "depth", "value", "code", "response") if c in steps.columns]
        return steps.select(cols)
    return None


@st.cache_data(show_spinner="Reading the steps from the source…", max_entries=16, ttl=600)
def _step_detail(_ws: Workspace, root: str, key: str) -> pl.DataFrame:
    from fle_core import sources
    from fle_core.warehouse.identity import source_named

    source, version, instance = parse_traj_key(key)
    return sources.programs_source(source_named(_ws, source)).step_detail(version, instance)


def fetch_step_detail(ws: Workspace, key: str) -> pl.DataFrame:
    """Per-step code and output fetched on demand from the trajectory's source."""
    return _step_detail(ws, str(ws.root), key)


# ---------------------------------------------------------------- Slurm pilots (squeue, rate-limited)
@st.cache_data(show_spinner=False, ttl=10, max_entries=16)
def _pilots(_ws: Workspace, _store: Any, root: str, sweep_id: str | None) -> Any:
    from fle_core import sweeps
    from fle_core.sweeps.squeue_cache import DEFAULT_WAIT_S

    return sweeps.pilots(_ws, _store, sweep_id=sweep_id, wait_s=DEFAULT_WAIT_S)


def pilots(ws: Workspace, sweep_id: str | None = None) -> Any:
    """The Monitor's pilot table (``sweeps.pilots``), at most one ``squeue`` per 10 s per
    sweep however many browsers watch, and a hanging one blocks a render at most 2 s."""
    return _pilots(ws, control_store(ws), str(ws.root), sweep_id)
