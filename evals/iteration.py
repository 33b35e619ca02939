"""Does the whole gap-filling loop work? Remove a category, find its gap, fill it from a pool of real data, verify.

The data is self-instruct (selfinstruct_alpaca.jsonl), whose records carry the app they came from; the goal
(evals/goals/selfinstruct.yaml) has one subgoal per app. The judge is deterministic: the fake endpoint with
keyword rules (PATTERNS: a subgoal scores 5 where its words occur in the sample, else 1), so the figures are
the loop's, not a model's — and a keyword judge is imperfect on purpose: other apps' samples that use a
subgoal's words count as support, which is what pool precision measures.

One workspace. The control run ingests `--limit` records of each app and scores them; the pool holds the same
records plus `--distractors` records of apps outside the goal. Then, for each subgoal in turn:

1. re-ingest the data without the subgoal's app (a new dataset version), score (cached), find gaps;
2. if the subgoal is weak and a gap names it, `fill_from_pool` for that gap (`-n`): the pool samples of the
   apps still in the data are exact duplicates of the data and drop out; the rest are judged and kept if they
   support the subgoal;
3. accept every proposed sample, `verify` the gap (closed / shrunk / open, regressions on other subgoals),
   then reject them again, so the next category starts from the data alone.

Per category: gap found, pool precision (share of the proposed samples that come from the removed app), gap
closed, regressions. Last line: `iteration: gaps closed K/N, pool precision P, regressions R`.

    python -m goalcover.evals.iteration [--limit 8] [--distractors 40] [-n 20]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

from goalcover.evals.estimate_calibration import keyword_judge as calibration_keyword_judge
from goalcover.evals.harness import GOALS, RESULTS, SFT, log, read_jsonl, save, table, write_jsonl
from goalcover.testing import FakeOpenAI
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.fill.gaps import find_gaps
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.fill.pool import add_to_pool, fill_from_pool, provenance
from goalcover.tools.fill.synthesis import review
from goalcover.tools.fill.verify import verify
from goalcover.tools.core.workspace import Workspace

DATA = SFT / "selfinstruct_alpaca.jsonl"
GOAL_FILE = GOALS / "selfinstruct.yaml"
MODEL = "keyword-judge"
# The keyword judge's words per subgoal (selfinstruct.yaml's order): what the subgoal's title is about.
PATTERNS = {
    "S1": r"grammar|proofread|spelling|rewrite|paraphras|concise",
    "S2": r"synonym|antonym|definition|rhym|meaning of|dictionary|part of speech|etymolog",
    "S3": r"e-?mail|inbox|spam",
    "S4": r"movie|film|tv (show|series)|netflix|episode|season",
    "S5": r"recipe|cook|ingredient|bake|baking|dish|meal",
    "S6": r"product|shopping|amazon|purchase|buy",
}


def keyword_judge(patterns: dict[str, str]):
    """estimate_calibration's keyword judge, with explanations that say what a sample has or lacks."""
    return calibration_keyword_judge(patterns, explain=True)


def apps_of(goal_file: Path) -> dict[str, str]:
    """subgoal id -> the app (category) it needs, from the goal file's `app` keys."""
    data = yaml.safe_load(goal_file.read_text(encoding="utf-8"))
    return {s.get("id", f"S{n}"): s["app"] for n, s in enumerate(data["subgoals"], start=1)}


def pick(limit: int, distractors: int) -> tuple[list[dict], list[dict]]:
    """(up to `limit` records of each goal app, the first `distractors` records of other apps)."""
    apps = set(apps_of(GOAL_FILE).values())
    taken: dict[str, int] = defaultdict(int)
    records, others = [], []
    for record in read_jsonl(DATA):
        if record["app"] in apps:
            if taken[record["app"]] < limit:
                taken[record["app"]] += 1
                records.append(record)
        elif len(others) < distractors:
            others.append(record)
    return records, others


