"""What changed between two sides: a hand-counted table, and real runs across sources.

``task_changes`` is checked on a fixture small enough to count by hand; ``changes``
on a warehouse that holds a programs-era run and Inspect logs written by real
inspect_ai, whose per-epoch outcomes are read back with inspect_ai's own API as the
independent reference for the epoch flips.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from gate_fixtures import outcome_rows

from fle_core.analysis import sides
from fle_core.analysis.changes import changes
from fle_core.errors import MetricError
from fle_core.stats import changes as C
from fle_core.stats.metrics import newcombe_interval
from fle_core.warehouse.sync import sync
from fle_core.workspace import Workspace


def _side(rows: list[tuple]) -> pl.DataFrame:
    """rows: (task, epoch, success, normalized_reward, best_reward); keys from the row number."""
    return pl.DataFrame(
        {
            "task": [r[0] for r in rows],
            "epoch": pl.Series([r[1] for r in rows], dtype=pl.Int64),
            "success": pl.Series([r[2] for r in rows], dtype=pl.Boolean),
            "normalized_reward": [r[3] for r in rows],
            "best_reward": [r[4] for r in rows],
            "source": ["s"] * len(rows),
            "version": list(range(len(rows))),
            "instance": [r[1] or 0 for r in rows],
        }
    )


# By hand (A = baseline, B = candidate; epochs pair where both sides number them):
#   t1: A 1,1,0,0  B 0,1,1,0  → 2/4 vs 2/4, change 0; epoch 1 lost, epoch 3 gained → mixed
#   t2: A 1,0,0    B 0,0,0    → 1/3 vs 0/3, change -1/3 → solved → unsolved
#   t3: A 0,0      B 0,1      → 0/2 vs 1/2, change +1/2 → unsolved → solved
#   t4: A 1,1      B 1,1      → unchanged;  t5: A only (left out)
#   t6: open play (no quota)  → no success, score change only; epochs unnumbered
A = _side(
    [
        ("t1", 1, True, 1.0, 16.0),
        ("t1", 2, True, 1.2, 19.0),
        ("t1", 3, False, 0.5, 8.0),
        ("t1", 4, False, 0.1, 2.0),
        ("t2", 1, True, 1.0, 16.0),
        ("t2", 2, False, 0.4, 6.0),
        ("t2", 3, False, 0.2, 3.0),
        ("t3", 1, False, 0.3, 5.0),
        ("t3", 2, False, 0.5, 8.0),
        ("t4", 1, True, 1.0, 16.0),
        ("t4", 2, True, 1.0, 16.0),
        ("t5", 1, True, 1.0, 16.0),
        ("t6", None, None, None, 100.0),
        ("t6", None, None, None, 300.0),
    ]
)
B = _side(
    [
        ("t1", 1, False, 0.5, 8.0),
        ("t1", 2, True, 1.0, 16.0),
        ("t1", 3, True, 1.0, 16.0),
        ("t1", 4, False, 0.0, 0.0),
        ("t2", 1, False, 0.1, 1.0),
        ("t2", 2, False, 0.1, 1.0),
        ("t2", 3, False, 0.1, 1.0),
        ("t3", 1, False, 0.5, 8.0),
        ("t3", 2, True, 1.5, 24.0),
        ("t4", 1, True, 1.0, 16.0),
        ("t4", 2, True, 1.0, 16.0),
        ("t6", None, None, None, 50.0),
    ]
)


def test_the_changes_table_by_hand():
    out = C.task_changes(A, B)
    assert out["task"].to_list() == ["t2", "t1", "t4", "t3", "t6"]  # worst first, no-quota last
    rows = {r["task"]: r for r in out.iter_rows(named=True)}
    t1, t2, t3, t4, t6 = (rows[t] for t in ("t1", "t2", "t3", "t4", "t6"))
    assert (t1["a_successes"], t1["a_trials"], t1["b_successes"], t1["b_trials"]) == (2, 4, 2, 4)
    assert t1["change"] == 0 and t1["flip"] == C.MIXED
    assert (t1["paired_epochs"], t1["epochs_lost"], t1["epochs_gained"]) == (4, 1, 1)
    assert t1["score_change"] == pytest.approx((0.5 + 1 + 1 + 0) / 4 - (1 + 1.2 + 0.5 + 0.1) / 4)
    assert t2["change"] == pytest.approx(-1 / 3) and t2["flip"] == C.LOST and t2["epochs_lost"] == 1
    assert (t2["change_ci_low"], t2["change_ci_high"]) == pytest.approx(newcombe_interval(0, 3, 1, 3))
    assert t3["change"] == pytest.approx(0.5) and t3["flip"] == C.GAINED and t3["epochs_gained"] == 1
    assert t4["flip"] == C.SAME and t4["epochs_lost"] == 0
    assert t6["flip"] is None and t6["change"] is None and t6["a_trials"] == 2 and t6["paired_epochs"] is None
    assert "t5" not in rows
    # the trajectories to open side by side: the epoch that flipped the way the task moved
    assert t2["a_key"] == "s:4:1" and t2["b_key"] == "s:4:1"  # epoch 1 of t2 (row 4 on both sides)
    assert t3["a_key"] == "s:8:2" and t3["b_key"] == "s:8:2"  # epoch 2 of t3 gained
    assert t1["a_key"] == "s:0:1" and t1["b_key"] == "s:0:1"  # change 0 reads as "not better": epoch 1 lost


def test_without_epochs_the_best_and_worst_trajectories_are_picked():
    a, b = (
        A.with_columns(pl.lit(None, pl.Int64).alias("epoch")),
        B.with_columns(pl.lit(None, pl.Int64).alias("epoch")),
    )
    rows = {r["task"]: r for r in C.task_changes(a, b).iter_rows(named=True)}
    assert rows["t2"]["paired_epochs"] is None and rows["t2"]["flip"] == C.LOST
    assert rows["t2"]["a_key"] == "s:4:1"  # A's success
    assert rows["t2"]["b_key"] in {"s:4:1", "s:5:2", "s:6:3"}  # B failed everywhere: its worst, by key
    assert rows["t3"]["a_key"] == "s:7:1" and rows["t3"]["b_key"] == "s:8:2"  # improved: A's worst, B's best


def test_filters_and_markdown():
    out = C.task_changes(A, B)
    assert C.filter_changes(out, flips=[C.LOST, C.GAINED])["task"].to_list() == ["t2", "t3"]
    assert C.filter_changes(out, regressions_only=True)["task"].to_list() == ["t2", "t6"]  # t6: score fell
    assert C.filter_changes(out, task_contains="T4")["task"].to_list() == ["t4"]
    with pytest.raises(MetricError, match="unknown flip"):
        C.filter_changes(out, flips=["worse"])
    text = C.changes_markdown(out, "main", "pr|1", limit=2)
    lines = text.splitlines()
    assert lines[0] == (
        "| Task | main (solved/trials) | pr\\|1 (solved/trials) | Change, points (95% CI) | Flip "
        "| Epochs lost / gained | Score change |"
    )
    lo, hi = newcombe_interval(0, 3, 1, 3)
    assert (
        lines[2]
        == f"| t2 | 1/3 | 0/3 | -33.3 [{100 * lo:.1f}, {100 * hi:.1f}] | solved → unsolved | 1 / 0 | -0.433 |"
    )
    assert len(lines) == 4


# ------------------------------------------------------------------ across sources ---
@pytest.fixture(scope="module")
def mixed(tmp_path_factory, inspect_logs_dir) -> Workspace:
    """Inspect logs (3 mockllm models × 2 tasks × 3 epochs, plus a run with RCON failures) and a
    programs-era database of 'legacy-alpha' on the same two tasks."""
    tmp = tmp_path_factory.mktemp("changes")
    logs = tmp / "logs"
    shutil.copytree(inspect_logs_dir / "main", logs / "main")
    shutil.copytree(inspect_logs_dir / "errors" / "infra", logs / "infra")
    root = tmp / "ws"
    root.mkdir()
    (root / "config.toml").write_text(f'[sources.runs]\nkind = "inspect"\npath = "{logs}"\n')
    ws = Workspace.open(root)
    sync(ws, source="runs")
    from fixtures_fle import create_sqlite

    legacy = {
        ("legacy-alpha", t): [True, False, False] for t in ("iron_ore_throughput", "iron_plate_throughput")
    }
    sync(ws, source=create_sqlite(tmp / "legacy.db", outcome_rows(legacy)))
    return ws


def _inspect_epochs(logs: Path, model: str) -> dict[tuple[str, int], bool]:
    """{(task, epoch): FLE's quota_achieved} read with inspect_ai's public API."""
    from inspect_ai.log import read_eval_log

    out = {}
    for path in sorted(logs.rglob("*.eval")):
        log = read_eval_log(str(path))
        if log.eval.model != model or log.samples is None:
            continue
        for s in log.samples:
            out[(log.eval.task, s.epoch)] = bool(
                s.scores["comprehensive_factorio_scorer"].metadata["quota_achieved"]
            )
    return out


def test_epoch_flips_between_two_inspect_runs_match_inspect_ai(mixed, inspect_logs_dir):
    found = changes(mixed, "mockllm/alpha", "mockllm/gamma")
    a = _inspect_epochs(inspect_logs_dir / "main", "mockllm/alpha")
    b = _inspect_epochs(inspect_logs_dir / "main", "mockllm/gamma")
    assert found.table.height == 2 and found.differences == []
    for r in found.table.iter_rows(named=True):
        epochs = sorted(e for t, e in a if t == r["task"])
        assert r["paired_epochs"] == len(epochs) == 3
        assert r["epochs_lost"] == sum(a[(r["task"], e)] and not b[(r["task"], e)] for e in epochs)
        assert r["epochs_gained"] == sum(b[(r["task"], e)] and not a[(r["task"], e)] for e in epochs)
        assert r["a_successes"] == sum(a[(r["task"], e)] for e in epochs)
        assert r["a_log_path"].endswith(".eval") and r["a_sample_id"] == f"{r['task']}_eval"
        assert r["a_epoch"] == int(r["a_key"].rsplit(":", 1)[1])


def test_a_programs_run_against_an_inspect_run_says_how_they_differ(mixed):
    found = changes(mixed, "legacy-alpha", "mockllm/alpha")
    reasons = [d.reason for d in found.differences]
    assert reasons == ["era"]
    assert "success is decided differently" in found.differences[0].text
    assert found.table["a_log_path"].null_count() == 2 and found.table["b_log_path"].null_count() == 0
    assert found.table["paired_epochs"].null_count() == 2  # the programs side has no epochs
    assert found.table["a_successes"].to_list() == [1, 1] and found.table["a_trials"].to_list() == [3, 3]


def test_infrastructure_failures_and_one_sided_tasks_are_named(mixed):
    found = changes(mixed, "mockllm/alpha", "mockllm/beta")
    texts = " ".join(d.text for d in found.differences)
    assert "mockllm/beta has 2 infrastructure failure(s)" in texts


def test_resolve_side_grammar_and_choices(mixed):
    spec = sides.parse_side("gpt-4o [mail=a@b]@sweep:nightly@source:inspect:pr@12")
    assert (spec.system, spec.sweep, spec.source, spec.as_of) == (
        "gpt-4o [mail=a@b]",
        "nightly",
        "inspect:pr",
        12,
    )
    assert sides.parse_side("sweep:s1").system is None
    with pytest.raises(sides.UnknownSide, match="names sweep twice"):
        sides.parse_side("x@sweep:a@sweep:b")
    universe = sides.load_universe(mixed)
    options = sides.side_options(universe)
    assert options[:4] == ["legacy-alpha", "mockllm/alpha", "mockllm/beta", "mockllm/gamma"]
    assert "source:runs" in options
    with pytest.raises(sides.UnknownSide, match="source 'runs' holds 3 systems"):
        sides.resolve_side("source:runs", lambda _: universe)


def test_markdown_limit_zero_lists_no_row():
    out = C.task_changes(A, B)
    assert len(C.changes_markdown(out, "a", "b", limit=0).splitlines()) == 2  # header and separator
    assert len(C.changes_markdown(out, "a", "b").splitlines()) == 2 + out.height
