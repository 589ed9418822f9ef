"""Benchmark: what a user waits for in Chromium, per page and tab, on a 1M-step warehouse.

Usage::

    uv run python bench/browser.py [--steps 1000000] [--reps 3] [--data-dir bench/_data]
                                   [--write-results] [--no-apptest]

1. Builds (or reuses) the workspace of ``bench/app.py`` (6 models × 24 tasks,
   64-step trajectories; 1M steps ≈ 15.6k trajectories), plus a queued demo sweep
   so the Monitor has a grid to draw.
2. Serves the app (``streamlit run``) and drives one headless Chromium window
   (1400×900). Every figure runs until the script run is over and the **last
   chart has drawn** (every visible Vega chart has its SVG or canvas;
   ``tests/browser_helpers.settle``):

   * **first page, cold**: ``page.goto`` of a page right after a new data version
     (the data version moves, so every cache keyed on it misses), in a new session:
     what a person opening a link waits for;
   * **page switch, warm**: in one open session, a click on the page's link in the
     sidebar (``st.navigation``: no reload, no new session), at a data version the
     page has been shown at: what moving around the app costs;
   * **tab click, warm**: the page is open and the user clicks one of its tabs.

   The **floor** is the page switch to the near-empty Sources page (its script
   runs in ~0.1 s in AppTest): what any switch costs in the browser and Streamlit
   before a page's own work. Medians over ``--reps``.
3. Beside it, in the same run, ``bench/app.py``'s AppTest figures (script run
   only, no browser) for the same pages and tabs.
4. Prints a table with the targets (page switch and tab click ≤ 1.0 s warm; first
   page ≤ 2.5 s cold) and, with ``--write-results``, writes
   ``bench/RESULTS-browser.md`` (earlier runs kept below).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser_helpers import ARGS, CHROMIUM, app_env, free_port, ready, serve, settle

from fle_core import warehouse
from fle_core.workspace import Workspace

#: label → (url path, query, charts the view must draw): the rows of bench/app.py plus Sweeps/Monitor.
TARGETS: dict[str, tuple[str, str, int]] = {
    "overview": ("", "", 0),
    "sources": ("sources", "", 0),
    "sweeps": ("sweeps", "", 0),
    "monitor": ("monitor", "?mon_live=0", 1),
    "compare": ("compare", "", 1),
    "compare · pass@k": ("compare", "?cmp_tab=pass%40k", 1),
    "compare · Pairwise": ("compare", "?cmp_tab=Pairwise", 2),
    "compare · Rewards": ("compare", "?cmp_tab=Rewards", 1),
    "compare · Cost": ("compare", "?cmp_tab=Cost", 1),
    "compare · Export": ("compare", "?cmp_tab=Export", 0),
    "tasks": ("tasks", "", 1),
    "tasks · None / partial / full": ("tasks", "?tsk_tab=None+%2F+partial+%2F+full", 1),
    "tasks · Difficulty ranking": ("tasks", "?tsk_tab=Difficulty+ranking", 1),
    "trajectories": ("trajectories", "", 2),
}
WARM_TARGET_S, COLD_TARGET_S = 1.0, 2.5
FLOOR = "sources"  # the near-empty page: its switch time is what any switch costs
#: The title each page shows (how a switch knows it has arrived).
TITLES = {
    "": "FLE evaluation workbench",
    "sources": "Sources & sync",
    "sweeps": "Sweeps",
    "monitor": "Monitor",
    "compare": "Compare models",
    "tasks": "Tasks",
    "trajectories": "Trajectories",
}
#: The sidebar link of each page (``app.py``'s titles).
LINKS = {
    "": "Overview",
    "sources": "Sources & sync",
    "sweeps": "Sweeps",
    "monitor": "Monitor",
    "compare": "Compare",
    "tasks": "Tasks",
    "trajectories": "Trajectories",
}
CLICKS: dict[str, float] = {}  # filled by measure_browser: warm in-app tab switches
SWITCHES: dict[str, float] = {}  # filled by measure_browser: warm page switches in one session


def _bench_app():
    """bench/app.py as a module (its name clashes with the root app.py)."""
    spec = importlib.util.spec_from_file_location("bench_app", ROOT / "bench" / "app.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def new_data_version(ws: Workspace) -> int:
    """Record one more successful sync that counts as a change of data: every cache keyed on the
    data version misses. (Earlier runs only added a ``sync_runs`` row, which since schema 2 no
    longer moves the data version, so their "cold" figures were warm ones.)"""
    with warehouse.writer(ws) as con:
        last = con.execute("SELECT max(sync_id) FROM sync_runs").fetchone()[0] or 0
        con.execute(
            "INSERT INTO sync_runs (sync_id, source, started_at, finished_at, status, rows_added, watermark_before, watermark_after, full_rebuild, error) VALUES (?, 'bench', now(), now(), 'ok', 0, 0, 0, false, NULL)",
            [last + 1],
        )
        warehouse.set_data_version(con, last + 1, True)
    return last + 1


def ensure_sweep(ws: Workspace) -> None:
    from fle_core import sweeps
    from fle_core.sweeps import config as sweep_config

    if sweeps.list_sweeps(ws).is_empty():
        sweeps.launch(ws, sweep_config.demo_config())  # no runner: the cells stay queued


def _drawn(page, charts: int, t0: float, what: str) -> float:
    """Seconds since ``t0`` once ``charts`` charts have drawn and the script run is over;
    a page that shows a Python exception is an error, not a time."""
    if charts:
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=stVegaLiteChart] svg.marks, "
            "[data-testid=stVegaLiteChart] canvas.marks').length >= n",
            arg=charts,
            timeout=120_000,
            polling=50,
        )
    settle(page, timeout_ms=120_000)
    took = time.perf_counter() - t0
    if page.locator("[data-testid=stException]").count():
        raise RuntimeError(f"{what}: the page shows an exception")
    return took


def visit(page, url: str, charts: int) -> float:
    """Seconds from navigation until the run is over and every chart has drawn."""
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    ready(page)
    return _drawn(page, charts, t0, url)


#: Tabs also measured in-app: the page is open, the user clicks the tab (no reload, no new session).
TAB_CLICKS: dict[str, tuple[str, str]] = {
    label: (path, label.split(" · ", 1)[1]) for label, (path, _q, _n) in TARGETS.items() if " · " in label
}


def click_tab(page, base: str, path: str, tab: str, charts: int) -> float:
    """Seconds from clicking ``tab`` on an open page until its charts have drawn and the run ended."""
    visit(page, f"{base}/{path}", 0)
    t0 = time.perf_counter()
    page.get_by_role("tab", name=tab, exact=True).click()
    page.wait_for_function(
        "([name, n]) => { const t = [...document.querySelectorAll('[role=tab]')]"
        ".find(e => e.innerText.trim() === name); if (!t || t.getAttribute('aria-selected') !== 'true') return false;"
        " const panel = document.getElementById(t.getAttribute('aria-controls'));"
        " return !!panel && panel.querySelectorAll('[data-testid=stVegaLiteChart] svg.marks, "
        "[data-testid=stVegaLiteChart] canvas.marks').length >= n; }",
        arg=[tab, charts],
        timeout=120_000,
        polling=50,
    )
    settle(page, timeout_ms=120_000)
    return time.perf_counter() - t0


def measure_clicks(base: str, page, reps: int) -> dict[str, float]:
    """Warm in-app tab switches (median over ``reps``)."""
    out = {}
    for label, (path, tab) in TAB_CLICKS.items():
        charts = TARGETS[label][2]
        out[label] = statistics.median(click_tab(page, base, path, tab, charts) for _ in range(reps))
        print(f"{label:32s} tab click (warm) {out[label]:6.2f} s", flush=True)
    return out


def switch_page(page, path: str, charts: int) -> float:
    """Seconds from a click on the page's sidebar link (same session) until it has drawn."""
    t0 = time.perf_counter()
    page.locator("[data-testid=stSidebarNav] a", has_text=LINKS[path]).first.click()
    page.wait_for_function(
        "t => { const h = document.querySelector('[data-testid=stMainBlockContainer] h1');"
        " return !!h && h.innerText.trim() === t; }",
        arg=TITLES[path],
        timeout=120_000,
        polling=50,
    )
    return _drawn(page, charts, t0, path)


