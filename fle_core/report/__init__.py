"""The self-contained report: one offline HTML file plus CSV/Parquet/Markdown/images.

* ``build``: ``build_report(frames, out_dir, data_version=...)``, pure over finished frames;
* ``load``: ``load_report_frames(ws, ...)``, the warehouse → frames loader the CLI uses;
* ``html``: the page, tables and a small Markdown renderer (everything user-derived escaped);
* ``visualizer``: ``ResultsVisualizer``, the old framework's plotting names over the
  chart builders (and ``create_report`` over ``build_report``).
"""

from fle_core.report.build import (
    IMAGE_FORMATS,
    REPORT_FILE,
    DataVersion,
    ReportError,
    ReportFiles,
    ReportFrames,
    build_report,
    report_charts,
)
from fle_core.report.load import DEFAULT_REPS, DEFAULT_SEED, load_report_frames

__all__ = [
    "DEFAULT_REPS",
    "DEFAULT_SEED",
    "IMAGE_FORMATS",
    "REPORT_FILE",
    "DataVersion",
    "ReportError",
    "ReportFiles",
    "ReportFrames",
    "build_report",
    "load_report_frames",
    "report_charts",
]
