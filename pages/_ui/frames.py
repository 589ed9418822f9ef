"""Display shaping for the pages: pure Polars, no Streamlit, no statistics.

These turn finished frames from ``fle_core`` into what a table or a picker
shows (labels, interval text, ordering). Nothing here computes a metric.
"""

from __future__ import annotations

import math
import re
from typing import Any

import polars as pl

from pages._ui.labels import short_names

TRAJ_KEY_SEP = ":"

_MD_ALWAYS = set("\\`*~[]<>$#|&")  # can start markup anywhere in a line
_WORD_JOINER = "\u2060"  # invisible; breaks the patterns Streamlit turns into links and icons


def plain(text: object, limit: int = 300) -> str:
    """``text`` for a Markdown string (``st.warning``, ``st.markdown``, captions, labels),
    shown as the plain text it is.

    Query parameters, model names and error messages come from users or their
    data; in Markdown a backtick, ``**``, ``[text](url)`` or ``![](url)`` in them
    would format the page, draw a link or fetch an image. So the characters that
    can start markup are backslash-escaped (``_`` only where it can emphasize,
    i.e. not inside a word like ``cmp_k``; a leading list or heading marker too),
    newlines become spaces, and an invisible word joiner breaks what Streamlit
    turns into links or icons after escapes are resolved: ``scheme://``,
    ``:name:`` (after ``:`` or ``@`` before a letter or ``/``) and ``www.``. Plain
    words, digits, ``=``, ``-``, quotes and commas are left as they are. Long text
    is cut to ``limit`` characters.
    """
    raw = " ".join(str(text).split())
    if len(raw) > limit:
        raw = raw[: limit - 1] + "…"
    out = []
    for i, ch in enumerate(raw):
        before = raw[i - 1] if i else " "
        after = raw[i + 1] if i + 1 < len(raw) else " "
        inside_word = before.isalnum() and after.isalnum()
        leading = i == 0 and not ch.isalnum() and ch.isascii()
        if ch in _MD_ALWAYS or (ch == "_" and not inside_word) or leading:
            out.append("\\")
        out.append(ch)
        if ch in ":@" and (after.isalpha() or after == "/"):
            out.append(_WORD_JOINER)
    shown = "".join(out)
    shown = re.sub(r"^(\d+)([.)])", r"\1\\\2", shown)  # "1. x" would start a list
    return re.sub(r"(?i)(www)\.", rf"\1{_WORD_JOINER}.", shown)


def pct_interval(low: pl.Expr, high: pl.Expr) -> pl.Expr:
    """``"12.5–30.1 %"`` from two 0..1 columns."""
    return pl.format("{}–{} %", (low * 100).round(1), (high * 100).round(1))


