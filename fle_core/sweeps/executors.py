"""Executors: named, server-side presets that turn a claimed job into an argv.

A sweep names a preset; it never carries a command. Presets come from the
built-ins below plus ``[executors.NAME]`` tables in the workspace config.toml::

    [executors.simulate]            # override a built-in's options
    kind = "simulate"
    step_delay = 0.2                # seconds between simulated steps
    crash_rate = 0.05               # chance a job crashes mid-run
    error_rate = 0.1
    steps = 64                      # default: the task's trajectory length

    [executors.my-agent]
    kind = "command"
    command = ["python", "agent.py", "--model", "{model}", "--task", "{task}", "--version", "{version}"]
    env = { AGENT_MODE = "eval" }   # extra, non-secret environment

    [executors.fle]
    kind = "fle"                    # writes FLE's run-config JSON, then runs the command
    command = ["fle", "eval", "--config", "{run_config}"]

Quoting: a ``command`` is a list of argv strings and each ``{placeholder}`` is
substituted *inside its argv element*; the result is passed to ``exec``
directly, never to a shell. A command given as one string is split with
``shlex.split`` once, when the preset is loaded, before any value exists. So
a model called ``x; touch /tmp/pwned`` is one literal argument.
Placeholders: {model} {task} {env_id} {trial} {version} {sweep_id} {attempt}
{params_json} {run_config} {source_url}.
"""

from __future__ import annotations

import json
import shlex
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fle_core.errors import ConfigError
from fle_core.workspace import Workspace

PLACEHOLDERS = frozenset(
    {
        "model",
        "task",
        "env_id",
        "trial",
        "version",
        "sweep_id",
        "attempt",
        "params_json",
        "run_config",
        "source_url",
    }
)
Kind = Literal["simulate", "command", "fle"]
FLE_DEFAULT_COMMAND = ("fle", "eval", "--config", "{run_config}")
_SIM_OPTIONS = {"step_delay": float, "crash_rate": float, "error_rate": float, "steps": int}


@dataclass(frozen=True)
class Job:
    """Everything an executor needs for one attempt."""

    sweep_id: str
    cell_id: str
    attempt: int
    model: str
    task: str
    env_id: str
    trial: int
    params: dict[str, Any]
    version: int
    source_url: str
    seed: int = 0
    slot: int = 0
    """The runner's concurrency slot for this job, unique among its running jobs."""


@dataclass(frozen=True)
class Command:
    """A ready-to-exec job: argv (never through a shell) and extra environment."""

    argv: list[str]
    env: dict[str, str]
    files: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Executor:
    """A named preset. ``template`` is an argv template for command/fle presets."""

    name: str
    kind: Kind
    template: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def build(self, job: Job, workdir: Path) -> Command:
        """The argv and environment for ``job``; may write files (FLE run config) to ``workdir``."""
        env = {k: str(v) for k, v in self.env.items()}
        env.update(job_env(job))
        if self.kind == "simulate":
            argv = simulate_argv(job, self.options)
            if _has_password(job.source_url):  # keep secrets out of argv (visible in `ps`)
                i = argv.index("--source")
                del argv[i : i + 2]
                env["FLE_SOURCE_URL"] = job.source_url
            return Command(argv, env)
        files: list[Path] = []
        run_config = ""
        if self.kind == "fle" or self.uses("run_config"):
            path = write_fle_run_config(job, workdir)
            files.append(path)
            run_config = str(path)
        values = _values(job, run_config)
        return Command([substitute(part, values) for part in self.template], env, files)

    def uses(self, placeholder: str) -> bool:
        return any(
            f == placeholder for part in self.template for _l, f, _s, _c in string.Formatter().parse(part)
        )

    def public(self) -> dict[str, Any]:
        """A UI-safe description (no environment values)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "command": list(self.template),
            "options": dict(self.options),
        }


def job_env(job: Job) -> dict[str, str]:
    """The ``FLE_*`` variables every job gets."""
    return {
        "FLE_SWEEP_ID": job.sweep_id,
        "FLE_CELL_ID": job.cell_id,
        "FLE_VERSION": str(job.version),
        "FLE_MODEL": job.model,
        "FLE_TASK": job.task,
        "FLE_ENV_ID": job.env_id,
        "FLE_TRIAL": str(job.trial),
        "FLE_ATTEMPT": str(job.attempt),
        "FLE_PARAMS_JSON": json.dumps(job.params, sort_keys=True),
        "FLE_JOB_SLOT": str(job.slot),
    }


def fle_server_range(slot: int, servers_per_job: int, first_server: int = 0) -> tuple[int, int]:
    """FLE's ``(FLE_SERVER_START, FLE_SERVER_END)`` for the job in concurrency ``slot``.

    FLE's server pool uses servers ``START <= i < END`` (end exclusive). Slot ``s``
    gets ``servers_per_job`` servers from ``first_server + s * servers_per_job``, so two
    jobs of one runner (one node) never share a Factorio server."""
    if slot < 0 or servers_per_job < 1 or first_server < 0:
        raise ConfigError(
            f"bad FLE server range: slot {slot}, servers_per_job {servers_per_job}, first_server {first_server}",
            hint="servers_per_job must be at least 1; slot and first_server at least 0",
        )
    start = first_server + slot * servers_per_job
    return start, start + servers_per_job


def simulate_argv(job: Job, options: Mapping[str, Any]) -> list[str]:
    """``python -m fle_core.sweeps.simulate ...`` per the simulator CLI contract."""
    argv = [
        sys.executable,
        "-m",
        "fle_core.sweeps.simulate",
        "--source",
        job.source_url,
        "--model",
        job.model,
        "--task",
        job.task,
        "--version",
        str(job.version),
        "--trial",
        str(job.trial),
        "--sweep-id",
        job.sweep_id,
        "--seed",
        str(job.seed),
    ]
    for key, cast in _SIM_OPTIONS.items():
        if options.get(key) is not None:
            argv += [f"--{key.replace('_', '-')}", str(cast(options[key]))]
    return argv


def _has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    return bool(urlsplit(url).password) or "password=" in url.lower()


def write_fle_run_config(job: Job, workdir: Path) -> Path:
    """FLE's run config: ``[{"env_id": env_id, "model": model, "version": v}]``."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{job.cell_id}.{job.attempt}.run_config.json"
    path.write_text(
        json.dumps([{"env_id": job.env_id, "model": job.model, "version": job.version}], indent=2) + "\n"
    )
    return path


