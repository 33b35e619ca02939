"""Does scoring all subgoals in one call (batched) judge like one call per subgoal (pair), and what does each cost?

The same samples (a domain of the corruption experiment: its data, goal file and sample choice) are scored
in both modes in one workspace (judgments are cached per mode, so neither run sees the other's). Over the sample × subgoal
pairs that both modes judged:
- exact agreement: same score; within-1: scores differ by at most 1;
- Spearman's rho between the two modes' scores, and quadratic-weighted Cohen's kappa;
- support agreement: both modes on the same side of the support threshold (4), the decision coverage uses;
and, per mode, the judge calls, prompt and completion tokens (as the endpoint reported them) and seconds.

    python -m goalcover.evals.judge_agreement --gguf ~/.cache/goalcover/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --limit 5
    python -m goalcover.evals.judge_agreement --model gpt-4o-mini [--base-url URL] [--limit 20] [--domain pubmedqa]
"""

from __future__ import annotations

import asyncio

import math
import tempfile
from pathlib import Path

from goalcover.evals.corruptions import DOMAINS, pick
from goalcover.evals.harness import Judge, endpoint, log, mean, num, parser, pct, read_jsonl, rounded, save, table, write_jsonl
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import JUDGE_KEY
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import load_goal_file, save_goal

MODES = ("batched", "pair")


