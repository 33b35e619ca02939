"""bench_cascade's off-goal filter as the engine runs it (taught_filter, h28k) on a synthetic population whose
subgoals are linear in the features: it meets the targets and leaves a share of the samples to the predictor."""

from __future__ import annotations

import numpy as np

from goalcover.evals.bench_cascade import FILTER_JUDGED, filter_draws, off_goal_filter, taught_filter


def _population(size=3000, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, dim))
    parts = [x @ rng.normal(size=dim) > 1.6 for _ in range(3)]
    return x, parts, ~np.any(parts, axis=0)


def test_the_engines_filter_judges_the_band_in_rounds_and_meets_the_targets():
    x, parts, off = _population()
    got = taught_filter(x, off, parts, seed=0, share=0.01)  # rounds of 100 (ROUND_SMALLEST) of 3,000
    assert got["rounds"] >= 2
    assert FILTER_JUDGED <= got["judged_share"] < 0.6
    # Teaching the product judges fewer than one predictor fitted once (47% here) and its band at once.
    assert got["judged_share"] < off_goal_filter(x, off, 0)["judged_share"] / 2
    assert got["precision"] >= 0.9 and got["recall"] >= 0.8
    draws = filter_draws(x, off, 2, parts)
    assert set(draws) == {"taught", "bounded", "point"}
    assert draws["taught"]["judged_min"] <= draws["taught"]["judged_share"] <= draws["taught"]["judged_max"]
