"""The leaderboard export: every system's figures with intervals, and FLE's leaderboard files.

``load_leaderboard(ws)`` computes one row per system (``LEADERBOARD_SCHEMA``) from
the warehouse, pinned to one data version. Writers:

* ``fle_record`` — one system in the JSON shape of FLE's ``docs/leaderboard/results/*.json``
  (``name, productionScore, milestones, automationMilestones, labTasksSuccessRate,
  mostComplexItem, submittedBy, submissionDate``). A field the warehouse cannot fill
  is left out, never invented, and named with the reason under ``fle_core.unfilled``;
  every figure's interval, trials, tasks, the suite and data versions and the pinned
  link sit under the one extra key ``fle_core``, which FLE's processing ignores;
* ``leaderboard_json`` — the whole table with every metric and interval, for scripts;
* ``leaderboard_csv``, ``leaderboard_markdown`` — the same rows as a table.

Definitions, and which field comes from which source, in ``docs/leaderboard.md``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from fle_core.errors import MetricError
from fle_core.report import spreadsheet
from fle_core.stats import bootstrap
from fle_core.stats import markdown as md
from fle_core.stats.metrics import TRAJECTORY_KEY, model_metrics
from fle_core.tasks import TaskRegistry, default_tasks
from fle_core.workspace import Workspace

SCHEMA_VERSION = 1
FLE_FIELDS = (
    "name",
    "productionScore",
    "milestones",
    "automationMilestones",
    "labTasksSuccessRate",
    "mostComplexItem",
    "submittedBy",
    "submissionDate",
)
#: Why ``mostComplexItem`` is never filled (docs/leaderboard.md).
NO_COMPLEXITY = (
    "FLE defines no order of item complexity, and no source records one; the field is left to the submitter"
)

#: Each figure and the summaries column it averages (task-weighted), per system.
FIGURES = {
    "lab_success_rate": "success",
    "success_rate": "success",
    "mean_score": "normalized_reward",
    "production_score": "production_score",
    "milestones": "items_produced",
    "automation_milestones": "items_automated",
}


def lab_suite(registry: TaskRegistry) -> dict[str, float]:
    """FLE's lab-play suite: the default throughput tasks, with this workspace's quotas."""
    return {
        key: registry.tasks[key].quota  # type: ignore[misc]
        for key, task in default_tasks().items()
        if task.kind == "throughput" and key in registry.tasks and registry.tasks[key].quota is not None
    }


def suite_version(suite: Mapping[str, float], registry: TaskRegistry) -> str:
    """``lab-play@<8 hex>``: a hash of the suite's tasks, quotas and trajectory lengths, so a
    changed quota (``[tasks]`` override) shows as another suite."""
    text = "\n".join(f"{k}={suite[k]:g}/{registry.tasks[k].steps}" for k in sorted(suite))
    return "lab-play@" + hashlib.sha256(text.encode()).hexdigest()[:8]


def open_play_tasks(registry: TaskRegistry) -> list[str]:
    return sorted(k for k, t in registry.tasks.items() if t.kind == "open_play")


@dataclass(frozen=True)
class Leaderboard:
    """One row per system, and what the figures were computed from."""

    frame: pl.DataFrame
    data_version: int
    suite: dict[str, float]
    suite_version: str
    reps: int
    seed: int


def _intervals(summaries: pl.DataFrame, column: str, success: bool, reps: int, seed: int) -> pl.DataFrame:
    """``model, estimate, ci_low, ci_high, n, n_tasks`` of the task-weighted mean of ``column``."""
    frame = summaries.filter(pl.col(column).is_not_null())
    if frame.is_empty():  # e.g. no open play: the figure is null for every system
        schema = {"model": pl.String, "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64}
        return pl.DataFrame(schema={**schema, "n": pl.Int64, "n_tasks": pl.Int64})
    if success:
        est = bootstrap.interval_estimates(frame, ("success_rate",), reps, seed)
    else:
        est = bootstrap.interval_estimates(
            frame.with_columns(pl.col(column).cast(pl.Float64)), ("mean",), reps, seed, score_column=column
        )
    return est.select("model", "estimate", "ci_low", "ci_high", "n", "n_tasks")


def leaderboard_frame(
    summaries: pl.DataFrame,
    milestones: pl.DataFrame,
    registry: TaskRegistry,
    *,
    reps: int = 2000,
    seed: int = 0,
) -> pl.DataFrame:
    """Per system (summaries' ``model``, with ``base_model`` and ``config`` when present):
    ``trajectories, tasks``, then for each of ``FIGURES`` its estimate, ``_ci_low``,
    ``_ci_high``, ``_n`` (trajectories) and ``_tasks``; ``lab_tasks_missing`` (list);
    ``pass_at_1``. Lab success is over the lab suite's tasks only; production score and
    milestones over open-play trajectories. Pure (milestones come in as a frame)."""
    suite = lab_suite(registry)
    open_tasks = open_play_tasks(registry)
    summ = summaries.filter(pl.col("model").is_not_null())
    if "base_model" not in summ.columns:
        summ = summ.with_columns(pl.col("model").alias("base_model"))
    summ = summ.join(
        milestones.select(*TRAJECTORY_KEY, "items_produced", "items_automated"),
        on=list(TRAJECTORY_KEY),
        how="left",
    )
    base = summ.group_by("model").agg(
        pl.col("base_model").first(),
        (pl.col("config").first() if "config" in summ.columns else pl.lit(None, pl.String)).alias("config"),
        pl.len().alias("trajectories"),
        pl.col("task").n_unique().alias("tasks"),
        pl.col("task").filter(pl.col("task").is_in(list(suite))).unique().sort().alias("_lab"),
    )
    base = base.with_columns(
        pl.col("_lab")
        .map_elements(lambda ran: sorted(set(suite) - set(ran)), return_dtype=pl.List(pl.String))
        .alias("lab_tasks_missing")
    ).drop("_lab")
    scopes = {
        "lab_success_rate": summ.filter(pl.col("task").is_in(list(suite))),
        "success_rate": summ,
        "mean_score": summ,
        "production_score": summ.filter(pl.col("task").is_in(open_tasks)),
        "milestones": summ.filter(pl.col("task").is_in(open_tasks)),
        "automation_milestones": summ.filter(pl.col("task").is_in(open_tasks)),
    }
    for name, column in FIGURES.items():
        est = _intervals(scopes[name], column, column == "success", reps, seed)
        base = base.join(
            est.rename(
                {
                    "estimate": name,
                    "ci_low": f"{name}_ci_low",
                    "ci_high": f"{name}_ci_high",
                    "n": f"{name}_n",
                    "n_tasks": f"{name}_tasks",
                }
            ),
            on="model",
            how="left",
        )
    scored = summ.filter(pl.col("success").is_not_null())
    if scored.height:
        passes = model_metrics(scored, k_values=(1,)).select("model", "pass_at_1")
        base = base.join(passes, on="model", how="left")
    else:
        base = base.with_columns(pl.lit(None, pl.Float64).alias("pass_at_1"))
    return base.sort(
        ["lab_success_rate", "success_rate", "model"], descending=[True, True, False], nulls_last=True
    )


def load_leaderboard(
    ws: Workspace,
    *,
    systems: Sequence[str] | None = None,
    as_of: int | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> Leaderboard:
    """The leaderboard of every system (or ``systems``: labels or model names) at data
    version ``as_of`` (default: the latest), with ``label_systems``' system labels."""
    from fle_core import warehouse
    from fle_core.analysis import label_systems, load_summaries, milestones

    if reps < 1:
        raise MetricError(f"reps must be at least 1 (got {reps})")
    latest = warehouse.data_version(ws)
    if latest == 0:
        raise MetricError("nothing has been synced into this workspace yet", hint="run `fle-core sync` first")
    version = latest if as_of is None else as_of
    if not 1 <= version <= latest:
        raise MetricError(
            f"data version {version} does not exist", hint=f"data versions run from 1 to {latest}"
        )
    registry = ws.task_registry()
    summ = label_systems(load_summaries(ws, as_of_sync=version))
    if systems:
        wanted = set(systems)
        known = set(summ["model"].drop_nulls()) | set(summ["base_model"].drop_nulls())
        unknown = sorted(wanted - known)
        if unknown:
            raise MetricError(
                f"no system named {', '.join(map(repr, unknown))}",
                hint="systems: " + ", ".join(sorted(summ["model"].drop_nulls().unique().to_list())[:12]),
            )
        summ = summ.filter(pl.col("model").is_in(wanted) | pl.col("base_model").is_in(wanted))
    found = milestones.load_milestones(ws, open_play_tasks(registry), as_of=version)
    frame = leaderboard_frame(summ, found, registry, reps=reps, seed=seed)
    suite = lab_suite(registry)
    return Leaderboard(frame, version, suite, suite_version(suite, registry), reps, seed)


# ------------------------------------------------------------------------------ writers ---
def _num(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _figure(row: Mapping, name: str, scale: float = 1.0) -> dict | None:
    if row.get(name) is None:
        return None
    return {
        "estimate": _num(row[name] * scale),
        "ci_low": _num(row[f"{name}_ci_low"] * scale) if row[f"{name}_ci_low"] is not None else None,
        "ci_high": _num(row[f"{name}_ci_high"] * scale) if row[f"{name}_ci_high"] is not None else None,
        "trials": row[f"{name}_n"],
        "tasks": row[f"{name}_tasks"],
    }


def fle_record(
    row: Mapping,
    board: Leaderboard,
    *,
    name: str | None = None,
    submitted_by: str | None = None,
    date: str | None = None,
    link: str | None = None,
) -> dict:
    """One system in FLE's leaderboard JSON shape (module doc); unfillable fields left out."""
    record: dict[str, Any] = {"name": name or row["model"]}
    unfilled: dict[str, str] = {}
    figures: dict[str, Any] = {}
    if row.get("production_score") is not None:
        record["productionScore"] = round(row["production_score"])
        figures["productionScore"] = _figure(row, "production_score")
    else:
        unfilled["productionScore"] = "no open-play trajectory with a production score"
    if row.get("milestones") is not None:
        record["milestones"] = round(row["milestones"], 1)
        figures["milestones"] = _figure(row, "milestones")
    else:
        unfilled["milestones"] = (
            "no open-play trajectory records its items (programs: achievements_json; "
            "Inspect: the achievements scorer)"
        )
    if row.get("automation_milestones") is not None:
        record["automationMilestones"] = round(row["automation_milestones"], 1)
        figures["automationMilestones"] = _figure(row, "automation_milestones")
    else:
        unfilled["automationMilestones"] = (
            "no open-play trajectory records automated items (only achievements_json's 'dynamic' "
            "part does; Inspect logs do not)"
        )
    if row.get("lab_success_rate") is not None:
        record["labTasksSuccessRate"] = round(100 * row["lab_success_rate"], 1)
        lab = _figure(row, "lab_success_rate", 100.0) or {}
        figures["labTasksSuccessRate"] = {
            **lab,
            "unit": "percent",
            "tasks_in_suite": len(board.suite),
            "missing_tasks": list(row["lab_tasks_missing"] or []),
        }
    else:
        unfilled["labTasksSuccessRate"] = "no trajectory of a lab-play task"
    unfilled["mostComplexItem"] = NO_COMPLEXITY
    if submitted_by:
        record["submittedBy"] = submitted_by
    else:
        unfilled["submittedBy"] = "pass --submitted-by"
    record["submissionDate"] = date or datetime.now(UTC).strftime("%Y-%m-%d")
    record["fle_core"] = {
        "schema_version": SCHEMA_VERSION,
        "system": row["model"],
        "base_model": row.get("base_model"),
        "config": row.get("config"),
        "data_version": board.data_version,
        "suite_version": board.suite_version,
        "link": link,
        "interval": f"95% stratified bootstrap, {board.reps} resamples, seed {board.seed}",
        "figures": figures,
        "unfilled": unfilled,
    }
    return record


def _plain(frame: pl.DataFrame) -> list[dict]:
    return [{k: _num(v) for k, v in r.items()} for r in frame.iter_rows(named=True)]


def leaderboard_json(board: Leaderboard, *, links: Mapping[str, str] | None = None) -> dict:
    """The whole leaderboard for scripts: ``schema_version``, ``data_version``, the suite, the
    bootstrap settings and one entry per system with every ``LEADERBOARD`` column."""
    systems = _plain(board.frame)
    for s in systems:
        s["link"] = (links or {}).get(s["model"])
    return {
        "schema_version": SCHEMA_VERSION,
        "data_version": board.data_version,
        "suite_version": board.suite_version,
        "suite": board.suite,
        "interval": {
            "method": "stratified bootstrap",
            "confidence": 0.95,
            "reps": board.reps,
            "seed": board.seed,
        },
        "systems": systems,
    }


def leaderboard_csv(board: Leaderboard) -> str:
    """The frame as spreadsheet-safe CSV (the missing lab tasks joined with ``;``)."""
    return spreadsheet.csv_text(board.frame)


def leaderboard_markdown(board: Leaderboard) -> str:
    """``| System | Lab success % (95% CI) | Success | Production score | Milestones | Trajectories |``."""
    rows = []
    for r in board.frame.iter_rows(named=True):
        rows.append(
            [
                md.md_text(r["model"]),
                _cell(r, "lab_success_rate", 100, 1),
                _cell(r, "success_rate", 100, 1),
                _cell(r, "production_score", 1, 0),
                _cell(r, "milestones", 1, 1),
                str(r["trajectories"]),
            ]
        )
    header = [
        "System",
        "Lab success % (95% CI)",
        "Success % (95% CI)",
        "Production score",
        "Milestones",
        "Trajectories",
    ]
    lines = md.table(header, rows)
    note = (
        f"Data version {board.data_version}; suite {board.suite_version} ({len(board.suite)} tasks); "
        f"intervals: 95% stratified bootstrap, {board.reps} resamples, seed {board.seed}."
    )
    return "\n".join([*lines, "", note]) + "\n"


def _cell(r: Mapping, name: str, scale: float, digits: int) -> str:
    if r.get(name) is None:
        return "–"
    lo, hi = r[f"{name}_ci_low"], r[f"{name}_ci_high"]
    return (
        f"{md.fmt_number(r[name] * scale, digits)} "
        f"[{md.fmt_number(None if lo is None else lo * scale, digits)}, "
        f"{md.fmt_number(None if hi is None else hi * scale, digits)}]"
    )


def fle_file_name(name: str) -> str:
    """FLE's ``model-name.json`` naming: lower case, runs of other characters become ``-``."""
    slug = "".join(c if c.isalnum() or c == "." else "-" for c in name.lower())
    while "--" in slug:
        slug = slug.replace("--", "-")
    return (slug.strip("-.") or "system") + ".json"
