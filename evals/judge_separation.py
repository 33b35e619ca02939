"""Does the judge tell clearly relevant samples from clearly irrelevant ones? (and how fast is it?)

Scores, in pair mode, N contract clauses that are plainly about account termination (they say "terminate"
or "suspend") and N MBPP coding tasks (nothing to do with contracts) against the contracts goal's subgoal
S1 "Account termination and suspension", then reports the mean score of each group, the separation (AUC:
the chance a relevant sample outscores an irrelevant one, ties count half), accuracy at the support
threshold, failures, and the endpoint's speed (prompt and completion tokens per second of wall time).

    python -m goalcover.evals.judge_separation --base-url http://127.0.0.1:8080/v1 --model NAME [-n 10]
    python -m goalcover.evals.judge_separation --gguf PATH.gguf [-n 10] [--anchors]   # starts llama.cpp itself
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from goalcover.tools import scoring
from goalcover.tools.coverage import sample_scores
from goalcover.tools.dataset import ingest_file
from goalcover.tools.goal import load_goal_file, save_goal
from goalcover.tools.models import Goal
from goalcover.tools.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SFT = ROOT.parent / "shared" / "datasets" / "sft"
GOAL_FILE = ROOT / "evals" / "goals" / "contracts.yaml"
RESULTS = ROOT / "evals" / "results"


def pick(n: int, folder: Path) -> tuple[list[str], list[str]]:
    relevant = [l for l in (SFT / "contracts_alpaca.jsonl").read_text().splitlines()
                if re.search(r"terminat|suspend", json.loads(l)["input"], re.IGNORECASE)][:n]
    irrelevant = (SFT / "mbpp_alpaca.jsonl").read_text().splitlines()[:n]
    (folder / "relevant.jsonl").write_text("\n".join(relevant) + "\n")
    (folder / "irrelevant.jsonl").write_text("\n".join(irrelevant) + "\n")
    return [json.loads(l)["id"] for l in relevant], [json.loads(l)["id"] for l in irrelevant]


def auc(pos: list[int], neg: list[int]) -> float:
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg)) if pos and neg else float("nan")


def run(base_url: str, model: str, n: int, anchors: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rel_ids, irr_ids = pick(n, folder)
        with Workspace.open(folder / "ws", model=model, base_url=base_url, api_key="local", concurrency=1,
                            llm_timeout_s=600, max_retries=2, judge_anchors=anchors) as ws:
            ingest_file(ws, folder / "relevant.jsonl")
            ingest_file(ws, folder / "irrelevant.jsonl", add=True)
            full = load_goal_file(GOAL_FILE)
            save_goal(ws, Goal(text=full.text, subgoals=[full.subgoals[0]]))
            start = time.perf_counter()
            result = scoring.score(ws, "pair")
            elapsed = time.perf_counter() - start
            scores, _ = sample_scores(ws)
    rel = [scores[i]["S1"][0] for i in rel_ids if "S1" in scores.get(i, {})]
    irr = [scores[i]["S1"][0] for i in irr_ids if "S1" in scores.get(i, {})]
    threshold = 4
    correct = sum(s >= threshold for s in rel) + sum(s < threshold for s in irr)
    return {
        "model": model,
        "anchors": anchors,
        "samples": {"relevant": n, "irrelevant": n},
        "mean_relevant": round(sum(rel) / len(rel), 2) if rel else None,
        "mean_irrelevant": round(sum(irr) / len(irr), 2) if irr else None,
        "auc": round(auc(rel, irr), 3),
        "accuracy_at_4": round(correct / (len(rel) + len(irr)), 3) if rel or irr else None,
        "relevant_scores": rel,
        "irrelevant_scores": irr,
        "failed": result.failed,
        "calls": result.calls,
        "seconds": round(elapsed, 1),
        "prompt_tokens_per_s": round(result.prompt_tokens / elapsed, 1),
        "completion_tokens_per_s": round(result.completion_tokens / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="local")
    parser.add_argument("--gguf", type=Path, help="start llama.cpp's server on this model file")
    parser.add_argument("-n", type=int, default=10, help="samples per group")
    parser.add_argument("--anchors", action="store_true", help="add the few-shot rubric anchors to the judge prompt")
    args = parser.parse_args()
    proc = None
    if args.gguf:
        from goalcover.tools.local import serve

        proc = serve(args.gguf, port=8091)
        args.base_url, args.model = "http://127.0.0.1:8091/v1", args.gguf.stem
    try:
        report = run(args.base_url, args.model, args.n, args.anchors)
    finally:
        if proc is not None:
            from goalcover.tools.local import stop

            stop(proc)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", args.model) + ("-anchors" if args.anchors else "")
    out = RESULTS / f"judge_separation-{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
