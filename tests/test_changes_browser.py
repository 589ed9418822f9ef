"""Compare's "What changed" tab in real headless Chromium: 1, 24 and 100 tasks, two window sizes.

For each warehouse (two systems, 8 trials per task, synced for real) the app is
served and the tab opened at 1400×900 and 1024×768. The test fails on what a
person would notice: an exception, metric labels cut off, the task, counts,
change and flip columns not all visible without scrolling sideways, a short
table that hides rows behind a scrollbar or a long one that runs off the page.
The table's "side by side" link is then followed: the Trajectories page must
show both trajectories. Screenshots go to ``artifacts/changes/`` for a person to
flip through. Locally it skips without Chromium; under CI a skip is a failure.
"""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import urlencode

import pytest
from browser_helpers import ROOT, app_env, browser, free_port, full_screenshot, ready, serve, settle
from gate_fixtures import add_source, outcome_rows

from fle_core.tasks import default_tasks

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]
__all__ = ["browser"]  # the module-scoped Chromium fixture

ARTIFACTS = ROOT / "artifacts" / "changes"
VIEWPORTS = {"1400x900": (1400, 900), "1024x768": (1024, 768)}
#: widths of the columns that must be visible without scrolling (pages/_ui/changes.py COLUMNS)
FIRST_COLUMNS = {"task": 220, "counts": 100, "change": 80, "flip": 130}
FIRST_HEADERS = ["Task", "Solved A → B", "Change (pts)", "Flip"]


def _build(home: Path, n_tasks: int) -> None:
    rng = random.Random(n_tasks)
    lab = sorted(k for k, t in default_tasks().items() if t.kind == "throughput")
    tasks = lab[:n_tasks] if n_tasks <= len(lab) else [f"custom_{i:03d}_throughput" for i in range(n_tasks)]
    quotas = {t: 16.0 for t in tasks if t not in lab}
    home.mkdir(parents=True)
    if quotas:
        (home / "config.toml").write_text("".join(f"[tasks.{t}]\nquota = 16\n" for t in quotas))
    outcomes = {}
    for t in tasks:
        pa = rng.uniform(0.1, 0.9)
        pb = min(1.0, max(0.0, pa + rng.choice([-0.5, -0.2, 0.0, 0.1, 0.3])))
        outcomes[("gpt-4o", t)] = [rng.random() < pa for _ in range(8)]
        outcomes[("gpt-4o-next", t)] = [rng.random() < pb for _ in range(8)]
    add_source(home, home.parent / "runs.db", outcome_rows(outcomes, quotas=quotas), with_cli=False)


def _problems(page, n_tasks: int) -> list[str]:
    out = []
    if page.locator("[data-testid=stException]").count():
        out.append("the page shows a Python exception")
    cut = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=stMetricLabel]')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"
    )
    if cut:
        out.append(f"metric labels cut off: {cut}")
    grid = page.locator("[data-testid=stDataFrame]").first
    box = grid.bounding_box()
    if box is None:
        return [*out, "no table"]
    need = sum(FIRST_COLUMNS.values())
    if box["width"] < need:
        out.append(f"the table is {box['width']:.0f} px wide: task, counts, change and flip need {need} px")
    heads = page.evaluate(  # the grid's accessible header row, in column order
        "() => [...document.querySelectorAll('[data-testid=stDataFrame] th')].map(t => t.innerText)"
    )
    if heads[:4] != FIRST_HEADERS:
        out.append(f"the first columns are {heads[:4]}, not {FIRST_HEADERS}")
    if box["x"] + box["width"] > page.viewport_size["width"]:
        out.append("the table runs past the window's right edge")
    rows_shown = (box["height"] - 40) / 35  # header ≈ 36 px, rows 35 px
    if n_tasks <= 30 and rows_shown < n_tasks - 0.5:
        out.append(f"{n_tasks} rows, but the table shows only {rows_shown:.1f} without scrolling")
    if n_tasks > 30 and box["height"] > 800:
        out.append(f"{n_tasks} rows make a {box['height']:.0f} px table: it should scroll inside the page")
    return out


@pytest.mark.parametrize("n_tasks", [1, 24, 100])
def test_what_changed_reads_well_and_opens_the_trajectories(browser, tmp_path, n_tasks):
    home = tmp_path / "ws"
    _build(home, n_tasks)
    from fle_core.analysis.changes import changes
    from fle_core.names import short_task
    from fle_core.workspace import Workspace

    table = changes(Workspace.open(home), "gpt-4o", "gpt-4o-next").table
    assert table.height == n_tasks
    query = urlencode({"cmp_tab": "What changed", "cmp_chg_a": "gpt-4o", "cmp_chg_b": "gpt-4o-next"})
    problems: list[str] = []
    with open(tmp_path / "app.log", "w") as log:
        gen = serve(app_env(home, tmp_path), free_port(), log, home)
        base, _ = next(gen)
        try:
            for name, (w, h) in VIEWPORTS.items():
                page = browser.new_page(viewport={"width": w, "height": h})
                page.goto(f"{base}/compare?{query}", wait_until="domcontentloaded")
                ready(page)
                settle(page)
                page.wait_for_timeout(300)
                settle(page)
                page.wait_for_selector("[data-testid=stDataFrame]", timeout=30_000)
                problems += [f"{n_tasks} tasks, {name}: {p}" for p in _problems(page, n_tasks)]
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                full_screenshot(page, str(ARTIFACTS / f"{n_tasks}-tasks-{name}.png"))
                page.close()
            # the worst row's "side by side" link, as the table builds it
            first = table.row(0, named=True)
            link = "trajectories?" + urlencode({"trj_id": first["a_key"], "trj_other": first["b_key"]})
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/{link}", wait_until="domcontentloaded")
            ready(page)
            settle(page)
            heads = page.locator("[data-testid=stMainBlockContainer] h3").all_inner_texts()
            short = short_task(first["task"])
            assert heads == [f"gpt-4o · {short}", f"gpt-4o-next · {short}"], heads
            assert not page.locator(
                "[data-testid=stAlertContentWarning]"
            ).count()  # no link parameter ignored
            page.screenshot(path=str(ARTIFACTS / f"{n_tasks}-tasks-side-by-side.png"))
            page.close()
        finally:
            gen.close()
    assert problems == []
