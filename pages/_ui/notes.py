"""Words the pages show: plurals, captions and toasts that explain a number (pure, no Streamlit).

Kept apart from ``frames`` (table shaping) so each stays reviewable: these say
*why* a figure looks the way it does (a zero-width bootstrap interval, a missing
k, what a Resume queued).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from fle_core import names
from pages._ui.frames import plain


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 model"``, ``"6 models"``."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


#: The k values pass@k offers, and the ones drawn by default when the data has enough trials.
K_OPTIONS = (1, 2, 3, 4, 5, 8, 10, 16)
K_DEFAULT = (1, 3, 5, 8)


def default_k_values(summaries: pl.DataFrame) -> list[int]:
    """The default k values for these trajectories: pass@k needs n ≥ k trials of a task,
    so the usual 1, 3, 5, 8 is cut at the most trials any (model, task) has, and, when
    that leaves fewer than two points (2 trials per task: only k = 1), every offered
    k up to it (1, 2), so the curve has a slope and its band something to span."""
    if summaries.is_empty() or not {"model", "task"} <= set(summaries.columns):
        return [1]
    most = int(summaries.group_by("model", "task").len()["len"].max() or 1)  # type: ignore[arg-type]
    usual = [k for k in K_DEFAULT if k <= most]
    return usual if len(usual) >= 2 else [k for k in K_OPTIONS if k <= most]


def passk_coverage_note(board: pl.DataFrame, k_values: list[int]) -> str | None:
    """Which chosen k values pass@k cannot use fully, and why (too few trials in some tasks).

    ``board`` is ``metrics.model_metrics`` with those k values (``pass_at_{k}``,
    ``tasks_lacking_{k}``). pass@k needs n ≥ k trials of a task, so a k above a
    task's trials averages over fewer tasks, and a k above every task's trials
    has no value at all: say which, instead of leaving points out silently.
    """
    missing, partial = [], []
    for k in k_values:
        col, lack = f"pass_at_{k}", f"tasks_lacking_{k}"
        if col not in board.columns:
            continue
        if board[col].is_null().all():
            missing.append(k)
        elif lack in board.columns:
            tasks = sorted({t for ts in board[lack].to_list() if ts for t in ts})
            if tasks:
                partial.append((k, tasks))
    parts = []
    if missing:
        ks = ", ".join(str(k) for k in missing)
        parts.append(
            f"**k = {ks} not shown**: no task has that many trials per model "
            "(pass@k needs at least k trials of a task)."
        )
    for k, tasks in partial:
        shown = ", ".join(f"`{names.short_task(t)}`" for t in tasks[:4]) + (
            f" and {len(tasks) - 4} more" if len(tasks) > 4 else ""
        )
        parts.append(
            f"k = {k} averages over fewer tasks: {shown} {'has' if len(tasks) == 1 else 'have'} fewer than {k} trials."
        )
    return " ".join(parts) or None


def sample_tokens_text(row: dict[str, Any]) -> str:
    """Tokens of a trajectory from an Inspect log (its summary row): Inspect records them per
    sample, so there is one total (input and output), not one count per step."""
    parts = [
        f"{label} {int(row[col]):,}"
        for col, label in (("prompt_tokens", "input"), ("completion_tokens", "output"))
        if row.get(col) is not None
    ]
    total = row.get("total_tokens")
    head = f"{int(total):,} tokens in total" if total is not None else "No token count"
    return (
        f"Tokens: {head}" + (f" ({', '.join(parts)})" if parts else "") + ". Inspect records tokens per "
        "sample, not per step, so there is no tokens-per-step chart for this trajectory."
    )


def zero_width_models(est: pl.DataFrame) -> list[str]:
    """Models whose bootstrap success-rate interval has zero width (0/n or n/n in every task)."""
    if est.is_empty() or "metric" not in est.columns:
        return []
    rows = est.filter(
        (pl.col("metric") == "success_rate") & ((pl.col("ci_high") - pl.col("ci_low")).abs() < 1e-12)
    )
    return sorted(rows["model"].drop_nulls().to_list())


def action_text(label: str, sweep_id: str, queued: Any, status: Any) -> str:
    """The toast after a sweep action, saying what will run now.

    ``Resume`` returns only the cells it added or re-queued; a paused sweep's
    pending cells were queued all along, so the text counts the cells that will
    run (pending) besides the ones re-queued.
    """
    pending = status.counts.get("pending", 0) + status.counts.get("running", 0)
    if label == "Resume":
        return f"Resumed `{sweep_id}`: {plural(pending, 'cell')} to run ({queued or 0} re-queued)"
    if label == "Retry failed":
        return f"Retry `{sweep_id}`: {plural(int(queued or 0), 'failed cell')} re-queued"
    if label == "Pause":
        return f"Paused `{sweep_id}`: no new job starts; {plural(pending, 'cell')} wait"
    return f"{label}: `{sweep_id}`"


def interval_caption(reps: int, seed: int, flat: list[str], population: str = "tasks") -> str:
    """Which question the intervals answer, how each is drawn, and why they can differ (0/n, n/n)."""
    if population == "tasks":
        how = (
            "Intervals treat the tasks as a sample (how would these systems do on tasks like these?). "
            f"Chart: 95% two-stage cluster bootstrap ({reps:,} resamples of tasks, then of the runs "
            f"within each drawn task; seed {seed}). Table: the task-clustered Wilson interval "
            "(Inspect's clustered ci_wilson: Korn–Graubard effective size, t with tasks − 1 df); a "
            "system with one task gets that task's Wilson interval."
        )
    else:
        how = (
            "Intervals hold this suite of tasks fixed (how did these systems do on exactly these "
            f"tasks?). Chart: 95% stratified bootstrap ({reps:,} resamples within each task, seed "
            f"{seed}). Table: the stratified Wilson interval."
        )
    return (
        how + " They differ most at 0/n and n/n: resampling the trials of a system that solved "
        "none (or all) of them always gives 0 % (100 %), so the bootstrap interval has zero width, "
        "while the Wilson interval accounts for the few trials (0/4 → 0–49 %). Read the table's "
        "interval for small n." + (f" Zero-width here (ringed): {_some(flat)}." if flat else "")
    )


def _some(names: list[str], limit: int = 5) -> str:
    """``a, b, c and 7 more``: a caption names a few, not thirty."""
    head = ", ".join(names[:limit])
    return head if len(names) <= limit else f"{head} and {len(names) - limit} more"


def passk_caption(population: str) -> str:
    """What pass@k and pass^k are, and how their bands were drawn."""
    bands = (
        "tasks, then runs within them, resampled (tasks like these)."
        if population == "tasks"
        else "runs resampled within each task (this fixed suite)."
    )
    return (
        "pass@k: the chance that at least one of k trials succeeds (unbiased, Chen et al. 2021); pass^k: "
        "the chance that all k succeed. Per task, averaged over the tasks with at least k trials; the gap "
        "between them is what repeated runs cost in reliability. Bands: 95% bootstrap intervals, " + bands
    )


def headline(board: pl.DataFrame, standing: Any) -> str:
    """The Leaderboard's first line: who leads, only when the paired tests say so.

    ``board`` is ``model_metrics``; ``standing`` is ``stats.leader.leading_system``
    (the first by success rate against each other system, paired by task, with the
    correction in force). Always starts with ``Leader:``.
    """
    ranked = board.filter(pl.col("success_rate").is_not_null())
    if ranked.is_empty() or not standing.top:
        return "Leader: — (no task with a quota in this selection)"
    rows = {r["model"]: r for r in ranked.iter_rows(named=True)}
    first = rows[standing.top[0]]
    how = (
        f"paired by task, {_CORRECTION_TEXT.get(standing.correction, standing.correction)} "
        f"over {standing.tests} test{'' if standing.tests == 1 else 's'}, α = {standing.alpha:g}"
    )
    facts = (
        f"success {first['success_rate'] * 100:.1f}% (95% CI {first['success_ci_low'] * 100:.1f}–"
        f"{first['success_ci_high'] * 100:.1f}%, {first.get('success_ci_method') or 'Wilson'}; "
        f"{first['successes']}/{first.get('n_scored', first['n'])} scored trials over "
        f"{first.get('n_tasks', '?')} tasks)"
    )
    if standing.leader is not None:
        others = ranked.height - 1
        return (
            f"Leader: **{plain(standing.leader)}**, {facts}: significantly above "
            f"{'the other system' if others == 1 else f'each of the other {others}'} ({how})."
        )
    if len(standing.top) == 1:
        return f"Leader: none to name, only **{plain(standing.top[0])}** is in this selection: {facts}."
    names = ", ".join(f"**{plain(m)}** {standing.rates[m] * 100:.1f}%" for m in standing.top[:6])
    more = f" and {len(standing.top) - 6} more" if len(standing.top) > 6 else ""
    everyone = len(standing.top) == ranked.height
    group = f"any of the {len(standing.top)}" if everyone else f"the top {len(standing.top)}"
    return (
        f"Leader: none. No significant difference between {group}: {names}{more} ({how}); "
        "the table is ordered by point estimate only."
    )


_CORRECTION_TEXT = {"holm": "Holm-adjusted", "bh": "Benjamini–Hochberg-adjusted", "none": "unadjusted"}


def pinned_change_text(note: dict) -> str:
    """Why a pinned view's numbers can differ: a later sync removed or changed its rows.
    Old copies are not kept, so the view shows those rows as they are now, or not at all."""
    head = f"Source {note['source']} "
    if note["kind"] == "rebuild_changed":
        head += f"was rebuilt (sync --full) in sync {note['sync_id']}"
    else:
        head += f"lost or changed rows in sync {note['sync_id']}"
    return (
        f"{head}, after this view was shared: {note['detail']}. Some are rows this view was "
        "computed from, so its numbers can differ from what was shared: the warehouse keeps no "
        "old copies of removed or changed rows."
    )