def agreement(a: list[int], b: list[int], threshold: int = 4) -> dict:
    """How two lists of 1–5 scores for the same pairs agree."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    n = len(a)
    if n == 0:
        return {"pairs": 0, "exact": None, "within_1": None, "spearman": None, "kappa_quadratic": None,
                "support_agreement": None, "mean_abs_diff": None}
    rho = spearmanr(a, b).statistic if len(set(a)) > 1 and len(set(b)) > 1 else math.nan
    kappa = cohen_kappa_score(a, b, weights="quadratic", labels=[1, 2, 3, 4, 5]) if set(a) | set(b) != {a[0]} else 1.0
    return {
        "pairs": n,
        "exact": rounded(sum(x == y for x, y in zip(a, b)) / n),
        "within_1": rounded(sum(abs(x - y) <= 1 for x, y in zip(a, b)) / n),
        "spearman": None if math.isnan(rho) else rounded(float(rho)),
        "kappa_quadratic": None if math.isnan(kappa) else rounded(float(kappa)),
        "support_agreement": rounded(sum((x >= threshold) == (y >= threshold) for x, y in zip(a, b)) / n),
        "mean_abs_diff": rounded(mean([abs(x - y) for x, y in zip(a, b)])),
    }


def run(judge: Judge, limit: int = 20, domain: str = "contracts", workdir: Path | None = None) -> dict:
    """Score up to `limit` samples of `domain` in batched and in pair mode: their agreement and costs, as the report dict."""
    spec = DOMAINS[domain]
    goal = load_goal_file(spec.goal)
    costs, verdicts = {}, {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, judge.open(Path(tmp) / "ws") as ws:
        records = read_jsonl(spec.file)
        ingest_file(ws, write_jsonl(Path(tmp) / f"{domain}.jsonl", pick(records, spec.corruptions, limit)))
        save_goal(ws, goal)
        samples = ws.store.samples()
        model = ws.settings.model_for("judge").model
        threshold = ws.settings.support_threshold
        for mode in MODES:
            log(f"{domain}: scoring {len(samples)} samples × {len(goal.subgoals)} subgoals in {mode} mode")
            result = asyncio.run(scoring.score(ws, mode))
            version = ws.store.get_meta(JUDGE_KEY)["prompt_version"]  # the run records the version it used
            judged = ws.store.judgments_for(version, model)
            verdicts[mode] = {(s.id, g.id): judged[(s.content_hash, g.hash)][0]
                              for s in samples for g in goal.subgoals if (s.content_hash, g.hash) in judged}
            new = max(result.new, 1)
            costs[mode] = {
                "calls": result.calls, "judgments": result.new, "failed": result.failed,
                "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                "prompt_tokens_per_judgment": round(result.prompt_tokens / new, 1),
                "completion_tokens_per_judgment": round(result.completion_tokens / new, 1),
                "seconds": result.elapsed_s,
                "mean_score": rounded(mean(list(verdicts[mode].values()))),
            }
    both = sorted(verdicts["batched"].keys() & verdicts["pair"].keys())
    per_subgoal = {}
    for g in goal.subgoals:
        keys = [k for k in both if k[1] == g.id]
        per_subgoal[g.id] = {"title": g.title, **agreement([verdicts["batched"][k] for k in keys], [verdicts["pair"][k] for k in keys], threshold),
                             "mean_batched": rounded(mean([verdicts["batched"][k] for k in keys])),
                             "mean_pair": rounded(mean([verdicts["pair"][k] for k in keys]))}
    return {
        "experiment": "judge_agreement",
        **judge.describe(),
        "mode": "batched vs pair",
        "domain": domain,
        "goal": f"evals/goals/{spec.goal.name}",
        "samples": len(samples),
        "subgoals": len(goal.subgoals),
        "overall": agreement([verdicts["batched"][k] for k in both], [verdicts["pair"][k] for k in both], threshold),
        "per_subgoal": per_subgoal,
        "cost": costs,
        "pair_over_batched_prompt_tokens": rounded(costs["pair"]["prompt_tokens"] / costs["batched"]["prompt_tokens"], 2)
        if costs["batched"]["prompt_tokens"] else None,
        "scores": {f"{s}::{g}": [verdicts["batched"].get((s, g)), verdicts["pair"].get((s, g))]
                   for s, g in sorted(verdicts["batched"].keys() | verdicts["pair"].keys())},
    }


def markdown(report: dict) -> str:
    """The report as a Markdown section."""
    head = (f"### judge_agreement — {report['model']}{' (anchors)' if report['anchors'] else ''}, "
            f"{report['domain']}: {report['samples']} samples × {report['subgoals']} subgoals\n")
    rows = [[f"{sid} {r['title']}", r["pairs"], pct(r["exact"]), pct(r["within_1"]), num(r["spearman"]),
             num(r["kappa_quadratic"]), pct(r["support_agreement"]), num(r["mean_batched"]), num(r["mean_pair"])]
            for sid, r in report["per_subgoal"].items()]
    o = report["overall"]
    rows.append(["**all**", o["pairs"], f"**{pct(o['exact'])}**", f"**{pct(o['within_1'])}**", f"**{num(o['spearman'])}**",
                 f"**{num(o['kappa_quadratic'])}**", f"**{pct(o['support_agreement'])}**",
                 num(report["cost"]["batched"]["mean_score"]), num(report["cost"]["pair"]["mean_score"])])
    agree = table(["subgoal", "pairs", "exact", "within 1", "Spearman", "kappa (quadratic)", "same support decision",
                   "mean batched", "mean pair"], rows)
    cost_rows = [[mode, c["calls"], c["judgments"], c["failed"], f"{c['prompt_tokens']:,}", f"{c['completion_tokens']:,}",
                  c["prompt_tokens_per_judgment"], c["completion_tokens_per_judgment"], c["seconds"]]
                 for mode, c in report["cost"].items()]
    cost = table(["mode", "calls", "judgments", "failed", "prompt tokens", "completion tokens", "prompt tok / judgment",
                  "completion tok / judgment", "seconds"], cost_rows)
    return f"{head}\n{agree}\n\n{cost}\n\nPair mode used {num(report['pair_over_batched_prompt_tokens'])}× the prompt tokens of batched mode."


def main(argv: list[str] | None = None) -> dict:
    """Run the experiment from the command line; writes and returns the report."""
    p = parser(__doc__, limit=20, limit_help="samples (default 20)")
    p.add_argument("--domain", choices=sorted(DOMAINS), default="contracts", help="data and goal (default contracts)")
    args = p.parse_args(argv)
    with endpoint(args) as judge:
        report = run(judge, args.limit, args.domain)
    save(args.out, "judge_agreement", report, markdown(report))
    return report


if __name__ == "__main__":
    main()
