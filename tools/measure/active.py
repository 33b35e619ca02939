"""Active rounds of `score --predict --target-width W`: after the first, stratified random round, later
rounds draw what to judge by the predictor's uncertainty (active inference, Zrnic & Candès, "Active
Statistical Inference", ICML 2024) and the intervals reweight those draws so they stay valid.

The design, conditional on the first round (its judged samples are known exactly, and the predictors are
fitted on them alone, so they are fixed for every later round):
- the rest R (the N − n₁ samples the first round did not draw) is drawn by Poisson sampling: round k draws
  each i ∈ R independently with π_ik = ppi.active_probabilities(f, b_k) for that round's expected budget b_k,
  where f is the "effective" P whose f(1 − f) is the mean of f_t(1 − f_t) over the subgoals whose predictor
  is better than chance (a common draw serves every subgoal; the uniform share of the mix keeps π > 0).
  A sample's inclusion probability after K rounds is π_i = 1 − Π_k (1 − π_ik); each drawn sample's π_i is
  stored (meta `active_design`), with each round's budget and seed, so a rerun redraws the same samples and
  pays nothing (judgments are cached);
- a subgoal's share is θ = (Σ_{first round} y + |R|·θ̂_R) / N with θ̂_R ppi.active_share's reweighted
  estimate over R (Horvitz–Thompson, PPI++'s λ), variance (|R|/N)² Var(θ̂_R); Wilson's interval at the
  effective n, as elsewhere. A subgoal no better than chance gets λ = 0 (the reweighted sample alone).
Samples judged in active rounds are not a random sample: they never train the predictors, as cascade band
samples do not. The budget of each round comes from the previous round's widest interval, a sequential
stopping rule as the random `--target-width` rounds have.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from goalcover.tools.core.workspace import Workspace
from goalcover.tools.judge.judge_ref import JudgeRef
from goalcover.tools.measure.estimate import CONFIDENCE, wilson
from goalcover.tools.measure.ppi import Interval, active_probabilities, active_share, poisson_draw
from goalcover.tools.measure.sampled import DEFAULT_FIRST_DRAW, GROWTH_MARGIN, Scorer, _add, score_sampled

ACTIVE_KEY = "active_design"


class ActiveDesign(BaseModel):
    """The active rounds drawn after a first random round: the first round's design key, the judge and the
    predictors' training fingerprints they were drawn with (target hash -> trained), each round's expected
    budget and seed, and every drawn sample id's cumulative inclusion probability π (0-1]."""

    design: str = Field(description="predict._design_key of the first round's sample design")
    judge: list[str] = Field(description="[prompt version, model]")
    trained: dict[str, str] = Field(description="target hash -> the predictor's training fingerprint")
    budgets: list[float] = Field(default_factory=list, description="each round's expected draws over the rest")
    seeds: list[int] = Field(default_factory=list)
    pi: dict[str, float] = Field(default_factory=dict, description="drawn sample id -> inclusion probability")


def load(ws: Workspace, design_key: str, judge: JudgeRef) -> ActiveDesign | None:
    """The stored active design if it was drawn on the first round `design_key` with `judge`, else None."""
    saved = ws.store.get_meta(ACTIVE_KEY)
    if not saved:
        return None
    active = ActiveDesign.model_validate(saved)
    return active if active.design == design_key and active.judge == list(judge.key) else None


def effective_f(per_target: list[np.ndarray], size: int) -> np.ndarray:
    """The P (m,) whose f(1 − f) is the mean over `per_target` (arrays (m,) of P) of f_t(1 − f_t): the
    uncertainty a common draw is proportional to; 0.5 everywhere (a uniform draw) when the list is empty."""
    if not per_target:
        return np.full(size, 0.5)
    v = np.mean([np.clip(f, 0, 1) * (1 - np.clip(f, 0, 1)) for f in per_target], axis=0)
    return (1 - np.sqrt(np.clip(1 - 4 * v, 0, 1))) / 2


def cumulative_pi(f: np.ndarray, budgets: list[float]) -> np.ndarray:
    """Inclusion probabilities (m,) after independent Poisson rounds with expected draws `budgets` over the
    m samples of predicted P `f`: 1 − Π_k (1 − π_k)."""
    keep = np.ones(len(f))
    for b in budgets:
        keep *= 1 - active_probabilities(f, min(float(b), len(f)))
    return 1 - keep


