"""Predictors on the samples' features (embeddings and words), prediction-powered intervals and cascade
thresholds: the pure statistics of `score --predict`, on numpy arrays (no workspace, no model call).

- Predictor: per target, an L2-regularised logistic regression (scikit-learn) on the samples' features
  (features.py: the 384-d unit vectors, and by default the text's hashed words beside them), cross-fitted
  over K folds: each judged sample's probability comes from the fold model that did not see it (out-of-fold,
  for AUC/precision/recall, the thresholds and the interval's correction term), every other sample's is the
  mean of the K fold models — cross-prediction-powered inference (Zrnic & Candès, PNAS 2024), which keeps
  the correction term unbiased although the predictor was learned from the same judged sample.
  Logistic regression minimises log-loss, so its probabilities are calibrated where the model fits
  (Niculescu-Mizil & Caruana, ICML 2005); the out-of-fold Brier score is reported to check it.
- Interval: PPI++ for a mean (Angelopoulos, Duchi & Zrnic 2023, "PPI++: Efficient Prediction-Powered
  Inference", arXiv:2311.01453, §2 and Example 1), per stratum of the sample design and combined with the
  strata weights as in estimate.py: θ = Σ W_h [λ·mean(f over N_h) + mean(y − λ·f over n_h)], variance
  Σ W_h² [λ² Var_h(f)/N_h + (1 − n_h/N_h) Var_h(y − λf)/n_h], with the power-tuning λ =
  Cov(y, f) / ((1 + n/N) Var(f)) clipped to [0, 1] (λ = 0 is the judged-sample estimate, so the interval is
  never wider than it in expectation). The interval is Wilson's at the effective n = θ(1 − θ)/variance,
  as estimate.stratified_share does, so it stays inside [0, 1] near the edges.
  We implement it here instead of importing `ppi-python` (ppi_py 0.2.3): that wheel requires numba,
  statsmodels and gdown, and installs a top-level `tests` package that collides with ours; the mean CI is
  the dozen lines below.
- Cascade thresholds: from the out-of-fold probabilities of the judged samples, the lowest t_high whose
  "P >= t_high → supports" precision reaches the target and the highest t_low below which at most 1 − target
  of the positives fall (LOTUS-style approximate filters with a precision target: Patel et al. 2024); the
  band between goes to the judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.sparse import issparse, vstack as sparse_vstack

from goalcover.tools.measure.estimate import CONFIDENCE, wilson
from goalcover.tools.measure.features import as_matrix

FOLDS = 5
# Inverse regularisation of the logistic regression on unit vectors (components ~ 1/√384): weaker than
# scikit-learn's default C = 1, which shrinks such small features to a near-constant probability.
C = 10.0
# A predictor is "no better than chance" when the one-sided Mann–Whitney test of its out-of-fold
# probabilities (positives above negatives) has p above this, or a class has fewer than MIN_CLASS samples.
CHANCE_P = 0.05
MIN_CLASS = 5


@dataclass
class Predictor:
    """A cross-fitted predictor of one binary target: `p_oof` (n,) out-of-fold P(y=1) of the judged samples,
    `coef` (K, d) and `intercept` (K,) of the fold models; `auc`, `precision`/`recall` at 0.5 and `brier`
    from `p_oof`; `chance` True when it is no better than chance (then callers fall back to the sample)."""

    p_oof: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    auc: float | None
    precision: float | None
    recall: float | None
    brier: float | None
    chance: bool
    positives: int
    judged: int

    def predict(self, vectors, batch: int = 200_000) -> np.ndarray:
        """P(y=1) for `vectors` (m, d) — an array or features.Features —, float32 (m,): the mean of the K
        fold models' probabilities, `batch` rows at a time (one matrix product per batch: 10⁶ × 384 takes
        about a second; with the words beside them 0.8 s, bench_cascade h28j)."""
        out = np.empty(len(vectors), dtype=np.float32)
        for start in range(0, len(vectors), batch):
            logits = vectors[start:start + batch] @ self.coef.T + self.intercept  # (b, K)
            out[start:start + batch] = (1.0 / (1.0 + np.exp(-logits))).mean(axis=1)
        return out


def fit(vectors, y: np.ndarray, seed: int = 0, folds: int = FOLDS, c: float = C, extra=None) -> Predictor:
    """Cross-fit a logistic regression (inverse regularisation `c`) of `y` (n,) bool on `vectors` (n, d: an
    array or features.Features, whose blocks are joined into one sparse matrix) over `folds` folds. With
    fewer than MIN_CLASS samples in a class it fits nothing (coef zero, intercept at the judged share) and is
    marked `chance`. `extra` (vectors (m, d), labels (m,) bool), optional: judged samples outside the random
    sample, added to every fold's training set (the cascade's decision predictors, decide.py) — `p_oof`,
    AUC and the chance test stay on `vectors` alone, each row's P from a model that did not see it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y, dtype=bool)
    vectors = as_matrix(vectors)
    n, d = vectors.shape
    if extra is not None and len(extra[1]):
        x_extra, y_extra = as_matrix(extra[0]), np.asarray(extra[1], dtype=bool)
        joined = sparse_vstack([vectors, x_extra]).tocsr() if issparse(vectors) else np.vstack([vectors, x_extra])
        y_joined = np.concatenate([y, y_extra])
        always = np.arange(n, n + len(y_extra))
    else:
        joined, y_joined, always = vectors, y, np.zeros(0, dtype=int)
    # The same convex objective either way; on the sparse words (2^18 columns) Newton-CG converges in a few
    # iterations, 4× faster than L-BFGS (h28j), which the vectors alone keep.
    solver = "newton-cg" if issparse(vectors) else "lbfgs"
    positives = int(y.sum())
    if min(positives, n - positives) < MIN_CLASS:
        share = (positives + 0.5) / (n + 1)
        base = np.full(n, share)
        return Predictor(base, np.zeros((1, d)), np.array([math.log(share / (1 - share))]), None, None, None,
                         None, True, positives, n)
    k = min(folds, positives, n - positives)
    p_oof = np.empty(n)
    coefs, intercepts = [], []
    for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(vectors, y):
        train = np.concatenate([train, always])
        model = LogisticRegression(C=c, max_iter=1000, solver=solver).fit(joined[train], y_joined[train])
        p_oof[test] = model.predict_proba(vectors[test])[:, 1]
        coefs.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
    auc = float(roc_auc_score(y, p_oof))
    test = stats.mannwhitneyu(p_oof[y], p_oof[~y], alternative="greater")
    hard = p_oof >= 0.5
    return Predictor(
        p_oof, np.array(coefs), np.array(intercepts), auc,
        float(precision_score(y, hard, zero_division=0)), float(recall_score(y, hard, zero_division=0)),
        float(brier_score_loss(y, p_oof)), bool(test.pvalue > CHANCE_P), positives, n,
    )


