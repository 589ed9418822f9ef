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

    [executors.fle]                 # FLE >= 0.4: Inspect logs, one epoch per job
    kind = "fle"
    command = ["fle", "inspect-eval", "--env-id={task}", "--model={model}", "--epochs=1", "--log-dir={log_dir}"]
    servers_per_job = 1             # Factorio servers per job: FLE_SERVER_START/END from the job's slot
    first_server = 0
    pass_env = ["OPENAI_API_KEY"]   # variables the job may inherit (fnmatch patterns)
    solver = "hud"                  # FLE's --solver, --trajectory-length, --vision, --scenario:
    trajectory_length = 64          #   a sweep param of the same name wins; written to fle-job.json

    [executors.fle-legacy]          # FLE < 0.4: `fle eval` with a run config, writes `programs`
    kind = "fle-legacy"
    command = ["fle", "eval", "--config", "{run_config}"]

Quoting: a ``command`` is a list of argv strings and each ``{placeholder}`` is
substituted *inside its argv element*; the result is passed to ``exec``
directly, never to a shell. A command given as one string is split with
``shlex.split`` once, when the preset is loaded, before any value exists. So
a model called ``x; touch /tmp/pwned`` is one literal argument. A value the
user chose (``{model}``, ``{task}``, ``{env_id}``) may start with ``-`` (a model
called ``-h``): the built-in presets pass ``--model={model}``; a template that
puts such a value at the start of an argv element (not after ``--``) refuses to
build the job rather than let the program read the value as an option.
Placeholders: {model} {task} {env_id} {trial} {version} {sweep_id} {attempt}
{params_json} {run_config} {source_url} {log_dir}.

Environment: a job does not inherit the runner's environment (which may hold
``FLE_CONTROL_PASSWORD`` or other sources' URLs). It gets ``BASE_ENV`` (PATH,
HOME, locale, ...), the ``FLE_*`` job variables, the preset's ``env`` table and
the runner's variables matching the preset's ``pass_env`` patterns.

