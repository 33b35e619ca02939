"""Benchmark: judge calls saved by `score --predict` — predictors on the embeddings, PPI++ intervals and the
cascade — against the sample-only estimate and full judging.

Datasets of 10⁴ and 10⁵ samples are built from the vendored SFT files' real texts as bench_scale does (the
prompt of one record with the response of another; every pair distinct). Two oracles stand in for the judge:

1. keyword — the fake endpoint's keyword judge rule (tests/support/judges.py: a subgoal supports where its
   regex matches the sample's text), applied in-process to all N samples, with six subgoals over the mixed
   data; off-goal = no subgoal matches;
2. category — the shared sets' ground truth: the prompt's source set (contracts, MBPP code, self-instruct)
   as three targets; off-goal = the prompt is not a contract clause (a "legal terms" goal).

Embedding 10⁵ joined texts takes ~15 min on this CPU, so a sample's vector is the normalised sum of its
prompt's and its response's MiniLM vectors (tools.embeddings.embed, each distinct text once, cached in
~/.cache/goalcover/bench_cascade); beside it, as the engine does by default, the joined text's hashed words
(tools/measure/features.py; `--no-words`: the vector alone, as before h28j). The statistics are the
engine's own (tools/measure/ppi.py), on arrays.

Per size and oracle it reports:
- calls for ±2 points (interval width < 4 points) on every target: with the predictor (PPI++ on a simple
  random sample, cross-fitted) — C; with the sample only (λ = 0) — S; full judging — F = N. Found on one
  random order on a geometric grid of n (×1.15); and, since one order's C moves by a grid step or two, over
  `--orders` random orders on a ×1.03 grid: S/C's mean, min and max (`--calls-only`: these alone);
- active inference (A, deliverable 3; Zrnic & Candès 2024) as `score --predict --target-width` runs it
  (tools/measure/active.py, sequential active inference with model updating): a first random round of
  `--first-rounds` samples (the engine's default 100, and 400), then rounds whose predictors are refitted on
  the labels of the first round and every earlier round (active.fit_round), drawn over the not-yet-judged rest
  by their uncertainty (ppi.active_probabilities), each at most doubling the labels (sequential.round_budget),
  the rounds' reweighted estimates averaged (sequential.sequential_share). Calls for ±2 points two ways:
  `grid`, a single round drawn by the first round's predictors with its expected budget on the same ×1.15
  grid as C and S (no refit), and `engine`, score_active's own sequential rounds; its coverage and judged
  samples (mean, median, range) over `--active-repeats` runs (a fresh first round of the default size each);
- random rounds (R) as `score --predict --target-width` runs them by default (sampled.next_size's 1/√n
  growth capped at ×1.5 a round, the predictors cross-fitted on all judged samples each round): coverage
  and judged samples over `--rounds-repeats` runs from a first round of the default size;
- interval coverage of the true share over `--repeats` random draws of `--coverage-n` samples (all targets
  pooled; target 93–97%);
- off-goal filter: a random 4% judged, thresholds at precision 0.9 and recall 0.8 from the out-of-fold P by
  the engine's rule (ppi.bounded_thresholds: one-sided 90% confidence bounds); the engine's since h28k
  (taught_filter: decide.py's relevance product, taught by every judged sample, the band judged in rounds of
  1%, the most uncertain first) and, as before h28k, one predictor on the random sample with the band judged
  at once, by the bounded rule and by the point estimates (ppi.thresholds); precision and recall of the
  "off-goal" decisions against full judging, at the share judged — on one draw, and over `--filter-draws`
  draws (means, the judged share's range, and the share of draws meeting both targets; `--filter-only`:
  these draws alone, last line `cascade: filter P/R at J% judged (range), targets met in K% of D draws`);
- fit time (six targets, 5-fold) and predict time over 10⁶ samples (the engine's batched predict), the time
  to hash 10⁶ texts' words, peak RSS.

Last line: `cascade: calls C (active A, first round F) vs S (sample-only) vs N (full), coverage K% (active K%),
filter P/R at J% judged` for the largest size and the keyword oracle (C, A and S: judged samples until every
target is at ±2 points; A the engine's sequential rounds after the default first round; the filter with the
engine's bounded rule).

    python -m goalcover.evals.bench_cascade [--sizes 10000,100000] [--repeats 200] [--coverage-n 1000]
        [--first-rounds 100,400] [--active-repeats 100] [--rounds-repeats 30] [--filter-draws 10] [--orders 8] [--calls-only]
        [--filter-only] [--no-words]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import time
from pathlib import Path

import numpy as np

from goalcover.tools.measure import active as active_rounds, decide
from goalcover.tools.measure.features import Features, words
from goalcover.tools.measure.ppi import (Stratum, active_probabilities, bounded_thresholds, cascade_quality, fit, poisson_draw,
                                         ppi_share, thresholds)
from goalcover.tools.measure.predict import ROUND_SMALLEST
from goalcover.tools.measure.sampled import DEFAULT_FIRST_DRAW, GROWTH_MARGIN, next_size
from goalcover.tools.measure.sequential import RoundData, round_budget, sequential_share

DEFAULT_DATASETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sft"
FILES = {"contracts": "contracts_alpaca.jsonl", "code": "mbpp_alpaca.jsonl", "selfinstruct": "selfinstruct_alpaca.jsonl"}
KEYWORDS = {
    "S1": r"\bdef\b|function|return",
    "S2": r"terminat|suspend",
    "S3": r"liab|warrant|indemn",
    "S4": r"personal (data|information)|privacy",
    "S5": r"e-?mail|letter",
    "S6": r"\bnumbers?\b|integer|\bsum\b",
}
CACHE = Path.home() / ".cache" / "goalcover" / "bench_cascade"
WIDTH = 0.04  # ±2 points
MIN_PRECISION = 0.9
MIN_RECALL = 0.8  # the filter target; `score --min-precision P` uses P for both
FILTER_JUDGED = 0.04
ROUND_SHARE = 0.01  # the engine's default cascade_round


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(datasets: Path):
    """(prompts [(text, category)], outputs [text]) of the three files, distinct."""
    prompts: dict[str, str] = {}
    outputs: dict[str, None] = {}
    for category, name in FILES.items():
        for line in (datasets / name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            prompts.setdefault(f"{r['instruction']}\n{r.get('input', '')}".strip(), category)
            outputs.setdefault(r["output"], None)
    return list(prompts.items()), list(outputs)


def vectors_of(texts: list[str], name: str) -> np.ndarray:
    """MiniLM vectors of `texts`, cached by a hash of the texts."""
    import hashlib

    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    from goalcover.tools.data.embeddings import embed

    got = embed(texts, 64)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, got)
    return got


def pairs(n: int, prompts, outputs, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n distinct (prompt, response) pairs as index arrays (prompt positions (n,), response positions (n,))."""
    picks = np.random.default_rng(seed).choice(len(prompts) * len(outputs), size=n, replace=False)
    return picks // len(outputs), picks % len(outputs)