def leaderboard_view(board: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Model metrics → display columns (rate with its interval as text), best first."""
    out = board.sort(["success_rate", "model"], descending=[True, False], nulls_last=True)
    if {"success_ci_low", "success_ci_high"} <= set(out.columns):
        out = out.with_columns(
            pct_interval(pl.col("success_ci_low"), pl.col("success_ci_high")).alias("ci_95")
        )
    if {"successes", "n_scored"} <= set(out.columns):
        out = out.with_columns(pl.format("{} / {}", pl.col("successes"), pl.col("n_scored")).alias("solved"))
    return short_names(out.select([c for c in columns if c in out.columns]))


def difficulty_view(by_task: pl.DataFrame) -> pl.DataFrame:
    """Task metrics → hardest first (lowest success rate); tasks without a quota last."""
    out = by_task.sort(["success_rate", "task"], nulls_last=True)
    out = out.with_columns(pct_interval(pl.col("success_ci_low"), pl.col("success_ci_high")).alias("ci_95"))
    keep = [
        "task",
        "success_rate",
        "ci_95",
        "n",
        "successes",
        "infra_failures",
        "reward_mean",
        "mean_steps",
        "mean_steps_to_success",
    ]
    return short_names(out.select([c for c in keep if c in out.columns]))


def parse_traj_key(key: str) -> tuple[str, int, int]:
    """``source:version:instance`` → parts (source names may contain ``:``)."""
    source, version, instance = key.rsplit(TRAJ_KEY_SEP, 2)
    return source, int(version), int(instance)


def with_traj_key(summ: pl.DataFrame) -> pl.DataFrame:
    return summ.with_columns(pl.format("{}:{}:{}", "source", "version", "instance").alias("_key"))


def same_task(summ: pl.DataFrame, key: str) -> pl.DataFrame:
    """Trajectories of the same task as ``key`` (for the side-by-side comparison)."""
    row = trajectory_row(summ, key)
    return summ.filter(pl.col("task") == row["task"]) if row.get("task") else summ.head(0)


def trajectory_row(summ: pl.DataFrame, key: str) -> dict[str, Any]:
    source, version, instance = parse_traj_key(key)
    hit = summ.filter(
        (pl.col("source") == source) & (pl.col("version") == version) & (pl.col("instance") == instance)
    )
    return hit.row(0, named=True) if hit.height else {}


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    """Short number text; '—' for missing or non-finite values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


FINAL_STATES = ("succeeded", "failed", "early_stopped", "cancelled")


def sweeps_view(sweeps: pl.DataFrame) -> pl.DataFrame:
    """``sweeps.list_sweeps`` → display order with a 0..1 ``progress`` column."""
    if "total" in sweeps.columns and "progress" not in sweeps.columns:
        # cells that ran to an outcome: cancelled cells do not count as progress
        ran = [c for c in FINAL_STATES if c != "cancelled"]
        done = pl.sum_horizontal([pl.col(c) for c in ran if c in sweeps.columns])
        sweeps = sweeps.with_columns(
            (done / pl.when(pl.col("total") > 0).then(pl.col("total"))).alias("progress")
        )
    # early-stopping is opt-in: its column only when some cell was early-stopped (a narrower table)
    if "early_stopped" in sweeps.columns and not sweeps["early_stopped"].fill_null(0).cast(pl.Boolean).any():
        sweeps = sweeps.drop("early_stopped")
    # a sweep id starts with its name: the name column only when some sweep was renamed
    if "name" in sweeps.columns and all(
        (i or "").startswith(n or "") for i, n in zip(sweeps["sweep_id"], sweeps["name"], strict=True)
    ):
        sweeps = sweeps.drop("name")
    first = [
        "sweep_id",
        "name",
        "status",
        "progress",
        "total",
        *FINAL_STATES,
        "pending",
        "running",
    ]
    cols = [c for c in first if c in sweeps.columns]
    # executor, source and creation time are said under the sweep picker (``sweep_facts``),
    # so the table fits the column at 1400 px (the list is newest first)
    rest = [c for c in sweeps.columns if c not in cols and c not in ("executor", "source", "created_at")]
    return sweeps.select(cols + rest)


def sweep_facts(sweeps: pl.DataFrame, sweep_id: str) -> str:
    """One line on a sweep for a caption (plain text): executor, source, when it was created."""
    row = sweeps.filter(pl.col("sweep_id") == sweep_id)
    if row.is_empty():
        return ""
    r = row.row(0, named=True)
    when = r["created_at"].strftime("%Y-%m-%d %H:%M UTC") if r.get("created_at") else "unknown"
    return plain(f"Executor {r.get('executor')} · writes to source {r.get('source')} · created {when}")


def duration_text(seconds: float | None) -> str:
    """``"3 min 20 s"``-style text; '—' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def sync_result_text(result: Any) -> str:
    """What a sync did, per source in its own unit (rows of a table, logs of a folder)."""
    details = getattr(result, "details", ())
    secs = getattr(result, "duration_s", None)
    if not details:
        return str(result)
    text = "; ".join(d.text() for d in details)
    return text + (f" in {secs:.1f} s" if isinstance(secs, float) else "")


def parse_grid(text: str) -> dict[str, list]:
    """``key = [v1, v2]`` lines (TOML) → grid dict; bad text → ``ConfigError``."""
    import tomllib

    from fle_core.errors import ConfigError

    if not text.strip():
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"The parameter grid is not valid TOML: {exc}",
            hint="write one parameter per line, e.g. temperature = [0.0, 0.7]",
        ) from None
    bad = [k for k, v in data.items() if not isinstance(v, list)]
    if bad:
        raise ConfigError(
            f"Grid parameter(s) {', '.join(bad)} must be lists of values",
            hint="e.g. temperature = [0.0, 0.7]",
        )
    return data


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def to_csv(frame: pl.DataFrame) -> str:
    """Spreadsheet-safe CSV text (``report.spreadsheet``); list columns (e.g.
    ``tasks_lacking_k``) become ``;``-joined strings."""
    from fle_core.report import spreadsheet

    return spreadsheet.csv_text(frame)


def sources_view(per_source: pl.DataFrame, states: pl.DataFrame) -> pl.DataFrame:
    """catalog.overview ⋈ catalog.source_states → one display row per synced source."""
    last = states.select("source", "last_status", "last_finished_at", "last_error")
    out = per_source.join(last, on="source", how="left")
    keep = [
        "source",
        "display_url",
        "rows",
        "trajectories",
        "flagged_rows",
        "simulated_rows",
        "last_sync_id",
        "last_status",
        "last_finished_at",
        "last_at",
        "last_error",
    ]
    return out.select([c for c in keep if c in out.columns])
