"""SweepConfig: validation, PyExpUtils grid indexing, JSON/TOML round trips, upgrades."""

from __future__ import annotations

import itertools
import json

import pytest

from fle_core.errors import ConfigError, UnknownTask
from fle_core.sweeps.config import (
    LARGE_SWEEP_CELLS,
    SCHEMA_VERSION,
    SweepConfig,
    demo_config,
    load_config,
    save_config,
    task_registry,
)
from fle_core.tasks import TaskRegistry


def _cfg(**kw):
    base = dict(name="t", models=["m1"], tasks=["iron_ore_throughput"])
    return SweepConfig(**{**base, **kw})


def test_pyexputils_readme_example():
    """The README's alpha/lambda example: index 1 varies lambda, 16 wraps to run 1."""
    alphas, lambdas = [1.0, 0.5, 0.25, 0.125], [1.0, 0.99, 0.98, 0.96]
    c = _cfg(grid={"alpha": alphas, "lambda": lambdas}, num_trials_per_config=3)
    assert c.num_permutations() == 16
    assert c.permutation(0) == {"alpha": 1.0, "lambda": 1.0}
    assert c.permutation(1) == {"alpha": 1.0, "lambda": 0.99}
    assert c.permutation(15) == {"alpha": 0.125, "lambda": 0.96}
    assert c.permutation(16) == {"alpha": 1.0, "lambda": 1.0}
    assert [c.split_index(i)[1] for i in (0, 12, 16, 32)] == [0, 0, 1, 2]  # getRun


def test_index_round_trip_covers_every_pair_once():
    c = _cfg(grid={"b": [1, 2, 3], "a": ["x", "y"]}, num_trials_per_config=4)
    pairs = [c.split_index(i) for i in range(c.num_indices())]
    assert sorted(pairs) == sorted(itertools.product(range(6), range(4)))
    assert all(c.index_of(*c.split_index(i)) == i for i in range(c.num_indices()))
    # Independent enumeration: itertools.product over sorted keys, last key fastest.
    expected = [dict(zip(["a", "b"], v, strict=True)) for v in itertools.product(["x", "y"], [1, 2, 3])]
    assert [c.permutation(p) for p in range(6)] == expected
    with pytest.raises(ConfigError):
        c.split_index(24)
    with pytest.raises(ConfigError):
        c.index_of(6, 0)


def test_cells_one_per_model_task_permutation_trial():
    c = _cfg(
        models=["a", "b"],
        tasks=["iron_ore_throughput", "Factorio-iron_plate_throughput_16-v0"],
        grid={"temp": [0.0, 1.0]},
        num_trials_per_config=3,
    )
    cells = c.cells()
    keys = {(x["model"], x["task"], x["params_json"], x["trial"]) for x in cells}
    assert len(cells) == len(keys) == c.num_cells() == 2 * 2 * 2 * 3
    assert {x["task"] for x in cells} == {"iron_ore_throughput", "iron_plate_throughput"}
    gym = next(x for x in cells if x["task"] == "iron_plate_throughput")
    assert gym["env_id"] == "Factorio-iron_plate_throughput_16-v0"
    # task_inner: consecutive cells differ in task first.
    assert cells[0]["task"] != cells[1]["task"] and cells[0]["model"] == cells[1]["model"]
    assert [x["order_index"] for x in cells] == list(range(len(cells)))


def test_shuffled_order_is_seeded():
    a = _cfg(models=["a", "b", "c"], num_trials_per_config=5, order="shuffled", seed=7).cells()
    b = _cfg(models=["a", "b", "c"], num_trials_per_config=5, order="shuffled", seed=7).cells()
    c = _cfg(models=["a", "b", "c"], num_trials_per_config=5, order="shuffled", seed=8).cells()
    key = lambda cs: [(x["model"], x["trial"]) for x in cs]
    assert key(a) == key(b) != key(c)


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"models": []}, "no models"),
        ({"models": ["a", "a"]}, "duplicate models"),
        ({"name": "  "}, "name must not be empty"),
        ({"num_trials_per_config": 0}, "num_trials_per_config"),
        ({"grid": {"x": []}}, "has no values"),
        ({"order": "random"}, "order"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_clear_validation_errors(kw, needle):
    with pytest.raises(ConfigError) as exc:
        _cfg(**kw)
    assert needle in str(exc.value)


def test_unknown_task_is_named():
    with pytest.raises(UnknownTask) as exc:
        _cfg(tasks=["iron_ore_throughput", "unobtainium_throughput"])
    assert "unobtainium_throughput" in str(exc.value)


def test_custom_task_from_workspace_registry():
    reg = TaskRegistry.from_config({"my_task": {"quota": 3}})
    with pytest.raises(UnknownTask):
        _cfg(tasks=["my_task"])
    with task_registry(reg):
        assert _cfg(tasks=["my_task"]).tasks == ["my_task"]


def test_large_grid_needs_confirmation():
    n = LARGE_SWEEP_CELLS + 1
    with pytest.raises(ConfigError, match="confirm_large"):
        _cfg(num_trials_per_config=n)
    assert _cfg(num_trials_per_config=n, confirm_large=True).num_cells() == n


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_round_trip(tmp_path, suffix):
    c = _cfg(
        models=["a", "b"],
        grid={"temp": [0.1, 0.7], "style": ["x"]},
        tags=["x"],
        wandb=True,
        order="shuffled",
        seed=3,
        max_retries=4,
    )
    path = save_config(c, tmp_path / f"sweep{suffix}")
    assert load_config(path) == c


def test_load_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json")
    yaml = tmp_path / "x.yaml"
    yaml.write_text("{}")
    with pytest.raises(ConfigError, match=r"\.json or \.toml"):
        load_config(yaml)
    big = tmp_path / "big.json"
    big.write_text(
        json.dumps(
            {
                "name": "b",
                "models": ["m"],
                "tasks": ["iron_ore_throughput"],
                "num_trials_per_config": LARGE_SWEEP_CELLS + 1,
            }
        )
    )
    with pytest.raises(ConfigError):
        load_config(big)
    assert load_config(big, confirm_large=True).confirm_large


def test_schema_v1_is_upgraded():
    old = {
        "name": "production_eval",
        "models": ["gpt-4o"],
        "tasks": ["Factorio-iron_ore_throughput_16-v0"],
        "num_trials_per_config": 8,
        "max_concurrent_processes": 4,
        "enable_wandb": True,
        "retry_failed_runs": False,
        "output_dir": "./results",
    }
    c = SweepConfig.from_dict(old)
    assert (c.schema_version, c.max_concurrent, c.wandb, c.max_retries) == (SCHEMA_VERSION, 4, True, 0)
    assert c.tasks == ["Factorio-iron_ore_throughput_16-v0"]
    # the old names read back what they were given
    assert (c.max_concurrent_processes, c.enable_wandb, c.retry_failed_runs) == (4, True, False)
    assert SweepConfig(name="x", models=["m"], tasks=["iron_ore_throughput"]).retry_failed_runs is True


def test_demo_config_is_small_and_simulated():
    c = demo_config()
    assert c.num_cells() == 12 and c.executor.startswith("simulate")
    assert len(c.models) == 3 and len(c.tasks) == 2 and c.num_trials_per_config == 2
