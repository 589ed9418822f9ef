"""Shared plumbing for the real-browser tests and bench/browser.py: serve the app, drive Chromium.

``serve`` starts ``streamlit run app.py`` on a free loopback port for one
workspace and stops it (and any runner the app started) afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(base: str, proc: subprocess.Popen, budget_s: float = 60) -> None:
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


def serve(env: dict, port: int, log, home: Path) -> Iterator[tuple[str, Path]]:
    """Run the app for ``home`` until the generator is closed; yields (base URL, home)."""
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
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_health(base, proc)
        yield base, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        stop_runners(home)


def app_env(home: Path, tmp: Path) -> dict:
    env = {
        **os.environ,
        "FLE_CORE_HOME": str(home),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp / "wandb"),
    }
    env.pop("FLE_READ_ONLY", None)
    return env


def runner_pids(home: Path) -> set[int]:
    """Runner processes of this workspace: those its control store lists as alive, and
    any ``fle_core --workspace HOME runner`` process (one that has not sent its first
    heartbeat yet is in no table, but must not outlive the test)."""
    from fle_core import sweeps
    from fle_core.workspace import Workspace

    pids: set[int] = set()
    if (home / "control.db").exists():
        pids.update(sweeps.runners(Workspace.open(home)).filter("alive")["pid"].to_list())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile
        if b"fle_core" in argv and b"runner" in argv and str(home).encode() in argv:
            pids.add(int(proc.name))
    return pids


def stop_runners(home: Path) -> None:
    """SIGTERM the runner(s) started in this workspace (the demo button, Resume); SIGKILL
    whatever has not drained after 10 s."""
    pids = runner_pids(home)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child of this process counts as gone)."""
    with contextlib.suppress(ChildProcessError):  # reap it if it is our child
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return (Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]) != "Z"
    except (OSError, IndexError):
        return False


def ready(page, timeout_ms: int = 30_000) -> None:
    page.wait_for_selector("[data-testid=stApp]", timeout=timeout_ms)
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=timeout_ms)


#: JS: true once the script run is over and every visible chart has drawn (svg or canvas).
SETTLED_JS = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid=stSkeleton]')) return false;
  const charts = [...document.querySelectorAll('[data-testid=stVegaLiteChart]')]
    .filter(e => e.offsetParent !== null);
  return charts.every(c => c.querySelector('svg.marks, canvas.marks'));
}"""


def settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the page's script has finished and every visible chart has drawn."""
    page.wait_for_function(SETTLED_JS, timeout=timeout_ms, polling=100)


def full_screenshot(page, path: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to it first."""
    size = page.viewport_size
    tall = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebarContent]')]"
        ".map(e => e.scrollHeight), document.body.scrollHeight)"
    )
    if size and tall > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(int(tall) + 40, 12_000)})
        page.wait_for_timeout(200)  # charts re-fit their width on resize
        settle(page)
    page.screenshot(path=path, full_page=True)
    if size and tall > size["height"]:
        page.set_viewport_size(size)


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (closed after it: a later test's own sync Playwright
    cannot start while this one's event loop runs)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def page_url(base: str, path: str, query: dict[str, str]) -> str:
    return f"{base}/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")


#: The layout checks (``layout_check.js``) and their limits: the smallest readable plot
#: area and the smallest height of one row of a discrete y axis.
CHECK_JS = (Path(__file__).parent / "layout_check.js").read_text()
LIMITS = {"minWidth": 150, "minHeight": 60, "minBand": 12}


def layout_problems(page) -> list[str]:
    """What ``layout_check.js`` finds on the page as drawn now, and a Python exception if shown."""
    found = [f"{p['chart']}: {p['problem']}" for p in page.evaluate(CHECK_JS, LIMITS)]
    if page.locator("[data-testid=stException]").count():
        found.append("the page shows a Python exception")
    return found


def check_view(page, url: str, shot: Path) -> list[str]:
    """Open ``url``, wait until every chart has drawn, screenshot it, return layout problems."""
    page.goto(url, wait_until="domcontentloaded")
    ready(page)
    settle(page)
    page.wait_for_timeout(150)  # a rerun (URL-state write-back) may start right after the first
    settle(page)
    found = layout_problems(page)
    shot.parent.mkdir(parents=True, exist_ok=True)
    full_screenshot(page, str(shot))
    return found


def need_chromium() -> None:
    """Skip (a failure under CI, see conftest) when Debian's Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed")


def charts_shot(page, path: Path) -> None:
    """A full-page screenshot at ``path`` once every visible chart has drawn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.wait_for_function("!document.querySelector('[data-testid=stSkeleton]')", timeout=30_000)
    charts = page.locator("[data-testid=stVegaLiteChart]")
    for i in range(charts.count()):
        if charts.nth(i).is_visible():
            charts.nth(i).locator("canvas, svg").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # let charts finish drawing
    page.screenshot(path=str(path), full_page=True)
