"""Fit a probe judge's P(yes) cut points (GOALCOVER_PROBE_THRESHOLDS) from probe runs of the experiments.

A small model's P(yes) is compressed: Qwen2.5-Coder-1.5B put 0.23-0.54 on every pair here, so the default
cut points (0.125/0.375/0.625/0.875, made for a model that says yes or no with conviction) call nearly
everything 2 or 3 and nothing supported. This reads what the model answered on pairs whose answer is
known, and places the cut points where its answers separate:

- positives (the sample has what the subgoal needs): judge_separation's termination clauses on S1, and
  in corruption, the clean samples on the target subgoal of each corruption that applies to them;
- negatives (it does not): judge_separation's coding tasks on S1, and the same samples corrupted, on
  their target subgoal.

Cut points: t3 (support, verdict 4, weighted 3.5) is the P(yes) that best separates positives from
negatives (Youden's J, the mean of the two accuracies; the midpoint between the two neighbouring values);
t1 and t2 are the negatives' median and 75th percentile, t4 the positives' median (the 1-5 scale's
"absent", "mentioned", "teaches", "exemplary" anchored on what the model says to each), each kept at least
0.005 from its neighbours. The fit is in-sample: the accuracy it reports on the pairs it was fitted on is
optimistic; the AUC is not. `--fit-on` fits on one source and only checks the other: a model that cannot
tell a corrupted sample from a clean one (AUC near 0.5 there) would otherwise drag the cut points into
noise.

    python -m goalcover.evals.probe_calibration --separation evals/results/judge_separation-M-probe.json \
        --corruption evals/results/corruption-M-probe.json [--fit-on judge_separation] [--out evals/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from goalcover.evals.harness import RESULTS, save, table
from goalcover.evals.judge_separation import auc
from goalcover.tools.judge.probe import p_from_weighted, to_verdict

DEFAULT_CUTS = (0.125, 0.375, 0.625, 0.875)
GAP = 0.005


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if len(values) > 1 else values[0]


def youden_cut(positives: list[float], negatives: list[float]) -> tuple[float, float]:
    """(cut, balanced accuracy): the threshold c maximising (share of positives >= c + share of
    negatives < c) / 2, placed midway between the two observed values it falls between."""
    values = sorted(set(positives) | set(negatives))
    best = (0.0, values[0])
    for low, high in zip([values[0] - 2 * GAP, *values], values):
        cut = (low + high) / 2
        score = (sum(p >= cut for p in positives) / len(positives) + sum(n < cut for n in negatives) / len(negatives)) / 2
        if score > best[0]:
            best = (score, cut)
    return best[1], best[0]


def fit_cut_points(positives: list[float], negatives: list[float]) -> tuple[float, float, float, float]:
    """Four ascending cut points in (0, 1) from P(yes) on known-positive and known-negative pairs (see the
    module docstring). Raises ValueError with fewer than two of either."""
    if len(positives) < 2 or len(negatives) < 2:
        raise ValueError(f"need at least 2 positive and 2 negative pairs; got {len(positives)} and {len(negatives)}")
    t3, _ = youden_cut(positives, negatives)
    t1 = min(statistics.median(negatives), t3 - 2 * GAP)
    t2 = min(max(_quantile(negatives, 0.75), t1 + GAP), t3 - GAP)
    t4 = max(statistics.median(positives), t3 + GAP)
    cuts = [max(GAP, t1), t2, t3, min(1 - GAP, t4)]
    return tuple(round(c, 4) for c in cuts)  # type: ignore[return-value]


def pairs_from_separation(report: dict) -> tuple[list[float], list[float]]:
    """(positives, negatives) P(yes) of a judge_separation probe run."""
    w = report["weighted"]
    return list(w["p_yes_relevant"]), list(w["p_yes_irrelevant"])


def pairs_from_corruption(report: dict) -> tuple[list[float], list[float]]:
    """(positives, negatives) P(yes) of a corruption probe run: clean and corrupted scores of each
    corruption's target subgoal, from the per-sample weighted scores (under the cut points it ran with)."""
    cuts = report.get("probe_thresholds") or DEFAULT_CUTS
    positives, negatives = [], []
    for domain in report["domains"]:
        for target, by_sample in domain.get("weighted", {}).get("scores", {}).items():
            for scores in by_sample.values():
                clean, corrupted = scores.get(target, [None, None])
                if clean is not None and corrupted is not None:
                    positives.append(p_from_weighted(clean, cuts))
                    negatives.append(p_from_weighted(corrupted, cuts))
    return positives, negatives


def _accuracy(positives: list[float], negatives: list[float], at: tuple[float, ...]) -> float:
    """Share of pairs on the right side of support: verdict >= 4 for positives, < 4 for negatives."""
    right = sum(to_verdict(p, at)[0] >= 4 for p in positives) + sum(to_verdict(p, at)[0] < 4 for p in negatives)
    return round(right / (len(positives) + len(negatives)), 3)


