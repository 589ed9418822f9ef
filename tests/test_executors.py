"""Executors: presets from config, argv building without a shell, the FLE preset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fle_core.errors import ConfigError
from fle_core.sweeps.executors import Job, builtin_presets, get_preset, load_presets, substitute
from fle_core.workspace import Workspace

NASTY = ["x; touch /tmp/pwned", "$(id)", "`id`", "a b 'c\" {trial}", "--model=evil", "{model}"]


def _job(**kw):
    base = dict(
        sweep_id="sw",
        cell_id="c1",
        attempt=2,
        model="gpt-4o",
        task="iron_ore_throughput",
        env_id="Factorio-iron_ore_throughput_16-v0",
        trial=3,
        params={"temp": 0.5},
        version=77,
        source_url="sqlite:////tmp/x.db",
        seed=9,
    )
    return Job(**{**base, **kw})


def _ws(tmp_path, toml: str) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "config.toml").write_text(toml)
    return Workspace.open(root)


def test_simulate_argv_follows_the_simulator_contract(tmp_path):
    cmd = builtin_presets()["simulate-fast"].build(_job(), tmp_path)
    assert cmd.argv[:3] == [sys.executable, "-m", "fle_core.sweeps.simulate"]
    flags = dict(zip(cmd.argv[3::2], cmd.argv[4::2], strict=True))
    assert flags == {
        "--source": "sqlite:////tmp/x.db",
        "--model": "gpt-4o",
        "--task": "iron_ore_throughput",
        "--version": "77",
        "--trial": "3",
        "--sweep-id": "sw",
        "--seed": "9",
        "--step-delay": "0.0",
        "--steps": "12",
    }
    assert cmd.env["FLE_VERSION"] == "77" and cmd.env["FLE_SWEEP_ID"] == "sw"
    assert cmd.env["FLE_ATTEMPT"] == "2" and cmd.env["FLE_TRIAL"] == "3"


def test_simulate_gets_a_secret_url_through_the_environment(tmp_path):
    url = "postgresql://eval:pw@db:5432/fle"
    cmd = builtin_presets()["simulate"].build(_job(source_url=url), tmp_path)
    assert "--source" not in cmd.argv and not any("pw@" in a for a in cmd.argv)
    assert cmd.env["FLE_SOURCE_URL"] == url


def test_simulate_options_come_from_the_preset_config(tmp_path):
    ws = _ws(tmp_path, "[executors.simulate]\nstep_delay = 0.25\ncrash_rate = 0.1\n")
    argv = get_preset(ws, "simulate").build(_job(), tmp_path).argv
    assert argv[argv.index("--step-delay") + 1] == "0.25" and argv[argv.index("--crash-rate") + 1] == "0.1"


@pytest.mark.parametrize("value", NASTY)
def test_values_are_single_literal_arguments(tmp_path, value):
    ws = _ws(
        tmp_path,
        '[executors.echo]\nkind = "command"\n'
        'command = ["echo", "--model", "{model}", "m={model};t={task}", "{params_json}"]\n',
    )
    argv = get_preset(ws, "echo").build(_job(model=value, task=value), tmp_path).argv
    assert argv == ["echo", "--model", value, f"m={value};t={value}", json.dumps({"temp": 0.5})]


def test_string_template_is_split_before_substitution(tmp_path):
    ws = _ws(tmp_path, "[executors.s]\ncommand = \"python agent.py --model {model} --note 'two words'\"\n")
    argv = get_preset(ws, "s").build(_job(model="a b; rm -rf /"), tmp_path).argv
    assert argv == ["python", "agent.py", "--model", "a b; rm -rf /", "--note", "two words"]


def test_fle_preset_writes_run_config_and_calls_fle_eval(tmp_path):
    ws = _ws(tmp_path, "")
    cmd = get_preset(ws, "fle").build(_job(), tmp_path / "logs")
    assert cmd.argv[:3] == ["fle", "eval", "--config"]
    path = cmd.argv[3]
    assert path in map(str, cmd.files)
    assert json.loads(Path(path).read_text()) == [
        {"env_id": "Factorio-iron_ore_throughput_16-v0", "model": "gpt-4o", "version": 77}
    ]
    assert cmd.env["FLE_VERSION"] == "77"


def test_fle_preset_command_can_be_overridden(tmp_path):
    ws = _ws(
        tmp_path,
        '[executors.fle]\nkind = "command"\n'
        'command = ["python", "-m", "fle.run", "--run-config", "{run_config}"]\n'
        'env = { FLE_MODE = "lab" }\n',
    )
    cmd = get_preset(ws, "fle").build(_job(), tmp_path)
    assert cmd.argv[:4] == ["python", "-m", "fle.run", "--run-config"]
    assert json.loads(Path(cmd.argv[4]).read_text())[0]["version"] == 77
    assert cmd.env["FLE_MODE"] == "lab"


@pytest.mark.parametrize(
    "toml, needle",
    [
        ('[executors.x]\ncommand = ["a", "{nope}"]\n', "unknown placeholder"),
        ('[executors.x]\ncommand = ["a", "{model.__class__}"]\n', "unknown placeholder"),
        ('[executors.x]\ncommand = ["a", "{model!r}"]\n', "unknown placeholder"),
        ("[executors.x]\ncommand = []\n", "needs command"),
        ('[executors.x]\nkind = "shell"\n', "kind must be"),
        ('[executors.x]\nkind = "simulate"\nstep_delay = "fast"\n', "must be a number"),
    ],
)
def test_bad_presets_are_rejected_at_load(tmp_path, toml, needle):
    ws = _ws(tmp_path, toml)
    with pytest.raises(ConfigError, match=needle):
        load_presets(ws)


def test_unknown_preset(tmp_path):
    with pytest.raises(ConfigError, match="Unknown executor"):
        get_preset(_ws(tmp_path, ""), "bash -c")


def test_substitute_keeps_escaped_braces():
    assert substitute("{{literal}}-{model}", {"model": "{x}"}) == "{literal}-{x}"


def test_every_job_gets_its_slot_in_the_environment(tmp_path):
    job = _job(slot=3)
    for preset in ("simulate", "fle"):
        assert get_preset(Workspace.open(tmp_path), preset).build(job, tmp_path).env["FLE_JOB_SLOT"] == "3"


def test_fle_server_range_gives_concurrent_slots_disjoint_servers():
    from fle_core.sweeps.executors import fle_server_range

    assert fle_server_range(0, 1) == (0, 1)
    assert fle_server_range(2, 4, first_server=8) == (16, 20)
    ranges = [range(*fle_server_range(slot, 3, 5)) for slot in range(6)]
    used = [s for r in ranges for s in r]
    assert len(used) == len(set(used)) == 18 and min(used) == 5  # disjoint, end exclusive, contiguous
    for bad in ((-1, 1, 0), (0, 0, 0), (0, 1, -1)):
        with pytest.raises(ConfigError, match="bad FLE server range"):
            fle_server_range(*bad)
