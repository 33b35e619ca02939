"""The cascade's thresholds meet the precision and recall targets on the population, not just on the judged
sample: ppi.bounded_thresholds (Clopper–Pearson bounds, the engine's rule) against the point-estimate rule."""

from __future__ import annotations

import numpy as np

from goalcover.tools.measure.ppi import bounded_thresholds, cascade_quality, thresholds
from goalcover.tools.measure.predict import TargetPrediction, _decide

# A calibrated predictor of a rare target (~8% positives, like the benchmark's off-goal): P ~ Beta(0.3, 3).
POPULATION = 20_000
DRAWS = 60
JUDGED = 400


def _population(seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.beta(0.3, 3.0, POPULATION)
    return p, rng.random(POPULATION) < p


def _population_quality(p, y, t_low, t_high):
    """Precision and recall of the cascade over the whole population (the judge decides the band)."""
    band = (p > t_low) & (p < t_high)
    decided = np.where(band, y, p >= t_high)
    tp = int((decided & y).sum())
    return tp / max(1, int(decided.sum())), tp / int(y.sum())


def test_bounded_thresholds_meet_the_targets_on_the_population_where_the_point_rule_misses_recall():
    p, y = _population()
    rng = np.random.default_rng(1)
    met_bounded = met_point = 0
    for _ in range(DRAWS):
        drawn = rng.choice(POPULATION, JUDGED, replace=False)
        precision, recall = _population_quality(p, y, *bounded_thresholds(y[drawn], p[drawn], 0.9, 0.8))
        met_bounded += precision >= 0.9 and recall >= 0.8
        precision, recall = _population_quality(p, y, *thresholds(y[drawn], p[drawn], 0.9, 0.8))
        met_point += precision >= 0.9 and recall >= 0.8
    # One-sided 90% bounds on each side: both hold in well over 80% of the draws (Clopper–Pearson is
    # conservative); the point rule meets recall about half the time.
    assert met_bounded >= 0.85 * DRAWS
    assert met_point <= 0.75 * DRAWS


def test_bounded_thresholds_on_the_judged_sample_and_a_higher_confidence_widens_the_band():
    p, y = _population(2)
    drawn = np.random.default_rng(3).choice(POPULATION, JUDGED, replace=False)
    yd, pd = y[drawn], p[drawn]
    t_low, t_high = bounded_thresholds(yd, pd, 0.9, 0.8)
    assert t_low < t_high
    precision, recall, band = cascade_quality(yd, pd, t_low, t_high)
    assert precision >= 0.9 and recall >= 0.8 and 0 < band < 1
    strict_low, strict_high = bounded_thresholds(yd, pd, 0.9, 0.8, confidence=0.99)
    assert strict_low <= t_low and strict_high >= t_high and (strict_low, strict_high) != (t_low, t_high)
    # Too few judged positives to bound either side: everything goes to the judge.
    assert bounded_thresholds(np.array([True, False, False, True]), np.array([0.9, 0.1, 0.2, 0.8]), 0.9) == (-np.inf, np.inf)
    assert bounded_thresholds(np.zeros(5, bool), np.linspace(0, 1, 5), 0.9) == (-np.inf, np.inf)


def test_the_engine_decides_with_the_bounded_thresholds():
    p, y = _population(4)
    drawn = np.random.default_rng(5).choice(POPULATION, JUDGED, replace=False)
    row = TargetPrediction(id="S1", judged=JUDGED, positives=int(y[drawn].sum()), auc=0.9, precision=None, recall=None,
                           chance=False, predicted=True, share=0.1, ci_low=0.0, ci_high=1.0, sample_ci_low=0.0,
                           sample_ci_high=1.0, lam=1.0)
    p_by_hash = {f"h{i}": float(v) for i, v in enumerate(p[:2000])}
    decisions = _decide(row, {}, p_by_hash, y[drawn], p[drawn], 0.9, 0.8)
    t_low, t_high = bounded_thresholds(y[drawn], p[drawn], 0.9, 0.8)
    assert (row.t_low, row.t_high) == (round(t_low, 4), round(t_high, 4))
    assert (t_low, t_high) != thresholds(y[drawn], p[drawn], 0.9, 0.8)
    pending = {h for h, (_, by) in decisions.items() if by == "pending"}
    assert pending == {h for h, v in p_by_hash.items() if t_low < v < t_high}
    assert row.decided["pending"] == len(pending) and row.decided["predictor"] == 2000 - len(pending)
