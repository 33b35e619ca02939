"""Per-subgoal coverage from the judgments: how many samples really teach each subgoal, and how well."""

from __future__ import annotations

import statistics

from pydantic import BaseModel, Field

from goalcover.tools.goal import current_goal
from goalcover.tools.errors import BadInput
from goalcover.tools.models import Sample
from goalcover.tools.store import JUDGE_KEY
from goalcover.tools.workspace import Workspace



class SubgoalCoverage(BaseModel):
    """One subgoal's row of the coverage report."""

    id: str
    title: str
    supporting: int = Field(description="samples scoring at or above the support threshold")
    share: float = Field(description="supporting / samples")
    mean: float | None = Field(description="mean score over the scored samples")
    weighted_mean: float | None = Field(
        None, description="mean G-Eval probability-weighted score, over the judgments that have one (GOALCOVER_JUDGE_LOGPROBS)"
    )
    weak: bool
    scored: int
    failed: int
    histogram: dict[int, int] = Field(description="score -> number of samples")
    best_sample_ids: list[str] = Field(description="the highest-scoring samples, best first")
    ci_low: float | None = Field(None, description="estimated coverage only: 95% interval of `share`")
    ci_high: float | None = None
    p_weak: float | None = Field(None, description="estimated coverage only: probability that the subgoal is weak")
    mean_ci_low: float | None = Field(None, description="estimated coverage only: bootstrap 95% interval of `mean`")
    mean_ci_high: float | None = None


class Failure(BaseModel):
    """A sample × subgoal pair whose judgment failed (retried by the next run)."""

    sample_id: str
    subgoal_id: str
    error: str


class Thresholds(BaseModel):
    """The rules coverage was computed with (from settings): scores are 1-5, shares fractions 0-1."""

    support: int = Field(description="a sample supports a subgoal at this score or above")
    weak_share: float = Field(description="weak when fewer than this share of samples support it")
    weak_relative: float = Field(description="... or less than this times the median subgoal's share")
    weak_mean: float | None = Field(description="... or, when set, a mean score below this")
    off_goal_max: int = Field(description="a sample is off-goal when no subgoal scores above this")

    def __getitem__(self, key: str):
        """`thresholds["support"]`, as callers written against the earlier dict read it."""
        return getattr(self, key)


class EstimateInfo(BaseModel):
    """How an estimated coverage was measured: n samples judged out of N, at this confidence."""

    samples: int
    population: int
    confidence: float


class CoverageReport(BaseModel):
    """Per-subgoal coverage of the dataset (and with accepted synthetic samples, in `after`)."""

    goal: str
    samples: int
    failed: int = Field(description="sample × subgoal pairs whose judgment failed (retried on the next run)")
    unscored: int = Field(description="pairs not judged yet")
    subgoals: list[SubgoalCoverage]
    off_goal: int = Field(description="samples that no subgoal scores above the off-goal threshold")
    off_goal_ids: list[str]
    judge: dict = Field(description="the judge the scores come from: model, prompt_version, mode; empty before scoring")
    thresholds: Thresholds
    failures: list[Failure] = []
    synthetic_accepted: int = 0
    after: list[SubgoalCoverage] | None = Field(None, description="coverage with the accepted synthetic samples added")
    estimate: EstimateInfo | None = Field(
        None, description="set when coverage is estimated from a stratified sample (the data is not fully scored)"
    )


def sample_scores(ws: Workspace, samples: list[Sample] | None = None) -> tuple[dict[str, dict[str, tuple[int, str]]], dict]:
    """(sample id -> subgoal id -> (score 1-5, explanation), the judge's meta) for the current goal and the
    last judge, over `samples` (default the dataset); ({}, {}) before any scoring."""
    goal = current_goal(ws)
    judge = ws.store.get_meta(JUDGE_KEY)
    if judge is None:
        return {}, {}
    judged = ws.store.judgments_for(judge["prompt_version"], judge["model"])
    scores: dict[str, dict[str, tuple[int, str]]] = {}
    for sample in ws.store.samples() if samples is None else samples:
        row = {g.id: judged[(sample.content_hash, g.hash)] for g in goal.subgoals if (sample.content_hash, g.hash) in judged}
        scores[sample.id] = row
    return scores, judge


def sample_weighted(ws: Workspace, samples: list[Sample], judge: dict) -> dict[str, dict[str, float]]:
    """sample id -> subgoal id -> G-Eval weighted score, where the judge recorded one."""
    if not judge:
        return {}
    goal = current_goal(ws)
    weighted = ws.store.weighted_scores_for(judge["prompt_version"], judge["model"])
    if not weighted:
        return {}
    return {
        sample.id: {g.id: weighted[(sample.content_hash, g.hash)] for g in goal.subgoals if (sample.content_hash, g.hash) in weighted}
        for sample in samples
    }


