"""FLE 0.4.3's own scorers and store model, copied verbatim (MIT licence) for the tests.

Source: github.com/JackHopkins/factorio-learning-environment at commit 6439e18b7870770454cf91eb36b3d1e6412724f4
(tag v0.4.3): ``TrajectoryData`` from ``fle/eval/inspect/integration/solver.py`` and
``comprehensive_factorio_scorer``, ``production_score`` and ``automated_production_score``
from ``fle/eval/inspect/integration/scorers.py``. Only the imports above the copied code
are ours: FLE's ``scorers.py`` imports ``TrajectoryData`` from ``solver.py``, which imports
the Factorio game client, so the module cannot be imported without FLE and a game server;
the scorers themselves need only inspect_ai and the store. sha256 of the copied code
below the imports: ff2c44cc84b469b36806857d3ea0cda322727ae7af5fa1c58617584d03adfbad.
"""

import logging
from typing import List

from inspect_ai.agent import AgentState
from inspect_ai.scorer import Score, Scorer, Target, accuracy, mean, scorer, stderr
from inspect_ai.util import StoreModel, store_as
from pydantic import Field

logger = logging.getLogger(__name__)


class TrajectoryData(StoreModel):
    """Store model for trajectory tracking data"""

    production_score: float = Field(default=0.0)
    automated_production_score: float = Field(
        default=0.0
    )  # Score excluding harvested/crafted
    total_steps: int = Field(default=0)
    current_score: float = Field(default=0.0)
    final_score: float = Field(default=0.0)
    final_automated_score: float = Field(default=0.0)  # Final automated score
    scores: List[float] = Field(default_factory=list)
    automated_scores: List[float] = Field(
        default_factory=list
    )  # Automated scores per step
    steps: List[dict] = Field(default_factory=list)  # Using dict for step data
    error: str = Field(default="")
    ticks: List[int] = Field(default_factory=list)  # Game ticks at each step

    # Achievement tracking - unique item types produced
    produced_item_types: List[str] = Field(
        default_factory=list
    )  # List of unique item type names produced during trajectory

    # Research tracking - technologies researched during trajectory
    researched_technologies: List[str] = Field(
        default_factory=list
    )  # List of technology names that have been researched

    # Latency tracking fields
    inference_latencies: List[float] = Field(
        default_factory=list
    )  # Time for model generation (seconds)
    env_execution_latencies: List[float] = Field(
        default_factory=list
    )  # Time for gym_env.step() (seconds)
    policy_execution_latencies: List[float] = Field(
        default_factory=list
    )  # Time for Python code execution (seconds)
    sleep_durations: List[float] = Field(
        default_factory=list
    )  # Accumulated sleep time per step (seconds)
    total_step_latencies: List[float] = Field(
        default_factory=list
    )  # Total wall-clock time per step (seconds)

    # Full program codes for static analysis
    program_codes: List[str] = Field(
        default_factory=list
    )  # Full program code for each step


