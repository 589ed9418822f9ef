"""UI layer, part 6: compare a runs file (per-run results of any metric) — the experiment log.

A file comes from an upload or from the workspace's ``runs/`` folder (picked
from a list: the browser never names a server path). Reading, testing and the
Markdown are ``fle_core``'s (``sources.runs``, ``stats.runs``); this module only
lays them out. Widgets are keyed ``cmp_runs_*``; uploads cannot live in the
URL, so this section is not part of a shared view.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st

from fle_core.sources.runs import RunsTable, read_runs
from fle_core.stats.runs import compare_runs, runs_markdown
from fle_core.workspace import Workspace
from pages._ui import tables
from pages._ui.core import empty_state
from pages._ui.frames import plain

SUFFIXES = ("csv", "tsv", "parquet", "pq", "jsonl", "ndjson")
TESTS = {"welch": "Welch's t-test", "student": "Student's t-test", "mannwhitney": "Mann-Whitney U"}
CORRECTIONS = {"none": "None (as the log)", "holm": "Holm", "bh": "Benjamini–Hochberg"}


def runs_folder(ws: Workspace) -> Path:
    return ws.root / "runs"


def _workspace_files(ws: Workspace) -> list[Path]:
    folder = runs_folder(ws)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lstrip(".").lower() in SUFFIXES)


@st.cache_data(show_spinner=False, max_entries=8)
def _read(data: bytes, name: str) -> RunsTable:
    return read_runs(data, name=name)


@st.cache_data(show_spinner="Testing every system against the baseline…", max_entries=16)
def _compare(data: bytes, name: str, baseline: str, metrics: tuple[str, ...], test: str, correction: str):
    table = _read(data, name)
    comparisons = compare_runs(table.frame, baseline, list(metrics), test=test, correction=correction)
    return comparisons, runs_markdown(comparisons, table.frame, notes=table.notes)


def _source(ws: Workspace) -> tuple[bytes, str] | None:
    upload = st.file_uploader(
        "Runs file: CSV, Parquet, JSONL, or a runs table exported from W&B",
        type=list(SUFFIXES),
        key="cmp_runs_upload",
        help="One row per run: a system column (branch, config, …), a seed, metric columns, optionally a task.",
    )
    if upload is not None:
        return upload.getvalue(), upload.name
    files = _workspace_files(ws)
    if files:
        pick = st.selectbox(
            f"…or a file in the workspace's `runs/` folder ({len(files)})",
            [None, *[p.name for p in files]],
            format_func=lambda n: "(choose a file)" if n is None else n,
            key="cmp_runs_file",
        )
        if pick is not None:
            path = runs_folder(ws) / pick
            return path.read_bytes(), path.name
    return None


def runs_file_section(ws: Workspace) -> None:
    """Upload or pick a runs file, choose baseline/test/correction, show the log's tables."""
    st.caption(
        "Per-run results of any metric (RL training runs over seeds, benchmarks per branch): "
        "every system against a baseline, as an experiment-log table. Also `fle-core compare FILE`."
    )
    source = _source(ws)
    if source is None:
        empty_state(
            "No runs file chosen.",
            [
                "Upload a CSV/Parquet/JSONL file with one row per run, or a W&B runs export.",
                f"Or put files in `{runs_folder(ws)}` to pick them here.",
            ],
        )
        return
    data, name = source
    table = _read(data, name)
    systems = table.systems
    c1, c2, c3 = st.columns(3)
    base = systems.index("main") if "main" in systems else 0
    tests: list[str] = list(TESTS)
    corrections: list[str] = list(CORRECTIONS)
    baseline = str(c1.selectbox("Baseline", systems, index=base, key="cmp_runs_base"))
    test = str(c2.selectbox("Test", tests, format_func=lambda k: TESTS[k], key="cmp_runs_test"))
    correction = str(
        c3.selectbox("Correction", corrections, format_func=lambda k: CORRECTIONS[k], key="cmp_runs_corr")
    )
    metrics = st.multiselect("Metrics", table.metrics, default=table.metrics, key="cmp_runs_metrics")
    if not metrics:
        empty_state("No metric selected.", ["Pick at least one metric column above."])
        return
    if len(systems) < 2:
        empty_state("The file holds one system only.", ["Add runs of another branch or config to compare."])
        return
    comparisons, text = _compare(data, name, baseline, tuple(metrics), test, correction)
    st.caption(  # the file name is the uploader's text: plain, never Markdown
        f"{table.frame.height} runs · {len(systems)} systems · {len(metrics)} metrics · {plain(name)}"
    )
    st.markdown(text)
    st.download_button(
        "Markdown (experiment log)",
        text,
        file_name=f"{Path(name).stem}.compare.md",
        mime="text/markdown",
        icon=":material/description:",
        key="cmp_runs_download",
    )
    with st.expander("All comparison rows"):
        tables.table(comparisons.select(pl.exclude("^prob_improvement.*$")))
