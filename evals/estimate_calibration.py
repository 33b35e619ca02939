"""Are the estimate's 95% intervals honest? Score a whole dataset with a deterministic judge, then draw many
stratified samples of each size and count how often the full-data share falls inside each interval.

The judge is the fake endpoint with keyword rules (a subgoal scores 5 where its pattern matches the
sample, else 1): deterministic, so the full-data share is known exactly and any miss is the estimator's.
Each size uses one design — strata from the sample's source and embedding clusters, as
`goalcover score --sample N` builds them — and REPS independent draws from it (design-based inference:
the randomness is the draw). Reported per size: the share of draws whose interval holds the truth, per
subgoal (target 93–97%), and the mean interval width in points. Then the sample size a ±5-point interval
needs (Cochran's n₀ = z²p(1−p)/0.05², with the finite population correction, at the least favourable
subgoal share), checked by drawing at that size, and the calls saved against a full run.

    python -m goalcover.evals.estimate_calibration [--dataset contracts] [--reps 200] [--sizes 50,100,200,400] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from goalcover.testing import ChatRequest, FakeOpenAI, Reply
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import sample_scores
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.measure.estimate import estimate
from goalcover.tools.core.goal import current_goal, load_goal_file, save_goal
from goalcover.tools.measure.strata import SampleDesign, allocate, make_strata, sample_sources, sample_vectors, shuffle
from goalcover.tools.core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SFT = ROOT / "tests" / "data" / "sft"
RESULTS = ROOT / "evals" / "results"
# Keyword judges per dataset: (file, goal, subgoal id -> pattern).
DATASETS = {
    "contracts": (SFT / "contracts_alpaca.jsonl", ROOT / "evals" / "goals" / "contracts.yaml", {
        "S1": r"terminat|suspend",
        "S2": r"liab|warrant|indemn",
        "S3": r"personal (data|information)|privacy",
        "S4": r"(change|modif)\w* (to )?(these|the|this) (terms|agreement)",
        "S5": r"arbitrat|dispute|governing law|class action",
    }),
}
SAMPLE_BLOCK = re.compile(r'<sample id="([^"]*)">\n(.*)\n</sample>', re.DOTALL)


def keyword_judge(patterns: dict[str, str], *, explain: bool = False):
    """A fake-endpoint rule: 5 where the subgoal's pattern matches the sample text, else 1 (batched shape).
    With `explain`, each explanation says whether the sample has or lacks the subgoal (gap analysis
    clusters them); without, it is "keyword judge"."""
    compiled = {sid: re.compile(p, re.IGNORECASE) for sid, p in patterns.items()}

    def rule(req: ChatRequest):
        match = SAMPLE_BLOCK.search(req.text or "")
        if match is None or req.schema_name != "judgment":
            return None
        text = match.group(2)
        found = {sid: bool(compiled[sid].search(text)) for sid in (req.schema or {}).get("properties", {})}
        return Reply.json({sid: {"explanation": f"keyword judge: {'has' if has else 'lacks'} {sid}" if explain else "keyword judge",
                                 "score": 5 if has else 1} for sid, has in found.items()})

    return rule


def needed_n(p: float, population: int, half_width: float = 0.05, confidence: float = 0.95) -> int:
    """Cochran's sample size for a ±half_width interval on a share p, with the finite population correction
    (Cochran 1977, §4.4): n₀ = z²p(1−p)/d², n = n₀ / (1 + (n₀ − 1)/N)."""
    from scipy import stats

    z = stats.norm.ppf(0.5 + confidence / 2)
    n0 = z * z * p * (1 - p) / half_width**2
    return math.ceil(n0 / (1 + (n0 - 1) / population))


def calibrate(ws: Workspace, sizes: list[int], reps: int, settings) -> dict:
    """Coverage and widths per size (see the module docstring)."""
    sources = sample_sources(ws)
    scores, _ = sample_scores(ws, explanations=False)
    plain = {i: {g: v for g, (v, _) in per.items()} for i, per in scores.items()}
    ids = [g.id for g in current_goal(ws).subgoals]
    population = len(sources)
    truth = {g: sum(per[g] >= settings.support_threshold for per in plain.values()) / population for g in ids}
    vectors = sample_vectors(ws, list(sources))
    rows = {}
    for n in sizes:
        if n >= population:
            continue
        base = make_strata(ws, sources, n, seed=0, vectors=vectors)
        drawn = allocate({h: len(v) for h, v in base.items()}, n)
        hits = {g: 0 for g in ids}
        widths = {g: [] for g in ids}
        started = time.monotonic()
        for rep in range(reps):
            design = SampleDesign(seed=rep, dataset="calibration", strata=shuffle(base, 1000 + rep), drawn=drawn)
            est = estimate(design, plain, ids, support=settings.support_threshold, weak_share=settings.weak_share,
                           weak_relative=settings.weak_relative)
            for row in est.subgoals:
                hits[row.id] += row.ci_low <= truth[row.id] <= row.ci_high
                widths[row.id].append((row.ci_high - row.ci_low) * 100)
        rows[n] = {
            "strata": len(base),
            "coverage_pct": {g: round(100 * hits[g] / reps, 1) for g in ids},
            "mean_width_pts": {g: round(float(np.mean(widths[g])), 2) for g in ids},
            "max_mean_width_pts": round(max(float(np.mean(w)) for w in widths.values()), 2),
            "seconds": round(time.monotonic() - started, 1),
        }
    return {"population": population, "truth": {g: round(p, 4) for g, p in truth.items()}, "sizes": rows}


def table(result: dict, reps: int) -> str:
    """The Markdown table the run prints."""
    ids = list(result["truth"])
    lines = [
        f"Population {result['population']} samples; full-data shares: "
        + ", ".join(f"{g} {100 * p:.1f}%" for g, p in result["truth"].items()),
        "",
        f"| n | strata | {' | '.join(f'{g} in CI' for g in ids)} | {' | '.join(f'{g} width' for g in ids)} |",
        f"|---:|---:|{'---:|' * (2 * len(ids))}",
    ]
    for n, row in result["sizes"].items():
        lines.append(f"| {n} | {row['strata']} | " + " | ".join(f"{row['coverage_pct'][g]:.1f}%" for g in ids) + " | "
                     + " | ".join(f"{row['mean_width_pts'][g]:.1f}" for g in ids) + " |")
    lines.append(f"\n(in CI: share of {reps} draws whose 95% interval holds the full-data share; width: mean interval width in points)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Run the experiment from the command line; writes and returns the report (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="contracts")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--sizes", default="50,100,200,400")
    parser.add_argument("--limit", type=int, help="only the first N records (the plumbing tests)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    path, goal_file, patterns = DATASETS[args.dataset]
    sizes = [int(x) for x in args.sizes.split(",")]
    with FakeOpenAI(rules=[keyword_judge(patterns)]) as fake, tempfile.TemporaryDirectory() as tmp:
        if args.limit:
            head = Path(tmp) / path.name
            head.write_text("".join(path.read_text().splitlines(keepends=True)[: args.limit]))
            path = head
        with Workspace.open(Path(tmp) / "ws", model="fake-model", base_url=fake.base_url, api_key="test") as ws:
            ingest_file(ws, path)
            save_goal(ws, load_goal_file(goal_file))
            full = asyncio.run(scoring.score(ws))
            result = calibrate(ws, sizes, args.reps, ws.settings)
            result["full_run_calls"] = full.calls
            worst = max(result["truth"].values(), key=lambda p: p * (1 - p))
            n5 = needed_n(worst, result["population"])
            check = calibrate(ws, [n5], args.reps, ws.settings)["sizes"].get(n5)
    result["plus_minus_5"] = {
        "least_favourable_share": worst, "n": n5, "check": check,
        "calls_saved_pct": round(100 * (1 - n5 / result["population"]), 1),
        # The same width on bigger datasets: n hardly grows with N, so the saving does.
        "n_for_population": {N: needed_n(worst, N) for N in (10_000, 100_000, 1_000_000)},
    }
    text = table(result, args.reps)
    p5 = result["plus_minus_5"]
    text += (f"\n\n±5 points (width 10) at the least favourable share {100 * worst:.1f}%: n = {n5} of "
             f"{result['population']} ({p5['calls_saved_pct']}% of the full run's {result['full_run_calls']} calls saved)")
    if check:
        text += f"; drawn {args.reps}× at n = {n5}: widest mean width {check['max_mean_width_pts']} points, in CI " + \
                ", ".join(f"{g} {c:.1f}%" for g, c in check["coverage_pct"].items())
    text += "\nOn bigger datasets the same ±5 points needs n = " + ", ".join(
        f"{n:,} of {N:,} ({100 * (1 - n / N):.2f}% saved)" for N, n in p5["n_for_population"].items())
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"estimate_calibration-{args.dataset}.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / f"estimate_calibration-{args.dataset}.md").write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
