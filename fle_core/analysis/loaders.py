"""Warehouse loaders: the steps and summaries frames the statistics run on.

This is where analysis does I/O. It reads the DuckDB warehouse
with parameterized SQL (DuckDB dialect; no Postgres-only SQL) through
``warehouse.reader`` — one short read per call, no connection kept open —
and hands Polars frames to the pure functions in ``metrics``/``compare``.

Superseded sweep attempts are excluded: a step whose ``(source, version)``
appears in ``sweep_attempts`` with a status other than ``'succeeded'``
(failed, cancelled, timed out, still running, or superseded by a retry) is
dropped unless ``include_failed_attempts=True``. Versions that were never part
of a sweep (plain FLE runs) are always kept.

The old framework's analyzer names over these loaders are in ``analyzers``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from fle_core import warehouse
from fle_core.analysis.systems import NO_CONFIG
from fle_core.stats import cost
from fle_core.stats import infrastructure as infrastructure_rule
from fle_core.stats.metrics import (
    STEP_SCHEMA,
    TRAJECTORY_KEY,
    finish_summaries,
    quota_expr,
    quota_map,
    summarize_trajectories,
)
from fle_core.tasks import TaskRegistry
from fle_core.workspace import Workspace

_STEP_COLUMNS = [c for c in STEP_SCHEMA if c != "config"]  # columns of the steps table


def _config_sql(alias: str) -> str:
    """The trajectory's config: its sweep attempt's params JSON, null if none or empty.

    ``sweep_attempts`` has one row per (source, version) (primary key), so the
    scalar subquery yields at most one value; DuckDB plans it as a join.
    """
    return (
        "(SELECT nullif(nullif(a.params_json, ''), '{}') FROM sweep_attempts a "
        f"WHERE a.source = {alias}.source AND a.version = {alias}.version)"
    )


def _config_values(configs) -> list[str]:
    """Filter values: each string as given plus its canonical form (sorted keys);
    None or ``NO_CONFIG`` select trajectories without params."""
    out: list[str] = []
    for value in _as_list(configs):
        if value is None or value == NO_CONFIG:
            out.append(NO_CONFIG)
            continue
        text = str(value)
        out.append(text)
        with contextlib.suppress(ValueError):  # not JSON: it can still match a stored string literally
            out.append(json.dumps(json.loads(text), sort_keys=True))
    return list(dict.fromkeys(out))


def _escape_like(text: str) -> str:
    """Escape LIKE wildcards so a user's text matches literally (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _in_list(column: str, values: Sequence, params: list) -> str:
    """``column IN (?, ?, ...)``: only placeholders become SQL text."""
    values = list(values)
    if not values:
        return "FALSE"
    params.extend(values)
    return f"{column} IN ({', '.join('?' for _ in values)})"


def _as_list(value) -> list:
    """One value or many as a list (callers test for None before calling)."""
    if isinstance(value, (str, int)):
        return [value]
    return list(value)


def _steps_where(
    *,
    sources=None,
    models=None,
    tasks=None,
    sweep_id=None,
    versions=None,
    since: datetime | None = None,
    until: datetime | None = None,
    as_of_sync: int | None = None,
    include_failed_attempts: bool = False,
    task_contains: str | None = None,
    configs=None,
    include_invalidated: bool = False,
) -> tuple[str, list]:
    """The parameterized WHERE condition on ``steps s`` for ``load_steps``'s filters."""
    params: list = []
    key_where: list[str] = []  # filters on the trajectory key, valid on every step
    if sources is not None:
        key_where.append(_in_list("s.source", _as_list(sources), params))
    if versions is not None:
        key_where.append(_in_list("s.version", [int(v) for v in _as_list(versions)], params))
    if as_of_sync is not None:
        key_where.append("s.sync_id <= ?")
        params.append(int(as_of_sync))
    if not include_failed_attempts:
        key_where.append(
            "NOT EXISTS (SELECT 1 FROM sweep_attempts a WHERE a.source = s.source "
            "AND a.version = s.version AND coalesce(a.status, '') <> 'succeeded')"
        )
    if not include_invalidated:  # samples invalidated in their Inspect log (invalidate_samples)
        key_where.append(
            "NOT EXISTS (SELECT 1 FROM inspect_samples i WHERE i.source = s.source AND i.version = s.version "
            "AND i.instance = s.instance AND i.superseded_by IS NULL "
            "AND (i.invalidated_by IS NOT NULL OR i.invalidated_at IS NOT NULL))"
        )
    if configs is not None:
        key_where.append(
            _in_list(f"coalesce({_config_sql('s')}, '{NO_CONFIG}')", _config_values(configs), params)
        )
    # filters on step attributes select whole trajectories (any matching step)
    traj_where: list[str] = []
    traj_params: list = []
    if models is not None:
        traj_where.append(_in_list("t.model", _as_list(models), traj_params))
    if tasks is not None:
        traj_where.append(_in_list("t.task", _as_list(tasks), traj_params))
    if sweep_id is not None:
        traj_where.append(_in_list("t.sweep_id", _as_list(sweep_id), traj_params))
    if task_contains is not None:
        traj_where.append("t.task LIKE ? ESCAPE '\\'")
        traj_params.append(f"%{_escape_like(str(task_contains))}%")
    for bound, op in ((since, ">="), (until, "<=")):  # one step within [since, until]
        if bound is not None:
            if bound.tzinfo is not None:  # created_at is a naive UTC TIMESTAMP
                bound = bound.astimezone(UTC).replace(tzinfo=None)
            traj_where.append(f"t.created_at {op} ?")
            traj_params.append(bound)
    if traj_where:
        if as_of_sync is not None:
            traj_where.append("t.sync_id <= ?")
            traj_params.append(int(as_of_sync))
        key_where.append(
            "EXISTS (SELECT 1 FROM steps t WHERE t.source = s.source AND "
            "t.version IS NOT DISTINCT FROM s.version AND "
            "t.instance IS NOT DISTINCT FROM s.instance AND " + " AND ".join(traj_where) + ")"
        )
        params.extend(traj_params)
    return (" AND ".join(key_where) if key_where else "TRUE"), params


