"""What a *system* is: the one place that decides which trajectories may be pooled.

A model is not a system. FLE passes its main experiment factors as environment
variables Inspect never records, so one model's runs under two solvers, two trajectory
lengths or two FLE releases would otherwise read as one. A trajectory's system is:

* ``model`` (with its provider: Inspect names models ``provider/model``) and, for sweep
  attempts, the sweep ``config`` (its params);
* the ``system`` column, a canonical JSON object of the parts below that are known
  (``SYSTEM_PARTS``), null parts left out:

  - ``era``: ``factorio-1.1`` for the legacy ``programs`` table (FLE <= 0.3),
    ``factorio-2.0`` for Inspect logs (FLE >= 0.4.0 moved to Factorio 2.0 and rewrote
    the production score);
  - ``solver``: the ``fle`` preset's job file (``--solver``), else the sample's
    ``solver_variant`` (open-play variant tasks), else the log's plan
    (``factorio_<variant>_solver`` → ``<variant>``);
  - ``trajectory_length`` (sample metadata, else the job file), ``vision`` and
    ``scenario`` (job file only);
  - ``generate``: the eval's generate config fields that change behaviour
    (reasoning effort and tokens, temperature, max tokens, …);
  - ``limits``: ``changed mid-run`` when the log records ``config_updates``
    (``inspect ctl config`` retuned limits or concurrency while the eval ran);
  - ``fle`` and ``inspect_ai``: the package versions the log records (FLE's from the
    log or the job file).

``label_systems`` (in ``loaders``) names each system by its model plus the parts that
*differ* between the systems in the frame: ``openai/gpt-4o [solver=hud]``. Metrics group
by that label by default (Compare, the report, ``load_summaries`` + ``label_systems``);
``pooled_systems`` says what a model-level roll-up pooled, ``comparability`` why two
systems are not like with like, and ``common_tasks`` restricts suite-level numbers to
the tasks every system ran (the *suite*: FLE 0.4.4 adds seven harder lab tasks, so a
suite rate before and after it covers different tasks), saying which were dropped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from fle_core import warehouse
from fle_core.errors import MetricError
from fle_core.stats.metrics import TRAJECTORY_KEY
from fle_core.workspace import Workspace

#: The ``configs=`` filter value (and UI label) for trajectories without params.
NO_CONFIG = "(none)"
#: ``label_systems``' default: model, sweep config and the parts below.
SYSTEM_BY = ("model", "config", "system")
#: A system as the issue of runs compared like with like defines it: model and the parts
#: below, sweep configs pooled (Compare's and the report's default rows).
SYSTEM_ONLY = ("model", "system")
#: The parts of a system besides model and config, in label order.
SYSTEM_PARTS = (
    "era",
    "solver",
    "trajectory_length",
    "vision",
    "scenario",
    "generate",
    "limits",
    "fle",
    "inspect_ai",
)
#: Eras: what FLE release family (and Factorio version) wrote a trajectory.
PROGRAMS_ERA = "factorio-1.1"
INSPECT_ERA = "factorio-2.0"
#: Parts whose difference makes two systems' numbers incomparable, and what it means.
_WHY = {
    "era": "Factorio version / FLE era differs ({a} vs {b}): production scores were computed by different code",
    "solver": "FLE solver differs ({a} vs {b})",
    "trajectory_length": "trajectory length differs ({a} vs {b} steps)",
    "vision": "vision mode differs ({a} vs {b})",
    "scenario": "scenario differs ({a} vs {b})",
    "generate": "generate config differs ({a} vs {b})",
    "limits": "per-sample limits were changed mid-run on one side ({a} vs {b})",
    "fle": "FLE version differs ({a} vs {b})",
    "inspect_ai": "inspect_ai version differs ({a} vs {b})",
}
_COLUMNS = {
    "solver": "solver",
    "trajectory_length": "trajectory_length",
    "vision": "vision",
    "scenario": "scenario",
    "generate": "generate_config",
    "fle": "fle_version",
    "inspect_ai": "inspect_version",
    "limits": "limits_changed",
}


def system_key(parts: dict[str, Any]) -> str:
    """The canonical ``system`` value for a dict of parts (nulls dropped, keys sorted)."""
    return json.dumps({k: v for k, v in parts.items() if v is not None}, sort_keys=True)


def parts_of(system: str | None) -> dict[str, Any]:
    if not system:
        return {}
    try:
        value = json.loads(system)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def load_systems(ws: Workspace, *, as_of_sync: int | None = None) -> pl.DataFrame:
    """``source, version, instance, system`` for every counted Inspect trajectory."""
    schema = {"source": pl.String, "version": pl.Int64, "instance": pl.Int64, "system": pl.String}
    cols = ", ".join(_COLUMNS.values())
    sql = f"SELECT source, version, instance, {cols} FROM inspect_samples WHERE superseded_by IS NULL" + (
        " AND sync_id <= ?" if as_of_sync is not None else ""
    )
    with warehouse.reader(ws) as con:
        rows = con.execute(sql, [int(as_of_sync)] if as_of_sync is not None else []).fetchall()
    names = list(_COLUMNS)
    out = []
    for row in rows:
        parts: dict[str, Any] = {"era": INSPECT_ERA}
        for name, value in zip(names, row[3:], strict=True):
            if name == "generate" and value:
                value = parts_of(value) or value
            if name == "limits":  # ``inspect ctl config`` retuned the eval while it ran
                value = "changed mid-run" if value else None
            parts[name] = value
        out.append((row[0], row[1], row[2], system_key(parts)))
    return pl.DataFrame(out, schema=schema, orient="row").unique(subset=list(TRAJECTORY_KEY), keep="first")


def attach_systems(summaries: pl.DataFrame, systems: pl.DataFrame) -> pl.DataFrame:
    """``summaries`` with a ``system`` column: the Inspect trajectories' from ``systems``
    (``load_systems``), every other (a ``programs`` row) ``{"era": "factorio-1.1"}``.
    Row order and every other column are unchanged. Pure."""
    legacy = system_key({"era": PROGRAMS_ERA})
    base = summaries.drop("system", strict=False)
    if systems.is_empty():
        return base.with_columns(pl.lit(legacy, dtype=pl.String).alias("system"))
    joined = base.join(
        systems.rename({"system": "_sys"}), on=list(TRAJECTORY_KEY), how="left", maintain_order="left"
    )
    return joined.with_columns(pl.col("_sys").fill_null(legacy).alias("system")).drop("_sys")


def varying_parts(systems: Sequence[str | None]) -> list[str]:
    """The parts whose values differ between these systems (what labels must show)."""
    parsed = [parts_of(s) for s in set(systems)]
    out = []
    for part in SYSTEM_PARTS:
        values = {json.dumps(p.get(part), sort_keys=True) for p in parsed}
        if len(values) > 1:
            out.append(part)
    return out


#: How a label shows a part a system does not have.
_UNSET = {"generate": "default", "limits": "as launched"}
#: Short names of the parts in labels.
LABEL_NAMES = {"trajectory_length": "steps", "generate": "gen", "fle": "FLE", "inspect_ai": "inspect_ai"}


def part_text(part: str, value: Any) -> str:
    """One part as a label shows it: ``solver=hud``, ``steps=64``, ``gen=reasoning_effort=high``
    (``gen=default`` without generate settings, ``unknown`` for a part the log does not say)."""
    name = LABEL_NAMES.get(part, part)
    if value is None:
        return f"{name}={_UNSET.get(part, 'unknown')}"
    if isinstance(value, dict):
        return f"{name}=" + ",".join(f"{k}={_plain(v)}" for k, v in sorted(value.items()))
    return f"{name}={_plain(value)}"


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def system_label_parts(system: str | None, shown: Sequence[str]) -> list[str]:
    """The label fragments of one system for the ``shown`` (varying) parts."""
    parts = parts_of(system)
    return [part_text(p, parts.get(p)) for p in shown]


def pooled_systems(summaries: pl.DataFrame) -> pl.DataFrame:
    """What a roll-up by model pools: ``model, systems, labels, trajectories`` for every
    model whose trajectories belong to more than one system (empty when none)."""
    schema: dict[str, Any] = {
        "model": pl.String,
        "systems": pl.Int64,
        "labels": pl.List(pl.String),
        "trajectories": pl.Int64,
    }
    if summaries.is_empty() or "system" not in summaries.columns:
        return pl.DataFrame(schema=schema)
    model = "base_model" if "base_model" in summaries.columns else "model"
    frame = summaries.with_columns(pl.col(model).alias("_m"))
    labelled = label_systems(
        frame.drop("base_model", strict=False).with_columns(pl.col("_m").alias("model")), by=SYSTEM_ONLY
    )
    out = (
        labelled.group_by("_m")
        .agg(
            pl.col("model").n_unique().alias("systems"),
            pl.col("model").unique().sort().alias("labels"),
            pl.len().alias("trajectories"),
        )
        .filter(pl.col("systems") > 1)
        .rename({"_m": "model"})
        .sort("model")
    )
    return out.select([pl.col(c).cast(t) for c, t in schema.items()])


def comparability(summaries: pl.DataFrame, a: str, b: str, *, by: str = "model") -> list[str]:
    """Why systems ``a`` and ``b`` (values of ``by`` in a ``label_systems`` frame, or base
    models) are not like with like; empty when they are. One warning per reason:
    differing parts (era, solver, …), a side that pools several systems, tasks one side
    ran and the other did not, and mid-run config changes or invalidated samples."""
    warnings: list[str] = []
    sides = {name: summaries.filter(pl.col(by) == name) for name in (a, b)}
    for name, side in sides.items():
        if side.is_empty():
            warnings.append(f"{name} has no trajectories here")
    if warnings:
        return warnings
    systems = {
        name: sorted(set(side["system"].to_list())) if "system" in side.columns else []
        for name, side in sides.items()
    }
    for name, found in systems.items():
        if len(found) > 1:
            shown = varying_parts(found)
            warnings.append(
                f"{name} pools {len(found)} systems (they differ in {', '.join(shown) or 'config'})"
            )
    if len(systems[a]) == 1 and len(systems[b]) == 1:
        warnings += [text for _, text in part_differences(systems[a][0], systems[b][0])]
    ta, tb = set(sides[a]["task"].drop_nulls()), set(sides[b]["task"].drop_nulls())
    if ta != tb:
        only_a, only_b = sorted(ta - tb), sorted(tb - ta)
        msg = f"different tasks: {len(ta & tb)} in common"
        if only_a:
            msg += f"; only {a}: {', '.join(only_a)}"
        if only_b:
            msg += f"; only {b}: {', '.join(only_b)}"
        warnings.append(msg)
    return warnings


def part_differences(system_a: str, system_b: str) -> list[tuple[str, str]]:
    """(part, sentence) for every part two systems differ in (era, solver, versions, …)."""
    pa, pb = parts_of(system_a), parts_of(system_b)
    return [
        (part, _WHY[part].format(a=_show(pa.get(part)), b=_show(pb.get(part))))
        for part in SYSTEM_PARTS
        if pa.get(part) != pb.get(part)
    ]


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, dict):
        return ",".join(f"{k}={_plain(v)}" for k, v in sorted(value.items()))
    return _plain(value)


def system_tasks(summaries: pl.DataFrame, by: str = "model") -> pl.DataFrame:
    """The suite each system ran: ``<by>, tasks`` (sorted list), ``n_tasks``."""
    if summaries.is_empty():
        return pl.DataFrame(schema={by: pl.String, "tasks": pl.List(pl.String), "n_tasks": pl.Int64})
    return (
        summaries.filter(pl.col("task").is_not_null())
        .group_by(by)
        .agg(pl.col("task").unique().sort().alias("tasks"))
        .with_columns(pl.col("tasks").list.len().cast(pl.Int64).alias("n_tasks"))
        .sort(by)
    )


def common_tasks(summaries: pl.DataFrame, by: str = "model") -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """``summaries`` restricted to the tasks every ``by`` group (system) ran, and the tasks
    dropped per group (only groups that lost any). One group, or groups with no task in
    common at all (nothing would be left): unchanged (``suite_note`` says so). Pure."""
    suites = system_tasks(summaries, by)
    if suites.height < 2:
        return summaries, {}
    common = set.intersection(*(set(t) for t in suites["tasks"].to_list()))
    if not common:
        return summaries, {}
    dropped = {
        str(row[by]): sorted(set(row["tasks"]) - common)
        for row in suites.iter_rows(named=True)
        if set(row["tasks"]) - common
    }
    if not dropped:
        return summaries, {}
    return summaries.filter(pl.col("task").is_in(sorted(common))), dropped


def dropped_note(dropped: dict[str, list[str]]) -> str | None:
    """One sentence saying which tasks a common-task comparison left out, or None."""
    if not dropped:
        return None
    parts = [f"{name}: {', '.join(tasks)}" for name, tasks in sorted(dropped.items())]
    return "Compared on the tasks every system ran; left out " + "; ".join(parts) + "."


def suite_note(summaries: pl.DataFrame, by: str = "model") -> str | None:
    """What suite-level numbers over ``summaries`` cover, when not every system ran the same
    tasks: the tasks ``common_tasks`` left out, or that the systems share no task at all."""
    suites = system_tasks(summaries, by)
    if suites.height < 2:
        return None
    sets = [set(t) for t in suites["tasks"].to_list()]
    if not set.intersection(*sets):
        return "These systems share no task: suite-level numbers below are over different tasks."
    return dropped_note(common_tasks(summaries, by)[1])


# ---------------------------------------------------------------- labels
def _param_text(value) -> str:
    """A param value as written in a label: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def config_label(config: str | None) -> str:
    """``temperature=0.2, prompt=v2`` for a params JSON object (keys in stored order);
    ``NO_CONFIG`` for null; any other JSON or text is shown as is."""
    if config is None:
        return NO_CONFIG
    try:
        params = json.loads(config)
    except ValueError:
        return config
    if not isinstance(params, dict):
        return config
    return ", ".join(f"{k}={_param_text(v)}" for k, v in params.items()) or NO_CONFIG


