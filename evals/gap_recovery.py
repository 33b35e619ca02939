"""Does the pipeline find a gap we made on purpose? Remove one ground-truth category, look for its gap.

The data is self-instruct (selfinstruct_alpaca.jsonl), whose records carry the app they came from. The
goal (evals/goals/selfinstruct.yaml) has one subgoal per app, each naming its app. The experiment:

1. takes `--limit` records of each app, ingests them, and scores them once (the control run: every
   category present, so ideally nothing is flagged);
2. for each subgoal in turn, rewrites the data file without that subgoal's app and runs the pipeline
   (ingest again → score → coverage → gaps). Re-ingesting drops the removed samples; every judgment is
   cached by content, so the judge is paid once, and only gap labels are new calls.

A removal is found when the removed subgoal is flagged weak and a gap names it (its subgoal_id). Over all
removals: recall = removals found / removals; precision = removals found / subgoals that got a gap (a gap
on any other subgoal is a false alarm). Whether the gap's label shares a word with the subgoal's title is
reported, not scored.

The weak rule is GoalCover's: under `weak_share` (10%) of samples support the subgoal, or its mean is
under `weak_mean` (2.5). Here every subgoal is narrow on purpose, so most samples are unrelated to it
and its mean over all samples stays near 1.5 even when its category is fully present; the mean rule
would flag every subgoal. The experiment therefore sets weak_mean to 1.0 (share rule only) unless
`--weak-mean` says otherwise.

    python -m goalcover.evals.gap_recovery --gguf ~/.cache/goalcover/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --limit 4
    python -m goalcover.evals.gap_recovery --model gpt-4o-mini [--base-url URL] [--limit 8]
"""

from __future__ import annotations

import asyncio

import re
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

from goalcover.evals.harness import GOALS, SFT, Judge, endpoint, log, num, parser, read_jsonl, save, table, write_jsonl
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.fill.gaps import find_gaps
from goalcover.tools.core.goal import load_goal_file, save_goal

DATA = SFT / "selfinstruct_alpaca.jsonl"
GOAL_FILE = GOALS / "selfinstruct.yaml"
_WORD = re.compile(r"[a-z]{4,}")


def apps_of(goal_file: Path) -> dict[str, str]:
    """subgoal id -> the app (category) it needs, from the goal file's `app` keys."""
    data = yaml.safe_load(goal_file.read_text(encoding="utf-8"))
    return {s.get("id", f"S{n}"): s["app"] for n, s in enumerate(data["subgoals"], start=1)}


def pipeline(ws, judge: Judge, data: Path) -> dict:
    """Ingest (again), score what is missing, and find the gaps; what was flagged."""
    ingest_file(ws, data)
    scored = asyncio.run(scoring.score(ws, judge.mode))
    report = coverage(ws)
    gaps = asyncio.run(find_gaps(ws))
    return {
        "samples": report.samples,
        "judge_calls": scored.calls,
        "failed": report.failed,
        "weak": [r.id for r in report.subgoals if r.weak],
        "coverage": {r.id: {"supporting": r.supporting, "share": r.share, "mean": r.mean} for r in report.subgoals},
        "gaps": [{"id": g.id, "subgoal_id": g.subgoal_id, "kind": g.kind, "label": g.label, "size": g.size} for g in gaps],
    }


