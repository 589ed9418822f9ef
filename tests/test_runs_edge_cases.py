"""The experiment-log compare on the three inputs it used to get wrong (issue 19).

* identical baseline and PR runs: the seed log's "Invalid (same data)", no p-value;
* two constant samples that differ (1,1,1 vs 2,2,2): a defined p-value, scipy's;
* a ``nan`` / ``inf`` / ``abc`` cell: the column stays, the cell is null, and the
  note counts each kind of exclusion.

Each runs the real ``fle-core compare`` in a subprocess where the output matters.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import polars as pl
import pytest
from scipy import stats

from fle_core.sources.runs import read_runs
from fle_core.stats import compare as C
from fle_core.stats import runs as R

SEED_LOG = Path(__file__).resolve().parent / "fixtures" / "factorion-EXPERIMENTS.md"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fle_core", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def test_identical_runs_are_invalid_same_data_as_the_seed_log_writes(tmp_path):
    """PR #14 of the seed log: the benchmark compared the PR with itself."""
    log_row = next(line for line in SEED_LOG.read_text().splitlines() if "Invalid (same data)" in line)
    values = [0.71, 0.93, 0.74, 0.95, 0.79]
    rows = "\n".join(f"{b},{i + 1},{v}" for b in ("main", "PR") for i, v in enumerate(values))
    path = _write(tmp_path / "same.csv", f"branch,seed,Throughput\n{rows}")
    done = _cli("compare", str(path), "--baseline", "main")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| Throughput"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-1] == "Invalid (same data)" == log_row.strip("| ").rsplit("|", 1)[-1].strip()
    assert cells[4] == "n/a"  # no test ran: not "1.000"
    assert "No significant difference" not in done.stdout
    assert "repeat the baseline's seed for seed" in done.stdout
    frame = R.compare_runs(read_runs(path).frame, "main")
    assert frame["verdict"].to_list() == [C.INVALID] and frame["p_value"].to_list() == [None]


def test_a_copy_flags_constant_metrics_too_but_agreeing_constants_alone_do_not(tmp_path):
    text = """
system,seed,throughput,solved
main,1,0.5,1
main,2,0.7,1
main,3,0.6,1
copy,1,0.5,1
copy,2,0.7,1
copy,3,0.6,1
other,1,0.9,1
other,2,0.8,1
other,3,0.95,1
"""
    runs = read_runs(_write(tmp_path / "r.csv", text)).frame
    out = R.compare_runs(runs, "main")
    verdict = {(r["model_a"], r["metric"]): r["verdict"] for r in out.iter_rows(named=True)}
    assert verdict[("copy", "throughput")] == verdict[("copy", "solved")] == C.INVALID
    assert verdict[("other", "solved")] == C.NO_DIFF  # both always solve: a real, equal result
    assert verdict[("other", "throughput")] != C.INVALID
    # the invalid rows are not tests: the family counts only the others
    assert "2 tests in this comparison family" in R.correction_note(out)


def test_same_values_under_different_seeds_are_not_the_same_runs(tmp_path):
    text = "system,seed,x\nmain,1,0.5\nmain,2,0.7\nPR,1,0.7\nPR,2,0.5\n"
    out = R.compare_runs(read_runs(_write(tmp_path / "r.csv", text)).frame, "main")
    assert out["verdict"].to_list() == [C.NO_DIFF] and out["p_value"][0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("test", "name"), [("welch", "welch_t"), ("student", "student_t"), ("mannwhitney", "mann_whitney_u")]
)
def test_complete_separation_with_zero_variance_gets_scipys_p_value(tmp_path, test, name):
    path = _write(
        tmp_path / "flat.csv", "system,seed,x\nmain,1,1\nmain,2,1\nmain,3,1\nPR,1,2\nPR,2,2\nPR,3,2\n"
    )
    out = R.compare_runs(read_runs(path).frame, "main", test=test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about the constant samples
        if name == "mann_whitney_u":
            want = stats.mannwhitneyu([2, 2, 2], [1, 1, 1], alternative="two-sided").pvalue
        else:
            want = stats.ttest_ind([2, 2, 2], [1, 1, 1], equal_var=name == "student_t").pvalue
    assert out["p_value"][0] == pytest.approx(want, abs=1e-15)
    assert out["verdict"][0] == C.BETTER  # p < 0.05 for all three (MWU asymptotic: 0.047)
    done = _cli("compare", str(path), "--baseline", "main", "--test", test)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| x"))
    assert "**Significantly better**" in row and "n/a" not in row
    if name != "mann_whitney_u":
        assert "| 0 |" in row and "t = ±inf" in done.stdout


def test_stratified_t_on_constant_tasks_is_defined_too():
    strata = [(pl.Series([1.0, 1.0]).to_numpy(), pl.Series([2.0, 2.0]).to_numpy())] * 2
    assert C.stratified_t_test(strata) == 0.0
    same = [(pl.Series([1.0, 1.0]).to_numpy(), pl.Series([1.0, 1.0]).to_numpy())] * 2
    assert C.stratified_t_test(same) == 1.0


def test_a_nan_or_text_cell_keeps_its_column_and_every_exclusion_is_counted(tmp_path):
    text = """
system,seed,throughput,level,steps
main,1,0.61,3,100
main,2,nan,4,110
main,3,0.66,abc,90
PR,1,0.70,5,inf
PR,2,0.72,NaN,95
PR,3,0.69,6,-inf
"""
    table = read_runs(_write(tmp_path / "bad.csv", text))
    assert table.metrics == ["throughput", "level", "steps"]  # none dropped for one bad cell
    # NaN and ±inf are results kept as they are (issue 23); text is left out (null)
    assert str(table.frame["throughput"].to_list()) == str([0.61, float("nan"), 0.66, 0.70, 0.72, 0.69])
    assert str(table.frame["level"].to_list()) == str([3.0, 4.0, None, 5.0, float("nan"), 6.0])
    assert table.frame["steps"].to_list() == [100.0, 110.0, 90.0, float("inf"), 95.0, float("-inf")]
    notes = "\n".join(table.notes)
    assert "1 non-finite value(s) of 'throughput' kept: 1 NaN" in notes
    assert "1 non-finite value(s) of 'level' kept: 1 NaN" in notes
    assert "1 value(s) of 'level' left out: 1 not a number ('abc')" in notes
    assert "2 non-finite value(s) of 'steps' kept: 2 inf" in notes
    done = _cli("compare", str(tmp_path / "bad.csv"), "--baseline", "main")
    assert done.returncode == 0, done.stderr
    for metric in ("throughput", "level", "steps"):
        assert re.search(rf"^\| {metric} \|", done.stdout, re.M), f"{metric} row missing"
    assert "'level' left out: 1 not a number ('abc')" in done.stdout


def test_a_text_column_is_not_taken_for_a_metric(tmp_path):
    text = "system,seed,x,commit\nmain,1,1,abc123\nmain,2,2,def456\nPR,1,3,0a1b2c\nPR,2,4,123456\n"
    table = read_runs(_write(tmp_path / "r.csv", text))
    assert table.metrics == ["x"]  # mostly text: a label, not a metric with bad cells
