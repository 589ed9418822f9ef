"""The experiment-log workflow for any metric: runs files in, the log's table out.

The reference is the RL team's log (``tests/fixtures/factorion-EXPERIMENTS.md``, a copy of
``shared/seeds/factorion-EXPERIMENTS.md``):
its three throughput rows are rebuilt from the per-seed values it prints, by
the real ``fle-core compare`` command in a subprocess, with the test named
explicitly (``--test welch``). Statistics are checked against scipy and
statsmodels; readers against files written here in every supported format.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from fle_core.errors import MetricError, SourceError
from fle_core.sources.runs import read_runs
from fle_core.stats import compare as C
from fle_core.stats import markdown as md
from fle_core.stats import runs as R

MAIN = [0.6600, 0.4960, 0.5620, 0.4980, 0.6880]
MAIN_11 = [0.6900, 0.4980, 0.6860, 0.4360, 0.6280]  # PR #11 was benchmarked against a later main
PRS = {
    "16": (MAIN, [0.6380, 0.6140, 0.6240, 0.4960, 0.6280]),
    "13": (MAIN, [0.0000, 0.0000, 0.0000, 0.0640, 0.0000]),
    "11": (MAIN_11, [0.5220, 0.5060, 0.5380, 0.5000, 0.6000]),
}
HEADER = "| Metric | main (n=5) | PR (n=5) | Change | p-value | Verdict |"
SEPARATOR = "|--------|------------|----------|--------|---------|---------|"
# the rows as the log prints them (PR #16, #13, #11)
LOG_ROWS = {
    "16": "| Throughput (moving avg) | 0.5808 +/- 0.0897 | 0.6000 +/- 0.0588 | +3.3% | 0.701 | No significant difference |",
    "13": "| Throughput (moving avg) | 0.5808 +/- 0.0897 | 0.0128 +/- 0.0286 | **-97.8%** | 5.3e-05 | **Significantly worse** |",
    "11": "| Throughput (moving avg) | 0.5876 +/- 0.1149 | 0.5332 +/- 0.0402 | -9.3% | 0.364 | No significant difference |",
}
# a copy of shared/seeds/factorion-EXPERIMENTS.md, kept in the repository so CI has it
SEED_LOG = Path(__file__).resolve().parent / "fixtures" / "factorion-EXPERIMENTS.md"


def _runs_csv(path: Path, baseline, pr, metric="Throughput (moving avg)") -> Path:
    rows = [("main", i + 1, v) for i, v in enumerate(baseline)] + [("PR", i + 1, v) for i, v in enumerate(pr)]
    pl.DataFrame(rows, schema=["branch", "seed", metric], orient="row").write_csv(path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fle_core", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("pr", sorted(PRS))
def test_seed_log_throughput_rows_reproduced_exactly_by_welch_named_explicitly(tmp_path, pr):
    baseline, values = PRS[pr]
    path = _runs_csv(tmp_path / f"pr{pr}.csv", baseline, values)
    out = tmp_path / "log.md"
    res = _cli("compare", str(path), "--baseline", "main", "--test", "welch", "--out", str(out))
    assert res.returncode == 0, res.stderr
    lines = out.read_text().splitlines()
    assert res.stdout.startswith(out.read_text())
    i = lines.index(HEADER)
    assert lines[i + 1] == SEPARATOR
    assert lines[i + 2] == LOG_ROWS[pr]
    # the per-seed table carries the log's values at the log's precision
    seeds = lines[lines.index("Per-seed Throughput (moving avg):") + 4 :][:5]
    assert seeds == [
        f"| {k + 1} | {a:.4f} | {b:.4f} |" for k, (a, b) in enumerate(zip(baseline, values, strict=True))
    ]
    assert any("Welch's t-test" in line and "correction: none" in line for line in lines)


def test_the_expected_rows_are_the_logs_own():
    text = SEED_LOG.read_text()
    assert all(row in text for row in LOG_ROWS.values()) and HEADER in text and SEPARATOR in text


def test_p_values_match_scipy_for_every_test_and_the_default_is_welch():
    baseline, pr = PRS["13"]
    runs = pl.DataFrame(
        {"system": ["main"] * 5 + ["PR"] * 5, "seed": [str(i) for i in range(10)], "x": baseline + pr}
    )
    a, b = np.array(pr), np.array(baseline)
    want = {
        "welch": stats.ttest_ind(a, b, equal_var=False).pvalue,
        "student": stats.ttest_ind(a, b, equal_var=True).pvalue,
        "mannwhitney": stats.mannwhitneyu(a, b, alternative="two-sided").pvalue,
    }
    for test, p in want.items():
        row = R.compare_runs(runs, "main", test=test).row(0, named=True)
        assert row["p_value"] == pytest.approx(p, rel=1e-12) and row["p_adjusted"] == row["p_value"]
        assert row["verdict"] == ("significantly worse" if p < 0.05 else "no significant difference")
    assert R.compare_runs(runs, "main")["p_value"][0] == pytest.approx(want["welch"], rel=1e-12)
    student = R.compare_runs(runs, "main", test="student").row(0, named=True)
    ci = stats.ttest_ind(a, b, equal_var=True).confidence_interval(0.95)
    assert (student["diff_ci_low"], student["diff_ci_high"]) == pytest.approx((ci.low, ci.high))


def _family() -> pl.DataFrame:
    """All three PRs and three metrics in one file (one call = one family)."""
    rng = np.random.default_rng(3)
    rows = []
    for system, shift in (("main", 0.0), ("pr16", 0.02), ("pr13", -0.5), ("pr11", -0.05)):
        for seed in range(1, 6):
            rows.append(
                {
                    "system": system,
                    "seed": str(seed),
                    "throughput": 0.58 + shift + rng.normal(0, 0.08),
                    "curriculum_level": 1.0,
                    "sps": 122 + (93 if system == "pr16" else 0) + rng.normal(0, 2),
                }
            )
    return pl.DataFrame(rows)


@pytest.mark.parametrize(("correction", "method"), [("holm", "holm"), ("bh", "fdr_bh"), ("none", None)])
def test_correction_spans_the_whole_call_and_is_stated_under_the_table(correction, method):
    runs = _family()
    out = R.compare_runs(runs, "main", correction=correction)
    assert out.height == 9 and out["model_a"].unique(maintain_order=True).to_list() == [
        "pr16",
        "pr13",
        "pr11",
    ]
    raw = out["p_value"].to_numpy()
    want = raw if method is None else multipletests(raw, method=method)[1]
    np.testing.assert_allclose(out["p_adjusted"].to_numpy(), want, rtol=1e-12)
    text = R.runs_markdown(out, runs)
    note = {"holm": "Holm-adjusted", "bh": "Benjamini-Hochberg-adjusted", "none": "not adjusted"}[correction]
    assert text.count(note) == 3 and text.count("9 tests in this comparison family") == 3
    # curriculum level is constant on both sides: p = 1, and the log's "1.0 +/- 0.0"
    assert (
        "| curriculum\\_level | 1.0 +/- 0.0 | 1.0 +/- 0.0 | +0.0% | 1.000 | No significant difference |"
        not in text
    )
    assert (
        "| curriculum_level | 1.0 +/- 0.0 | 1.0 +/- 0.0 | +0.0% | 1.000 | No significant difference |" in text
    )
    sps = next(line for line in text.splitlines() if line.startswith("| sps |") and "**+" in line)
    assert "**Significantly better**" in sps and ".0 +/-" not in sps  # whole units, like "122 +/- 1"


def test_lower_is_better_flips_the_verdict():
    runs = _family()
    out = R.compare_runs(runs, "main", ["sps"], systems=["pr16"], lower_is_better=["sps"])
    assert out["verdict"].to_list() == ["significantly worse"]


def test_digits_follow_the_metric_scale():
    assert md.digits_for([0.5808, 0.6, 0.0128]) == 4
    assert md.digits_for([122.4, 215.3]) == 0
    assert md.digits_for([1.0, 1.0]) == 1  # a whole-number metric: "1.0 +/- 0.0"
    assert md.digits_for([5.43, 2.1]) == 2 and md.digits_for([12.3, 40.0]) == 1
    assert md.digits_for([0.0042]) == 6 and md.digits_for([None, float("nan")]) == 4
    assert md.fmt_p(5.27e-05) == "5.3e-05" and md.fmt_p(0.70094) == "0.701" and md.fmt_p(None) == "n/a"


def test_labels_are_escaped_and_cannot_inject_markup():
    evil = "<img src=x onerror=alert(1)>|`x`*b*[l](http://e)"
    runs = pl.DataFrame(
        {"system": ["main", "main", evil, evil], "seed": ["1", "2", "1", "2"], "m": [1.0, 2.0, 3.0, 5.0]}
    )
    text = R.runs_markdown(R.compare_runs(runs, "main"), runs, labels={"m": "_score_ #1"})
    assert "<img" not in text and "&lt;img" in text
    assert "\\|\\`x\\`\\*b\\*\\[l\\](http://e)" in text
    assert "\\_score\\_ #1" in text
    assert md.md_text("iron_ore_throughput") == "iron_ore_throughput"  # intraword _ stays readable
    assert md.md_text("# title\nsecond") == "\\# title second"
    assert md.md_text("W&B &amp; &#60;") == "W&B &amp;amp; &amp;#60;"


def test_tasks_give_per_task_rows_and_a_stratified_t_all_row():
    rng = np.random.default_rng(11)
    rows = []
    for task, n_main, n_pr, shift in (("8x8", 5, 4, 0.1), ("6x6", 3, 6, 0.05), ("5x5", 4, 4, 0.0)):
        for system, n in (("main", n_main), ("PR", n_pr)):
            for seed in range(n):
                mu = 0.5 + (shift if system == "PR" else 0.0)
                rows.append({"system": system, "seed": str(seed), "task": task, "y": mu + rng.normal(0, 0.1)})
    runs = pl.DataFrame(rows)
    strata = [
        (
            runs.filter((pl.col("task") == t) & (pl.col("system") == "PR"))["y"].to_numpy(),
            runs.filter((pl.col("task") == t) & (pl.col("system") == "main"))["y"].to_numpy(),
        )
        for t in ("5x5", "6x6", "8x8")
    ]
    welch = R.compare_runs(runs, "main", test="welch")
    assert welch["task"].to_list() == ["5x5", "6x6", "8x8", "ALL"]
    for (xa, xb), p in zip(strata, welch["p_value"][:3], strict=True):
        assert p == pytest.approx(stats.ttest_ind(xa, xb, equal_var=False).pvalue, rel=1e-12)
    all_row = welch.row(3, named=True)
    assert all_row["test"] == "stratified_welch_t"
    assert all_row["p_value"] == pytest.approx(_welch_satterthwaite(strata), rel=1e-12)
    student = R.compare_runs(runs, "main", test="student").row(3, named=True)
    assert student["test"] == "stratified_student_t"
    assert student["p_value"] == pytest.approx(_ols_contrast_p(strata), rel=1e-9)
    text = R.runs_markdown(welch, runs)
    assert "| y (all tasks) |" in text and "| Task | Seed | main | PR |" in text
    assert "stratified Welch t-test (all-tasks rows)" in text


def _welch_satterthwaite(strata) -> float:
    """Published formula, written out independently: D / SE with Satterthwaite df."""
    k = len(strata)
    d = sum(a.mean() - b.mean() for a, b in strata) / k
    parts = [(x.var(ddof=1) / len(x), len(x) - 1) for pair in strata for x in pair]
    se2 = sum(v for v, _ in parts) / k**2
    df = sum(v for v, _ in parts) ** 2 / sum(v**2 / f for v, f in parts)
    return float(2 * stats.t.sf(abs(d) / np.sqrt(se2), df))


def _ols_contrast_p(strata) -> float:
    """The stratified Student t as a contrast in the cell-means OLS model (statsmodels)."""
    import statsmodels.api as sm

    ys, cols = [], []
    k = len(strata)
    for j, (a, b) in enumerate(strata):
        for values, side in ((a, 0), (b, 1)):
            for v in values:
                x = np.zeros(2 * k)
                x[2 * j + side] = 1.0
                ys.append(v)
                cols.append(x)
    fit = sm.OLS(np.array(ys), np.array(cols)).fit()
    contrast = np.tile([1.0, -1.0], k) / k
    return float(fit.t_test(contrast).pvalue)


def test_one_task_compare_matches_scipy_through_the_single_task_rule():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([2.0, 5.0, 6.0, 9.0])
    assert C.stratified_t_test([(a, b)]) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert C.stratified_t_test([(a, b)], equal_var=True) == pytest.approx(stats.ttest_ind(a, b).pvalue)
    assert C.stratified_t_test([(a, b[:1])]) is None  # one value: Welch undefined
    assert C.stratified_t_test([(np.ones(3), np.ones(3))]) == 1.0


# ------------------------------------------------------------------ readers ---
def _wandb_export(path: Path) -> Path:
    """A runs table as the W&B web UI exports it: run columns, config, summary, W&B's own."""
    header = ["Name", "State", "Notes", "User", "Tags", "Created", "Runtime", "Sweep", "branch", "seed", "lr",
              "throughput", "sps", "_runtime", "_step", "_timestamp"]  # fmt: skip
    rows = []
    for i, (branch, values) in enumerate((("main", PRS["16"][0]), ("pr16", PRS["16"][1]))):
        for s, v in enumerate(values, 1):
            rows.append([f"run-{branch}-{s}", "finished", "-", "beyarkay", "bench", "2026-02-20T10:00:00", "812",
                         "", branch, str(s), "0.0003", str(v), str(122 + 90 * i), "812.5", "100000", "1.7e9"])  # fmt: skip
    rows.append(["run-crash", "crashed", "-", "beyarkay", "", "2026-02-20T11:00:00", "40", "", "pr16", "6", "0.0003",
                 "0.01", "30", "40", "900", "1.7e9"])  # fmt: skip
    rows.append(["run-live", "running", "-", "beyarkay", "", "2026-02-20T11:00:00", "40", "", "pr16", "7", "0.0003",
                 "0.02", "31", "40", "900", "1.7e9"])  # fmt: skip
    lines = [",".join(header), *(",".join(f'"{c}"' for c in r) for r in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_wandb_export_keeps_finished_runs_and_says_what_it_skipped(tmp_path):
    table = read_runs(_wandb_export(tmp_path / "wandb_export_2026-02-20.csv"))
    assert table.kind == "wandb" and table.systems == ["main", "pr16"]
    assert table.frame.height == 10 and "lr" in table.metrics and "_step" not in table.metrics
    assert "Runtime" not in table.metrics and "seed" not in table.metrics
    assert any("skipped 2 W&B run(s)" in n and "1 crashed" in n and "1 running" in n for n in table.notes)
    out = R.compare_runs(table.frame, "main", ["throughput"])
    assert out["p_value"][0] == pytest.approx(0.7009450202100781, rel=1e-9)
    every = read_runs(tmp_path / "wandb_export_2026-02-20.csv", states=None)
    assert every.frame.height == 12


def test_cli_on_a_wandb_export_and_its_flags(tmp_path):
    path = _wandb_export(tmp_path / "export.csv")
    res = _cli("compare", str(path), "--baseline", "main", "--metric", "sps", "--metric", "throughput",
               "--label", "throughput=Throughput (moving avg)", "--label", "sps=Training speed (SPS)",
               "--system-column", "branch", "--per-seed", "all", "--correction", "holm")  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "export.compare.md").read_text()
    assert text.index("| Training speed (SPS) |") < text.index("| Throughput (moving avg) |")
    assert "Per-seed Training speed (SPS):" in text and "Per-seed Throughput (moving avg):" in text
    assert "Holm-adjusted" in text and "skipped 2 W&B run(s)" in text
    bad = _cli("compare", str(path), "--baseline", "develop")
    assert bad.returncode == 2 and bad.stderr.startswith("error: baseline 'develop' is not a system")
    assert "Traceback" not in bad.stderr and "hint: systems: main, pr16" in bad.stderr


def test_parquet_jsonl_and_nested_records_read_the_same(tmp_path):
    csv = _runs_csv(tmp_path / "r.csv", *PRS["11"])
    frame = pl.read_csv(csv)
    frame.write_parquet(tmp_path / "r.parquet")
    nested = [
        {
            "config": {"branch": r["branch"], "seed": r["seed"]},
            "summary": {"throughput": r["Throughput (moving avg)"]},
        }
        for r in frame.iter_rows(named=True)
    ]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in nested))
    want = R.compare_runs(read_runs(csv).frame, "main")["p_value"][0]
    assert want == pytest.approx(0.363824369319152, rel=1e-9)
    pq = read_runs(tmp_path / "r.parquet")
    js = read_runs(tmp_path / "r.jsonl")
    assert js.metrics == ["throughput"] and js.kind == "jsonl"
    for table in (pq, js):
        assert R.compare_runs(table.frame, "main")["p_value"][0] == pytest.approx(want, rel=1e-12)
    upload = read_runs(csv.read_bytes(), name="r.csv")
    assert upload.frame.equals(read_runs(csv).frame)