@scorer(metrics=[accuracy(), mean()])
def comprehensive_factorio_scorer() -> Scorer:
    """Comprehensive scorer combining all metrics."""

    async def score(state: AgentState, target: Target) -> Score:
        try:
            trajectory_data = store_as(TrajectoryData)
            production_score = (
                trajectory_data.final_score or trajectory_data.production_score or 0.0
            )
            scores = trajectory_data.scores or []
            error = trajectory_data.error
            total_steps = trajectory_data.total_steps or 0

            # Get expected quota from metadata
            metadata = (
                getattr(state, "metadata", {}) if hasattr(state, "metadata") else {}
            )
            expected_score = metadata.get("expected_production_score", 100.0)

            # Calculate all metrics
            throughput_proportion = (
                min(production_score / expected_score, 1.0)
                if expected_score > 0
                else 0.0
            )
            quota_achieved = production_score >= expected_score and not error

            # Step change metrics
            last_step_change = scores[-1] - scores[-2] if len(scores) >= 2 else 0.0
            total_change = scores[-1] - scores[0] if len(scores) >= 2 else 0.0
            avg_step_change = (
                total_change / (len(scores) - 1) if len(scores) > 1 else 0.0
            )

            # Performance metrics
            score_per_step = production_score / total_steps if total_steps > 0 else 0.0
            max_single_gain = max(
                (scores[i] - scores[i - 1] for i in range(1, len(scores))), default=0.0
            )

            # Overall success metric for accuracy
            success = quota_achieved

            explanation_parts = [
                f"Score: {production_score:.2f}/{expected_score:.2f}",
                f"Proportion: {throughput_proportion:.3f}",
                f"Last change: {last_step_change:+.3f}",
                f"Total change: {total_change:+.3f}",
                f"Steps: {total_steps}",
                f"Success: {success}",
            ]

            if error:
                explanation_parts.append(f"Error: {error}")

            explanation = ", ".join(explanation_parts)

            return Score(
                value=str(
                    throughput_proportion
                ),  # Boolean for accuracy metric, proportion for mean
                answer=str(1) if success else str(throughput_proportion),
                explanation=explanation,
                metadata={
                    # Core metrics you requested
                    "throughput_proportion": throughput_proportion,
                    "production_score": production_score,
                    "last_step_change": last_step_change,
                    # Additional context
                    "expected_score": expected_score,
                    "quota_achieved": quota_achieved,
                    "total_change": total_change,
                    "average_step_change": avg_step_change,
                    "score_per_step": score_per_step,
                    "max_single_step_gain": max_single_gain,
                    "total_steps": total_steps,
                    "has_error": bool(error),
                    "error": error or "",
                    # Trajectory analysis
                    "scores_count": len(scores),
                    "final_10_scores": scores[-10:] if len(scores) > 10 else scores,
                    # Task context
                    "env_id": metadata.get("env_id", "unknown"),
                    "trajectory_length": metadata.get("trajectory_length", 64),
                },
            )

        except Exception as e:
            logger.error(f"Error in comprehensive scorer: {e}")
            return Score(
                value=False,
                answer="failure",
                explanation=f"Scorer error: {str(e)}",
                metadata={"scorer_error": str(e)},
            )

    return score


@scorer(metrics=[mean()])
def production_score() -> Scorer:
    """Scorer for unbounded/open-play tasks that tracks cumulative production score.

    Unlike throughput scorers, this scorer:
    - Has no quota or expected score - higher is always better
    - Tracks cumulative production value (economic worth of all items produced)
    - Designed for comparing agent performance on open-ended tasks
    """

    async def score(state: AgentState, target: Target) -> Score:
        try:
            trajectory_data = store_as(TrajectoryData)
            production_score = (
                trajectory_data.final_score or trajectory_data.production_score or 0.0
            )
            scores = trajectory_data.scores or []
            error = trajectory_data.error
            total_steps = trajectory_data.total_steps or 0

            # Calculate trajectory metrics
            score_per_step = production_score / total_steps if total_steps > 0 else 0.0

            # Calculate growth metrics
            if len(scores) >= 2:
                total_growth = scores[-1] - scores[0]
                avg_growth_per_step = total_growth / (len(scores) - 1)
                max_single_step_gain = max(
                    (scores[i] - scores[i - 1] for i in range(1, len(scores))),
                    default=0.0,
                )
                # Find when production really started (first non-zero score)
                first_production_step = next(
                    (i for i, s in enumerate(scores) if s > 0), len(scores)
                )
            else:
                total_growth = 0.0
                avg_growth_per_step = 0.0
                max_single_step_gain = 0.0
                first_production_step = 0

            explanation_parts = [
                f"Production score: {production_score:.2f}",
                f"Steps: {total_steps}",
                f"Score/step: {score_per_step:.3f}",
                f"Total growth: {total_growth:.2f}",
            ]

            if error:
                explanation_parts.append(f"Error: {error}")

            explanation = ", ".join(explanation_parts)

            return Score(
                value=production_score,  # Raw production score - higher is better
                answer=f"{production_score:.2f}",
                explanation=explanation,
                metadata={
                    # Core metrics
                    "production_score": production_score,
                    "total_steps": total_steps,
                    "score_per_step": score_per_step,
                    # Growth analysis
                    "total_growth": total_growth,
                    "average_growth_per_step": avg_growth_per_step,
                    "max_single_step_gain": max_single_step_gain,
                    "first_production_step": first_production_step,
                    # Trajectory data
                    "scores_count": len(scores),
                    "final_10_scores": scores[-10:] if len(scores) > 10 else scores,
                    "first_10_scores": scores[:10] if len(scores) > 10 else scores,
                    # Error tracking
                    "has_error": bool(error),
                    "error": error or "",
                    # Task context
                    "task_type": "unbounded_production",
                },
            )

        except Exception as e:
            logger.error(f"Error in unbounded production scorer: {e}")
            return Score(
                value=0.0,
                answer="0.00",
                explanation=f"Scorer error: {str(e)}",
                metadata={"scorer_error": str(e)},
            )

    return score


