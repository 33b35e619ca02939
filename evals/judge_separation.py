"""Does the judge tell clearly relevant samples from clearly irrelevant ones? (and how fast is it?)

Scores, in pair mode (or `--mode batched`), N contract clauses that are plainly about account termination (they say "terminate"
or "suspend") and N MBPP coding tasks (nothing to do with contracts) against the contracts goal's subgoal
S1 "Account termination and suspension", then reports the mean score of each group, the separation (AUC:
the chance a relevant sample outscores an irrelevant one, ties count half), accuracy at the support
threshold, failures, and the endpoint's speed (prompt and completion tokens per second of wall time).

With `--mode probe` the judge answers one yes/no token per pair and its score is P(yes) (tools/judge/probe.py);
the weighted figures are then P(yes) mapped through GOALCOVER_PROBE_THRESHOLDS (1 + 4·P(yes) at the
defaults), and the raw P(yes) values are listed to calibrate the probe's
1-5 cut points on. With `--logprobs K` the judge also asks for the top K token logprobs and the same figures are given for
the G-Eval probability-weighted scores (Σ p(s)·s over the score digit's alternatives), which break the
ties a 1-5 scale leaves.

    python -m goalcover.evals.judge_separation --base-url http://127.0.0.1:8080/v1 --model NAME [-n 10]
    python -m goalcover.evals.judge_separation --gguf PATH.gguf [-n 10] [--anchors] [--logprobs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from goalcover.evals.harness import endpoint, slug
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import sample_scores, sample_weighted
from goalcover.tools.judge.probe import p_from_weighted
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.core.shapes import Goal
from goalcover.tools.core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SFT = ROOT / "tests" / "data" / "sft"  # vendored real datasets (tests/data/README.md)
GOAL_FILE = ROOT / "evals" / "goals" / "contracts.yaml"
RESULTS = ROOT / "evals" / "results"


def pick(n: int, folder: Path) -> tuple[list[str], list[str]]:
    """Write `n` clearly relevant (termination clauses) and `n` irrelevant (MBPP) samples into `folder`; their ids."""
    relevant = [l for l in (SFT / "contracts_alpaca.jsonl").read_text().splitlines()
                if re.search(r"terminat|suspend", json.loads(l)["input"], re.IGNORECASE)][:n]
    irrelevant = (SFT / "mbpp_alpaca.jsonl").read_text().splitlines()[:n]
    (folder / "relevant.jsonl").write_text("\n".join(relevant) + "\n")
    (folder / "irrelevant.jsonl").write_text("\n".join(irrelevant) + "\n")
    return [json.loads(l)["id"] for l in relevant], [json.loads(l)["id"] for l in irrelevant]


def auc(pos: list[float], neg: list[float]) -> float:
    """The probability that a relevant sample scores above an irrelevant one (ties count half); NaN when a side is empty."""
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg)) if pos and neg else float("nan")


def separation(rel: list[float], irr: list[float], threshold: float = 4) -> dict:
    """Mean scores of both sides, their AUC and the accuracy of the `threshold` cut."""
    correct = sum(s >= threshold for s in rel) + sum(s < threshold for s in irr)
    return {
        "mean_relevant": round(statistics.fmean(rel), 2) if rel else None,
        "mean_irrelevant": round(statistics.fmean(irr), 2) if irr else None,
        "auc": round(auc(rel, irr), 3),
        "accuracy_at_4": round(correct / (len(rel) + len(irr)), 3) if rel or irr else None,
    }


def run(base_url: str | None, model: str, n: int, anchors: bool = False, logprobs: int | None = None,
        mode: str = "pair") -> dict:
    """Score `n` relevant and `n` irrelevant samples with `model` at `base_url`: separation figures and timing."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rel_ids, irr_ids = pick(n, folder)
        with Workspace.open(folder / "ws", model=model, base_url=base_url, concurrency=1,
                            llm_timeout_s=600, max_retries=2, judge_anchors=anchors, judge_logprobs=logprobs) as ws:
            ingest_file(ws, folder / "relevant.jsonl")
            ingest_file(ws, folder / "irrelevant.jsonl", add=True)
            full = load_goal_file(GOAL_FILE)
            save_goal(ws, Goal(text=full.text, subgoals=[full.subgoals[0]]))
            start = time.perf_counter()
            result = asyncio.run(scoring.score(ws, mode))  # type: ignore[arg-type]
            elapsed = time.perf_counter() - start
            scores, judge = sample_scores(ws)
            weighted = sample_weighted(ws, ws.store.samples(), judge)
            cuts = ws.settings.probe_thresholds
    rel = [scores[i]["S1"][0] for i in rel_ids if "S1" in scores.get(i, {})]
    irr = [scores[i]["S1"][0] for i in irr_ids if "S1" in scores.get(i, {})]
    report = {
        "model": model,
        "mode": mode,
        "anchors": anchors,
        "logprobs": logprobs,
        "samples": {"relevant": n, "irrelevant": n},
        **separation(rel, irr),
        "relevant_scores": rel,
        "irrelevant_scores": irr,
        "failed": result.failed,
        "calls": result.calls,
        "seconds": round(elapsed, 1),
        "prompt_tokens_per_s": round(result.prompt_tokens / elapsed, 1),
        "completion_tokens_per_s": round(result.completion_tokens / elapsed, 1),
    }
    if logprobs or mode == "probe":  # a probe's weighted score maps P(yes) through GOALCOVER_PROBE_THRESHOLDS
        w_rel = [weighted[i]["S1"] for i in rel_ids if "S1" in weighted.get(i, {})]
        w_irr = [weighted[i]["S1"] for i in irr_ids if "S1" in weighted.get(i, {})]
        report["weighted"] = {
            **separation(w_rel, w_irr),
            # support as coverage decides it where a weighted score exists (GOALCOVER_SUPPORT_WEIGHTED)
            "accuracy_at_3_5": separation(w_rel, w_irr, threshold=3.5)["accuracy_at_4"],
            "with_weighted_score": len(w_rel) + len(w_irr),
            "relevant_scores": [round(w, 3) for w in w_rel],
            "irrelevant_scores": [round(w, 3) for w in w_irr],
        }
        if mode == "probe":  # the raw P(yes), to calibrate GOALCOVER_PROBE_THRESHOLDS on
            report["weighted"]["p_yes_relevant"] = [round(p_from_weighted(w, cuts), 4) for w in w_rel]
            report["weighted"]["p_yes_irrelevant"] = [round(p_from_weighted(w, cuts), 4) for w in w_irr]
            report["weighted"]["probe_thresholds"] = list(cuts)
    return report


