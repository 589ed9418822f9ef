"""The self-contained report: files, content, offline rendering in real Chromium, the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from _chart_frames import contract_frames

from fle_core.report import REPORT_FILE, DataVersion, ReportError, ReportFrames, build_report
from fle_core.report.build import definitions_markdown
from fle_core.report.html import markdown_html

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    frames = ReportFrames(**contract_frames(3, simulated=True))
    out = tmp_path_factory.mktemp("report")
    version = DataVersion(sync_id=42, filters={"sweep_id": "sw1"}, reps=200, seed=3)
    files = build_report(frames, out, data_version=version, title="Test <report>")
    return frames, files, out


# ---------------------------------------------------------------- files beside the report


def test_report_writes_html_tables_markdown_and_images(built):
    frames, files, out = built
    assert files.html == out / REPORT_FILE and files.html.stat().st_size > 500_000  # JS inlined
    assert files.chart_count == 13 and len(files.images) == files.chart_count
    for img in files.images:
        text = img.read_text()
        assert img.suffix == ".svg" and text.startswith("<svg") and len(text) > 5_000, img
        assert "<text" in text  # titles/axes were rendered, not an empty canvas
    for name, frame in frames.tables().items():
        back = pl.read_parquet(out / f"{name}.parquet")
        assert back.equals(frame), name
        csv = pl.read_csv(out / f"{name}.csv")
        assert csv.height == frame.height and csv.columns == frame.columns, name
    # list columns are ;-joined in CSV
    lacking = pl.read_csv(out / "model_metrics.csv")["tasks_lacking_5"].to_list()
    assert all(set(v.split(";")) == {"iron_ore_throughput", "iron_plate_throughput"} for v in lacking)
    assert not (out / "steps.csv").exists()  # steps stay in the warehouse
    md = files.markdown.read_text()
    assert "| Metric |" in md and "sync id (data version): 42" in md and "Simulated data" in md
    assert set(files.all()) == {files.html, files.markdown, *files.tables, *files.images}


def test_report_html_content_is_offline_and_complete(built):
    frames, files, _ = built
    html = files.html.read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import", html)  # nothing loaded from outside
    assert "cdn.jsdelivr" not in html
    assert html.count('class="chart-spec"') == files.chart_count
    assert "Test &lt;report&gt;" in html and "Test <report>" not in html  # escaped
    assert "Simulated data." in html and "(simulated data)" in html
    assert ">42<" in html and "200 resamples, seed 3" in html and "sweep_id" in html
    leaderboard = re.search(r'<table class="data leaderboard">.*?</table>', html, re.S).group(0)
    assert leaderboard.count("<tr>") == 1 + frames.model_metrics.height
    best = frames.model_metrics.sort("success_rate", descending=True)["model"][0]
    assert leaderboard.index(best) < min(
        leaderboard.index(m) for m in frames.model_metrics["model"] if m != best
    )
    comparisons = re.search(r'<table class="data comparisons">.*?</table>', html, re.S).group(0)
    assert comparisons.count("<tr>") == 1 + frames.comparisons.height
    assert "significantly better" in comparisons
    # the definitions section holds the metric definitions text
    defs = html[html.index('id="definitions"') :]
    assert "pass@k" in defs and "Wilson" in defs


def test_report_needs_summaries_and_a_known_image_format(tmp_path):
    empty = contract_frames(1)["summaries"].head(0)
    with pytest.raises(ReportError, match="no trajectory summaries"):
        build_report(ReportFrames(summaries=empty), tmp_path, data_version=DataVersion(sync_id=1))
    with pytest.raises(ReportError, match="Unknown image format"):
        build_report(
            ReportFrames(summaries=contract_frames(1)["summaries"]),
            tmp_path / "x",
            data_version=DataVersion(sync_id=1),
            image_format="gif",
        )


def test_png_export_and_charts_that_cannot_be_drawn_are_listed(tmp_path):
    f = contract_frames(1, trials=2)
    mm = f["model_metrics"].with_columns(pl.lit(None, pl.Float64).alias("tokens_per_success"))
    files = build_report(
        ReportFrames(summaries=f["summaries"], model_metrics=mm),
        tmp_path,
        data_version=DataVersion(sync_id=1),
        image_format="png",
    )
    assert files.images and all(
        p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000 for p in files.images
    )
    html = files.html.read_text()
    assert '<ul class="skipped"><li>Cost' in html and "No model has a success" in html
    assert not (tmp_path / "charts" / "cost.png").exists()
    assert files.markdown is None  # no comparisons given


def test_markdown_renderer_escapes_and_keeps_structure():
    out = markdown_html(
        "# Title\n\nText with `code` and **bold** <script>x</script>\n\n"
        "| a | b |\n|---|---|\n| 1 | <i> |\n\n- one\n- two\n  continued\n\n```\n<raw>\n```\n"
    )
    assert "<h3>Title</h3>" in out and "<code>code</code>" in out and "<strong>bold</strong>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<td>&lt;i&gt;</td>" in out and "<li>two continued</li>" in out
    assert "<pre><code>&lt;raw&gt;</code></pre>" in out


def test_definitions_are_docs_metrics_in_a_checkout_and_in_the_wheel(tmp_path):
    """One copy of the definitions: the report embeds docs/metrics.md, and the wheel carries
    that same file inside the package (an installed report does not fall back to another)."""
    import shutil
    import subprocess
    import zipfile

    docs = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert definitions_markdown() == docs
    uv = shutil.which("uv")
    assert uv, "uv is on PATH wherever tests/run.sh runs"
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(tmp_path), "-q"], cwd=ROOT, check=True)
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("fle_core/report/metrics.md").decode("utf-8") == docs


# ---------------------------------------------------------------- real Chromium, no network


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.browser
def test_report_renders_every_chart_offline_in_chromium(built, chromium):
    _, files, _ = built
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    attempted: list[str] = []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    page.route("**/*", only_files)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(files.html.as_uri())
    page.wait_for_function(
        "document.querySelectorAll('.chart[data-rendered=true]').length"
        " + document.querySelectorAll('.vega-error').length"
        " >= document.querySelectorAll('script.chart-spec').length",
        timeout=60_000,
    )
    assert page.locator(".vega-error").count() == 0, page.locator(".vega-error").all_inner_texts()
    assert page.locator(".chart[data-rendered=true]").count() == files.chart_count
    assert page.locator(".vega-embed svg.marks").count() == files.chart_count
    # every chart drew marks, not an empty frame
    for el in page.locator(".vega-embed svg.marks").all():
        assert el.locator("path, rect, line, symbol").count() > 5
    assert page.locator("table.leaderboard tbody tr").count() == 3
    assert page.locator("table.comparisons tbody tr").count() == 2
    assert page.locator("#definitions").count() == 1
    # tooltips work offline: hover a bar of the model comparison
    bar = page.locator("#chart-model_comparison svg.marks path[aria-roledescription='bar']").first
    assert bar.count() == 1
    bar.hover()
    page.wait_for_selector("#vg-tooltip-element.visible", timeout=5_000)
    tip = page.locator("#vg-tooltip-element").inner_text()
    assert "Success rate" in tip and "CI low" in tip
    assert errors == []
    assert attempted == []  # nothing tried to reach the network
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()


# ---------------------------------------------------------------- CLI end to end


def _run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fle_core", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_cli_report_from_a_synced_workspace(workspace, tmp_path, capsys):
    from fle_core.sweeps.simulate import simulate_trajectory
    from fle_core.warehouse.sync import sync
    from fle_core.workspace import sqlite_url

    url = sqlite_url(workspace.local_source_path)
    version = 500
    for model in ("gpt-4o", "llama-3.3-70b"):
        for task in ("iron_ore_throughput", "iron_plate_throughput"):
            for trial in range(3):
                version += 1
                simulate_trajectory(
                    url, model, task, version, trial=trial, seed=trial, steps=6, sweep_id="sw-rep"
                )
    simulate_trajectory(url, "other-model", "iron_ore_throughput", 999, steps=4, sweep_id="sw-other")
    result = sync(workspace, "local")
    env = {**os.environ, "FLE_CORE_HOME": str(workspace.root)}
    out = tmp_path / "out"
    proc = _run_cli("report", "--sweep", "sw-rep", "--out", str(out), "--reps", "50", "--seed", "5", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"data version {result.sync_id}" in proc.stdout
    html = (out / REPORT_FILE).read_text()
    assert '"sweep_id": "sw-rep"' in html.replace("&quot;", '"') and "50 resamples, seed 5" in html
    summaries = pl.read_parquet(out / "summaries.parquet")
    assert summaries.height == 12 and set(summaries["model"]) == {"gpt-4o", "llama-3.3-70b"}
    assert summaries["simulated"].all() and "(simulated data)" in html
    md = (out / "comparison.md").read_text()
    assert "### " in md and "gpt-4o" in md and "llama-3.3-70b" in md
    assert len(list((out / "charts").glob("*.svg"))) == html.count('class="chart-spec"')
    # filters that match nothing: a clear error, exit code 2, no traceback (in-process: same path)
    code, err = _main_in_process(capsys, "report", "--models", "no-such-model", "--out", str(tmp_path / "n"))
    assert code == 2 and "No trajectories match" in err and "Traceback" not in err
    code, err = _main_in_process(capsys, "report", "--reps", "0", "--out", str(tmp_path / "n"))
    assert code == 2 and "--reps must be at least 1" in err
    assert not (tmp_path / "n" / REPORT_FILE).exists()


def _main_in_process(capsys, *args: str) -> tuple[int, str]:
    from fle_core.cli import main

    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


def test_cli_report_before_any_sync_says_so(workspace, tmp_path, capsys):
    code, err = _main_in_process(capsys, "report", "--out", str(tmp_path / "o"))
    assert code == 2 and "Nothing has been synced" in err and "fle-core sync" in err
    with pytest.raises(SystemExit) as exc:
        _main_in_process(capsys, "report", "--sweep", "a", "--models", "b", "--out", "x")
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_every_report_flag_is_documented():
    from fle_core.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    flags = {
        opt
        for action in sub.choices["report"]._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }
    doc = (ROOT / "docs" / "report.md").read_text()
    missing = sorted(f for f in flags if f"`{f}" not in doc)
    assert flags >= {"--sweep", "--models", "--tasks", "--source", "--out", "--reps", "--seed"}
    assert missing == []


def test_cli_report_with_two_sides_adds_what_changed(tmp_path):
    """`--baseline/--candidate`: the same What changed table as the gate's, in the HTML, comparison.md
    and changes.csv; one side alone is a clear error."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from gate_fixtures import add_source, cli, outcome_rows

    from fle_core.analysis.changes import changes
    from fle_core.stats.changes import changes_markdown
    from fle_core.workspace import Workspace

    home = tmp_path / "ws"
    outcomes = {("main", "iron_ore_throughput"): [True] * 6 + [False] * 2}
    outcomes[("pr", "iron_ore_throughput")] = [True] + [False] * 7
    add_source(home, tmp_path / "runs.db", outcome_rows(outcomes), with_cli=False)
    out = tmp_path / "out"
    done = cli(home, "report", "--out", str(out), "--reps", "50", "--baseline", "main", "--candidate", "pr")
    assert done.returncode == 0, done.stderr
    found = changes(Workspace.open(home), "main", "pr")
    table = changes_markdown(found.table, "main", "pr")
    md = (out / "comparison.md").read_text()
    assert "### What changed: main → pr" in md and table in md
    html = (out / REPORT_FILE).read_text()
    assert 'id="changes">What changed: main → pr</h2>' in html and "| mixed |" in table
    assert "<td>6/8</td><td>1/8</td>" in html.replace("\n", "")
    assert pl.read_csv(out / "changes.csv")["task"].to_list() == ["iron_ore_throughput"]
    done = cli(home, "report", "--out", str(tmp_path / "x"), "--baseline", "main")
    assert done.returncode == 2 and "error: --baseline and --candidate go together" in done.stderr


