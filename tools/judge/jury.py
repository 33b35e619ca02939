"""A jury: several judge models score the same pairs; coverage reads their consensus, the report their
agreement.

`score_jury` runs the ordinary scoring (tools/judge/scoring.py) once per model — each with its own cache rows,
so a juror never pays twice for a pair — and then writes the consensus of every pair all jurors judged
as judgments of the model `jury(M1,M2,…)` under the same prompt version. Everything downstream (coverage,
gaps, why, the index) reads the consensus like any judge's:

- score: the jurors' mean, rounded half up — except that support follows the majority: when more than
  half of the jurors support the pair (score >= the support threshold) the consensus is at least the
  threshold, otherwise below it;
- explanation: each juror's, prefixed by its model and score.

Inter-judge agreement (per subgoal: mean pairwise quadratic-weighted Cohen's κ and the share of pairs all
jurors scored alike) and the pairs they disagree on most are computed in `jury_agreement`.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
from pydantic import BaseModel

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.goal import current_goal
from goalcover.tools.judge.judge_ref import JudgeRef, jury_name, save_judge
from goalcover.tools.judge.scoring import Mode, ScoreResult, score
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.core.lock import writes


def parse_judges(text: str) -> list[str]:
    """`M1,M2[,M3]` as a list of 2-5 distinct model names; raises BadInput otherwise."""
    models = [m.strip() for m in text.split(",") if m.strip()]
    if len(models) < 2 or len(set(models)) != len(models) or len(models) > 5:
        raise BadInput(f"--judges {text!r}: name 2 to 5 different judge models, comma-separated")
    return models


class JurorRun(BaseModel):
    """One juror's part of a jury run."""

    model: str
    calls: int
    failed: int
    new: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


def consensus(scores: list[int], support: int) -> int:
    """The jury's score of one pair: the mean rounded half up, moved to the support threshold's side the
    majority is on (more than half support -> at least `support`; otherwise below it)."""
    value = math.floor(sum(scores) / len(scores) + 0.5)
    majority = sum(s >= support for s in scores) * 2 > len(scores)
    if majority and value < support:
        return support
    if not majority and value >= support:
        return support - 1
    return value


@writes("score")
async def score_jury(ws: Workspace, models: list[str] | JudgeRef, mode: Mode | None = None,
                     **kwargs) -> tuple[ScoreResult, list[JurorRun]]:
    """Score with every juror of the jury `models` (a JudgeRef with jurors, or the model names, resolved
    with `mode`, default GOALCOVER_JUDGE_MODE) — each at its endpoint from GOALCOVER_JUDGE_BASE_URLS, else
    the judge's — then store the consensus judgments and make the jury the current judge. Returns (the
    result, with judgments/failed counted on the consensus and calls/tokens/cost summed over the jurors;
    each juror's run). Keyword arguments go to scoring.score. Raises BadInput for fewer than two models."""
    jury = models if isinstance(models, JudgeRef) else JudgeRef.resolve(ws.settings, mode, jurors=models)
    models, mode = list(jury.jurors), jury.mode
    if len(models) < 2:
        raise BadInput("a jury needs at least two judge models")
    runs: list[JurorRun] = []
    results: list[ScoreResult] = []
    for model in models:
        result = await score(ws, jury.juror(model, ws.settings), **kwargs)
        results.append(result)
        runs.append(JurorRun(model=model, calls=result.calls, failed=result.failed, new=result.new,
                             prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                             cost=result.cost))
    version = jury.prompt_version  # every juror judged under it
    write_consensus(ws, models, version)
    save_judge(ws, jury)
    goal = current_goal(ws)
    assert goal is not None
    _, judged, failed = ws.store.pair_counts(version, jury_name(models), {g.hash: g.id for g in goal.subgoals})
    total = ScoreResult(
        judgments=judged, calls=sum(r.calls for r in results), failed=max(failed, max(r.failed for r in results)),
        cached=min(r.cached for r in results), new=sum(r.new for r in results), mode=mode, model=jury_name(models),
        prompt_tokens=sum(r.prompt_tokens for r in results), completion_tokens=sum(r.completion_tokens for r in results),
        cost=round(sum(r.cost for r in results), 6), repaired=sum(r.repaired for r in results),
        stopped=next((r.stopped for r in results if r.stopped), None), elapsed_s=round(sum(r.elapsed_s for r in results), 3),
    )
    return total, runs