def _steps_sql(**filters) -> tuple[str, list]:
    """Build the parameterized load query (see ``load_steps``)."""
    where, params = _steps_where(**filters)
    # config by a plain LEFT JOIN (one attempt row per (source, version): the key):
    # ~10% on 1M steps, where a correlated lookup per step cost ~50% (bench/configs.py)
    cols = ", ".join(
        [*(f"s.{c}" for c in _STEP_COLUMNS), "nullif(nullif(cfg.params_json, ''), '{}') AS config"]
    )
    # hash(source) instead of source: an integer sort key is ~4x cheaper in DuckDB
    # and still keeps each trajectory's rows together, ordered by (depth, id)
    sql = (
        f"SELECT {cols} FROM steps s LEFT JOIN sweep_attempts cfg ON cfg.source = s.source "
        f"AND cfg.version = s.version WHERE {where} ORDER BY hash(s.source), "
        "s.version NULLS FIRST, s.instance NULLS FIRST, s.depth NULLS FIRST, s.id"
    )
    return sql, params


def load_steps(
    ws: Workspace,
    *,
    sources=None,
    models=None,
    tasks=None,
    sweep_id=None,
    versions=None,
    since: datetime | None = None,
    until: datetime | None = None,
    as_of_sync: int | None = None,
    include_failed_attempts: bool = False,
    task_contains: str | None = None,
    configs=None,
    include_invalidated: bool = False,
) -> pl.DataFrame:
    """Step rows from the warehouse, in the steps contract, ordered for fast summaries.

    Columns: ``source, id, version, instance, depth, value, model, task,
    sweep_id, error_occurred, production_score, simulated, prompt_tokens,
    completion_tokens, total_tokens, created_at, config``. ``config`` is the
    sweep attempt's canonical params JSON (``sweep_attempts.params_json``, sorted
    keys, as stored) for the step's (source, version), null when the version is
    not a sweep attempt or its params are empty. Each trajectory's rows are
    contiguous and ordered by (depth, id), nulls first — the order
    ``summarize_trajectories`` aggregates fastest; trajectories come ordered by
    (hash(source), version, instance).

    ``sources``/``versions`` filter steps directly. ``models``, ``tasks``,
    ``sweep_id``, ``task_contains`` (substring of the task key, matched
    literally), ``since`` and ``until`` (naive UTC datetimes; inclusive)
    select whole trajectories: every step of a trajectory with at least one
    matching step (with both bounds, one step within them).
    ``as_of_sync=N`` shows the warehouse as it was after sync N
    (``steps.sync_id <= N``) for pinned views. Steps of unsuccessful sweep
    attempts are excluded unless ``include_failed_attempts``. ``configs`` (a
    list of params JSON strings; None or ``"(none)"`` in it selects
    trajectories without params) keeps only those configs; JSON is also
    matched in canonical form, so key order does not matter. Trajectories whose Inspect
    sample was invalidated (``inspect_ai.log.invalidate_samples``) are left out unless
    ``include_invalidated``: they stay in the warehouse, shown as invalidated.
    """
    sql, params = _steps_sql(
        sources=sources,
        models=models,
        tasks=tasks,
        sweep_id=sweep_id,
        versions=versions,
        since=since,
        until=until,
        as_of_sync=as_of_sync,
        include_failed_attempts=include_failed_attempts,
        task_contains=task_contains,
        configs=configs,
        include_invalidated=include_invalidated,
    )
    frame = warehouse.query(ws, sql, params)
    # one contiguous chunk: DuckDB hands over many record batches, and the
    # metrics' sorted fast path is several times faster on contiguous columns
    return frame.select([pl.col(c).cast(t) for c, t in STEP_SCHEMA.items()]).rechunk()


