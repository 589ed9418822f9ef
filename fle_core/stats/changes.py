"""What changed between two runs, task by task: successes, the change with its interval, flips.

Pure functions over two summaries frames, one per side (A the baseline, B the
candidate), each with ``task, success, normalized_reward, best_reward, source,
version, instance`` and optionally ``epoch`` (an Inspect trajectory's epoch, null
otherwise). ``task_changes`` gives one row per task both sides ran, sorted so the
worst regression comes first; ``filter_changes`` narrows it; ``changes_markdown``
renders it for the gate's PR comment and the Compare page's export. Definitions
in ``docs/gate.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from fle_core.errors import MetricError
from fle_core.stats import markdown as md
from fle_core.stats.markdown import interval_cell
from fle_core.stats.metrics import newcombe_interval

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

LOST, GAINED, MIXED, SAME = "solved → unsolved", "unsolved → solved", "mixed", "unchanged"
FLIPS = (LOST, GAINED, MIXED, SAME)

CHANGE_SCHEMA: dict[str, PolarsDataType] = {
    "task": pl.String,
    "a_trials": pl.Int64,
    "a_successes": pl.Int64,
    "a_rate": pl.Float64,
    "b_trials": pl.Int64,
    "b_successes": pl.Int64,
    "b_rate": pl.Float64,
    "change": pl.Float64,
    "change_ci_low": pl.Float64,
    "change_ci_high": pl.Float64,
    "flip": pl.String,
    "paired_epochs": pl.Int64,
    "epochs_lost": pl.Int64,
    "epochs_gained": pl.Int64,
    "a_score": pl.Float64,
    "b_score": pl.Float64,
    "score_change": pl.Float64,
    "a_key": pl.String,
    "b_key": pl.String,
}
_NEEDED = ("task", "success", "normalized_reward", "best_reward", "source", "version", "instance")


def _check(frame: pl.DataFrame, side: str) -> pl.DataFrame:
    missing = [c for c in _NEEDED if c not in frame.columns]
    if missing:
        raise MetricError(f"the {side} summaries lack column(s) {', '.join(missing)}")
    if "epoch" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Int64).alias("epoch"))
    return frame.with_columns(
        pl.format("{}:{}:{}", "source", "version", "instance").alias("_key"),
        pl.col("normalized_reward").cast(pl.Float64),
    )


def _side(rows: pl.DataFrame) -> dict:
    """Counts and the mean score of one side's trajectories of one task: best reward ÷
    quota, or the best reward itself (open play's production score) without a quota."""
    scored = rows.filter(pl.col("success").is_not_null())
    score = rows["normalized_reward"].to_numpy().astype(np.float64)
    score = score[np.isfinite(score)]
    if not score.size:
        score = rows["best_reward"].cast(pl.Float64).to_numpy()
        score = score[np.isfinite(score)]
    return {
        "trials": scored.height if scored.height else rows.height,
        "successes": int(scored["success"].sum()) if scored.height else None,
        "score": float(score.mean()) if score.size else None,
    }


def _epochs(rows: pl.DataFrame) -> dict[int, bool] | None:
    """{epoch: success} when every trajectory has its own epoch and an outcome, else None."""
    ep = rows["epoch"]
    if ep.null_count() or ep.n_unique() != rows.height or rows["success"].null_count():
        return None
    return dict(zip(ep.to_list(), rows["success"].to_list(), strict=True))


def _pick(rows: pl.DataFrame, best: bool) -> str:
    """A trajectory that shows the side's outcome: its best (success, then highest
    reward) or its worst; ties by key, so the choice is stable."""
    order = rows.sort(
        [pl.col("success").fill_null(False), pl.col("best_reward").fill_nan(None), "_key"],
        descending=[best, best, False],
        nulls_last=True,
    )
    return str(order["_key"][0])


def _row(task: str, ra: pl.DataFrame, rb: pl.DataFrame, confidence: float) -> dict:
    a, b = _side(ra), _side(rb)
    row: dict = {
        "task": task,
        **{f"a_{k}": v for k, v in a.items()},
        **{f"b_{k}": v for k, v in b.items()},
    }
    row["score_change"] = None if a["score"] is None or b["score"] is None else b["score"] - a["score"]
    ea, eb = _epochs(ra), _epochs(rb)
    paired = sorted(set(ea) & set(eb)) if ea is not None and eb is not None else []
    lost = [e for e in paired if ea[e] and not eb[e]]  # type: ignore[index]
    gained = [e for e in paired if eb[e] and not ea[e]]  # type: ignore[index]
    row.update(
        paired_epochs=len(paired) or None,
        epochs_lost=len(lost) if paired else None,
        epochs_gained=len(gained) if paired else None,
    )
    if a["successes"] is None or b["successes"] is None:  # no quota: no success to compare
        row.update(a_rate=None, b_rate=None, change=None, change_ci_low=None, change_ci_high=None, flip=None)
        row.update(a_key=_pick(ra, True), b_key=_pick(rb, True))
        return row
    ar, br = a["successes"] / a["trials"], b["successes"] / b["trials"]
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    lo, hi = newcombe_interval(b["successes"], b["trials"], a["successes"], a["trials"], z)
    if a["successes"] and not b["successes"]:
        flip = LOST
    elif b["successes"] and not a["successes"]:
        flip = GAINED
    elif ar == br and not lost and not gained:
        flip = SAME
    else:
        flip = MIXED
    row.update(a_rate=ar, b_rate=br, change=br - ar, change_ci_low=lo, change_ci_high=hi, flip=flip)
    flipped = lost if br - ar <= 0 else gained
    if flipped:  # the first epoch that flipped the way the task moved, on both sides
        epoch = flipped[0]
        row["a_key"] = str(ra.filter(pl.col("epoch") == epoch)["_key"][0])
        row["b_key"] = str(rb.filter(pl.col("epoch") == epoch)["_key"][0])
    else:  # A at its best and B at its worst when B is worse (and the other way round)
        worse = br - ar <= 0
        row.update(a_key=_pick(ra, worse), b_key=_pick(rb, not worse))
    return row


def task_changes(a: pl.DataFrame, b: pl.DataFrame, *, confidence: float = 0.95) -> pl.DataFrame:
    """One row per task both sides ran (``CHANGE_SCHEMA``), the worst regression first.

    Per side: ``trials`` (trajectories with an outcome), ``successes``, ``rate``,
    ``score`` (mean ``normalized_reward``: best reward ÷ quota; for a task without a
    quota, such as open play, the mean ``best_reward``). ``change = b_rate −
    a_rate`` with Newcombe's hybrid score interval (the comparisons' per-task
    interval). ``flip``: ``solved → unsolved`` (A solved the task at least once, B
    never), ``unsolved → solved``, ``unchanged`` (same rate, and no paired epoch
    flipped), else ``mixed``; null for tasks without a quota. Epochs pair up when
    both sides have one trajectory per epoch (Inspect runs): ``epochs_lost`` counts
    epochs A solved and B did not, ``epochs_gained`` the reverse. ``a_key`` /
    ``b_key`` (``source:version:instance``) name two trajectories to open side by
    side: the first epoch that flipped the way the task moved, else A's best and
    B's worst (the reverse when B improved). Sorted by ``change``, then
    ``score_change`` (ascending, nulls last), then task.
    """
    if not 0 < confidence < 1:
        raise MetricError(f"confidence must be in (0, 1), got {confidence}")
    a, b = _check(a, "baseline"), _check(b, "candidate")
    by_a = {str(k[0]): g for k, g in a.filter(pl.col("task").is_not_null()).group_by("task")}
    by_b = {str(k[0]): g for k, g in b.filter(pl.col("task").is_not_null()).group_by("task")}
    rows = [_row(t, by_a[t], by_b[t], confidence) for t in sorted(set(by_a) & set(by_b))]
    out = pl.DataFrame({c: [r.get(c) for r in rows] for c in CHANGE_SCHEMA}, schema=CHANGE_SCHEMA)
    return out.sort(["change", "score_change", "task"], nulls_last=True)


def filter_changes(
    frame: pl.DataFrame,
    *,
    flips: Sequence[str] | None = None,
    regressions_only: bool = False,
    task_contains: str | None = None,
) -> pl.DataFrame:
    """Rows of ``task_changes`` with one of ``flips``, only those that got worse
    (``change < 0``, or ``score_change < 0`` where there is no success), and/or whose
    task contains ``task_contains`` (literal, case-insensitive). Order is kept."""
    bad = [f for f in flips or () if f not in FLIPS]
    if bad:
        raise MetricError(f"unknown flip {bad[0]!r}", hint=f"choose from {', '.join(FLIPS)}")
    out = frame
    if flips:
        out = out.filter(pl.col("flip").is_in(list(flips)))
    if regressions_only:
        out = out.filter(pl.coalesce(pl.col("change"), pl.col("score_change")) < 0)
    if task_contains:
        out = out.filter(pl.col("task").str.to_lowercase().str.contains(task_contains.lower(), literal=True))
    return out


def changes_markdown(frame: pl.DataFrame, baseline: str, candidate: str, *, limit: int | None = None) -> str:
    """``| Task | A | B | Change (95% CI) | Flip | Epochs lost / gained | Score change |``
    for the rows of ``task_changes`` (the first ``limit``), names escaped."""
    rows = []
    for r in (frame if limit is None else frame.head(limit)).iter_rows(named=True):
        epochs = "–" if r["paired_epochs"] is None else f"{r['epochs_lost']} / {r['epochs_gained']}"
        rows.append(
            [
                md.md_text(r["task"]),
                _count(r["a_successes"], r["a_trials"]),
                _count(r["b_successes"], r["b_trials"]),
                "n/a" if r["change"] is None else interval_cell(*_pts(r), 1),
                md.md_text(r["flip"] or "no quota"),
                epochs,
                "n/a" if r["score_change"] is None else f"{r['score_change']:+.3f}",
            ]
        )
    header = [
        "Task",
        f"{md.md_text(baseline)} (solved/trials)",
        f"{md.md_text(candidate)} (solved/trials)",
        "Change, points (95% CI)",
        "Flip",
        "Epochs lost / gained",
        "Score change",
    ]
    return "\n".join(md.table(header, rows)) + "\n"


def _count(s, n) -> str:
    return f"{n} trials" if s is None else f"{s}/{n}"


def _pts(r: dict) -> tuple[float, float, float]:
    """The change and its interval in percentage points."""
    return 100 * r["change"], 100 * r["change_ci_low"], 100 * r["change_ci_high"]
