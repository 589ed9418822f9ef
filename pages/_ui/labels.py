"""Names as the pages show them: the one short-name rule (``fle_core.names``) applied to
tables, widgets and the trajectory picker (pure Polars, no Streamlit).

The full names stay in the URL, in chart tooltips and in every export (the CSV and
Markdown downloads are written from the frames themselves, not from these views).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from fle_core import names

#: Columns that hold a model name: tables show their short form.
MODEL_COLUMNS = ("model", "base_model", "model_a", "model_b", "model_x", "model_y")
#: URL keys (``url_*`` widgets) whose options are task or model names.
_TASK_KEYS, _MODEL_KEYS = ("_task", "_rtask"), ("_model", "_base", "_poi")


def name_format(key: str, kw: dict) -> None:
    """Give a ``url_*`` widget over task or model names the short-name ``format_func``; the
    URL and the values keep the full names."""
    if key.endswith(_TASK_KEYS):
        kw.setdefault("format_func", lambda v: names.short_task(str(v)))
    elif key.endswith(_MODEL_KEYS):
        kw.setdefault("format_func", lambda v: names.short_model(str(v)))


def short_names(frame: pl.DataFrame) -> pl.DataFrame:
    """A table as shown: model and task names in their one short form (``fle_core.names``;
    the full names stay in the CSV and Markdown exports, which use the frame itself)."""
    out = frame
    models = [c for c in MODEL_COLUMNS if c in frame.columns and frame.schema[c] == pl.String]
    if models:
        seen = {str(v) for c in models for v in frame[c].drop_nulls().unique().to_list()}
        mapping = names.short_names(seen)
        out = out.with_columns(pl.col(c).replace(mapping) for c in models)
    if "task" in frame.columns and frame.schema["task"] == pl.String:
        keys = [str(v) for v in frame["task"].drop_nulls().unique().to_list()]
        out = out.with_columns(pl.col("task").replace(names.task_labels(keys)))
    return out


def task_name(key: object) -> str:
    """A task as a widget shows it (``iron_ore`` for ``iron_ore_throughput``)."""
    return names.short_task(str(key))


def model_name(name: object) -> str:
    """A model as a widget shows it (long names: head…tail)."""
    return names.short_model(str(name))


def trajectory_labels(
    summ: pl.DataFrame, limit: int = 2000, include: Sequence[str | None] = ()
) -> dict[str, str]:
    """Picker labels that tell runs apart in their first characters (a narrow sidebar cuts the
    rest): ``#2 ✓ best 23.48 · claude-3-5-sonnet · iron_gear_wheel · v1972…``, i.e. the
    epoch (``instance``: an Inspect sample's epoch, a legacy run's agent index), the outcome
    (✓ reached the quota, ✗ did not, nothing without a quota), the best reward, then the
    short model and task names and the run (``version``). A fixed order: newest run first,
    its epochs in order. The keys in ``include`` (a link's trajectories, e.g. from What
    changed) are kept past the limit."""
    if summ.is_empty():
        return {}
    keyed = summ.with_columns(pl.format("{}:{}:{}", "source", "version", "instance").alias("_key")).filter(
        pl.col("_key").is_not_null()  # null version: unaddressable
    )
    rows = keyed.sort(
        ["version", "instance", "source"], descending=[True, False, False], nulls_last=True
    ).head(limit)
    wanted = [k for k in include if k]
    if wanted:
        rows = pl.concat([rows, keyed.filter(pl.col("_key").is_in(wanted))]).unique(
            "_key", maintain_order=True
        )
    tasks = names.task_labels([t for t in rows["task"].drop_nulls().unique().to_list()])
    models = names.short_names([m for m in rows["model"].drop_nulls().unique().to_list()])
    out = {}
    for r in rows.iter_rows(named=True):
        mark = {True: " ✓", False: " ✗", None: ""}[r.get("success")]
        model = models.get(r.get("model") or "", r.get("model") or "?")
        task = tasks.get(r.get("task") or "", r.get("task") or "?")
        out[r["_key"]] = (
            f"#{r['instance']}{mark} best {_reward(r.get('best_reward'))} · {model} · {task} · v{r['version']}"
        )
    return out


def _reward(value: object) -> str:
    finite = isinstance(value, (int, float)) and math.isfinite(value)
    return f"{value:,.2f}" if finite else "—"