def run(judge: Judge, limit: int = 8, weak_mean: float = 1.0, goal_file: Path = GOAL_FILE,
        workdir: Path | None = None) -> dict:
    """Ingest up to `limit` samples per app with one category removed, score, find gaps: the report dict (whether the removed category's gap was found)."""
    goal = load_goal_file(goal_file)
    apps = apps_of(goal_file)
    taken: dict[str, int] = defaultdict(int)
    records = []
    for record in read_jsonl(DATA):
        app = record.get("app")
        if app in apps.values() and taken[app] < limit:
            taken[app] += 1
            records.append(record)
    removals = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, judge.open(Path(tmp) / "ws", weak_mean=weak_mean) as ws:
        settings = {"weak_share": ws.settings.weak_share, "weak_mean": ws.settings.weak_mean,
                    "support_threshold": ws.settings.support_threshold}
        data = write_jsonl(Path(tmp) / "selfinstruct.jsonl", records)
        save_goal(ws, goal)
        log(f"control: {len(records)} samples of {len(apps)} apps, nothing removed")
        control = pipeline(ws, judge, data)
        for subgoal in goal.subgoals:
            app = apps[subgoal.id]
            write_jsonl(data, [r for r in records if r["app"] != app])
            log(f"removing {app} ({subgoal.id} {subgoal.title})")
            result = pipeline(ws, judge, data)
            flagged = sorted({g["subgoal_id"] for g in result["gaps"]})
            named = [g for g in result["gaps"] if g["subgoal_id"] == subgoal.id]
            title_words = set(_WORD.findall(subgoal.title.lower()))
            removals.append({
                "subgoal_id": subgoal.id,
                "title": subgoal.title,
                "removed_app": app,
                "removed_samples": len(records) - result["samples"],
                "flagged_weak": subgoal.id in result["weak"],
                "found": subgoal.id in result["weak"] and bool(named),
                "gap_labels": [g["label"] for g in named],
                "label_mentions_subgoal": any(title_words & set(_WORD.findall(g["label"].lower())) for g in named),
                "false_alarms": [s for s in flagged if s != subgoal.id],
                **result,
            })
    found = sum(r["found"] for r in removals)
    flagged = found + sum(len(r["false_alarms"]) for r in removals)
    return {
        "experiment": "gap_recovery",
        **judge.describe(),
        "limit": limit,
        "samples": len(records),
        "settings": settings,
        "recall": round(found / len(removals), 3) if removals else None,
        "precision": round(found / flagged, 3) if flagged else None,
        "control": control,
        "removals": removals,
    }


def markdown(report: dict) -> str:
    """The report as a Markdown section."""
    s = report["settings"]
    head = (f"### gap_recovery — {report['model']} ({report['mode']}{', anchors' if report['anchors'] else ''}), "
            f"{report['samples']} self-instruct samples (up to {report['limit']} per app), weak: share < {s['weak_share']:.0%}"
            + (f" or mean < {s['weak_mean']}" if s["weak_mean"] > 1 else "") + "\n")
    rows = []
    c = report["control"]
    rows.append(["none (control)", "", c["samples"], ", ".join(c["weak"]) or "—", "—", "—",
                 ", ".join(sorted({g["subgoal_id"] for g in c["gaps"]})) or "—"])
    for r in report["removals"]:
        cov = r["coverage"][r["subgoal_id"]]
        rows.append([r["removed_app"], f"{r['subgoal_id']} {r['title']}", r["samples"],
                     ", ".join(r["weak"]) or "—", f"{cov['share']:.0%} / {num(cov['mean'])}",
                     "yes" if r["found"] else "no", ", ".join(r["false_alarms"]) or "—"])
    body = table(["removed app", "its subgoal", "samples left", "weak subgoals", "its share / mean", "found (weak + gap)",
                  "gaps on other subgoals"], rows)
    foot = (f"\n**Recall {num(report['recall'])}** (removals whose subgoal was flagged weak and got a gap), "
            f"**precision {num(report['precision'])}** (of the subgoals that got a gap, the share that were removed). "
            f"Control run: {len(c['gaps'])} gap(s) with every category present.")
    return head + "\n" + body + "\n" + foot


def main(argv: list[str] | None = None) -> dict:
    """Run the experiment from the command line; writes and returns the report."""
    p = parser(__doc__, limit=8, limit_help="samples per app (default 8)")
    p.add_argument("--weak-mean", type=float, default=1.0, help="the weak-mean threshold (default 1.0: share rule only)")
    args = p.parse_args(argv)
    with endpoint(args) as judge:
        report = run(judge, args.limit, args.weak_mean)
    save(args.out, "gap_recovery", report, markdown(report))
    return report


if __name__ == "__main__":
    main()
