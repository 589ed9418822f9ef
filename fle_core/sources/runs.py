"""Per-run results files: CSV, Parquet, JSONL, and runs tables exported from W&B.

One row per run: a system label (branch, PR, config, model), a seed, any number
of metric columns and optionally a task or group. ``read_runs`` finds those
columns (or takes them by name), keeps the numeric metric columns, and returns
the **runs** frame that ``stats.runs.compare_runs`` takes (columns ``system``,
``seed``, optional ``task``, then the metrics, named as in the file).

A **W&B runs export** is the CSV the W&B web UI writes from a project's runs
table ("Export as CSV"): one row per run, the run columns (``Name``, ``State``,
``Notes``, ``User``, ``Tags``, ``Created``, ``Runtime``, ``Sweep``, ...) and
then config and summary columns. It is recognised by its ``Name`` and
``State`` columns. Only runs in ``states`` (default: ``finished``) are kept —
a crashed run's summary is whatever it logged last — and the skipped ones are
counted in ``notes``. W&B's own columns (those above and any starting with
``_``, such as ``_step``, ``_runtime``, ``_timestamp``) are never metrics.
Columns prefixed ``config.`` / ``summary.`` (the shape of API exports, and of
nested JSONL records, which are flattened that way) lose the prefix; then only
the summary columns are metric candidates.

Nothing is dropped silently: a row without a system label is reported in
``notes``, and so is every text cell that is not a number (left out, null). NaN
and ±inf are results (a diverged run logs ``loss = inf``): they stay in the frame
as they are, are counted in ``notes``, and ``stats.runs.compare_runs`` marks the
rows they touch "not tested". A text column whose cells are mostly numbers is a
metric column: its other cells are the ones left out, never the column. Two runs
with the same (system, seed[, task]) — a file concatenated twice — are refused
unless ``allow_duplicates``. Bad input raises ``SourceError`` with a hint naming
the columns found.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from fle_core.errors import SourceError

Fmt = Literal["csv", "parquet", "jsonl", "wandb"]
SYSTEM_COLUMNS = ("system", "branch", "git_branch", "config", "variant", "label", "group", "Group", "model")
SEED_COLUMNS = ("seed", "Seed", "random_seed", "run_seed")
TASK_COLUMNS = ("task", "Task", "env_id", "env")
WANDB_COLUMNS = {
    "Name",
    "State",
    "Notes",
    "User",
    "Tags",
    "Created",
    "Runtime",
    "Sweep",
    "ID",
    "Group",
    "Job Type",
    "Hostname",
    "Commit",
    "GitHub",
    "GPU Type",
    "GPU Count",
}
_SUFFIX: dict[str, Fmt] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class RunsTable:
    """A runs file read into the runs frame.

    ``frame``: ``system`` (str), ``seed`` (str), ``task`` (str, only when the
    file has one), then ``metrics`` (f64) in file order. ``kind`` says how the
    file was read; ``notes`` lists what a reader should know (skipped runs,
    columns taken as metrics, values that were not numbers).
    """

    frame: pl.DataFrame
    metrics: list[str]
    kind: Fmt
    name: str
    notes: list[str] = field(default_factory=list)

    @property
    def systems(self) -> list[str]:
        return self.frame["system"].unique(maintain_order=True).to_list()


def read_runs(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    format: Fmt | None = None,
    system: str | None = None,
    seed: str | None = None,
    task: str | None = None,
    metrics: Sequence[str] | None = None,
    states: Sequence[str] | None = ("finished",),
    allow_duplicates: bool = False,
) -> RunsTable:
    """Read a runs file (a path, or the bytes of an upload named ``name``).

    ``format`` defaults from the suffix (``.csv``/``.tsv``, ``.parquet``/``.pq``,
    ``.jsonl``/``.ndjson``); a CSV with ``Name`` and ``State`` columns is a
    W&B export. ``system``, ``seed`` and ``task`` name the key columns
    (default: the first present of ``SYSTEM_COLUMNS``, ``SEED_COLUMNS``,
    ``TASK_COLUMNS``; without a seed column, runs are numbered 1, 2, … per
    system in file order). ``metrics`` picks metric columns (default: every
    numeric column that is not a key, a W&B run column or, when summary
    columns are marked, a config column). ``states`` filters W&B runs by
    ``State`` (``None`` keeps all). Two runs under one (system, seed[, task])
    key raise ``SourceError`` unless ``allow_duplicates`` (then each counts, noted).
    """
    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    fmt = format or _SUFFIX.get(Path(label).suffix.lower())
    if fmt is None:
        raise SourceError(
            f"cannot tell the format of {label}", hint="use a .csv, .parquet or .jsonl file, or pass format="
        )
    raw = _read(source, fmt, label)
    if raw.width == 0 or raw.height == 0:
        raise SourceError(f"{label} holds no runs", hint="expected one row per run with a header row")
    if fmt == "csv" and {"Name", "State"} <= set(raw.columns):
        fmt = "wandb"
    notes: list[str] = []
    raw, summary = _unprefix(_flatten(raw))
    if fmt == "wandb" and states is not None and "State" in raw.columns:
        raw = _keep_states(raw, list(states), notes)
    sys_col = _pick(raw, system, SYSTEM_COLUMNS, "system", label)
    seed_col = _pick(raw, seed, SEED_COLUMNS, "seed", label, required=False)
    task_col = _pick(raw, task, TASK_COLUMNS, "task", label, required=False)
    keys = {c for c in (sys_col, seed_col, task_col) if c}
    chosen = _metrics(raw, metrics, keys, summary, fmt, label, notes)
    frame = _frame(raw, sys_col, seed_col, task_col, chosen, notes, label)
    _check_duplicates(frame, allow_duplicates, notes, label)
    return RunsTable(frame, chosen, fmt, label, notes)


# ------------------------------------------------------------------ reading ---
def _read(source, fmt: Fmt, label: str) -> pl.DataFrame:
    data = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    if isinstance(data, Path) and not data.is_file():
        raise SourceError(f"runs file {label} does not exist")
    try:
        if fmt in ("csv", "wandb"):
            sep = "\t" if label.lower().endswith(".tsv") else ","
            return pl.read_csv(data, separator=sep, infer_schema_length=None, null_values=["", "NA", "null"])
        if fmt == "parquet":
            return pl.read_parquet(data)
        return pl.read_ndjson(data, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise SourceError(f"cannot read {label} as {fmt}: {exc}", hint="check the file's format") from None


def _flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested records (``{"config": {"lr": 1}}``) → ``config.lr`` columns."""
    while structs := [c for c, t in frame.schema.items() if isinstance(t, pl.Struct)]:
        for c in structs:
            inner = frame[c].struct.unnest()
            frame = frame.drop(c).hstack(inner.rename({f: f"{c}.{f}" for f in inner.columns}))
    return frame


