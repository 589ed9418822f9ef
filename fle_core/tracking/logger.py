"""``WandBLogger`` and ``WandBSweepLogger``: analysis results to W&B; never raises.

The old framework's classes and method names (FLE 0.4.3 ``wandb_logger``) with
their parameters, plus frame/chart logging. Fixed on the way: non-numeric
values (a best model's name, a status) go to the summary or config, never into
the metric history, and ``WandBSweepLogger`` keeps the caller's tags (the old
one dropped them, and with them ``sweep:{id}``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

import polars as pl

from fle_core.tracking._wandb import (
    _cell,
    _finish_quietly,
    _init,
    _key,
    _run_dir,
    _tags,
    quietly,
    safe_config,
    to_wandb_table,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# WandBLogger (the old framework's class, plus analysis logging)
# ---------------------------------------------------------------------------


class WandBLogger:
    """One W&B run for an analysis session; every method is a no-op after a failure.

    Methods return True when the values were handed to W&B and None when W&B is
    unavailable or failed (a warning is logged). Keys (see docs/wandb.md):
    ``perf/{model}/{task|all}/{metric}``, ``trajectory/v{version}_i{instance}/…``,
    ``tables/{name}``, ``tables/comparisons``, ``tables/pass_at_k``,
    ``charts/pass_at_k``, ``pass_at_k/{model}/k{k}``, ``charts/{name}``; on
    ``finish()`` the accumulated ``tables/performance_metrics``.
    """

    def __init__(
        self,
        project: str | None = None,
        entity: str | None = None,
        run_name: str | None = None,
        tags: Iterable[str] | None = None,
        config: Mapping[str, Any] | None = None,
        resume: bool | str = False,
        offline: bool = False,
        mode: str | None = None,
        dir: str | os.PathLike | None = None,
    ):
        """Open the run at once (as the old class did). ``offline=True`` forces offline
        mode (else ``mode``, ``$WANDB_MODE``, online with a key, offline without);
        ``resume`` is passed to ``wandb.init`` (``True`` means ``"allow"``);
        ``DISABLE_WANDB=true`` in the environment turns logging off."""
        self.project, self.entity, self.run_name = project, entity, run_name
        self.tags, self.config = _tags(tags), dict(config or {})
        self.resume, self.offline = resume, offline
        self.mode = "offline" if offline else mode
        self.dir = dir
        self._perf_rows: list[dict[str, Any]] = []
        self._traj_prefixes: set[str] = set()
        self.run_dir: str | None = None
        self.run = None
        self.enabled = os.environ.get("DISABLE_WANDB", "").strip().lower() not in ("true", "1", "yes")
        if self.enabled:
            self.initialize_run()
        else:
            log.info("W&B logging disabled (DISABLE_WANDB)")

    def initialize_run(self):
        """Start the run if none is open (after ``finish()`` this opens a new one)."""
        if self.run is not None or not self.enabled:
            return None
        with quietly("init"):
            self.run = _init(
                project=self.project,
                name=self.run_name,
                tags=self.tags,
                config=safe_config(self.config),
                mode=self.mode,
                wandb_dir=self.dir,
                job_type="analysis",
                entity=self.entity,
                resume=self.resume,
            )
            self.run_dir = _run_dir(self.run)
            self._traj_prefixes.clear()
            return True
        return None  # _init raised: self.run stays None

    @property
    def active(self) -> bool:
        return self.run is not None

    def _log(
        self,
        what: str,
        payload: dict[str, Any],
        summary: dict[str, Any] | None = None,
        step: int | None = None,
    ):
        if self.run is None:
            return None
        with quietly(what):
            if payload:
                self.run.log(payload, step=step)
            if summary:
                self.run.summary.update(summary)
            return True
        return None

    @quietly("metrics")
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, prefix: str | None = None):
        """Log a dict as is (keys ``{prefix}/{key}`` with a prefix): numbers into the
        history (at ``step``), anything else (text, a status) into the summary."""
        items = {f"{prefix}/{k}" if prefix else str(k): v for k, v in dict(metrics).items()}
        numeric = {k: v for k, v in items.items() if _finite_number(v) or _is_media(v)}
        other = {k: _cell(v) for k, v in items.items() if k not in numeric}
        return self._log("metrics", numeric, other or None, step=step)

    @quietly("config")
    def log_config_update(self, config: Mapping[str, Any]):
        """Add to / change the run's config (masked like the constructor's ``config``)."""
        if self.run is None:
            return None
        self.run.config.update(safe_config(dict(config)), allow_val_change=True)
        return True

    @quietly("table")
    def log_table(self, table_name: str, data: Any, step: int | None = None):
        """Rows (a list of dicts, or a Polars frame) as the ``wandb.Table`` ``table_name``
        (the key as given, as the old method did); an empty list logs nothing."""
        if self.run is None:
            return None
        frame = data if isinstance(data, pl.DataFrame) else _frame([_flatten(dict(r)) for r in data])
        if frame.height == 0:
            return None
        return self._log("table", {table_name: to_wandb_table(frame)}, step=step)

    @quietly("model comparison")
    def log_model_comparison_table(self, model_metrics: Mapping[str, Any], step: int | None = None):
        """``{model: PerformanceMetrics}`` as the table ``model_comparison`` (one row per model)."""
        if not model_metrics:
            return None
        rows = [{"model": m, **_as_dict(v)} for m, v in model_metrics.items()]
        return self.log_table("model_comparison", rows, step=step)

    @quietly("sweep summary")
    def log_sweep_summary(
        self,
        sweep_config: Mapping[str, Any],
        results_by_model: Mapping[str, Any],
        results_by_task: Mapping[str, Any],
        total_trajectories: int,
        total_time: float,
    ):
        """A finished sweep's summary: ``sweep/total_trajectories``, ``sweep/total_time_hours``,
        ``sweep/num_models``, ``sweep/num_tasks``, ``sweep/avg_time_per_trajectory``,
        ``sweep/best_model_success_rate``, ``sweep/hardest_task_success_rate`` (numbers),
        ``sweep/best_model`` and ``sweep/hardest_task`` (names, in the summary only) and
        the config key ``sweep_config``. Records without a success rate are skipped
        when picking the best model and the hardest task."""
        if self.run is None:
            return None
        out: dict[str, Any] = {
            "sweep/total_trajectories": int(total_trajectories),
            "sweep/total_time_hours": float(total_time) / 3600,
            "sweep/num_models": len(results_by_model),
            "sweep/num_tasks": len(results_by_task),
            "sweep/avg_time_per_trajectory": float(total_time) / max(int(total_trajectories), 1),
        }
        rates = {k: _rate(v) for k, v in results_by_model.items()}
        rated = {k: r for k, r in rates.items() if r is not None}
        if rated:
            best = max(rated, key=lambda k: rated[k])
            out.update({"sweep/best_model": best, "sweep/best_model_success_rate": rated[best]})
        task_rates = {k: r for k, v in results_by_task.items() if (r := _rate(v)) is not None}
        if task_rates:
            hardest = min(task_rates, key=lambda k: task_rates[k])
            out.update(
                {"sweep/hardest_task": hardest, "sweep/hardest_task_success_rate": task_rates[hardest]}
            )
        done = self.log_metrics(out)
        if sweep_config:
            self.log_config_update({"sweep_config": dict(sweep_config)})
        return done

    @quietly("performance metrics")
    def log_performance_metrics(
        self, performance_metrics: Any, model: str, task: str | None = None, step: int | None = None
    ):
        """Numeric fields of ``performance_metrics`` (``to_dict()``, dataclass or dict) under
        ``perf/{model}/{task or 'all'}/{name}``; also kept for the performance table."""
        data = _as_dict(performance_metrics)
        prefix = f"perf/{_key(model)}/{_key(task or 'all')}"
        flat = _flatten(data)
        numeric = {f"{prefix}/{k}": float(v) for k, v in flat.items() if _finite_number(v)}
        self._perf_rows.append(
            {"model": model, "task": task or "all", **{k: _cell(v) for k, v in flat.items()}}
        )
        return self._log("performance metrics", numeric, numeric, step=step)

    def log_trajectory_progress(
        self,
        version: int,
        instance: int,
        step: float,
        reward: float,
        production_score: float | None = None,
        model: str | None = None,
        task: str | None = None,
        elapsed_time: float | None = None,
        tokens_used: int | None = None,
        **extra: Any,
    ):
        """One step of one trajectory: ``trajectory/v{version}_i{instance}/reward`` against
        its own ``…/step`` axis, plus ``production_score``, ``elapsed_time``,
        ``tokens_used`` (and ``tokens_per_step``) and numeric ``extra`` values under
        the same prefix (the old parameters, in the old order)."""
        if self.run is None:
            return None
        named = {
            "production_score": production_score,
            "elapsed_time": elapsed_time,
            "tokens_used": tokens_used,
        }
        if tokens_used is not None:
            named["tokens_per_step"] = tokens_used / max(float(step), 1.0)
        extra = {**{k: v for k, v in named.items() if v is not None}, **extra}
        prefix = f"trajectory/v{_key(version)}_i{_key(instance)}"
        with quietly("trajectory axis"):
            if prefix not in self._traj_prefixes:
                self.run.define_metric(f"{prefix}/step")
                self.run.define_metric(f"{prefix}/*", step_metric=f"{prefix}/step")
                self._traj_prefixes.add(prefix)
        if prefix not in self._traj_prefixes:
            return None  # the axis could not be defined
        payload = {f"{prefix}/step": step, f"{prefix}/reward": reward}
        payload.update(
            {
                f"{prefix}/{_key(k)}": v
                for k, v in extra.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        )
        labels = {f"{prefix}/model": model, f"{prefix}/task": task}
        return self._log("trajectory progress", payload, labels)

    def log_metrics_table(self, name: str, frame: pl.DataFrame):
        """``frame`` as the ``wandb.Table`` ``tables/{name}``."""
        return self._table(f"tables/{_key(name)}", frame)

    def log_comparison_table(self, frame: pl.DataFrame):
        """A ``pairwise_comparisons`` frame as ``tables/comparisons``."""
        return self._table("tables/comparisons", frame)

    @quietly("pass@k")
    def log_pass_at_k(self, frame: pl.DataFrame):
        """pass@k (columns model, k, estimate, ci_low, ci_high): the table
        ``tables/pass_at_k``, a native line chart ``charts/pass_at_k`` and summary
        scalars ``pass_at_k/{model}/k{k}``."""
        if self.run is None:
            return None
        import wandb

        table = to_wandb_table(frame)
        chart = wandb.plot.line(table, "k", "estimate", stroke="model", title="pass@k")
        scalars = {
            f"pass_at_k/{_key(r['model'])}/k{int(r['k'])}": r["estimate"]
            for r in frame.iter_rows(named=True)
            if _finite_number(r["estimate"])
        }
        return self._log("pass@k", {"tables/pass_at_k": table, "charts/pass_at_k": chart}, scalars)

    @quietly("chart")
    def log_chart(self, name: str, chart: Any, *, inline: bool = False):
        """An Altair chart (anything with ``to_html()``) as ``wandb.Html`` at ``charts/{name}``."""
        if self.run is None:
            return None
        import wandb

        return self._log("chart", {f"charts/{_key(name)}": wandb.Html(_chart_html(chart, inline))})

    @quietly("table")
    def _table(self, key: str, frame: pl.DataFrame):
        if self.run is None:
            return None
        return self._log("table", {key: to_wandb_table(frame)})

    def finish(self):
        """Log the accumulated performance table and close the run (idempotent)."""
        if self.run is None:
            return None
        run, self.run = self.run, None
        with quietly("performance table"):
            if self._perf_rows:
                run.log({"tables/performance_metrics": to_wandb_table(_frame(self._perf_rows))})
        _finish_quietly(run)
        return True

    def __enter__(self) -> WandBLogger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.finish()


def _rate(metrics: Any) -> float | None:
    value = (
        metrics.get("success_rate")
        if isinstance(metrics, Mapping)
        else getattr(metrics, "success_rate", None)
    )
    return float(value) if value is not None and _finite_number(value) else None


def _is_media(v: Any) -> bool:
    """W&B objects (tables, plots, images) that ``run.log`` accepts as they are."""
    return type(v).__module__.startswith("wandb")


class WandBSweepLogger:
    """One ``WandBLogger`` per run of a sweep (the old framework's helper).

    ``create_run_logger(run_id, model, task, version, **kwargs)`` opens a run named
    ``{model}-{task}-v{version}`` with tags ``sweep, {model}, {task}, v{version}``
    plus ``kwargs["tags"]`` (kept, unlike the old helper) and config ``model, task,
    version`` plus ``kwargs["config"]``; other kwargs go to ``WandBLogger``.
    """

    def __init__(self, project: str | None = None):
        self.project = project
        self.enabled = os.environ.get("DISABLE_WANDB", "").strip().lower() not in ("true", "1", "yes")
        self.individual_loggers: dict[str, WandBLogger] = {}

    def create_run_logger(
        self, run_id: str, model: str, task: str, version: int, **kwargs: Any
    ) -> WandBLogger:
        tags = ["sweep", model, task, f"v{version}", *(kwargs.pop("tags", None) or [])]
        config = {"model": model, "task": task, "version": version, **(kwargs.pop("config", None) or {})}
        kwargs.setdefault("project", self.project)
        logger = WandBLogger(run_name=f"{model}-{task}-v{version}", tags=tags, config=config, **kwargs)
        self.individual_loggers[run_id] = logger
        return logger

    def get_logger(self, run_id: str) -> WandBLogger | None:
        return self.individual_loggers.get(run_id)

    def finish_all(self) -> None:
        for logger in self.individual_loggers.values():
            logger.finish()
        self.individual_loggers.clear()


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting made flat: ``pass_at_k: {1: x}`` → ``pass_at_k/1``, and a
    2-number list/tuple (a confidence interval) → ``{key}/low``, ``{key}/high``."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = _key(k)
        if isinstance(v, Mapping):
            out.update({f"{key}/{_key(sub)}": val for sub, val in v.items()})
        elif isinstance(v, (list, tuple)) and len(v) == 2 and all(x is None or _finite_number(x) for x in v):
            out[f"{key}/low"], out[f"{key}/high"] = v
        else:
            out[key] = v
    return out


def _as_dict(metrics: Any) -> dict[str, Any]:
    if isinstance(metrics, Mapping):
        return dict(metrics)
    if hasattr(metrics, "to_dict"):
        return dict(metrics.to_dict())
    if is_dataclass(metrics) and not isinstance(metrics, type):
        return asdict(metrics)
    raise TypeError(f"cannot read metrics from {type(metrics).__name__}")


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows with possibly different keys → one frame (missing cells null, mixed types as text)."""
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    data = {c: [row.get(c) for row in rows] for c in cols}
    try:
        return pl.DataFrame(data, strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError):  # types Polars cannot unify: as text
        return pl.DataFrame({c: [None if v is None else str(v) for v in vs] for c, vs in data.items()})


def _chart_html(chart: Any, inline: bool) -> str:
    """Altair's HTML. ``inline`` embeds the Vega JS (~0.9 MB, via vl-convert) so it
    renders with no network; the default loads it from a CDN (a few kB)."""
    return chart.to_html(inline=True) if inline else chart.to_html()
