"""How far `score --predict` can go on bench_cascade's data at one size: two limits of predictors of this kind,
measured, so a target the benchmark misses can be told apart from a rule that could do better.

1. Filter: the fewest samples judged for off-goal filtering at precision ≥ 0.9 and recall ≥ 0.8 against full
   judging, when the predictor is fitted on a share r judged at random (the engine's logistic regression on
   the embeddings) and the band's two thresholds are chosen with every sample's true label — an oracle that
   no threshold rule has (the engine sets them from the judged sample, ppi.bounded_thresholds). Judged
   samples are decided by their labels, the rest below the band "on goal", above it "off goal". Thresholds
   are searched on a grid of 1,000 quantiles of the unjudged samples' probabilities.
2. Calls: per target, the squared ratio of the sample-only interval's width to the PPI++ interval's
   (ppi.ppi_share, the engine's formulas) with n judged at random — the factor by which the predictor cuts
   the judged samples one interval needs (about S/C at that n). For the target with the widest sample-only
   interval, the same ratio for variants of the predictor: regularisation C, standardised or PCA-whitened
   vectors (statistics over all N vectors, which are free), 10 folds instead of 5, an RBF-kernel SVC.
3. Representations (`--representations`): the same ratio for the widest target, and the off-goal
   predictor's AUC (fitted on 4% judged at random, on the rest), with three vectors per sample: the
   benchmark's (the normalised sum of the prompt's and the response's vectors), the engine's (the joined
   text "Instruction: …\n\nResponse: …" embedded whole, as ingest does; 10⁴ texts embed in ~70 s here,
   cached), and the two parts' vectors side by side (768-d, which ingest does not store); and the benchmark's
   and the engine's vectors each with the text's hashed words beside them (features.words: what the engine
   learns from by default since h28j). With the off-goal AUC, the filter's floor of point 1 at 4% judged.

`python -m goalcover.evals.cascade_limits [--size 10000] [--draws 3] [--judged 1000]`; the last line reads
`limits: filter >= J% judged at best (oracle thresholds), widest target T: V× (engine), best variant W×`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from goalcover.evals.bench_cascade import DEFAULT_DATASETS, MIN_PRECISION, MIN_RECALL, build, joined_texts, load, pairs, vectors_of
from goalcover.tools.measure.features import Features, words
from goalcover.tools.measure.ppi import Stratum, fit, ppi_share

GRID = 1000
RANDOM_SHARES = (0.04, 0.06, 0.08)
ENGINE = "engine (C=10, 5 folds)"  # the variant that is ppi.fit's defaults


def min_judged(p: np.ndarray, y: np.ndarray, judged: np.ndarray, min_precision: float = MIN_PRECISION,
               min_recall: float = MIN_RECALL, grid: int = GRID) -> int | None:
    """The fewest samples judged (the `judged` ones plus a band) for a cascade on probabilities `p` (N,) to
    reach `min_precision` and `min_recall` on labels `y` (N,) bool, with the band's thresholds chosen knowing
    `y`; None when no band on the grid does. Judged samples are decided by their labels; among the others, those
    below the band are decided negative and those above it positive. Thresholds on `grid` quantiles."""
    y = np.asarray(y, dtype=bool)
    rest = np.flatnonzero(~judged)
    ys = y[rest[np.argsort(p[rest], kind="stable")]]
    cum = np.concatenate([[0], np.cumsum(ys)])
    m, pos_total, pos_judged = len(ys), int(y.sum()), int(y[judged].sum())
    if pos_total == 0:
        return int(judged.sum())
    cuts = np.unique(np.round(np.linspace(0, m, grid + 1)).astype(int))
    i, j = np.meshgrid(cuts, cuts, indexing="ij")  # band = sorted positions [i, j)
    ok = i <= j
    found = pos_judged + (cum[j] - cum[i]) + (cum[m] - cum[j])  # positives decided positive
    decided = pos_judged + (cum[j] - cum[i]) + (m - j)
    ok &= found >= min_recall * pos_total
    ok &= found >= min_precision * np.maximum(decided, 1)
    if not ok.any():
        return None
    return int(judged.sum()) + int((j - i)[ok].min())


def filter_limit(x: np.ndarray, off: np.ndarray, draws: int, shares=RANDOM_SHARES, seed: int = 0) -> dict:
    """{share judged at random: [fewest judged as a share of N, per draw]} (see min_judged) and the
    predictor's AUC per draw."""
    n = len(off)
    got = {}
    for share in shares:
        judged_share, aucs = [], []
        for draw in range(draws):
            drawn = np.random.default_rng(seed + draw).choice(n, int(share * n), replace=False)
            model = fit(x[drawn], off[drawn], seed=draw)
            mask = np.zeros(n, dtype=bool)
            mask[drawn] = True
            best = min_judged(model.predict(x), off, mask)
            judged_share.append(None if best is None else round(best / n, 4))
            aucs.append(round(model.auc or 0.5, 3))
        got[str(share)] = {"judged": judged_share, "auc": aucs}
    return got


