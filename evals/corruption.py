"""Does the judge see what is missing? The paper's corruption experiment, in four datasets.

For each domain (medical QA, legal summarization, code generation ×2; see evals/corruptions.py) a subset
of the data is scored against the domain's goal file; then, for each subgoal in turn, the samples that
subgoal's corruption applies to are corrupted — what the subgoal needs is removed, little else — written
in the same shape to a temporary JSONL, ingested into a fresh workspace and scored against every subgoal.

Per sample and subgoal, drop = clean score - corrupted score. Reported, per subgoal and pooled:
- the relative drop of the target subgoal's mean score, (clean mean - corrupted mean) / clean mean;
- the same for the other subgoals (the average over them) — corruption should barely touch them;
- Cohen's d between the per-sample drops on the target and on the other subgoals (pooled SD).
The paper reports a 25.6% drop on the target against 2.1% on the others, d = 1.24. With `--logprobs K` the
same figures are also given for the G-Eval probability-weighted scores (under "weighted", per domain and
overall), so the verdict and the weighted signal are measured on the same judgments.

    python -m goalcover.evals.corruption --gguf ~/.cache/goalcover/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --limit 6
    python -m goalcover.evals.corruption --model gpt-4o-mini [--base-url URL] [--limit 30] [--domains pubmedqa mbpp]
"""

from __future__ import annotations

import asyncio

import tempfile
import time
from pathlib import Path

from goalcover.evals.corruptions import DOMAINS, Domain, pick
from goalcover.evals.harness import (
    Judge, cohens_d, endpoint, log, mean, num, parser, pct, read_jsonl, relative_drop, rounded, save, table,
    write_jsonl,
)
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import sample_scores, sample_weighted
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import load_goal_file, save_goal

PAPER = {"target_drop": 0.256, "others_drop": 0.021, "cohens_d": 1.24}
Scores = dict[str, dict[str, float]]  # sample id -> subgoal id -> score (1-5 verdict or G-Eval weighted)


