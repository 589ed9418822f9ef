"""The self-contained report: one offline HTML file plus CSV/Parquet/Markdown/images.

``build_report(frames, out_dir, data_version=...)`` is pure over finished
frames (tests drive it directly); ``load.load_report_frames`` reads them from
the warehouse. Files written into ``out_dir``::

    report.html                  charts (interactive, JS inlined), tables, definitions, data version
    comparison.md                pairwise comparisons in the experiment-log format (and what changed)
    <frame>.csv / <frame>.parquet  summaries, model/group metrics, bootstrap frames, comparisons
    charts/<chart>.svg|png       a static image of every chart (vl-convert, offline)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import altair as alt
import polars as pl

from fle_core import charts as ch
from fle_core.charts.base import ChartError, ModelPalette, is_simulated
from fle_core.errors import FleError
from fle_core.report import spreadsheet, uncertainty
from fle_core.report.html import chart_figure, esc, markdown_html, page, table_html
from fle_core.stats.changes import changes_markdown

if TYPE_CHECKING:
    from fle_core.analysis.changes import Changes

REPORT_FILE = "report.html"
IMAGE_FORMATS = ("svg", "png")
#: The metric definitions the report embeds: docs/metrics.md, the one copy. A wheel ships
#: it inside the package (pyproject's force-include); a source checkout reads docs/.
_METRICS_PACKAGED = Path(__file__).resolve().parent / "metrics.md"
_METRICS_CHECKOUT = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


class ReportError(FleError):
    """The report could not be built from the given frames or options."""


@dataclass
class ReportFrames:
    """Finished frames from the metrics layer (contracts in docs/architecture.md).

    Only ``summaries`` is required; each missing frame just drops its charts and
    tables. ``comparison_markdown`` is the experiment-log Markdown
    (``compare.comparison_markdown``), written to ``comparison.md``.
    """

    summaries: pl.DataFrame
    model_metrics: pl.DataFrame | None = None
    group_metrics: pl.DataFrame | None = None
    interval_estimates: pl.DataFrame | None = None
    pass_at_k_curve: pl.DataFrame | None = None
    performance_profile: pl.DataFrame | None = None
    probability_of_improvement: pl.DataFrame | None = None
    comparisons: pl.DataFrame | None = None
    steps: pl.DataFrame | None = None
    comparison_markdown: str | None = None
    #: per model, Inspect trajectories that are infrastructure failures, errors, ...
    #: (``analysis.outcomes.failure_counts``); None or empty: no such section
    failures: pl.DataFrame | None = None
    #: what suite-level numbers left out (``analysis.systems.suite_note``), or None
    suite_note: str | None = None
    #: what changed between two sides (``analysis.changes.changes``); None: no such section
    changes: Changes | None = None
    #: ``bootstrap.pass_at_k_curve(..., estimator="pass_hat_k")``: pass^k with bands
    pass_hat_k_curve: pl.DataFrame | None = None
    #: ``variance.variance_components`` and ``variance.plan`` (the report's planner rows)
    variance: pl.DataFrame | None = None
    plan: pl.DataFrame | None = None
    #: ``cost.cost_estimates`` and ``cost.frontier``; ``reliability.consistency``
    cost: pl.DataFrame | None = None
    frontier: pl.DataFrame | None = None
    consistency: pl.DataFrame | None = None
    #: ``leader.leading_system``: the headline, named only when the paired tests say so
    standing: Any = None

    def tables(self) -> dict[str, pl.DataFrame]:
        """Frames exported as CSV/Parquet (steps are large and stay in the warehouse)."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("steps", "comparison_markdown", "changes", "standing")
            and getattr(self, f.name) is not None
        }
        if self.changes is not None:
            out["changes"] = self.changes.table
        return out


@dataclass
class DataVersion:
    """What the report was computed from: the warehouse sync id, dates, filters, bootstrap."""

    sync_id: int | None
    synced_at: dt.datetime | None = None
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    filters: dict[str, Any] = field(default_factory=dict)
    reps: int | None = None
    seed: int | None = None
    #: ``stats.infrastructure`` rule and the intervals' population, when the loader set them
    infrastructure: str | None = None
    population: str | None = None

    def as_rows(self) -> list[tuple[str, str]]:
        rows = [
            ("Warehouse sync id (data version)", "–" if self.sync_id is None else str(self.sync_id)),
            ("Synced at (UTC)", _when(self.synced_at)),
            ("Report generated at (UTC)", _when(self.generated_at)),
            ("Filters", json.dumps(self.filters, sort_keys=True, default=str) if self.filters else "none"),
            ("Bootstrap", "–" if self.reps is None else f"{self.reps} resamples, seed {self.seed}"),
        ]
        if self.infrastructure is not None:
            rows.append(
                ("Infrastructure failures", _INFRA_TEXT.get(self.infrastructure, self.infrastructure))
            )
        if self.population is not None:
            rows.append(("Intervals answer for", _POPULATION_TEXT.get(self.population, self.population)))
        return rows