def joined_texts(n: int, prompts, outputs, seed: int = 0) -> list[str]:
    """The n samples' texts as the engine's Sample.text has an instruction/response record (build's pairs)."""
    pi, oi = pairs(n, prompts, outputs, seed)
    return [f"Instruction: {prompts[a][0]}\n\nResponse: {outputs[b]}" for a, b in zip(pi, oi)]


def build(n: int, prompts, outputs, vp: np.ndarray, vo: np.ndarray, seed: int = 0):
    """n distinct (prompt, response) pairs: vectors (n, 384), keyword labels {target: bool (n,)}, category
    labels {target: bool (n,)}, and each oracle's off-goal labels."""
    pi, oi = pairs(n, prompts, outputs, seed)
    x = vp[pi] + vo[oi]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    compiled = {k: re.compile(p, re.IGNORECASE) for k, p in KEYWORDS.items()}
    # Match on prompt and response separately (a sample's text is the two joined): the same verdicts.
    hit_p = {k: np.array([bool(c.search(t)) for t, _ in prompts]) for k, c in compiled.items()}
    hit_o = {k: np.array([bool(c.search(t)) for t in outputs]) for k, c in compiled.items()}
    keyword = {k: hit_p[k][pi] | hit_o[k][oi] for k in KEYWORDS}
    keyword_off = ~np.any(np.stack(list(keyword.values())), axis=0)
    cats = np.array([c for _, c in prompts])[pi]
    category = {c: cats == c for c in FILES}
    category_off = cats != "contracts"
    return x.astype(np.float32), keyword, keyword_off, category, category_off