def score_file(judge: Judge, folder: Path, data: Path, goal_file: Path) -> tuple[Scores, Scores, dict]:
    """Ingest `data` into a fresh workspace in `folder`, score it, and return the 1-5 verdicts, the G-Eval
    weighted scores (empty without --logprobs or where the server returned none) and the run's cost."""
    with judge.open(folder) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(goal_file))
        result = asyncio.run(scoring.score(ws, judge.mode))
        scores, meta = sample_scores(ws)
        weighted = sample_weighted(ws, ws.store.samples(), meta)
    cost = {"calls": result.calls, "failed": result.failed, "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens, "seconds": result.elapsed_s}
    return {sid: {g: v[0] for g, v in per.items()} for sid, per in scores.items()}, weighted, cost


def drops(clean: Scores, corrupted: Scores, target: str, subgoals: list[str]) -> tuple[list[float], list[float]]:
    """Per-sample score drops on the target subgoal and on every other subgoal (pairs judged both times)."""
    on_target, on_others = [], []
    for sid, after in corrupted.items():
        before = clean.get(sid, {})
        for g in subgoals:
            if g in before and g in after:
                (on_target if g == target else on_others).append(before[g] - after[g])
    return on_target, on_others


def summarize(rows: list[dict], target_drops: list[float], other_drops: list[float]) -> dict:
    """Mean score drops over `rows`: on the corrupted subgoal and on the others, and Cohen's d between them."""
    return {
        "target_drop": rounded(mean([r["target_drop"] for r in rows if r["target_drop"] is not None])),
        "others_drop": rounded(mean([r["others_drop"] for r in rows if r["others_drop"] is not None])),
        "cohens_d": rounded(cohens_d(target_drops, other_drops)),
        "mean_target_drop_points": rounded(mean(target_drops)),
        "mean_others_drop_points": rounded(mean(other_drops)),
    }


def analyse(goal, corruptions, clean: Scores, corrupted_by: dict[str, tuple[list[str], Scores]],
            subgoals: list[str]) -> tuple[list[dict], list[float], list[float]]:
    """The per-corruption rows (means, relative drops, d) and the pooled per-sample drops, for one signal
    (the 1-5 verdicts or the weighted scores): `corrupted_by` maps the target subgoal to (the corrupted
    sample ids, their scores)."""
    rows, all_target, all_others = [], [], []
    for corruption in corruptions:
        target = corruption.subgoal_id
        ids, corrupted = corrupted_by[target]
        on_target, on_others = drops(clean, corrupted, target, subgoals)
        all_target += on_target
        all_others += on_others

        def both(g: str) -> list[str]:  # samples judged on g before and after (failed judgments drop out)
            return [i for i in ids if g in clean.get(i, {}) and g in corrupted.get(i, {})]

        others = [relative_drop([clean[i][g] for i in both(g)], [corrupted[i][g] for i in both(g)])
                  for g in subgoals if g != target]
        judged = both(target)
        rows.append({
            "subgoal_id": target,
            "title": goal.subgoal(target).title,
            "corruption": corruption.what,
            "samples": len(ids),
            "judged": len(judged),
            "clean_mean": rounded(mean([clean[i][target] for i in judged])),
            "corrupted_mean": rounded(mean([corrupted[i][target] for i in judged])),
            "target_drop": rounded(relative_drop([clean[i][target] for i in judged], [corrupted[i][target] for i in judged])),
            "others_drop": rounded(mean([o for o in others if o is not None])),
            "cohens_d": rounded(cohens_d(on_target, on_others)),
        })
    return rows, all_target, all_others


def per_sample(clean: Scores, corrupted_by: dict[str, tuple[list[str], Scores]], subgoals: list[str]) -> dict:
    """{target: {sample id: {subgoal: [clean score, corrupted score]}}} (None where a judgment failed): what
    the results file keeps per sample (evals/corruption_matched.py reads it back)."""
    return {t: {i: {g: [clean.get(i, {}).get(g), c.get(i, {}).get(g)] for g in subgoals} for i in ids}
            for t, (ids, c) in corrupted_by.items()}


def run_domain(judge: Judge, domain: Domain, limit: int, folder: Path) -> tuple[dict, dict]:
    """Score one domain clean and corrupted. Returns (the domain's summary, the pooled per-sample drops
    {"verdict": (target, others), "weighted": (target, others) when weighted scores exist})."""
    records = read_jsonl(domain.file)
    chosen = pick(records, domain.corruptions, limit)
    goal = load_goal_file(domain.goal)
    subgoals = [s.id for s in goal.subgoals]
    started = time.perf_counter()
    log(f"{domain.name}: scoring {len(chosen)} clean samples")
    clean, clean_w, cost = score_file(judge, folder / "clean", write_jsonl(folder / "clean.jsonl", chosen), domain.goal)
    costs = [cost]
    verdicts: dict[str, tuple[list[str], Scores]] = {}
    weighted: dict[str, tuple[list[str], Scores]] = {}
    for corruption in domain.corruptions:
        corrupted_records = [c for c in (corruption.apply(r, records) for r in chosen) if c is not None]
        log(f"{domain.name}: scoring {len(corrupted_records)} samples corrupted for {corruption.subgoal_id} ({corruption.what})")
        corrupted: Scores = {}
        corrupted_w: Scores = {}
        if corrupted_records:  # a small --limit may pick no sample this corruption applies to
            data = write_jsonl(folder / f"corrupt-{corruption.subgoal_id}.jsonl", corrupted_records)
            corrupted, corrupted_w, cost = score_file(judge, folder / f"corrupt-{corruption.subgoal_id}", data, domain.goal)
            costs.append(cost)
        ids = [r["id"] for r in corrupted_records]
        verdicts[corruption.subgoal_id] = (ids, corrupted)
        weighted[corruption.subgoal_id] = (ids, corrupted_w)
    rows, all_target, all_others = analyse(goal, domain.corruptions, clean, verdicts, subgoals)
    pooled = {"verdict": (all_target, all_others)}
    summary = {
        "domain": domain.name,
        "task": domain.task,
        "file": domain.file.name,
        "goal": f"evals/goals/{domain.goal.name}",
        "samples": len(chosen),
        **summarize(rows, all_target, all_others),
        "subgoals": rows,
    }
    if clean_w:  # the same arithmetic on the G-Eval weighted scores (issue 18: measured both ways)
        w_rows, w_target, w_others = analyse(goal, domain.corruptions, clean_w, weighted, subgoals)
        summary["weighted"] = {**summarize(w_rows, w_target, w_others), "subgoals": w_rows}
        pooled["weighted"] = (w_target, w_others)
        # per sample as "scores", for calibrating a probe's cut points and for figures on a subset
        summary["weighted"]["scores"] = per_sample(clean_w, weighted, subgoals)
    summary |= {
        "cost": {k: round(sum(c[k] for c in costs), 1) if k == "seconds" else sum(c[k] for c in costs) for k in costs[0]},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "scores": per_sample(clean, verdicts, subgoals),
    }
    return summary, pooled


def run(judge: Judge, limit: int = 30, domains: list[str] | None = None, workdir: Path | None = None) -> dict:
    """Score clean and corrupted subsets of each domain; return the report (see the module docstring)."""
    names = domains or list(DOMAINS)
    results: list[dict] = []
    pooled: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name in names:
            summary, drops_by = run_domain(judge, DOMAINS[name], limit, Path(tmp) / name)
            results.append(summary)
            for signal, (on_target, on_others) in drops_by.items():
                t, o = pooled.setdefault(signal, ([], []))
                t += on_target
                o += on_others
    rows = [r for d in results for r in d["subgoals"]]
    report = {
        "experiment": "corruption",
        **judge.describe(),
        "limit": limit,
        "domains": results,
        "overall": {"samples": sum(d["samples"] for d in results), **summarize(rows, *pooled["verdict"])},
        "paper": PAPER,
    }
    if "weighted" in pooled:
        w_rows = [r for d in results for r in d.get("weighted", {}).get("subgoals", [])]
        report["overall"]["weighted"] = summarize(w_rows, *pooled["weighted"])
    return report


def markdown(report: dict) -> str:
    """The report as a Markdown section (one row per domain and corruption)."""
    head = (f"### corruption — {report['model']} ({report['mode']}{', anchors' if report['anchors'] else ''}), "
            f"up to {report['limit']} samples per domain\n")
    rows = []
    for d in report["domains"]:
        for r in d["subgoals"]:
            rows.append([d["domain"], f"{r['subgoal_id']} {r['title']}", r["corruption"], r["judged"],
                         num(r["clean_mean"]), num(r["corrupted_mean"]), pct(r["target_drop"]), pct(r["others_drop"]),
                         num(r["cohens_d"])])
        rows.append([f"**{d['domain']}** ({d['task']})", "all", "", d["samples"], "", "", f"**{pct(d['target_drop'])}**",
                     f"**{pct(d['others_drop'])}**", f"**{num(d['cohens_d'])}**"])
    o, p = report["overall"], report["paper"]
    rows.append(["**all domains**", "", "", o["samples"], "", "", f"**{pct(o['target_drop'])}**", f"**{pct(o['others_drop'])}**",
                 f"**{num(o['cohens_d'])}**"])
    rows.append(["paper (arXiv 2604.27547)", "", "", "", "", "", pct(p["target_drop"]), pct(p["others_drop"]), num(p["cohens_d"])])
    body = table(["domain", "corrupted subgoal", "corruption", "n", "clean mean", "corrupted mean", "drop on target",
                  "drop on others", "Cohen's d"], rows)
    if "weighted" in o:
        w = o["weighted"]
        rows.append(["**all domains, G-Eval weighted**", "", "", o["samples"], "", "", f"**{pct(w['target_drop'])}**",
                     f"**{pct(w['others_drop'])}**", f"**{num(w['cohens_d'])}**"])
        body = table(["domain", "corrupted subgoal", "corruption", "n", "clean mean", "corrupted mean", "drop on target",
                      "drop on others", "Cohen's d"], rows)
    calls = sum(d["cost"]["calls"] for d in report["domains"])
    failed = sum(d["cost"]["failed"] for d in report["domains"])
    foot = (f"\nn: corrupted samples judged (the domain row: clean samples). Drops are relative to the clean mean; "
            f"d compares per-sample drops on the target with those on the other subgoals. {calls} judge calls, "
            f"{failed} failed judgments.")
    return head + "\n" + body + "\n" + foot


def main(argv: list[str] | None = None) -> dict:
    """Run the experiment from the command line; writes and returns the report (see the module docstring)."""
    p = parser(__doc__, limit=30, limit_help="samples per domain (default 30)")
    p.add_argument("--domains", nargs="+", choices=sorted(DOMAINS), help="only these domains (default: all four)")
    args = p.parse_args(argv)
    with endpoint(args) as judge:
        report = run(judge, args.limit, args.domains)
    save(args.out, "corruption", report, markdown(report), by_mode=True)
    return report


if __name__ == "__main__":
    main()
