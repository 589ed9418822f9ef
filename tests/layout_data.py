"""Synthetic workspaces for the browser layout test: N models × M tasks, built in seconds.

The warehouse is written straight into DuckDB with one vectorized ``INSERT … SELECT
FROM range(n)`` (as ``bench/app.py`` does), plus the ``trajectories``, ``sync_runs``
and ``source_state`` rows, so six workspaces cost a few seconds instead of a real
sync. A sweep is launched into the control store (cells pending, some cancelled)
so the Sweeps and Monitor pages have something to draw. Model names are long and
share prefixes on purpose: labels that are cut short must still tell models apart.
"""

from __future__ import annotations

from pathlib import Path

from fle_core import warehouse
from fle_core.workspace import Workspace

#: The six models of the demo, as a real run would name them (long dated names).
BASE_MODELS = [
    "claude-3-5-sonnet-20241022",
    "gpt-4o-2024-08-06",
    "deepseek-v3",
    "gemini-2.0-flash-exp",
    "meta-llama/Llama-3.3-70B-Instruct",
    "gpt-4o-mini-2024-07-18",
]


def model_names(n: int) -> list[str]:
    """``n`` model names; past six, fine-tuned variants whose names differ only at the end."""
    names = list(BASE_MODELS[:n])
    i = 0
    while len(names) < n:
        base = BASE_MODELS[i % len(BASE_MODELS)]
        names.append(f"{base}-finetune-run-{i // len(BASE_MODELS) + 1:02d}")
        i += 1
    return names


def task_names(n: int) -> list[str]:
    from fle_core.tasks import default_tasks

    reg = default_tasks()
    keys = sorted(k for k, t in reg.items() if t.quota is not None)
    return keys[:n]


def build(
    root: Path, n_models: int, n_tasks: int, trials: int = 4, steps: int = 12, *, inspect: bool = False
) -> Workspace:
    """A workspace whose warehouse holds ``n_models × n_tasks × trials`` trajectories.

    The last task has only 2 trials per model (k = 3, 4 … must be reported as
    missing for it, not silently dropped). Skill varies by model, so success rates
    span 0 % to 100 % (0/n and n/n cells exist); every model keeps a colour.
    ``inspect=True`` adds what Inspect logs record (``_inspect_facts``): a dollar
    cost per trajectory and about one infrastructure failure in twelve.
    """
    ws = Workspace.open(root)
    models, tasks = model_names(n_models), task_names(n_tasks)
    reg = ws.task_registry()
    quotas = [reg.get(t).quota for t in tasks]
    skill = [0.95 - 0.9 * i / max(1, n_models - 1) for i in range(n_models)] if n_models > 1 else [0.6]
    per_task = [trials] * n_tasks
    if n_tasks > 1:
        per_task[-1] = 2
    n_traj = n_models * sum(per_task)
    with warehouse.writer(ws) as con:
        con.execute(
            "CREATE TEMP TABLE m AS SELECT unnest(?) AS model, unnest(?) AS skill, "
            "generate_subscripts(?, 1) - 1 AS mi",
            [models, skill, models],
        )
        con.execute(
            "CREATE TEMP TABLE t AS SELECT unnest(?) AS task, unnest(?) AS quota, unnest(?) AS ntr, "
            "generate_subscripts(?, 1) - 1 AS ti",
            [tasks, quotas, per_task, tasks],
        )
        # one row per trajectory (model, task, trial), numbered in model-major order
        con.execute(
            """CREATE TEMP TABLE traj AS
            SELECT row_number() OVER (ORDER BY mi, ti, trial) AS traj, mi, ti, trial
            FROM m CROSS JOIN t CROSS JOIN LATERAL (SELECT range AS trial FROM range(t.ntr))"""
        )
        con.execute(
            """
            INSERT INTO steps (source, id, version, instance, depth, value, model, task, num_agents,
                               sweep_id, error_occurred, simulated, prompt_tokens, completion_tokens,
                               total_tokens, created_at, version_description, meta, sync_id)
            WITH r AS (SELECT traj.*, s.range AS step, (traj.traj - 1) * ? + s.range AS i
                       FROM traj CROSS JOIN range(?) s),
            j AS (SELECT r.*, (hash(traj * 7919) % 1000) / 1000.0 AS u,
                         (hash(i) % 1000) / 1000.0 AS e FROM r)
            SELECT 'layout', i + 1, traj, 0, step,
                   t.quota * (0.2 + 1.3 * m.skill * j.u) * (step + 1) / ? * (0.85 + 0.3 * j.e),
                   m.model, t.task, 1, 'layout-sweep', j.e < 0.02, true,
                   1200 + (hash(i) % 3000) + 400 * mi, 100 + (hash(i + 7) % 500), 0,
                   TIMESTAMP '2026-01-01' + INTERVAL (mi * 86400 + traj * 300 + step * 20) SECOND,
                   'model:' || m.model || '\ntype:' || t.task || '\nnum_agents:1',
                   '{"simulated": true}', 1
            FROM j JOIN m USING (mi) JOIN t USING (ti)""",
            [steps, steps, steps],
        )
        con.execute("UPDATE steps SET total_tokens = prompt_tokens + completion_tokens")
        con.execute("""
            INSERT INTO trajectories
            SELECT source, version, instance, any_value(model), any_value(task), 1,
                   any_value(sweep_id), count(*), max(depth), max(value), arg_max(value, depth),
                   sum(prompt_tokens), sum(completion_tokens), sum(total_tokens),
                   count_if(error_occurred), NULL, true, min(created_at), max(created_at), NULL, 1
            FROM steps GROUP BY source, version, instance""")
        n_steps = n_traj * steps
        con.execute(
            "INSERT INTO sync_runs (sync_id, source, started_at, finished_at, status, rows_added, watermark_before, watermark_after, full_rebuild, error) VALUES (1, 'layout', now(), now(), 'ok', ?, 0, ?, false, NULL)",
            [n_steps, n_steps],
        )
        con.execute(
            "INSERT INTO source_state (source, kind, display_url, watermark, last_sync_id) "
            "VALUES ('layout', 'sqlite', 'sqlite:///layout.db', ?, 1)",
            [n_steps],
        )
        if inspect:
            _inspect_facts(con)
    _sweep(ws, models, tasks)
    return ws


