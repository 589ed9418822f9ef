"""Sources & sync: configured sources (secrets masked), Sync now, history, rows needing attention."""

import polars as pl
import streamlit as st

from fle_core import sources
from fle_core.sources import new_source
from fle_core.sweeps.facts import attempts_for_sync
from fle_core.warehouse import identity
from fle_core.warehouse.sync import sync as run_sync
from pages import _ui

ws = _ui.workspace()
_ui.restore_params("src_")
ro = _ui.read_only(ws)
st.title("Sources & sync")
if ro:
    _ui.read_only_note()


def sources_table() -> list[str]:
    """The configured sources; locations are shown with passwords masked."""
    rows = sources.describe(ws)
    _ui.table(pl.DataFrame(rows))
    st.caption(
        "Sources live under `[sources.NAME]` in the workspace `config.toml` (a database URL, or "
        '`kind = "inspect"` with the `path` of a folder of Inspect logs, local or `s3://…`); passwords '
        "come from environment variables or `.streamlit/secrets.toml`, never from the config."
    )
    return [r["source"] for r in rows]


def add_source() -> None:
    """Add a source: checked on the server (allowed folders, readable now, counted once)."""
    with st.expander("Add a log folder or database", icon=":material/add:"):
        roots = ", ".join(f"`{r}`" for r in new_source.allowed_roots(ws))
        st.caption(
            f"Local paths must lie under {roots} (`[app] source_roots`). Passwords are never typed "
            "here: name the environment variable that holds one."
        )
        with st.form("add_source"):
            name = st.text_input("Name", placeholder="team_logs", max_chars=63)
            where = st.text_input(
                "Where",
                placeholder="a folder of Inspect logs, s3://bucket/logs, sqlite:///runs/fle.db, postgresql://eval@db/fle",
            )
            password_env = st.text_input(
                "Password environment variable (databases only)", placeholder="FLE_PROD_PASSWORD"
            )
            if st.form_submit_button("Add source", type="primary"):
                with _ui.guard():
                    added = identity.add_source(ws, name.strip(), where, password_env.strip() or None)
                    st.success(
                        f"Added `{added.name}` ({added.kind}). Sync it with **Sync now**.",
                        icon=":material/check:",
                    )


def sync_now(names: list[str]) -> None:
    """Run an incremental sync of one source with live progress."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    name = _ui.url_select("Source", "src_source", names, ws.config.get("default_source", "local"), where=left)
    full = right.toggle("Full rebuild", key="_src_full", help="Re-copy this source from scratch")
    if not st.button("Sync now", type="primary", icon=":material/sync:"):
        return
    with st.status(f"Syncing `{name}`…", expanded=True) as status:
        bar = st.progress(0.0)
        try:
            result = run_sync(
                ws, name, full=full, progress=_ui.progress_callback(bar), attempts=attempts_for_sync(ws)
            )
        except Exception:
            status.update(label=f"Sync of `{name}` failed", state="error")
            raise
        bar.progress(1.0)
        for note in result.warnings:  # e.g. rows that committed late in Postgres
            st.warning(_ui.plain(note, limit=600), icon=":material/warning:")
        status.update(label=f"Synced `{name}`: {_ui.sync_result_text(result)}", state="complete")


def history() -> None:
    st.subheader("Sync history")
    runs = _ui.catalog(ws, "sync_history")
    if runs.is_empty():
        _ui.empty_state("No sync has run yet.", ["Press **Sync now** above, or run `fle-core sync`."])
        return
    first = [
        "sync_id",
        "source",
        "status",
        "rows_added",
        "rows_removed",
        "duration_s",
        "finished_at",
        "error",
    ]
    runs = runs.select([c for c in first if c in runs.columns] + [c for c in runs.columns if c not in first])
    _ui.table(
        runs,
        _ui.number_columns(runs, 1)
        | {"duration_s": st.column_config.NumberColumn("Duration (s)", format="%.1f")},
    )


def inspect_logs() -> None:
    """Inspect logs: running or killed ones, errors, unreadable files, and each log's own headline."""
    logs = _ui.catalog(ws, "inspect_logs")
    if logs.is_empty():
        return
    st.subheader("Inspect logs")
    bad = logs.filter(pl.col("status") != "success")
    if bad.is_empty():
        st.success(f"All {logs.height} logs finished with status success.", icon=":material/check_circle:")
    else:
        counts = ", ".join(f"{n} {s}" for s, n in bad.group_by("status").len().sort("status").iter_rows())
        st.warning(
            f"{bad.height} of {logs.height} logs need a look ({counts}). `started` means running, or "
            "killed before it finished; `unreadable` files were skipped (the reason is shown); the "
            "other logs synced.",
            icon=":material/report:",
        )
    st.caption(
        "`headline` is each log's own summary metric as Inspect reports it. For FLE's scorer that "
        "is the **mean throughput proportion** (`min(production / quota, 1)`), not a success rate: "
        "see the success rate on **Compare**."
    )
    # what a log says first (its status and headline, labelled); the long path and error last
    view = logs.select(
        "status",
        "headline_label",
        "headline_value",
        "model",
        "task",
        "samples",
        "expected_samples",
        "path",
        "error",
        "source",
        "sweep_id",
    ).rename({"headline_label": "headline", "headline_value": "headline value"})
    _ui.table(_ui.short_names(view))


def left_out() -> None:
    """Samples, logs and files sync left out for a malformed field (the rest synced)."""
    rows = _ui.catalog(ws, "quarantined")
    if rows.is_empty():
        return
    st.subheader("Left out for a malformed field")
    st.warning(
        f"{rows.height:,} sample(s), log(s) or file(s) could not be synced as they are; everything "
        "beside them synced. Fix or remove the file, and the next sync reads it again.",
        icon=":material/report:",
    )
    st.dataframe(rows.rename({"detail": "what and why"}), hide_index=True)


def attention() -> None:
    st.subheader("Rows needing attention")
    rows = _ui.catalog(ws, "attention_rows")
    if rows.is_empty():
        st.success("Every synced row parsed cleanly (task and meta).", icon=":material/check_circle:")
        return
    st.caption(
        "These rows are kept in the warehouse but their task or meta could not be parsed; "
        "they are left out of per-task metrics. Add a `[tasks.KEY]` entry or fix the source."
    )
    _ui.table(rows)


table, adding = st.container(), st.container()
if not ro:
    with adding:
        add_source()  # run before the table is drawn, so a source just added is listed
with _ui.guard():
    with table:
        names = sources_table()
    if not ro:
        with _ui.guard():
            sync_now(names)
    if _ui.data_version(ws) == 0:
        _ui.empty_state(
            "Nothing has been synced into this workspace yet.",
            [
                "Pick a source above and press **Sync now**.",
                "No FLE database yet? Run the simulated demo sweep from **Overview**.",
            ],
        )
    else:
        history()
        inspect_logs()
        left_out()
        attention()
        per_source = _ui.catalog(ws, "overview", _ui.data_version(ws))
        _ui.remove_demo_section(ws, int(per_source["simulated_rows"].sum()), ro)
