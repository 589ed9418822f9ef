"""A small FLE-shaped Inspect task, run by real inspect_ai in the tests and the benchmark.

It writes logs shaped like ``fle inspect-eval`` (FLE 0.4.3): one sample per task with id
``{env_id}_eval`` and metadata ``env_id``, ``trajectory_length``,
``expected_production_score``; a ``TrajectoryData`` store model (so the store keys are
``TrajectoryData:scores`` / ``:ticks`` / ``:steps`` / ``:error`` ...); and a scorer with
the shape of FLE's ``comprehensive_factorio_scorer`` (the value is the *string* of
``min(production / quota, 1)``, ``quota_achieved`` = production >= quota and no error).
Open play (``quota=None``) scores like FLE's ``production_score`` scorers, with no quota.

No Factorio: each "step" asks the eval's ``mockllm/...`` model for a program (so Inspect
records real ``model_usage``) and draws a production score from a seeded RNG keyed on
(model, env_id, epoch), so a model's results are reproducible. The outputs carry their
own ``usage``; without it mockllm would download a tokenizer.

Run it like FLE's tasks::

    inspect eval tests/fle_inspect_task.py@throughput -T env_id=iron_plate_throughput \\
        --model mockllm/gpt-4o --epochs 2 --log-dir DIR

Task arguments (``-T``): ``env_id``, ``quota`` (``none`` = open play), ``steps``,
``per_step`` (write the per-step store), ``swallow_error_at`` + ``error_text`` (FLE's
solver catching an exception into ``TrajectoryData:error``), ``raise_at`` (an exception
that escapes the solver: an Inspect sample error), ``step_delay`` (seconds per step),
``model_calls`` (``each`` step or ``once`` per sample), ``samples`` (default 1, as FLE),
``token_limit``, ``fail_marker`` (while that file exists, epoch 2 fails: an eval-set retry),
``retry_marker`` (each sample's first attempt fails, for ``retry_on_error``), ``fallback_at``
(that step's output is served by ``mockllm/backup``: a model fallback), ``scorers``
(``fle``: FLE 0.4.3's own scorers, ``tests/fle_0_4_3_scorers.py``), ``scorer_crash_epoch``
(that epoch's quota is a string, so FLE's scorer raises into ``scorer_error``) and
``solver_name`` (``factorio_text_only_solver``: the registry name of an FLE solver variant).
"""

from __future__ import annotations

import asyncio
import random
import zlib
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelFallback, ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import Score, Target, accuracy, mean, scorer
from inspect_ai.solver import Generate, TaskState, solver
from inspect_ai.util import StoreModel, store_as
from pydantic import Field


class TrajectoryData(StoreModel):
    """The field names of FLE's ``TrajectoryData`` (fle/eval/inspect/integration/solver.py)."""

    production_score: float = Field(default=0.0)
    automated_production_score: float = Field(default=0.0)
    total_steps: int = Field(default=0)
    current_score: float = Field(default=0.0)
    final_score: float = Field(default=0.0)
    scores: list[float] = Field(default_factory=list)
    steps: list[dict] = Field(default_factory=list)
    error: str = Field(default="")
    ticks: list[int] = Field(default_factory=list)
    program_codes: list[str] = Field(default_factory=list)
    produced_item_types: list[str] = Field(default_factory=list)


SKILLS = {"alpha": 0.5, "beta": 0.9, "gamma": 1.15}
ITEMS = ["iron-ore", "coal", "iron-plate", "stone", "copper-plate", "iron-gear-wheel"]


def skill(model: str) -> float:
    """A model's deterministic skill: the final score is about skill × quota (±20%)."""
    name = model.rsplit("/", 1)[-1]
    return SKILLS.get(name, 0.2 + (zlib.crc32(model.encode()) % 1100) / 1000.0)


def _usage(step: int) -> ModelUsage:
    return ModelUsage(
        input_tokens=100 + step,
        output_tokens=20,
        total_tokens=130 + step,
        input_tokens_cache_read=10,
        reasoning_tokens=5,
        total_cost=0.001,
    )


