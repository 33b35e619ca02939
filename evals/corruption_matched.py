"""Two corruption runs compared on the same samples: one run's figures recomputed on the samples of another.

A probe run can afford more samples than a rubric run of the same budget (`--limit 4` against `--limit 2`
here); since `pick` takes samples in file order, the smaller run's samples are a subset of the larger's,
and this recomputes the larger run's drops and Cohen's d (on the verdicts and, where recorded, the
weighted scores) on exactly the smaller run's samples, so the two modes are compared like for like.

    python -m goalcover.evals.corruption_matched evals/results/corruption-M-probe.json \\
        --on evals/results/corruption-M-pair-logprobs.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from goalcover.evals.corruption import DOMAINS, Scores, analyse, summarize
from goalcover.tools.core.goal import load_goal_file


def _rebuild(per_sample: dict, keep: set[str]) -> tuple[Scores, dict[str, tuple[list[str], Scores]]]:
    """(clean scores, {target: (ids, corrupted scores)}) of a results file's per-sample scores
    {target: {id: {subgoal: [clean, corrupted]}}}, for the ids in `keep`."""
    clean: Scores = {}
    corrupted_by: dict[str, tuple[list[str], Scores]] = {}
    for target, samples in per_sample.items():
        ids = [i for i in samples if i in keep]
        corrupted: Scores = {}
        for i in ids:
            for g, (before, after) in samples[i].items():
                if before is not None:
                    clean.setdefault(i, {})[g] = before
                if after is not None:
                    corrupted.setdefault(i, {})[g] = after
        corrupted_by[target] = (ids, corrupted)
    return clean, corrupted_by


def matched(report: dict, on: dict) -> dict:
    """`report`'s summary figures per domain and overall, on the samples `on` judged. Raises KeyError
    when `on` has a domain `report` lacks."""
    by_domain = {d["domain"]: d for d in report["domains"]}
    out: dict = {"model": report["model"], "mode": report["mode"], "on": {"mode": on["mode"], "limit": on["limit"]},
                 "domains": {}, "overall": {}}
    signals = ["verdict"] + (["weighted"] if all("scores" in d.get("weighted", {}) for d in report["domains"]) else [])
    for signal in signals:
        pooled_rows, pooled_t, pooled_o = [], [], []
        for other in on["domains"]:
            domain = by_domain[other["domain"]]
            keep = {i for samples in other["scores"].values() for i in samples}
            spec = DOMAINS[other["domain"]]
            goal = load_goal_file(spec.goal)
            per_sample = domain["scores"] if signal == "verdict" else domain["weighted"]["scores"]
            clean, corrupted_by = _rebuild(per_sample, keep)
            rows, on_target, on_others = analyse(goal, spec.corruptions, clean, corrupted_by, [s.id for s in goal.subgoals])
            out["domains"].setdefault(other["domain"], {})[signal] = summarize(rows, on_target, on_others)
            pooled_rows += rows
            pooled_t += on_target
            pooled_o += on_others
        out["overall"][signal] = summarize(pooled_rows, pooled_t, pooled_o)
    return out


def main(argv: list[str] | None = None) -> dict:
    """Compare two saved corruption runs on their shared samples; returns the comparison."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path, help="the corruption results file to recompute")
    p.add_argument("--on", type=Path, required=True, help="the corruption results file whose samples to use")
    args = p.parse_args(argv)
    result = matched(json.loads(args.report.read_text()), json.loads(args.on.read_text()))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
