"""Fast paths taken for page speed give the same numbers as the general code.

``bootstrap._pooled_score_bootstrap`` (compact resamples, sort-based IQM) must
reproduce ``stratified_bootstrap`` with the generic ``iqm_metric`` /
``mean_metric`` / ``optimality_gap_metric`` replicate by replicate (same seed →
same runs drawn), and the replicates must equal a brute-force recomputation
with ``scipy.stats.trim_mean`` on the runs each replicate drew.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fle_core.stats import bootstrap as B

METRICS = ("iqm", "mean", "median", "optimality_gap", "mean_pooled", "optimality_gap_pooled")


def _generic(tasks, reps, seed, resample_tasks=False):
    fns = B.SCORE_METRICS
    return B.stratified_bootstrap(
        tasks, lambda x: np.stack([fns[m](x) for m in METRICS], 1), reps, seed, resample_tasks
    )


@pytest.mark.parametrize("clustered", [False, True], ids=["suite", "tasks"])
@pytest.mark.parametrize("sizes", [[1], [2, 3], [5, 5, 5], [7, 1, 12, 3], [40, 33, 51], [40] * 25])
def test_pooled_scores_match_generic_bootstrap(sizes, clustered):
    """Stratified (compact blocks) and two-stage cluster (compact when tasks are equal-sized,
    else the padded resampler) both equal the generic resampler replicate by replicate."""
    rng = np.random.default_rng(sum(sizes))
    # rounded values: plenty of ties, which the IQM's sort must handle like trim_mean
    tasks = [np.round(rng.gamma(2.0, 0.4, size=n), 1) for n in sizes]
    want = _generic(tasks, 700, [3, 17], clustered)  # 700 reps: more than one block for the big case
    got = B._pooled_score_bootstrap(tasks, METRICS, 700, [3, 17], 0.95, clustered)
    np.testing.assert_allclose(got.replicates, want.replicates, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.estimate, want.estimate, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.ci_low, want.ci_low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.ci_high, want.ci_high, rtol=0, atol=1e-12)


def test_pooled_scores_equal_brute_force_per_replicate():
    """Each replicate is trim_mean / task-mean / median / gap (task and pooled) of the runs
    drawn by the documented RNG rule."""
    rng = np.random.default_rng(5)
    tasks = [rng.normal(1.0, 0.3, size=n) for n in (6, 9, 4)]
    reps, seed = 50, 8
    got = B._pooled_score_bootstrap(tasks, METRICS, reps, seed, 0.95)
    n = np.array([t.size for t in tasks])
    u = np.random.default_rng(seed).random((reps, len(tasks), n.max()), dtype=np.float32)
    for b in range(reps):
        per_task = [
            tasks[t][np.minimum((u[b, t, : n[t]] * np.float32(n[t])).astype(int), n[t] - 1)]
            for t in range(len(tasks))
        ]
        drawn = np.concatenate(per_task)
        means = [x.mean() for x in per_task]
        want = [
            stats.trim_mean(drawn, 0.25),
            np.mean(means),
            np.median(means),
            np.mean([np.maximum(1 - x, 0).mean() for x in per_task]),
            drawn.mean(),
            np.maximum(1 - drawn, 0).mean(),
        ]
        np.testing.assert_allclose(got.replicates[b], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("population", ["suite", "tasks"])
def test_interval_estimates_unchanged_by_fast_path(population):
    """The frame function's score rows equal the generic bootstrap's (same per-model seed):
    runs within tasks for "suite", tasks then runs within them for "tasks"."""
    import polars as pl

    rng = np.random.default_rng(2)
    rows = [
        {
            "model": m,
            "task": t,
            "normalized_reward": float(rng.gamma(2, 0.5)),
            "success": bool(rng.random() < 0.5),
        }
        for m in ("a", "b")
        for t in ("x", "y", "z")
        for _ in range(int(rng.integers(3, 9)))
    ]
    frame = pl.DataFrame(rows)
    out = B.interval_estimates(frame, ("success_rate", *METRICS), reps=400, seed=4, population=population)
    assert set(out["population"]) == {population}
    for model in ("a", "b"):
        sub = frame.filter(pl.col("model") == model)
        tasks = [sub.filter(pl.col("task") == t)["normalized_reward"].to_numpy() for t in ("x", "y", "z")]
        want = _generic(tasks, 400, B._model_seed(4, model, "score"), population == "tasks")
        for i, metric in enumerate(METRICS):
            got = out.filter((pl.col("model") == model) & (pl.col("metric") == metric)).row(0, named=True)
            assert got["estimate"] == pytest.approx(float(want.estimate[i]), abs=1e-12)
            assert got["ci_low"] == pytest.approx(float(want.ci_low[i]), abs=1e-12)
            assert got["ci_high"] == pytest.approx(float(want.ci_high[i]), abs=1e-12)


# ------------------------------------------- summaries: DuckDB SQL vs Polars ---
STEP_COLS = (
    "source, id, version, instance, depth, value, model, task, sweep_id, error_occurred, "
    "production_score, simulated, prompt_tokens, completion_tokens, total_tokens, "
    "created_at, sync_id"
)


def _tricky_rows() -> list[tuple]:
    """Steps covering every edge ``summarize_trajectories`` defines, plus random bulk."""
    from datetime import datetime, timedelta

    t0 = datetime(2026, 3, 1, 8)
    nan, inf = float("nan"), float("inf")
    rows: list[tuple] = []
    next_id = iter(range(1, 10**6))

    def traj(source, version, instance, steps, sync_id=1):
        """steps: (depth, value, model, task, sweep, production_score, tokens or None)."""
        v = version or 0
        for i, (depth, value, model, task, sweep, prod, tok) in enumerate(steps):
            rows.append(
                (
                    source,
                    next(next_id),
                    version,
                    instance,
                    depth,
                    value,
                    model,
                    task,
                    sweep,
                    i == 0,
                    prod,
                    v % 2 == 0,
                    tok,
                    None if tok is None else 1,
                    tok,
                    t0 + timedelta(minutes=v * 10 + i),
                    sync_id,
                )
            )

    q = "iron_ore_throughput"  # quota 16
    traj(
        "a",
        1,
        0,
        [
            (0.0, 5.0, "m1", q, "s1", None, 10),
            (1.0, 20.0, "m1", q, "s1", 1.0, 10),
            (2.0, 3.0, "m1", q, "s1", nan, 10),
        ],
    )
    # ties on depth broken by id; NaN/inf values ignored; null depth sorts first
    traj(
        "a",
        2,
        0,
        [
            (1.0, 17.0, "m1", q, None, 2.0, None),
            (1.0, nan, "m1", q, None, None, None),
            (None, 30.0, "m1", q, None, 3.0, None),
            (1.0, inf, "m1", q, None, None, None),
        ],
    )
    traj("a", 3, 0, [(0.0, nan, "m2", q, "s1", None, 5), (1.0, -inf, "m2", q, "s1", None, 5)])
    # model varies within the trajectory (mode with a tie), task missing on one step
    traj(
        "a",
        4,
        0,
        [
            (0.0, 1.0, "m2", q, "s1", None, 1),
            (1.0, 18.0, "m1", q, "s1", None, 1),
            (2.0, 2.0, "m2", None, "s1", None, 1),
            (3.0, 2.0, "m1", q, "s2", None, 1),
        ],
    )
    # task missing only on the step that reaches the quota: the trajectory's task still counts
    traj("a", 8, 0, [(0.0, 1.0, "m1", q, None, None, 3), (1.0, 25.0, "m1", None, None, None, 3)])
    traj("a", 5, 0, [(0.0, 9.0, "m1", None, None, None, 2)])  # no task: no quota
    traj("a", 6, 0, [(0.0, 99.0, "m1", "open_play", None, None, 2)])  # task without quota
    traj("a", 7, 0, [(nan, 20.0, "m1", q, None, None, 2), (1.0, 30.0, "m1", q, None, None, 2)])
    traj("b", None, None, [(0.0, 4.0, "m1", q, None, None, 1), (1.0, 40.0, "m1", q, None, None, 1)])
    traj("b", 1, None, [(0.0, 14.0, None, q, None, None, 1)], sync_id=2)
    rng = np.random.default_rng(0)
    tasks = ["iron_ore_throughput", "crude_oil_throughput", "open_play"]
    for v in range(10, 70):
        n = int(rng.integers(1, 12))
        model, task = f"m{v % 3}", tasks[v % 3]
        traj(
            "c",
            v,
            v % 2,
            [
                (float(d), float(rng.gamma(2, 10)), model, task, f"sw{v % 4}", None, int(rng.integers(0, 50)))
                for d in rng.permutation(n)
            ],
            sync_id=1 + v % 2,
        )
    return rows


@pytest.fixture(scope="module")
def tricky_root(tmp_path_factory) -> Path:
    """The tricky warehouse, built once for the module (its tests only read it)."""
    from fle_core import warehouse
    from fle_core.workspace import Workspace

    root = tmp_path_factory.mktemp("tricky") / "ws"
    workspace = Workspace.open(root)
    rows = _tricky_rows()
    rng = np.random.default_rng(1)
    rows = [rows[i] for i in rng.permutation(len(rows))]  # insertion order scrambled
    with warehouse.writer(workspace) as con:
        con.executemany(f"INSERT INTO steps ({STEP_COLS}) VALUES ({', '.join('?' * 17)})", rows)
        con.executemany(
            "INSERT INTO sweep_attempts (source, version, sweep_id, status) VALUES (?, ?, ?, ?)",
            [("c", 11, "sw1", "failed"), ("c", 12, "sw2", "succeeded")],
        )
    return root


@pytest.fixture
def tricky_ws(tricky_root, monkeypatch):
    from fle_core.workspace import Workspace

    monkeypatch.setenv("FLE_CORE_HOME", str(tricky_root))
    return Workspace.open(tricky_root)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"success_threshold": 10.0},
        {"models": ["m1"]},
        {"as_of_sync": 1},
        {"sources": ["a", "b"], "include_failed_attempts": True},
        {"tasks": ["open_play"]},
        {"registry": "overrides"},
    ],
)
def test_sql_summaries_equal_polars_summaries(tricky_ws, kwargs):
    """``load_summaries`` (DuckDB aggregation + fallback) == summarize_trajectories(load_steps)."""
    from polars.testing import assert_frame_equal

    from fle_core import analysis
    from fle_core.stats import metrics

    kwargs = dict(kwargs)
    registry = tricky_ws.task_registry()
    if kwargs.pop("registry", None):
        registry = {"iron_ore_throughput": 3.5, "open_play": 50.0}  # a mapping works too
    threshold = kwargs.pop("success_threshold", None)
    got = analysis.load_summaries(tricky_ws, registry=registry, success_threshold=threshold, **kwargs)
    want = metrics.summarize_trajectories(
        analysis.load_steps(tricky_ws, **kwargs), registry, success_threshold=threshold
    )
    assert got.height > 0
    # load_summaries adds what ran (analysis.systems) as its last column: programs rows are
    # the Factorio 1.1 era; the rest is summarize_trajectories' frame exactly
    assert got.columns[-1] == "system" and set(got["system"]) == {'{"era": "factorio-1.1"}'}
    assert_frame_equal(got.drop("system"), want)


def test_sql_summaries_by_hand(tricky_ws):
    """A few rows checked by hand, so both paths cannot be wrong together."""
    from fle_core import analysis

    s = analysis.load_summaries(tricky_ws)
    row = {(r["source"], r["version"]): r for r in s.iter_rows(named=True)}
    assert (row["a", 1]["best_reward"], row["a", 1]["final_reward"]) == (20.0, 3.0)
    assert row["a", 1]["first_success_step"] == 1.0 and row["a", 1]["success"] is True
    assert np.isnan(row["a", 1]["production_score"])  # NaN is kept, null skipped
    assert (row["a", 2]["final_reward"], row["a", 2]["best_reward"]) == (17.0, 30.0)
    assert row["a", 2]["total_tokens"] == 0 and row["a", 2]["steps"] == 4
    assert row["a", 3]["best_reward"] is None and row["a", 3]["success"] is False
    assert row["a", 4]["model"] == "m1" and row["a", 4]["sweep_id"] == "s1"  # tie -> smallest
    assert row["a", 5]["quota"] is None and row["a", 5]["success"] is None
    assert row["a", 6]["success"] is None
    assert row["b", None]["first_success_step"] == 1.0
    assert row["a", 8]["task"] == "iron_ore_throughput" and row["a", 8]["first_success_step"] == 1.0


@pytest.mark.parametrize("nx,ny", [(1, 1), (3, 7), (108, 110), (40, 400)])
def test_poi_win_matrix_product_is_bit_identical(nx, ny, monkeypatch):
    """The float32 win-matrix product equals the cumulative-count path exactly, ties included."""
    rng = np.random.default_rng(nx * ny)
    x, y = np.round(rng.normal(size=nx), 1), np.round(rng.normal(size=ny), 1)
    wx, wy = B._resample_counts(nx, 300, rng), B._resample_counts(ny, 300, rng)
    fast = B._poi_from_counts(x, y, wx, wy)
    monkeypatch.setattr(B, "_MATMUL_WINS", 0)  # force the cumulative-count path
    slow = B._poi_from_counts(x, y, wx, wy)
    np.testing.assert_array_equal(fast, slow)
    direct = np.einsum("ri,ij,rj->r", wx, B._win_matrix(x, y), wy) / (nx * ny)
    np.testing.assert_allclose(fast, direct, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["binary", "few_values", "distinct"])
def test_poi_paths_agree_bit_for_bit(kind, monkeypatch):
    """Pooling tied runs, the float32 product and cumulative counts give identical bits."""
    rng = np.random.default_rng(len(kind))
    draw = {
        "binary": lambda n: (rng.random(n) < 0.4).astype(float),
        "few_values": lambda n: rng.integers(0, 4, n).astype(float),
        "distinct": lambda n: rng.normal(size=n),
    }[kind]
    x, y = draw(90), draw(70)
    wx, wy = B._resample_counts(90, 500, rng), B._resample_counts(70, 500, rng)
    fast = B._poi_from_counts(x, y, wx, wy)
    monkeypatch.setattr(B, "_MATMUL_WINS", 0)
    monkeypatch.setattr(np, "unique", lambda a: a)  # no pooling: the plain cumulative path
    slow = B._poi_from_counts(x, y, wx, wy)
    np.testing.assert_array_equal(fast, slow)
    if kind == "binary":  # closed form for 0/1 data: p_x(1-p_y) + ½(p_x p_y + (1-p_x)(1-p_y))
        px, py = (wx @ x) / 90, (wy @ y) / 70
        want = px * (1 - py) + 0.5 * (px * py + (1 - px) * (1 - py))
        np.testing.assert_allclose(fast, want, rtol=0, atol=1e-12)