def substitute(part: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` fields of one argv element; values are inserted verbatim."""
    return "".join(
        lit + (values[name] if name is not None else "")
        for lit, name, _spec, _conv in string.Formatter().parse(part)
    )


def check_template(name: str, parts: list[str]) -> None:
    """Reject unknown placeholders and format specs at load time."""
    for part in parts:
        try:
            fields = list(string.Formatter().parse(part))
        except ValueError as exc:
            raise ConfigError(f"[executors.{name}] bad template {part!r}: {exc}") from None
        for _lit, fname, spec, conv in fields:
            if fname is None:
                continue
            if fname not in PLACEHOLDERS or spec or conv:
                raise ConfigError(
                    f"[executors.{name}] unknown placeholder {{{fname}}} in {part!r}",
                    hint=f"use one of {', '.join(sorted(PLACEHOLDERS))}",
                )


def _values(job: Job, run_config: str) -> dict[str, str]:
    return {
        "model": job.model,
        "task": job.task,
        "env_id": job.env_id,
        "trial": str(job.trial),
        "version": str(job.version),
        "sweep_id": job.sweep_id,
        "attempt": str(job.attempt),
        "params_json": json.dumps(job.params, sort_keys=True),
        "run_config": run_config,
        "source_url": job.source_url,
    }


# ---- presets ------------------------------------------------------------------------
def builtin_presets() -> dict[str, Executor]:
    return {
        "simulate": Executor(
            "simulate",
            "simulate",
            options={"step_delay": 0.05},
            description="Simulated FLE agent (writes labelled simulated rows)",
        ),
        "simulate-fast": Executor(
            "simulate-fast",
            "simulate",
            options={"step_delay": 0.0, "steps": 12},
            description="Simulated FLE agent, 12 steps, no delay (demos, tests)",
        ),
        "fle": Executor(
            "fle",
            "fle",
            FLE_DEFAULT_COMMAND,
            description="FLE eval entrypoint with a generated run config (needs Factorio)",
        ),
    }


def load_presets(ws: Workspace) -> dict[str, Executor]:
    """Built-ins overlaid with ``[executors.NAME]`` from the workspace config."""
    presets = builtin_presets()
    for name, spec in ws.section("executors").items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"[executors.{name}] must be a table")
        presets[name] = _parse_preset(name, spec, presets.get(name))
    return presets


def get_preset(ws: Workspace, name: str) -> Executor:
    presets = load_presets(ws)
    if name not in presets:
        raise ConfigError(
            f"Unknown executor {name!r}",
            hint=f"configured: {', '.join(sorted(presets))}; add [executors.{name}] to config.toml",
        )
    return presets[name]


def _parse_preset(name: str, spec: Mapping[str, Any], base: Executor | None) -> Executor:
    kind = spec.get("kind", base.kind if base else "command")
    if kind not in ("simulate", "command", "fle"):
        raise ConfigError(f"[executors.{name}] kind must be simulate, command or fle, not {kind!r}")
    raw = spec.get("command", list(base.template) if base and base.kind == kind else None)
    template: list[str] = []
    if kind in ("command", "fle"):
        if raw is None:
            raw = list(FLE_DEFAULT_COMMAND) if kind == "fle" else None
        if isinstance(raw, str):
            raw = shlex.split(raw)  # the template only; values are substituted later
        if not raw or not all(isinstance(p, str) for p in raw):
            raise ConfigError(f"[executors.{name}] needs command = [argv strings]")
        template = list(raw)
        check_template(name, template)
    options = dict(base.options) if base and base.kind == kind else {}
    for key, cast in _SIM_OPTIONS.items():
        if key in spec:
            try:
                options[key] = cast(spec[key])
            except (TypeError, ValueError):
                raise ConfigError(f"[executors.{name}] {key} must be a number") from None
    env = spec.get("env", {})
    if not isinstance(env, Mapping):
        raise ConfigError(f"[executors.{name}] env must be a table")
    return Executor(
        name,
        kind,
        tuple(template),
        options,
        {str(k): str(v) for k, v in env.items()},
        str(spec.get("description", base.description if base else "")),
    )