#: Pages measured as switches (a page's default view; its tabs are measured as clicks).
PAGE_VIEWS = {label: v for label, v in TARGETS.items() if " · " not in label}


def measure_switches(base: str, page, reps: int) -> dict[str, float]:
    """Warm page switches in one session: every page once (caches fill), then ``reps`` rounds."""
    visit(page, f"{base}/", 0)
    for path, _q, charts in PAGE_VIEWS.values():  # one untimed round at this data version
        switch_page(page, path, charts)
    times: dict[str, list[float]] = {label: [] for label in PAGE_VIEWS}
    for _ in range(reps):
        for label, (path, _q, charts) in PAGE_VIEWS.items():
            times[label].append(switch_page(page, path, charts))
    out = {label: statistics.median(ts) for label, ts in times.items()}
    for label, t in out.items():
        print(f"{label:32s} page switch (warm) {t:6.2f} s", flush=True)
    return out


def measure_browser(ws: Workspace, reps: int) -> dict[str, tuple[float, float]]:
    """First page cold (new session after a new data version) and the same URL again (warm)."""
    from playwright.sync_api import sync_playwright

    out: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "streamlit.log", "w") as log:
        server = serve(app_env(ws.root, Path(tmp)), free_port(), log, ws.root)
        base, _ = next(server)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                visit(page, f"{base}/compare", 1)  # one untimed visit: imports, first websocket
                for label, (path, query, charts) in TARGETS.items():
                    url = f"{base}/{path}{query}"
                    cold, warm = [], []
                    for _ in range(reps):
                        new_data_version(ws)
                        cold.append(visit(page, url, charts))
                        warm.append(visit(page, url, charts))
                    out[label] = (statistics.median(cold), statistics.median(warm))
                    print(
                        f"{label:32s} first page cold {out[label][0]:6.2f} s   reload warm {out[label][1]:6.2f} s",
                        flush=True,
                    )
                SWITCHES.update(measure_switches(base, page, reps))
                CLICKS.update(measure_clicks(base, page, reps))
                browser.close()
        finally:
            server.close()
    return out


