"""Coverage of a partly scored dataset (scoring under way, stopped, or still to resume): each subgoal's
share is estimated over the samples scored for it, with a 95% interval, instead of being divided by every
sample of the dataset (which makes every subgoal look weak while scoring runs).

The scored samples are treated as one stratum drawn from the dataset: share and interval by
`estimate.stratified_share` (Wilson at the effective size, with the finite population correction, Cochran
1977 §5.3), the mean by a t interval with the same correction, and P(weak) by `estimate.p_weak` (the joint
Monte Carlo of coverage's weak rule). A subgoal is called weak only when the intervals allow it:
P(weak) ≥ the confidence (0.95), or, with GOALCOVER_WEAK_MEAN set, a mean interval wholly below it.
Scoring goes in file order, so the scored samples are the dataset's first ones, not a random draw: the
intervals assume they are typical of the rest, and the coverage note says so.
"""

from __future__ import annotations

import math

from scipy import stats

from goalcover.tools.measure.estimate import CONFIDENCE, p_weak, stratified_share

SEED = 0  # P(weak)'s Monte Carlo draws: fixed, so the same scores always give the same figures


def mean_interval(histogram: dict[int, int], population: int, confidence: float = CONFIDENCE) -> tuple[float, float, float] | None:
    """(mean, low, high) of the 1-5 scores in `histogram` (score -> samples), a t interval with the finite
    population correction for `population` samples; None without scores. A census has a zero-width one."""
    n = sum(histogram.values())
    if not n:
        return None
    mean = sum(k * v for k, v in histogram.items()) / n
    if n < 2:
        return mean, 1.0, 5.0
    var = sum(v * (k - mean) ** 2 for k, v in histogram.items()) / (n - 1)
    fpc = max(0.0, 1 - n / population) if population else 0.0
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * math.sqrt(var / n * fpc)
    return mean, max(1.0, mean - half), min(5.0, mean + half)


def apply_partial(rows: list, population: int, settings, confidence: float = CONFIDENCE) -> int:
    """Replace each row's share (supporting / all samples) by the estimate over its scored samples with its
    interval (`ci_low`, `ci_high`), set `mean_ci_low/high` and `p_weak`, and decide `weak` only where the
    intervals allow it (see the module). `rows` are coverage's SubgoalCoverage rows, changed in place;
    returns n, the samples scored for every subgoal (the smallest per-subgoal count)."""
    effective = []
    for row in rows:
        share, low, high, n_eff = stratified_share([(population, row.scored, row.supporting)], confidence)
        row.share, row.ci_low, row.ci_high = round(share, 4), round(low, 4), round(high, 4)
        effective.append((share, n_eff) if row.scored else (0.5, 0.0))
        found = mean_interval(row.histogram, population, confidence)
        if found is not None:
            row.mean, row.mean_ci_low, row.mean_ci_high = (round(x, 3) for x in found)
    chances = p_weak(effective, settings.weak_share, settings.weak_relative, SEED)
    for row, chance in zip(rows, chances):
        row.p_weak = round(chance, 3) if row.scored else None
        by_mean = (settings.weak_mean is not None and row.mean_ci_high is not None and row.mean_ci_high < settings.weak_mean)
        row.weak = bool(row.scored) and (chance >= confidence or by_mean)
    return min((row.scored for row in rows), default=0)