def intervals(x, labels: dict[str, np.ndarray], drawn: np.ndarray, seed: int = 0) -> dict:
    """{target: (PPI++ interval, sample-only interval)} from the judged positions `drawn`, every target's
    predictor cross-fitted on them (the PPI++ one is the sample-only one where no better than chance)."""
    got = {}
    for k, y in labels.items():
        model = fit(x[drawn], y[drawn], seed)
        f_all = model.predict(x)
        f_all[drawn] = model.p_oof
        stratum = Stratum(f_all=f_all, y=y[drawn].astype(float), f=model.p_oof)
        plain = ppi_share([stratum], lam=0.0)
        got[k] = (plain if model.chance else ppi_share([stratum]), plain)
    return got


def widths(x, labels: dict[str, np.ndarray], order: np.ndarray, n: int, seed: int = 0,
           predictors: bool = True) -> tuple[float, float]:
    """(widest PPI++ interval, widest sample-only interval) over the targets, from the first n of `order`;
    without `predictors`, (inf, the sample-only width) and nothing is fitted."""
    if not predictors:
        drawn = order[:n]
        plain = [ppi_share([Stratum(f_all=np.zeros(len(y)), y=y[drawn].astype(float), f=np.zeros(n))], lam=0.0)
                 for y in labels.values()]
        return math.inf, max(s.width for s in plain)
    got = intervals(x, labels, order[:n], seed).values()
    return max(p.width for p, _ in got), max(s.width for _, s in got)


def calls_needed(x, labels, seed: int = 0, step: float = 1.15, start: int = 200) -> tuple[int, int]:
    """(C, S): the smallest n on a ×`step` grid from `start` whose widest interval is under WIDTH, with and
    without the predictor, on the random order of `seed`; N when none is."""
    big_n = len(x)
    order = np.random.default_rng(seed + 1).permutation(big_n)
    found: dict[str, int] = {}
    n = start
    while len(found) < 2:
        n = min(n, big_n)
        ppi_w, sample_w = widths(x, labels, order, n, seed, predictors="C" not in found)  # fit only until C
        if ppi_w < WIDTH:
            found.setdefault("C", n)
        if sample_w < WIDTH:
            found.setdefault("S", n)
        if n == big_n:
            found.setdefault("C", big_n)
            found.setdefault("S", big_n)
        n = math.ceil(n * step)
    return found["C"], found["S"]


