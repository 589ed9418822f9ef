"""The report's loader: warehouse → the finished frames ``build_report`` draws.

Pinned to one sync id so every table and chart of a report shows the same data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from fle_core.errors import FleError
from fle_core.report import uncertainty
from fle_core.report.build import DataVersion, ReportError, ReportFrames

# ---- the loader (warehouse → frames), used by the CLI ---------------------------------

DEFAULT_REPS = 2000
DEFAULT_SEED = 0


MAX_ALL_PAIRS_MODELS = 8


def _poi_pairs(model_metrics: pl.DataFrame) -> list[tuple[str, str]] | None:
    """All pairs for up to 8 models; beyond that, the leader against every other model.

    30 models would give 435 pairs: an unreadable chart and slow image export.
    """
    ranked = (
        model_metrics.filter(pl.col("model").is_not_null())
        .sort(["success_rate", "model"], descending=[True, False], nulls_last=True)["model"]
        .to_list()
    )
    if len(ranked) <= MAX_ALL_PAIRS_MODELS:
        return None
    return [(ranked[0], other) for other in ranked[1:]]


def load_report_frames(
    ws,
    *,
    sweep_id: str | None = None,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = DEFAULT_SEED,
    k_values: Sequence[int] = (1, 3, 5, 8),
    baseline: str | None = None,
    candidate: str | None = None,
    infrastructure: str = "fail",
    population: str = "tasks",
) -> tuple[ReportFrames, DataVersion]:
    """Read the warehouse as of its latest sync and compute every frame the report shows.

    The steps are pinned to one sync id (``as_of_sync``), recorded in the
    returned ``DataVersion`` with the filters, bootstrap settings, the
    infrastructure rule (``stats.infrastructure``: ``"fail"``, FLE's, or
    ``"exclude"``) and the intervals' population (``"tasks"`` or ``"suite"``),
    so the report says exactly what it was computed from. With ``baseline`` and
    ``candidate`` (sides as ``fle-core gate`` reads them; the filters do not apply
    to them) the report adds what changed between the two, task by task.
    """
    from fle_core import analysis, warehouse
    from fle_core.stats import bootstrap, compare, cost, leader, metrics, reliability, variance
    from fle_core.stats import infrastructure as infra
    from fle_core.stats.clustered import check_population

    try:
        infra.check_rule(infrastructure)
        check_population(population)
    except FleError as exc:
        raise ReportError(exc.message, hint=exc.hint) from None

    if reps < 1:
        raise ReportError(f"--reps must be at least 1 (got {reps})")
    if (baseline is None) != (candidate is None):
        raise ReportError("--baseline and --candidate go together", hint="give both sides, or neither")
    if not 0 <= seed < 2**32:
        raise ReportError(
            f"--seed must be a whole number from 0 to {2**32 - 1} (got {seed})",
            hint="any seed in that range gives reproducible bootstrap intervals",
        )
    sync_id = warehouse.data_version(ws)
    if sync_id == 0:
        raise ReportError("Nothing has been synced into this workspace yet", hint="run `fle-core sync` first")
    filters: dict[str, Any] = {
        k: v
        for k, v in dict(
            sweep_id=sweep_id,
            models=list(models) if models else None,
            tasks=list(tasks) if tasks else None,
            sources=list(sources) if sources else None,
        ).items()
        if v
    }
    steps = analysis.load_steps(ws, as_of_sync=sync_id, **filters)
    if steps.height == 0:
        raise ReportError(
            f"No trajectories match the filters {json.dumps(filters, sort_keys=True)}",
            hint="`fle-core status` lists what has been synced",
        )
    # the same as summarize_trajectories(steps), plus what Inspect logs record per
    # trajectory (own quota, FLE's success rule, wall-clock time: analysis.outcomes)
    # one row per system (analysis.systems): a model's runs under another solver, trajectory
    # length or FLE release are never pooled; suite-level numbers on the tasks all ran
    from fle_core.analysis import systems

    everything = systems.label_systems(
        analysis.load_summaries(ws, as_of_sync=sync_id, **filters), by=systems.SYSTEM_ONLY
    )
    summaries = infra.apply_rule(everything, infrastructure)
    suite, _ = systems.common_tasks(summaries)
    scored = suite.filter(pl.col("success").is_not_null())
    names = sorted(summaries.get_column("model").drop_nulls().unique().to_list())
    board = metrics.model_metrics(suite, k_values=k_values, population=population)
    frames = ReportFrames(
        summaries=summaries,
        steps=steps,
        model_metrics=board,
        group_metrics=infra.with_counts(metrics.group_metrics(summaries, k_values=k_values), everything),
        suite_note=systems.suite_note(summaries),
    )
    from fle_core.analysis import outcomes

    failures = outcomes.failure_counts(ws, summaries, as_of_sync=sync_id)
    if failures.height and (failures.drop("model", "trajectories").sum_horizontal() > 0).any():
        frames.failures = failures
    if scored.height:
        pop: dict[str, Any] = {"reps": reps, "seed": seed, "population": population}
        frames.interval_estimates = bootstrap.interval_estimates(scored, **pop)
        frames.pass_at_k_curve = bootstrap.pass_at_k_curve(scored, k_values, **pop)
        frames.pass_hat_k_curve = bootstrap.pass_at_k_curve(scored, k_values, **pop, estimator="pass_hat_k")
        frames.performance_profile = bootstrap.performance_profile(scored, **pop)
        frames.variance = variance.variance_components(scored)
        usable = frames.variance.filter(
            pl.col("var_between").is_not_null() & pl.col("var_within").is_not_null()
        )
        if usable.height:
            frames.plan = pl.concat(
                [
                    variance.plan(usable, half_width=uncertainty.PLAN_HALF_WIDTH),
                    variance.plan(usable, difference=uncertainty.PLAN_DIFFERENCE),
                ]
            )
        column, _ = cost.cost_unit(scored)
        frames.cost = cost.cost_estimates(scored, column, **pop)
        frames.frontier = cost.frontier(scored, column, **pop)
        frames.consistency = reliability.consistency(scored)
        frames.standing = leader.leading_system(scored, reps=reps, seed=seed)
        if len(names) > 1:
            frames.probability_of_improvement = bootstrap.probability_of_improvement(
                scored, pairs=_poi_pairs(board), reps=reps, seed=seed
            )
            frames.comparisons = compare.pairwise_comparisons(scored, reps=reps, seed=seed)
            frames.comparison_markdown = compare.comparison_markdown(frames.comparisons)
    if baseline is not None and candidate is not None:
        from fle_core.analysis.changes import changes

        frames.changes = changes(ws, baseline, candidate, as_of=sync_id)
    synced = warehouse.query(ws, "SELECT max(finished_at) AS t FROM sync_runs WHERE sync_id = ?", [sync_id])
    version = DataVersion(
        sync_id=sync_id,
        synced_at=synced.item(0, "t") if synced.height else None,
        filters=filters,
        reps=reps,
        seed=seed,
        infrastructure=infrastructure,
        population=population,
    )
    return frames, version
