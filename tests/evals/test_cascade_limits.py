"""evals/cascade_limits.py: the oracle-threshold bound on the off-goal cascade's judged samples, checked
against a brute-force search over every band, and the limits on a small synthetic population."""

from __future__ import annotations

import numpy as np

from goalcover.evals.cascade_limits import calls_limit, filter_limit, min_judged


def brute_force(p, y, judged, min_precision, min_recall):
    """Every band [i, j) of the unjudged samples sorted by p: the fewest judged that meet both targets."""
    rest = np.flatnonzero(~judged)
    ys = y[rest[np.argsort(p[rest], kind="stable")]]
    best = None
    for i in range(len(ys) + 1):
        for j in range(i, len(ys) + 1):
            found = y[judged].sum() + ys[i:].sum()
            decided = y[judged].sum() + ys[i:j].sum() + (len(ys) - j)
            if found >= min_recall * y.sum() and found >= min_precision * max(decided, 1):
                cost = judged.sum() + (j - i)
                best = cost if best is None else min(best, cost)
    return best


def test_the_bound_is_the_brute_force_minimum_over_every_band():
    rng = np.random.default_rng(3)
    for trial in range(30):
        n = 60
        y = rng.random(n) < 0.3
        p = np.clip(y * rng.uniform(0.2, 1.0, n) + ~y * rng.uniform(0.0, 0.7, n), 0, 1)  # overlapping scores
        judged = rng.random(n) < 0.1
        want = brute_force(p, y, judged, 0.9, 0.8)
        assert min_judged(p, y, judged, 0.9, 0.8, grid=n) == want, trial


def test_a_perfect_predictor_needs_no_band_and_a_useless_one_needs_most_samples():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.1
    judged = np.zeros(2000, dtype=bool)
    judged[:100] = True
    assert min_judged(y.astype(float), y, judged) == 100
    useless = min_judged(rng.random(2000), y, judged)
    assert useless is not None and useless > 100 + 0.7 * 1900  # a band over most of the rest


def test_limits_on_a_population_whose_target_is_a_direction_of_the_vectors():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = x[:, 0] + 0.05 * rng.normal(size=3000) > 0.2  # learnable: a linear predictor separates it well
    got = filter_limit(x, y, draws=1, shares=(0.1,))
    assert 0.1 <= got["0.1"]["judged"][0] < 0.5 and got["0.1"]["auc"][0] > 0.9
    calls = calls_limit(x, {"A": y, "B": rng.random(3000) < 0.3}, judged=500, draws=1)
    assert calls["widest"] == "B"  # share 0.3 against A's ~0.2: the widest sample-only interval
    assert set(calls["variants"]) >= {"engine (C=10, 5 folds)", "10 folds", "RBF SVC, C=10"} and calls["variants"]["engine (C=10, 5 folds)"] == calls["targets"]["B"]["saving"]
    assert calls["targets"]["A"]["saving"][0] > 2.0  # a good predictor cuts the calls
    assert 0.7 < calls["targets"]["B"]["saving"][0] < 1.3  # noise: no better than the sample


def test_representations_measure_each_view_of_the_samples(monkeypatch):
    """Point 3's wiring on a population whose target is one direction of the prompt's vector OR one of the
    response's: the two parts' vectors side by side separate it better than their sum. The engine's joined
    text is embedded by vectors_of; here it stands in as the sum, so its saving equals the sum's (with words
    too)."""
    import goalcover.evals.cascade_limits as limits

    rng = np.random.default_rng(2)
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    vp, vo = unit(rng.normal(size=(60, 16))), unit(rng.normal(size=(60, 16)))
    prompts, outputs = [(f"p{i}", "c") for i in range(60)], [f"o{i}" for i in range(60)]
    pi, oi = limits.pairs(3000, prompts, outputs)
    y = (vp[pi, 0] > 0.3) | (vo[oi, 1] > 0.3)
    by_text = {f"Instruction: p{a}\n\nResponse: o{b}": vp[a] + vo[b] for a, b in zip(pi, oi)}
    monkeypatch.setattr(limits, "vectors_of", lambda texts, name: unit(np.stack([by_text[t] for t in texts])))
    got = limits.representations(prompts, outputs, vp, vo, y, ~y, judged=600, draws=1)
    summed, joined, side, summed_words, joined_words = (got[k]["saving"][0] for k in got)
    assert joined == summed and side > summed > 1.0
    # The words name each prompt and response ("p12", "o7"), so a target set by them is learned from the words too.
    assert summed_words == joined_words > summed
    assert all(0.5 < row["off_auc"][0] <= 1.0 and 0 < row["off_floor"][0] <= 1 for row in got.values())
