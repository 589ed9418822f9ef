"""The regression gate: did the candidate get worse than the baseline? For CI, with an exit code.

``run_gate(ws, baseline, candidate, ...)`` resolves both sides (``sides``), keeps
the tasks both ran, runs the one-sided tests of ``stats.gate`` on each metric
(corrected across the metrics), and the per-task diff of ``stats.changes``.
``GateReport.exit_code`` is 0 when no checked metric regressed and 1 when one
did; bad input raises a ``FleError`` (the CLI's exit 2). ``gate_markdown`` is the
PR comment (one experiment-log table per metric, the tasks that regressed most,
the comparability warnings, a pinned link) and ``gate_json`` the same for
scripts. Definitions in ``docs/gate.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from fle_core.analysis.changes import changes_between
from fle_core.analysis.sides import Difference, Side, resolve_sides
from fle_core.errors import MetricError
from fle_core.stats import changes as chg
from fle_core.stats import gate as tests
from fle_core.stats import markdown as md
from fle_core.workspace import Workspace

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class GateReport:
    """Everything the gate found; ``exit_code`` is what CI acts on."""

    baseline: Side
    candidate: Side
    tasks: list[str]
    tests: pl.DataFrame  # stats.gate.GATE_SCHEMA, one row per metric
    changes: pl.DataFrame  # stats.changes.CHANGE_SCHEMA (+ log columns), worst first
    differences: list[Difference]

    @property
    def regressed(self) -> list[str]:
        """The metrics that regressed, in the order checked."""
        return self.tests.filter(pl.col("regressed"))["metric"].to_list()

    @property
    def exit_code(self) -> int:
        return 1 if self.regressed else 0


def _tasks(a: Side, b: Side, tasks: str | Sequence[str]) -> list[str]:
    ta = set(a.summaries["task"].drop_nulls().to_list())
    tb = set(b.summaries["task"].drop_nulls().to_list())
    if isinstance(tasks, str) and tasks == "common":
        common = sorted(ta & tb)
        if not common:
            raise MetricError(
                f"no common tasks: {a.label} ran {_few(ta)}, {b.label} ran {_few(tb)}",
                hint="the gate compares the tasks both sides ran; check the sides",
            )
        return common
    chosen = [tasks] if isinstance(tasks, str) else list(tasks)
    missing = [t for t in chosen if t not in ta or t not in tb]
    if missing:
        raise MetricError(
            f"task(s) not run by both sides: {', '.join(missing)}",
            hint=f"common tasks: {_few(ta & tb)}",
        )
    return chosen


def _few(names, limit: int = 6) -> str:
    names = sorted(map(str, names))
    if not names:
        return "no task"
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def run_gate(
    ws: Workspace,
    baseline: str,
    candidate: str,
    *,
    metrics: Sequence[str] = ("success",),
    margins: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    tasks: str | Sequence[str] = "common",
    as_of: int | None = None,
) -> GateReport:
    """Gate ``candidate`` against ``baseline`` on ``metrics`` (names in ``stats.gate.METRICS``).

    ``tasks``: ``"common"`` (every task both sides ran) or task keys both ran.
    ``margins``: per metric, in its units (0: any significant drop fails).
    Raises ``FleError``s for an unknown or ambiguous side, no common task, an
    unknown metric or too few trials to show a regression at all.
    """
    for m in metrics:
        tests.gate_metric(m)  # an unknown metric fails before the warehouse is read
    a, b = resolve_sides(ws, baseline, candidate, as_of=as_of)
    chosen = _tasks(a, b, tasks)
    keep = pl.col("task").is_in(chosen)
    a = Side(a.spec, a.system, a.summaries.filter(keep))
    b = Side(b.spec, b.system, b.summaries.filter(keep))
    frame = tests.regression_tests(
        a.summaries,
        b.summaries,
        metrics,
        baseline_label=a.label,
        candidate_label=b.label,
        margins=margins,
        alpha=alpha,
        correction=correction,
    )
    diff = changes_between(a, b)
    return GateReport(a, b, chosen, frame, diff.table, diff.differences)


# ---------------------------------------------------------------------------- output ---
def _significant(verdict: str) -> bool:
    return verdict in (tests.REGRESSED, tests.IMPROVED)


def _margin_text(frame: pl.DataFrame) -> str:
    given = [(r["metric"], r["margin"]) for r in frame.iter_rows(named=True) if r["margin"]]
    if not given:
        return "no margin (any significant drop fails)"
    return "margin " + ", ".join(f"{md.md_text(m)} {v:g}" for m, v in given) + " (fails only beyond it)"


def _side_text(side: Side, n_tasks: int) -> str:
    s = side.summaries
    version = f" · data version {side.spec.as_of}" if side.spec.as_of else ""
    system = "" if side.label == side.system else f"system {md.md_text(side.system)} · "
    return f"**{md.md_text(side.label)}** ({system}{s.height} trajectories on {n_tasks} tasks{version})"


def gate_markdown(report: GateReport, *, top: int = 10, link: str | None = None) -> str:
    """The PR comment: verdict, one table per metric, the tasks that regressed most,
    the comparability warnings and (when given) a pinned link to the app."""
    t = report.tests
    failed = report.regressed
    head = (
        f"## Regression gate: failed: {', '.join(md.md_text(m) for m in failed)} regressed"
        if failed
        else "## Regression gate: passed: no checked metric regressed"
    )
    alpha, method = float(t["alpha"][0]), str(t["correction"][0])
    out = [
        head,
        "",
        f"Baseline {_side_text(report.baseline, len(report.tasks))} vs candidate "
        f"{_side_text(report.candidate, len(report.tasks))}, paired by task.",
        f"One-sided tests (did the candidate get worse?) at α = {alpha:g}, {method}-corrected across "
        f"{t.height} metric{'s' if t.height != 1 else ''}; {_margin_text(t)}.",
    ]
    confidence = float(t["confidence"][0])

    def label(row: dict) -> str:
        return f"{md.md_text(row['metric'])} ({row['n_tasks']} tasks)"

    for r in t.iter_rows(named=True):
        sub = t.filter(pl.col("metric") == r["metric"])
        scale = {r["metric"]: md.digits_for([r["a_mean"], r["b_mean"]])}
        out += ["", f"### {md.md_text(r['metric'])}", ""]
        out += md.pair_table(
            sub,
            label=label,
            digits=scale,
            interval=f"Difference ({100 * confidence:g}% CI)",
            significant=_significant,
        )
        out += ["", f"Test: {md.md_text(r['test'])}; {_direction(r)}"]
    worse = chg.filter_changes(report.changes, regressions_only=True)
    shown = f", the {top} worst shown" if worse.height > top else ""
    out += [
        "",
        f"### Tasks that regressed most ({worse.height} of {report.changes.height} got worse{shown})",
        "",
    ]
    if worse.is_empty():
        out.append("No task got worse.")
    elif top > 0:
        out.append(
            chg.changes_markdown(worse, report.baseline.label, report.candidate.label, limit=top).rstrip()
        )
    if report.differences:
        out += ["", "### Comparability", ""]
        out += [f"- {md.md_text(d.text)}" for d in report.differences]
    if link:
        out += ["", f"[Open this comparison in the app]({link})"]
    return "\n".join(out) + "\n"


def _direction(r: dict) -> str:
    better = "higher" if r["higher_is_better"] else "lower"
    return f"{better} is better; p is the chance of a drop this large if the candidate were no worse."


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _side_json(side: Side) -> dict:
    return {
        "spec": side.spec.text,
        "label": side.label,
        "system": side.system,
        "data_version": side.spec.as_of,
        "trajectories": side.summaries.height,
    }


def gate_json(report: GateReport, *, link: str | None = None) -> dict:
    """The gate's result as plain JSON types (``schema_version`` 1; keys in docs/gate.md)."""
    rows = [{k: _clean(v) for k, v in r.items()} for r in report.tests.iter_rows(named=True)]
    changes = [{k: _clean(v) for k, v in r.items()} for r in report.changes.iter_rows(named=True)]
    return {
        "schema_version": SCHEMA_VERSION,
        "passed": report.exit_code == 0,
        "exit_code": report.exit_code,
        "regressed": report.regressed,
        "baseline": _side_json(report.baseline),
        "candidate": _side_json(report.candidate),
        "tasks": report.tasks,
        "metrics": rows,
        "changes": changes,
        "differences": [{"reason": d.reason, "text": d.text} for d in report.differences],
        "link": link,
    }
