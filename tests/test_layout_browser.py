"""Layout in real headless Chromium: every page and tab, at two window sizes, on six data shapes.

For warehouses with 1, 6 and 30 models × 2 and 24 tasks (``layout_data.build``), one
app server per warehouse and one browser for the module open every page and tab
at 1400×900 and 1920×1080 and run ``layout_check.js`` on every visible chart. It
fails when a plot area is smaller than a readable minimum, a title or legend is
clipped or shortened, axis labels of different series are identical after
truncation (or overprint, or are dropped), a chart runs past its column, a chart
has no marks, or points sit outside their plot. Every view is saved as a
screenshot under ``artifacts/layout/<shape>/`` so a person can flip through them.
Locally it skips without Chromium; under CI a skip is a failure (conftest).
The 30-model shapes run from ``test_layout_browser_30_models.py``, so the two
halves can run on different test workers.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
from browser_helpers import ARGS, CHROMIUM, ROOT, app_env, free_port, full_screenshot, ready, serve, settle
from layout_data import build

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

ARTIFACTS = ROOT / "artifacts" / "layout"
CHECK_JS = (Path(__file__).parent / "layout_check.js").read_text()
#: Smallest readable plot area and the smallest height of one row of a discrete y axis.
LIMITS = {"minWidth": 150, "minHeight": 60, "minBand": 12}
VIEWPORTS = {"1400x900": (1400, 900), "1920x1080": (1920, 1080)}
SHAPES = [(1, 2), (1, 24), (6, 2), (6, 24)]
#: (name, url path, query parameters): every page, and every tab through its URL parameter.
VIEWS = [
    ("overview", "", {}),
    ("sources", "sources", {}),
    ("sweeps", "sweeps", {}),
    ("monitor", "monitor", {"mon_live": "0"}),
    ("compare-leaderboard", "compare", {}),
    ("compare-passk", "compare", {"cmp_tab": "pass@k"}),
    ("compare-pairwise", "compare", {"cmp_tab": "Pairwise"}),
    ("compare-rewards", "compare", {"cmp_tab": "Rewards"}),
    ("compare-cost", "compare", {"cmp_tab": "Cost"}),
    ("compare-reliability", "compare", {"cmp_tab": "Reliability"}),
    ("compare-planner", "compare", {"cmp_tab": "Planner"}),
    ("compare-export", "compare", {"cmp_tab": "Export"}),
    ("tasks-heatmap", "tasks", {}),
    ("tasks-classification", "tasks", {"tsk_tab": "None / partial / full"}),
    ("tasks-difficulty", "tasks", {"tsk_tab": "Difficulty ranking"}),
    ("trajectories", "trajectories", {}),
]


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (closed after it: a later test's own sync Playwright
    cannot start while this one's event loop runs)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _url(base: str, path: str, query: dict[str, str]) -> str:
    return f"{base}/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")


def check_view(page, url: str, shot: Path) -> list[str]:
    """Open ``url``, wait until every chart has drawn, screenshot it, return layout problems."""
    page.goto(url, wait_until="domcontentloaded")
    ready(page)
    settle(page)
    page.wait_for_timeout(150)  # a rerun (URL-state write-back) may start right after the first
    settle(page)
    problems = [f"{p['chart']}: {p['problem']}" for p in page.evaluate(CHECK_JS, LIMITS)]
    if page.locator("[data-testid=stException]").count():
        problems.append("the page shows a Python exception")
    shot.parent.mkdir(parents=True, exist_ok=True)
    full_screenshot(page, str(shot))
    return problems


def shape_ids(shapes: list[tuple[int, int]]) -> list[str]:
    return [f"{m}models-{t}tasks" for m, t in shapes]


@pytest.mark.parametrize(("n_models", "n_tasks"), SHAPES, ids=shape_ids(SHAPES))
def test_every_page_reads_well(browser, tmp_path, n_models, n_tasks):
    check_shape(browser, tmp_path, n_models, n_tasks)


def check_shape(browser, tmp_path: Path, n_models: int, n_tasks: int) -> None:
    """Every view of one data shape at both window sizes; fails listing every problem found."""
    home = tmp_path / "ws"
    build(home, n_models, n_tasks)
    shape = f"{n_models}models-{n_tasks}tasks"
    found: list[str] = []
    with open(tmp_path / "streamlit.log", "w") as log:
        server = serve(app_env(home, tmp_path), free_port(), log, home)
        base, _ = next(server)
        try:
            for size, (w, h) in VIEWPORTS.items():
                context = browser.new_context(viewport={"width": w, "height": h})
                page = context.new_page()
                for name, path, query in VIEWS:
                    shot = ARTIFACTS / shape / f"{size}-{name}.png"
                    found += [f"{size} {name}: {p}" for p in check_view(page, _url(base, path, query), shot)]
                context.close()
        finally:
            server.close()
    assert not found, f"{len(found)} layout problem(s) on {shape}:\n" + "\n".join(found)
