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
~/.cache/goalcover/bench_cascade); the statistics are the engine's own (tools/measure/ppi.py), on arrays.

Per size and oracle it reports:
- calls for ±2 points (interval width < 4 points) on every target: with the predictor (PPI++ on a simple
  random sample, cross-fitted) — C; with the sample only (λ = 0) — S; full judging — F = N. Found on one
  random order on a geometric grid of n (×1.15);
- interval coverage of the true share over `--repeats` random draws of `--coverage-n` samples (all targets
  pooled; target 93–97%);
- off-goal filter: a random 4% judged, thresholds at precision 0.9 and recall 0.8 from the out-of-fold P,
  the uncertain band judged; precision and recall of the "off-goal" decisions against full judging, at the share judged;
- fit time (six targets, 5-fold) and predict time over 10⁶ vectors (the engine's batched predict), peak RSS.

Last line: `cascade: calls C vs S (sample-only) vs F (full), coverage K%, filter P/R` for the largest size and
the keyword oracle (C and S: judged samples until every target is at ±2 points).

    python -m goalcover.evals.bench_cascade [--sizes 10000,100000] [--repeats 200] [--coverage-n 1000]
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

from goalcover.tools.measure.ppi import Stratum, cascade_quality, fit, ppi_share, thresholds

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


def build(n: int, prompts, outputs, vp: np.ndarray, vo: np.ndarray, seed: int = 0):
    """n distinct (prompt, response) pairs: vectors (n, 384), keyword labels {target: bool (n,)}, category
    labels {target: bool (n,)}, and each oracle's off-goal labels."""
    picks = np.random.default_rng(seed).choice(len(prompts) * len(outputs), size=n, replace=False)
    pi, oi = picks // len(outputs), picks % len(outputs)
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


def widths(x, labels: dict[str, np.ndarray], order: np.ndarray, n: int, seed: int = 0) -> tuple[float, float]:
    """(widest PPI++ interval, widest sample-only interval) over the targets, from the first n of `order`."""
    drawn = order[:n]
    worst_ppi = worst_sample = 0.0
    for y in labels.values():
        model = fit(x[drawn], y[drawn], seed)
        f_all = model.predict(x)
        f_all[drawn] = model.p_oof
        stratum = Stratum(f_all=f_all, y=y[drawn].astype(float), f=model.p_oof)
        plain = ppi_share([stratum], lam=0.0)
        worst_sample = max(worst_sample, plain.width)
        worst_ppi = max(worst_ppi, plain.width if model.chance else ppi_share([stratum]).width)
    return worst_ppi, worst_sample


def calls_needed(x, labels, seed: int = 0) -> tuple[int, int]:
    """(C, S): the smallest n on a ×1.15 grid whose widest interval is under WIDTH, with and without the
    predictor; N when none is."""
    big_n = len(x)
    order = np.random.default_rng(seed + 1).permutation(big_n)
    found: dict[str, int] = {}
    n = 200
    while len(found) < 2:
        n = min(n, big_n)
        ppi_w, sample_w = widths(x, labels, order, n, seed)
        if ppi_w < WIDTH:
            found.setdefault("C", n)
        if sample_w < WIDTH:
            found.setdefault("S", n)
        if n == big_n:
            found.setdefault("C", big_n)
            found.setdefault("S", big_n)
        n = math.ceil(n * 1.15)
    return found["C"], found["S"]


def coverage(x, labels, n: int, repeats: int, seed: int = 0) -> float:
    """Share of (draw, target) whose PPI++ interval holds the true share, over `repeats` random draws of n."""
    rng = np.random.default_rng(seed + 2)
    hits = total = 0
    for _ in range(repeats):
        drawn = rng.choice(len(x), n, replace=False)
        for y in labels.values():
            model = fit(x[drawn], y[drawn], seed)
            f_all = model.predict(x)
            f_all[drawn] = model.p_oof
            got = ppi_share([Stratum(f_all=f_all, y=y[drawn].astype(float), f=model.p_oof)], lam=0.0 if model.chance else None)
            hits += got.low <= y.mean() <= got.high
            total += 1
    return hits / total


def off_goal_filter(x, off: np.ndarray, seed: int = 0) -> dict:
    """The cascade on the off-goal target: FILTER_JUDGED of the samples judged at random, thresholds at
    MIN_PRECISION, the band judged; precision/recall of "off-goal" against full judging."""
    rng = np.random.default_rng(seed + 3)
    n = max(50, int(len(x) * FILTER_JUDGED))
    drawn = rng.choice(len(x), n, replace=False)
    model = fit(x[drawn], off[drawn], seed)
    p = model.predict(x)
    t_low, t_high = thresholds(off[drawn], model.p_oof, MIN_PRECISION, MIN_RECALL)
    known = np.zeros(len(x), bool)
    known[drawn] = True
    band = (p > t_low) & (p < t_high) & ~known
    decision = np.where(known | band, off, p >= t_high)
    tp = int((decision & off).sum())
    est_p, est_r, _ = cascade_quality(off[drawn], model.p_oof, t_low, t_high)
    return {"judged_share": round((n + int(band.sum())) / len(x), 4), "precision": round(tp / max(1, int(decision.sum())), 4),
            "recall": round(tp / max(1, int(off.sum())), 4), "est_precision": est_p, "est_recall": est_r,
            "auc": model.auc, "t_low": t_low, "t_high": t_high}


def timing(x, labels) -> dict:
    """Fit time of every target on 2,000 judged samples (5-fold cross-fit) and predict time over 10⁶ vectors
    (x tiled), with the peak RSS."""
    drawn = np.arange(min(2000, len(x)))
    started = time.perf_counter()
    models = [fit(x[drawn], y[drawn]) for y in labels.values()]
    fit_s = time.perf_counter() - started
    block = np.resize(x, (100_000, x.shape[1])).astype(np.float32)
    started = time.perf_counter()
    for _ in range(10):  # 10 × 10⁵ = 10⁶ vectors per target
        for m in models:
            m.predict(block)
    predict_s = (time.perf_counter() - started) / len(models)
    return {"fit_s_all_targets": round(fit_s, 2), "predict_s_per_target_1e6": round(predict_s, 2), "peak_rss_mb": round(_rss_peak_mb())}


def main() -> None:
    """Command line: run the cascade benchmark at each size and print its figures and the `cascade:` line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=200, help="coverage draws per size")
    parser.add_argument("--coverage-n", type=int, default=1000, help="judged samples per coverage draw")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args()
    started = time.perf_counter()
    prompts, outputs = load(args.datasets)
    vp = vectors_of([t for t, _ in prompts], "prompts")
    vo = vectors_of(outputs, "outputs")
    print(f"texts: {len(prompts)} prompts, {len(outputs)} responses embedded (cached) in {time.perf_counter() - started:.1f} s", flush=True)
    report = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        x, keyword, keyword_off, category, category_off = build(size, prompts, outputs, vp, vo)
        row: dict = {"n": size}
        for oracle, labels, off in (("keyword", keyword, keyword_off), ("category", category, category_off)):
            t = time.perf_counter()
            c, s = calls_needed(x, labels)
            row[oracle] = {
                "shares": {k: round(float(v.mean()), 4) for k, v in labels.items()},
                "auc": {k: round(fit(x[:2000], v[:2000]).auc or 0.5, 3) for k, v in labels.items()},
                "calls_cascade": c, "calls_sample": s, "calls_full": size,
                "filter": off_goal_filter(x, off),
            }
            if oracle == "keyword":
                row[oracle]["coverage"] = round(coverage(x, labels, args.coverage_n, args.repeats), 4)
            row[oracle]["seconds"] = round(time.perf_counter() - t, 1)
            print(f"n={size:,} {oracle}: {json.dumps(row[oracle])}", flush=True)
        row["timing"] = timing(x, keyword)
        print(f"n={size:,} timing: {json.dumps(row['timing'])}", flush=True)
        report[size] = row
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    last = report[max(report)]["keyword"]
    f = last["filter"]
    print(f"total {time.perf_counter() - started:.0f} s")
    print(f"cascade: calls {last['calls_cascade']} vs {last['calls_sample']} (sample-only) vs {last['calls_full']} (full), "
          f"coverage {100 * last['coverage']:.1f}%, filter {f['precision']:.2f}/{f['recall']:.2f}")


if __name__ == "__main__":
    main()