Completion is judged by the sweep's source (``Source.verify_job``): a ``programs``
row of the attempt's version, or, for a folder of Inspect logs, the job's log with
status ``success`` and the expected scored sample. ``Executor.writes`` says which
of the two a preset's jobs produce, so a sweep cannot pair it with the wrong source.
"""

from __future__ import annotations

import fnmatch
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
        "log_dir",
    }
)
#: Placeholders whose values users choose; they may start with "-".
USER_VALUES = frozenset({"model", "task", "env_id"})
Kind = Literal["simulate", "command", "fle", "fle-legacy"]

FLE_DEFAULT_COMMAND = (
    "fle",
    "inspect-eval",
    "--env-id={task}",
    "--model={model}",
    "--epochs=1",
    "--log-dir={log_dir}",
)
FLE_LEGACY_COMMAND = ("fle", "eval", "--config", "{run_config}")
_SIM_OPTIONS = {"step_delay": float, "crash_rate": float, "error_rate": float, "steps": int}
_FLE_OPTIONS = {"servers_per_job": int, "first_server": int}


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


#: FLE's experiment settings, which ``fle inspect-eval`` passes to its tasks in environment
#: variables that Inspect never records: the ``fle`` preset takes each from the job's sweep
#: params (else the preset's option), passes it as FLE's flag and writes the value in effect
#: into ``fle-job.json``, where sync reads it as part of the trajectory's system.
FLE_SETTINGS: dict[str, Any] = {"solver": str, "trajectory_length": int, "vision": _flag, "scenario": str}
#: What every job inherits from the runner's environment (nothing secret).
BASE_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "TERM",
    "SHELL",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CUDA_VISIBLE_DEVICES",
    "SLURM_*",
    "WANDB_MODE",
)


@dataclass(frozen=True)
class KindFacts:
    """What a kind of preset does: the one place that knows it."""

    simulated: bool = False  # runs the built-in simulator (no command template)
    run_config: bool = False  # writes FLE's run config for `fle eval --config`
    log_dir: bool = False  # writes Inspect logs into the job's own folder (with fle-job.json)
    servers: bool = False  # gets FLE_SERVER_START/END from its concurrency slot
    writes: str | None = None  # what its jobs write: "programs", "inspect_logs", or None (either)
    command: tuple[str, ...] = ()  # the default argv template


KIND_FACTS: dict[str, KindFacts] = {
    "simulate": KindFacts(simulated=True, writes="programs"),
    "command": KindFacts(),
    "fle": KindFacts(log_dir=True, servers=True, writes="inspect_logs", command=FLE_DEFAULT_COMMAND),
    "fle-legacy": KindFacts(run_config=True, writes="programs", command=FLE_LEGACY_COMMAND),
}
KINDS = tuple(KIND_FACTS)
#: The ``fle`` preset's default ``pass_env``: model-provider keys and Inspect/Factorio settings.
FLE_PASS_ENV = (
    "*_API_KEY",
    "*_API_BASE",
    "*_BASE_URL",
    "INSPECT_*",
    "FACTORIO_*",
    "AWS_*",
    "AZURE_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "HF_*",
)


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
    log_dir: Path | None = None  # the job's own Inspect log folder (fle preset)


@dataclass(frozen=True)
class Executor:
    """A named preset. ``template`` is an argv template for command/fle presets."""

    name: str
    kind: Kind
    template: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    pass_env: tuple[str, ...] = ()

    def build(self, job: Job, workdir: Path) -> Command:
        """The argv and environment for ``job``; may write files (FLE run config) to ``workdir``."""
        env = {k: str(v) for k, v in self.env.items()}
        env.update(job_env(job))
        facts = KIND_FACTS[self.kind]
        if facts.simulated:
            argv = simulate_argv(job, self.options)
            if _has_password(job.source_url):  # keep secrets out of argv (visible in `ps`)
                argv = [a for a in argv if not a.startswith("--source=")]
                env["FLE_SOURCE_URL"] = job.source_url
            return Command(argv, env)
        files: list[Path] = []
        run_config = ""
        if facts.run_config or self.uses("run_config"):
            path = write_fle_run_config(job, workdir)
            files.append(path)
            run_config = str(path)
        log_dir = None
        settings = fle_settings(job, self.options) if self.kind == "fle" else {}
        if facts.log_dir or self.uses("log_dir"):
            log_dir = job_log_dir(job)
            files.append(write_job_file(job, log_dir, settings))
        if facts.servers:
            start, end = fle_server_range(
                job.slot,
                int(self.options.get("servers_per_job", 1)),
                int(self.options.get("first_server", 0)),
            )
            env.update({"FLE_SERVER_START": str(start), "FLE_SERVER_END": str(end)})
        values = _values(job, run_config, str(log_dir) if log_dir else "")
        _refuse_option_like(self.name, self.template, values)
        argv = [substitute(part, values) for part in self.template]
        return Command(argv + fle_flags(settings, argv), env, files, log_dir)

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The part of the runner's environment a job inherits: ``BASE_ENV`` plus the
        variables matching this preset's ``pass_env`` patterns; nothing else."""
        patterns = (*BASE_ENV, *self.pass_env)
        return {k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}

    def writes(self) -> str | None:
        """What this preset's jobs write, which the sweep's source must hold: ``inspect_logs``
        (``fle``, and ``command`` presets given a ``{log_dir}``), ``programs`` (``simulate``,
        ``fle-legacy``), or None for a ``command`` preset that could write either."""
        if self.uses("log_dir"):
            return "inspect_logs"
        return KIND_FACTS[self.kind].writes

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
            "pass_env": list(self.pass_env),
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
    """``python -m fle_core.sweeps.simulate ...`` per the simulator CLI contract.

    Every value is passed as ``--flag=VALUE``, so a model called ``-h`` is a value."""
    argv = [
        sys.executable,
        "-m",
        "fle_core.sweeps.simulate",
        f"--source={job.source_url}",
        f"--model={job.model}",
        f"--task={job.task}",
        f"--version={job.version}",
        f"--trial={job.trial}",
        f"--sweep-id={job.sweep_id}",
        f"--seed={job.seed}",
    ]
    for key, cast in _SIM_OPTIONS.items():
        if options.get(key) is not None:
            argv.append(f"--{key.replace('_', '-')}={cast(options[key])}")
    return argv


def job_log_dir(job: Job) -> Path:
    """The job's own Inspect log folder, inside the sweep's (inspect) source folder:
    ``<source>/sweeps/<sweep_id>/<cell_id>.<attempt>/`` (``log_folder.job_folder``)."""
    from fle_core.sources.log_folder import job_folder

    root = Path(job.source_url)
    if "://" in job.source_url or not root.is_absolute():
        raise ConfigError(
            "The fle preset writes Inspect logs to a local folder, so the sweep's source must be a local "
            "folder of Inspect logs",
            hint='set source = "local_inspect" (the workspace\'s inspect_logs/) or a [sources.NAME] kind = "inspect"',
        )
    return root / job_folder(job.sweep_id, job.cell_id, job.attempt)


def fle_settings(job: Job, options: Mapping[str, Any]) -> dict[str, Any]:
    """FLE's settings for ``job`` (``FLE_SETTINGS``): the job's sweep params first, then the
    preset's options; those set by neither get FLE 0.4.3's own defaults (``fle inspect-eval``:
    solver ``controlled``, or ``unbounded`` for open play; 64 steps, 5000 for open play; no
    vision; scenario ``default_lab_scenario``), so the job file always says what ran."""
    open_play = job.env_id.startswith("open_play") or job.task.startswith("open_play")
    out: dict[str, Any] = {}
    for key, cast in FLE_SETTINGS.items():
        value = job.params.get(key, options.get(key))
        if value is None:
            continue
        try:
            out[key] = cast(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"FLE setting {key}={value!r} of job {job.cell_id} is not a {cast.__name__}"
            ) from None
    explicit = [k for k in FLE_SETTINGS if k in out]  # FLE's flags in a fixed order
    out.setdefault("solver", "unbounded" if open_play else "controlled")
    out.setdefault("trajectory_length", 5000 if open_play else 64)
    out.setdefault("vision", False)
    out.setdefault("scenario", "default_lab_scenario")
    out["_explicit"] = explicit
    return out