def _juror_scores(ws: Workspace, version: str, models: list[str], subgoal_hash: str) -> dict[str, dict[str, tuple[str, int, str]]]:
    """sample hash -> model -> (sample id, score, explanation), for the pairs every juror judged."""
    per: dict[str, dict[str, tuple[str, int, str]]] = {}
    for model in models:
        for sample_hash, sample_id, score_, explanation, _ in ws.store.judgments_of_subgoal(version, model, subgoal_hash):
            per.setdefault(sample_hash, {})[model] = (sample_id, score_, explanation)
    return {h: v for h, v in per.items() if len(v) == len(models)}


def write_consensus(ws: Workspace, models: list[str], version: str) -> int:
    """Store the consensus judgment (see `consensus`) of every pair all `models` judged, under the model
    `jury_name(models)`; returns how many consensus judgments it wrote (one per distinct content × subgoal)."""
    goal = current_goal(ws)
    assert goal is not None
    name = jury_name(models)
    rows = []
    for g in goal.subgoals:
        for sample_hash, by_model in _juror_scores(ws, version, models, g.hash).items():
            scores = [by_model[m][1] for m in models]
            rows.append({
                "sample_hash": sample_hash, "subgoal_hash": g.hash, "prompt_version": version, "model": name,
                "sample_id": by_model[models[0]][0], "subgoal_id": g.id,
                "score": consensus(scores, ws.settings.support_threshold),
                "explanation": " | ".join(f"{m} ({by_model[m][1]}): {by_model[m][2]}" for m in models),
            })
    ws.store.save_judgments(rows)
    return len(rows)


class JurySubgoal(BaseModel):
    """Inter-judge agreement on one subgoal: pairs all jurors judged, the share they scored alike, and the
    mean pairwise quadratic-weighted Cohen's κ (None where undefined)."""

    pairs: int
    exact: float
    kappa: float | None


class Disagreement(BaseModel):
    """A pair the jurors disagree on: their scores by model, and the spread (max - min)."""

    sample_id: str
    subgoal_id: str
    scores: dict[str, int]
    spread: int


class JuryAgreement(BaseModel):
    """The jury's agreement per subgoal id, and the pairs with the widest spread (for review)."""

    models: list[str]
    subgoals: dict[str, JurySubgoal]
    disagreements: list[Disagreement]


def jury_agreement(ws: Workspace, goal, judge: JudgeRef | None, top: int = 10) -> JuryAgreement | None:
    """For a jury judge (a JudgeRef with jurors): per subgoal, mean pairwise quadratic-weighted Cohen's κ
    (sklearn.metrics.cohen_kappa_score) and exact agreement over the pairs all jurors judged, and the
    `top` pairs with the largest spread. None for a single judge."""
    from sklearn.metrics import cohen_kappa_score

    if judge is None or not judge.jurors:
        return None
    models = list(judge.jurors)
    subgoals, spread = {}, []
    for g in goal.subgoals:
        per = _juror_scores(ws, judge.prompt_version, models, g.hash)
        if not per:
            continue
        matrix = np.array([[per[h][m][1] for m in models] for h in per])
        kappas = []
        for a, b in itertools.combinations(range(len(models)), 2):
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore")
                k = float(cohen_kappa_score(matrix[:, a], matrix[:, b], weights="quadratic", labels=[1, 2, 3, 4, 5]))
            if not math.isnan(k):
                kappas.append(k)
        subgoals[g.id] = JurySubgoal(pairs=len(per), exact=round(float(np.mean(matrix.min(1) == matrix.max(1))), 3),
                                     kappa=round(float(np.mean(kappas)), 3) if kappas else None)
        spread += [Disagreement(sample_id=per[h][models[0]][0], subgoal_id=g.id,
                                scores={m: per[h][m][1] for m in models}, spread=int(row.max() - row.min()))
                   for h, row in zip(per, matrix) if row.max() > row.min()]
    spread.sort(key=lambda d: (-d.spread, d.subgoal_id, d.sample_id))
    return JuryAgreement(models=models, subgoals=subgoals, disagreements=spread[:top])
