"""``WandBLogger``: log analysis results (metrics, tables, charts) to W&B; never raises."""

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
    _warn,
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
        run_name: str | None = None,
        tags: Iterable[str] | None = None,
        config: Mapping[str, Any] | None = None,
        mode: str | None = None,
        dir: str | os.PathLike | None = None,
    ):
        self._perf_rows: list[dict[str, Any]] = []
        self._traj_prefixes: set[str] = set()
        self.run_dir: str | None = None
        try:
            self.run = _init(
                project=project,
                name=run_name,
                tags=_tags(tags),
                config=safe_config(dict(config or {})),
                mode=mode,
                wandb_dir=dir,
                job_type="analysis",
            )
            self.run_dir = _run_dir(self.run)
        except Exception as exc:  # noqa: BLE001
            _warn("init", exc)
            self.run = None

    @property
    def active(self) -> bool:
        return self.run is not None

    def _log(self, what: str, payload: dict[str, Any], summary: dict[str, Any] | None = None):
        if self.run is None:
            return None
        try:
            if payload:
                self.run.log(payload)
            if summary:
                self.run.summary.update(summary)
            return True
        except Exception as exc:  # noqa: BLE001
            _warn(what, exc)
            return None

    def log_performance_metrics(self, metrics: Any, model: str, task: str | None = None):
        """Numeric fields of ``metrics`` (``to_dict()``, dataclass or dict) under
        ``perf/{model}/{task or 'all'}/{name}``; also kept for the performance table."""
        try:
            data = _as_dict(metrics)
        except Exception as exc:  # noqa: BLE001
            _warn("performance metrics", exc)
            return None
        prefix = f"perf/{_key(model)}/{_key(task or 'all')}"
        flat = _flatten(data)
        numeric = {f"{prefix}/{k}": float(v) for k, v in flat.items() if _finite_number(v)}
        self._perf_rows.append(
            {"model": model, "task": task or "all", **{k: _cell(v) for k, v in flat.items()}}
        )
        return self._log("performance metrics", numeric, numeric)

    def log_trajectory_progress(
        self,
        version: int,
        instance: int,
        step: float,
        reward: float,
        model: str,
        task: str | None = None,
        **extra: Any,
    ):
        """One step of one trajectory: ``trajectory/v{version}_i{instance}/reward`` against
        its own ``…/step`` axis, plus numeric ``extra`` values under the same prefix."""
        if self.run is None:
            return None
        prefix = f"trajectory/v{_key(version)}_i{_key(instance)}"
        try:
            if prefix not in self._traj_prefixes:
                self.run.define_metric(f"{prefix}/step")
                self.run.define_metric(f"{prefix}/*", step_metric=f"{prefix}/step")
                self._traj_prefixes.add(prefix)
        except Exception as exc:  # noqa: BLE001
            _warn("trajectory axis", exc)
            return None
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

    def log_pass_at_k(self, frame: pl.DataFrame):
        """pass@k (columns model, k, estimate, ci_low, ci_high): the table
        ``tables/pass_at_k``, a native line chart ``charts/pass_at_k`` and summary
        scalars ``pass_at_k/{model}/k{k}``."""
        if self.run is None:
            return None
        try:
            import wandb

            table = to_wandb_table(frame)
            chart = wandb.plot.line(table, "k", "estimate", stroke="model", title="pass@k")
            scalars = {
                f"pass_at_k/{_key(r['model'])}/k{int(r['k'])}": r["estimate"]
                for r in frame.iter_rows(named=True)
                if _finite_number(r["estimate"])
            }
        except Exception as exc:  # noqa: BLE001
            _warn("pass@k", exc)
            return None
        return self._log("pass@k", {"tables/pass_at_k": table, "charts/pass_at_k": chart}, scalars)

    def log_chart(self, name: str, chart: Any, *, inline: bool = False):
        """An Altair chart (anything with ``to_html()``) as ``wandb.Html`` at ``charts/{name}``."""
        if self.run is None:
            return None
        try:
            import wandb

            html = _chart_html(chart, inline)
            return self._log("chart", {f"charts/{_key(name)}": wandb.Html(html)})
        except Exception as exc:  # noqa: BLE001
            _warn("chart", exc)
            return None

    def _table(self, key: str, frame: pl.DataFrame):
        if self.run is None:
            return None
        try:
            table = to_wandb_table(frame)
        except Exception as exc:  # noqa: BLE001
            _warn("table", exc)
            return None
        return self._log("table", {key: table})

    def finish(self):
        """Log the accumulated performance table and close the run (idempotent)."""
        if self.run is None:
            return None
        run, self.run = self.run, None
        try:
            if self._perf_rows:
                run.log({"tables/performance_metrics": to_wandb_table(_frame(self._perf_rows))})
        except Exception as exc:  # noqa: BLE001
            _warn("performance table", exc)
        _finish_quietly(run)
        return True

    def __enter__(self) -> WandBLogger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.finish()


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
    except Exception:  # noqa: BLE001 - an unresolvable URL has no secret to scrub
        return pl.DataFrame({c: [None if v is None else str(v) for v in vs] for c, vs in data.items()})


def _chart_html(chart: Any, inline: bool) -> str:
    """Altair's HTML. ``inline`` embeds the Vega JS (~0.9 MB, via vl-convert) so it
    renders with no network; the default loads it from a CDN (a few kB)."""
    return chart.to_html(inline=True) if inline else chart.to_html()