def coverage(ws: Workspace, best: int = 5) -> CoverageReport:
    """Coverage of the current goal from the last judge's stored judgments (no model call): per subgoal,
    supporting samples, share, mean, histogram, weak flag and the `best` best sample ids; off-goal samples,
    failed and unscored pairs; coverage after accepted synthetic samples. Raises BadInput when the
    workspace has no goal or no samples."""
    goal = current_goal(ws)
    assert goal is not None
    settings = ws.settings
    samples = ws.store.samples()
    if not samples:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    scores, judge = sample_scores(ws, samples)
    failures_by_key = ws.store.failures_for(judge["prompt_version"], judge["model"]) if judge else {}
    failures: list[Failure] = []
    for sample in samples:
        for g in goal.subgoals:
            error = failures_by_key.get((sample.content_hash, g.hash))
            if error and g.id not in scores.get(sample.id, {}):
                failures.append(Failure(sample_id=sample.id, subgoal_id=g.id, error=error))
    # Read from the store, not through synthesis.py: synthesis depends on coverage, not the other way round.
    accepted = [
        Sample(id=r["id"], format=r["format"], source="synthetic", line=0, record=r["record"], text=r["text"])
        for r in ws.store.synthetic_rows(state="accepted")
    ]
    weighted = sample_weighted(ws, samples + accepted, judge)  # keyed by sample id: one lookup serves both
    rows = _rows(goal, scores, len(samples), failures, settings, best, weighted)
    after = None
    if accepted and judge:
        extra, _ = sample_scores(ws, accepted)
        after = _rows(goal, {**scores, **extra}, len(samples) + len(accepted), failures, settings, best, weighted)
    judged_pairs = sum(len(per) for per in scores.values())
    unscored = len(samples) * len(goal.subgoals) - judged_pairs - len(failures)
    estimated = _apply_estimate(ws, goal, samples, scores, rows) if unscored and judge else None
    complete = [sid for sid, per in scores.items() if len(per) == len(goal.subgoals)]
    off_goal = [sid for sid in complete if max(v for v, _ in scores[sid].values()) <= settings.off_goal_max]
    return CoverageReport(
        goal=goal.text,
        samples=len(samples),
        failed=len(failures),
        unscored=unscored,
        subgoals=rows,
        off_goal=len(off_goal),
        off_goal_ids=off_goal,
        judge=judge or {},
        thresholds=Thresholds(
            support=settings.support_threshold,
            weak_share=settings.weak_share,
            weak_relative=settings.weak_relative,
            weak_mean=settings.weak_mean,
            off_goal_max=settings.off_goal_max,
        ),
        failures=failures,
        synthetic_accepted=len(accepted),
        after=after,
        estimate=estimated,
    )


def _apply_estimate(ws: Workspace, goal, samples: list[Sample], scores, rows: list[SubgoalCoverage]) -> EstimateInfo | None:
    """Where a saved sample design matches the dataset, replace each row's share and mean (biased while the
    data is partly scored) by the stratified estimates with their intervals, and decide `weak` on them."""
    from goalcover.tools.estimate import estimate
    from goalcover.tools.strata import current_design

    design = current_design(ws, samples)
    if design is None:
        return None
    settings = ws.settings
    est = estimate(design, {i: {g: v for g, (v, _) in per.items()} for i, per in scores.items()},
                   [g.id for g in goal.subgoals], support=settings.support_threshold,
                   weak_share=settings.weak_share, weak_relative=settings.weak_relative)
    by_id = {r.id: r for r in est.subgoals}
    for row in rows:
        found = by_id[row.id]
        row.share, row.ci_low, row.ci_high, row.p_weak = found.share, found.ci_low, found.ci_high, found.p_weak
        if found.mean is not None:
            row.mean, row.mean_ci_low, row.mean_ci_high = found.mean, found.mean_ci_low, found.mean_ci_high
    _decide_weak(rows, settings)
    return EstimateInfo(samples=est.samples, population=est.population, confidence=est.confidence)


def _rows(goal, scores, total: int, failures: list[Failure], settings, best: int,
          weighted: dict[str, dict[str, float]] | None = None) -> list[SubgoalCoverage]:
    rows = []
    weighted = weighted or {}
    for g in goal.subgoals:
        values = [(sid, per[g.id][0]) for sid, per in scores.items() if g.id in per]
        numbers = [v for _, v in values]
        fine = {sid: weighted[sid][g.id] for sid, _ in values if g.id in weighted.get(sid, {})}
        supporting = sum(v >= settings.support_threshold for v in numbers)
        share = supporting / total
        mean = round(statistics.fmean(numbers), 3) if numbers else None
        rows.append(
            SubgoalCoverage(
                id=g.id,
                title=g.title,
                supporting=supporting,
                share=round(share, 4),
                mean=mean,
                weighted_mean=round(statistics.fmean(fine.values()), 3) if fine else None,
                weak=False,  # decided below, against the other subgoals
                scored=len(numbers),
                failed=sum(f.subgoal_id == g.id for f in failures),
                histogram={k: numbers.count(k) for k in range(1, 6)},
                # Ties on the 1-5 score are broken by the weighted score, where there is one.
                best_sample_ids=[
                    sid for sid, v in sorted(values, key=lambda x: (-x[1], -fine.get(x[0], x[1])))[:best]
                    if v >= settings.support_threshold
                ],
            )
        )
    _decide_weak(rows, settings)
    return rows


def _decide_weak(rows: list[SubgoalCoverage], settings) -> None:
    # Weak: too few samples teach it, absolutely or next to the typical subgoal of this goal. A mean over
    # all samples is low for any narrow subgoal in a varied dataset, so that rule is opt-in.
    median_share = statistics.median([r.share for r in rows if r.scored]) if any(r.scored for r in rows) else 0.0
    for row in rows:
        row.weak = bool(row.scored) and (
            row.share < settings.weak_share
            or row.share < settings.weak_relative * median_share
            or (settings.weak_mean is not None and row.mean is not None and row.mean < settings.weak_mean)
        )
