"""How far to trust the judge: agreement with the user's own checks, length bias, order effects, failures.

Every figure here is read from the store (no model call): the user's labels (`goalcover calibrate`), the
judgments and the samples' lengths, and the result of the last order check (`goalcover score
--order-check N`, tools/judge/order_check.py). `judge_quality` gathers them for the coverage report, which shows
them under "judge" and flags what looks wrong.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from goalcover.tools.core.workspace import Workspace

if TYPE_CHECKING:
    from goalcover.tools.judge.judge_ref import JudgeRef

ORDER_CHECK_KEY = "judge_order_check"
BOOTSTRAP_ROUNDS = 1000


class Agreement(BaseModel):
    """The judge against the user's labels on one subgoal (or "overall"): shares of exact and within-1
    matches (0-1), quadratic-weighted Cohen's kappa with a 95% bootstrap interval (None where undefined,
    e.g. every label and score the same), and whether it is poor enough to flag."""

    labels: int
    exact: float
    within_1: float
    kappa: float | None
    kappa_ci_low: float | None = None
    kappa_ci_high: float | None = None
    poor: bool = False


class OrderCheck(BaseModel):
    """Batched mode's order effect: `samples` re-scored with their subgoals shuffled, `verdicts` compared,
    `changed` of them differ; `consistency` = 1 - changed / verdicts."""

    prompt_version: str
    model: str
    samples: int
    verdicts: int
    changed: int
    consistency: float


class JudgeQuality(BaseModel):
    """Judge-quality figures, where measured: agreement per subgoal id and "overall"; Spearman's rho of
    score vs sample length per subgoal (with the samples it rests on); the order check; failed / asked
    pairs per subgoal; and one plain sentence per problem found (`flags`)."""

    agreement: dict[str, Agreement] = {}
    length_bias: dict[str, float] = Field({}, description="subgoal id -> Spearman's rho of score vs length")
    length_bias_samples: dict[str, int] = {}
    order_consistency: float | None = None
    order_check: OrderCheck | None = None
    failure_rate: dict[str, float] = {}
    jury: "JuryAgreement | None" = Field(None, description="a jury's inter-judge agreement and its widest disagreements")
    flags: list[str] = []

    def to_json(self) -> dict:
        """The report's "judge" figures: only the keys that were measured."""
        data = self.model_dump(exclude_none=True)
        return {k: v for k, v in data.items() if v not in ({}, [])}


def agreement(user: list[int], judge: list[int], seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS) -> Agreement:
    """Agreement of paired 1-5 scores: exact and within-1 shares, quadratic-weighted Cohen's kappa (Cohen
    1968; sklearn.metrics.cohen_kappa_score, weights="quadratic", labels 1-5) and its 95% percentile
    bootstrap interval over `rounds` resamples of the pairs (numpy, seeded). Raises ValueError on unequal
    or empty lists."""
    from sklearn.metrics import cohen_kappa_score

    if len(user) != len(judge) or not user:
        raise ValueError("agreement needs equally many user and judge scores, at least one")
    u, j = np.asarray(user), np.asarray(judge)

    def kappa(a: np.ndarray, b: np.ndarray) -> float:
        # Undefined (nothing varies) comes back as nan, which the callers turn into None; no warning needed.
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            value = cohen_kappa_score(a, b, weights="quadratic", labels=[1, 2, 3, 4, 5])
        return float(value)

    k = kappa(u, j)
    low = high = None
    if len(u) > 1 and not math.isnan(k):
        rng = np.random.default_rng(seed)
        draws = [kappa(u[idx], j[idx]) for idx in rng.integers(0, len(u), size=(rounds, len(u)))]
        draws = [d for d in draws if not math.isnan(d)]
        if draws:
            low, high = (round(float(x), 3) for x in np.percentile(draws, [2.5, 97.5]))
    return Agreement(
        labels=len(u),
        exact=round(float(np.mean(u == j)), 3),
        within_1=round(float(np.mean(np.abs(u - j) <= 1)), 3),
        kappa=None if math.isnan(k) else round(k, 3),
        kappa_ci_low=low,
        kappa_ci_high=high,
    )


