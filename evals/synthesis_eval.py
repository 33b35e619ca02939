"""Does synthesis close a gap? How many candidates survive the judge and dedup, and how far coverage moves.

The data is contract clauses (contracts_alpaca.jsonl) with every clause about the target subgoal's topic
left out — by default S1, account termination (the clause-topic patterns of evals/corruptions.py) — so
that subgoal is (nearly) uncovered. The pipeline then runs as a user would: score → gaps of the target
subgoal → `synthesize` `-n` candidates for its first gap → accept every kept candidate → coverage again.

Reported: candidates requested, returned by the model (generated; the rest are missing), invalid (not a
record of the dataset's shape), dropped as duplicates, rejected by the judge, kept; the judge's acceptance
rate (kept / candidates it judged, i.e. generated - invalid - duplicates); the duplicate rate (duplicates /
valid candidates); and, per subgoal, supporting samples, share and mean before and after
the accepted candidates (`coverage(ws).after`) — the lift should land on the target subgoal.

    python -m goalcover.evals.synthesis_eval --gguf ~/.cache/goalcover/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --limit 10 -n 5
    python -m goalcover.evals.synthesis_eval --model gpt-4o-mini [--base-url URL] [--limit 30] [-n 10] [--subgoal S3]
"""

from __future__ import annotations

import asyncio

import re
import tempfile
from pathlib import Path

from goalcover.evals.corruptions import CONTRACT_TOPICS
from goalcover.evals.harness import GOALS, SFT, Judge, endpoint, log, num, parser, read_jsonl, rounded, save, table, write_jsonl
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.fill.gaps import find_gaps
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.fill.synthesis import review, synthesize

DATA = SFT / "contracts_alpaca.jsonl"
GOAL_FILE = GOALS / "contracts.yaml"


def without_topic(records: list[dict], subgoal_id: str, limit: int) -> list[dict]:
    """The first `limit` records that do not mention topic `subgoal_id` (so its subgoal is a gap)."""
    topic = re.compile(CONTRACT_TOPICS[subgoal_id], re.IGNORECASE)
    return [r for r in records if not topic.search(r["input"]) and not topic.search(r["output"])][:limit]


def _rows(report) -> dict:
    return {r.id: {"title": r.title, "supporting": r.supporting, "share": r.share, "mean": r.mean, "weak": r.weak}
            for r in report}


def run(judge: Judge, limit: int = 30, n: int = 10, subgoal_id: str = "S1", workdir: Path | None = None) -> dict:
    """Make a gap (records without the topic), synthesize `n` samples for it, and measure what survives and how coverage moves."""
    records = without_topic(read_jsonl(DATA), subgoal_id, limit)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, judge.open(Path(tmp) / "ws") as ws:
        ingest_file(ws, write_jsonl(Path(tmp) / "contracts.jsonl", records))
        save_goal(ws, load_goal_file(GOAL_FILE))
        log(f"scoring {len(records)} clauses, none about {subgoal_id}'s topic")
        scored = asyncio.run(scoring.score(ws, judge.mode))
        gaps = asyncio.run(find_gaps(ws, subgoal_id))
        if not gaps:
            raise SystemExit(f"no gap on {subgoal_id}: every sample below the support threshold is needed for one")
        gap = gaps[0]
        log(f"synthesizing {n} candidates for {gap.id} ({gap.kind}: {gap.label})")
        result = asyncio.run(synthesize(ws, gap.id, n=n))
        accepted = review(ws, accept=["all"], gap_id=gap.id) if result.kept else []
        after = coverage(ws)
        before_rows = _rows(after.subgoals)
        after_rows = _rows(after.after) if after.after else before_rows
    valid = result.generated - result.invalid
    judged = valid - result.duplicates
    target_before, target_after = before_rows[subgoal_id], after_rows[subgoal_id]
    return {
        "experiment": "synthesis_eval",
        **judge.describe(),
        "limit": limit,
        "samples": len(records),
        "subgoal_id": subgoal_id,
        "gap": {"id": gap.id, "kind": gap.kind, "label": gap.label, "size": gap.size},
        "requested": result.requested,
        "generated": result.generated,
        "missing": result.missing,
        "invalid": result.invalid,
        "duplicates": result.duplicates,
        "rejected_by_judge": result.rejected_by_judge,
        "kept": result.kept,
        "accepted": sum(s.state == "accepted" for s in accepted),
        "acceptance_rate": rounded(result.kept / judged) if judged else None,
        "duplicate_rate": rounded(result.duplicates / valid) if valid else None,
        "lift": {
            "supporting": target_after["supporting"] - target_before["supporting"],
            "share_points": rounded(100 * (target_after["share"] - target_before["share"]), 2),
            "mean": rounded(target_after["mean"] - target_before["mean"]) if target_before["mean"] is not None
            and target_after["mean"] is not None else None,
            "weak_before": target_before["weak"],
            "weak_after": target_after["weak"],
        },
        "coverage_before": before_rows,
        "coverage_after": after_rows,
        "cost": {"score_calls": scored.calls, "synthesis_calls": result.calls},
    }


def markdown(report: dict) -> str:
    """The report as a Markdown section."""
    head = (f"### synthesis_eval — {report['model']} ({report['mode']}{', anchors' if report['anchors'] else ''}), "
            f"{report['samples']} contract clauses without {report['subgoal_id']}'s topic, gap {report['gap']['id']} "
            f"({report['gap']['kind']}: {report['gap']['label']}), {report['requested']} candidates asked for\n")
    funnel = table(["generated", "missing", "invalid", "duplicates", "rejected by judge", "kept", "acceptance rate", "duplicate rate"],
                   [[report["generated"], report["missing"], report["invalid"], report["duplicates"], report["rejected_by_judge"], report["kept"],
                     num(report["acceptance_rate"]), num(report["duplicate_rate"])]])
    rows = []
    for sid, before in report["coverage_before"].items():
        after = report["coverage_after"][sid]
        mark = " ←" if sid == report["subgoal_id"] else ""
        rows.append([f"{sid} {before['title']}{mark}", f"{before['supporting']} → {after['supporting']}",
                     f"{before['share']:.0%} → {after['share']:.0%}", f"{num(before['mean'])} → {num(after['mean'])}",
                     f"{'weak' if before['weak'] else 'ok'} → {'weak' if after['weak'] else 'ok'}"])
    lift = table(["subgoal", "supporting", "share", "mean", "weak"], rows)
    return (f"{head}\n{funnel}\n\nCoverage before → after accepting the {report['accepted']} kept candidates:\n\n{lift}\n\n"
            f"Generated: candidates the model returned (missing: asked for, not returned). Acceptance rate = kept / "
            f"judged candidates (generated − invalid − duplicates); duplicate rate = duplicates / valid candidates.")


def main(argv: list[str] | None = None) -> dict:
    """Run the experiment from the command line; writes and returns the report."""
    p = parser(__doc__, limit=30, limit_help="contract clauses in the dataset (default 30)")
    p.add_argument("-n", type=int, default=10, help="candidates to synthesize (default 10)")
    p.add_argument("--subgoal", default="S1", choices=sorted(CONTRACT_TOPICS), help="the subgoal left uncovered")
    args = p.parse_args(argv)
    with endpoint(args) as judge:
        report = run(judge, args.limit, args.n, args.subgoal)
    save(args.out, "synthesis_eval", report, markdown(report))
    return report


if __name__ == "__main__":
    main()
