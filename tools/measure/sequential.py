"""Sequential active inference with model updating: the pure statistics of `score --predict --target-width`'s
active rounds (tools/measure/active.py runs them on a workspace), on numpy arrays.

Zrnic & Candès, "Active Statistical Inference" (ICML 2024), section "Sequential active inference": the
predictor and the sampling rule of step k are fitted on the labels collected before step k only, so given the
past they are fixed; each step's inverse-probability-weighted estimate is then unbiased given the past, the
errors form a martingale-difference sequence, and the martingale CLT gives the interval of their average.
Here a step is a Poisson round over a finite population (the N − n₁ samples a first random round did not
draw, "the rest" R), and the target is R's number of positives T:
- before round k, U_k ⊂ R are the samples no earlier round judged (the others' labels are known exactly) and
  f_k the predictor fitted on the first round and rounds < k; round k draws each i ∈ U_k independently with
  π_ik (ppi.active_probabilities, expected draws b_k) and estimates
      T̂_k = Σ_{R∖U_k} y + λ_k Σ_{U_k} f_k + Σ_{drawn} (y − λ_k f_k) / π_ik,
  unbiased for T given the past for any fixed λ_k, with the Horvitz–Thompson variance
      V_k = Σ_{drawn} (1 − π_ik)(y − λ_k f_k)² / π_ik²    (Särndal, Swensson & Wretman 1992, §3.3);
  Σ_{U_k} f_k is known exactly (f_k is fixed given the past), so it adds no variance. λ_k minimises V_k,
  clipped to [0, 1] (0: the reweighted sample alone), as PPI++ tunes it;
- the rounds combine with weights set before each round's draw (its expected budget b_k, the paper's equal
  weight per labelled step): T̂ = Σ w_k T̂_k / Σ w_k, variance Σ w_k² V_k / (Σ w_k)² — the martingale CLT's
  variance, estimated round by round;
- the share over N = n₁ + |R| is (first round's positives + T̂) / N, its interval Wilson's at the effective n
  θ(1 − θ)/variance, as ppi.ppi_share has it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from goalcover.tools.measure.estimate import CONFIDENCE, wilson
from goalcover.tools.measure.ppi import Interval


@dataclass
class RoundData:
    """One active round, as one target sees it: `known` the positives of R's samples judged in earlier rounds,
    `f_sum` Σ f_k over U_k (the samples not yet judged), `f` (n,) f_k of the samples drawn this round, `pi`
    (n,) their inclusion probabilities (0-1], `y` (n,) their labels 0/1, `weight` the round's combination
    weight (its expected budget, fixed before the draw)."""

    known: float
    f_sum: float
    f: np.ndarray
    pi: np.ndarray
    y: np.ndarray
    weight: float


def round_total(r: RoundData, lam: float | None = None) -> tuple[float, float, float]:
    """(T̂_k, V_k, λ_k) of one round (module docstring): the estimate of R's positives, its Horvitz–Thompson
    variance and λ (given, or the variance-minimising one clipped to [0, 1]; 0 where nothing was drawn)."""
    f, p, y = (np.asarray(a, dtype=float) for a in (r.f, r.pi, r.y))
    hw = (1 - p) / (p * p)
    if lam is None:
        denom = float((hw * f * f).sum())
        lam = min(1.0, max(0.0, float((hw * y * f).sum()) / denom)) if denom > 0 else 0.0
    resid = y - lam * f
    return r.known + lam * r.f_sum + float((resid / p).sum()), float((hw * resid * resid).sum()), lam


def sequential_share(first_sum: float, first: int, rest: int, rounds: list[RoundData], lam: float | None = None,
                     confidence: float = CONFIDENCE) -> Interval:
    """The share over N = `first` + `rest` samples: `first_sum` the first round's positives (known exactly),
    R's positives from the weighted average of `rounds`' estimates (module docstring). `lam` fixes every
    round's λ (0: the reweighted samples alone). Interval.lam is the rounds' weighted mean λ;
    `classical_width` the width at λ = 0. With no round, R's share is unknown (variance 1/4 per sample)."""
    big_n = first + rest
    if rest == 0:
        theta = first_sum / max(1, big_n)
        return Interval(theta, theta, theta, 0.0, float(big_n), 0.0)
    z = stats.norm.ppf(0.5 + confidence / 2)

    def combine(lam_: float | None) -> tuple[float, float, float]:
        if not rounds:
            return (first_sum + rest * 0.5) / big_n, rest * rest * 0.25 / big_n**2, 0.0
        got = [round_total(r, lam_) for r in rounds]
        w = np.array([r.weight for r in rounds], dtype=float)
        w = w / w.sum()
        total = float(sum(wk * t for wk, (t, _, _) in zip(w, got)))
        var = float(sum(wk * wk * v for wk, (_, v, _) in zip(w, got)))
        return (first_sum + total) / big_n, var / big_n**2, float(sum(wk * lk for wk, (_, _, lk) in zip(w, got)))

    theta, var, lam_mean = combine(lam)
    theta = min(1.0, max(0.0, theta))
    drawn = first + sum(len(r.y) for r in rounds)
    n_eff = theta * (1 - theta) / var if var > 0 and 0 < theta < 1 else float(drawn)
    low, high = wilson(theta, n_eff, confidence)
    return Interval(theta, low, high, lam_mean, n_eff, 2 * z * math.sqrt(max(0.0, combine(0.0)[1])))


def round_budget(judged: int, widest: float, target_width: float, margin: float, left: int) -> float:
    """Expected draws of the next round: the judged count `judged` scaled by (widest / target_width)² ×
    `margin` minus what is judged, as the random `--target-width` rounds grow, but at most `judged` (each
    round at most doubles the labels, so the predictor is refitted at least at every doubling) and at most
    `left` (the samples not yet judged); at least 1."""
    need = math.ceil(judged * (widest / target_width) ** 2 * margin) - judged
    return float(max(1, min(need, judged, left)))
