"""W&B tracking against real wandb in offline mode; values are read back from the run files.

The ``.wandb`` file is decoded with ``tracking.read_offline_run`` (LevelDB-log
framing + wandb's own protobuf ``Record``); tables and HTML are read from the
run's ``files/media`` folder as wandb wrote them. W&B inits cost ~1–4 s each,
so the tests are few and each checks a lot.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import altair as alt
import polars as pl
import pytest

from fle_core import tracking as tr
from fle_core.sweeps import simulate as sim

SENTINEL = "S3NT1NEL-pw-7731"


@pytest.fixture
def no_wandb_key(tmp_path, monkeypatch):
    """No API key, no netrc, no WANDB_MODE: tracking must pick offline on its own."""
    for var in ("WANDB_API_KEY", "WANDB_MODE", "NETRC", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / ".config" / "wandb"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("FLE_PROD_PASSWORD", SENTINEL)
    return tmp_path / "wandb"


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_job_run_offline_holds_config_tags_history_summary(no_wandb_key):
    assert tr.resolve_mode() == "offline"
    _, rows = sim.generate_rows(
        "gpt-4o", "iron_ore_throughput", version=42, trial=3, seed=1, steps=150, quota=16.0
    )
    steps = pl.DataFrame(
        {
            "depth": [r.columns["depth"] for r in rows],
            "value": [r.columns["value"] for r in rows],
            "total_tokens": [r.columns["token_usage"] for r in rows],
            "simulated": [json.loads(r.columns["meta"])["simulated"] for r in rows],
        }
    )
    run_dir = tr.log_job_run(
        sweep_id="sw-abc",
        model="gpt-4o",
        task="iron_ore_throughput",
        trial=3,
        version=42,
        attempt=2,
        retry_count=1,
        completion_status="completed",
        params={"temperature": 0.2, "db": f"postgresql://eval:{SENTINEL}@db/fle", "api_key": SENTINEL},
        steps=steps,
        tags=["nightly"],
        project="fle-test",
        wandb_dir=no_wandb_key,
    )
    assert run_dir is not None and Path(run_dir).name.startswith("offline-run-")
    wandb_file = next(Path(run_dir).glob("run-*.wandb"))
    assert wandb_file.stat().st_size > 32768  # records span several 32 KiB blocks
    run = tr.read_offline_run(run_dir)
    assert run.project == "fle-test" and run.group == "sw-abc" and run.job_type == "trajectory"
    assert {
        "sweep:sw-abc",
        "model:gpt-4o",
        "task:iron_ore_throughput",
        "status:completed",
        "nightly",
        "simulated",
    } <= set(run.tags)
    assert run.config["simulated"] is True
    cfg = run.config
    assert (
        cfg["sweep_id"],
        cfg["completion_status"],
        cfg["trial"],
        cfg["version"],
        cfg["attempt"],
        cfg["retry_count"],
    ) == ("sw-abc", "completed", 3, 42, 2, 1)
    assert cfg["params"]["temperature"] == 0.2
    assert cfg["params"]["db"] == "postgresql://eval:***@db/fle" and cfg["params"]["api_key"] == "***"
    assert "completion_status" not in run.summary  # config, not a metric
    values = steps["value"].to_list()
    assert [h["reward"] for h in run.history] == pytest.approx(values)
    assert [h["_step"] for h in run.history] == list(range(150))
    assert [h["tokens"] for h in run.history] == steps["total_tokens"].to_list()
    s = run.summary
    assert s["final_reward"] == pytest.approx(values[-1])
    assert s["best_reward"] == pytest.approx(max(values))
    assert s["steps"] == 150 and s["total_tokens"] == sum(steps["total_tokens"])
    assert s["success"] == (max(values) >= 16.0) and s["quota"] == 16.0
    assert SENTINEL.encode() not in _all_bytes(no_wandb_key)


def test_sweep_summary_run_holds_the_model_task_table(no_wandb_key):
    table = pl.DataFrame(
        {
            "model": ["gpt-4o", "gpt-4o", "claude-3-5-sonnet", "claude-3-5-sonnet"],
            "task": ["iron_ore_throughput", "crude_oil_throughput"] * 2,
            "n": [8, 8, 8, 7],
            "successes": [5, 0, 6, 1],
            "success_rate": [5 / 8, 0.0, 6 / 8, 1 / 7],
            "tasks_lacking_8": [[], ["crude_oil_throughput"], [], None],
        }
    )
    run_dir = tr.log_sweep_summary(
        sweep_id="sw-9",
        name="nightly",
        table=table,
        tags=["demo"],
        project="fle-test",
        wandb_dir=no_wandb_key,
    )
    assert run_dir is not None
    run = tr.read_offline_run(run_dir)
    assert "sweep:sw-9" in run.tags and run.job_type == "sweep_summary"
    assert run.config == {"sweep_id": "sw-9", "sweep_name": "nightly"}
    got = run.table("sweep_summary")
    assert got.columns == table.columns
    assert (
        got.select("model", "task", "n", "successes").rows()
        == table.select("model", "task", "n", "successes").rows()
    )
    assert got["success_rate"].to_list() == pytest.approx(table["success_rate"].to_list())
    assert json.loads(got["tasks_lacking_8"][1]) == ["crude_oil_throughput"]
    assert run.summary["success_rate"] == pytest.approx(12 / 31)
    assert (run.summary["models"], run.summary["tasks"], run.summary["rows"]) == (2, 2, 4)


class _Metrics:
    """Stands in for analysis.PerformanceMetrics: anything with to_dict()."""

    def to_dict(self):
        return {
            "success_rate": 0.375,
            "pass_at_1": 0.375,
            "n": 8,
            "tokens_per_success": 51234.5,
            "label": "not numeric",
            "pass_at_k": {1: 0.375, 8: None},
            "confidence_interval": [0.2, 0.55],
            "tasks_lacking_trials": {8: ["iron_ore_throughput"]},
        }


def test_wandb_logger_logs_metrics_trajectories_tables_and_charts(no_wandb_key):
    comparisons = pl.DataFrame(
        {
            "model_a": ["gpt-4o"],
            "model_b": ["gpt-4o-mini"],
            "task": ["ALL"],
            "diff": [0.11],
            "p_adjusted": [0.012],
            "verdict": ["significantly better"],
        }
    )
    pass_k = pl.DataFrame(
        {
            "model": ["gpt-4o", "gpt-4o", "gpt-4o-mini"],
            "k": [1, 8, 1],
            "estimate": [0.16, 0.52, 0.05],
            "ci_low": [0.1, 0.4, 0.02],
            "ci_high": [0.22, 0.61, 0.09],
        }
    )
    chart = (
        alt.Chart(pl.DataFrame({"model": ["gpt-4o", "gpt-4o-mini"], "rate": [0.166, 0.052]}))
        .mark_bar()
        .encode(x="model:N", y="rate:Q")
    )
    with tr.WandBLogger(
        project="fle-test",
        run_name="analysis",
        tags=["report"],
        config={"source": f"postgresql://u:{SENTINEL}@h/db"},
        dir=no_wandb_key,
    ) as lg:
        assert lg.active
        assert lg.log_performance_metrics(_Metrics(), model="openai/gpt-4o", task="iron_ore_throughput")
        assert lg.log_performance_metrics({"success_rate": 0.05}, model="gpt-4o-mini")
        for step, reward in enumerate([0.0, 4.5, 17.25]):
            assert lg.log_trajectory_progress(
                7, 0, step, reward, model="gpt-4o", task="iron_ore_throughput", tokens=1000 * (step + 1)
            )
        assert lg.log_metrics_table("leaderboard", pass_k)
        assert lg.log_comparison_table(comparisons)
        assert lg.log_pass_at_k(pass_k)
        assert lg.log_chart("success_rates", chart)
        run_dir = lg.run_dir
    assert lg.finish() is None  # already finished: a no-op
    run = tr.read_offline_run(run_dir)
    s = run.summary
    assert run.config == {"source": "postgresql://u:***@h/db"}
    assert s["perf/openai_gpt-4o/iron_ore_throughput/success_rate"] == 0.375
    assert s["perf/openai_gpt-4o/iron_ore_throughput/tokens_per_success"] == 51234.5
    assert s["perf/gpt-4o-mini/all/success_rate"] == 0.05
    assert "perf/openai_gpt-4o/iron_ore_throughput/label" not in s
    assert s["perf/openai_gpt-4o/iron_ore_throughput/pass_at_k/1"] == 0.375
    assert "perf/openai_gpt-4o/iron_ore_throughput/pass_at_k/8" not in s  # None is not logged
    assert (
        s["perf/openai_gpt-4o/iron_ore_throughput/confidence_interval/low"],
        s["perf/openai_gpt-4o/iron_ore_throughput/confidence_interval/high"],
    ) == (0.2, 0.55)
    traj = [h for h in run.history if "trajectory/v7_i0/reward" in h]
    assert [h["trajectory/v7_i0/reward"] for h in traj] == [0.0, 4.5, 17.25]
    assert [h["trajectory/v7_i0/step"] for h in traj] == [0, 1, 2]
    assert [h["trajectory/v7_i0/tokens"] for h in traj] == [1000, 2000, 3000]
    assert s["trajectory/v7_i0/model"] == "gpt-4o"
    assert run.table("tables/leaderboard").rows() == pass_k.rows()
    assert run.table("tables/pass_at_k").rows() == pass_k.rows()
    assert run.table("tables/comparisons").rows() == comparisons.rows()
    assert (s["pass_at_k/gpt-4o/k8"], s["pass_at_k/gpt-4o-mini/k1"]) == (0.52, 0.05)
    assert "charts/pass_at_k_table" in s  # W&B's native line chart keeps its data table
    perf = run.table("tables/performance_metrics")
    assert perf["model"].to_list() == ["openai/gpt-4o", "gpt-4o-mini"]
    assert perf["success_rate"].to_list() == [0.375, 0.05]
    assert perf["pass_at_k/1"].to_list() == [0.375, None]
    assert json.loads(perf["tasks_lacking_trials/8"][0]) == ["iron_ore_throughput"]
    html = run.file("charts/success_rates").read_text()
    assert "vega" in html and "gpt-4o-mini" in html and "0.052" in html
    assert SENTINEL.encode() not in _all_bytes(no_wandb_key)


def test_wandb_failures_return_none_and_never_raise(no_wandb_key, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    bad_dir = blocker / "wandb"
    frame = pl.DataFrame({"depth": [0.0], "value": [1.0], "total_tokens": [10]})
    caplog.set_level(logging.WARNING, logger="fle_core.tracking")
    assert (
        tr.log_job_run(
            sweep_id="s",
            model="m",
            task="iron_ore_throughput",
            trial=0,
            version=1,
            attempt=1,
            retry_count=0,
            completion_status="failed",
            params={},
            steps=frame,
            tags=[],
            project="p",
            wandb_dir=bad_dir,
        )
        is None
    )
    assert (
        tr.log_sweep_summary(sweep_id="s", name="n", table=frame, tags=[], project="p", wandb_dir=bad_dir)
        is None
    )
    lg = tr.WandBLogger(project="p", dir=bad_dir)
    assert not lg.active
    assert lg.log_performance_metrics({"success_rate": 1.0}, model="m") is None
    assert lg.log_metrics_table("t", frame) is None and lg.log_chart("c", object()) is None
    assert lg.finish() is None
    assert any("W&B" in r.getMessage() for r in caplog.records)
    # Online mode was asked for explicitly but there is no key: init fails at once.
    t0 = time.monotonic()
    assert (
        tr.log_job_run(
            sweep_id="s",
            model="m",
            task="t",
            trial=0,
            version=1,
            attempt=1,
            retry_count=0,
            completion_status="completed",
            params={},
            steps=frame,
            tags=[],
            project="p",
            wandb_dir=tmp_path / "w",
            mode="online",
        )
        is None
    )
    assert time.monotonic() - t0 < 30
    assert not any(SENTINEL in r.getMessage() for r in caplog.records)


def test_mode_resolution(no_wandb_key, tmp_path, monkeypatch):
    assert tr.resolve_mode() == "offline" and not tr.has_api_key()
    assert tr.resolve_mode("disabled") == "disabled"
    netrc_file = Path(os.environ["HOME"]) / ".netrc"
    netrc_file.write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    netrc_file.chmod(0o600)
    assert tr.has_api_key() and tr.resolve_mode() == "online"
    netrc_file.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tr.resolve_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert tr.resolve_mode() == "offline"


def test_safe_config_masks_secrets():
    cfg = tr.safe_config(
        {
            "url": "postgresql://a:pw@h/db",
            "nested": {"github_token": "t", "n": 1},
            "list": ["sqlite:///x.db", 2],
            "password_env": "X",
        }
    )
    assert cfg == {
        "url": "postgresql://a:***@h/db",
        "nested": {"github_token": "***", "n": 1},
        "list": ["sqlite:///x.db", 2],
        "password_env": "***",
    }


def test_every_logged_key_is_documented():
    """Summary/config keys and logger key patterns written by tracking.py appear in docs/wandb.md."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "wandb.md").read_text()
    keys = [
        "sweep_id",
        "completion_status",
        "retry_count",
        "attempt",
        "params",
        "reward",
        "tokens",
        "cumulative_tokens",
        "depth",
        "final_reward",
        "best_reward",
        "steps",
        "total_tokens",
        "quota",
        "first_success_step",
        "success",
        "sweep_summary",
        "success_rate",
        "perf/{model}/{task",
        "trajectory/v{version}_i{instance}/reward",
        "tables/{name}",
        "tables/comparisons",
        "tables/pass_at_k",
        "charts/pass_at_k",
        "pass_at_k/{model}/k{k}",
        "charts/{name}",
        "tables/performance_metrics",
        "sweep:{sweep_id}",
        "model:{model}",
        "task:{task}",
        "status:{completion_status}",
        "wandb sync",
        "FLE_WANDB_FLUSH_TIMEOUT",
        "FLE_WANDB_INIT_TIMEOUT",
    ]
    source = Path(tr.__file__).read_text()
    for key in keys:
        assert f"`{key}" in docs or key in docs, key
    for env in set(re.findall(r"FLE_[A-Z_]+", source)):
        assert env in docs, env