def report(
    n_steps: int,
    reps: int,
    browser: dict[str, tuple[float, float]],
    apptest: dict[str, tuple[float, float]],
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    la = " → ".join("/".join(f"{x:.1f}" for x in avg) for avg in load)
    lines = [
        "# Browser page times (bench/browser.py)",
        "",
        f"Date: {now} · machine: 2 cores / 24 GiB, shared with other engineers' jobs "
        f"(load average 1/5/15 min before → after: {la}) · Python {platform.python_version()} · "
        f"Chromium (Debian) headless, 1400×900 · {n_steps:,} steps (~{n_steps // 64:,} trajectories, "
        f"6 models × 24 tasks) · medians of {reps} runs.",
        "",
        "Every figure runs until the script run is over and the last chart has drawn (every visible "
        "Vega chart has its SVG/canvas). **First page, cold**: `page.goto` in a new session right after "
        "a new data version (every cache keyed on it misses). **Page switch, warm**: in one open "
        "session, a click on the page's sidebar link (`st.navigation`, no reload) at a data version "
        "the page was shown at. **Tab click, warm**: the page is open, the user clicks the tab. "
        "**Reload, warm**: `page.goto` of the same URL again (a new session, caches warm). "
        f"**Floor**: the page switch to the near-empty Sources page, measured in the same run. "
        "AppTest: `bench/app.py`'s script-run time for the same page/tab in the same run (no "
        "browser, no websocket, no drawing; cold = caches cleared). "
        f"Targets: page switch and tab click ≤ {WARM_TARGET_S} s warm; first page ≤ {COLD_TARGET_S} s cold.",
        "",
        "| page · tab | first page, cold (s) | page switch, warm (s) | tab click, warm (s) | reload, warm (s) "
        "| switch or click − floor (s) | AppTest cold (s) | AppTest warm (s) | met? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    floor = SWITCHES.get(FLOOR)
    for label, (cold, warm) in browser.items():
        a_cold, a_warm = apptest.get(label, (None, None))
        inapp = SWITCHES.get(label, CLICKS.get(label))
        ok = cold <= COLD_TARGET_S and inapp is not None and inapp <= WARM_TARGET_S
        ac = f"{a_cold:.2f}" if a_cold is not None else "—"
        aw = f"{a_warm:.2f}" if a_warm is not None else "—"
        switch = f"{SWITCHES[label]:.2f}" if label in SWITCHES else "—"
        click = f"{CLICKS[label]:.2f}" if label in CLICKS else "—"
        above = f"{inapp - floor:+.2f}" if inapp is not None and floor is not None else "—"
        lines.append(
            f"| {label} | {cold:.2f} | {switch} | {click} | {warm:.2f} | {above} | {ac} | {aw} "
            f"| {'yes' if ok else 'NO'} |"
        )
    if floor is not None:
        lines += ["", f"Floor (page switch to the near-empty {FLOOR} page): **{floor:.2f} s**."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data-dir", default=str(ROOT / "bench" / "_data"))
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--no-apptest", action="store_true", help="skip the AppTest figures")
    args = ap.parse_args()
    bench_app = _bench_app()
    root = Path(args.data_dir) / f"app_ws_{args.steps}"
    os.environ["FLE_CORE_HOME"] = str(root)
    os.environ.pop("FLE_READ_ONLY", None)
    ws = bench_app.build_workspace(root, args.steps)
    ensure_sweep(ws)
    load_before = os.getloadavg()
    browser = measure_browser(ws, args.reps)
    apptest = {} if args.no_apptest else bench_app.measure(args.reps, True)
    text = report(args.steps, args.reps, browser, apptest, (load_before, os.getloadavg()))
    print(text)
    if args.write_results:
        out = ROOT / "bench" / "RESULTS-browser.md"
        earlier = out.read_text() if out.exists() else ""
        if earlier:
            body = earlier.replace("# Browser page times (bench/browser.py)\n", "### Run\n", 1)
            earlier = "\n## Earlier runs\n\n" + body.replace("\n## Earlier runs\n\n", "\n", 1)
        out.write_text(text + earlier)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
