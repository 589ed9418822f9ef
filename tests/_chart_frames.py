"""Small frames that follow the contracts in docs/architecture.md exactly.

Used by the chart, visualizer and report tests. The numbers are deterministic
(seeded) but not statistics of record: the report and chart tests check that
what goes in comes out in the spec, not the statistics themselves.
"""

from __future__ import annotations

import datetime as dt
import math
import random

import polars as pl

K_VALUES = (1, 3, 5, 8)


def model_names(n: int) -> list[str]:
    base = ["claude-3.5-sonnet", "gpt-4o", "deepseek-v3", "gemini-2", "llama-3.3-70b", "gpt-4o-mini"]
    return base[:n] if n <= len(base) else base + [f"model-{i:02d}" for i in range(n - len(base))]


def steps_frame(
    models: list[str],
    tasks: list[str],
    trials: int = 3,
    depth: int = 6,
    seed: int = 7,
    simulated: bool = False,
) -> pl.DataFrame:
    rng = random.Random(seed)
    rows, pid, version = [], 0, 100
    t0 = dt.datetime(2026, 11, 20, 12, 0, 0)
    for mi, model in enumerate(models):
        for task in tasks:
            for _trial in range(trials):
                version += 1
                start = t0 + dt.timedelta(minutes=version)
                skill = 0.3 + 0.6 * (1 - mi / max(len(models), 1))
                for d in range(depth):
                    pid += 1
                    rows.append(
                        dict(
                            source="local",
                            id=pid,
                            version=version,
                            instance=0,
                            depth=float(d),
                            value=round(rng.uniform(0, 25) * skill * (d + 1) / depth, 3),
                            model=model,
                            task=task,
                            sweep_id="sw1",
                            error_occurred=False,
                            production_score=None,
                            simulated=simulated,
                            prompt_tokens=1000 + 10 * d,
                            completion_tokens=200,
                            total_tokens=1200 + 10 * d,
                            created_at=start + dt.timedelta(seconds=20 * d + rng.randint(0, 5)),
                        )
                    )
    return pl.DataFrame(rows, schema_overrides={"production_score": pl.Float64})


def summaries_frame(steps: pl.DataFrame, quota: float = 16.0) -> pl.DataFrame:
    """Trajectory summaries in the contract's shape (computed plainly, for tests)."""
    key = ["source", "version", "instance"]
    out = (
        steps.sort("depth", "id")
        .group_by(key, maintain_order=True)
        .agg(
            pl.col("model").first(),
            pl.col("task").first(),
            pl.col("sweep_id").first(),
            pl.col("simulated").any(),
            pl.len().cast(pl.Int64).alias("steps"),
            pl.col("value").last().alias("final_reward"),
            pl.col("value").max().alias("best_reward"),
            pl.col("prompt_tokens").sum(),
            pl.col("completion_tokens").sum(),
            pl.col("total_tokens").sum(),
            pl.col("created_at").min().alias("started_at"),
            pl.col("created_at").max().alias("ended_at"),
            pl.col("error_occurred").any(),
            pl.col("production_score").last(),
            pl.col("depth").filter(pl.col("value") >= quota).min().alias("first_success_step"),
        )
    )
    return out.with_columns(
        pl.lit(quota).alias("quota"),
        (pl.col("best_reward") >= quota).alias("success"),
        (pl.col("ended_at") - pl.col("started_at")).dt.total_seconds().cast(pl.Float64).alias("duration_s"),
    ).sort(key)


def _pass_at_k(n: int, c: int, k: int) -> float | None:
    if n < k:
        return None
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1 - k / i for i in range(n - c + 1, n + 1))


def group_metrics_frame(summaries: pl.DataFrame, by=("model", "task")) -> pl.DataFrame:
    g = summaries.group_by(list(by), maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("success").sum().cast(pl.Int64).alias("successes"),
        pl.col("best_reward").mean().alias("reward_mean"),
        pl.col("best_reward").median().alias("reward_median"),
        pl.col("best_reward").std().alias("reward_std"),
        pl.col("best_reward").min().alias("reward_min"),
        pl.col("best_reward").max().alias("reward_max"),
        pl.col("best_reward").mean().alias("reward_iqm"),
        pl.col("total_tokens").mean().cast(pl.Float64).alias("tokens_mean"),
        pl.col("steps").mean().alias("mean_steps"),
        pl.col("first_success_step").mean().alias("mean_steps_to_success"),
        pl.col("error_occurred").mean().alias("error_rate"),
        pl.col("simulated").any(),
        pl.col("total_tokens").sum().alias("_tok"),
    )
    g = g.with_columns(
        (pl.col("successes") / pl.col("n")).alias("success_rate"),
        (pl.col("successes") / pl.col("n") * 0.8).alias("success_ci_low"),
        (pl.col("successes") / pl.col("n") * 0.2 + 0.8).alias("success_ci_high"),
        pl.when(pl.col("successes") > 0)
        .then(pl.col("_tok") / pl.col("successes"))
        .otherwise(None)
        .alias("tokens_per_success"),
    )
    for k in K_VALUES:
        g = g.with_columns(
            pl.struct("n", "successes")
            .map_elements(lambda r, k=k: _pass_at_k(r["n"], r["successes"], k), return_dtype=pl.Float64)
            .alias(f"pass_at_{k}"),
            pl.lit(None, pl.Float64).alias(f"pass_hat_{k}"),
        )
    return g.drop("_tok")