def test_old_wandb_logger_methods_and_sweep_logger_offline(no_wandb_key, monkeypatch):
    """The old framework's WandBLogger/WandBSweepLogger calls, read back from the offline run."""
    from fle_core.analysis import PerformanceMetrics

    m = PerformanceMetrics(
        num_trajectories=8, mean_reward=12.0, std_reward=3.0, median_reward=11.0, min_reward=2.0,
        max_reward=20.0, success_count=3, success_rate=0.375, pass_at_1=0.375, pass_at_k={1: 0.375, 8: None},
    )  # fmt: skip
    weak = PerformanceMetrics(8, 4.0, 1.0, 4.0, 1.0, 6.0, 0, 0.0, 0.0)
    lg = tr.WandBLogger("fle-test", None, "old-api", ["legacy"], {"k": 1}, False, True, dir=no_wandb_key)
    assert lg.active and lg.offline and lg.entity is None
    assert lg.log_metrics({"loss": 0.5, "status": "running"}, step=1, prefix="train")
    assert lg.log_metrics({"loss": 0.25}, step=2, prefix="train")
    assert lg.log_table("leaderboard", [{"model": "a", "rate": 0.5}, {"model": "b", "rate": 0.25}])
    assert lg.log_table("empty", []) is None
    assert lg.log_model_comparison_table({"gpt-4o": m, "tiny": weak})
    assert lg.log_config_update({"dataset": "lab-play", "url": f"postgresql://u:{SENTINEL}@h/db"})
    assert lg.log_sweep_summary(
        {"name": "s1", "models": ["gpt-4o", "tiny"]},
        {"gpt-4o": m, "tiny": weak},
        {"iron_ore_throughput": m, "crude_oil_throughput": weak},
        total_trajectories=16,
        total_time=7200.0,
    )
    assert lg.log_trajectory_progress(3, 0, 4, 1.5, 120.0, "gpt-4o", "iron_ore_throughput", 9.5, 800)
    run_dir = lg.run_dir
    assert lg.finish() and lg.initialize_run() and lg.run_dir != run_dir  # a new run after finish()
    lg.finish()
    run = tr.read_offline_run(run_dir)
    s = run.summary
    assert [h["train/loss"] for h in run.history if "train/loss" in h] == [0.5, 0.25]
    assert s["train/status"] == "running" and not any("train/status" in h for h in run.history)
    assert run.table("leaderboard").rows() == [("a", 0.5), ("b", 0.25)]
    comparison = run.table("model_comparison")
    assert comparison["model"].to_list() == ["gpt-4o", "tiny"]
    assert comparison["success_rate"].to_list() == [0.375, 0.0]
    assert s["sweep/total_time_hours"] == 2.0 and s["sweep/num_models"] == 2
    assert s["sweep/best_model"] == "gpt-4o" and s["sweep/hardest_task"] == "crude_oil_throughput"
    assert not any("sweep/best_model" in h for h in run.history)  # names are not metrics
    assert run.config["sweep_config"] == {"name": "s1", "models": ["gpt-4o", "tiny"]}
    assert run.config["url"] == "postgresql://u:***@h/db" and run.config["k"] == 1
    traj = next(h for h in run.history if "trajectory/v3_i0/reward" in h)
    assert (
        traj["trajectory/v3_i0/production_score"] == 120.0
        and traj["trajectory/v3_i0/tokens_per_step"] == 200.0
    )
    assert SENTINEL.encode() not in _all_bytes(no_wandb_key)

    sweep = tr.WandBSweepLogger("fle-test")
    one = sweep.create_run_logger("job-1", "gpt-4o", "iron_ore_throughput", 12, tags=["sweep:abc"],
                                  config={"trial": 0}, dir=no_wandb_key)  # fmt: skip
    assert sweep.get_logger("job-1") is one and sweep.get_logger("nope") is None
    one_dir = one.run_dir
    sweep.finish_all()
    assert sweep.individual_loggers == {} and not one.active
    rec = tr.read_offline_run(one_dir)
    assert set(rec.tags) == {"sweep", "gpt-4o", "iron_ore_throughput", "v12", "sweep:abc"}
    assert rec.config == {"model": "gpt-4o", "task": "iron_ore_throughput", "version": 12, "trial": 0}

    monkeypatch.setenv("DISABLE_WANDB", "true")
    off = tr.WandBLogger(project="p", dir=no_wandb_key)
    assert not off.enabled and not off.active and off.log_metrics({"x": 1}) is None