def main(argv: list[str] | None = None) -> dict:
    """Run the experiment from the command line; writes, prints and returns the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="local")
    parser.add_argument("--gguf", type=Path, help="start llama.cpp's server on this model file")
    parser.add_argument("-n", type=int, default=10, help="samples per group")
    parser.add_argument("--anchors", action="store_true", help="add the few-shot rubric anchors to the judge prompt")
    parser.add_argument("--logprobs", type=int, metavar="K", help="ask for the top K logprobs (1-20) and report G-Eval weighted scores")
    parser.add_argument("--mode", choices=["pair", "batched", "probe"], default="pair",
                        help="the judge's prompt layout (one subgoal either way): pair names it after the sample, batched "
                        "before; probe asks one yes/no token and scores P(yes)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results file")
    parser.add_argument("--port", type=int, default=8091, help="port for --gguf's server")
    args = parser.parse_args(argv)
    args.concurrency = None  # this measurement always judges one call at a time
    # The shared endpoint starts and stops --gguf's server and turns engine errors into one line.
    with endpoint(args) as judge:
        report = run(judge.base_url, judge.model, args.n, args.anchors, args.logprobs, args.mode)
    args.out.mkdir(parents=True, exist_ok=True)
    name = (slug(judge.model) + ("-" + args.mode if args.mode != "pair" else "")
            + ("-anchors" if args.anchors else "") + ("-logprobs" if args.logprobs else ""))
    out = args.out / f"judge_separation-{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
