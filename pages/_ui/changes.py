"""UI layer, part 8: Compare's "What changed" tab and the leaderboard export, cached like ``data``.

Which sides, the per-task diff, the flips and the comparability warnings are
``fle_core``'s (``analysis.sides``, ``analysis.changes``, ``report.leaderboard``);
this module caches them on the data version and lays them out. URL state:
``cmp_chg_a`` / ``cmp_chg_b`` (the two sides, as ``fle-core gate`` reads them),
``cmp_chg_flip`` (repeatable flip filter), ``cmp_chg_show`` (``got worse`` or all).
"""

from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import quote, urlencode

import polars as pl
import streamlit as st

from fle_core.errors import FleError
from fle_core.workspace import Workspace
from pages._ui.core import empty_state
from pages._ui.data import _config_key, _summaries, summaries
from pages._ui.frames import plain, to_csv
from pages._ui.state import Pin, url_multiselect, url_select
from pages._ui.tables import table as table_with_cue

SHOW = ["all tasks", "got worse"]
INSPECT_VIEW = "http://127.0.0.1:7575/#/logs/{path}/samples/sample/{sample}/{epoch}/"
COLUMNS = {
    "task": st.column_config.TextColumn("Task", pinned=True, width=220),
    "counts": st.column_config.TextColumn(
        "Solved A → B", width=100, help="Solved / trials: baseline → candidate"
    ),
    "change": st.column_config.NumberColumn(
        "Change (pts)", format="%+.1f", width=80, help="Candidate's success rate − baseline's, in points"
    ),
    "flip": st.column_config.TextColumn("Flip", width=130),
    "ci": st.column_config.TextColumn("95% CI", width=85, help="Newcombe's hybrid score interval, in points"),
    "epochs": st.column_config.TextColumn(
        "Epochs lost / gained", width=90, help="Paired by epoch (Inspect runs): A solved, B not / the reverse"
    ),
    "score_change": st.column_config.NumberColumn(
        "Score Δ", format="%+.3f", width=75, help="Change of the mean best reward ÷ quota"
    ),
    "open": st.column_config.LinkColumn("Trajectories", display_text="side by side", width=100),
    "inspect_a": st.column_config.LinkColumn("A's sample", display_text="inspect view", width=95),
    "inspect_b": st.column_config.LinkColumn("B's sample", display_text="inspect view", width=95),
}
#: Up to this many rows the table shows every row; beyond, it scrolls inside a fixed height.
FULL_TABLE_ROWS = 30


@st.cache_data(show_spinner=False, max_entries=8)
def _options(_ws: Workspace, root: str, version: int, as_of: int | None, cfg: str) -> list[str]:
    from fle_core.analysis.sides import side_options
    from fle_core.analysis.systems import label_systems

    return side_options(label_systems(_summaries(_ws, root, version, as_of, cfg)))


@st.cache_data(show_spinner="Comparing the two sides task by task…", max_entries=16)
def _changes(_ws: Workspace, root: str, version: int, as_of: int | None, cfg: str, a: str, b: str):
    from fle_core.analysis.changes import changes

    return changes(_ws, a, b, as_of=as_of)


def _pick_sides(options: list[str]) -> tuple[str, str] | None:
    """Baseline and candidate pickers (URL state); a side from a gate's link that is not in
    the list (e.g. ``gpt-4o@12``) is offered too."""
    extra = [st.query_params.get(k) for k in ("cmp_chg_a", "cmp_chg_b")]
    options = options + [e for e in extra if e and e not in options]
    if len(options) < 2:
        return None
    c1, c2 = st.columns(2)
    a = url_select("Baseline (A)", "cmp_chg_a", options, options[0], where=c1)
    b = url_select("Candidate (B)", "cmp_chg_b", options, options[1], where=c2)
    return a, b