def _unprefix(frame: pl.DataFrame) -> tuple[pl.DataFrame, set[str] | None]:
    """Strip ``config.`` / ``summary.`` (``/`` too) where the name stays unique;
    the summary columns' new names, or None when no column is marked."""
    rename: dict[str, str] = {}
    summary: set[str] = set()
    marked = False
    for c in frame.columns:
        for prefix in ("config.", "config/", "summary.", "summary/"):
            if c.startswith(prefix):
                marked = True
                short = c[len(prefix) :]
                target = short if short not in frame.columns and short not in rename.values() else c
                rename[c] = target
                if prefix.startswith("summary"):
                    summary.add(target)
    return frame.rename(rename), (summary if marked else None)


def _keep_states(raw: pl.DataFrame, states: list[str], notes: list[str]) -> pl.DataFrame:
    keep = pl.col("State").is_in(states)
    dropped = raw.filter(~keep.fill_null(False))
    if dropped.height:
        counts = dropped.group_by("State").len().sort("State", nulls_last=True).iter_rows()
        listed = ", ".join(f"{n} {s or '(no state)'}" for s, n in counts)
        notes.append(f"skipped {dropped.height} W&B run(s) whose State is not {'/'.join(states)}: {listed}")
    out = raw.filter(keep.fill_null(False))
    if out.height == 0:
        raise SourceError(
            f"no W&B run has State {'/'.join(states)}",
            hint="pass states=None (CLI: --state all) to keep them all",
        )
    return out


def _pick(raw, given, candidates, what: str, label: str, *, required: bool = True) -> str | None:
    if given is not None:
        if given not in raw.columns:
            raise SourceError(f"{label} has no column {given!r} for the {what}", hint=_columns(raw))
        return given
    found = next((c for c in candidates if c in raw.columns), None)
    if found is None and required:
        raise SourceError(
            f"{label}: which column names the {what}? none of {', '.join(candidates)} is present",
            hint=f"pass it by name (CLI: --{what}-column COLUMN); {_columns(raw)}",
        )
    return found


def _columns(raw: pl.DataFrame) -> str:
    shown = ", ".join(raw.columns[:30]) + (" …" if raw.width > 30 else "")
    return f"columns: {shown}"


def _parsed(series: pl.Series) -> pl.Series:
    """The column as floats: numbers as they are, text parsed (NaN/inf spellings kept), else null."""
    if series.dtype.is_numeric() or series.dtype == pl.Boolean:
        return series.cast(pl.Float64)
    return series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


def _numeric(series: pl.Series) -> pl.Series:
    """The metric column as floats: NaN and ±inf kept (results, not gaps), text null
    (``_exclusions`` says how many of each)."""
    return _parsed(series)


def _mostly_numbers(series: pl.Series) -> bool:
    """A text column is a metric when more than half of its non-empty cells are numbers
    (a NaN or inf spelling counts as one): one ``nan`` or ``abc`` must not hide a metric."""
    if series.dtype.is_numeric():
        return True
    if series.dtype != pl.String:
        return False
    cells = series.drop_nulls().str.strip_chars()
    cells = cells.filter(cells != "")
    return cells.len() > 0 and 2 * int(_parsed(cells).is_not_null().sum()) > cells.len()


