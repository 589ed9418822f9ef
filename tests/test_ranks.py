"""``fle-core compare`` at any size (issue 23, item 10).

* ``stats.ranks`` gives exactly the floats of the n×m pair matrix (brute force written
  here, on random inputs with and without ties, small and large enough for the
  selection path) and scipy's Mann-Whitney U;
* the large-cell resampling (binomial for 0/1, the bootstrap's normal limit otherwise)
  agrees with the run-by-run bootstrap it replaces;
* the real CLI on the attack's 50,000-run file stays far below the 4.66 GiB it used to
  allocate (peak RSS of the child, from ``os.wait4``), and reports progress.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from fle_core.cli.compare import _Progress
from fle_core.stats import compare as C
from fle_core.stats import ranks
from fle_core.stats import runs as R
from fle_core.stats._kernels import Resamples, percentiles
from fle_core.stats.bootstrap import prob_improvement_point


def _pairs(x, y) -> np.ndarray:
    return np.asarray(x, float)[:, None] - np.asarray(y, float)[None, :]


def _samples(rng: np.random.Generator, n: int, m: int, kind: int):
    if kind == 0:
        return rng.integers(0, 2, n).astype(float), rng.integers(0, 2, m).astype(float)
    if kind == 1:
        return rng.integers(0, 6, n).astype(float), rng.integers(0, 4, m).astype(float)
    if kind == 2:
        return rng.normal(size=n) * 1e3, rng.normal(size=m) + 0.3
    return np.round(rng.normal(size=n), 1), np.full(m, 0.1)


@pytest.mark.parametrize("size", [(1, 1), (3, 7), (40, 25), (300, 170)])
def test_hodges_lehmann_and_kth_difference_equal_the_pair_matrix(size):
    rng = np.random.default_rng(size[0])
    for trial in range(24):
        n, m = int(rng.integers(1, size[0] + 1)), int(rng.integers(1, size[1] + 1))
        x, y = _samples(rng, n, m, trial % 4)
        d = _pairs(x, y)
        assert ranks.hodges_lehmann(x, y) == float(np.median(d))
        assert C.hodges_lehmann(x, y) == float(np.median(d))
        flat = np.sort(d.ravel())
        for k in {0, flat.size - 1, int(rng.integers(flat.size))}:
            assert ranks.kth_difference(x, y, k) == flat[k]


@pytest.mark.parametrize("size", [(1, 1), (9, 4), (300, 170)])
def test_probability_of_improvement_equals_the_win_matrix_and_scipys_u(size):
    rng = np.random.default_rng(7 + size[0])
    for trial in range(24):
        n, m = int(rng.integers(1, size[0] + 1)), int(rng.integers(1, size[1] + 1))
        x, y = _samples(rng, n, m, trial % 4)
        wins = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        assert prob_improvement_point(x, y) == float(wins.mean())
        assert ranks.win_total(x, y) == stats.mannwhitneyu(x, y).statistic
        assert np.array_equal(ranks.placements(x, y), wins.mean(axis=1))


def test_a_million_by_a_million_median_difference_needs_no_pair_matrix():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=1_000_000), rng.normal(size=1_000_000) + 0.25
    # the matrix would be 8 TB; the shift of two normals is their mean difference
    assert ranks.hodges_lehmann(x, y) == pytest.approx(-0.25, abs=0.005)


def test_large_cells_resample_like_the_run_by_run_bootstrap():
    rng = np.random.default_rng(3)
    a, b = rng.gamma(2.0, size=3000), rng.gamma(2.1, size=2500)  # skewed, as losses are
    exact, limit = Resamples(2000, 0), Resamples(2000, 0, large_cell=0)
    assert exact.large(a) is False and limit.large(a) is True
    for fn in (
        lambda rs: rs.mean_reps("A", "t", a) - rs.mean_reps("B", "t", b),
        lambda rs: rs.poi_reps("A", "t", a, "B", "t", b),
    ):
        lo_e, hi_e = percentiles(fn(exact), 0.95)
        lo_l, hi_l = percentiles(fn(limit), 0.95)
        width = hi_e - lo_e
        assert abs(lo_l - lo_e) < 0.1 * width and abs(hi_l - hi_e) < 0.1 * width
    # one large side against a small one (a baseline of 3000 runs, a PR of 12)
    small = rng.gamma(2.0, size=12)
    lo_e, hi_e = percentiles(exact.poi_reps("S", "t", small, "A", "t", a), 0.95)
    lo_l, hi_l = percentiles(limit.poi_reps("S", "t", small, "A", "t", a), 0.95)
    assert abs(lo_l - lo_e) < 0.1 * (hi_e - lo_e) and abs(hi_l - hi_e) < 0.1 * (hi_e - lo_e)


def test_large_binary_cells_draw_the_exact_binomial():
    x = np.r_[np.ones(700), np.zeros(2300)]
    exact, limit = Resamples(4000, 1), Resamples(4000, 1, large_cell=0)
    e, lm = exact.mean_reps("A", "t", x), limit.mean_reps("A", "t", x)
    assert e.mean() == pytest.approx(lm.mean(), abs=5e-4)
    assert lm.std() == pytest.approx(np.sqrt(0.7 / 3 * (1 - 0.7 / 3) / 3000), rel=0.05)
    assert e.std() == pytest.approx(lm.std(), rel=0.06)


def test_compare_runs_reports_progress_and_the_cli_progress_line(capsys):
    rows = [("main" if s == 0 else f"pr-{s}", str(i), float(i + s % 7)) for s in range(600) for i in range(3)]
    runs = pl.DataFrame(rows, schema=["system", "seed", "x"], orient="row")
    seen: list[tuple[int, int]] = []
    out = R.compare_runs(runs, "main", reps=50, progress=lambda d, t: seen.append((d, t)))
    assert out.height == 599 and seen[-1] == (599, 599)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 3
    report = _Progress(after=0.0)
    report(256, 599)
    report(599, 599)
    err = capsys.readouterr().err
    assert "compare: 256/599 comparisons (42%)" in err and "599/599" in err
    quiet = _Progress(after=60.0)  # not a terminal and quick: nothing printed
    quiet(599, 599)
    assert capsys.readouterr().err == ""


def test_the_cli_on_50000_runs_stays_within_memory(tmp_path):
    """The attack: a 1.8 MB CSV of 50,000 runs failed allocating 4.66 GiB (7.4 GB peak)."""
    rnd = random.Random(1)
    path = tmp_path / "runs.csv"
    with path.open("w") as f:
        f.write("branch,seed,loss\n")
        for branch, mu in (("main", 2.0), ("PR", 1.99)):
            f.writelines(f"{branch},{i},{rnd.gauss(mu, 0.5):.4f}\n" for i in range(25_000))
    # output to files: a pipe fills at 64 KiB (the per-seed table has 25,000 rows) and the
    # child would block on it while this process waits for it
    with (tmp_path / "out.txt").open("w") as out_f, (tmp_path / "err.txt").open("w") as err_f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fle_core", "compare", str(path), "--baseline", "main",
             "--out", str(tmp_path / "o.md")],
            stdout=out_f,
            stderr=err_f,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
    out, err = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    assert os.waitstatus_to_exitcode(status) == 0, err
    assert usage.ru_maxrss < 1_000_000, f"peak RSS {usage.ru_maxrss} KiB"  # Linux: KiB
    row = next(x for x in out.splitlines() if x.startswith("| loss"))
    xs = pl.read_csv(path)
    want = stats.ttest_ind(
        xs.filter(pl.col("branch") == "PR")["loss"].to_numpy(),
        xs.filter(pl.col("branch") == "main")["loss"].to_numpy(),
        equal_var=False,
    ).pvalue
    assert f"| {want:.3f} |" in row or f"| {want:.1e} |" in row
    assert Path(tmp_path / "o.md").is_file()