def _inspect_facts(con) -> None:
    """One ``inspect_samples`` row per trajectory (as an Inspect sync writes them): the
    task's quota, a dollar cost from its tokens, and an infrastructure failure (RCON lost)
    for about one trajectory in twelve."""
    con.execute(
        """INSERT INTO inspect_samples (source, path, sample_id, epoch, version, instance, task, model,
               quota, has_error, error, error_source, failure_kind, total_cost, total_time, log_status, sync_id)
        SELECT s.source, 'layout.eval', s.task || '_eval', 1, s.version, s.instance, s.task, s.model,
               any_value(t.quota), hash(s.version * 31) % 12 = 5,
               CASE WHEN hash(s.version * 31) % 12 = 5 THEN 'RCON connection lost' END,
               CASE WHEN hash(s.version * 31) % 12 = 5 THEN 'store' END,
               CASE WHEN hash(s.version * 31) % 12 = 5 THEN 'infrastructure' END,
               (sum(s.prompt_tokens) * 2.5 + sum(s.completion_tokens) * 10.0) / 1e6,
               60.0 + hash(s.version) % 240, 'success', 1
        FROM steps s JOIN t ON t.task = s.task GROUP BY s.source, s.version, s.instance, s.task, s.model"""
    )


def _sweep(ws: Workspace, models: list[str], tasks: list[str]) -> None:
    """A launched sweep (no runner: cells stay pending); with 1 model it is cancelled and
    with 6 paused, so the Sweeps and Monitor screenshots show those states too."""
    from fle_core import sweeps
    from fle_core.sweeps.config import SweepConfig

    cfg = SweepConfig(
        name="layout-sweep",
        models=models,
        tasks=tasks,
        num_trials_per_config=2,
        executor="simulate",
        confirm_large=True,
    )
    sweep_id = sweeps.launch(ws, cfg)
    if len(models) == 1:
        sweeps.cancel(ws, sweep_id)
    elif len(models) == 6:
        sweeps.pause(ws, sweep_id)
