"""Benchmark: chart specs and the report export at "30 models" scale.

Data: contract-shaped frames (tests/_chart_frames.py) for 30 models × 24 tasks
× 8 trials = 5,760 trajectories (34,560 steps). Times, as medians:

* data conversion for the largest chart (efficiency scatter, one point per
  trajectory): our explicit ``chart_values`` (Polars → dicts, NaN → null)
  against the baseline of handing the Polars frame to Altair
  (``alt.Chart(df)``, narwhals → Arrow → JSON, max_rows disabled), same chart;
* every chart spec built (``to_dict``), with and without Vega-Lite schema
  validation (validation is what the tests use; the report validates too);
* the report: the inline JS bundle (once per process), then ``build_report``
  with SVG images and with PNG images.

Usage: ``uv run python bench/report.py [--reps 3] [--write]`` (``--write``
rewrites ``bench/RESULTS-report.md``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import altair as alt
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _chart_frames import contract_frames

from fle_core import charts as C
from fle_core.charts.base import ModelPalette
from fle_core.report import DataVersion, ReportFrames, build_report, report_charts
from fle_core.report.html import vega_javascript

TASKS = tuple(f"task_{i:02d}_throughput" for i in range(24))


def timed(fn, reps: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def scatter_baseline(summaries: pl.DataFrame) -> dict:
    """The same efficiency scatter, but Altair converts the Polars frame itself."""
    pal = ModelPalette.from_models(summaries["model"].unique())
    rows = summaries.select(
        "model", "task", pl.col("total_tokens").cast(pl.Float64), pl.col("best_reward").alias("reward")
    )
    models = sorted(rows["model"].unique())
    with alt.data_transformers.disable_max_rows():
        return (
            alt.Chart(rows)
            .mark_point(filled=True)
            .encode(
                x="total_tokens:Q",
                y="reward:Q",
                color=pal.color(models),
                shape=pal.shape_encoding(models),
                tooltip=["model:N", "task:N", "total_tokens:Q", "reward:Q"],
            )
            .to_dict()
        )


def scatter_alt_data(summaries: pl.DataFrame) -> dict:
    """Our scatter with the rows wrapped in ``alt.Data(values=...)`` (the first version)."""
    chart = C.efficiency_scatter_chart(summaries)
    chart.data = alt.Data(values=chart.data["values"])
    return chart.to_dict()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    f = contract_frames(30, tasks=TASKS, trials=8)
    f["probability_of_improvement"] = f["probability_of_improvement"].filter(
        pl.col("model_x") == f["probability_of_improvement"]["model_x"][0]
    )  # leader pairs, as the loader does
    gen_s = time.perf_counter() - t0
    s = f["summaries"]
    results: list[tuple[str, str]] = []

    ours, _ = timed(lambda: C.efficiency_scatter_chart(s).to_dict(), args.reps)
    base, _ = timed(lambda: scatter_baseline(s), args.reps)
    wrapped, _ = timed(lambda: scatter_alt_data(s), args.reps)
    results += [
        ("efficiency scatter spec, explicit `chart_values` (ours)", f"{ours * 1000:.0f} ms"),
        ("efficiency scatter spec, Altair converts the Polars frame (baseline)", f"{base * 1000:.0f} ms"),
        ("ratio baseline / ours", f"{base / ours:.2f}×"),
        ("same rows wrapped in `alt.Data(values=…)` (validated row by row)", f"{wrapped * 1000:.0f} ms"),
        ("ratio `alt.Data` / ours", f"{wrapped / ours:.1f}×"),
    ]

    frames = ReportFrames(**f)
    charts, _ = report_charts(frames)
    plain, _ = timed(lambda: [c.to_dict(validate=False) for _, _, c in charts], args.reps)
    valid, _ = timed(lambda: [c.to_dict(validate=True) for _, _, c in charts], args.reps)
    built, _ = timed(lambda: report_charts(frames), args.reps)
    results += [
        (f"build all {len(charts)} chart objects (`report_charts`)", f"{built * 1000:.0f} ms"),
        ("all specs `to_dict(validate=False)`", f"{plain * 1000:.0f} ms"),
        ("all specs `to_dict(validate=True)`", f"{valid * 1000:.0f} ms"),
        ("validation overhead (ratio)", f"{valid / plain:.2f}×"),
    ]

    t1 = time.perf_counter()
    vega_javascript()
    bundle_s = time.perf_counter() - t1
    with tempfile.TemporaryDirectory() as tmp:
        svg, files = timed(
            lambda: build_report(frames, Path(tmp) / "svg", data_version=DataVersion(1)),
            max(1, args.reps - 1),
        )
        png, _ = timed(
            lambda: build_report(frames, Path(tmp) / "png", data_version=DataVersion(1), image_format="png"),
            max(1, args.reps - 1),
        )
        html_mb = files.html.stat().st_size / 1e6
    results += [
        ("inline JS bundle (vl-convert, once per process)", f"{bundle_s:.2f} s"),
        ("`build_report`, SVG images (total)", f"{svg:.2f} s"),
        ("`build_report`, PNG images (total)", f"{png:.2f} s"),
        ("ratio PNG / SVG", f"{png / svg:.2f}×"),
        ("report.html size", f"{html_mb:.2f} MB"),
    ]

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Report and charts benchmark (`bench/report.py`)",
        "",
        f"Measured {when} on {platform.node()} (2 cores / 24 GiB, shared and noisy: other "
        f"engineers' tests ran at the same time), Python {platform.python_version()}. "
        f"Medians of {args.reps} runs (report builds: {max(1, args.reps - 1)}).",
        "",
        f"Data: 30 models × 24 tasks × 8 trials = {s.height:,} trajectories "
        f"({f['steps'].height:,} steps), generated in {gen_s:.1f} s.",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in results]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(__file__).with_name("RESULTS-report.md").write_text(text)


if __name__ == "__main__":
    main()
