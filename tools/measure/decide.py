"""The cascade's decision predictors (`score --predict --min-precision`; issue 28, h28k): the P that decides a
sample outside the judge's band.

An interval needs a predictor learned from the design's random sample alone (PPI++'s correction term is
unbiased only over a random sample; predict.py keeps that one for the intervals). A decision needs only a
good ranking and honest thresholds, so under a precision target every target's decisions come from a second
predictor:

- taught by every judgment the workspace holds for the target: the random sample, cross-fitted as ever, and
  every content judged outside it (the cascade's band rounds, active draws) added to each fold's training set
  (ppi.fit's `extra`). The band's verdicts are the uncertain ones, the most informative for a ranking
  (uncertainty sampling: Lewis & Gale, SIGIR 1994), which is why predict.cascade judges the band in rounds;
- its thresholds still come from the random sample alone (ppi.bounded_thresholds on its out-of-fold P: each
  random sample's P is from a fold model that never saw it), so their precision and recall bounds keep their
  meaning. The band was chosen by models that saw the whole random sample, a second-order dependence the
  benchmark checks: the targets were met in 10 of 10 draws (bench_cascade, h28k);
- off-goal (no subgoal scores above off_goal_max) is decided by P = Π_k (1 − P(score_k > off_goal_max)) from
  per-subgoal "relevance" predictors: every judged sample teaches K labels for it instead of one, and the
  product has the target's all-subgoals-low form.

On bench_cascade's keyword oracle at 10⁴ samples (4% judged at random, 10 draws; `--filter-only`) the off-goal
filter judged 16.5% of the samples in all (15.5–17.5%) with the interval's predictor and the band judged at
once, and 9.3% (7.5–10.3%) with these predictors and the band judged in rounds of 1%, at precision 0.99 and
recall 0.97; at 10⁵ (3 draws) 5.6% → 4.3% (evals/README.md, h28k).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from goalcover.tools.measure import predict_store
from goalcover.tools.measure.ppi import CHANCE_P, Predictor, fit

# Suffix of the label key (in predict.judge_labels) of a subgoal's relevance: its score above off_goal_max.
RELEVANT = ":relevant"


@dataclass
class DecisionScores:
    """One target's P for the cascade: `p_oof` (n,) out-of-fold P of its random judged samples (in the order
    predict passed them), `p_all` (m,) P of every distinct content (the feature table's order), `chance`
    True when it ranks no better than chance (then the cascade decides nothing for the target)."""

    p_oof: np.ndarray
    p_all: np.ndarray
    chance: bool


def taught(x_train, y: np.ndarray, x_extra, y_extra: np.ndarray, x_all, seed: int = 0,
           predict: Callable[[Predictor, object], np.ndarray] | None = None) -> DecisionScores:
    """One target's decision predictor: cross-fitted (ppi.fit) on the random judged samples `x_train` (n rows:
    an array or features.Features) with labels `y` (n,) bool, the other judged samples `x_extra` (labels
    `y_extra` (e,) bool; e may be 0) in every fold's training set; P for the m rows of `x_all`, by `predict`
    (model, rows) -> P (m,) where given (Ray Data: scale.ray_predict), else Predictor.predict."""
    model = fit(x_train, y, seed, extra=(x_extra, y_extra) if len(y_extra) else None)
    return DecisionScores(model.p_oof, predict(model, x_all) if predict else model.predict(x_all), model.chance)


def all_low(parts: list[DecisionScores], y: np.ndarray) -> DecisionScores:
    """Off-goal as every subgoal scoring low: P = Π_k (1 − P_k) over the subgoals' relevance predictors
    `parts` (each p_oof aligned with `y`, the off-goal labels (n,) bool of the random judged samples); chance
    when the product's out-of-fold P does not rank the off-goal samples above the rest (one-sided
    Mann–Whitney p > ppi.CHANCE_P, as ppi.fit tests) or a class is empty."""
    p_oof = np.prod([1 - p.p_oof for p in parts], axis=0)
    p_all = np.prod([1 - p.p_all for p in parts], axis=0)
    y = np.asarray(y, dtype=bool)
    chance = not y.any() or y.all()
    if not chance:
        chance = bool(stats.mannwhitneyu(p_oof[y], p_oof[~y], alternative="greater").pvalue > CHANCE_P)
    return DecisionScores(p_oof, p_all, chance)


def uncertainty(p: np.ndarray) -> np.ndarray:
    """sqrt(P(1 − P)) (m,), the binomial standard deviation: 0 where a predictor is sure, 0.5 at P = 0.5."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    return np.sqrt(p * (1 - p))