def fle_flags(settings: Mapping[str, Any], argv: list[str]) -> list[str]:
    """``fle inspect-eval`` flags for the settings given explicitly, unless the template
    already passes that flag itself."""
    flags = []
    for key in settings.get("_explicit", []):
        flag = "--" + key.replace("_", "-")
        if any(a == flag or a.startswith(flag + "=") for a in argv):
            continue
        value = settings[key]
        if key == "vision":
            flags += [flag] if value else []
        else:
            flags.append(f"{flag}={value}")
    return flags


def write_job_file(job: Job, log_dir: Path, settings: Mapping[str, Any] | None = None) -> Path:
    """``fle-job.json`` beside the job's log: how sync joins the log to the sweep attempt,
    and FLE's settings in effect (``fle_settings``), which the log itself never records."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "fle-job.json"
    facts = {
        "sweep_id": job.sweep_id,
        "cell_id": job.cell_id,
        "attempt": job.attempt,
        "version": job.version,
        "trial": job.trial,
        "model": job.model,
        "task": job.task,
        **{k: v for k, v in (settings or {}).items() if not k.startswith("_")},
    }
    path.write_text(json.dumps(facts, indent=2) + "\n")
    return path


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


def _refuse_option_like(name: str, template: tuple[str, ...], values: Mapping[str, str]) -> None:
    """A user-chosen value starting with ``-`` at the start of an argv element (before any
    ``--``) would be read as an option by the program: refuse to build the job."""
    for part in template:
        if part == "--":
            return
        fields = list(string.Formatter().parse(part))
        lit, fname = (fields[0][0], fields[0][1]) if fields else ("", None)
        if not lit and fname in USER_VALUES and values[fname].startswith("-"):
            raise ConfigError(
                f"[executors.{name}] {fname} {values[fname]!r} would be read as an option by {part!r}",
                hint=f"write the template as --{fname.replace('_', '-')}={part}, or put it after '--'",
            )


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


def _values(job: Job, run_config: str, log_dir: str = "") -> dict[str, str]:
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
        "log_dir": log_dir,
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
            options={"servers_per_job": 1, "first_server": 0},
            description="FLE >= 0.4: `fle inspect-eval`, one epoch per job, Inspect log in the source "
            "folder (needs Factorio servers and model keys)",
            pass_env=FLE_PASS_ENV,
        ),
        "fle-legacy": Executor(
            "fle-legacy",
            "fle-legacy",
            FLE_LEGACY_COMMAND,
            description="FLE < 0.4: `fle eval --config` with a generated run config (writes programs)",
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
    if kind not in KINDS:
        raise ConfigError(f"[executors.{name}] kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if base is not None and base.kind != kind:
        base = None  # a preset of another kind inherits nothing from the built-in one
    raw = spec.get("command", list(base.template) if base else None)
    template: list[str] = []
    if not KIND_FACTS[kind].simulated:
        if raw is None:
            raw = list(KIND_FACTS[kind].command) or None
        if isinstance(raw, str):
            raw = shlex.split(raw)  # the template only; values are substituted later
        if not raw or not all(isinstance(p, str) for p in raw):
            raise ConfigError(f"[executors.{name}] needs command = [argv strings]")
        template = list(raw)
        check_template(name, template)
    options = dict(base.options) if base else {}
    known = {**_SIM_OPTIONS, **_FLE_OPTIONS, **(FLE_SETTINGS if kind == "fle" else {})}
    for key, cast in known.items():
        if key in spec:
            try:
                options[key] = cast(spec[key])
            except (TypeError, ValueError):
                what = "number" if cast in (int, float) else cast.__name__.strip("_")
                raise ConfigError(f"[executors.{name}] {key} must be a {what}") from None
    env = spec.get("env", {})
    if not isinstance(env, Mapping):
        raise ConfigError(f"[executors.{name}] env must be a table")
    pass_env = spec.get("pass_env", list(base.pass_env) if base else [])
    if not isinstance(pass_env, list) or not all(isinstance(p, str) for p in pass_env):
        raise ConfigError(f"[executors.{name}] pass_env must be a list of variable names or patterns")
    return Executor(
        name,
        kind,
        tuple(template),
        options,
        {str(k): str(v) for k, v in env.items()},
        str(spec.get("description", base.description if base else "")),
        tuple(pass_env),
    )