def calls_over_orders(x, labels, orders: int) -> dict:
    """C and S over `orders` random orders (seeds 0..orders−1) on a finer ×1.03 grid from 200: one order's C
    moves by a grid step or two, so the saving S/C is given as its mean, min and max with every order's pair."""
    pairs = [calls_needed(x, labels, seed, step=1.03, start=200) for seed in range(orders)]
    ratios = [s / c for c, s in pairs]
    return {"pairs": pairs, "ratio_mean": round(float(np.mean(ratios)), 3), "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3)}


def _first_round(x, labels, first_n: int, rng: np.random.Generator):
    """The active design's first round, as score_active has it: `first_n` drawn at random, every target's
    predictor fitted on them (cross-fitted), its PPI++ interval on them (λ = 0 where no better than chance).
    Returns (first positions, rest positions, {target: P over the rest}, {target: chance}, widest width)."""
    first = rng.choice(len(x), first_n, replace=False)
    rest = np.setdiff1d(np.arange(len(x)), first)
    f_rest, chance, widest = {}, {}, 0.0
    for k, y in labels.items():
        model = fit(x[first], y[first])
        f_all = model.predict(x)
        f_all[first] = model.p_oof
        got = ppi_share([Stratum(f_all=f_all, y=y[first].astype(float), f=model.p_oof)], lam=0.0 if model.chance else None)
        widest = max(widest, got.width)
        f_rest[k], chance[k] = f_all[rest].astype(float), model.chance
    return first, rest, f_rest, chance, widest


def _one_round(labels, first, rest, f_rest, chance, pi, drawn, budget: float) -> dict:
    """Every target's interval after one active round over the rest (sequential.sequential_share with a single
    round: the first round counted exactly, the rest reweighted by 1/π)."""
    return {k: sequential_share(float(y[first].sum()), len(first), len(rest),
                                [RoundData(0.0, float(f_rest[k].sum()), f_rest[k][drawn], pi[drawn], y[rest][drawn].astype(float), budget)],
                                lam=0.0 if chance[k] else None) for k, y in labels.items()}


def active_engine(x, labels, first_n: int, rng: np.random.Generator) -> tuple[int, dict]:
    """score_active's rounds on arrays: the first random round, then rounds whose predictors are refitted on
    the labels of the first round and every earlier round (active.fit_round), drawn over the not-yet-judged
    rest with ppi.active_probabilities on the effective P, each round's budget from the widest interval by
    sequential.round_budget (×GROWTH_MARGIN, at most doubling the labels), the rounds combined by
    sequential.sequential_share, until every interval is under WIDTH or the rest is exhausted. Returns
    (judged samples, {target: Interval})."""
    first, rest, _, chance, widest = _first_round(x, labels, first_n, rng)
    judged = np.zeros(len(rest), dtype=bool)
    rounds: dict = {k: [] for k in labels}
    known = {k: 0.0 for k in labels}
    intervals: dict = {}
    while widest >= WIDTH and not judged.all():
        unknown = np.nonzero(~judged)[0]
        budget = round_budget(first_n + int(judged.sum()), widest, WIDTH, GROWTH_MARGIN, len(unknown))
        train = np.concatenate([first, rest[judged]])
        f_by, f_eff = active_rounds.fit_round({k: (x[train], y[train]) for k, y in labels.items()}, x[rest[unknown]], set(labels))
        pi = active_probabilities(f_eff, budget)
        drawn = poisson_draw(pi, rng)
        for k, y in labels.items():
            got = y[rest[unknown[drawn]]].astype(float)
            rounds[k].append(RoundData(known[k], float(f_by[k].sum()), f_by[k][drawn], pi[drawn], got, budget))
            known[k] += float(got.sum())
        judged[unknown[drawn]] = True
        intervals = {k: sequential_share(float(y[first].sum()), first_n, len(rest), rounds[k], lam=0.0 if chance[k] else None)
                     for k, y in labels.items()}
        widest = max(i.width for i in intervals.values())
    return first_n + int(judged.sum()), intervals


def active_calls(x, labels, first_n: int, seed: int = 0) -> dict:
    """Judged samples for ±2 points with active inference (A), two ways: `grid` — the smallest expected
    budget of one Poisson round on a ×1.15 grid (the same search as C and S; the draws coupled across budgets
    by one uniform per sample) — and `engine` — score_active's own sequential rounds (active_engine)."""
    rng = np.random.default_rng(seed + 4)
    first, rest, f_rest, chance, widest = _first_round(x, labels, first_n, rng)
    f = active_rounds.effective_f([f_rest[k] for k in labels if not chance[k]], len(rest))
    u = rng.random(len(rest))
    grid = first_n if widest < WIDTH else len(x)
    budget = 100.0
    while widest >= WIDTH and budget < len(rest):
        budget = min(budget * 1.15, len(rest))
        pi = active_probabilities(f, budget)
        drawn = np.nonzero(u < pi)[0]
        widest = max(i.width for i in _one_round(labels, first, rest, f_rest, chance, pi, drawn, budget).values())
        grid = first_n + len(drawn)
    engine, _ = active_engine(x, labels, first_n, np.random.default_rng(seed + 5))
    return {"first": first_n, "grid": grid, "engine": engine, "chance": sorted(k for k, v in chance.items() if v)}


def runs_coverage(x, labels, first_n: int, repeats: int, engine, seed: int = 0) -> tuple[float, list[int]]:
    """(share of (run, target) whose final interval holds the true share, each run's judged samples) over
    `repeats` runs of `engine` (active_engine, or random_engine), a fresh first round each."""
    rng = np.random.default_rng(seed + 6)
    hits = total = 0
    calls = []
    for _ in range(repeats):
        judged, final = engine(x, labels, first_n, rng)
        calls.append(judged)
        for k, y in labels.items():
            hits += final[k].low <= y.mean() <= final[k].high
            total += 1
    return hits / total, calls


def coverage(x, labels, n: int, repeats: int, seed: int = 0) -> float:
    """Share of (draw, target) whose PPI++ interval holds the true share, over `repeats` random draws of n."""
    rng = np.random.default_rng(seed + 2)
    hits = total = 0
    for _ in range(repeats):
        for k, (got, _) in intervals(x, labels, rng.choice(len(x), n, replace=False), seed).items():
            hits += got.low <= labels[k].mean() <= got.high
            total += 1
    return hits / total


def random_engine(x, labels, first_n: int, rng: np.random.Generator) -> tuple[int, dict]:
    """score_sampled's rounds under `score --predict --target-width` (the default; --active runs
    active_engine's): a random first round of `first_n`, then random rounds grown from the widest PPI++
    interval by 1/√n × GROWTH_MARGIN, at most ×1.5 a round (sampled.next_size), the predictors cross-fitted
    on all judged samples each round, until every interval is under WIDTH or all are judged. Returns
    (judged samples, {target: Interval})."""
    order, n = rng.permutation(len(x)), first_n
    while True:
        got = {k: p for k, (p, _) in intervals(x, labels, order[:n]).items()}
        widest = max(i.width for i in got.values())
        if widest < WIDTH or n == len(x):
            return n, got
        n = next_size(n, len(x), widest, WIDTH, predicted=True)


def off_goal_filter(x, off: np.ndarray, seed: int = 0, rule=bounded_thresholds) -> dict:
    """The cascade on the off-goal target: FILTER_JUDGED of the samples judged at random, thresholds at
    MIN_PRECISION / MIN_RECALL by `rule` (the engine's ppi.bounded_thresholds; ppi.thresholds, the point
    estimates, before), the band judged; precision/recall of "off-goal" against full judging."""
    rng = np.random.default_rng(seed + 3)
    n = max(50, int(len(x) * FILTER_JUDGED))
    drawn = rng.choice(len(x), n, replace=False)
    model = fit(x[drawn], off[drawn], seed)
    p = model.predict(x)
    t_low, t_high = rule(off[drawn], model.p_oof, MIN_PRECISION, MIN_RECALL)
    known = np.zeros(len(x), bool)
    known[drawn] = True
    band = (p > t_low) & (p < t_high) & ~known
    decision = np.where(known | band, off, p >= t_high)
    tp = int((decision & off).sum())
    est_p, est_r, _ = cascade_quality(off[drawn], model.p_oof, t_low, t_high)
    return {"judged_share": round((n + int(band.sum())) / len(x), 4), "precision": round(tp / max(1, int(decision.sum())), 4),
            "recall": round(tp / max(1, int(off.sum())), 4), "est_precision": est_p, "est_recall": est_r,
            "auc": model.auc, "t_low": t_low, "t_high": t_high}


def taught_filter(x, off: np.ndarray, parts: list[np.ndarray], seed: int = 0, share: float = ROUND_SHARE) -> dict:
    """The off-goal filter as the engine runs it since h28k (predict.cascade with decide.py): FILTER_JUDGED of
    the samples judged at random; off-goal P = Π_k (1 − P_k) of the relevance predictors of `parts` (each a
    subgoal's "scores above off_goal_max" labels, bool (N,)), each taught by the random sample (cross-fitted)
    and every sample judged since; thresholds by the bounded rule from the random sample's out-of-fold P; the
    band judged in rounds of `share` of the samples (at least predict.ROUND_SMALLEST), the most uncertain
    first, refitting after each; precision/recall of "off-goal" against full judging."""
    rng = np.random.default_rng(seed + 3)
    n = max(50, int(len(x) * FILTER_JUDGED))
    drawn = rng.choice(len(x), n, replace=False)
    known = np.zeros(len(x), bool)
    known[drawn] = True
    size = decide.round_size(len(x), share, ROUND_SMALLEST)
    rounds = 0
    while True:
        extra = np.setdiff1d(np.nonzero(known)[0], drawn)
        scores = decide.all_low([decide.taught(x[drawn], y[drawn], x[extra], y[extra], x, seed) for y in parts], off[drawn])
        t_low, t_high = bounded_thresholds(off[drawn], scores.p_oof, MIN_PRECISION, MIN_RECALL)
        band = np.nonzero((scores.p_all > t_low) & (scores.p_all < t_high) & ~known)[0]
        if not len(band):
            break
        known[band[np.argsort(-decide.uncertainty(scores.p_all[band]), kind="stable")][:size]] = True
        rounds += 1
    decision = np.where(known, off, scores.p_all >= t_high)
    tp = int((decision & off).sum())
    return {"judged_share": round(int(known.sum()) / len(x), 4), "precision": round(tp / max(1, int(decision.sum())), 4),
            "recall": round(tp / max(1, int(off.sum())), 4), "rounds": rounds, "t_low": t_low, "t_high": t_high}


def filter_draws(x, off: np.ndarray, draws: int, parts: list[np.ndarray] | None = None) -> dict:
    """The off-goal filter over `draws` random judged samples (seeds 0..draws−1): the engine's (taught_filter,
    with `parts`) and, as before h28k, one predictor fitted on the random sample with the band judged at once
    by the bounded rule and by the point rule: mean judged share (and its range), precision, recall, and the
    share of draws meeting P >= MIN_PRECISION and R >= MIN_RECALL."""
    out = {}
    arms = [("bounded", lambda seed: off_goal_filter(x, off, seed, bounded_thresholds)),
            ("point", lambda seed: off_goal_filter(x, off, seed, thresholds))]
    if parts is not None:
        arms.insert(0, ("taught", lambda seed: taught_filter(x, off, parts, seed)))
    for name, run in arms:
        got = [run(seed) for seed in range(draws)]
        out[name] = {"judged_share": round(float(np.mean([g["judged_share"] for g in got])), 4),
                     "precision": round(float(np.mean([g["precision"] for g in got])), 4),
                     "recall": round(float(np.mean([g["recall"] for g in got])), 4),
                     "min_recall": round(float(min(g["recall"] for g in got)), 4),
                     "judged_min": round(float(min(g["judged_share"] for g in got)), 4),
                     "judged_max": round(float(max(g["judged_share"] for g in got)), 4),
                     "met": round(float(np.mean([g["precision"] >= MIN_PRECISION and g["recall"] >= MIN_RECALL for g in got])), 3)}
    return out


def timing(x, labels, texts: list[str] | None = None) -> dict:
    """Fit time of every target on 2,000 judged samples (5-fold cross-fit) and predict time over 10⁶ samples
    (x's rows tiled), with the peak RSS; with `texts` (the samples' texts, when x has words) also the time to
    hash 10⁶ texts' words (features.words, the texts tiled)."""
    drawn = np.arange(min(2000, len(x)))
    started = time.perf_counter()
    models = [fit(x[drawn], y[drawn]) for y in labels.values()]
    fit_s = time.perf_counter() - started
    block = x[np.resize(np.arange(len(x)), 100_000)]
    started = time.perf_counter()
    for _ in range(10):  # 10 × 10⁵ = 10⁶ samples per target
        for m in models:
            m.predict(block)
    predict_s = (time.perf_counter() - started) / len(models)
    got = {"fit_s_all_targets": round(fit_s, 2), "predict_s_per_target_1e6": round(predict_s, 2)}
    if texts is not None:
        started = time.perf_counter()
        for _ in range(10):
            words([texts[k % len(texts)] for k in range(100_000)])
        got["words_s_1e6"] = round(time.perf_counter() - started, 1)
    return got | {"peak_rss_mb": round(_rss_peak_mb())}


def relevance(labels: dict[str, np.ndarray], oracle: str) -> list[np.ndarray]:
    """The subgoals whose relevance decides off-goal for the engine (decide.all_low): the keyword oracle's six
    (its judge scores a subgoal 5 where the keyword matches, else 1, so relevance is support); the category
    oracle's off-goal is "not a contract clause", a goal whose one subgoal is the contracts category."""
    return list(labels.values()) if oracle == "keyword" else [labels["contracts"]]


def other_arms(x, labels, off: np.ndarray, oracle: str, first_rounds: list[int], args: argparse.Namespace) -> dict:
    """Everything but the calls for ±2 points, for one oracle: the off-goal filter (one draw by each rule,
    then `--filter-draws` draws), the active arm per first round, and for the keyword oracle the coverage
    of C's interval and of the active and random-rounds runs (with their judged samples)."""
    got: dict = {
        "filter": taught_filter(x, off, relevance(labels, oracle)),
        "filter_before": off_goal_filter(x, off),
        "filter_draws": filter_draws(x, off, args.filter_draws, relevance(labels, oracle)),
        "active": [active_calls(x, labels, first) for first in first_rounds],
    }
    if oracle == "keyword":
        got["coverage"] = round(coverage(x, labels, args.coverage_n, args.repeats), 4)
        for arm, repeats, engine in (("active", args.active_repeats, active_engine), ("rounds", args.rounds_repeats, random_engine)):
            if repeats:
                cov, calls = runs_coverage(x, labels, first_rounds[0], repeats, engine)
                got[f"{arm}_coverage"] = round(cov, 4)
                got[f"{arm}_runs_calls"] = {"mean": round(float(np.mean(calls)), 1), "median": float(np.median(calls)),
                                            "min": min(calls), "max": max(calls)}
    return got


def main() -> None:
    """Command line: run the cascade benchmark at each size and print its figures and the `cascade:` line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=200, help="coverage draws per size")
    parser.add_argument("--coverage-n", type=int, default=1000, help="judged samples per coverage draw")
    parser.add_argument("--first-rounds", default=f"{DEFAULT_FIRST_DRAW},400",
                        help="active arm: first random round sizes (the first is the engine's default and gets the coverage runs)")
    parser.add_argument("--active-repeats", type=int, default=100, help="active arm: coverage runs per size (each refits)")
    parser.add_argument("--rounds-repeats", type=int, default=30, help="random rounds (R, the default of --predict --target-width): runs per size")
    parser.add_argument("--filter-draws", type=int, default=10, help="off-goal filter: judged samples drawn per size")
    parser.add_argument("--orders", type=int, default=8, help="random orders for S/C's mean and range (×1.03 grid)")
    parser.add_argument("--calls-only", action="store_true", help="only the calls for ±2 points (C, S and --orders): no A, coverage or filter")
    parser.add_argument("--filter-only", action="store_true", help="only the off-goal filter's --filter-draws draws (each arm)")
    parser.add_argument("--no-words", action="store_true",
                        help="the predictors on the vectors alone (GOALCOVER_PREDICT_WORDS=0; before h28j)")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args()
    first_rounds = [int(v) for v in args.first_rounds.split(",")]
    started = time.perf_counter()
    prompts, outputs = load(args.datasets)
    vp = vectors_of([t for t, _ in prompts], "prompts")
    vo = vectors_of(outputs, "outputs")
    print(f"texts: {len(prompts)} prompts, {len(outputs)} responses embedded (cached) in {time.perf_counter() - started:.1f} s", flush=True)
    report = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        x, keyword, keyword_off, category, category_off = build(size, prompts, outputs, vp, vo)
        texts = None
        if not args.no_words:  # the engine's default: the text's hashed words beside the vector
            texts = joined_texts(size, prompts, outputs)
            x = Features(x, words(texts))
        row: dict = {"n": size, "words": not args.no_words}
        for oracle, labels, off in (("keyword", keyword, keyword_off), ("category", category, category_off)):
            t = time.perf_counter()
            if args.filter_only:
                row[oracle] = {"filter_draws": filter_draws(x, off, args.filter_draws, relevance(labels, oracle)),
                               "seconds": round(time.perf_counter() - t, 1)}
                print(f"n={size:,} {oracle}: {json.dumps(row[oracle])}", flush=True)
                continue
            c, s = calls_needed(x, labels)
            row[oracle] = {
                "shares": {k: round(float(v.mean()), 4) for k, v in labels.items()},
                "auc": {k: round(fit(x[:2000], v[:2000]).auc or 0.5, 3) for k, v in labels.items()},
                "calls_cascade": c, "calls_sample": s, "calls_full": size,
                "orders": calls_over_orders(x, labels, args.orders) if args.orders else None,
            }
            if not args.calls_only:
                row[oracle] |= other_arms(x, labels, off, oracle, first_rounds, args)
            row[oracle]["seconds"] = round(time.perf_counter() - t, 1)
            print(f"n={size:,} {oracle}: {json.dumps(row[oracle])}", flush=True)
        report[size] = row
        if not (args.calls_only or args.filter_only):
            row["timing"] = timing(x, keyword, texts)
            print(f"n={size:,} timing: {json.dumps(row['timing'])}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    last = report[max(report)]["keyword"]
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.filter_only:
        f = last["filter_draws"]["taught"]
        print(f"cascade: filter {f['precision']:.2f}/{f['recall']:.2f} at {100 * f['judged_share']:.1f}% judged "
              f"({100 * f['judged_min']:.1f}–{100 * f['judged_max']:.1f}%), targets met in {f['met']:.0%} of {args.filter_draws} draws")
        return
    if args.calls_only:
        o = last["orders"] or {}
        print(f"cascade: calls {last['calls_cascade']} vs {last['calls_sample']} (sample-only) vs {last['calls_full']} (full); "
              f"S/C over {args.orders} orders {o.get('ratio_mean')} ({o.get('ratio_min')}–{o.get('ratio_max')})")
        return
    f = last["filter"]
    best = last["active"][0]  # the engine's default first round
    active_cov = f" (active {100 * last['active_coverage']:.1f}%)" if "active_coverage" in last else ""
    print(f"cascade: calls {last['calls_cascade']} (active {best['engine']}, first round {best['first']}) vs {last['calls_sample']} "
          f"(sample-only) vs {last['calls_full']} (full), coverage {100 * last['coverage']:.1f}%{active_cov}, "
          f"filter {f['precision']:.2f}/{f['recall']:.2f} at {100 * f['judged_share']:.1f}% judged"
          + (f", S/C {last['orders']['ratio_mean']} over {args.orders} orders" if last["orders"] else "")
          + (f", random rounds {last['rounds_runs_calls']['mean']:.0f} mean ({100 * last['rounds_coverage']:.1f}%)" if "rounds_coverage" in last else ""))


if __name__ == "__main__":
    main()
