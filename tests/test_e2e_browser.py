"""End to end in real headless Chromium: demo sweep → Monitor → Compare → Share → fresh context.

Starts ``streamlit run app.py`` as a subprocess on a free loopback port with a
fresh workspace, drives it with Playwright, and saves a screenshot of every page
under ``artifacts/e2e/``. Locally it skips when Chromium is missing; under CI
(``CI`` set) it fails instead, because CI installs Chromium.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "artifacts" / "e2e"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def _need_chromium():
    if Path(CHROMIUM).exists():
        return
    pytest.skip(f"{CHROMIUM} not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_health(base: str, proc: subprocess.Popen, budget_s: float = 60) -> None:
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("streamlit did not become healthy")


@pytest.fixture
def app_server(tmp_path):
    """A running app on a fresh workspace; stops it and any runner it started."""
    _need_chromium()
    home = tmp_path / "ws"
    port = _free_port()
    env = {
        **os.environ,
        "FLE_CORE_HOME": str(home),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path / "wandb"),
    }
    env.pop("FLE_READ_ONLY", None)
    with open(tmp_path / "streamlit.log", "w") as log:
        yield from _serve(env, port, log, home)


def _serve(env: dict, port: int, log, home: Path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_health(base, proc)
        yield base, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        _stop_runners(home)


def _stop_runners(home: Path) -> None:
    """SIGTERM the runner(s) the demo button started in this workspace, by pid."""
    from fle_core import sweeps
    from fle_core.workspace import Workspace

    if not (home / "control.db").exists():
        return
    for pid in sweeps.runners(Workspace.open(home)).filter("alive")["pid"].to_list():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


def _ready(page) -> None:
    page.wait_for_selector("[data-testid=stApp]", timeout=30_000)
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=30_000)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_function("!document.querySelector('[data-testid=stSkeleton]')", timeout=30_000)
    charts = page.locator("[data-testid=stVegaLiteChart]")
    for i in range(charts.count()):
        if charts.nth(i).is_visible():
            charts.nth(i).locator("canvas, svg").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # let charts finish drawing
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _headline(page) -> str:
    loc = page.locator("[data-testid=stMarkdownContainer]", has_text="Top model:")
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
        _ready(page)
        nav = page.locator("[data-testid=stSidebarNav]")
        nav.get_by_text("Sources & sync").wait_for(timeout=30_000)
        assert not nav.get_by_text("frames", exact=True).count()
        page.goto(f"{base}/")
        _ready(page)
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
        _ready(page)
        page.locator("[data-testid=stProgress]").first.wait_for(timeout=30_000)
        page.get_by_text(re.compile(r"12/12 cells ran")).wait_for(timeout=120_000)
        _shot(page, "02-monitor-complete")

        deadline = time.monotonic() + 60
        while True:  # the runner syncs after each job; the last sync may trail the last job
            page.goto(f"{base}/compare")
            _ready(page)
            page.wait_for_timeout(1500)
            if page.get_by_text("Top model:").count():
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
            _ready(page)
            page.wait_for_timeout(1500)
            assert not page.locator("[data-testid=stException]").count(), name
            _shot(page, f"04-{name or 'overview'}")

        fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
        other = fresh.new_page()
        other.goto(f"{base}/compare?view={view_id}")
        _ready(other)
        assert _headline(other) == head
        assert other.get_by_text(re.compile(r"\d+ trajectories ·")).first.inner_text() == caption
        assert (
            other.get_by_text(f"Shared view `{view_id}`", exact=False).count()
            or other.get_by_text(view_id).count()
        )
        _shot(other, "05-compare-shared-link")
        browser.close()
