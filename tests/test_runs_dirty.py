"""The experiment-log compare on dirty files (issue 23, item 7 and the one-seed minor item).

* a diverged seed (``loss = inf``, ``nan``): the row is "Not tested", the run is shown,
  never dropped into a "Significantly better";
* a file concatenated twice: refused with one ``error:`` line (exit 2) unless
  ``--allow-duplicates``;
* one seed per branch: "Not tested", never "No significant difference".

The CLI runs in a subprocess; every p-value that is reported is checked against scipy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from fle_core.errors import SourceError
from fle_core.sources.runs import read_runs
from fle_core.stats import compare as C
from fle_core.stats import runs as R

MAIN = [2.31, 2.40, 2.35, 2.29, 2.38]
PR = [1.01, 1.05, float("inf"), 0.99, 1.02]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fle_core", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _csv(path: Path, rows: dict[str, list[float]], metric: str = "loss") -> Path:
    lines = [f"branch,seed,{metric}"]
    lines += [f"{b},{i + 1},{v}" for b, vs in rows.items() for i, v in enumerate(vs)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(stdout: str, metric: str = "loss") -> list[str]:
    line = next(x for x in stdout.splitlines() if x.startswith(f"| {metric}"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.mark.parametrize("bad", ["inf", "nan", "-inf"])
def test_a_diverged_seed_is_not_tested_and_shown_not_dropped(tmp_path, bad):
    """The attack: PR with loss = inf on one seed was "Significantly better (−55%, p = 1.2e-04)"."""
    path = _csv(tmp_path / "r.csv", {"main": MAIN, "PR": [*PR[:2], float(bad), *PR[3:]]})
    done = _cli("compare", str(path), "--baseline", "main", "--lower-is-better", "loss")
    assert done.returncode == 0, done.stderr
    cells = _row(done.stdout)
    assert cells[-1] == "Not tested" and cells[4] == "n/a" and cells[3] == "n/a"
    assert cells[2].endswith("[+1 NaN/inf]")
    assert "Significantly" not in done.stdout and "No significant difference" not in done.stdout
    assert "Not tested (non-finite)" in done.stdout
    shown = {"inf": "inf", "nan": "NaN", "-inf": "-inf"}[bad]
    assert f"| 3 | 2.35 | {shown} |" in done.stdout  # the per-seed table shows the run
    out = R.compare_runs(read_runs(path).frame, "main", lower_is_better=["loss"])
    assert out["verdict"].to_list() == [C.NOT_TESTED] and out["p_value"].to_list() == [None]
    assert out["a_nonfinite"].to_list() == [1] and out["b_nonfinite"].to_list() == [0]
    assert out["not_tested"].to_list() == ["non-finite values"]


def test_a_non_finite_baseline_run_stops_only_its_metric_and_the_rest_match_scipy(tmp_path):
    text = "system,seed,loss,speed\n" + "\n".join(
        [
            "main,1,nan,10.0",
            "main,2,2.0,11.0",
            "main,3,2.1,10.5",
            "A,1,1.0,12.0",
            "A,2,1.1,12.5",
            "A,3,1.2,12.2",
            "B,1,2.2,10.1",
            "B,2,2.3,10.4",
            "B,3,2.1,10.9",
        ]
    )
    (tmp_path / "r.csv").write_text(text + "\n")
    out = R.compare_runs(read_runs(tmp_path / "r.csv").frame, "main", correction="holm")
    by = {(r["model_a"], r["metric"]): r for r in out.iter_rows(named=True)}
    for s in ("A", "B"):
        assert by[(s, "loss")]["verdict"] == C.NOT_TESTED and by[(s, "loss")]["b_nonfinite"] == 1
    raw = [
        stats.ttest_ind(x, [10.0, 11.0, 10.5], equal_var=False).pvalue
        for x in ([12, 12.5, 12.2], [10.1, 10.4, 10.9])
    ]
    holm = sorted(raw)
    want = {min(raw): min(2 * holm[0], 1), max(raw): min(max(2 * holm[0], holm[1]), 1)}
    assert by[("A", "speed")]["p_adjusted"] == pytest.approx(want[raw[0]])
    assert by[("B", "speed")]["p_adjusted"] == pytest.approx(want[raw[1]])
    assert "2 tests in this comparison family" in R.correction_note(out)  # the untested rows are not counted


def test_with_tasks_only_the_touched_task_and_the_all_row_are_untested(tmp_path):
    lines = ["system,seed,task,loss"]
    for task, base, pr in (
        ("a", [1.0, 1.2, 1.1], [0.5, 0.6, "inf"]),
        ("b", [2.0, 2.2, 2.1], [1.5, 1.7, 1.6]),
    ):
        lines += [f"main,{i},{task},{v}" for i, v in enumerate(base)]
        lines += [f"PR,{i},{task},{v}" for i, v in enumerate(pr)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    out = R.compare_runs(read_runs(tmp_path / "t.csv").frame, "main")
    by = {r["task"]: r for r in out.iter_rows(named=True)}
    assert by["a"]["verdict"] == by[C.ALL_TASKS]["verdict"] == C.NOT_TESTED
    assert by["b"]["p_value"] == pytest.approx(
        stats.ttest_ind([1.5, 1.7, 1.6], [2.0, 2.2, 2.1], equal_var=False).pvalue
    )


def test_a_file_concatenated_twice_is_refused_unless_allowed(tmp_path):
    """The attack: doubling every run turned p = 0.106 into p = 0.004 "Significantly better"."""
    path = _csv(tmp_path / "once.csv", {"main": [0.50, 0.62, 0.55, 0.58], "PR": [0.60, 0.66, 0.52, 0.70]})
    body = path.read_text().splitlines()
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join([*body, *body[1:]]) + "\n")
    done = _cli("compare", str(twice), "--baseline", "main")
    assert done.returncode == 2 and done.stdout == ""
    errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert "8 (system, seed) key(s) hold more than one run" in errors[0] and "concatenated twice" in errors[0]
    assert "--allow-duplicates" in done.stderr
    with pytest.raises(SourceError):
        read_runs(twice)
    allowed = _cli("compare", str(twice), "--baseline", "main", "--allow-duplicates")
    assert allowed.returncode == 0, allowed.stderr
    assert "main (n=8)" in allowed.stdout and "each run counts" in allowed.stdout
    once = _cli("compare", str(path), "--baseline", "main")
    assert "main (n=4)" in once.stdout and _row(once.stdout)[-1] == "No significant difference"


def test_the_same_seed_under_different_tasks_is_not_a_duplicate(tmp_path):
    text = "system,seed,task,x\nmain,1,a,1\nmain,1,b,2\nmain,2,a,1.5\nmain,2,b,2.5\n"
    text += "PR,1,a,1.1\nPR,1,b,2.1\nPR,2,a,1.2\nPR,2,b,2.6\n"
    (tmp_path / "r.csv").write_text(text)
    assert read_runs(tmp_path / "r.csv").frame.height == 8


@pytest.mark.parametrize("test", ["welch", "student"])
def test_one_seed_per_branch_is_not_tested_not_no_difference(tmp_path, test):
    path = _csv(tmp_path / "one.csv", {"main": [0.5], "PR": [0.9]}, metric="x")
    done = _cli("compare", str(path), "--baseline", "main", "--test", test)
    assert done.returncode == 0, done.stderr
    cells = _row(done.stdout, "x")
    assert cells[-1] == "Not tested" and cells[4] == "n/a"
    assert "No significant difference" not in done.stdout and "Not tested (too few runs)" in done.stdout
    out = R.compare_runs(read_runs(path).frame, "main", test=test)
    assert out["not_tested"].to_list() == ["too few runs"]


def test_one_seed_against_many_under_welch_is_not_tested_but_mann_whitney_runs(tmp_path):
    path = _csv(tmp_path / "r.csv", {"main": [0.5, 0.6, 0.55], "PR": [0.9]}, metric="x")
    welch = R.compare_runs(read_runs(path).frame, "main")
    assert welch["verdict"].to_list() == [C.NOT_TESTED]
    mw = R.compare_runs(read_runs(path).frame, "main", test="mannwhitney")
    want = stats.mannwhitneyu([0.9], [0.5, 0.6, 0.55], alternative="two-sided").pvalue
    assert mw["p_value"][0] == pytest.approx(want) and mw["verdict"][0] == C.NO_DIFF
