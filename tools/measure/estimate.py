"""Coverage estimated from a stratified random sample: each subgoal's supporting share with a 95% interval,
its mean score with a bootstrap interval, and the probability that it is weak.

Share: the stratified estimator p = Σ W_h p_h with W_h = N_h / N, its variance
Σ W_h² (1 − n_h/N_h) p_h(1 − p_h)/(n_h − 1) (Cochran 1977, §5.3 with the finite population correction),
and a Wilson score interval (Wilson 1927) at Kish's effective sample size n_eff = p(1 − p)/var — the
usual stratified analogue of Wilson (Kish 1965; Dean & Pagano 2015). Mean: the same weights, with a
bootstrap percentile interval from `scipy.stats.bootstrap` over (score, weight) pairs. Weak: a Monte Carlo
over Jeffreys Beta posteriors of every subgoal's share at its effective counts, applying coverage's weak
rule (absolute and relative to the median subgoal) to each draw jointly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from goalcover.tools.measure.strata import SampleDesign

CONFIDENCE = 0.95
WEAK_DRAWS = 4000
BOOTSTRAP_RESAMPLES = 999


class SubgoalEstimate(BaseModel):
    """One subgoal's estimate: shares are fractions 0-1, means on the 1-5 scale."""

    id: str
    share: float = Field(description="estimated share of the dataset's samples that support the subgoal")
    ci_low: float
    ci_high: float
    p_weak: float = Field(description="probability that the subgoal is weak, given the sample")
    mean: float | None = None
    mean_ci_low: float | None = None
    mean_ci_high: float | None = None
    scored: int = Field(description="drawn samples with a judgment for this subgoal")


class Estimate(BaseModel):
    """`score --json`'s "estimate": n drawn and judged, N in the dataset, one row per subgoal."""

    samples: int = Field(description="n: drawn samples with a judgment for every subgoal")
    population: int = Field(description="N: samples in the dataset")
    confidence: float = CONFIDENCE
    subgoals: list[SubgoalEstimate]

    def widest(self) -> float:
        """The widest share interval, in points (0-100)."""
        return max((r.ci_high - r.ci_low) * 100 for r in self.subgoals) if self.subgoals else 0.0

    def summary(self) -> dict:
        """The design's fixed JSON shape: samples, population, subgoals [{id, share, ci_low, ci_high, p_weak}]."""
        keys = ("id", "share", "ci_low", "ci_high", "p_weak")
        return {"samples": self.samples, "population": self.population,
                "subgoals": [{k: getattr(r, k) for k in keys} for r in self.subgoals]}