def load_summaries(
    ws: Workspace,
    *,
    registry: TaskRegistry | None = None,
    success_threshold: float | None = None,
    systems: bool = True,
    infrastructure: str = "fail",
    prices=None,
    **filters,
) -> pl.DataFrame:
    """``summarize_trajectories(load_steps(ws, **filters))`` with the workspace's quotas,
    plus (``systems=True``, the default) a last column ``system``: what ran besides the
    model and config (``analysis.systems``: era, FLE solver, trajectory length, generate
    config, FLE and inspect_ai versions), which ``label_systems`` turns into labels.

    ``registry`` defaults to ``ws.task_registry()`` (lab-play defaults plus the
    ``[tasks]`` overrides in config.toml). Inspect trajectories get what their log
    records (``outcomes.apply_outcomes``: quota, FLE's success rule, duration,
    ``infrastructure_failure``, ``cost_usd``); then ``cost_usd`` is filled from the
    price table (``prices``, default ``[prices]`` in config.toml; ``stats.cost``)
    where the log has none, and ``infrastructure`` applies the one rule for
    infrastructure failures (``stats.infrastructure``): ``"fail"`` (default, FLE's
    scorer: they count as failures) or ``"exclude"`` (left out of everything).

    Computed without moving the steps: DuckDB aggregates per trajectory
    (``_summary_sql``; quotas are passed as parameters, so config changes need
    no rebuild) — about 3x faster than loading 1M steps into Polars. A
    trajectory the SQL cannot summarize exactly like ``summarize_trajectories``
    (model, task or sweep_id varying between its steps, a task missing on some
    steps, a NaN depth) is flagged and summarized from its steps by
    ``summarize_trajectories`` itself, so the result is identical (tested).
    ``config`` (see ``load_steps``) is looked up once per trajectory after the
    aggregation; filters are ``load_steps``' (``configs=`` included).
    """
    from fle_core.analysis import outcomes

    infrastructure_rule.check_rule(infrastructure)  # a bad value fails before any query
    qmap = quota_map(registry or ws.task_registry())
    where, where_params = _steps_where(**filters)
    inspect = outcomes.has_outcomes(ws)
    sql, params = _summary_sql(where, qmap, success_threshold, inspect)
    agg = warehouse.query(ws, sql, params + where_params)
    odd = agg["_odd"].fill_null(False)
    out = agg.filter(~odd).drop("_odd")
    out = finish_summaries(out.with_columns(quota_expr(qmap, success_threshold).alias("quota")))
    if odd.any():
        keys = agg.filter(odd).select(TRAJECTORY_KEY)
        k_sql = (
            "EXISTS (SELECT 1 FROM (SELECT unnest(?::VARCHAR[]) AS source, "
            "unnest(?::BIGINT[]) AS version, unnest(?::BIGINT[]) AS instance) k "
            "WHERE k.source = s.source AND k.version IS NOT DISTINCT FROM s.version "
            "AND k.instance IS NOT DISTINCT FROM s.instance)"
        )
        cols = ", ".join([*(f"s.{c}" for c in _STEP_COLUMNS), f"{_config_sql('s')} AS config"])
        steps = warehouse.query(
            ws,
            f"SELECT {cols} FROM steps s WHERE {where} AND {k_sql}",
            where_params + [keys[c].to_list() for c in TRAJECTORY_KEY],
        )
        steps = steps.select([pl.col(c).cast(t) for c, t in STEP_SCHEMA.items()])
        fixed = summarize_trajectories(steps, qmap, success_threshold=success_threshold)
        out = pl.concat([out, fixed]).sort(list(TRAJECTORY_KEY), nulls_last=False)
    if inspect:
        found = outcomes.load_outcomes(ws, as_of_sync=filters.get("as_of_sync"))
        out = outcomes.apply_outcomes(out, found, qmap, success_threshold)
    out = cost.apply_prices(out, ws.section("prices") if prices is None else prices)
    out = infrastructure_rule.apply_rule(out, infrastructure)
    if systems:
        from fle_core.analysis import systems as sysmod

        found_systems = sysmod.load_systems(ws, as_of_sync=filters.get("as_of_sync")) if inspect else None
        out = sysmod.attach_systems(out, found_systems if found_systems is not None else pl.DataFrame())
    return out