def label_agreement(ws: Workspace, goal, judge: JudgeRef | None) -> dict[str, Agreement]:
    """Agreement per subgoal id and "overall" between the user's labels of the current subgoals and
    `judge`'s scores of those pairs (the score the user was shown where the current judge has none),
    leaving out the samples that are the subgoal's anchors.
    A subgoal is `poor` at kappa < GOALCOVER_AGREEMENT_POOR_KAPPA on at least GOALCOVER_AGREEMENT_MIN_LABELS
    labels. {} without labels."""
    by_hash = {g.hash: g.id for g in goal.subgoals}
    # A sample the judge was shown as an anchor of its subgoal would flatter it: left out.
    anchored = {(a.sample_hash, g.hash) for g in goal.subgoals for a in g.anchors}
    labels = [r for r in ws.store.labels(by_hash) if (r["sample_hash"], r["subgoal_hash"]) not in anchored]
    if not labels:
        return {}
    current = {}
    if judge:
        judged = ws.store.judgments_among(judge.prompt_version, judge.model, [r["sample_hash"] for r in labels])
        current = {k: v[0] for k, v in judged.items()}
    pairs: dict[str, tuple[list[int], list[int]]] = {}
    for r in labels:
        score = current.get((r["sample_hash"], r["subgoal_hash"]), r["judge_score"])
        for key in (by_hash[r["subgoal_hash"]], "overall"):
            u, j = pairs.setdefault(key, ([], []))
            u.append(r["user_score"])
            j.append(score)
    settings = ws.settings
    out = {}
    for key in [g.id for g in goal.subgoals] + ["overall"]:
        if key not in pairs:
            continue
        found = agreement(*pairs[key])
        found.poor = (found.labels >= settings.agreement_min_labels
                      and (found.kappa is None and found.exact < 0.5
                           or found.kappa is not None and found.kappa < settings.agreement_poor_kappa))
        out[key] = found
    return out


def length_bias(ws: Workspace, goal, judge: JudgeRef) -> tuple[dict[str, float], dict[str, int]]:
    """Per subgoal, Spearman's rho between sample length (characters) and score (weighted where recorded;
    scipy.stats.spearmanr) over the judged samples (a seeded random ~5,000 of a bigger dataset), one per
    distinct content, and the samples it rests on. Subgoals with
    fewer than 3 judged samples or constant scores or lengths are left out."""
    from scipy.stats import spearmanr

    rhos, counts = {}, {}
    found = ws.store.score_lengths(judge.prompt_version, judge.model, [g.hash for g in goal.subgoals])
    for g in goal.subgoals:
        rows = found[g.hash]
        if len(rows) < 3:
            continue
        lengths, scores = zip(*rows)
        if len(set(lengths)) < 2 or len(set(scores)) < 2:
            continue
        rho = float(spearmanr(lengths, scores).statistic)
        if not math.isnan(rho):
            rhos[g.id], counts[g.id] = round(rho, 3), len(rows)
    return rhos, counts


def judge_quality(ws: Workspace, goal, judge: JudgeRef | None, rows) -> JudgeQuality:
    """Everything above for the current goal and `judge` (None before scoring); `rows` are the coverage rows (their `scored` and
    `failed` counts give the failure rates). Flags: poor agreement, |rho| >= GOALCOVER_LENGTH_BIAS_RHO on at
    least GOALCOVER_LENGTH_BIAS_MIN_SAMPLES samples, an order check below 90% consistency."""
    settings = ws.settings
    quality = JudgeQuality(agreement=label_agreement(ws, goal, judge))
    flags = []
    for sid, a in quality.agreement.items():
        if a.poor and sid != "overall":
            kappa = f"κ {a.kappa:.2f}" if a.kappa is not None else f"{a.exact:.0%} exact"
            flags.append(f"{sid}'s scores disagree with your checks: {kappa} on {a.labels} labels")
    if not judge:
        quality.flags = flags
        return quality
    quality.length_bias, quality.length_bias_samples = length_bias(ws, goal, judge)
    for sid, rho in quality.length_bias.items():
        if abs(rho) >= settings.length_bias_rho and quality.length_bias_samples[sid] >= settings.length_bias_min_samples:
            longer = "longer" if rho > 0 else "shorter"
            flags.append(f"{sid}'s scores follow sample length (Spearman ρ {rho:+.2f} on "
                         f"{quality.length_bias_samples[sid]} samples): the judge may favour {longer} samples")
    from goalcover.tools.judge.jury import jury_agreement

    quality.jury = jury_agreement(ws, goal, judge)
    for sid, j in (quality.jury.subgoals.items() if quality.jury else ()):
        if j.kappa is not None and j.kappa < settings.agreement_poor_kappa and j.pairs >= settings.agreement_min_labels:
            flags.append(f"{sid}: the judges disagree with each other (mean pairwise κ {j.kappa:.2f} on {j.pairs} pairs)")
    quality.failure_rate = {r.id: round(r.failed / (r.scored + r.failed), 4) for r in rows if r.scored + r.failed}
    check = ws.store.get_meta(ORDER_CHECK_KEY)
    if check and (check.get("prompt_version"), check.get("model")) == judge.key:
        quality.order_check = OrderCheck(**check)
        quality.order_consistency = quality.order_check.consistency
        if quality.order_check.consistency < 0.9:
            flags.append(f"{quality.order_check.changed} of {quality.order_check.verdicts} verdicts changed when the "
                         f"subgoals were shuffled (order consistency {quality.order_check.consistency:.0%})")
    quality.flags = flags
    return quality


from goalcover.tools.judge.jury import JuryAgreement  # noqa: E402  (jury imports scoring, which must not import this first)

JudgeQuality.model_rebuild()
