"""The app shows user text as text, and works from a read-only workspace.

* Markdown injection (issue 12, item 10): the app is served for real and opened
  in headless Chromium with hostile query parameters (a fake "Session expired"
  message with a login link, an image whose URL points at a local server that
  records requests, a bad shared-view id). Each warning must show the text as
  typed, with no link, image or formatting, and the browser must fetch nothing.
* A read-only workspace (a viewer's ``:ro`` mount, here a real read-only bind
  mount, or ``FLE_READ_ONLY=1``): every page renders, nothing is created.
"""

from __future__ import annotations

import contextlib
import gc
import http.server
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
from app_helpers import PAGES, assert_clean, run_page, texts
from browser_helpers import ARGS, CHROMIUM, ROOT, charts_shot, free_port, need_chromium, ready, serve
from fixtures_fle import create_sqlite, make_rows

from fle_core import saved_views, sweeps
from fle_core.sweeps import config as sweep_config
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace

ARTIFACTS = ROOT / "artifacts" / "e2e"  # beside the end-to-end shots

WJ = "\u2060"  # the invisible word joiner _ui.plain puts after ':' and '@'


@contextlib.contextmanager
def _pixel_server():
    """A local HTTP server that records every request (an <img> the page must never load)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()


def _alerts(page) -> list[tuple[str, set[str]]]:
    """(visible text, HTML tags inside the Markdown) of every alert on the page."""
    out = []
    for el in page.locator("[data-testid=stAlert]").all():
        md = el.locator("[data-testid=stMarkdownContainer]").first
        html = md.inner_html()
        out.append((md.inner_text().replace(WJ, ""), set(re.findall(r"<([a-zA-Z0-9]+)", html)) - {"p"}))
    return out


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_query_parameters_render_as_plain_text_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    need_chromium()
    home = tmp_path / "ws"
    ws = Workspace.open(home)
    create_sqlite(ws.local_source_path, make_rows(12, seed=1, text_kb=0.05))
    sync(ws, "local")
    env = {
        **os.environ,
        "FLE_CORE_HOME": str(home),
        "FLE_READ_ONLY": "1",  # the viewer deployment the attack used
        "WANDB_MODE": "offline",
    }
    port = free_port()
    phishing = "1` **Session expired.** [Log in again](http://evil.example/login) `"
    with _pixel_server() as (pixel, hits), open(tmp_path / "streamlit.log", "w") as log:
        image = f"![x]({pixel}/pixel.png) <img src={pixel}/tag.png> :red[alert] www.evil.example"
        cases = [
            ("compare", {"cmp_k": phishing}, phishing),
            ("compare", {"cmp_model": image}, image),
            ("tasks", {"tsk_metric": phishing}, phishing),
            ("compare", {"view": "[click](http://evil.example)"}, "[click](http://evil.example)"),
        ]
        server = serve(env, port, log, home)
        base, _ = next(server)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                for n, (path, params, raw) in enumerate(cases):
                    page.goto(f"{base}/{path}?{urllib.parse.urlencode(params)}")
                    ready(page)
                    page.locator("[data-testid=stAlert]").first.wait_for(timeout=30_000)
                    page.wait_for_timeout(1500)
                    alerts = _alerts(page)
                    quoting = [(text, tags) for text, tags in alerts if raw[:12] in text]
                    assert quoting, f"{path}: no alert quotes the parameter: {alerts}"
                    for text, tags in quoting:
                        assert raw in text, (text, raw)  # shown exactly as typed
                        assert not tags & {"a", "img", "strong", "em", "code", "del", "span"}, (text, tags)
                    assert not page.locator("[data-testid=stAlert] a, [data-testid=stAlert] img").count()
                    charts_shot(page, ARTIFACTS / f"plain-text-{n}-{path}.png")
                browser.close()
        finally:
            server.close()
    assert hits == [], f"the browser fetched the injected image: {hits}"
    assert not [
        u for u in requests if not u.startswith(base) and ("evil.example" in u or u.startswith(pixel))
    ]


# ------------------------------------------------------------------ read-only workspaces
@pytest.fixture
def read_only_mount(tmp_path):
    """``mount(src) -> path``: a real read-only bind mount of ``src`` (needs root)."""
    mounts: list[Path] = []

    def mount(src: Path) -> Path:
        dst = tmp_path / f"ro{len(mounts)}"
        dst.mkdir()
        first = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True, text=True)
        if first.returncode:
            pytest.skip(f"cannot bind-mount here: {first.stderr.strip()}")
        mounts.append(dst)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], check=True, capture_output=True)
        assert not os.access(dst, os.W_OK)
        return dst

    yield mount
    gc.collect()  # stores the pages opened (and did not close) release their files
    for dst in reversed(mounts):
        if subprocess.run(["umount", str(dst)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(dst)], check=True)  # detach once the last file closes


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_read_only_mount_renders_every_page_and_creates_nothing(
    tmp_path, monkeypatch, read_only_mount, page
):
    src = tmp_path / "empty"
    src.mkdir()
    ro = read_only_mount(src)
    monkeypatch.setenv("FLE_CORE_HOME", str(ro))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    at = run_page(page)
    assert_clean(at)
    assert "Read-only mode" in texts(at) or page in ("compare", "tasks", "trajectories", "monitor")
    assert _tree(src) == []


def test_read_only_mode_on_a_missing_workspace_creates_no_files(tmp_path, monkeypatch):
    home = tmp_path / "never-created"
    monkeypatch.setenv("FLE_CORE_HOME", str(home))
    monkeypatch.setenv("FLE_READ_ONLY", "1")
    for page in PAGES:
        assert_clean(run_page(page))
    assert not home.exists()


@pytest.fixture
def populated_source(tmp_path):
    """A workspace with synced data, a finished demo-config sweep record and a shared view."""
    root = tmp_path / "full"
    ws = Workspace.open(root)
    create_sqlite(ws.local_source_path, make_rows(15, seed=2, text_kb=0.05))
    sync(ws, "local")
    sweep_id = sweeps.launch(ws, sweep_config.demo_config())
    view = saved_views.save_view(ws, "compare", {"cmp_reps": "200"}, 1)
    gc.collect()  # the launch's control-store connection closes (and checkpoints) now, not later
    return root, sweep_id, view


def test_a_read_only_mount_of_a_used_workspace_shows_its_data(monkeypatch, read_only_mount, populated_source):
    src, sweep_id, view = populated_source
    before = {p: p.stat().st_mtime_ns for p in src.rglob("*")}
    ro = read_only_mount(src)
    monkeypatch.setenv("FLE_CORE_HOME", str(ro))
    monkeypatch.delenv("FLE_READ_ONLY", raising=False)
    for page in PAGES:
        at = run_page(page)
        assert_clean(at)
    at = run_page("compare", {"view": view})
    assert_clean(at)
    assert any(m.value.startswith("Leader:") for m in at.markdown)
    assert any(f"Shared view `{view}`" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Share").click().run()  # cannot be saved here: say so
    assert_clean(at)
    assert any("Cannot save a view" in e.value for e in at.error)
    at = run_page("sweeps")
    assert_clean(at)
    assert sweep_id in at.dataframe[0].value["sweep_id"].to_list()
    assert "Read-only mode" in texts(at)
    assert {p: p.stat().st_mtime_ns for p in src.rglob("*")} == before
    # the CLI reads it too
    out = subprocess.run(
        [sys.executable, "-m", "fle_core", "--workspace", str(ro), "status"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "rows" in out.stdout, out.stderr
