"""Active inference (ppi.active_probabilities, one round of sequential.sequential_share) on a synthetic
population with a known share: draws chosen by the predictor's uncertainty, reweighted by 1/π, keep the
interval's coverage, and for the same expected budget are not wider than random draws on average."""

from __future__ import annotations

import numpy as np
import pytest

from goalcover.tools.measure.ppi import active_probabilities, poisson_draw
from goalcover.tools.measure.sequential import RoundData, sequential_share

N, BUDGET, REPEATS = 5000, 250, 300


def _population(seed=1):
    """Fixed labels y (N,) and a calibrated but noisy predictor f (N,) of them."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(0, 3, N) - 1.5
    y = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(float)
    f = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.5, N))))
    return y, f


def one_round_share(f, pi, drawn, y_drawn, lam=None):
    """The share of all N from one Poisson round over the whole population (no first round)."""
    one = RoundData(0.0, float(f.sum()), f[drawn], pi[drawn], np.asarray(y_drawn, dtype=float), 1.0)
    return sequential_share(0.0, 0, len(f), [one], lam=lam)


def _runs(y, f, pi, seed):
    rng = np.random.default_rng(seed)
    truth = y.mean()
    covered, widths, draws = [], [], []
    for _ in range(REPEATS):
        drawn = poisson_draw(pi, rng)
        got = one_round_share(f, pi, drawn, y[drawn])
        covered.append(got.low <= truth <= got.high)
        widths.append(got.width)
        draws.append(len(drawn))
    return float(np.mean(covered)), float(np.mean(widths)), float(np.mean(draws))


def test_probabilities_spend_the_budget_favour_uncertain_samples_and_stay_at_most_one():
    _, f = _population()
    pi = active_probabilities(f, BUDGET)
    assert pi.sum() == pytest.approx(BUDGET, rel=1e-6)
    assert pi.max() <= 1.0 and pi.min() > 0  # the uniform share keeps every sample drawable
    uncertain, confident = np.abs(f - 0.5) < 0.1, np.abs(f - 0.5) > 0.45
    assert pi[uncertain].mean() > 3 * pi[confident].mean()
    # A budget near N caps many at 1 and hands the excess to the rest.
    big = active_probabilities(f, N - 10)
    assert big.sum() == pytest.approx(N - 10, rel=1e-6) and big.max() <= 1.0
    with pytest.raises(ValueError):
        active_probabilities(f, 0)


def test_active_draws_keep_coverage_and_are_not_wider_than_random_draws_for_the_same_budget():
    y, f = _population()
    active = _runs(y, f, active_probabilities(f, BUDGET), seed=2)
    uniform = _runs(y, f, np.full(N, BUDGET / N), seed=3)
    for coverage, _, draws in (active, uniform):
        assert 0.9 <= coverage <= 0.995
        assert draws == pytest.approx(BUDGET, rel=0.05)
    assert active[1] <= uniform[1]


def test_without_the_inverse_probability_weights_active_draws_would_be_biased():
    y, f = _population()
    pi = active_probabilities(f, BUDGET)
    rng = np.random.default_rng(4)
    naive, weighted = [], []
    for _ in range(100):
        drawn = poisson_draw(pi, rng)
        naive.append(y[drawn].mean())  # uncertain samples sit near P = 0.5: over-represents the minority class
        weighted.append(one_round_share(f, pi, drawn, y[drawn], lam=0.0).share)
    truth = y.mean()
    assert abs(np.mean(weighted) - truth) < 0.01
    assert abs(np.mean(naive) - truth) > 0.05
