"""Active rounds of `score --predict --target-width W`: after the first, stratified random round, later
rounds draw what to judge by the predictors' uncertainty and the predictors LEARN from every round: sequential
active inference with model updating (Zrnic & Candès, "Active Statistical Inference", ICML 2024, section
"Sequential active inference"; the statistics are in sequential.py).

The design:
- the first round's judged samples are counted exactly; the rest R (the N − n₁ samples it did not draw) is
  estimated by rounds. Before round k, every target's predictor f_k is fitted (ppi.fit, cross-fitted
  logistic regression on the embeddings) on the labels of the first round and of rounds < k only, and
  predicts U_k, the samples of R no round has judged yet;
- round k draws each i ∈ U_k independently (Poisson sampling) with π_ik = ppi.active_probabilities(f, b_k),
  f the "effective" P whose f(1 − f) is the mean of f_t(1 − f_t) over the subgoals whose predictor is better
  than chance (a common draw serves every subgoal; the uniform share of the mix keeps π > 0). Its expected
  budget b_k comes from the previous estimate's widest interval, as the random `--target-width` rounds grow,
  but at most doubles the labels (sequential.round_budget), so the predictors are refitted as labels arrive;
- each round's reweighted estimate of R's positives is unbiased given the past; the rounds are averaged with
  weights b_k and the variance of that average is the martingale CLT's (sequential.sequential_share), so the
  interval stays valid although the predictors and the sampling rule change from round to round. A subgoal
  whose first-round predictor is no better than chance gets λ = 0 (the reweighted samples alone).
Each round is stored in meta `active_design` — its budget and seed, every drawn sample id's π_ik, and per
target f_k at the drawn samples and Σ f_k over U_k — so a rerun redraws nothing, refits nothing for the stored
rounds and pays nothing (judgments are cached). The predictors `score --predict` reports and stores (and the
cascade's thresholds) still learn from the random first round alone: active-round samples are not a random
sample, so they train only the rounds' own predictors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, Field

from goalcover.tools.core.workspace import Workspace
from goalcover.tools.judge.judge_ref import JudgeRef
from goalcover.tools.measure.ppi import active_probabilities, fit, poisson_draw
from goalcover.tools.measure.sampled import DEFAULT_FIRST_DRAW, GROWTH_MARGIN, Scorer, _add, score_sampled
from goalcover.tools.measure.sequential import RoundData, round_budget, sequential_share

ACTIVE_KEY = "active_design"


class ActiveRound(BaseModel):
    """One active round: its expected budget (draws over U_k) and seed, each drawn sample id's inclusion
    probability π (0-1], and per target hash the round's predictor f_k at the drawn ids and Σ f_k over U_k."""

    budget: float
    seed: int
    pi: dict[str, float] = Field(default_factory=dict, description="drawn sample id -> this round's π")
    f: dict[str, dict[str, float]] = Field(default_factory=dict, description="target hash -> drawn id -> f_k")
    f_sum: dict[str, float] = Field(default_factory=dict, description="target hash -> Σ f_k over U_k")


class ActiveDesign(BaseModel):
    """The active rounds drawn after a first random round: the first round's design key, the judge and the
    first round's predictor fingerprints they were drawn with (target hash -> trained), and the rounds."""

    design: str = Field(description="predict._design_key of the first round's sample design")
    judge: list[str] = Field(description="[prompt version, model]")
    trained: dict[str, str] = Field(description="target hash -> the first-round predictor's training fingerprint")
    rounds: list[ActiveRound] = Field(default_factory=list)

    def drawn(self) -> list[str]:
        """Every sample id drawn by a round, in draw order."""
        return [i for r in self.rounds for i in r.pi]


def load(ws: Workspace, design_key: str, judge: JudgeRef) -> ActiveDesign | None:
    """The stored active design if it was drawn on the first round `design_key` with `judge` (a design stored
    before the rounds learned, without `rounds`, is not reused), else None."""
    saved = ws.store.get_meta(ACTIVE_KEY)
    if not saved or "rounds" not in saved:
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


def rest_ids(ws: Workspace, design) -> list[str]:
    """The sample ids the first round did not draw, sorted."""
    first = set(design.drawn_ids())
    return sorted(i for i in ws.store.sample_hashes() if i not in first)


