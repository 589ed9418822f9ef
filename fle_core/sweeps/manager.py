"""``SweepManager``: the old framework's scripting name over the sweep operations.

Same methods as FLE 0.4.3's ``SweepManager`` that scripts call — ``run_sweep``,
``resume_sweep``, ``get_status_summary``, ``generate_final_report`` — but
synchronous, over the durable queue and the runner. The final report is
computed from the warehouse (``analysis``) and, when the config has an
``output_dir``, written there as JSON and Markdown.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from fle_core.analysis import DatabaseAnalyzer, PerformanceAnalyzer, PerformanceMetrics
from fle_core.errors import ConfigError, QueueError
from fle_core.stats import markdown as md
from fle_core.sweeps.config import SweepConfig
from fle_core.sweeps.operations import SweepStatus, cells_frame, ensure_runner, launch, resume, status
from fle_core.sweeps.store import open_store
from fle_core.workspace import Workspace


class SweepManager:
    """``SweepManager(config).run_sweep()`` / ``SweepManager.resume_sweep(config, id)``.

    Synchronous (the old framework was async). ``run_sweep(wait=True)`` runs an
    in-process runner restricted to this sweep until nothing is left, writes
    the final report when ``config.output_dir`` is set, and returns
    ``cells_frame``; ``wait=False`` enqueues, ensures a background runner and
    returns at once (call ``generate_final_report()`` when it is done)."""

    def __init__(
        self,
        config: SweepConfig,
        existing_sweep_id: str | None = None,
        workspace: Workspace | str | Path | None = None,
    ):
        if isinstance(existing_sweep_id, (Workspace, Path)):  # the earlier (config, workspace) order
            existing_sweep_id, workspace = None, existing_sweep_id
        self.config = config
        self.ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
        self.sweep_id = existing_sweep_id
        self.is_resume = self.is_resuming = existing_sweep_id is not None
        if config.output_dir:
            Path(config.output_dir).mkdir(parents=True, exist_ok=True)

    @classmethod
    def resume_sweep(
        cls, config: SweepConfig, sweep_id: str, workspace: Workspace | str | Path | None = None
    ) -> SweepManager:
        return cls(config, sweep_id, workspace)

    def run_sweep(
        self, wait: bool = True, max_concurrent: int | None = None, sync: bool = True
    ) -> pl.DataFrame:
        store = open_store(self.ws)
        try:
            if self.sweep_id is None:
                self.sweep_id = launch(self.ws, self.config, store=store)
            else:
                resume(self.ws, self.sweep_id, store=store, config=self.config)
            if not wait:
                ensure_runner(self.ws, store)
                return cells_frame(self.ws, self.sweep_id, store)
            from fle_core.sweeps.runner import Runner

            runner = Runner(
                self.ws,
                store,
                max_concurrent=max_concurrent or self.config.max_concurrent,
                sweep_ids=[self.sweep_id],
                sync=sync,
                runner_id=f"inproc:{os.getpid()}:{uuid.uuid4().hex[:6]}",
            )
            runner.run(once=True)
            cells = cells_frame(self.ws, self.sweep_id, store)
        finally:
            store.close()
        if self.config.output_dir and sync:
            self.generate_final_report()
        return cells

    def status(self) -> SweepStatus:
        if self.sweep_id is None:
            raise QueueError("This sweep has not been launched yet")
        return status(self.ws, self.sweep_id)

    def get_status_summary(self) -> dict[str, Any]:
        """The old summary: ``total_jobs, completed, running, failed, early_stopped,
        cancelled, pending, completion_rate, active_processes, elapsed_time, eta_s``
        (cells of this sweep; ``completed`` = succeeded; zeros before launch)."""
        if self.sweep_id is None:
            zero = dict.fromkeys(
                ("total_jobs", "completed", "running", "failed", "early_stopped", "cancelled"), 0
            )
            return {**zero, "pending": 0, "completion_rate": 0, "active_processes": 0, "elapsed_time": None}
        st = self.status()
        c = st.counts
        store = open_store(self.ws)
        try:
            created = store.get_sweep(self.sweep_id).created_at
        finally:
            store.close()
        return {
            "total_jobs": st.total,
            "completed": c.get("succeeded", 0),
            "running": c.get("running", 0),
            "failed": c.get("failed", 0),
            "early_stopped": c.get("early_stopped", 0),
            "cancelled": c.get("cancelled", 0),
            "pending": c.get("pending", 0),
            "completion_rate": c.get("succeeded", 0) / st.total if st.total else 0,
            "active_processes": c.get("running", 0),
            "elapsed_time": timedelta(seconds=max(0.0, time.time() - created)),
            "eta_s": st.eta_s,
        }

    def generate_final_report(self) -> dict[str, Any]:
        """The sweep's report: ``sweep_id, sweep_config, execution_summary, results_by_model,
        results_by_task, timestamp`` (metrics as ``PerformanceMetrics.to_dict()``, success =
        best reward ≥ quota), from the warehouse's copy of the sweep (sync it first; the
        runner does). With ``config.output_dir`` it is written there as
        ``sweep_report_<YYYYmmdd_HHMMSS>.json`` and ``.md``; ``report["files"]`` lists them.
        Raises (the old method returned ``{"error": ...}``)."""
        if self.sweep_id is None:
            raise QueueError("This sweep has not been launched yet", hint="call run_sweep() first")
        summary = self.get_status_summary()
        results = DatabaseAnalyzer(self.ws).get_trajectory_summaries_by_sweep(self.sweep_id)
        by_model = _metrics_by(results, "model")
        by_task = _metrics_by(results, "task")
        spent = summary["elapsed_time"].total_seconds() if summary["elapsed_time"] else 0.0
        report: dict[str, Any] = {
            "sweep_id": self.sweep_id,
            "sweep_config": self.config.to_dict(),
            "execution_summary": {
                "total_jobs": summary["total_jobs"],
                "completed_jobs": summary["completed"],
                "failed_jobs": summary["failed"],
                "early_stopped_jobs": summary["early_stopped"],
                "cancelled_jobs": summary["cancelled"],
                "pending_jobs": summary["pending"],
                "total_trajectories": results.height,
                "total_time_hours": spent / 3600,
                "avg_time_per_trajectory": spent / max(results.height, 1),
                "order": self.config.order,
                "early_stop_on_success": self.config.early_stop_on_success,
            },
            "results_by_model": {k: v.to_dict() for k, v in by_model.items()},
            "results_by_task": {k: v.to_dict() for k, v in by_task.items()},
            "timestamp": datetime.now().isoformat(timespec="seconds"),
        }
        if self.config.output_dir:
            report["files"] = [str(p) for p in write_sweep_report(report, self.config.output_dir)]
        return report


def _metrics_by(results: pl.DataFrame, column: str) -> dict[str, PerformanceMetrics]:
    if results.height == 0:
        return {}
    return {
        str(key): PerformanceAnalyzer.calculate_metrics(part)
        for (key,), part in results.group_by(column, maintain_order=True)
        if key is not None
    }


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf → null, tuples → lists, other objects → text."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def write_sweep_report(report: dict[str, Any], output_dir: str | Path) -> list[Path]:
    """``sweep_report_<time>.json`` (the report, NaN as null) and ``.md`` (its tables)."""
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        json_path, md_path = out / f"sweep_report_{stamp}.json", out / f"sweep_report_{stamp}.md"
        clean = _clean({k: v for k, v in report.items() if k != "files"})
        json_path.write_text(json.dumps(clean, indent=2) + "\n")
        md_path.write_text(sweep_report_markdown(clean))
    except OSError as exc:
        raise ConfigError(f"cannot write the sweep report to {out}: {exc.strerror}") from None
    return [json_path, md_path]


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _results_table(results: dict[str, dict], label: str) -> list[str]:
    rows = []
    for name, m in results.items():
        lo, hi = m.get("ci_95_lower"), m.get("ci_95_upper")
        pass_k = m.get("pass_at_k") or {}
        rows.append(
            [
                md.md_text(name),
                str(m.get("num_trajectories")),
                str(m.get("success_count")),
                _pct(m.get("success_rate")),
                f"{_pct(lo)} – {_pct(hi)}",
                _pct(m.get("pass_at_1")),
                ", ".join(f"{k}: {_pct(v)}" for k, v in pass_k.items() if v is not None) or "n/a",
            ]
        )
    return md.table(
        [label, "Trajectories", "Successes", "Success rate", "95% CI (Wilson)", "pass@1", "pass@k"], rows
    )


def sweep_report_markdown(report: dict[str, Any]) -> str:
    """The report's Markdown: execution summary, then results by model and by task."""
    ex = report["execution_summary"]
    lines = [f"# Sweep report: {md.md_text(report['sweep_id'])}", "", f"Generated {report['timestamp']}.", ""]
    lines += md.table(["", "value"], [[md.md_text(k), md.md_text(v)] for k, v in ex.items()])
    lines += ["", "## Results by model", "", *_results_table(report["results_by_model"], "Model")]
    lines += ["", "## Results by task", "", *_results_table(report["results_by_task"], "Task")]
    lines += [
        "",
        "Success = best reward ≥ the task's quota; pass@k is the unbiased estimator per task, "
        "averaged over tasks with at least k trials (docs/metrics.md).",
    ]
    return "\n".join(lines) + "\n"
