"""AppTest plumbing shared by the app tests: run a page with its query parameters, read its
text and charts, and check it raised nothing."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


APP = str(ROOT / "app.py")


PAGES = ["overview", "sources", "sweeps", "monitor", "compare", "tasks", "trajectories"]


def run_page(page: str, params: dict | None = None, timeout: float = 60) -> AppTest:
    """Run ``app.py`` then switch to ``pages/<page>.py`` with the given query params."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if page == "overview":  # the first run is the page: it must see its link's parameters
        for key, value in (params or {}).items():
            at.query_params[key] = value
    at.run()
    if page != "overview":
        at.switch_page(f"pages/{page}.py")
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    return at


def texts(at: AppTest) -> str:
    """All visible text of a run (markdown, captions, alerts, titles, subheaders)."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "warning",
        "error",
        "success",
        "code",
    ):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def charts(at: AppTest) -> dict[str, tuple[dict, dict]]:
    """Every Vega-Lite chart of a run by title: (spec, {dataset name: Polars frame}).

    Streamlit moves the spec's inline datasets to Arrow IPC bytes on the proto, so
    assertions read the data the browser would draw, not the page's source.
    """
    import json

    import polars as pl

    out = {}
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        data = {d.name: pl.read_ipc_stream(d.data.data) for d in element.proto.datasets}
        heading = spec.get("title", {})
        out[heading.get("text", "") if isinstance(heading, dict) else str(heading)] = (spec, data)
    return out


def chart_rows(at: AppTest, title_start: str):
    """The (single) dataset of the chart whose title starts with ``title_start``."""
    hits = [(spec, data) for name, (spec, data) in charts(at).items() if name.startswith(title_start)]
    assert len(hits) == 1, list(charts(at))
    frames = list(hits[0][1].values())
    assert frames, "the chart carries no dataset"
    return hits[0][0], frames[0]


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