def _exclusions(name: str, raw: pl.Series) -> list[str]:
    """Notes on a metric's odd cells: non-finite values kept (``'loss': 2 non-finite
    value(s) kept: 1 NaN, 1 inf``) and text left out (``1 value(s) of 'y' left out: 1 not a
    number ('abc')``)."""
    values = _parsed(raw)
    present = raw.is_not_null()
    if raw.dtype == pl.String:
        present = present & (raw.str.strip_chars() != "")
    nan = int((values.is_nan().fill_null(False) & present).sum())
    inf = int((values.is_infinite().fill_null(False) & present).sum())
    text_mask = values.is_null() & present
    text = int(text_mask.sum())
    notes = []
    if nan or inf:
        kinds = ", ".join([*([f"{nan} NaN"] if nan else []), *([f"{inf} inf"] if inf else [])])
        notes.append(
            f"{nan + inf} non-finite value(s) of {name!r} kept: {kinds}; "
            "the rows they are in are not tested (a diverged run is a result, not a gap)"
        )
    if text:
        examples = raw.filter(text_mask).cast(pl.String).unique(maintain_order=True).head(3).to_list()
        shown = ", ".join(repr(e) for e in examples) + (", …" if text > len(examples) else "")
        notes.append(f"{text} value(s) of {name!r} left out: {text} not a number ({shown})")
    return notes


def _metrics(raw, metrics, keys, summary, fmt, label, notes) -> list[str]:
    if metrics:
        bad = [m for m in metrics if m not in raw.columns or m in keys]
        if bad:
            raise SourceError(f"{label}: no metric column {', '.join(map(repr, bad))}", hint=_columns(raw))
        not_numbers = [m for m in metrics if _parsed(raw[m]).is_null().all() and raw[m].is_not_null().any()]
        if not_numbers:
            raise SourceError(f"{label}: column(s) {', '.join(not_numbers)} hold no numbers")
        return list(metrics)
    skip = set(keys) | (WANDB_COLUMNS if fmt == "wandb" else set())
    pool = [c for c in raw.columns if c not in skip and not c.startswith("_")]
    if summary is not None:
        pool = [c for c in pool if c in summary]
    chosen = [c for c in pool if _mostly_numbers(raw[c]) and raw[c].is_not_null().any()]
    if not chosen:
        raise SourceError(f"{label} has no numeric metric column", hint=_columns(raw))
    if fmt == "wandb" and summary is None:
        notes.append(f"metrics: every numeric column ({', '.join(chosen)}); pick some with --metric")
    return chosen


def _frame(raw, sys_col, seed_col, task_col, metrics, notes, label) -> pl.DataFrame:
    system = raw[sys_col].cast(pl.String)
    unlabelled = int(system.is_null().sum())
    if unlabelled:
        notes.append(f"skipped {unlabelled} run(s) with no {sys_col!r} value")
    cols = [system.alias("system")]
    if seed_col is not None:
        cols.append(raw[seed_col].cast(pl.String).alias("seed"))
    if task_col is not None:
        cols.append(raw[task_col].cast(pl.String).alias("task"))
    for m in metrics:
        notes += _exclusions(m, raw[m].filter(system.is_not_null()))
        cols.append(_numeric(raw[m]).alias(m))
    frame = pl.DataFrame(cols).filter(pl.col("system").is_not_null())
    if frame.height == 0:
        raise SourceError(f"{label}: no run has a {sys_col!r} value")
    if seed_col is None:
        notes.append("no seed column: runs are numbered 1, 2, … per system in file order")
        frame = frame.with_columns((pl.int_range(pl.len()).over("system") + 1).cast(pl.String).alias("seed"))
    frame = frame.select("system", "seed", *(["task"] if task_col else []), *metrics)
    return frame


def _check_duplicates(frame: pl.DataFrame, allow: bool, notes: list[str], label: str) -> None:
    """Two runs under one (system, seed[, task]) key: refused, or counted and noted when allowed.

    A file concatenated twice doubles every n and shrinks every p-value; a real
    rerun of a seed is rare enough that the caller should say so.
    """
    keys = [k for k in ("system", "seed", "task") if k in frame.columns]
    known = frame.filter(pl.col("seed").is_not_null())  # a run of unknown seed repeats nothing
    dupes = known.group_by(keys).len().filter(pl.col("len") > 1).sort(keys, nulls_last=True)
    if dupes.height == 0:
        return
    if allow:
        notes.append(f"{dupes.height} ({', '.join(keys)}) key(s) hold more than one run; each run counts")
        return
    first = dupes.row(0, named=True)
    example = ", ".join(f"{k} {first[k]!r}" for k in keys)
    extra = int(dupes["len"].sum()) - dupes.height
    raise SourceError(
        f"{label}: {dupes.height} ({', '.join(keys)}) key(s) hold more than one run "
        f"({extra} extra run(s); e.g. {example} × {first['len']}): was the file concatenated twice?",
        hint="remove the repeated rows, or pass --allow-duplicates (allow_duplicates=True) to count each run",
    )