def wilson(p: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for a proportion p observed on n (possibly effective, so not
    integer) trials; z from scipy.stats.norm."""
    if n <= 0:
        return 0.0, 1.0
    z = stats.norm.ppf(0.5 + confidence / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def stratified_share(strata: list[tuple[int, int, int]], confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """(share, ci_low, ci_high, n_eff) from strata given as (N_h, n_h, supporting_h); strata with n_h = 0
    are left out and the weights renormalised. A census (every n_h = N_h) has a zero-width interval."""
    used = [(N, n, y) for N, n, y in strata if n > 0]
    if not used:
        return 0.0, 0.0, 1.0, 0.0
    total = sum(N for N, _, _ in used)
    p = sum(N / total * y / n for N, n, y in used)
    if all(n >= N for N, n, _ in used):
        return p, p, p, math.inf
    var = sum((N / total) ** 2 * (1 - n / N) * (y / n) * (1 - y / n) / max(n - 1, 1) for N, n, y in used)
    n_drawn = sum(n for _, n, _ in used)
    # Where the sample shows no variance (all 0 or all 1 within every stratum), fall back to n: Wilson then
    # still gives the honest non-zero width a plain sample of that size would.
    n_eff = p * (1 - p) / var if var > 0 and 0 < p < 1 else n_drawn
    low, high = wilson(p, n_eff, confidence)
    return p, low, high, n_eff


def weighted_mean_ci(scores: np.ndarray, weights: np.ndarray, seed: int, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the weighted mean score and its bootstrap percentile interval
    (scipy.stats.bootstrap, paired resampling of (score, weight), BOOTSTRAP_RESAMPLES resamples)."""
    mean = float(np.average(scores, weights=weights))
    if len(scores) < 2 or np.all(scores == scores[0]):
        return mean, mean, mean

    def statistic(s, w, axis=-1):
        return (s * w).sum(axis=axis) / w.sum(axis=axis)

    res = stats.bootstrap((scores, weights), statistic, paired=True, vectorized=True, confidence_level=confidence,
                          n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", rng=np.random.default_rng(seed))
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def estimate(design: SampleDesign, scores: Mapping[str, Mapping[str, int]], subgoal_ids: list[str], *, support: int,
             weak_share: float, weak_relative: float, confidence: float = CONFIDENCE,
             supports: Mapping[str, Mapping[str, bool]] | None = None) -> Estimate:
    """The estimate from a design and the judged scores (sample id -> subgoal id -> score 1-5) of its drawn
    samples; samples drawn but not (yet) judged for a subgoal are left out of that subgoal (missing at
    random within their stratum). `support`, `weak_share`, `weak_relative` are coverage's thresholds;
    `supports` (sample id -> subgoal id -> bool), where given, decides support instead of score >= support
    (coverage passes the G-Eval weighted decision, coverage.supports)."""
    rows: list[SubgoalEstimate] = []
    effective: list[tuple[float, float]] = []
    for sid in subgoal_ids:
        cells, values, weights = [], [], []
        for label, ids in design.strata.items():
            judged = [i for i in ids[: design.drawn[label]] if sid in scores.get(i, {})]
            got = [scores[i][sid] for i in judged]
            backing = (sum(supports[i][sid] for i in judged) if supports is not None
                       else sum(v >= support for v in got))
            cells.append((len(ids), len(got), backing))
            values += got
            weights += [len(ids) / len(got)] * len(got)
        p, low, high, n_eff = stratified_share(cells, confidence)
        effective.append((p, n_eff))
        mean = mean_low = mean_high = None
        if values:
            mean, mean_low, mean_high = weighted_mean_ci(np.array(values, float), np.array(weights, float), design.seed, confidence)
        rows.append(SubgoalEstimate(
            id=sid, share=round(p, 4), ci_low=round(low, 4), ci_high=round(high, 4), p_weak=0.0,
            mean=_round(mean), mean_ci_low=_round(mean_low), mean_ci_high=_round(mean_high), scored=len(values),
        ))
    for row, chance in zip(rows, p_weak(effective, weak_share, weak_relative, design.seed)):
        row.p_weak = round(chance, 3)
    complete = set.intersection(*(
        {i for label, ids in design.strata.items() for i in ids[: design.drawn[label]] if sid in scores.get(i, {})}
        for sid in subgoal_ids
    )) if subgoal_ids else set()
    return Estimate(samples=len(complete), population=design.population, confidence=confidence, subgoals=rows)


def p_weak(shares: list[tuple[float, float]], weak_share: float, weak_relative: float, seed: int,
           draws: int = WEAK_DRAWS) -> list[float]:
    """P(weak) per subgoal from (share, n_eff) pairs: WEAK_DRAWS joint draws from Jeffreys Beta(y + ½,
    n − y + ½) posteriors at the effective counts (a census draws its share exactly), weak in a draw when
    its share is under `weak_share` or under `weak_relative` × that draw's median share."""
    if not shares:
        return []
    rng = np.random.default_rng(seed)
    columns = []
    for p, n_eff in shares:
        if math.isinf(n_eff):
            columns.append(np.full(draws, p))
        else:
            columns.append(rng.beta(p * n_eff + 0.5, (1 - p) * n_eff + 0.5, size=draws))
    sampled = np.column_stack(columns)
    median = np.median(sampled, axis=1, keepdims=True)
    weak = (sampled < weak_share) | (sampled < weak_relative * median)
    return weak.mean(axis=0).tolist()


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)