def round_size(population: int, share: float, smallest: int) -> float:
    """Contents the cascade sends to the judge per round: `share` of the `population` (0: unbounded, the band
    at once), at least `smallest`."""
    return math.inf if share <= 0 else max(smallest, int(population * share))


def decision_scores(table, subgoals: list[str], off_goal: str, by_id: dict[str, str], drawn: list[str], labels: dict,
                    seed: int, predict: Callable[[Predictor, object], np.ndarray]) -> dict[str, DecisionScores]:
    """target id -> its decision P: per subgoal id in `subgoals` a predictor taught by every judged content
    (`labels`: content hash -> key -> (label, score), predict.judge_labels), `off_goal` the product of the
    subgoals' relevance predictors (keys `id + RELEVANT`). `table` is the contents' features.FeatureTable
    (its `all` rows in predict's `distinct` order), `by_id` sample id -> content hash, `drawn` the random
    sample's ids; each p_oof follows `drawn` filtered to the ids with that target's label (predict's `train`)."""
    in_sample = {by_id[i] for i in drawn}

    def one(key: str) -> tuple[list[str], DecisionScores]:
        train = [i for i in drawn if key in labels.get(by_id[i], {})]
        extra = [h for h, got in labels.items() if key in got and h not in in_sample]
        return train, taught(table.rows([by_id[i] for i in train]), np.array([labels[by_id[i]][key][0] for i in train], dtype=bool),
                             table.rows(extra), np.array([labels[h][key][0] for h in extra], dtype=bool), table.all, seed,
                             predict)

    out = {g: one(g)[1] for g in subgoals}
    off_train = [i for i in drawn if off_goal in labels.get(by_id[i], {})]
    parts = []
    for g in subgoals:
        train, got = one(g + RELEVANT)
        at = {i: k for k, i in enumerate(train)}  # an off-goal label needs every subgoal judged
        parts.append(DecisionScores(got.p_oof[[at[i] for i in off_train]], got.p_all, got.chance))
    out[off_goal] = all_low(parts, np.array([labels[by_id[i]][off_goal][0] for i in off_train], dtype=bool))
    return out


def fingerprint(subgoals: list[str], off_goal: str, by_id: dict[str, str], drawn: list[str], labels: dict, seed: int,
                features: str) -> str:
    """What the decision predictors learned from, as a 16-hex key: the random sample's contents, every judged
    content's labels for the subgoals, their relevance and off-goal, the seed and the features (features_key),
    so a call with nothing newly judged reuses the stored decision P instead of refitting."""
    keys = [*subgoals, *(g + RELEVANT for g in subgoals), off_goal]
    digest = hashlib.sha256(f"decide-v1|{seed}|{features}|".encode())
    digest.update(",".join(sorted({by_id[i] for i in drawn})).encode())
    for h in sorted(labels):
        got = labels[h]
        digest.update((h + ":" + "".join("-" if k not in got else str(int(got[k][0])) for k in keys) + ";").encode())
    return digest.hexdigest()[:16]


def detail(scores: DecisionScores, key: str) -> dict:
    """The stored part of a target's decision predictor (beside predict_store's per-content p_decide)."""
    return {"trained": key, "p_oof": scores.p_oof.tolist(), "chance": scores.chance}


def stored(ws, target_hashes: dict[str, str], judge_key: tuple[str, str], key: str,
           distinct: list[str]) -> dict[str, DecisionScores] | None:
    """The decision P stored by a call that learned from the same judgments (`key`, fingerprint's) for every
    target (id -> target hash) and every content of `distinct`, or None (then they are fitted)."""
    out = {}
    for target, target_hash in target_hashes.items():
        found = predict_store.predictor(ws, target_hash, *judge_key)
        kept = (found[1] if found else {}).get("decide")
        if not kept or kept["trained"] != key:
            return None
        p = predict_store.decision_ps(ws, target_hash, *judge_key)
        if kept["chance"]:
            out[target] = DecisionScores(np.array(kept["p_oof"]), np.zeros(len(distinct)), True)
            continue
        if any(p.get(h) is None for h in distinct):
            return None
        out[target] = DecisionScores(np.array(kept["p_oof"]), np.array([p[h] for h in distinct]), False)
    return out