def view_frame(table: pl.DataFrame, roots: dict[str, str]) -> pl.DataFrame:
    """The table as shown: counts as text, points, links (pure shaping, no Streamlit)."""

    def count(s, n) -> str:
        return f"{n} trials" if s is None else f"{s}/{n}"

    def inspect(source, path, sample, epoch) -> str | None:
        if path is None or source not in roots:
            return None
        return INSPECT_VIEW.format(path=quote(path), sample=quote(str(sample)), epoch=epoch)

    rows = []
    for r in table.iter_rows(named=True):
        lo, hi = r["change_ci_low"], r["change_ci_high"]
        rows.append(
            {
                "task": r["task"],
                "counts": f"{count(r['a_successes'], r['a_trials'])} → {count(r['b_successes'], r['b_trials'])}",
                "change": None if r["change"] is None else 100 * r["change"],
                "ci": None if lo is None else f"[{100 * lo:+.0f}, {100 * hi:+.0f}]",
                "flip": r["flip"] or "no quota",
                "epochs": None
                if r["paired_epochs"] is None
                else f"{r['epochs_lost']} / {r['epochs_gained']}",
                "score_change": r["score_change"],
                "open": "trajectories?" + urlencode({"trj_id": r["a_key"], "trj_other": r["b_key"]}),
                "inspect_a": inspect(r["a_source"], r["a_log_path"], r["a_sample_id"], r["a_epoch"]),
                "inspect_b": inspect(r["b_source"], r["b_log_path"], r["b_sample_id"], r["b_epoch"]),
            }
        )
    schema = {k: pl.Float64 if k in ("change", "score_change") else pl.String for k in COLUMNS}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _log_roots(ws: Workspace, table: pl.DataFrame) -> dict[str, str]:
    """Each Inspect source's log folder (for the ``inspect view --log-dir`` hint)."""
    from fle_core import sources
    from fle_core.warehouse.identity import source_named

    names = set(table["a_source"].drop_nulls()) | set(table["b_source"].drop_nulls())
    logged = set(table.filter(pl.col("a_log_path").is_not_null())["a_source"]) | set(
        table.filter(pl.col("b_log_path").is_not_null())["b_source"]
    )
    out = {}
    for name in sorted(names & logged):
        try:
            out[name] = sources.inspect_source(source_named(ws, name)).log_url("")
        except FleError:  # a source the warehouse no longer knows: no viewer link for its rows
            continue
    return out


def changes_section(ws: Workspace, pin: Pin) -> None:
    """Pick two sides; show how they differ, what changed per task, and the downloads."""
    from fle_core.stats.changes import FLIPS, changes_markdown, filter_changes

    summaries(ws, pin)  # the friendly error before the first sync
    sides = _pick_sides(_options(ws, str(ws.root), pin.version, pin.as_of, _config_key(ws)))
    if sides is None:
        empty_state("What changed needs two sides.", ["Sync runs of a second system, sweep or source."])
        return
    if sides[0] == sides[1]:
        empty_state("Baseline and candidate are the same.", ["Pick another candidate above."])
        return
    found = _changes(ws, str(ws.root), pin.version, pin.as_of, _config_key(ws), *sides)
    a, b, table = found.baseline, found.candidate, found.table
    st.caption(
        plain(
            f"A = {a.label}: {a.summaries.height} trajectories · B = {b.label}: {b.summaries.height} "
            f"trajectories · {table.height} common task(s), the worst change first. The sidebar's "
            "filters do not apply here: a side is a system, sweep:ID or source:NAME, as fle-core gate reads it."
        )
    )
    for d in found.differences:
        st.warning(plain(d.text), icon=":material/compare_arrows:")
    if table.is_empty():
        empty_state("The two sides share no task.", ["Pick sides that ran the same tasks."])
        return
    worse = filter_changes(table, regressions_only=True).height
    counts = table["flip"].value_counts()
    flips = dict(zip(counts["flip"].to_list(), counts["count"].to_list(), strict=True))
    m = st.columns(4)
    m[0].metric("Tasks compared", table.height)
    m[1].metric("Got worse", worse)
    m[2].metric("Solved → unsolved", flips.get(FLIPS[0], 0))
    m[3].metric("Unsolved → solved", flips.get(FLIPS[1], 0))
    f1, f2 = st.columns([3, 2], vertical_alignment="bottom")
    with f1:
        chosen = url_multiselect("Flip", "cmp_chg_flip", list(FLIPS), placeholder="Any flip")
    with f2:
        show = url_select("Show", "cmp_chg_show", SHOW, SHOW[0], widget="segmented_control")
    shown = filter_changes(table, flips=chosen or None, regressions_only=show == SHOW[1])
    roots = _log_roots(ws, shown)
    frame = view_frame(shown, roots)
    hide = [c for c in ("epochs", "inspect_a", "inspect_b") if frame[c].null_count() == frame.height]
    table_with_cue(
        frame.drop(hide),
        COLUMNS,
        height="content" if frame.height <= FULL_TABLE_ROWS else 720,
        key="cmp_chg_table",
    )
    if roots:
        st.caption(
            "The inspect view links open a sample in Inspect's log viewer once it runs: "
            + "; ".join(f"`inspect view --log-dir {plain(p)}`" for p in roots.values())
        )
    text = changes_markdown(shown, a.label, b.label)
    buttons = st.container(horizontal=True)
    buttons.download_button(
        "Markdown", text, file_name="changes.md", mime="text/markdown", icon=":material/description:"
    )
    buttons.download_button(
        "CSV",
        to_csv(shown),
        file_name="changes.csv",
        mime="text/csv",
        icon=":material/table:",
        key="cmp_chg_csv",
    )