def _outputs(model_name: str, fallback_at: int | None = None):
    step = {"n": 0}

    def output(_input, _tools, _tool_choice, _config) -> ModelOutput:
        step["n"] += 1
        out = ModelOutput.from_content(model=model_name, content=f"print('step {step['n']}')")
        out.usage = _usage(step["n"])
        if fallback_at is not None and step["n"] == fallback_at:  # served by another model
            out.fallback = ModelFallback(model=model_name, fallback_model="mockllm/backup")
        return out

    return output


@solver
def fle_like_solver(
    steps: int,
    quota: float | None,
    per_step: bool,
    swallow_error_at: int | None,
    error_text: str,
    raise_at: int | None,
    step_delay: float,
    model_calls: str,
    fail_marker: str | None = None,
    fallback_at: int | None = None,
    retry_marker: str | None = None,
    scorer_crash_epoch: int | None = None,
):
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        eval_model = str(get_model())
        mock = get_model(eval_model, custom_outputs=_outputs(eval_model, fallback_at), memoize=False)
        if retry_marker:  # the first attempt of each (sample, epoch) fails; Inspect retries it
            marker = Path(f"{retry_marker}.{state.sample_id}.{state.epoch}")
            if not marker.exists():
                marker.touch()
                raise RuntimeError("transient failure: the first attempt of this sample fails")
        if scorer_crash_epoch is not None and state.epoch == scorer_crash_epoch:
            # a quota FLE's scorer cannot divide by: its comprehensive_factorio_scorer raises
            # inside its try and returns value=False with only metadata.scorer_error
            state.metadata["expected_production_score"] = str(state.metadata["expected_production_score"])
        env_id = state.metadata["env_id"]
        rng = random.Random(zlib.crc32(f"{eval_model}|{env_id}|{state.epoch}".encode()))
        target = (quota or 100.0) * skill(eval_model)
        data = store_as(TrajectoryData)
        scores: list[float] = []
        ticks: list[int] = []
        results: list[dict] = []
        if fail_marker and Path(fail_marker).exists() and state.epoch == 2:
            await asyncio.sleep(0.5)  # let epoch 1 finish first, so the failed log holds it
            raise RuntimeError("first attempt of epoch 2 fails")
        try:
            for i in range(steps):
                if model_calls == "each" or i == 0:
                    reply = await mock.generate(f"Step {i + 1}: write a program")
                    code = reply.completion
                if raise_at is not None and i + 1 == raise_at:
                    raise RuntimeError(f"sandbox exploded at step {i + 1}")
                if swallow_error_at is not None and i + 1 == swallow_error_at:
                    raise ConnectionError(error_text)
                frac = (i + 1) / steps
                score = round(max(0.0, target * frac * (0.8 + 0.4 * rng.random())), 3)
                scores.append(score)
                ticks.append(60 * (i + 1) * 60)
                results.append({"step": i + 1, "production_score": score, "program_content": code})
                if per_step:
                    data.production_score = score
                    data.current_score = score
                    data.total_steps = i + 1
                    data.scores = list(scores)
                    data.ticks = list(ticks)
                    data.steps = list(results)
                    data.program_codes = [r["program_content"] for r in results]
                if step_delay:
                    await asyncio.sleep(step_delay)
            final = scores[-1] if scores else 0.0
            if quota is None:  # open play: FLE's unbounded solver records the item types it saw
                data.produced_item_types = ITEMS[: 2 + (len(results) + state.epoch) % 4]
            data.production_score = final
            data.final_score = final
            data.total_steps = len(results)
            if per_step:
                data.scores = scores
                data.ticks = ticks
                data.steps = results
        except ConnectionError as exc:  # FLE's solver swallows its own exceptions
            data.error = f"Controlled solver error: {exc}\nTraceback (most recent call last): ..."
            data.production_score = 0.0
            data.final_score = 0.0
        state.output = ModelOutput.from_content(model=eval_model, content=f"{len(results)} steps")
        return state

    return solve


@solver
def factorio_text_only_solver(**kwargs):
    """The same solver under the registry name of one of FLE's variants (``text_only``)."""
    return fle_like_solver(**kwargs)


