"""Compare's new panels and the infrastructure switch, looked at in real headless Chromium.

For 2, 8 and 30 systems (× 24 tasks, with the dollar costs and infrastructure failures an
Inspect sync records: ``layout_data.build(..., inspect=True)``), at 1400×900 and
1024×768: the leaderboard's headline, pass@k over pass^k, the cost–success frontier,
Reliability, Planner, and the Tasks cells, each checked by ``layout_check.js`` (plot
areas, clipped titles and legends, charts past their column, …) and saved under
``artifacts/uncertainty/<shape>/`` for a person to flip through. Then the switch: the
same page with ``?cmp_infra=exclude`` shows other numbers, and says what it left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import ROOT, app_env, browser, check_view, free_port, page_url, serve
from layout_data import build

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1200)]
__all__ = ["browser"]  # the module-scoped Chromium fixture

ARTIFACTS = ROOT / "artifacts" / "uncertainty"
VIEWPORTS = {"1400x900": (1400, 900), "1024x768": (1024, 768)}
BOTH, WIDE = tuple(VIEWPORTS), ("1400x900",)
#: (name, path, query, viewports). The Tasks grids and the leaderboard's older
#: interval-estimates grid (two 260 px panels a row) are wider than a 1024 px window's
#: column at 30 systems whatever this issue does (a 20 px column per system): they are
#: checked at 1400 px, where the switch's effect on them is the point.
VIEWS = [
    ("passk", "compare", {"cmp_tab": "pass@k"}, BOTH),
    ("cost", "compare", {"cmp_tab": "Cost"}, BOTH),
    ("reliability", "compare", {"cmp_tab": "Reliability"}, BOTH),
    ("planner", "compare", {"cmp_tab": "Planner"}, BOTH),
    (
        "planner-difference",
        "compare",
        {"cmp_tab": "Planner", "cmp_plan": "difference", "cmp_target": "0.2"},
        BOTH,
    ),
    ("cost-without-infrastructure", "compare", {"cmp_tab": "Cost", "cmp_infra": "exclude"}, BOTH),
    ("leaderboard", "compare", {}, WIDE),
    ("tasks-heatmap", "tasks", {}, WIDE),
    (
        "tasks-outcomes-without-infrastructure",
        "tasks",
        {"tsk_tab": "None / partial / full", "tsk_infra": "exclude"},
        WIDE,
    ),
]


def _page_text(page) -> str:
    return page.locator("[data-testid=stApp]").inner_text()


@pytest.mark.parametrize("n_models", [2, 8, 30])
def test_new_panels_read_well_and_the_switch_changes_the_numbers(browser, tmp_path, n_models):
    home = tmp_path / "ws"
    build(home, n_models, 24, inspect=True)
    shape = f"{n_models}systems-24tasks"
    found: list[str] = []
    with open(tmp_path / "streamlit.log", "w") as log:
        server = serve(app_env(home, tmp_path), free_port(), log, home)
        base, _ = next(server)
        try:
            for size, (w, h) in VIEWPORTS.items():
                context = browser.new_context(viewport={"width": w, "height": h})
                page = context.new_page()
                for name, path, query, sizes in VIEWS:
                    if size not in sizes:
                        continue
                    shot = ARTIFACTS / shape / f"{size}-{name}.png"
                    found += [
                        f"{size} {name}: {p}" for p in check_view(page, page_url(base, path, query), shot)
                    ]
                context.close()
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            check_view(page, page_url(base, "compare", {}), ARTIFACTS / shape / "switch-counted.png")
            counted = _page_text(page)
            check_view(
                page,
                page_url(base, "compare", {"cmp_infra": "exclude"}),
                ARTIFACTS / shape / "switch-left-out.png",
            )
            left_out = _page_text(page)
            assert "cmp_infra=exclude" in page.url
            context.close()
        finally:
            server.close()
    assert not found, f"{len(found)} layout problem(s) on {shape}:\n" + "\n".join(found)
    assert "Default, FLE's rule" in counted and "count as failed attempts" in counted
    assert re.search(r"Left out: \d+ infrastructure failures", left_out)
    # the headline's rates moved (the tables are drawn on a canvas; the headline is text)
    headline = lambda text: next(line for line in text.splitlines() if line.startswith("Leader:"))
    assert re.search(r"\d+\.\d%", headline(counted)) and headline(counted) != headline(left_out)
    shots = [ARTIFACTS / shape / f"{size}-{name}.png" for name, _, _, sizes in VIEWS for size in sizes]
    assert all(Path(p).exists() for p in shots)