def calibrate(separation: dict | None, corruption: dict | None, fit_on: str = "all") -> dict:
    """The cut points fitted on the pairs of `fit_on` ("all", "judge_separation" or "corruption"), and
    what they do on every source's pairs (AUC of P(yes), support accuracy under the default and the
    fitted cut points). Raises ValueError when the sources to fit on hold too few pairs."""
    read = {"judge_separation": (separation, pairs_from_separation), "corruption": (corruption, pairs_from_corruption)}
    pairs = {name: reader(report) for name, (report, reader) in read.items() if report is not None}
    fitted = [name for name in pairs if fit_on in ("all", name)]
    if not fitted:
        raise ValueError(f"--fit-on {fit_on}: no such results file given")
    positives = [p for name in fitted for p in pairs[name][0]]
    negatives = [n for name in fitted for n in pairs[name][1]]
    cuts = fit_cut_points(positives, negatives)
    model = (separation or corruption or {}).get("model", "?")
    sources = [{"experiment": name, "fitted_on": name in fitted, "positives": len(pos), "negatives": len(neg),
                "auc": round(auc(pos, neg), 3), "support_accuracy_default": _accuracy(pos, neg, DEFAULT_CUTS),
                "support_accuracy_calibrated": _accuracy(pos, neg, cuts)} for name, (pos, neg) in pairs.items()]

    def verdicts(values: list[float], at: tuple[float, ...]) -> dict[int, int]:
        found = [to_verdict(p, at)[0] for p in values]
        return {v: found.count(v) for v in range(1, 6)}

    def accuracy(at: tuple[float, ...]) -> float:
        return _accuracy(positives, negatives, at)

    return {
        "experiment": "probe_calibration",
        "model": model,
        "fit_on": fitted,
        "sources": sources,
        "positives": len(positives),
        "negatives": len(negatives),
        "auc": round(auc(positives, negatives), 3),
        "p_yes": {"positives": {"median": round(statistics.median(positives), 4), "min": round(min(positives), 4), "max": round(max(positives), 4)},
                  "negatives": {"median": round(statistics.median(negatives), 4), "min": round(min(negatives), 4), "max": round(max(negatives), 4)}},
        "cut_points": list(cuts),
        "setting": f"GOALCOVER_PROBE_THRESHOLDS='{json.dumps(list(cuts))}'",
        "support_accuracy": {"default": accuracy(DEFAULT_CUTS), "calibrated": accuracy(cuts)},
        "verdicts": {"default": {"positives": verdicts(positives, DEFAULT_CUTS), "negatives": verdicts(negatives, DEFAULT_CUTS)},
                     "calibrated": {"positives": verdicts(positives, cuts), "negatives": verdicts(negatives, cuts)}},
    }


def markdown(report: dict) -> str:
    """The fitted cut points and each experiment's figures as a Markdown section."""
    rows = [[s["experiment"] + (" (fitted on)" if s["fitted_on"] else ""), s["positives"], s["negatives"], s["auc"],
             s["support_accuracy_default"], s["support_accuracy_calibrated"]] for s in report["sources"]]
    v = report["verdicts"]
    dist = [[name, *(v[name][side][k] for side in ("positives", "negatives") for k in range(1, 6))] for name in ("default", "calibrated")]
    return "\n".join([
        f"### probe calibration — {report['model']}\n",
        table(["pairs from", "positives", "negatives", "AUC of P(yes)", "support accuracy, default cuts", "… fitted cuts"], rows),
        "",
        f"Fitted on {' + '.join(report['fit_on'])}: {report['positives']} positive and {report['negatives']} negative pairs, AUC {report['auc']}. P(yes): positives median {report['p_yes']['positives']['median']} ({report['p_yes']['positives']['min']}–"
        f"{report['p_yes']['positives']['max']}), negatives median {report['p_yes']['negatives']['median']} "
        f"({report['p_yes']['negatives']['min']}–{report['p_yes']['negatives']['max']}).",
        f"Cut points: **{report['cut_points']}** — `{report['setting']}`. Support accuracy (verdict ≥ 4 on "
        f"positives, < 4 on negatives; in-sample): default cut points {report['support_accuracy']['default']}, "
        f"calibrated {report['support_accuracy']['calibrated']}.",
        "",
        table(["cut points", *(f"pos {k}" for k in range(1, 6)), *(f"neg {k}" for k in range(1, 6))], dist),
    ])


def main(argv: list[str] | None = None) -> dict:
    """Fit the probe thresholds from the command line; writes and returns the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--separation", type=Path, help="a judge_separation results file of a probe run")
    p.add_argument("--corruption", type=Path, help="a corruption results file of a probe run")
    p.add_argument("--fit-on", choices=["all", "judge_separation", "corruption"], default="all",
                   help="the pairs the cut points are fitted on (the others are only checked against them)")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the results files")
    args = p.parse_args(argv)
    if not args.separation and not args.corruption:
        p.error("give --separation, --corruption or both")
    read = lambda path: json.loads(path.read_text()) if path else None  # noqa: E731
    try:
        report = calibrate(read(args.separation), read(args.corruption), args.fit_on)
    except ValueError as error:
        p.error(str(error))
    save(args.out, "probe_calibration", report, markdown(report))
    return report


if __name__ == "__main__":
    main()