@scorer(metrics=[accuracy(), mean()])
def comprehensive_factorio_scorer():
    """FLE's throughput scorer's output shape."""

    async def score(state: TaskState, target: Target) -> Score:
        data = store_as(TrajectoryData)
        production = data.final_score or data.production_score or 0.0
        expected = state.metadata.get("expected_production_score", 100.0)
        proportion = min(production / expected, 1.0) if expected > 0 else 0.0
        achieved = production >= expected and not data.error
        return Score(
            value=str(proportion),
            answer="1" if achieved else str(proportion),
            explanation=f"Score: {production:.2f}/{expected:.2f}",
            metadata={
                "throughput_proportion": proportion,
                "production_score": production,
                "expected_score": expected,
                "quota_achieved": achieved,
                "total_steps": data.total_steps,
                "has_error": bool(data.error),
                "error": data.error or "",
                "final_10_scores": (data.scores or [])[-10:],
                "env_id": state.metadata.get("env_id", "unknown"),
            },
        )

    return score


@scorer(metrics=[mean()])
def production_score():
    """FLE's open-play ``production_score`` scorer's output shape (no quota)."""

    async def score(state: TaskState, target: Target) -> Score:
        data = store_as(TrajectoryData)
        production = data.final_score or data.production_score or 0.0
        return Score(
            value=production,
            answer=f"{production:.2f}",
            metadata={"production_score": production, "total_steps": data.total_steps},
        )

    return score


@scorer(metrics=[mean()])
def automated_production_score():
    async def score(state: TaskState, target: Target) -> Score:
        data = store_as(TrajectoryData)
        return Score(value=round((data.final_score or 0.0) * 0.5, 3))

    return score


@scorer(metrics=[mean()])
def achievements():
    """FLE's ``achievements`` scorer: the number of unique item types produced."""

    async def score(state: TaskState, target: Target) -> Score:
        items = sorted(set(store_as(TrajectoryData).produced_item_types))
        return Score(value=len(items), answer=str(len(items)), metadata={"produced_item_types": items})

    return score


@task
def throughput(
    env_id: str = "iron_ore_throughput",
    quota: str = "16",
    steps: int = 8,
    per_step: bool = True,
    swallow_error_at: int | None = None,
    error_text: str = "Could not connect to 127.0.0.1 at tcp/27000: RCON connection refused",
    raise_at: int | None = None,
    step_delay: float = 0.0,
    model_calls: str = "each",
    samples: int = 1,
    token_limit: int | None = None,
    fail_marker: str | None = None,
    fallback_at: int | None = None,
    retry_marker: str | None = None,
    scorer_crash_epoch: int | None = None,
    scorers: str = "mimic",
    solver_name: str = "fle_like_solver",
) -> Task:
    q = None if str(quota).lower() in ("none", "") else float(quota)
    meta = {"env_id": env_id, "trajectory_length": steps}
    if q is not None:
        meta["expected_production_score"] = q
    else:
        meta["task_type"] = "unbounded_production"
    ids = [f"{env_id}_eval"] + [f"{env_id}_eval_{i}" for i in range(1, samples)]
    solver_fn = {"fle_like_solver": fle_like_solver, "factorio_text_only_solver": factorio_text_only_solver}
    plan = solver_fn[solver_name](
        steps=steps,
        quota=q,
        per_step=per_step,
        swallow_error_at=swallow_error_at,
        error_text=error_text,
        raise_at=raise_at,
        step_delay=step_delay,
        model_calls=model_calls,
        fail_marker=fail_marker,
        fallback_at=fallback_at,
        retry_marker=retry_marker,
        scorer_crash_epoch=scorer_crash_epoch,
    )
    if scorers == "fle":  # FLE 0.4.3's own scorers (tests/fle_0_4_3_scorers.py)
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import fle_0_4_3_scorers as fle

        scored = (
            fle.comprehensive_factorio_scorer()
            if q is not None
            else [fle.production_score(), fle.automated_production_score(), achievements()]
        )
    else:
        scored = (
            comprehensive_factorio_scorer()
            if q is not None
            else [production_score(), automated_production_score(), achievements()]
        )
    return Task(
        dataset=[Sample(id=sid, input=f"Begin task: {env_id}", target=str(q), metadata=meta) for sid in ids],
        solver=plan,
        scorer=scored,
        name=env_id,
        token_limit=token_limit,
    )
