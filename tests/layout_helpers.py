"""The browser layout check of one data shape (``check_shape``): every page and tab at three
window sizes, run by ``test_layout_browser.py`` and ``test_layout_browser_30_models.py``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from browser_helpers import (
    ROOT,
    app_env,
    free_port,
    full_screenshot,
    layout_problems,
    page_url,
    ready,
    serve,
    settle,
)
from layout_data import build

ARTIFACTS = ROOT / "artifacts" / "layout"


#: The window sizes every view is checked at, in this order (the first is the one a tab opens at).
VIEWPORTS = {"1400x900": (1400, 900), "1024x768": (1024, 768), "1920x1080": (1920, 1080)}


#: The sizes saved as screenshots (1920 px is checked, not saved: it reads like 1400 px, wider).
SCREENSHOTS = ("1400x900", "1024x768")


#: How long a view may take to load or settle (several tabs load at once on two shared cores).
WAIT_MS = 180_000


def every(_m: int, _t: int) -> bool:
    return True


@dataclass(frozen=True)
class Group:
    """One browser tab: a page loaded by URL, then its other tabs opened by clicking them."""

    path: str
    query: dict[str, str]
    views: tuple[tuple[str, str | None], ...]  # (screenshot name, tab label to click; None: as loaded)
    shapes: Callable[[int, int], bool] = every


GROUPS = [
    # its tables depend on the models (rows, name lengths), not on the number of tasks
    Group("", {}, (("overview", None),), lambda m, t: t == 2),
    # the same layout whatever the shape: sources, sync history, demo data; the sweep form
    Group("sources", {}, (("sources", None),), lambda m, t: (m, t) == (6, 2)),
    Group("sweeps", {}, (("sweeps", None),), lambda m, t: (m, t) == (30, 24)),
    Group("monitor", {"mon_live": "0"}, (("monitor", None),)),
    # Every chart and table of Compare has one row or series per model, none per task (rewards
    # across tasks are pooled as best ÷ quota; per-task lists are text that wraps), so it is
    # checked on the 24-task shapes only. 200 bootstrap resamples (a valid cmp_reps): the
    # intervals differ a little, the layout does not, and the bootstrap is most of what the
    # server computes for this test.
    Group(
        "compare",
        {"cmp_reps": "200"},
        (
            ("compare-leaderboard", None),
            ("compare-passk", "pass@k"),
            ("compare-pairwise", "Pairwise"),
            ("compare-rewards", "Rewards"),
            ("compare-cost", "Cost"),
            ("compare-reliability", "Reliability"),
            ("compare-planner", "Planner"),
            ("compare-export", "Export"),
        ),
        lambda m, t: t == 24,
    ),
    Group(
        "tasks",
        {},
        (
            ("tasks-heatmap", None),
            ("tasks-classification", "None / partial / full"),
            ("tasks-difficulty", "Difficulty ranking"),
        ),
    ),
    # one trajectory: its layout follows the longest names, not how many models or tasks exist
    Group("trajectories", {}, (("trajectories", None),), lambda m, t: (m, t) in ((1, 2), (30, 24))),
]


#: JS: the tab named ``label`` is selected and its panel has drawn its content (tabs are lazy).
TAB_OPEN_JS = """(label) => {
  const tab = [...document.querySelectorAll('[role=tab]')].find((e) => e.innerText.trim() === label);
  if (!tab || tab.getAttribute('aria-selected') !== 'true') return false;
  const panel = document.getElementById(tab.getAttribute('aria-controls'));
  return !!panel && panel.querySelector('[data-testid=stElementContainer]') !== null;
}"""


def open_tab(page, label: str) -> None:
    """Click a page's tab (a rerun in the same session); returns without waiting for it."""
    page.get_by_role("tab", name=label, exact=True).click()


#: JS: the drawn width of every visible chart, to tell when they have re-fit after a resize.
WIDTHS_JS = """() => [...document.querySelectorAll('[data-testid=stVegaLiteChart]')]
  .filter((e) => e.offsetParent !== null)
  .map((e) => { const s = e.querySelector('svg.marks, canvas.marks'); return s ? s.getBoundingClientRect().width : -1; })"""


def refit(page, budget_ms: int = 5_000) -> None:
    """Wait until the charts have re-fit to a new window width: their widths stop changing."""
    last, waited = page.evaluate(WIDTHS_JS), 0
    while waited < budget_ms:
        page.wait_for_timeout(100)
        waited += 100
        now = page.evaluate(WIDTHS_JS)
        if now == last and -1 not in now:
            return
        last = now


def check_sizes(page, name: str, folder: Path) -> list[str]:
    """The view as it is now, at every window size: layout problems, and a screenshot each."""
    found: list[str] = []
    settle(page, timeout_ms=WAIT_MS)
    page.wait_for_timeout(150)  # a rerun (URL-state write-back) may start right after the first
    for size, (w, h) in VIEWPORTS.items():
        if page.viewport_size != {"width": w, "height": h}:
            page.set_viewport_size({"width": w, "height": h})
            refit(page)  # charts re-fit their width on resize
        settle(page, timeout_ms=WAIT_MS)
        found += [f"{size} {name}: {p}" for p in layout_problems(page)]
        if size in SCREENSHOTS:
            folder.mkdir(parents=True, exist_ok=True)
            full_screenshot(page, str(folder / f"{size}-{name}.png"))
    first = next(iter(VIEWPORTS.values()))
    page.set_viewport_size({"width": first[0], "height": first[1]})
    return found


def shape_ids(shapes: list[tuple[int, int]]) -> list[str]:
    return [f"{m}models-{t}tasks" for m, t in shapes]


def check_shape(browser, tmp_path: Path, n_models: int, n_tasks: int) -> None:
    """Every view of one data shape at every window size; fails listing every problem found."""
    home = tmp_path / "ws"
    build(home, n_models, n_tasks)
    shape = f"{n_models}models-{n_tasks}tasks"
    folder = ARTIFACTS / shape
    groups = [g for g in GROUPS if g.shapes(n_models, n_tasks)]
    found: list[str] = []
    with open(tmp_path / "streamlit.log", "w") as log:
        server = serve(app_env(home, tmp_path), free_port(), log, home)
        base, _ = next(server)
        w, h = next(iter(VIEWPORTS.values()))
        context = browser.new_context(viewport={"width": w, "height": h})
        try:
            tabs = []
            for group in groups:  # every page starts loading at once, each in its own tab
                page = context.new_page()
                page.goto(page_url(base, group.path, group.query), wait_until="commit")
                tabs.append([page, group, 0])
            while tabs:  # round robin: while one tab is checked, the next views load in the others
                for entry in list(tabs):
                    page, group, i = entry
                    name, label = group.views[i]
                    if label is None:  # the tabs load side by side: give a busy machine time
                        ready(page, timeout_ms=WAIT_MS)
                    else:
                        page.wait_for_function(TAB_OPEN_JS, arg=label, timeout=WAIT_MS, polling=100)
                    t0 = time.perf_counter()
                    found += check_sizes(page, name, folder)
                    if os.environ.get("LAYOUT_TIMING"):
                        print(f"{shape} {name}: checked in {time.perf_counter() - t0:.1f} s", flush=True)
                    if i + 1 < len(group.views):
                        open_tab(page, group.views[i + 1][1] or "")
                        entry[2] = i + 1
                    else:
                        page.close()
                        tabs.remove(entry)
        finally:
            context.close()
            server.close()
    assert not found, f"{len(found)} layout problem(s) on {shape}:\n" + "\n".join(found)