def _summary_sql(
    where: str, qmap: dict[str, float], success_threshold: float | None, inspect: bool = False
) -> tuple[str, list]:
    """One row per trajectory with ``summarize_trajectories``' aggregates, in DuckDB.

    Same definitions: rewards over finite values only; ``final_reward`` and
    ``production_score`` at the highest (depth, id) with null depth lowest;
    token sums 0 when all null; ``any`` flags false when all null;
    ``first_success_step`` = smallest depth whose finite value reaches the
    quota of the step's task (equal to the trajectory's task unless ``_odd``).
    Mode columns are exact when constant (min = max); ``_odd`` marks every
    trajectory that needs the Polars path. The quota map and threshold are
    parameters; only the fixed text below and ``where`` (placeholders) are SQL.
    """
    order = "struct_pack(d := coalesce(s.depth, '-inf'::DOUBLE), i := s.id)"
    finite = "isfinite(s.value)"
    reach = "s.value >= ?" if success_threshold is not None else "s.value >= qt.quota"
    join = ""
    if inspect:  # an Inspect trajectory's own quota first (``outcomes``)
        join = (
            "LEFT JOIN (SELECT source, version, instance, quota FROM inspect_samples "
            "WHERE superseded_by IS NULL) iq ON iq.source = s.source AND iq.version = s.version "
            "AND iq.instance = s.instance"
        )
        if success_threshold is None:
            reach = "s.value >= coalesce(iq.quota, qt.quota)"
    odd = " OR ".join(
        [
            *(f"min(s.{c}) <> max(s.{c})" for c in ("model", "task", "sweep_id")),
            "count(s.task) NOT IN (0, count(*))",
            "bool_or(isnan(s.depth))",
        ]
    )
    sql = f"""
        WITH qt AS (SELECT unnest(?::VARCHAR[]) AS task, unnest(?::DOUBLE[]) AS quota)
        SELECT s.source, s.version, s.instance,
               min(s.model) AS model, min(s.task) AS task, min(s.sweep_id) AS sweep_id,
               coalesce(bool_or(s.simulated), false) AS simulated, count(*) AS steps,
               arg_max(s.value, {order}) FILTER (WHERE {finite}) AS final_reward,
               max(s.value) FILTER (WHERE {finite}) AS best_reward,
               min(s.depth) FILTER (WHERE {finite} AND {reach}) AS first_success_step,
               coalesce(sum(s.prompt_tokens), 0)::BIGINT AS prompt_tokens,
               coalesce(sum(s.completion_tokens), 0)::BIGINT AS completion_tokens,
               coalesce(sum(s.total_tokens), 0)::BIGINT AS total_tokens,
               min(s.created_at) AS started_at, max(s.created_at) AS ended_at,
               coalesce(bool_or(s.error_occurred), false) AS error_occurred,
               arg_max(s.production_score, {order}) FILTER (WHERE s.production_score IS NOT NULL)
                   AS production_score,
               coalesce({odd}, false) AS _odd
        FROM steps s LEFT JOIN qt ON s.task = qt.task {join}
        WHERE {where}
        GROUP BY s.source, s.version, s.instance"""
    sql = f"SELECT g.*, {_config_sql('g')} AS config FROM ({sql}) g"
    params: list = [list(qmap), list(qmap.values())]
    if success_threshold is not None:
        params.append(float(success_threshold))
    return sql, params


def version_metadata(
    ws: Workspace, versions: Sequence[int], *, include_failed_attempts: bool = False
) -> pl.DataFrame:
    """Per version: ``version, version_description, model, start_time, end_time,
    num_instances, total_steps, sources`` (the old ``get_version_metadata``'s
    fields; ``version_description``/``model`` are the most common values,
    ``sources`` lists where the version was synced from)."""
    where, params = _steps_where(versions=versions, include_failed_attempts=include_failed_attempts)
    sql = (
        "SELECT s.version, mode(s.version_description) AS version_description, mode(s.model) AS model, "
        "min(s.created_at) AS start_time, max(s.created_at) AS end_time, "
        "count(DISTINCT (s.source, s.instance)) AS num_instances, count(*) AS total_steps, "
        f"list(DISTINCT s.source ORDER BY s.source) AS sources FROM steps s WHERE {where} "
        "GROUP BY s.version ORDER BY s.version"
    )
    return warehouse.query(ws, sql, params)