def fit_round(train: dict[str, tuple[np.ndarray, np.ndarray]], x_unknown: np.ndarray, subgoals: set[str],
              seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Round k's predictors: per target key, ppi.fit on its `train[key]` = (features (n, d): an array or
    features.Features, labels (n,) bool) (the labels of the first round and rounds < k), predicting
    `x_unknown` (m, d). Returns ({key: f_k (m,)},
    the effective P (m,) over the keys in `subgoals` whose predictor beats chance)."""
    f_by, better = {}, []
    for key, (x, y) in train.items():
        model = fit(x, y, seed) if len(y) else fit(np.zeros((1, x_unknown.shape[1])), np.zeros(1, bool), seed)
        f_by[key] = np.clip(model.predict(x_unknown), 0.0, 1.0)
        if key in subgoals and not model.chance:
            better.append(f_by[key])
    return f_by, effective_f(better, len(x_unknown))


def draw_round(f_by: dict[str, np.ndarray], f_eff: np.ndarray, unknown: list[str], budget: float,
               seed: int) -> ActiveRound:
    """A Poisson round of `budget` expected draws over the `unknown` ids (U_k) by `f_eff`'s uncertainty,
    recording π, f_k at the drawn ids and Σ f_k over U_k for every key of `f_by` (arrays over `unknown`)."""
    pi = active_probabilities(f_eff, min(float(budget), len(unknown)))
    drawn = poisson_draw(pi, np.random.default_rng(seed))
    return ActiveRound(budget=min(float(budget), len(unknown)), seed=seed,
                       pi={unknown[j]: float(pi[j]) for j in drawn},
                       f={k: {unknown[j]: float(f[j]) for j in drawn} for k, f in f_by.items()},
                       f_sum={k: float(f.sum()) for k, f in f_by.items()})


def _next_round(ws: Workspace, design, active: ActiveDesign, budget: float, seed: int,
                cache: dict) -> ActiveRound | None:
    """Fit round k's predictors on the labels judged so far (first round and earlier rounds) and draw it over
    the rest's unjudged samples; None when none is left. `cache` keeps the features (vectors read from the
    index, words from the store) between rounds."""
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.judge.judge_ref import current_judge
    from goalcover.tools.measure.features import feature_table
    from goalcover.tools.measure.predict import OFF_GOAL, _target_hash, judge_labels

    goal, judge = current_goal(ws), current_judge(ws)
    hashes = _target_hash(goal)
    by_id = {i: h for i, (h, _) in ws.store.sample_hashes().items()}
    known = set(active.drawn())
    unknown = [i for i in rest_ids(ws, design) if i not in known]
    if not unknown:
        return None
    train_ids = [i for i in design.drawn_ids() if i in by_id] + [i for i in active.drawn() if i in by_id]
    labels = judge_labels(ws, goal, judge, [by_id[i] for i in train_ids])
    if "features" not in cache:
        cache["features"] = feature_table(ws, by_id)
    table = cache["features"]
    subgoals = {hashes[t] for t in hashes if t != OFF_GOAL}
    x_unknown = table.rows([by_id[i] for i in unknown])
    train = {}
    for target, target_hash in hashes.items():  # per target: its own judged samples train it
        ids = [i for i in train_ids if target in labels.get(by_id[i], {})]
        train[target_hash] = (table.rows([by_id[i] for i in ids]), np.array([labels[by_id[i]][target][0] for i in ids], dtype=bool))
    f_by, f_eff = fit_round(train, x_unknown, subgoals)
    return draw_round(f_by, f_eff, unknown, budget, seed)


async def score_active(ws: Workspace, mode: str = "batched", *, n: int | None = None, target_width: float,
                       max_cost: float | None = None, scorer: Scorer | None = None,
                       on_round: Callable[[int, object], None] | None = None, seed: int = 0, **score_kwargs):
    """`score --predict --target-width W`: a first stratified random round of `n` (default
    DEFAULT_FIRST_DRAW) through sampled.score_sampled, then predict and, while a subgoal's interval is wider
    than `target_width` points, rounds whose predictors are refitted on every label so far and whose draws
    follow their uncertainty (module docstring), until every interval is narrower, the rest is exhausted or
    `max_cost` (USD, all rounds) stops it. Stored rounds are replayed first (their judgments are cached).
    `on_round(samples judged, PredictResult)` is called after each active round. Returns (the summed
    ScoreResult, the last PredictResult). Raises BadInput as score_sampled and predict do."""
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.judge import scoring
    from goalcover.tools.judge.judge_ref import current_judge
    from goalcover.tools.measure import predict_store
    from goalcover.tools.measure.predict import _design_key, _target_hash, predict
    from goalcover.tools.measure.strata import current_design

    scorer = scorer or scoring.score
    total = await score_sampled(ws, mode, n=n or DEFAULT_FIRST_DRAW, max_cost=max_cost, scorer=scorer, **score_kwargs)
    result = predict(ws)
    design = current_design(ws)
    judge = current_judge(ws)
    trained = {h: (predict_store.predictor(ws, h, *judge.key) or ("",))[0]
               for h in _target_hash(current_goal(ws)).values()}
    active = load(ws, _design_key(design), judge)
    if active is None or active.trained != trained:
        active = ActiveDesign(design=_design_key(design), judge=list(judge.key), trained=trained)

    def left() -> float | None:
        return None if max_cost is None else max(0.0, max_cost - total.cost)

    if active.rounds and not total.stopped:  # a rerun: the stored rounds' samples (cached, free)
        got = await scorer(ws, mode, samples=ws.store.samples(active.drawn()), max_cost=left(), **score_kwargs)
        total = _add(total, got)
        result = predict(ws)
        if got.stopped or got.failed:
            return total, result
    rest = len(rest_ids(ws, design))
    cache: dict = {}
    while not total.stopped and result.widest() >= target_width:
        judged = design.size + len(active.drawn())
        budget = round_budget(judged, result.widest(), target_width, GROWTH_MARGIN, rest - len(active.drawn()))
        round_ = _next_round(ws, design, active, budget, seed * 1000 + len(active.rounds) + 1, cache)
        if round_ is None:
            break
        if round_.pi:
            got = await scorer(ws, mode, samples=ws.store.samples(list(round_.pi)), max_cost=left(), **score_kwargs)
            total = _add(total, got)
            if got.stopped or got.failed:  # not every drawn sample is judged: the interval keeps the rounds before
                break
        active.rounds.append(round_)
        ws.store.set_meta(ACTIVE_KEY, active.model_dump())
        result = predict(ws)
        if on_round:
            on_round(judged + len(round_.pi), result)
    return total, result


def apply_active(row, target_hash: str, active: ActiveDesign, design, by_id: dict[str, str], rest: list[str],
                 labels: dict, p_by_hash: dict[str, float]) -> None:
    """Replace a predict.TargetPrediction `row`'s share and intervals by the active design's
    (sequential.sequential_share): the first round's labels counted exactly (a sample without a label counts
    its P), the rest from the stored rounds up to the first one with a drawn sample not judged for this
    target; λ = 0 where the row's predictor is no better than chance."""
    def label(i: str) -> float | None:
        got = labels.get(by_id.get(i, ""), {}).get(row.id)
        return None if got is None else float(got[0])

    first = [i for i in design.drawn_ids() if i in by_id]
    known_sum = sum(v if (v := label(i)) is not None else p_by_hash.get(by_id[i], 0.0) for i in first)
    rounds: list[RoundData] = []
    known = 0.0
    for r in active.rounds:
        ids = list(r.pi)
        ys = [label(i) for i in ids]
        if target_hash not in r.f_sum or any(v is None for v in ys):
            break
        rounds.append(RoundData(known, r.f_sum[target_hash], np.array([r.f[target_hash][i] for i in ids]),
                                np.array([r.pi[i] for i in ids]), np.array(ys, dtype=float), r.budget))
        known += float(sum(ys))
    sample_only = sequential_share(known_sum, len(first), len(rest), rounds, lam=0.0)
    used = sample_only if row.chance else sequential_share(known_sum, len(first), len(rest), rounds)
    row.share, row.ci_low, row.ci_high = round(used.share, 4), round(used.low, 4), round(used.high, 4)
    row.sample_ci_low, row.sample_ci_high, row.lam = round(sample_only.low, 4), round(sample_only.high, 4), round(used.lam, 3)
    row.active_draws = sum(len(r.y) for r in rounds)