def model_metrics_frame(summaries: pl.DataFrame) -> pl.DataFrame:
    per_task = group_metrics_frame(summaries)
    m = group_metrics_frame(summaries, by=("model",)).select(
        "model",
        "n",
        "successes",
        "success_rate",
        "success_ci_low",
        "success_ci_high",
        "reward_mean",
        "reward_iqm",
        "tokens_per_success",
        "mean_steps",
        "simulated",
    )
    tasks = per_task.group_by("model", maintain_order=True).agg(
        pl.len().alias("n_tasks"),
        *[pl.col(f"pass_at_{k}").mean().alias(f"pass_at_{k}") for k in K_VALUES],
        *[pl.col(f"pass_at_{k}").is_not_null().sum().alias(f"pass_at_{k}_tasks") for k in K_VALUES],
        *[
            pl.col("task").filter(pl.col(f"pass_at_{k}").is_null()).alias(f"tasks_lacking_{k}")
            for k in K_VALUES
        ],
        *[pl.lit(None, pl.Float64).alias(f"pass_hat_{k}") for k in K_VALUES],
    )
    return m.join(tasks, on="model")


def interval_estimates_frame(models: list[str]) -> pl.DataFrame:
    rows = []
    for i, model in enumerate(models):
        for metric, scale in (("success_rate", 1.0), ("iqm", 20.0), ("mean", 20.0), ("optimality_gap", 5.0)):
            est = scale * (0.2 + 0.6 * ((i * 37) % 11) / 11)
            rows.append(dict(model=model, metric=metric, estimate=est, ci_low=est * 0.8, ci_high=est * 1.2))
    return pl.DataFrame(rows)


def pass_at_k_curve_frame(models: list[str]) -> pl.DataFrame:
    rows = []
    for i, model in enumerate(models):
        p1 = 0.05 + 0.5 * ((i * 7) % 13) / 13
        for k in K_VALUES:
            est = 1 - (1 - p1) ** k
            rows.append(
                dict(
                    model=model,
                    k=k,
                    estimate=est,
                    ci_low=max(0.0, est - 0.1),
                    ci_high=min(1.0, est + 0.1),
                    n_tasks=3,
                )
            )
    return pl.DataFrame(rows)


def profile_frame(models: list[str]) -> pl.DataFrame:
    rows = []
    for i, model in enumerate(models):
        for tau in (0.0, 4.0, 8.0, 12.0, 16.0, 20.0):
            f = max(0.0, 1 - tau / (22.0 - i % 5))
            rows.append(
                dict(model=model, tau=tau, fraction=f, ci_low=max(0, f - 0.1), ci_high=min(1, f + 0.1))
            )
    return pl.DataFrame(rows)


def poi_frame(models: list[str]) -> pl.DataFrame:
    rows = []
    for i, x in enumerate(models):
        for j, y in enumerate(models):
            if i < j:
                est = 0.5 + 0.4 * (j - i) / len(models)
                rows.append(
                    dict(model_x=x, model_y=y, estimate=est, ci_low=est - 0.15, ci_high=min(1.0, est + 0.15))
                )
    return pl.DataFrame(
        rows,
        schema={
            "model_x": pl.String,
            "model_y": pl.String,
            "estimate": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
        },
    )


def comparisons_frame(models: list[str]) -> pl.DataFrame:
    rows = []
    for b in models[1:]:
        rows.append(
            dict(
                model_a=models[0],
                model_b=b,
                task="ALL",
                metric="success",
                a_mean=0.4,
                a_std=0.49,
                a_n=30,
                b_mean=0.2,
                b_std=0.4,
                b_n=30,
                diff=0.2,
                diff_ci_low=0.01,
                diff_ci_high=0.39,
                change_pct=100.0,
                effect_size=0.45,
                effect_name="Cohen's h",
                test="Fisher exact",
                p_value=0.01,
                p_adjusted=0.02,
                correction="holm",
                prob_improvement=0.6,
                verdict="significantly better",
            )
        )
    return pl.DataFrame(rows)


def contract_frames(
    n_models: int = 3,
    tasks=("iron_ore_throughput", "iron_plate_throughput"),
    trials: int = 3,
    simulated: bool = False,
) -> dict[str, pl.DataFrame]:
    models = model_names(n_models)
    steps = steps_frame(models, list(tasks), trials=trials, simulated=simulated)
    summaries = summaries_frame(steps)
    return dict(
        steps=steps,
        summaries=summaries,
        group_metrics=group_metrics_frame(summaries),
        model_metrics=model_metrics_frame(summaries),
        interval_estimates=interval_estimates_frame(models),
        pass_at_k_curve=pass_at_k_curve_frame(models),
        performance_profile=profile_frame(models),
        probability_of_improvement=poi_frame(models),
        comparisons=comparisons_frame(models),
    )