@scorer(metrics=[mean(), stderr()])
def automated_production_score() -> Scorer:
    """Scorer for tracking automated production score (excluding harvested/crafted items).

    This scorer tracks the production score that comes only from automated machines,
    excluding:
    - Raw resources harvested manually or by drills (harvested_value)
    - Net value added by manual crafting (crafted_net_value)

    This is useful for measuring true factory automation performance,
    as it rewards building automated production chains rather than
    manual gathering and crafting.

    Formula: automated_score = total_production_score - harvested_delta - crafted_delta
    """

    async def score(state: AgentState, target: Target) -> Score:
        try:
            trajectory_data = store_as(TrajectoryData)
            automated_score = (
                trajectory_data.final_automated_score
                or trajectory_data.automated_production_score
                or 0.0
            )
            automated_scores = trajectory_data.automated_scores or []
            total_production_score = (
                trajectory_data.final_score or trajectory_data.production_score or 0.0
            )
            error = trajectory_data.error
            total_steps = trajectory_data.total_steps or 0

            # Calculate trajectory metrics
            score_per_step = automated_score / total_steps if total_steps > 0 else 0.0

            # Calculate growth metrics for automated score
            if len(automated_scores) >= 2:
                total_growth = automated_scores[-1] - automated_scores[0]
                avg_growth_per_step = total_growth / (len(automated_scores) - 1)
                max_single_step_gain = max(
                    (
                        automated_scores[i] - automated_scores[i - 1]
                        for i in range(1, len(automated_scores))
                    ),
                    default=0.0,
                )
                # Find when automated production really started (first positive score)
                first_automated_step = next(
                    (i for i, s in enumerate(automated_scores) if s > 0),
                    len(automated_scores),
                )
            else:
                total_growth = 0.0
                avg_growth_per_step = 0.0
                max_single_step_gain = 0.0
                first_automated_step = 0

            # Calculate automation ratio (what % of production is automated)
            automation_ratio = (
                (automated_score / total_production_score * 100)
                if total_production_score > 0
                else 0.0
            )

            explanation_parts = [
                f"Automated score: {automated_score:.2f}",
                f"Total score: {total_production_score:.2f}",
                f"Automation: {automation_ratio:.1f}%",
                f"Steps: {total_steps}",
                f"Score/step: {score_per_step:.3f}",
            ]

            if error:
                explanation_parts.append(f"Error: {error}")

            explanation = ", ".join(explanation_parts)

            return Score(
                value=automated_score,  # Automated production score - higher is better
                answer=f"{automated_score:.2f}",
                explanation=explanation,
                metadata={
                    # Core metrics
                    "automated_production_score": automated_score,
                    "total_production_score": total_production_score,
                    "automation_ratio": automation_ratio,
                    "total_steps": total_steps,
                    "score_per_step": score_per_step,
                    # Growth analysis
                    "total_growth": total_growth,
                    "average_growth_per_step": avg_growth_per_step,
                    "max_single_step_gain": max_single_step_gain,
                    "first_automated_step": first_automated_step,
                    # Trajectory data
                    "automated_scores_count": len(automated_scores),
                    "final_10_automated_scores": automated_scores[-10:]
                    if len(automated_scores) > 10
                    else automated_scores,
                    "first_10_automated_scores": automated_scores[:10]
                    if len(automated_scores) > 10
                    else automated_scores,
                    # Error tracking
                    "has_error": bool(error),
                    "error": error or "",
                    # Task context
                    "task_type": "unbounded_production",
                },
            )

        except Exception as e:
            logger.error(f"Error in automated production scorer: {e}")
            return Score(
                value=0.0,
                answer="0.00",
                explanation=f"Scorer error: {str(e)}",
                metadata={"scorer_error": str(e)},
            )

    return score