def test_the_uncertainty_parts_follow_the_tests_and_name_their_methods(tmp_path):
    """The headline names no leader without the tests' say-so; the interval's method and
    population, the variance/planner/cost/reliability tables and their charts are there."""
    from fle_core.stats import bootstrap, cost, leader, reliability, variance
    from fle_core.stats.metrics import model_metrics

    f = contract_frames(3, trials=4)
    s = f["summaries"].with_columns((pl.col("total_tokens") * 2e-6).alias("cost_usd"))
    parts = variance.variance_components(s)
    frames = ReportFrames(
        summaries=s,
        model_metrics=model_metrics(s),
        pass_at_k_curve=bootstrap.pass_at_k_curve(s, reps=100),
        pass_hat_k_curve=bootstrap.pass_at_k_curve(s, reps=100, estimator="pass_hat_k"),
        variance=parts,
        plan=variance.plan(parts.drop_nulls("var_between"), half_width=0.05),
        cost=cost.cost_estimates(s, reps=100),
        frontier=cost.frontier(s, reps=100),
        consistency=reliability.consistency(s),
        standing=leader.leading_system(s, reps=100),
    )
    version = DataVersion(sync_id=1, infrastructure="exclude", population="suite")
    files = build_report(frames, tmp_path, data_version=version)
    html = files.html.read_text()
    standing = frames.standing
    if standing.leader is None:
        assert f"no significant difference between the top {len(standing.top)}" in html
    else:
        assert f"Leader: {standing.leader}" in html
    assert "task-clustered Wilson" in html and "success_ci_method" in html
    assert "left out of every number (--infrastructure exclude)" in html
    assert "this fixed suite: the tasks are held fixed (stratified; --population suite)" in html
    for anchor in ('id="variance"', 'id="planner"', 'id="cost"', 'id="reliability"'):
        assert anchor in html
    for name in ("variance", "plan", "cost", "frontier", "consistency", "pass_hat_k_curve"):
        assert (tmp_path / f"{name}.csv").exists()
    assert not (tmp_path / "standing.csv").exists()
    slugs = {p.stem for p in files.images}
    assert {"pass_k_reliability", "cost_frontier", "consistency"} <= slugs and "cost" not in slugs