def share(known_sum: float, first: int, f_rest: np.ndarray, pi: np.ndarray, drawn: np.ndarray, y: np.ndarray,
          lam: float | None = None, confidence: float = CONFIDENCE) -> Interval:
    """A share over N = `first` + len(f_rest) samples: `known_sum` the first round's positives (known
    exactly), the rest estimated by ppi.active_share from `f_rest` (|R|,), `pi` (|R|,) the inclusion
    probabilities, `drawn` (n,) positions in the rest and `y` (n,) their labels 0/1. `lam` fixes λ (0: the
    reweighted sample alone). `classical_width` is the width at λ = 0."""
    rest = len(f_rest)
    big_n = first + rest
    if rest == 0:
        theta = known_sum / max(1, big_n)
        return Interval(theta, theta, theta, 0.0, float(big_n), 0.0)
    lam = active_share(f_rest, pi, drawn, y, lam=lam).lam if len(drawn) else 0.0
    f = f_rest[drawn].astype(float)
    p = pi[drawn].astype(float)
    y = np.asarray(y, dtype=float)
    var_f = float(np.var(f_rest, ddof=1)) / rest if rest > 1 else 0.0

    def estimate(lam_: float) -> tuple[float, float]:
        resid = y - lam_ * f
        theta_r = (lam_ * float(f_rest.sum()) + float((resid / p).sum())) / rest
        var_r = float(((1 - p) / (p * p) * resid * resid).sum()) / rest**2 + lam_ * lam_ * var_f
        if not len(drawn) and lam_ == 0:
            var_r = 0.25  # nothing drawn: the rest's share is unknown
        return (known_sum + rest * theta_r) / big_n, (rest / big_n) ** 2 * var_r

    theta, var = estimate(lam)
    theta = min(1.0, max(0.0, theta))
    n_eff = theta * (1 - theta) / var if var > 0 and 0 < theta < 1 else float(first + len(drawn))
    low, high = wilson(theta, n_eff, confidence)
    z = stats.norm.ppf(0.5 + confidence / 2)
    return Interval(theta, low, high, lam, n_eff, 2 * z * math.sqrt(max(0.0, estimate(0.0)[1])))


def rest_ids(ws: Workspace, design) -> list[str]:
    """The sample ids the first round did not draw, sorted."""
    first = set(design.drawn_ids())
    return sorted(i for i in ws.store.sample_hashes() if i not in first)


def _draw_round(ws: Workspace, design, result, active: ActiveDesign, budget: float, seed: int) -> list[str]:
    """Add one Poisson round of `budget` expected draws over the rest to `active` (budgets, seeds, cumulative
    π of every drawn id) and return the ids drawn in all rounds so far."""
    from goalcover.tools.judge.judge_ref import current_judge
    from goalcover.tools.measure import predict_store
    from goalcover.tools.measure.predict import _target_hash

    from goalcover.tools.core.goal import current_goal

    judge = current_judge(ws)
    hashes = _target_hash(current_goal(ws))
    by_id = {i: h for i, (h, _) in ws.store.sample_hashes().items()}
    rest = rest_ids(ws, design)
    per_target = []
    for row in result.targets:
        if row.chance or row.id not in hashes or row.id == "off_goal":
            continue
        stored = predict_store.predictions(ws, hashes[row.id], *judge.key)
        per_target.append(np.array([stored.get(by_id[i], (0.5,))[0] for i in rest]))
    f = effective_f(per_target, len(rest))
    active.budgets.append(min(float(budget), len(rest)))
    active.seeds.append(seed)
    drawn: set[int] = set()
    for b, s in zip(active.budgets, active.seeds):
        drawn.update(poisson_draw(active_probabilities(f, b), np.random.default_rng(s)).tolist())
    pi = cumulative_pi(f, active.budgets)
    active.pi = {rest[j]: float(pi[j]) for j in sorted(drawn)}
    return list(active.pi)


