"""Estimate first: score a stratified random sample (`--sample N`, `--budget USD`) and, with
`--target-width W`, keep drawing until every subgoal's interval is narrower than W points.

Every judgment goes through the same cache as a full run, so a later full `score` pays only for the rest.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import sample_scores
from goalcover.tools.core.errors import BadInput
from goalcover.tools.measure.estimate import Estimate, estimate
from goalcover.tools.core.goal import current_goal
from goalcover.tools.measure.strata import draw
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.core.lock import writes

# The first draw of a --target-width run without --sample.
DEFAULT_FIRST_DRAW = 100
# Grow a little past the 1/sqrt(n) projection so the next round usually is the last.
GROWTH_MARGIN = 1.15
# With `width_of` (the prediction-powered widths of --predict) a round grows the sample at most this much:
# the predictors improve as they learn, so the widths shrink faster than 1/sqrt(n) and the projection from
# an early, wide round overshoots. bench_cascade's random rounds at 10⁴ (30 runs from 100, keyword / category
# oracle): uncapped 1,451 / 814 mean calls, ×1.5 1,112 / 461 (coverage 96.1% / 95.6%), ×1.25 1,062 / 412
# (96.7% / 93.3%); the sample-only estimate needs 1,891.
PREDICTED_MAX_GROWTH = 1.5

Scorer = Callable[..., Awaitable[scoring.ScoreResult]]


def sample_for_budget(ws: Workspace, budget: float, mode: scoring.JudgeRef | scoring.Mode | None = None, price_factor: float = 1.0) -> int:
    """How many samples `budget` USD buys: the dry-run's estimated cost per sample still to score (times
    `price_factor`, the batch discount for `--via batch`). Raises BadInput when the judge has no price or
    the budget buys no sample."""
    plan, _, _ = scoring.plan(ws, mode, keep_tasks=False)
    if not plan.to_score:
        return plan.samples
    if plan.est_cost <= 0:
        raise BadInput("--budget needs the judge's prices: set GOALCOVER_INPUT_PRICE_PER_MTOK and "
                       "GOALCOVER_OUTPUT_PRICE_PER_MTOK (USD per million tokens)")
    # Samples still to score, in either mode: the pairs to score over the subgoals per sample.
    per_sample = plan.est_cost * price_factor / max(1, round(plan.to_score / plan.subgoals))
    n = math.floor(budget / per_sample)
    if n < 1:
        raise BadInput(f"--budget {budget:g}: one sample costs about ${per_sample:.4f}; raise the budget")
    return n


def current_estimate(ws: Workspace, design) -> Estimate:
    """The estimate from the design and the stored judgments (no model call)."""
    goal = current_goal(ws)
    assert goal is not None
    from goalcover.tools.measure.coverage import sample_weighted, supports

    drawn = ws.store.samples(design.drawn_ids())
    scores, judge = sample_scores(ws, drawn, explanations=False)
    settings = ws.settings
    weighted = sample_weighted(ws, drawn, judge)  # support as coverage decides it: weighted where recorded
    decided = {i: {g: supports(v, weighted.get(i, {}).get(g), settings) for g, (v, _) in per.items()} for i, per in scores.items()}
    return estimate(design, {i: {g: v for g, (v, _) in per.items()} for i, per in scores.items()},
                    [g.id for g in goal.subgoals], support=settings.support_threshold,
                    weak_share=settings.weak_share, weak_relative=settings.weak_relative, supports=decided)


@writes("score")
async def score_sampled(
    ws: Workspace,
    mode: scoring.JudgeRef | scoring.Mode | None = None,
    *,
    n: int | None = None,
    target_width: float | None = None,
    max_cost: float | None = None,
    scorer: Scorer | None = None,
    on_round: Callable[[int, Estimate], None] | None = None,
    width_of: Callable[[Estimate], float] | None = None,
    **score_kwargs,
) -> scoring.ScoreResult:
    """Score a stratified random sample of `n` samples (default DEFAULT_FIRST_DRAW) with the judge `mode`
    (a JudgeRef, or a mode resolved with the settings, default GOALCOVER_JUDGE_MODE) and estimate coverage;
    with `target_width` (points, 0-100) draw more — projected from the widest interval by 1/√n — until every
    subgoal's 95% interval is narrower, the whole dataset is drawn, or `max_cost` (USD, over all rounds)
    stops it. `scorer` is scoring.score (live) or the batch engine's; other keyword arguments go to it.
    `width_of(estimate)`, where given, measures the widest interval in points instead (`--predict`: the
    prediction-powered ones) and caps each round's growth at ×PREDICTED_MAX_GROWTH (next_size). Returns
    the summed ScoreResult with `estimate` set. Raises BadInput for n < 1 or target_width <= 0."""
    if target_width is not None and not 0 < target_width <= 100:
        raise BadInput(f"--target-width {target_width:g}: give interval points between 0 and 100")
    scorer = scorer or scoring.score
    judge = scoring.resolve_judge(ws, mode)  # once: every round judges alike
    size = n or DEFAULT_FIRST_DRAW
    total: scoring.ScoreResult | None = None
    while True:
        design = draw(ws, size)
        spent = total.cost if total else 0.0
        result = await scorer(ws, judge, samples=ws.store.samples(design.drawn_ids()),
                              max_cost=None if max_cost is None else max(0.0, max_cost - spent), **score_kwargs)
        total = result if total is None else _add(total, result)
        est = current_estimate(ws, design)
        if on_round:
            on_round(design.size, est)
        if target_width is None or design.size >= design.population or result.stopped:
            break
        widest = width_of(est) if width_of else est.widest()
        if widest < target_width:
            break
        size = next_size(design.size, design.population, widest, target_width, predicted=width_of is not None)
    total.estimate = scoring.SampledEstimate.model_validate(est.summary())
    from goalcover.tools.history.versions import record_snapshot

    record_snapshot(ws, None)  # the estimated coverage, with its intervals, in the history
    return total


def next_size(size: int, population: int, widest: float, target_width: float, predicted: bool = False) -> int:
    """The next round's sample size: projected from the widest interval (points, as `target_width`) by 1/√n
    × GROWTH_MARGIN, at least one more sample, at most the population; `predicted` (prediction-powered
    widths) caps the growth at ×PREDICTED_MAX_GROWTH a round."""
    grown = math.ceil(size * (widest / target_width) ** 2 * GROWTH_MARGIN)
    if predicted:
        grown = min(grown, math.ceil(size * PREDICTED_MAX_GROWTH))
    return min(population, max(size + 1, grown))


def _add(a: scoring.ScoreResult, b: scoring.ScoreResult) -> scoring.ScoreResult:
    """Two rounds as one result: counts and costs summed; judgments, failed and stopped from the last."""
    summed = {k: getattr(a, k) + getattr(b, k) for k in ("calls", "new", "prompt_tokens", "completion_tokens", "repaired")}
    return b.model_copy(update={**summed, "cost": round(a.cost + b.cost, 6), "cached": a.cached,
                                "elapsed_s": round(a.elapsed_s + b.elapsed_s, 3)})

