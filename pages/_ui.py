"""The app's one UI layer: workspace, cached data access, URL state, shared widgets.

Pages import this module and ``fle_core``; nothing in ``fle_core`` imports
streamlit. Rules kept here so pages stay thin:

* **Workspace**: ``Workspace.open`` with Streamlit secrets passed in (source
  passwords), opened per run (cheap) so config edits show up at once.
* **Caching**: every query result is cached with ``st.cache_data`` keyed on the
  warehouse data version (or the version a shared view pins), so a new sync
  invalidates exactly what changed. No DuckDB connection is held open between
  runs: the sync process must be able to take the write lock.
* **Errors**: ``guard()`` renders a ``FleError`` as message + hint, never a
  traceback. Anything else is a bug and propagates.
* **URL state**: ``url_*`` widgets read their initial value from
  ``st.query_params`` (keys prefixed per page), validate it (bad or stale values
  give a clear warning and fall back to defaults) and write the value back, so
  copying the URL reproduces the view.
* **Permalinks**: ``apply_view`` / ``share_button`` over ``fle_core.saved_views``.
* **Read-only mode**: ``FLE_READ_ONLY=1`` or ``[app] read_only = true`` hides
  every action that runs or changes something (launch, sync, resume, cancel).
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from fle_core import saved_views, warehouse
from fle_core.errors import FleError, ViewNotFound, WarehouseMissing
from fle_core.workspace import Workspace
from pages import _frames
from pages._frames import (comparison_matrix, fmt, headline, parse_traj_key, same_task, sweeps_view, sync_result_text,  # noqa: F401
                           to_csv, trajectory_labels, trajectory_row)

READ_ONLY_ENV = "FLE_READ_ONLY"
SIM_HELP = "Rows written by the built-in simulator (executor `simulate`), not by a real FLE agent."


# ---------------------------------------------------------------- workspace
def _secrets() -> dict[str, str]:
    """Flat string secrets from ``.streamlit/secrets.toml`` (none when the file is absent)."""
    try:
        return {k: str(v) for k, v in st.secrets.items() if isinstance(v, (str, int, float))}
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return {}


def workspace() -> Workspace:
    """The workspace for this run ($FLE_CORE_HOME or ./.fle), with secrets attached."""
    _leave_legacy_multipage_mode()
    return Workspace.open(secrets=_secrets())


def _leave_legacy_multipage_mode() -> None:
    """Make a deep link work as the first request after a server start.

    Because a ``pages/`` folder exists, Streamlit starts in its old multipage
    mode and, when the server's first session opens ``/compare?view=…``, runs
    ``pages/compare.py`` directly (no ``app.py``: wrong navigation, no page
    config) until some run of ``app.py`` calls ``st.navigation``. Flip that
    class-level flag, as ``st.navigation`` itself does, and re-run through
    ``app.py``; the query string is kept.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        # Only on a session's first run: a later run may carry a button click,
        # which a rerun would drop (AppTest starts every run in the legacy mode).
        if not st.session_state.get("_nav_rerun_done"):
            st.session_state["_nav_rerun_done"] = True
            st.rerun()