_INFRA_TEXT = {
    "fail": "counted as failures (FLE's scorer rule, the default)",
    "exclude": "left out of every number (--infrastructure exclude)",
}
_POPULATION_TEXT = {
    "tasks": "tasks like these: the tasks are a sample (task-clustered, the default)",
    "suite": "this fixed suite: the tasks are held fixed (stratified; --population suite)",
}


def _when(value: dt.datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class ReportFiles:
    """Paths written by ``build_report``."""

    html: Path
    markdown: Path | None
    tables: list[Path]
    images: list[Path]
    chart_count: int

    def all(self) -> list[Path]:
        return [self.html, *([self.markdown] if self.markdown else []), *self.tables, *self.images]


# ---- which charts --------------------------------------------------------------


def report_charts(
    frames: ReportFrames,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
) -> tuple[list[tuple[str, str, alt.TopLevelMixin]], list[tuple[str, str]]]:
    """Every chart the given frames allow, in report order, and the ones that could not be drawn.

    Returns ``(charts, skipped)``: ``charts`` is ``[(slug, caption, chart)]``;
    ``skipped`` is ``[(caption, reason)]`` for charts whose frame exists but has
    nothing drawable (e.g. no model has a success, so the cost chart has no
    points). Only ``ChartError`` is caught, and its message is shown in the
    report, so nothing disappears silently. One palette over every model in
    the frames keeps colours the same in all charts.
    """
    f = frames
    pal = palette or ModelPalette.from_frames(
        f.summaries,
        f.model_metrics,
        f.group_metrics,
        f.interval_estimates,
        f.pass_at_k_curve,
        f.performance_profile,
        f.probability_of_improvement,
    )
    sim = is_simulated(f.summaries, f.steps) if simulated is None else simulated
    kw: dict[str, Any] = dict(palette=pal, simulated=sim)
    plan: list[tuple[str, str, Any] | None] = []  # None: a chart this report leaves out
    if f.model_metrics is not None:
        plan += [
            (
                "model_comparison",
                "Success rate per model with its 95% interval (the method is named in the chart)",
                lambda: ch.model_comparison_chart(f.model_metrics, "success_rate", **kw),
            ),
            (
                "pass_at_k",
                "pass@k from the model metrics (mean over tasks with n ≥ k)",
                lambda: ch.pass_at_k_chart(f.model_metrics, **kw),
            )
            if f.pass_at_k_curve is None
            else None,
            (
                "cost",
                "Cost: tokens per success against success rate, Pareto frontier marked",
                lambda: ch.cost_chart(f.model_metrics, **kw),
            )
            if f.frontier is None  # the frontier with intervals (uncertainty.extra_charts) replaces it
            else None,
        ]
    if f.pass_at_k_curve is not None:
        plan.append(
            (
                "pass_at_k",
                "pass@k against k with bootstrap bands",
                lambda: ch.pass_at_k_chart(f.pass_at_k_curve, **kw),
            )
        )
    plan += uncertainty.extra_charts(f, kw)
    if f.interval_estimates is not None:
        plan.append(
            (
                "interval_estimates",
                "Aggregate metrics (rliable) with 95% bootstrap CIs",
                lambda: ch.interval_estimates_chart(f.interval_estimates, **kw),
            )
        )
    if f.performance_profile is not None:
        plan.append(
            (
                "performance_profile",
                "Performance profiles with 95% bootstrap bands",
                lambda: ch.performance_profile_chart(f.performance_profile, **kw),
            )
        )
    if f.probability_of_improvement is not None and f.probability_of_improvement.height:
        plan.append(
            (
                "probability_of_improvement",
                "Probability of improvement per model pair",
                lambda: ch.probability_of_improvement_chart(f.probability_of_improvement, **kw),
            )
        )
    plan += [
        (
            "reward_distribution",
            "Best and final reward per trajectory, per model",
            lambda: ch.reward_distribution_chart(f.summaries, **kw),
        ),
        (
            "efficiency",
            "Tokens against best reward, one point per trajectory",
            lambda: ch.efficiency_scatter_chart(f.summaries, **kw),
        ),
    ]
    if f.group_metrics is not None:
        plan += [
            (
                "task_success_heatmap",
                "Success rate per task and model",
                lambda: ch.task_heatmap_chart(f.group_metrics, "success_rate", **kw),
            ),
            (
                "task_outcomes",
                "None / partial / full: how many trials solved each task",
                lambda: ch.classification_heatmap_chart(f.group_metrics, **kw),
            ),
            (
                "passes_per_task",
                "Passing trials per task",
                lambda: ch.pass_histogram_chart(f.group_metrics, **kw),
            ),
        ]
        top_k = _largest_k(f.group_metrics)
        if top_k:
            plan.append(
                (
                    f"task_pass_at_{top_k}_heatmap",
                    f"pass@{top_k} per task and model",
                    lambda: ch.task_heatmap_chart(f.group_metrics, f"pass_at_{top_k}", **kw),
                )
            )
    if f.steps is not None and f.steps.height:
        plan.append(
            (
                "learning_curves",
                "Learning curves: mean step reward over steps and time",
                lambda: ch.learning_curves_chart(f.steps, **kw),
            )
        )
    charts, skipped = [], []
    for slug, caption, build in (p for p in plan if p is not None):
        try:
            charts.append((slug, caption, build()))
        except ChartError as exc:
            skipped.append((caption, exc.message))
    return charts, skipped


def _largest_k(group_metrics: pl.DataFrame) -> int | None:
    ks = [
        int(c.removeprefix("pass_at_"))
        for c in group_metrics.columns
        if c.startswith("pass_at_") and c.removeprefix("pass_at_").isdigit()
    ]
    usable = [k for k in ks if group_metrics.get_column(f"pass_at_{k}").is_not_null().any() and k > 1]
    return max(usable) if usable else None


# ---- exports ---------------------------------------------------------------------


def write_tables(frames: ReportFrames, out_dir: Path) -> list[Path]:
    written = []
    for name, frame in frames.tables().items():
        csv, parquet = out_dir / f"{name}.csv", out_dir / f"{name}.parquet"
        spreadsheet.write_csv(frame, csv)
        frame.write_parquet(parquet)
        written += [csv, parquet]
    return written


def write_images(
    specs: list[tuple[str, dict]], out_dir: Path, image_format: str
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Static copies of every chart, rendered offline by vl-convert.

    Returns ``(written, failed)``, ``failed`` as ``[(slug, reason)]``. Vega cuts a
    long label inside an emoji (``deepseek-🐳-v3``), leaving half a UTF-16
    surrogate pair that vl-convert cannot read; such a chart is drawn again
    with label truncation off. A chart that still fails loses only its image
    (the report says so), never the report.
    """
    import vl_convert as vlc

    if image_format not in IMAGE_FORMATS:
        raise ReportError(f"Unknown image format {image_format!r}", hint="use svg or png")
    folder = out_dir / "charts"
    folder.mkdir(exist_ok=True)
    written, failed = [], []
    for slug, spec in specs:
        path = folder / f"{slug}.{image_format}"
        for attempt in (spec, _untruncated(spec)):
            try:
                if image_format == "svg":
                    path.write_text(vlc.vegalite_to_svg(attempt), encoding="utf-8")
                else:
                    path.write_bytes(vlc.vegalite_to_png(attempt, scale=1.5))
            except ValueError as exc:
                reason = str(exc).strip().splitlines()
                continue
            written.append(path)
            break
        else:
            failed.append((slug, reason[1] if len(reason) > 1 else (reason or ["unknown"])[0]))
    return written, failed


def _untruncated(spec: Any) -> Any:
    """``spec`` with every text limit off (0 = no limit), so no label is cut."""
    if isinstance(spec, list):
        return [_untruncated(v) for v in spec]
    if not isinstance(spec, dict):
        return spec
    out: dict[str, Any] = {
        k: 0 if k in ("labelLimit", "titleLimit", "limit") else _untruncated(v) for k, v in spec.items()
    }
    if "$schema" in spec:  # the top level: no limits by default either
        config: dict[str, Any] = out.setdefault("config", {})
        for part in ("axis", "legend", "header"):
            config.setdefault(part, {})["labelLimit"] = 0
        config.setdefault("title", {})["limit"] = 0
    return out


def definitions_markdown() -> str:
    """The metric definitions (docs/metrics.md), from the package or the source checkout."""
    for path in (_METRICS_PACKAGED, _METRICS_CHECKOUT):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise ReportError(
        "the metric definitions (docs/metrics.md) are missing from this installation",
        hint="reinstall fle-core, or pass definitions= to build_report",
    )


# ---- the HTML body -------------------------------------------------------------------

_LEADERBOARD = [
    "model",
    "n_tasks",
    "n",
    "successes",
    "success_rate",
    "success_se",
    "success_ci_low",
    "success_ci_high",
    "success_ci_method",
    "pass_at_1",
    "pass_at_3",
    "pass_at_5",
    "pass_at_8",
    "reward_iqm",
    "reward_mean",
    "tokens_per_success",
    "cost_per_success",
    "mean_steps",
]
_COMPARISON = [
    "model_a",
    "model_b",
    "task",
    "metric",
    "a_mean",
    "b_mean",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "change_pct",
    "effect_size",
    "effect_name",
    "test",
    "p_value",
    "p_adjusted",
    "correction",
    "prob_improvement",
    "verdict",
]


def _percent_columns(frame: pl.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if c.startswith(("success_rate", "success_ci", "pass_at_", "pass_hat_", "error_rate"))
        and not c.endswith("_tasks")
    ]


def _sections(
    frames: ReportFrames,
    figures: list[str],
    skipped: list[tuple[str, str]],
    version: DataVersion,
    definitions: str,
    title: str,
    simulated: bool,
    files: list[str],
) -> str:
    parts = [f"<h1>{esc(title)}</h1>"]
    if simulated:
        parts.append(
            '<p class="simulated"><strong>Simulated data.</strong> Some or all trajectories '
            "were written by the simulator (calibrated demo agents), not by real models.</p>"
        )
    n_models = frames.summaries.get_column("model").n_unique() if "model" in frames.summaries.columns else 0
    parts.append(
        f'<p class="note">{frames.summaries.height} trajectories, {n_models} models. '
        "Charts are interactive (hover for values); everything in this file works offline.</p>"
    )
    parts.append(
        '<nav><ul><li><a href="#version">Data version</a></li>'
        '<li><a href="#leaderboard">Leaderboard</a></li>'
        + ('<li><a href="#changes">What changed</a></li>' if frames.changes is not None else "")
        + '<li><a href="#comparisons">Comparisons</a></li><li><a href="#charts">Charts</a></li>'
        '<li><a href="#definitions">Metric definitions</a></li>'
        '<li><a href="#files">Files</a></li></ul></nav>'
    )
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in version.as_rows())
    parts.append(f'<h2 id="version">Data version</h2><table class="version">{rows}</table>')
    parts.append('<h2 id="leaderboard">Leaderboard</h2>')
    if frames.standing is not None:
        parts.append(uncertainty.headline(frames.standing, frames.model_metrics))
    if frames.suite_note:
        parts.append(f'<p class="note">{esc(frames.suite_note)}</p>')
    if frames.model_metrics is not None:
        lb = frames.model_metrics.sort("success_rate", descending=True, nulls_last=True)
        parts.append(
            table_html(lb, columns=_LEADERBOARD, percent=_percent_columns(lb), css_class="data leaderboard")
        )
        parts.append(uncertainty.leaderboard_notes(frames, version.population))
    else:
        parts.append('<p class="note">No model metrics were given.</p>')
    if frames.failures is not None and frames.failures.height:
        infra = (
            "Infrastructure failures are left out of every number above (--infrastructure exclude); "
            "errored trajectories count as failures. "
            if version.infrastructure == "exclude"
            else "Errored and infrastructure-failed trajectories count as failures above (as FLE's "
            "scorer decides; --infrastructure exclude leaves the latter out). "
        )
        parts.append(
            '<h3 id="failures">Failures per model (Inspect logs)</h3><p class="note">'
            + infra
            + "<em>infrastructure</em>: the game server, RCON, the server pool or the model API failed, "
            "not the agent; <em>missing</em>: samples a failed or killed log never produced. Check these "
            "before trusting a pass@k.</p>" + table_html(frames.failures, css_class="data failures")
        )
    if frames.changes is not None:
        parts.append(_changes_html(frames.changes))
    parts.append('<h2 id="comparisons">Comparisons</h2>')
    if frames.comparisons is not None and frames.comparisons.height:
        parts.append(table_html(frames.comparisons, columns=_COMPARISON, css_class="data comparisons"))
    else:
        parts.append('<p class="note">No pairwise comparisons (fewer than two models or none given).</p>')
    if frames.group_metrics is not None:
        gm = frames.group_metrics
        parts.append(
            "<details><summary>Per-task metrics (model × task)</summary>"
            + table_html(gm, percent=_percent_columns(gm), css_class="data group")
            + "</details>"
        )
    parts.append(uncertainty.sections(frames))
    parts.append('<h2 id="charts">Charts</h2>' + "".join(figures))
    if skipped:
        items = "".join(f"<li>{esc(c)}: {esc(r)}</li>" for c, r in skipped)
        parts.append(f'<p class="note">Not drawn (nothing to plot):</p><ul class="skipped">{items}</ul>')
    parts.append(f'<h2 id="definitions">Metric definitions</h2>{markdown_html(definitions)}')
    items = "".join(f"<li><code>{esc(f)}</code></li>" for f in files)
    parts.append(f'<h2 id="files">Files beside this report</h2><ul>{items}</ul>')
    return "\n".join(parts)


def _changes_title(found: Changes) -> str:
    return f"What changed: {found.baseline.label} → {found.candidate.label}"


def _changes_html(found: Changes) -> str:
    """The What changed table (the same Markdown as the gate's and the app's), with its warnings."""
    notes = "".join(f"<li>{esc(d.text)}</li>" for d in found.differences)
    return (
        f'<h2 id="changes">{esc(_changes_title(found))}</h2>'
        + (f'<ul class="warnings">{notes}</ul>' if notes else "")
        + markdown_html(changes_markdown(found.table, found.baseline.label, found.candidate.label))
    )


def build_report(
    frames: ReportFrames,
    out_dir: str | Path,
    *,
    data_version: DataVersion,
    title: str = "FLE evaluation report",
    image_format: str = "svg",
    definitions: str | None = None,
    palette: ModelPalette | None = None,
) -> ReportFiles:
    """Write the report and its companion files into ``out_dir``; return their paths.

    Pure over ``frames`` apart from writing files: no warehouse access, no
    randomness. ``definitions`` defaults to ``definitions_markdown()``.
    """
    if not isinstance(frames.summaries, pl.DataFrame) or frames.summaries.height == 0:
        raise ReportError(
            "There are no trajectory summaries to report on",
            hint="check the filters (sweep, models, tasks, source), or sync first",
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    simulated = is_simulated(frames.summaries, frames.steps)
    charts, skipped = report_charts(frames, palette, simulated)
    specs = [(slug, chart.to_dict(validate=True)) for slug, _, chart in charts]
    figures = [
        chart_figure(slug, caption, spec) for (slug, caption, _), (_, spec) in zip(charts, specs, strict=True)
    ]
    tables = write_tables(frames, out)
    images, image_failures = write_images(specs, out, image_format)
    captions = {slug: caption for slug, caption, _ in charts}
    skipped += [
        (captions[slug], f"its static image could not be drawn ({why})") for slug, why in image_failures
    ]
    markdown = None
    md_text = frames.comparison_markdown
    if md_text is None and frames.comparisons is not None and frames.comparisons.height:
        from fle_core.stats.compare import comparison_markdown

        md_text = comparison_markdown(frames.comparisons)
    if frames.changes is not None:
        found = frames.changes
        md_text = (md_text or "") + (
            f"\n### {_changes_title(found)}\n\n"
            + "".join(f"- {d.text}\n" for d in found.differences)
            + ("\n" if found.differences else "")
            + changes_markdown(found.table, found.baseline.label, found.candidate.label)
        )
    if md_text is not None:
        markdown = out / "comparison.md"
        markdown.write_text(_markdown_document(md_text, data_version, simulated), encoding="utf-8")
    names = [p.relative_to(out).as_posix() for p in [*([markdown] if markdown else []), *tables, *images]]
    body = _sections(
        frames,
        figures,
        skipped,
        data_version,
        definitions if definitions is not None else definitions_markdown(),
        title,
        simulated,
        names,
    )
    html_path = out / REPORT_FILE
    html_path.write_text(page(title + (" (simulated data)" if simulated else ""), body), encoding="utf-8")
    return ReportFiles(html_path, markdown, tables, images, len(charts))


def _markdown_document(tables_md: str, version: DataVersion, simulated: bool) -> str:
    head = ["## Model comparison", ""]
    if simulated:
        head += ["**Simulated data**: some or all trajectories were written by the simulator.", ""]
    head += [f"- {k}: {v}" for k, v in version.as_rows()] + [""]
    return "\n".join(head) + "\n" + tables_md