async def score_active(ws: Workspace, mode: str = "batched", *, n: int | None = None, target_width: float,
                       max_cost: float | None = None, scorer: Scorer | None = None,
                       on_round: Callable[[int, object], None] | None = None, seed: int = 0, **score_kwargs):
    """`score --predict --target-width W`: a first stratified random round of `n` (default
    DEFAULT_FIRST_DRAW) through sampled.score_sampled, then predict and, while a subgoal's interval is wider
    than `target_width` points, Poisson rounds drawn by the predictors' uncertainty (module docstring) until
    every interval is narrower, the rest is exhausted or `max_cost` (USD, all rounds) stops it.
    `on_round(samples judged, PredictResult)` is called after each active round. Returns (the summed
    ScoreResult, the last PredictResult). Raises BadInput as score_sampled and predict do."""
    from goalcover.tools.judge.judge_ref import current_judge
    from goalcover.tools.judge import scoring
    from goalcover.tools.measure import predict_store
    from goalcover.tools.measure.predict import _design_key, _target_hash, predict

    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.measure.strata import current_design

    scorer = scorer or scoring.score
    first_n = n or DEFAULT_FIRST_DRAW
    total = await score_sampled(ws, mode, n=first_n, max_cost=max_cost, scorer=scorer, **score_kwargs)
    result = predict(ws)
    design = current_design(ws)
    judge = current_judge(ws)
    trained = {h: (predict_store.predictor(ws, h, *judge.key) or ("",))[0]
               for h in _target_hash(current_goal(ws)).values()}
    active = load(ws, _design_key(design), judge)
    if active is None or active.trained != trained:
        active = ActiveDesign(design=_design_key(design), judge=list(judge.key), trained=trained)
    rest = len(rest_ids(ws, design))
    while rest and not total.stopped and sum(active.budgets) < rest:
        widest = result.widest()
        if widest < target_width:
            break
        base = design.size if not active.budgets else sum(active.budgets)
        budget = max(1.0, math.ceil(base * (widest / target_width) ** 2 * GROWTH_MARGIN) - sum(active.budgets))
        saved_rounds = (list(active.budgets), list(active.seeds))
        drawn = _draw_round(ws, design, result, active, budget, seed * 1000 + len(active.budgets) + 1)
        got = await scorer(ws, mode, samples=ws.store.samples(drawn),
                           max_cost=None if max_cost is None else max(0.0, max_cost - total.cost), **score_kwargs)
        total = _add(total, got)
        if got.stopped or got.failed:  # not every drawn sample is judged: the interval keeps the rounds before
            active.budgets, active.seeds = saved_rounds
            break
        ws.store.set_meta(ACTIVE_KEY, active.model_dump())
        result = predict(ws)
        if on_round:
            on_round(design.size + len(drawn), result)
    return total, result


def apply_active(row, active: ActiveDesign, design, by_id: dict[str, str], rest: list[str], labels: dict,
                 p_by_hash: dict[str, float]) -> None:
    """Replace a predict.TargetPrediction `row`'s share and intervals by the active design's (share above):
    the first round's labels counted exactly (a sample without a label counts its P), the rest reweighted
    from the active draws; λ = 0 where the row's predictor is no better than chance."""
    def label(i: str) -> float | None:
        got = labels.get(by_id[i], {}).get(row.id)
        return None if got is None else float(got[0])

    first = [i for i in design.drawn_ids() if i in by_id]
    known_sum = sum(v if (v := label(i)) is not None else p_by_hash.get(by_id[i], 0.0) for i in first)
    position = {i: j for j, i in enumerate(rest)}
    f_rest = np.array([p_by_hash.get(by_id[i], 0.0) for i in rest], dtype=float)
    pi = np.ones(len(rest))
    drawn, y = [], []
    for i, p in active.pi.items():
        if i in position and (v := label(i)) is not None:
            pi[position[i]] = p
            drawn.append(position[i])
            y.append(v)
    drawn_arr = np.array(drawn, dtype=int)
    sample_only = share(known_sum, len(first), f_rest, pi, drawn_arr, np.array(y), lam=0.0)
    used = sample_only if row.chance else share(known_sum, len(first), f_rest, pi, drawn_arr, np.array(y))
    row.share, row.ci_low, row.ci_high = round(used.share, 4), round(used.low, 4), round(used.high, 4)
    row.sample_ci_low, row.sample_ci_high, row.lam = round(sample_only.low, 4), round(sample_only.high, 4), round(used.lam, 3)
    row.active_draws = len(drawn)