def fit_regressor(vectors, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Ridge regression (scikit-learn) of a score (n,) on `vectors` (n, d: an array or features.Features):
    (coef (d,), intercept); predict with `vectors @ coef + intercept`."""
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=1.0).fit(as_matrix(vectors), target)
    return model.coef_.astype(np.float64), float(model.intercept_)


@dataclass
class Stratum:
    """One stratum for the interval: `f_all` the predictions of all its N_h samples, `y` and `f` the judged
    labels (0/1) and out-of-fold predictions of its n_h judged samples."""

    f_all: np.ndarray
    y: np.ndarray
    f: np.ndarray


@dataclass
class Interval:
    """A share with its 95% interval (fractions 0-1), λ, the effective n and the judged-sample interval's
    width beside it (`classical_width`) for comparison."""

    share: float
    low: float
    high: float
    lam: float
    n_eff: float
    classical_width: float = field(default=math.nan)

    @property
    def width(self) -> float:
        """high − low, a fraction."""
        return self.high - self.low


def tuned_lambda(y: np.ndarray, f: np.ndarray, f_all_count: int) -> float:
    """PPI++'s power-tuning λ = Cov(y, f) / ((1 + n/N) Var(f)) on the judged pairs, clipped to [0, 1]
    (Angelopoulos, Duchi & Zrnic 2023, Example 1); 0 when f does not vary."""
    n = len(y)
    if n < 2 or np.var(f) <= 0:
        return 0.0
    lam = np.cov(y, f)[0, 1] / ((1 + n / max(f_all_count, 1)) * np.var(f, ddof=1))
    return float(min(1.0, max(0.0, lam)))


def ppi_share(strata: list[Stratum], confidence: float = CONFIDENCE, lam: float | None = None) -> Interval:
    """The stratified PPI++ estimate of a share with its interval (see the module's docstring). Strata with
    no judged sample are left out and the weights renormalised, as estimate.stratified_share does. `lam`
    fixes λ (1: plain PPI, 0: the judged sample alone); default tuned over the pooled judged pairs. A census
    (every stratum judged whole) has a zero-width interval at the judged share, λ = 0."""
    used = [s for s in strata if len(s.y)]
    if not used:
        return Interval(0.0, 0.0, 1.0, 0.0, 0.0)
    total = sum(len(s.f_all) for s in used)
    if all(len(s.y) >= len(s.f_all) for s in used):  # a census: the share is known, as estimate.stratified_share has it
        theta = sum(len(s.f_all) / total * float(s.y.mean()) for s in used)
        return Interval(theta, theta, theta, 0.0, math.inf, 0.0)
    if lam is None:
        lam = tuned_lambda(np.concatenate([s.y for s in used]).astype(float), np.concatenate([s.f for s in used]), total)
    theta = var = classical_var = 0.0
    for s in used:
        big_n, n = len(s.f_all), len(s.y)
        w = big_n / total
        resid = s.y - lam * s.f
        theta += w * (lam * float(s.f_all.mean()) + float(resid.mean()))
        fpc = max(0.0, 1 - n / big_n)
        var += w * w * (lam * lam * float(np.var(s.f_all, ddof=1) if big_n > 1 else 0.0) / big_n
                        + fpc * (float(np.var(resid, ddof=1)) if n > 1 else 0.25) / n)
        classical_var += w * w * fpc * (float(np.var(s.y, ddof=1)) if n > 1 else 0.25) / n
    theta = min(1.0, max(0.0, theta))
    n_drawn = sum(len(s.y) for s in used)
    n_eff = theta * (1 - theta) / var if var > 0 and 0 < theta < 1 else n_drawn
    low, high = wilson(theta, n_eff, confidence)
    z = stats.norm.ppf(0.5 + confidence / 2)
    return Interval(theta, low, high, lam, n_eff, 2 * z * math.sqrt(classical_var))


def thresholds(y: np.ndarray, p: np.ndarray, min_precision: float, min_recall: float | None = None) -> tuple[float, float]:
    """(t_low, t_high) for a cascade, from the judged samples (`y` bool, `p` out-of-fold P): "supports" at
    P >= t_high keeps at least `min_precision` precision, "does not" at P <= t_low loses at most
    1 − `min_recall` (default `min_precision`) of the positives, so recall meets that target; the band
    t_low < P < t_high goes to the judge. Where no threshold reaches the target, t_high = +inf / t_low = −inf
    (everything goes to the judge on that side)."""
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    # "Supports" for the top k: precision of every prefix; the lowest threshold (largest k) that meets it.
    prec_top = np.cumsum(ys) / np.arange(1, len(ys) + 1)
    t_high = math.inf
    ok = np.nonzero(prec_top >= min_precision)[0]
    # Only cut between distinct probabilities, so ties are decided together.
    for k in ok[::-1]:
        if k + 1 == len(ps) or ps[k + 1] < ps[k]:
            t_high = float(ps[k])
            break
    # "Does not" for the bottom k: the share of all positives it would lose must stay under 1 − target, so
    # the cascade's recall meets the target too (a precision rule alone would decide "no" for nearly
    # everything of a rare subgoal: the "no" side's precision is high at any threshold).
    rev_p, rev_y = ps[::-1], ys[::-1]
    lost = np.cumsum(rev_y) / max(1, int(ys.sum()))
    t_low = -math.inf
    ok = np.nonzero(lost <= 1 - (min_precision if min_recall is None else min_recall))[0]
    for k in ok[::-1]:
        if (k + 1 == len(rev_p) or rev_p[k + 1] > rev_p[k]) and float(rev_p[k]) < t_high:
            t_low = float(rev_p[k])
            break
    return t_low, t_high


# One-sided confidence of the bounds bounded_thresholds puts on the cascade's recall and precision: the targets
# hold on the population in at least this share of judged samples (Clopper–Pearson is conservative).
THRESHOLD_CONFIDENCE = 0.9


def bounded_thresholds(y: np.ndarray, p: np.ndarray, min_precision: float, min_recall: float | None = None,
                       confidence: float = THRESHOLD_CONFIDENCE) -> tuple[float, float]:
    """(t_low, t_high) for the cascade (the engine's rule; `thresholds` is the point-estimate rule it replaced),
    from a random judged sample (`y` bool (n,), `p` (n,) out-of-fold P), so that the cascade's decisions —
    the predictor's outside the band, the judge's inside — meet both targets on the population with one-sided
    `confidence`, not just on the judged sample:
    - t_low, the highest cut whose lost positives (P <= t_low, decided "does not") have a Clopper–Pearson upper
      bound <= 1 − `min_recall` (default `min_precision`) of all positives: the recall's lower bound meets it;
    - t_high, the lowest cut above t_low whose "supports" decisions — every positive above t_low (the band's
      are judged, so correct) and the negatives at P >= t_high — have a Clopper–Pearson lower precision bound
      >= `min_precision`. The precision is the cascade's, the quantity the target is about; `thresholds`
      asked it of the predictor's decisions alone, which is stricter and left a wider band.
    With ~30 judged positives the point rule met the recall target in about half of the draws (the 10⁴ keyword
    benchmark: 0.76 on the reported one); the bound trades a wider band for meeting it. A side without a
    qualifying cut is ±inf (everything on it goes to the judge)."""
    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=float)
    recall = min_precision if min_recall is None else min_recall
    pos = int(y.sum())
    if pos == 0 or len(y) == 0:
        return -math.inf, math.inf
    cuts = np.unique(p)  # ascending; a cut decides all tied P together
    lost = np.searchsorted(np.sort(p[y]), cuts, side="right")  # positives at P <= cut
    upper = np.where(lost >= pos, 1.0, stats.beta.ppf(confidence, lost + 1, np.maximum(pos - lost, 1)))
    ok = np.nonzero(upper <= 1 - recall)[0]  # upper grows with the cut: a prefix
    t_low = float(cuts[ok[-1]]) if len(ok) else -math.inf
    tp = pos - (int(lost[ok[-1]]) if len(ok) else 0)
    neg_sorted = np.sort(p[~y])
    above = cuts[cuts > t_low]
    fp = len(neg_sorted) - np.searchsorted(neg_sorted, above, side="left")  # negatives at P >= cut
    lower = stats.beta.ppf(1 - confidence, tp, fp + 1) if tp > 0 else np.zeros(len(above))
    ok = np.nonzero(lower >= min_precision)[0]  # lower grows with the cut: a suffix
    t_high = float(above[ok[0]]) if len(ok) else math.inf
    return t_low, t_high


def cascade_quality(y: np.ndarray, p: np.ndarray, t_low: float, t_high: float) -> tuple[float | None, float | None, float]:
    """(precision, recall, band share) of the cascade's "supports" decisions estimated on the judged samples:
    the predictor decides outside the band, the judge (the truth here) inside it."""
    y = np.asarray(y, dtype=bool)
    band = (p > t_low) & (p < t_high)
    decided = np.where(band, y, p >= t_high)
    tp = int((decided & y).sum())
    precision = tp / int(decided.sum()) if decided.any() else None
    recall = tp / int(y.sum()) if y.any() else None
    return precision, recall, float(band.mean()) if len(band) else 0.0



def weak_quality(y: np.ndarray, p: np.ndarray, t_low: float, t_high: float) -> tuple[float | None, float | None]:
    """(precision, recall) of the cascade's "does not support" (weak) decisions estimated on the judged
    samples (`y` bool, `p` out-of-fold P): the predictor decides "no" at P <= t_low and "yes" at P >= t_high,
    the judge (the truth here) inside the band. None where nothing is decided "no" / nothing is negative."""
    y = np.asarray(y, dtype=bool)
    band = (p > t_low) & (p < t_high)
    weak = np.where(band, ~y, p <= t_low)
    hit = int((weak & ~y).sum())
    precision = hit / int(weak.sum()) if weak.any() else None
    recall = hit / int((~y).sum()) if (~y).any() else None
    return precision, recall

# --- active inference (Zrnic & Candès, "Active Statistical Inference", ICML 2024) ----------------------
# A later round need not draw at random: with a predictor f fitted on earlier rounds, it draws each of the
# N not-yet-judged samples independently (Poisson sampling) with a probability π_i that grows with the
# predictor's uncertainty, and the estimate reweights what it judged by 1/π_i, so it stays unbiased:
#   θ̂ = (1/N) Σ_i [λ f_i + ξ_i (y_i − λ f_i) / π_i],   ξ_i ~ Bernoulli(π_i)
# with the Horvitz–Thompson variance (1/N²) Σ_i ξ_i (1 − π_i)(y_i − λ f_i)² / π_i² (unbiased for Poisson
# sampling; Särndal, Swensson & Wretman 1992, §3.3). The estimate, round by round with a refitted f, is
# tools/measure/sequential.py's; these are the draws.
# The variance-optimal π_i ∝ sqrt(E[(y − f)² | x]) = sqrt(f(1 − f)) for a calibrated f (Zrnic & Candès §3);
# mixing with the uniform rule (a share `mix` of the budget) bounds the weights 1/π_i, as the paper does.

ACTIVE_MIX = 0.2


def active_probabilities(f: np.ndarray, budget: float, mix: float = ACTIVE_MIX) -> np.ndarray:
    """Inclusion probabilities π (m,) for Poisson sampling of m samples with predicted P `f` (m,), summing
    to `budget` (expected draws, 0 < budget <= m): (1 − mix) of the budget ∝ sqrt(f(1 − f)) and `mix` spread
    uniformly, capped at 1 with the excess redistributed over the others. Raises ValueError for a budget
    outside (0, m]."""
    m = len(f)
    if not 0 < budget <= m:
        raise ValueError(f"budget {budget} outside (0, {m}]")
    u = np.sqrt(np.clip(f, 0.0, 1.0) * (1 - np.clip(f, 0.0, 1.0)))
    u = u / u.sum() if u.sum() > 0 else np.full(m, 1.0 / m)
    weight = (1 - mix) * u + mix / m  # sums to 1
    pi = np.zeros(m)
    free = np.ones(m, dtype=bool)
    left = float(budget)
    for _ in range(m):  # cap at 1, hand the excess to the rest (at most m passes; usually 1-2)
        pi[free] = left * weight[free] / weight[free].sum()
        over = free & (pi >= 1)
        if not over.any():
            break
        pi[over] = 1.0
        free &= ~over
        left = budget - float((~free).sum())
        if left <= 0 or not free.any():
            break
    return np.clip(pi, 0.0, 1.0)


def poisson_draw(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions drawn by Poisson sampling: each i independently with probability pi[i]."""
    return np.nonzero(rng.random(len(pi)) < pi)[0]