def test_bad_runs_files_give_clear_errors_and_lose_nothing(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        read_runs(tmp_path / "nope.csv")
    (tmp_path / "x.txt").write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="cannot tell the format"):
        read_runs(tmp_path / "x.txt")
    (tmp_path / "nosys.csv").write_text("who,seed,y\nmain,1,2\n")
    with pytest.raises(SourceError, match="which column names the system") as err:
        read_runs(tmp_path / "nosys.csv")
    assert err.value.hint and "--system-column" in err.value.hint and "who" in err.value.hint
    (tmp_path / "mixed.csv").write_text(
        "system,seed,y,note\nmain,1,0.5,a\nmain,2,oops,b\nPR,1,0.7,c\nPR,2,0.9,d\n,3,1.0,e\n"
    )
    table = read_runs(tmp_path / "mixed.csv", metrics=["y"])
    assert table.frame["y"].to_list() == [0.5, None, 0.7, 0.9]
    assert any("1 value(s) of 'y' left out: 1 not a number ('oops')" in n for n in table.notes)
    assert any("skipped 1 run(s) with no 'system' value" in n for n in table.notes)
    with pytest.raises(SourceError, match="hold no numbers"):
        read_runs(tmp_path / "mixed.csv", metrics=["note"])
    with pytest.raises(MetricError, match="unknown test"):
        R.compare_runs(table.frame, "main", test="ztest")
    with pytest.raises(MetricError, match="unknown correction"):
        R.compare_runs(table.frame, "main", correction="bonferroni")
    with pytest.raises(MetricError, match="nothing to compare"):
        R.compare_runs(table.frame.filter(pl.col("system") == "main"), "main")


# ------------------------------------------------------- comparison_markdown ---
def test_comparison_markdown_lists_the_baseline_first_in_heading_and_columns():
    rows = [
        ("a", "t1", 1.0),
        ("a", "t1", 1.0),
        ("a", "t1", 0.0),
        ("b", "t1", 0.0),
        ("b", "t1", 0.0),
        ("b", "t1", 1.0),
    ]
    summaries = pl.DataFrame(rows, schema=["model", "task", "success"], orient="row")
    text = C.comparison_markdown(C.compare_models(summaries, "a", "b", reps=50))
    lines = text.splitlines()
    assert lines[0] == "### b (baseline) vs a"
    assert lines[2] == "| Metric | b (n=3) | a (n=3) | Change | p-value | Verdict |"
    assert "(all tasks)" not in text and sum(line.startswith("| success (t1) |") for line in lines) == 1
    two = pl.concat([summaries, summaries.with_columns(pl.lit("t2").alias("task"))])
    text2 = C.comparison_markdown(C.compare_models(two, "a", "b", reps=50))
    assert "| success (all tasks) |" in text2 and "(n=" in text2.splitlines()[4]