def label_systems(summaries: pl.DataFrame, by: Sequence[str] = SYSTEM_BY) -> pl.DataFrame:
    """Summaries whose ``model`` is the system label, so metrics compare systems.

    A system is a distinct combination of the ``by`` columns (``model`` first; by
    default model, sweep config and the ``system`` column of ``load_summaries``, see
    ``analysis.systems``; a frame without ``system`` is labelled by model and config).
    Its label is the model followed by the other columns in brackets — the
    config rendered by ``config_label``, the ``system`` parts that differ between
    the model's systems in the frame (``solver=hud``; ``analysis.systems.comparability``
    says what differs between two models), any other column as ``name=value``;
    null values are left out, so runs without params keep the bare model name:
    ``gpt-4o [prompt=v2, temperature=0.2]``, ``gpt-4o``. If two different
    systems would get the same label (e.g. params ``{"t": 1}`` and
    ``{"t": "1"}``), the raw values are used for those instead, so labels stay
    unique. The original model is kept in ``base_model``; every other column
    is unchanged, and row order is preserved. Deterministic (a pure function).
    """
    if tuple(by) == SYSTEM_BY and "system" not in summaries.columns:
        by = ("model", "config")  # a frame from before systems (no ``system`` column)
    by = list(by)
    if not by or by[0] != "model":
        raise MetricError(f"label_systems needs 'model' as the first 'by' column, got {by}")
    missing = [c for c in by if c not in summaries.columns]
    if missing:
        raise MetricError(
            f"summaries frame lacks column(s): {', '.join(missing)}",
            hint="load it with fle_core.analysis.load_summaries",
        )
    base = (
        summaries.rename({"base_model": "_base_model_old"})
        if "base_model" in summaries.columns
        else summaries
    )
    systems = base.select(by).unique().sort(by, nulls_last=False)
    shown: dict[str | None, list[str]] = {}
    if "system" in by:  # the parts that tell a model's systems apart
        for (model,), group in systems.group_by("model"):
            shown[model] = varying_parts(group["system"].to_list())
    labels = [
        _system_label(row, by, raw=False, shown=shown.get(row["model"], ()))
        for row in systems.iter_rows(named=True)
    ]
    seen: dict[str | None, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    labels = [
        _system_label(row, by, raw=True, shown=shown.get(row["model"], ())) if seen[lab] > 1 else lab
        for lab, row in zip(labels, systems.iter_rows(named=True), strict=True)
    ]
    keyed = systems.with_columns(pl.Series("_label", labels, dtype=pl.String))
    out = base.with_columns(pl.col("model").alias("base_model")).join(
        keyed, on=by, how="left", nulls_equal=True, maintain_order="left"
    )
    out = out.with_columns(pl.col("_label").alias("model")).drop("_label")
    return out.drop("_base_model_old", strict=False)


def _system_label(row: dict, by: list[str], *, raw: bool, shown: Sequence[str] = ()) -> str | None:
    """One system's label (see ``label_systems``); ``raw`` shows values verbatim."""
    parts: list[str] = []
    for col in by[1:]:
        value = row[col]
        if value is None:
            continue
        if col == "system":
            parts.extend([value] if raw else system_label_parts(value, shown))
        elif col == "config":
            parts.append(str(value) if raw else config_label(value))
        else:
            parts.append(f"{col}={value}")
    if not parts:
        return row["model"]
    return f"{row['model'] if row['model'] is not None else '(no model)'} [{'; '.join(parts)}]"