def run(limit: int = 8, distractors: int = 40, n: int = 20, workdir: Path | None = None) -> dict:
    """The experiment (see the module doc); returns the report."""
    goal = load_goal_file(GOAL_FILE)
    apps = apps_of(GOAL_FILE)
    records, others = pick(limit, distractors)
    pool_records = records + others
    app_at_line = {i + 1: r["app"] for i, r in enumerate(pool_records)}
    rows = []
    with FakeOpenAI(rules=[keyword_judge(PATTERNS)]) as fake, tempfile.TemporaryDirectory(dir=workdir) as tmp:
        with Workspace.open(Path(tmp) / "ws", model=MODEL, base_url=fake.base_url, api_key="test") as ws:
            data = write_jsonl(Path(tmp) / "selfinstruct.jsonl", records)
            pool = write_jsonl(Path(tmp) / "pool.jsonl", pool_records)
            ingest_file(ws, data)
            save_goal(ws, goal)
            asyncio.run(scoring.score(ws))
            control = coverage(ws)
            add_to_pool(ws, pool)
            for subgoal in goal.subgoals:
                app = apps[subgoal.id]
                write_jsonl(data, [r for r in records if r["app"] != app])
                log(f"removing {app} ({subgoal.id} {subgoal.title})")
                ingest_file(ws, data)
                asyncio.run(scoring.score(ws))
                report = coverage(ws)
                weak = next(r for r in report.subgoals if r.id == subgoal.id).weak
                gap = next((g for g in asyncio.run(find_gaps(ws)) if g.subgoal_id == subgoal.id), None) if weak else None
                row = {"subgoal_id": subgoal.id, "app": app, "removed": len(records) - report.samples, "weak": weak,
                       "gap": gap.id if gap else None, "proposed": 0, "from_app": 0, "precision": None, "closed": False,
                       "status": None, "regressions": [], "fill_calls": 0}
                if gap is not None:
                    filled = asyncio.run(fill_from_pool(ws, gap.id, n))
                    lines = provenance(ws, filled.kept_ids)
                    from_app = sum(app_at_line[lines[i]["line"]] == app for i in filled.kept_ids)
                    row.update(proposed=filled.kept, from_app=from_app, fill_calls=filled.calls,
                               precision=round(from_app / filled.kept, 3) if filled.kept else None)
                    if filled.kept:
                        review(ws, accept=filled.kept_ids)
                        checked = verify(ws, gap.id).gaps[0]
                        row.update(status=checked.status, closed=checked.status == "closed",
                                   regressions=[d.id for d in checked.regressions],
                                   regression_detail=[{k: getattr(d, k) for k in ("id", "share_from", "share_to", "p_value", "weak_from", "weak_to")}
                                                      for d in checked.regressions],
                                   share_before=checked.share_before, share_after=checked.share_after)
                        review(ws, reject=filled.kept_ids)
                rows.append(row)
    closed = sum(r["closed"] for r in rows)
    proposed = sum(r["proposed"] for r in rows)
    return {
        "experiment": "iteration",
        "model": MODEL,
        "limit": limit,
        "distractors": len(others),
        "n": n,
        "samples": len(records),
        "control_weak": [r.id for r in control.subgoals if r.weak],
        "categories": rows,
        "gaps_found": sum(r["gap"] is not None for r in rows),
        "gaps_closed": closed,
        "pool_precision": round(sum(r["from_app"] for r in rows) / proposed, 3) if proposed else None,
        "regressions": sum(len(r["regressions"]) for r in rows),
    }


def summary(report: dict) -> str:
    """The last line the run prints."""
    p = report["pool_precision"]
    return (f"iteration: gaps closed {report['gaps_closed']}/{len(report['categories'])}, "
            f"pool precision {'n/a' if p is None else f'{p:.2f}'}, regressions {report['regressions']}")


def markdown(report: dict) -> str:
    """The per-category table and the summary line."""
    head = (f"### iteration — keyword judge, {report['samples']} self-instruct samples (up to {report['limit']} per app), "
            f"pool: the same + {report['distractors']} of other apps, -n {report['n']}\n")
    rows = [[r["app"], r["subgoal_id"], r["removed"], "yes" if r["gap"] else "no", r["proposed"],
             "—" if r["precision"] is None else f"{r['precision']:.2f}", r["status"] or "—",
             ", ".join(r["regressions"]) or "—"] for r in report["categories"]]
    body = table(["removed app", "subgoal", "removed", "gap found", "proposed", "pool precision", "verify", "regressions"], rows)
    return head + "\n" + body + "\n\n" + summary(report)


def main(argv: list[str] | None = None) -> dict:
    """Run, save `evals/results/iteration-keyword-judge.{json,md}`, print the table; the last line is the summary."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=8, help="records per app (default 8)")
    p.add_argument("--distractors", type=int, default=40, help="pool records of apps outside the goal (default 40)")
    p.add_argument("-n", type=int, default=20, help="pool samples to judge per gap (default 20)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    report = run(args.limit, args.distractors, args.n)
    save(args.out, "iteration", report, markdown(report))
    print(summary(report))
    return report


if __name__ == "__main__":
    main()