# ------------------------------------------------------------------ leaderboard export ---
BOARD_COLUMNS = {
    "model": st.column_config.TextColumn("System", pinned=True),
    "lab_success_rate": st.column_config.ProgressColumn(
        "labTasksSuccessRate", format="percent", min_value=0.0, max_value=1.0, help="Over the lab tasks run"
    ),
    "production_score": st.column_config.NumberColumn("productionScore", format="%.0f", help="Open play"),
    "milestones": st.column_config.NumberColumn("milestones", format="%.1f", help="Item types, open play"),
    "trajectories": st.column_config.NumberColumn("Trajectories", format="%d"),
}


@st.cache_data(show_spinner="Computing the leaderboard with intervals…", max_entries=8)
def _leaderboard(
    _ws: Workspace, root: str, version: int, as_of: int | None, cfg: str, systems: tuple[str, ...]
):
    from fle_core.report.leaderboard import load_leaderboard

    return load_leaderboard(_ws, systems=list(systems) or None, as_of=version)


def leaderboard_export(ws: Workspace, pin: Pin, systems: list[str]) -> None:
    """FLE leaderboard files (a zip, one JSON per system) and the full leaderboard JSON, for
    the systems shown; computed when asked (bootstrap intervals take a moment)."""
    from fle_core.report import leaderboard as lb

    st.caption(
        "Leaderboard export: one file per system in FLE's leaderboard format "
        "(docs/leaderboard/results/*.json), intervals and versions under the extra key fle_core."
    )
    slot = st.empty()
    if not st.session_state.get("_lb_ready"):
        if not slot.button("Prepare leaderboard files", key="cmp_lb_prepare", icon=":material/emoji_events:"):
            return
        st.session_state["_lb_ready"] = True
        slot.empty()
    board = _leaderboard(ws, str(ws.root), pin.version, pin.as_of, _config_key(ws), tuple(sorted(systems)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for row in board.frame.iter_rows(named=True):
            record = lb.fle_record(row, board)
            zf.writestr(lb.fle_file_name(record["name"]), json.dumps(record, indent=2) + "\n")
    buttons = st.container(horizontal=True)
    buttons.download_button(
        "FLE leaderboard files (.zip)",
        buf.getvalue(),
        file_name="fle-leaderboard.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
    )
    buttons.download_button(
        "Leaderboard JSON",
        json.dumps(lb.leaderboard_json(board), indent=2),
        file_name="leaderboard.json",
        mime="application/json",
        icon=":material/data_object:",
    )
    table_with_cue(
        board.frame.select("model", "lab_success_rate", "production_score", "milestones", "trajectories"),
        BOARD_COLUMNS,
        key="cmp_lb_table",
    )
    st.caption(
        f"Data version {board.data_version} · suite {board.suite_version}. None: nothing in the data fills it (left out of the FLE files)."
    )