def saving(x: np.ndarray, y: np.ndarray, drawn: np.ndarray, **fit_args) -> float:
    """(sample-only width / PPI++ width)² for target `y` from the judged positions `drawn`, cross-fitted as
    the engine does (ppi.fit with `fit_args`); 1.0 where the predictor is no better than chance."""
    model = fit(x[drawn], y[drawn], **fit_args)
    if model.chance:
        return 1.0
    return _squared_ratio(model.predict(x), y, drawn, model.p_oof)


def _squared_ratio(f_all: np.ndarray, y: np.ndarray, drawn: np.ndarray, p_oof: np.ndarray) -> float:
    """(sample-only width / PPI++ width)² with predictions `f_all` (N,) for every sample, the judged ones
    (`drawn`) replaced by their out-of-fold `p_oof` (ppi.ppi_share's interval)."""
    f_all = np.array(f_all, dtype=float)
    f_all[drawn] = p_oof
    got = ppi_share([Stratum(f_all=f_all, y=y[drawn].astype(float), f=p_oof)])
    return float((got.classical_width / got.width) ** 2) if got.width > 0 else float("inf")


def kernel_saving(x: np.ndarray, y: np.ndarray, drawn: np.ndarray, seed: int = 0, folds: int = 5) -> float:
    """saving() for an RBF-kernel SVC with Platt-scaled probabilities (scikit-learn's
    CalibratedClassifierCV(SVC(), ensemble=False), sigmoid), cross-fitted as ppi.fit is: out-of-fold
    probabilities for the judged samples, the fold models' mean for all."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC

    yd = y[drawn]
    p_oof, f_all = np.empty(len(drawn)), np.zeros(len(x))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x[drawn], yd):
        model = CalibratedClassifierCV(SVC(C=10.0), ensemble=False).fit(x[drawn][train], yd[train])
        p_oof[test] = model.predict_proba(x[drawn][test])[:, 1]
        f_all += model.predict_proba(x)[:, 1] / folds
    return _squared_ratio(f_all, y, drawn, p_oof)


def variants(x: np.ndarray) -> dict[str, tuple[np.ndarray, dict]]:
    """name -> (features (N, d), ppi.fit arguments): the engine's predictor and its variants."""
    centred = x - x.mean(axis=0)
    standardised = (centred / np.maximum(centred.std(axis=0), 1e-4)).astype(np.float32)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    keep = s > 1e-3 * s[0]
    whitened = (centred @ vt[keep].T / (s[keep] / np.sqrt(len(x)))).astype(np.float32)
    return {
        ENGINE: (x, {}),
        "C=3": (x, {"c": 3.0}),
        "C=30": (x, {"c": 30.0}),
        "10 folds": (x, {"folds": 10}),
        "standardised, C=0.03": (standardised, {"c": 0.03}),
        "whitened, C=0.03": (whitened, {"c": 0.03}),
    }


def calls_limit(x: np.ndarray, labels: dict[str, np.ndarray], judged: int, draws: int, seed: int = 0,
                kernel: bool = True) -> dict:
    """{"targets": {target: {"share", "saving": [per draw]}}, "widest": target, "variants": {name: [per draw]}};
    `kernel` adds the RBF SVC variant (kernel_saving; its prediction over N is a kernel against every support
    vector: seconds at 10⁵, too slow for the engine at 10⁶)."""
    n = len(x)
    orders = [np.random.default_rng(seed + d).choice(n, judged, replace=False) for d in range(draws)]
    targets = {k: {"share": round(float(y.mean()), 4), "saving": [round(saving(x, y, o, seed=d), 3) for d, o in enumerate(orders)]}
               for k, y in labels.items()}
    widest = max(labels, key=lambda k: labels[k].mean() * (1 - labels[k].mean()))
    found = {name: targets[widest]["saving"] if name == ENGINE else  # the engine's: computed above
             [round(saving(feats, labels[widest], o, seed=d, **args), 3) for d, o in enumerate(orders)]
             for name, (feats, args) in variants(x).items()}
    if kernel:
        found["RBF SVC, C=10"] = [round(kernel_saving(x, labels[widest], o, seed=d), 3) for d, o in enumerate(orders)]
    return {"targets": targets, "widest": widest, "variants": found}


