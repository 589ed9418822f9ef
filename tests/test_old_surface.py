"""Conformance with the old FLE analysis framework's public surface (FLE 0.4.3).

``fixtures/fle_0_4_3_surface.json`` records, from FLE's own source
(``fixtures/record_fle_surface.py``), every public class, function, method and
parameter of ``fle.eval.analysis`` and ``fle.eval.infra.sweep_manager``. This
test walks all of it and fails on a gap: a missing name, a missing parameter,
positional parameters in another order, or a default that changed. Every
deliberate difference is listed below with its reason; nothing else may differ.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

import fle_core

SURFACE = json.loads((Path(__file__).parent / "fixtures" / "fle_0_4_3_surface.json").read_text())

#: old qualified name → the name users import from ``fle_core``
NEW_NAME = {
    "fle.eval.analysis.performance_metrics.PerformanceMetrics": "PerformanceMetrics",
    "fle.eval.analysis.performance_metrics.PerformanceAnalyzer": "PerformanceAnalyzer",
    "fle.eval.analysis.database_analyzer.DatabaseAnalyzer": "DatabaseAnalyzer",
    "fle.eval.analysis.wandb_logger.WandBLogger": "WandBLogger",
    "fle.eval.analysis.wandb_logger.WandBSweepLogger": "WandBSweepLogger",
    "fle.eval.analysis.results_visualizer.ResultsVisualizer": "ResultsVisualizer",
    "fle.eval.infra.sweep_manager.SweepConfig": "SweepConfig",
    "fle.eval.infra.sweep_manager.SweepManager": "SweepManager",
}
NEW_NAME.update(
    {k: k.rsplit(".", 1)[1] for k, v in SURFACE.items() if k.startswith("fle.eval.analysis.analysis_utils.")}
)

#: old names deliberately not provided, and why
NOT_PROVIDED = {
    "fle.eval.infra.sweep_manager.RunJob": "jobs are cells of the durable queue: fle_core.sweeps.cells_frame",
}
_SCHEDULER = "a step of the old in-process scheduler; the runner (fle_core.sweeps.runner) does this"
NOT_PROVIDED.update(
    {
        f"fle.eval.infra.sweep_manager.SweepManager.{m}": _SCHEDULER
        for m in (
            "analyze_recent_results",
            "check_dynamic_early_stopping",
            "execute_jobs",
            "generate_jobs",
            "handle_completed_job",
            "load_existing_sweep_state",
            "log_progress_if_needed",
            "log_progress_summary",
            "run_job_wrapper",
            "start_job",
        )
    }
)

_BEST = "the old 'final_reward' was MAX(value) per trajectory: best_reward here"
_QUOTA = "success is best reward >= the task quota unless a threshold is given (old: reward > 0)"
#: (qualified method, parameter) → why its default differs
DEFAULTS = {
    ("PerformanceAnalyzer.calculate_metrics", "reward_column"): _BEST,
    ("PerformanceAnalyzer.calculate_metrics", "success_threshold"): _QUOTA,
    (
        "PerformanceAnalyzer.calculate_metrics",
        "token_column",
    ): "summaries carry total_tokens; None disables it",
    ("PerformanceAnalyzer.calculate_metrics", "step_column"): "summaries carry steps; None disables it",
    ("PerformanceAnalyzer.calculate_metrics", "k_values"): "a tuple, same values (no mutable default)",
    ("DatabaseAnalyzer.get_results_by_model_and_task", "task_pattern"): "optional: '' matches every task",
    ("DatabaseAnalyzer.get_model_comparison", "models"): "optional: None compares every model",
    ("WandBLogger.__init__", "project"): "None: $WANDB_PROJECT, else config.toml, else the default project",
    (
        "WandBSweepLogger.__init__",
        "project",
    ): "None: $WANDB_PROJECT, else config.toml, else the default project",
    ("WandBLogger.log_performance_metrics", "task"): "optional: None logs under 'all'",
    ("WandBLogger.log_trajectory_progress", "production_score"): "optional (the old README's call omits it)",
    ("WandBLogger.log_trajectory_progress", "model"): "optional after the optional production_score",
    ("WandBLogger.log_trajectory_progress", "task"): "optional after the optional production_score",
    ("ResultsVisualizer.__init__", "figsize"): "None: charts size themselves from their content",
    ("ResultsVisualizer.plot_reward_distribution", "reward_col"): "'both' shows best and final; " + _BEST,
    ("ResultsVisualizer.plot_efficiency_scatter", "y_col"): _BEST,
    ("ResultsVisualizer.plot_learning_curves", "metric_col"): "learning curves are over step values",
    ("ResultsVisualizer.plot_task_difficulty_heatmap", "task_col"): "summaries carry the parsed task key",
    (
        "ResultsVisualizer.plot_task_difficulty_heatmap",
        "metric_col",
    ): "the heatmap's cell metric (group metrics)",
    ("ResultsVisualizer.plot_task_difficulty_heatmap", "success_threshold"): _QUOTA,
    (
        "ResultsVisualizer.plot_task_success_classification_heatmap",
        "task_col",
    ): "summaries carry the task key",
    ("ResultsVisualizer.plot_task_success_classification_heatmap", "metric_col"): _BEST,
    ("ResultsVisualizer.plot_pass_histogram", "reward_col"): _BEST,
    ("ResultsVisualizer.plot_pass_histogram", "success_threshold"): _QUOTA,
    ("ResultsVisualizer.plot_task_specific_pass_at_k", "reward_col"): _BEST,
    ("ResultsVisualizer.plot_task_specific_pass_at_k", "success_threshold"): _QUOTA,
    ("ResultsVisualizer.create_comprehensive_report", "model_metrics"): "optional frames",
    ("ResultsVisualizer.create_comprehensive_report", "results_df"): "checked at call time (clear error)",
    ("ResultsVisualizer.create_comprehensive_report", "output_dir"): "a default folder, as the README shows",
    ("calculate_efficiency_metrics", "success_threshold"): _QUOTA,
    ("calculate_efficiency_metrics", "reward_col"): _BEST,
    ("find_performance_outliers", "metric_col"): _BEST,
    ("aggregate_results_by_time", "metric_col"): _BEST,
    ("compare_model_performance_statistical", "metric_col"): _BEST,
}
#: (qualified method, parameter) → its new name, and why
RENAMED = {
    ("DatabaseAnalyzer.__init__", "db_client"): (
        "workspace",
        "the warehouse is read, not FLE's database client",
    ),
}
#: SweepConfig fields with another default, and why
SWEEP_DEFAULTS = {
    "num_trials_per_config": "1: a sweep says how many trials it wants (the old default 8 was pass@8)",
    "max_concurrent_processes": "max_concurrent defaults to 2 on this 2-core machine class",
    "enable_wandb": "wandb is opt-in (offline runs otherwise pile up unasked)",
    "wandb_project": "None: [wandb] project from config.toml",
    "shuffle_execution_order": "order defaults to task_inner (tasks vary fastest)",
}


def _entries():
    yield from sorted(SURFACE.items())


def _resolve(qual: str):
    return getattr(fle_core, NEW_NAME[qual], None)


def _params(obj, drop_self: bool) -> list[inspect.Parameter]:
    params = list(inspect.signature(obj).parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return params


def _default_equal(old_src: str, new) -> bool:
    try:
        old = ast.literal_eval(old_src)
    except ValueError:
        return False
    if isinstance(old, list) and isinstance(new, tuple):
        old = tuple(old)
    return old == new


def signature_gaps(label: str, old_params: list[dict], new_params: list[inspect.Parameter]) -> list[str]:
    """What an old call could do that the new signature does not accept (or means differently)."""
    gaps = []
    by_name = {p.name: p for p in new_params}
    has_kwargs = any(p.kind is p.VAR_KEYWORD for p in new_params)
    old_pos = [p["name"] for p in old_params if p["kind"] in ("positional_only", "positional_or_keyword")]
    new_pos = [p.name for p in new_params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    short = label
    rename = {old: new for (where, old), (new, _) in RENAMED.items() if where == short}
    old_pos = [rename.get(n, n) for n in old_pos]
    for p in old_params:
        name = rename.get(p["name"], p["name"])
        if p["kind"] == "var_keyword":
            if not has_kwargs:
                gaps.append(f"{label}: no **{name}")
            continue
        if p["kind"] == "var_positional":
            if not any(q.kind is q.VAR_POSITIONAL for q in new_params):
                gaps.append(f"{label}: no *{name}")
            continue
        new = by_name.get(name)
        if new is None:
            gaps.append(f"{label}: parameter {name!r} is missing")
            continue
        if (short, name) in DEFAULTS:  # a documented change of default (it may also be optional now)
            continue
        if p["default"] is not None:
            if new.default is inspect.Parameter.empty:
                gaps.append(f"{label}: {name!r} had a default ({p['default']}) and is now required")
            elif not _default_equal(p["default"], new.default):
                gaps.append(f"{label}: default of {name!r} changed from {p['default']} to {new.default!r}")
    if new_pos[: len(old_pos)] != old_pos:
        gaps.append(f"{label}: positional order {new_pos[: len(old_pos)]} != old {old_pos}")
    return gaps


def _short(qual: str, method: str | None = None) -> str:
    name = NEW_NAME.get(qual, qual.rsplit(".", 1)[1])
    return f"{name}.{method}" if method else name


def surface_gaps() -> list[str]:
    gaps: list[str] = []
    for qual, entry in _entries():
        if qual in NOT_PROVIDED:
            continue
        obj = _resolve(qual)
        if obj is None:
            gaps.append(f"{qual}: not exported as fle_core.{NEW_NAME.get(qual, '?')}")
            continue
        if entry["type"] == "function":
            gaps += signature_gaps(_short(qual), entry["params"], _params(obj, False))
            continue
        if qual.endswith("SweepConfig"):
            gaps += sweep_config_gaps(obj, entry["fields"])
            continue
        if entry["type"] == "dataclass":
            gaps += signature_gaps(_short(qual, "__init__"), entry["fields"], _params(obj, False))
        for method, spec in entry["methods"].items():
            if f"{qual}.{method}" in NOT_PROVIDED:
                continue
            attr = inspect.getattr_static(obj, method, None)
            if attr is None:
                gaps.append(f"{_short(qual)}.{method}: missing")
                continue
            static = isinstance(attr, staticmethod) or "staticmethod" in spec["decorators"]
            func = getattr(obj, method)
            gaps += signature_gaps(_short(qual, method), spec["params"], _params(func, not static))
    return gaps


def sweep_config_gaps(cls, fields: list[dict]) -> list[str]:
    """Each old field is a current field or upgraded from schema 1; defaults as documented."""
    from fle_core.sweeps import config as sc

    gaps = []
    upgraded = sc._V1_ONLY | {"output_dir", "description"}
    for f in fields:
        name = f["name"]
        if name not in cls.model_fields and name not in upgraded:
            gaps.append(f"SweepConfig: old field {name!r} is not accepted")
        elif name in cls.model_fields and f["default"] is not None and name not in SWEEP_DEFAULTS:
            default = cls.model_fields[name].get_default(call_default_factory=True)
            if not (f["default"].startswith("field(") or _default_equal(f["default"], default)):
                gaps.append(f"SweepConfig: default of {name!r} changed from {f['default']} to {default!r}")
    return gaps


def test_the_fixture_covers_the_old_framework():
    assert len(SURFACE) >= 19
    assert "fle.eval.analysis.wandb_logger.WandBSweepLogger" in SURFACE
    assert set(NEW_NAME) | set(NOT_PROVIDED) >= set(SURFACE)
    assert all(reason for reason in [*NOT_PROVIDED.values(), *DEFAULTS.values(), *SWEEP_DEFAULTS.values()])
    assert all(reason for _, reason in RENAMED.values())


def test_every_old_public_name_and_parameter_is_here():
    assert surface_gaps() == []


def test_the_checker_finds_gaps():
    """Remove a parameter, reorder two, change a default: each is reported."""
    old = [
        {"name": "a", "kind": "positional_or_keyword", "default": None},
        {"name": "b", "kind": "positional_or_keyword", "default": "3"},
        {"name": "kw", "kind": "var_keyword", "default": None},
    ]

    def missing(a): ...

    def swapped(b=3, a=None, **kw): ...

    def changed(a, b=4, **kw): ...

    def fine(a, b=3, c=None, **kw): ...

    def sig(f):
        return _params(f, False)

    assert signature_gaps("f", old, sig(missing)) == [
        "f: parameter 'b' is missing",
        "f: no **kw",
        "f: positional order ['a'] != old ['a', 'b']",
    ]
    assert "positional order" in " ".join(signature_gaps("f", old, sig(swapped)))
    assert signature_gaps("f", old, sig(changed)) == ["f: default of 'b' changed from 3 to 4"]
    assert signature_gaps("f", old, sig(fine)) == []


@pytest.mark.parametrize(
    "name",
    ["WandBSweepLogger", "group_results_by_model", "create_leaderboard", "aggregate_results_by_time"],
)
def test_old_names_are_in_all(name):
    assert name in fle_core.__all__