def read_only(ws: Workspace) -> bool:
    """True when actions that run or change things must be hidden (viewer deployments)."""
    env = os.environ.get(READ_ONLY_ENV, "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    return bool(ws.section("app").get("read_only", False))


def read_only_note() -> None:
    st.caption(":lock: Read-only mode: launching, syncing and sweep controls are disabled.")


def data_version(ws: Workspace) -> int:
    """Latest successful sync id (0 before the first sync)."""
    return warehouse.data_version(ws)


# ---------------------------------------------------------------- errors
def show_error(exc: FleError) -> None:
    st.error(exc.message, icon=":material/error:")
    if exc.hint:
        st.caption(f"Hint: {exc.hint}")


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Render an expected ``FleError`` as a message; let real bugs propagate."""
    try:
        yield
    except FleError as exc:
        show_error(exc)


def empty_state(title: str, next_steps: Sequence[str]) -> None:
    """Say what is missing and what to do next (no blank pages)."""
    lines = "\n".join(f"- {s}" for s in next_steps)
    st.info(f"**{title}**\n\n{lines}", icon=":material/info:")


def simulated_badge(frame: pl.DataFrame | None, noun: str = "trajectories") -> None:
    """Label simulated data wherever it is shown."""
    if frame is not None and "simulated" in frame.columns and frame.height:
        n_sim = int(frame["simulated"].fill_null(False).cast(pl.Int64).sum())
        if n_sim:
            share = "all" if n_sim == frame.height else f"{n_sim} of {frame.height}"
            st.badge(f"Simulated data ({share} {noun})", icon=":material/science:", color="orange",
                     help=SIM_HELP)


# ---------------------------------------------------------------- URL state
def _warn_param(key: str, raw: object, why: str) -> None:
    st.warning(f"Ignored the link parameter `{key}={raw}`: {why}. Using the default instead.",
               icon=":material/link_off:")


def _write_param(key: str, value: Any, default: Any) -> None:
    """Mirror a widget value into the URL (omit defaults to keep links short)."""
    if value == default or value is None or value == []:
        st.query_params.pop(key, None)
    elif isinstance(value, list):
        st.query_params[key] = [str(v) for v in value]
    else:
        st.query_params[key] = str(value)


def url_multiselect(label: str, key: str, options: Sequence[str], default: Sequence[str] = (),
                    *, where=None, **kw) -> list[str]:
    """A multiselect whose value lives in the URL as repeated ``key=`` parameters."""
    where = where or st
    options = list(options)
    default = [d for d in default if d in options]
    if key not in st.session_state:
        raw = st.query_params.get_all(key)
        good = [v for v in raw if v in options]
        bad = [v for v in raw if v not in options]
        if bad:
            _warn_param(key, ",".join(bad), "not present in the current data")
        st.session_state[key] = good or list(default)
    else:  # options may shrink between runs (filters); keep the state valid
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
    value = where.multiselect(label, options, key=key, **kw)
    _write_param(key, value, list(default))
    return value


def url_select(label: str, key: str, options: Sequence[Any], default: Any = None, *,
               where=None, widget: str = "selectbox", **kw) -> Any:
    """A single choice (selectbox/radio/segmented_control) mirrored into ``?key=``."""
    where = where or st
    options = list(options)
    if not options:
        return None
    default = default if default in options else options[0]
    by_text = {str(o): o for o in options}
    if key not in st.session_state:
        raw = st.query_params.get(key)
        if raw is not None and raw not in by_text:
            _warn_param(key, raw, f"expected one of {', '.join(list(by_text)[:8])}")
        st.session_state[key] = by_text.get(raw, default) if raw is not None else default
    elif st.session_state[key] not in options:
        st.session_state[key] = default
    value = getattr(where, widget)(label, options, key=key, **kw)
    if value is None:  # segmented_control can be deselected
        value = default
    _write_param(key, value, default)
    return value


def url_int(label: str, key: str, default: int, lo: int, hi: int, *, where=None,
            widget: str = "number_input", **kw) -> int:
    """An integer in [lo, hi] mirrored into ``?key=``; junk falls back to the default."""
    where = where or st
    if key not in st.session_state:
        raw = st.query_params.get(key)
        value = default
        if raw is not None:
            try:
                value = int(raw)
                if not lo <= value <= hi:
                    _warn_param(key, raw, f"must be between {lo} and {hi}")
                    value = default
            except ValueError:
                _warn_param(key, raw, "not a whole number")
        st.session_state[key] = value
    if widget == "slider":
        value = where.slider(label, lo, hi, key=key, **kw)
    else:
        value = where.number_input(label, lo, hi, step=1, key=key, **kw)
    _write_param(key, int(value), default)
    return int(value)


def url_ints(label: str, key: str, options: Sequence[int], default: Sequence[int], *,
             where=None) -> list[int]:
    """A multiselect of integers (e.g. k values) mirrored into the URL."""
    chosen = url_multiselect(label, key, [str(o) for o in options], [str(d) for d in default],
                             where=where)
    return sorted(int(c) for c in chosen)


def url_text(key: str) -> str | None:
    """A raw string parameter (e.g. a trajectory key), read only; pages validate it."""
    return st.query_params.get(key)


# ---------------------------------------------------------------- shared views
@dataclass(frozen=True)
class Pin:
    """The data version a page computes from: latest, or frozen by a shared view."""

    version: int  # the warehouse data version used for caching
    as_of: int | None  # passed to loaders as ``as_of_sync``; None means latest
    view_id: str | None = None


def apply_view(ws: Workspace, page: str, prefix: str) -> Pin:
    """Restore a ``?view=ID`` permalink and return the data version to compute from.

    The view's parameters are applied only when the URL holds none of this
    page's keys, so a reloaded (or edited) URL keeps its own filters while
    staying pinned to the view's data version.
    """
    latest = data_version(ws)
    view_id = st.query_params.get("view")
    if not view_id:
        return Pin(latest, None)
    try:
        view = saved_views.load_view(ws, view_id)
    except ViewNotFound as exc:
        show_error(exc)
        st.query_params.pop("view", None)
        return Pin(latest, None)
    if view.page != page:
        st.warning(f"Shared view `{view.id}` belongs to the {view.page} page; showing it there "
                   "is not possible from here, so this page shows the latest data.")
        return Pin(latest, None)
    if not any(k.startswith(prefix) for k in st.query_params.keys()):
        for key, value in view.params.items():
            if key.startswith(prefix):
                st.query_params[key] = value
                st.session_state.pop(key, None)
    _view_banner(view, latest)
    return Pin(view.data_version, view.data_version, view.id)


def _view_banner(view: saved_views.SavedView, latest: int) -> None:
    when = view.created_at.strftime("%Y-%m-%d %H:%M UTC")
    if latest > view.data_version:
        col1, col2 = st.columns([4, 1], vertical_alignment="center")
        col1.info(f"Shared view `{view.id}` (saved {when}), **as of sync {view.data_version}**. "
                  f"Newer data exists (sync {latest}).", icon=":material/history:")
        if col2.button("Update to latest", key="_view_update", icon=":material/update:"):
            st.query_params.pop("view", None)
            st.rerun()
    else:
        st.caption(f":material/link: Shared view `{view.id}` (saved {when}), "
                   f"as of sync {view.data_version}: the latest data.")


def share_button(ws: Workspace, page: str, prefix: str, pin: Pin) -> None:
    """Save the page's URL state + data version as a permalink and show the link."""
    if st.button("Share", key="_share", icon=":material/share:",
                 help="Save a permalink that freezes these filters, settings and the data version"):
        params = {k: st.query_params.get_all(k) for k in st.query_params.keys() if k.startswith(prefix)}
        params = {k: v[0] if len(v) == 1 else v for k, v in params.items()}
        with guard():
            view_id = saved_views.save_view(ws, page, params, pin.version)
            st.query_params["view"] = view_id
            st.session_state["_shared_link"] = _link_for(view_id)
    link = st.session_state.get("_shared_link")
    if link and st.query_params.get("view") and link.endswith(st.query_params.get("view")):
        st.code(link, language=None)


def _link_for(view_id: str) -> str:
    base = ""
    with contextlib.suppress(Exception):  # st.context.url is unavailable under AppTest
        base = (st.context.url or "").split("?", 1)[0]
    return f"{base}?view={view_id}"


# ---------------------------------------------------------------- selection + cached compute
@dataclass(frozen=True)
class Selection:
    """Which trajectories an analysis uses; empty tuple = no filter on that column."""

    sources: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()


def _config_key(ws: Workspace) -> str:
    """Cache-key part for settings that change metrics (task quotas)."""
    return json.dumps(ws.config.get("tasks") or {}, sort_keys=True, default=str)


@st.cache_data(show_spinner=False, max_entries=8)
def _summaries(_ws: Workspace, root: str, version: int, as_of: int | None, cfg: str) -> pl.DataFrame:
    from fle_core import analysis

    return analysis.load_summaries(_ws, as_of_sync=as_of)


def summaries(ws: Workspace, pin: Pin) -> pl.DataFrame:
    """All trajectory summaries at the pinned data version (cached per version)."""
    if pin.version == 0:
        raise WarehouseMissing("Nothing has been synced into this workspace yet",
                               hint="sync a source on Sources & sync, or run the demo sweep on Overview")
    return _summaries(ws, str(ws.root), pin.version, pin.as_of, _config_key(ws))


def select(frame: pl.DataFrame, sel: Selection) -> pl.DataFrame:
    """Filter summaries by the selection (source/model/task/sweep)."""
    for col, values in (("source", sel.sources), ("model", sel.models), ("task", sel.tasks),
                        ("sweep_id", sel.sweeps)):
        if values and col in frame.columns:
            frame = frame.filter(pl.col(col).is_in(list(values)))
    return frame


def distinct(frame: pl.DataFrame, col: str) -> list[str]:
    """Sorted distinct non-null values of a column (widget options)."""
    if col not in frame.columns or frame.is_empty():
        return []
    return sorted(v for v in frame[col].drop_nulls().unique().to_list())


_COMPUTE: dict[str, Callable[..., Any]] = {}


def compute_fn(name: str):
    """Register a named computation over selected summaries (cached by ``compute``)."""
    def deco(fn):
        _COMPUTE[name] = fn
        return fn
    return deco


# Named computations pages may ask for. Each takes the selected summaries frame.
@compute_fn("summaries")
def _c_summaries(s: pl.DataFrame) -> pl.DataFrame:
    return s


@compute_fn("leaderboard")
def _c_leaderboard(s: pl.DataFrame, k_values: list[int]) -> pl.DataFrame:
    from fle_core import metrics

    return metrics.model_metrics(s, k_values=tuple(k_values))


@compute_fn("group_metrics")
def _c_group(s: pl.DataFrame, k_values: list[int]) -> pl.DataFrame:
    from fle_core import metrics

    return metrics.group_metrics(s, by=("model", "task"), k_values=tuple(k_values))


@compute_fn("intervals")
def _c_intervals(s: pl.DataFrame, reps: int, seed: int) -> pl.DataFrame:
    from fle_core import bootstrap

    return bootstrap.interval_estimates(s, reps=reps, seed=seed)


@compute_fn("passk_curve")
def _c_passk(s: pl.DataFrame, k_values: list[int], reps: int, seed: int) -> pl.DataFrame:
    from fle_core import bootstrap

    return bootstrap.pass_at_k_curve(s, k_values=tuple(k_values), reps=reps, seed=seed)


@compute_fn("prob_improvement")
def _c_poi(s: pl.DataFrame, reps: int, seed: int) -> pl.DataFrame:
    from fle_core import bootstrap

    return bootstrap.probability_of_improvement(s, reps=reps, seed=seed)


@compute_fn("pairwise")
def _c_pairwise(s: pl.DataFrame, metric: str, correction: str, baseline: str | None, reps: int,
                seed: int) -> pl.DataFrame:
    from fle_core import compare

    return compare.pairwise_comparisons(s, metric=metric, correction=correction, baseline=baseline,
                                        reps=reps, seed=seed)


@compute_fn("task_difficulty")
def _c_difficulty(s: pl.DataFrame) -> pl.DataFrame:
    from fle_core import metrics

    return _frames.difficulty_view(metrics.group_metrics(s, by=("task",), k_values=(1,)))


@st.cache_data(show_spinner=False, max_entries=64)
def _compute(_ws: Workspace, name: str, root: str, version: int, as_of: int | None, cfg: str,
             sel: tuple, kwargs_json: str) -> Any:
    frame = select(_summaries(_ws, root, version, as_of, cfg), Selection(*sel))
    return _COMPUTE[name](frame, **json.loads(kwargs_json))


def compute(ws: Workspace, pin: Pin, name: str, sel: Selection, **kwargs) -> Any:
    """Run a registered computation on the selected summaries; cached on the data version."""
    summaries(ws, pin)  # raises the friendly WarehouseMissing before first sync
    sel_key = tuple(asdict(sel).values())
    return _compute(ws, name, str(ws.root), pin.version, pin.as_of, _config_key(ws), sel_key,
                    json.dumps(kwargs, sort_keys=True))


@st.cache_data(show_spinner=False, max_entries=16)
def _catalog(_ws: Workspace, what: str, root: str, version: int) -> Any:
    from fle_core import catalog

    return getattr(catalog, what)(_ws)


def catalog(ws: Workspace, what: str, version: int | None = None) -> Any:
    """A ``fle_core.catalog`` read (warehouse contents, sync history), cached per data version."""
    return _catalog(ws, what, str(ws.root), data_version(ws) if version is None else version)


def palette(summ: pl.DataFrame):
    """One model → colour mapping for every chart of a page (all models in the data)."""
    from fle_core.charts_base import ModelPalette

    return ModelPalette.from_models(distinct(summ, "model"))


@st.cache_data(show_spinner=False, max_entries=32)
def _trajectory_steps(_ws: Workspace, root: str, version: int, as_of: int | None,
                      key: str) -> pl.DataFrame:
    from fle_core import analysis

    source, ver, instance = parse_traj_key(key)
    steps = analysis.load_steps(_ws, sources=[source], versions=[ver], as_of_sync=as_of)
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

    source, version, instance = parse_traj_key(key)
    return sources.fetch_step_detail(_ws.source(source), version, instance)


def fetch_step_detail(ws: Workspace, key: str) -> pl.DataFrame:
    """Per-step code and output fetched on demand from the trajectory's source."""
    return _step_detail(ws, str(ws.root), key)


def live(render: Callable[[], None], every_s: float | None) -> None:
    """Run ``render`` inside an auto-refreshing fragment (or once, when ``every_s`` is None).

    The page's content lives in ``render`` so it is the same code whether the
    fragment re-runs it in the browser or AppTest runs the script once.
    """
    if every_s:
        st.fragment(render, run_every=every_s)()
    else:
        render()


# ---------------------------------------------------------------- shared renderers
LEADERBOARD_COLUMNS = {
    "model": st.column_config.TextColumn("Model", pinned=True),
    "success_rate": st.column_config.ProgressColumn("Success", format="percent", min_value=0.0,
                                                    max_value=1.0),
    "ci_95": st.column_config.TextColumn("95% CI (Wilson)"),
    "n_scored": st.column_config.NumberColumn("Scored trials", format="%d",
                                              help="Trajectories of tasks with a quota"),
    "n": st.column_config.NumberColumn("Trajectories", format="%d"),
    "n_tasks": st.column_config.NumberColumn("Tasks", format="%d"),
    "successes": st.column_config.NumberColumn("Successes", format="%d"),
    "pass_at_1": st.column_config.NumberColumn("pass@1", format="%.3f"),
    "reward_iqm": st.column_config.NumberColumn("Reward IQM", format="%.1f"),
    "tokens_per_success": st.column_config.NumberColumn("Tokens / success", format="compact"),
    "simulated": st.column_config.CheckboxColumn("Simulated"),
}


def leaderboard_view(board: pl.DataFrame) -> pl.DataFrame:
    return _frames.leaderboard_view(board, list(LEADERBOARD_COLUMNS))


def sources_view(per_source: pl.DataFrame, states: pl.DataFrame) -> pl.DataFrame:
    return _frames.sources_view(per_source, states)


SOURCE_COLUMNS = {
    "source": st.column_config.TextColumn("Source", pinned=True),
    "display_url": st.column_config.TextColumn("URL (password masked)"),
    "rows": st.column_config.NumberColumn("Steps", format="%d"),
    "trajectories": st.column_config.NumberColumn("Trajectories", format="%d"),
    "flagged_rows": st.column_config.NumberColumn("Flagged rows", format="%d",
                                                  help="Kept, but task or meta unparsed"),
    "simulated_rows": st.column_config.NumberColumn("Simulated rows", format="%d"),
    "last_sync_id": st.column_config.NumberColumn("Last sync", format="%d"),
    "last_status": st.column_config.TextColumn("Status"),
    "last_finished_at": st.column_config.DatetimeColumn("Synced at", format="YYYY-MM-DD HH:mm:ss"),
    "last_at": st.column_config.DatetimeColumn("Newest step", format="YYYY-MM-DD HH:mm:ss"),
    "last_error": st.column_config.TextColumn("Last error"),
}

SWEEP_COLUMNS = {
    "progress": st.column_config.ProgressColumn("Progress", format="percent", min_value=0.0,
                                                max_value=1.0),
}


def runner_health(runners: pl.DataFrame) -> None:
    """Alive runners and their last heartbeat; a clear note when none is alive."""
    alive = runners.filter(pl.col("alive")) if "alive" in runners.columns else runners.head(0)
    if alive.is_empty():
        st.caption(":material/power_off: No runner is alive. Queued sweeps wait until one runs: "
                   "`fle-core runner` (the launch and demo buttons start one).")
    else:
        beat = alive["heartbeat_at"].max()
        ago = (datetime.now(timezone.utc) - beat).total_seconds() if beat is not None else None
        st.caption(f":material/favorite: {alive.height} runner(s) alive · last heartbeat "
                   f"{_frames.duration_text(ago)} ago")
    if not runners.is_empty():
        st.dataframe(runners, hide_index=True)


def status_fraction(status: Any) -> float:
    return (status.done / status.total) if status.total else 0.0


def status_text(status: Any) -> str:
    eta = f" · ETA {_frames.duration_text(status.eta_s)}" if status.eta_s else ""
    return f"{status.name}: {status.done}/{status.total} cells finished ({status.status}){eta}"


def status_counts(status: Any) -> None:
    """One metric per cell state."""
    shown = {k: v for k, v in status.counts.items() if v or k in ("pending", "running", "succeeded")}
    for col, (state, n) in zip(st.columns(len(shown)), shown.items()):
        col.metric(state.replace("_", " ").capitalize(), n)


def failure_title(row: dict) -> str:
    code = row.get("exit_code")
    return (f"{row.get('model')} · {row.get('task')} · trial {row.get('trial')} · attempt "
            f"{row.get('attempt')} · {row.get('outcome') or row.get('status')}"
            + (f" (exit {code})" if code is not None else ""))


def guarded(fn: Callable[..., None], *args) -> None:
    """Call ``fn`` with FleErrors rendered (for fragment bodies)."""
    with guard():
        fn(*args)


def progress_callback(bar) -> Callable[..., None]:
    """Adapt ``sync.sync``'s progress callback to a ``st.progress`` bar."""
    def cb(*args, **kwargs) -> None:
        done = kwargs.get("done", args[0] if args else 0)
        total = kwargs.get("total", args[1] if len(args) > 1 else 0)
        if total:
            bar.progress(min(1.0, float(done) / float(total)), text=f"{int(done):,} / {int(total):,} rows")
    return cb


def preset_caption(preset: dict | None) -> None:
    """What a server-side executor preset runs (never editable from the browser)."""
    if not preset:
        return
    command = " ".join(preset.get("command") or [])
    what = f"`{command}`" if command else f"built-in {preset.get('kind')} executor"
    st.caption(f"{preset.get('description') or preset.get('kind')} · runs {what}")


def cells_view(cells: pl.DataFrame) -> None:
    """The sweep's model × task × trial grid coloured by cell state (a chart once one exists)."""
    from fle_core import charts

    builder = getattr(charts, "sweep_cells_chart", None)
    if builder is not None:
        st.altair_chart(builder(cells), width="stretch")
        return
    grid = _frames.cells_grid(cells).to_pandas()

    def paint(state: object) -> str:
        colour = _frames.STATE_COLOURS.get(str(state))
        return f"background-color: {colour}; color: black" if colour else ""

    trials = [c for c in grid.columns if c.startswith("trial ")]
    st.dataframe(grid.style.map(paint, subset=trials), hide_index=True)
    st.caption("Cells coloured by state: " + " · ".join(
        f":{_STATE_BADGE.get(s, 'gray')}-badge[{s.replace('_', ' ')}]" for s in _frames.STATE_COLOURS))


_STATE_BADGE = {"succeeded": "green", "running": "blue", "pending": "gray", "failed": "red",
                "early_stopped": "yellow", "cancelled": "gray"}


def chart(builder: str, *args, fallback: pl.DataFrame | None = None, caption: str = "", **kw) -> None:
    """Draw ``fle_core.charts.<builder>``; a table of ``fallback`` when that builder is absent."""
    from fle_core import charts

    fn = getattr(charts, builder, None)
    if fn is not None:
        st.altair_chart(fn(*args, **kw), width="stretch")
    elif fallback is not None:
        st.dataframe(fallback, hide_index=True)
    if caption:
        st.caption(caption)


def grid_chart(chart) -> None:
    """Draw a task × model grid chart at its own size.

    Streamlit's default ``height="content"`` collapses layered charts with a
    nominal y axis to a sliver, so pass the spec's height plus room for the
    title, axis labels and legend explicitly.
    """
    inner = chart.to_dict(validate=False).get("height")
    height = int(inner) + 190 if isinstance(inner, (int, float)) else "content"
    st.altair_chart(chart, width="stretch", height=height)


def url_tabs(labels: Sequence[str], key: str) -> dict[str, Any]:
    """Lazy tabs whose selection lives in ``?key=``: only the open tab's content should run.

    Returns ``{label: container}``; check ``container.open`` before computing.
    """
    labels = list(labels)
    raw = st.query_params.get(key)
    if key not in st.session_state and raw is not None and raw not in labels:
        _warn_param(key, raw, f"expected one of {', '.join(labels)}")
        raw = None
    default = st.session_state.get(key) or raw or labels[0]
    tabs = st.tabs(labels, key=key, on_change="rerun", default=default)
    _write_param(key, st.session_state.get(key) or default, labels[0])
    return dict(zip(labels, tabs))
