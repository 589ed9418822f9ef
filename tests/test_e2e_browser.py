"""End to end in real headless Chromium: demo sweep → Monitor → Compare → Share → fresh context.

Starts ``streamlit run app.py`` as a subprocess on a free loopback port with a
fresh workspace, drives it with Playwright, and saves a screenshot of every page
under ``artifacts/e2e/``. Locally it skips when Chromium is missing; under CI
(``CI`` set) it fails instead, because CI installs Chromium.
"""

from __future__ import annotations

import re
import time

import pytest
from browser_helpers import ARGS, CHROMIUM, ROOT, app_env, charts_shot, free_port, need_chromium, ready, serve

ARTIFACTS = ROOT / "artifacts" / "e2e"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture
def app_server(tmp_path):
    """A running app on a fresh workspace; stops it and any runner it started."""
    need_chromium()
    home = tmp_path / "ws"
    with open(tmp_path / "streamlit.log", "w") as log:
        yield from serve(app_env(home, tmp_path), free_port(), log, home)


def _shot(page, name: str) -> None:
    charts_shot(page, ARTIFACTS / f"{name}.png")


def _headline(page) -> str:
    loc = page.locator("[data-testid=stMarkdownContainer]", has_text="Leader:")
    loc.first.wait_for(timeout=60_000)
    return loc.first.inner_text()


def test_demo_sweep_monitor_compare_share(app_server):
    from playwright.sync_api import sync_playwright

    base, _home = app_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # a deep link as the server's very first request must still get app.py's navigation
        page.goto(f"{base}/sweeps")
        ready(page)
        nav = page.locator("[data-testid=stSidebarNav]")
        nav.get_by_text("Sources & sync").wait_for(timeout=30_000)
        assert not nav.get_by_text("frames", exact=True).count()
        page.goto(f"{base}/")
        ready(page)
        # the heading renders before the rest of the page: wait (and fail on timeout), don't poll once
        page.get_by_text("This workspace holds no synced data yet").wait_for(state="visible", timeout=30_000)
        _shot(page, "01-overview-first-run")
        page.get_by_role("button", name="Run a simulated demo sweep").click()
        # the page redraws as "waiting for the first results" (the demo button gone)
        page.get_by_text("results appear here as soon as its first job finishes").wait_for(timeout=30_000)
        # stale elements stay until the rerun ends: the button must then be gone (fails on timeout)
        page.get_by_role("button", name="Run a simulated demo sweep").wait_for(
            state="detached", timeout=30_000
        )

        page.goto(f"{base}/monitor")
        ready(page)
        page.locator("[data-testid=stProgress]").first.wait_for(timeout=30_000)
        page.get_by_text(re.compile(r"12/12 cells ran")).wait_for(timeout=120_000)
        _shot(page, "02-monitor-complete")

        deadline = time.monotonic() + 60
        while True:  # the runner syncs after each job; the last sync may trail the last job
            page.goto(f"{base}/compare")
            ready(page)
            page.wait_for_timeout(1500)
            if page.get_by_text("Leader:").count():
                cap = page.get_by_text(re.compile(r"\d+ trajectories ·")).first.inner_text()
                if cap.startswith("12 trajectories"):
                    break
            assert time.monotonic() < deadline, "Compare never showed the 12 demo trajectories"
        head = _headline(page)
        caption = page.get_by_text(re.compile(r"\d+ trajectories ·")).first.inner_text()
        assert "Simulated data" in page.locator("[data-testid=stMain]").inner_text()
        _shot(page, "03-compare")

        page.get_by_role("button", name="Share").click()
        code = page.locator("[data-testid=stCode]", has_text="view=")
        code.first.wait_for(timeout=30_000)
        link = re.search(r"\S*\?view=[a-z0-9]{10}", code.first.inner_text()).group(0)
        view_id = link.rsplit("=", 1)[1]

        for name in ("", "sources", "sweeps", "tasks", "trajectories"):
            page.goto(f"{base}/{name}")
            ready(page)
            page.wait_for_timeout(1500)
            assert not page.locator("[data-testid=stException]").count(), name
            _shot(page, f"04-{name or 'overview'}")

        fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
        other = fresh.new_page()
        other.goto(f"{base}/compare?view={view_id}")
        ready(other)
        assert _headline(other) == head
        assert other.get_by_text(re.compile(r"\d+ trajectories ·")).first.inner_text() == caption
        assert (
            other.get_by_text(f"Shared view `{view_id}`", exact=False).count()
            or other.get_by_text(view_id).count()
        )
        _shot(other, "05-compare-shared-link")
        browser.close()