def representations(prompts, outputs, vp: np.ndarray, vo: np.ndarray, y: np.ndarray, off: np.ndarray, judged: int,
                    draws: int, seed: int = 0) -> dict:
    """{name: {"saving": [per draw], "off_auc": [per draw], "off_floor": [per draw]}} for the widest target's labels `y` (N,) and the
    off-goal labels `off` (N,) of bench_cascade.build's samples, with each representation of the samples
    (see the module's point 3): saving() at `judged` random samples; the off-goal AUC of a predictor fitted
    on 4% judged at random, measured on the samples not judged, and with it the filter's floor (min_judged, as
    a share of N)."""
    from sklearn.metrics import roc_auc_score

    pi, oi = pairs(len(y), prompts, outputs, seed)
    summed = vp[pi] + vo[oi]
    joined = joined_texts(len(y), prompts, outputs, seed)
    found = {
        "sum of the parts' vectors (the benchmark's)": summed / np.linalg.norm(summed, axis=1, keepdims=True),
        "joined text (the engine's)": vectors_of(joined, "joined"),
        "the parts' vectors side by side": np.hstack([vp[pi], vo[oi]]) / np.sqrt(2),
    }
    hashed = words(joined)
    found["sum of the parts' vectors + words (bench_cascade's)"] = Features(found["sum of the parts' vectors (the benchmark's)"], hashed)
    found["joined text + words (the engine's)"] = Features(found["joined text (the engine's)"], hashed)
    n, report = len(y), {}
    for name, x in found.items():
        x = x if isinstance(x, Features) else x.astype(np.float32)
        row = {"saving": [], "off_auc": [], "off_floor": []}
        for d in range(draws):
            rng = np.random.default_rng(seed + d)
            row["saving"].append(round(saving(x, y, rng.choice(n, judged, replace=False), seed=d), 3))
            few = rng.choice(n, int(RANDOM_SHARES[0] * n), replace=False)
            rest = np.setdiff1d(np.arange(n), few)
            p = fit(x[few], off[few], seed=d).predict(x)
            row["off_auc"].append(round(float(roc_auc_score(off[rest], p[rest])), 3))
            known = np.zeros(n, dtype=bool)
            known[few] = True
            floor = min_judged(p, off, known)
            row["off_floor"].append(None if floor is None else round(floor / n, 4))
        report[name] = row
    return report


def main(argv: list[str] | None = None) -> dict:
    """Command line: both limits at one size on the keyword oracle; prints them, writes JSON with --out."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--draws", type=int, default=3, help="random draws per setting")
    parser.add_argument("--judged", type=int, default=1000, help="judged samples for the calls limit")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--representations", action="store_true",
                        help="only point 3: the widest target's saving and the off-goal AUC per representation")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    prompts, outputs = load(args.datasets)
    vp, vo = vectors_of([t for t, _ in prompts], "prompts"), vectors_of(outputs, "outputs")
    x, keyword, keyword_off, _, _ = build(args.size, prompts, outputs, vp, vo)
    if args.representations:
        return _print_representations(args, prompts, outputs, vp, vo, keyword, keyword_off, started)
    report = {"size": args.size, "off_share": round(float(keyword_off.mean()), 4),
              "filter": filter_limit(x, keyword_off, args.draws), "calls": calls_limit(x, keyword, args.judged, args.draws)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    for share, row in report["filter"].items():
        print(f"filter, {float(share):.0%} judged at random: fewest judged {row['judged']} (AUC {row['auc']})")
    calls = report["calls"]
    for k, row in calls["targets"].items():
        print(f"calls, {k} (share {row['share']:.2f}): saving {row['saving']}")
    for name, row in calls["variants"].items():
        print(f"calls, {calls['widest']} {name}: saving {row} (mean {np.mean(row):.2f})")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    best_filter = min((v for row in report["filter"].values() for v in row["judged"] if v is not None), default=None)
    means = {name: float(np.mean(row)) for name, row in calls["variants"].items()}
    engine = means.pop(ENGINE)
    print(f"total {report['seconds']:.0f} s")
    print(f"limits: filter >= {100 * best_filter:.1f}% judged at best (oracle thresholds), widest target {calls['widest']}: "
          f"{engine:.2f}× (engine), best variant {max(means.values()):.2f}× ({max(means, key=means.get)})"
          if best_filter is not None else "limits: no band meets the filter targets")
    return report


def _print_representations(args, prompts, outputs, vp, vo, keyword: dict, off: np.ndarray, started: float) -> dict:
    """main()'s --representations: measure, print, write JSON with --out; the last line names the best."""
    widest = max(keyword, key=lambda k: keyword[k].mean() * (1 - keyword[k].mean()))
    found = representations(prompts, outputs, vp, vo, keyword[widest], off, args.judged, args.draws)
    report = {"size": args.size, "widest": widest, "judged": args.judged, "representations": found,
              "seconds": round(time.perf_counter() - started, 1)}
    for name, row in found.items():
        print(f"{name}: {widest} saving {row['saving']} (mean {np.mean(row['saving']):.2f}), "
              f"off-goal AUC {row['off_auc']} (mean {np.mean(row['off_auc']):.3f}), filter floor {row['off_floor']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    best = max(found, key=lambda k: np.mean(found[k]["saving"]))
    print(f"total {report['seconds']:.0f} s")
    print(f"representations: widest target {widest} saves {np.mean(found[best]['saving']):.2f}× at best ({best})")
    return report


if __name__ == "__main__":
    main()
