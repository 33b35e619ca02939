"""Per-subgoal coverage from the judgments: how many samples really teach each subgoal, and how well."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, field_serializer

from goalcover.tools.core.goal import current_goal
from goalcover.tools.core.errors import BadInput
from goalcover.tools.judge.judge_quality import JudgeQuality, judge_quality
from goalcover.tools.judge.judge_ref import JudgeRef, current_judge
from goalcover.tools.core.shapes import Sample
from goalcover.tools.core.store import JUDGE_KEY  # noqa: F401 (re-exported: views, tools_data, synthesis import it here)
from goalcover.tools.core.workspace import Workspace



class SubgoalCoverage(BaseModel):
    """One subgoal's row of the coverage report."""

    id: str
    title: str
    supporting: int = Field(
        description="samples that support it: G-Eval weighted score >= thresholds.support_weighted where the "
        "judge recorded one, else 1-5 score >= thresholds.support"
    )
    supporting_verdict: int | None = Field(
        None, description="set when weighted scores exist: supporting samples counted by the 1-5 verdict alone"
    )
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
    predicted: bool = Field(False, description="estimated coverage only: share and interval are prediction-powered (`score --predict`)")


class Failure(BaseModel):
    """A sample × subgoal pair whose judgment failed (retried by the next run)."""

    sample_id: str
    subgoal_id: str
    error: str


class Thresholds(BaseModel):
    """The rules coverage was computed with (from settings): scores are 1-5, shares fractions 0-1."""

    support: int = Field(description="a sample supports a subgoal at this score or above")
    support_weighted: float = Field(3.5, description="... or, where it has a G-Eval weighted score, at this weighted score or above")
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
    kind: str = Field("sample", description='"sample": a stratified random sample (`score --sample`); "partial": the '
                      "samples scored so far by a run under way or stopped (tools/measure/partial.py)")


class CoverageReport(BaseModel):
    """Per-subgoal coverage of the dataset (and with accepted synthetic samples, in `after`)."""

    goal: str
    samples: int
    failed: int = Field(description="sample × subgoal pairs whose judgment failed (retried on the next run)")
    unscored: int = Field(description="pairs not judged yet")
    subgoals: list[SubgoalCoverage]
    off_goal: int = Field(description="samples that no subgoal scores above the off-goal threshold")
    off_goal_ids: list[str]
    judge: JudgeRef | None = Field(
        None, description="the judge the scores come from: model, prompt_version, mode (jury); {} in JSON before scoring")
    thresholds: Thresholds
    failures: list[Failure] = []
    synthetic_accepted: int = 0
    after: list[SubgoalCoverage] | None = Field(None, description="coverage with the accepted synthetic samples added")
    estimate: EstimateInfo | None = Field(
        None, description="set when coverage is estimated from a stratified sample (the data is not fully scored)"
    )
    judge_quality: JudgeQuality = Field(
        default_factory=JudgeQuality,
        description="how far to trust the judge: agreement with the user's labels, length bias, order check, failure rates, flags",
    )

    @field_serializer("judge")
    def _judge_json(self, judge: JudgeRef | None) -> dict:
        return judge.to_stored() if judge else {}  # the stored shape; {} before scoring, as always


def _subgoal_map(goal) -> dict[str, str]:
    return {g.hash: g.id for g in goal.subgoals}


def sample_scores(ws: Workspace, samples: list[Sample] | None = None, *, explanations: bool = True,
                  judge: JudgeRef | None = None) -> tuple[dict[str, dict[str, tuple[int, str]]], JudgeRef | None]:
    """(sample id -> subgoal id -> (score 1-5, explanation), the judge) for the current goal and `judge`
    (default the last one, `current_judge`), over `samples` (default the dataset, read by one SQL join
    without loading the samples); ({}, None) before any scoring. Holds every judgment of the dataset:
    whole-dataset passes that can go sample by sample use `store.iter_scores` instead."""
    goal = current_goal(ws)
    judge = judge or current_judge(ws)
    if judge is None:
        return {}, None
    if samples is None:
        scores = ws.store.iter_scores(judge.prompt_version, judge.model, _subgoal_map(goal), explanations=explanations)
        return dict(scores), judge
    judged = ws.store.judgments_among(judge.prompt_version, judge.model, [s.content_hash for s in samples])
    out: dict[str, dict[str, tuple[int, str]]] = {}
    for sample in samples:
        out[sample.id] = {
            g.id: judged[(sample.content_hash, g.hash)][:2] for g in goal.subgoals if (sample.content_hash, g.hash) in judged
        }
    return out, judge


def sample_weighted(ws: Workspace, samples: list[Sample], judge: JudgeRef | None) -> dict[str, dict[str, float]]:
    """sample id -> subgoal id -> G-Eval weighted score, where `judge` recorded one ({} for no judge)."""
    if not judge:
        return {}
    goal = current_goal(ws)
    judged = ws.store.judgments_among(judge.prompt_version, judge.model, [s.content_hash for s in samples])
    out = {
        sample.id: {
            g.id: judged[(sample.content_hash, g.hash)][2]
            for g in goal.subgoals
            if judged.get((sample.content_hash, g.hash), (0, "", None))[2] is not None
        }
        for sample in samples
    }
    return out if any(out.values()) else {}


@dataclass
class _Tally:
    """One subgoal's counts: samples per score, the weighted scores' sum and count, and the best
    candidates (sample id, score, weighted score or None) in ranking order."""

    histogram: Counter = field(default_factory=Counter)
    weighted_sum: float = 0.0
    weighted_n: int = 0
    best: list[tuple[str, int, float | None]] = field(default_factory=list)
    supporting: int = 0
    supporting_verdict: int = 0

    def add(self, score: int, samples: int = 1, weighted_sum: float = 0.0, weighted_n: int = 0) -> None:
        self.histogram[score] += samples
        self.weighted_sum += weighted_sum
        self.weighted_n += weighted_n

    def copy(self) -> "_Tally":
        return _Tally(Counter(self.histogram), self.weighted_sum, self.weighted_n, list(self.best),
                      self.supporting, self.supporting_verdict)


def supports(score: int, weighted: float | None, settings) -> bool:
    """Whether one judgment supports its subgoal: the G-Eval weighted score decides where there is one
    (>= settings.support_weighted, default 3.5), else the 1-5 verdict (>= settings.support_threshold)."""
    return weighted >= settings.support_weighted if weighted is not None else score >= settings.support_threshold


def coverage(ws: Workspace, best: int = 5, judge: JudgeRef | None = None) -> CoverageReport:
    """Coverage of the current goal from `judge`'s stored judgments (default the last judge's,
    `current_judge`; no model call): per subgoal,
    supporting samples, share, mean, histogram, weak flag and the `best` best sample ids; off-goal samples,
    failed and unscored pairs; coverage after accepted synthetic samples. Counted by SQL aggregates over
    the workspace's store (nothing loads every sample or judgment). Raises BadInput when the workspace
    has no goal or no samples."""
    goal = current_goal(ws)
    assert goal is not None
    settings = ws.settings
    total = ws.store.count_samples()
    if not total:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    judge = judge or current_judge(ws)
    subgoals = _subgoal_map(goal)
    tallies = {g.id: _Tally() for g in goal.subgoals}
    failures: list[Failure] = []
    off_goal: list[str] = []
    if judge:
        version, model = judge.key
        for subgoal_id, score, n, weighted_sum, weighted_n in ws.store.score_tallies(version, model, subgoals):
            tallies[subgoal_id].add(score, n, weighted_sum, weighted_n)
        for subgoal_id, (n, n_verdict) in ws.store.support_counts(
                version, model, subgoals, settings.support_threshold, settings.support_weighted).items():
            tallies[subgoal_id].supporting, tallies[subgoal_id].supporting_verdict = n, n_verdict
        best_by_subgoal = ws.store.best_scored(version, model, subgoals, settings.support_threshold, best, settings.support_weighted)
        for subgoal_id, found in best_by_subgoal.items():
            tallies[subgoal_id].best = found
        failures = [Failure(sample_id=i, subgoal_id=sid, error=e) for i, sid, e in ws.store.unjudged_failures(version, model, subgoals)]
        off_goal = ws.store.off_goal_ids(version, model, subgoals, settings.off_goal_max)
    # Read from the store, not through synthesis.py: synthesis depends on coverage, not the other way round.
    accepted = [
        Sample(id=r["id"], format=r["format"], source="synthetic", line=0, record=r["record"], text=r["text"])
        for r in ws.store.synthetic_rows(state="accepted")
    ]
    rows = _rows(goal, tallies, total, failures, settings, best)
    after = None
    if accepted and judge:
        extra, _ = sample_scores(ws, accepted, judge=judge)
        weighted = sample_weighted(ws, accepted, judge)
        more = {sid: tally.copy() for sid, tally in tallies.items()}
        for sample_id, per in extra.items():
            for sid, (score, _) in per.items():
                w = weighted.get(sample_id, {}).get(sid)
                more[sid].add(score, 1, w or 0.0, w is not None)
                more[sid].supporting += supports(score, w, settings)
                more[sid].supporting_verdict += score >= settings.support_threshold
                if supports(score, w, settings):
                    more[sid].best.append((sample_id, score, w))
        after = _rows(goal, more, total + len(accepted), failures, settings, best)
    judged_pairs = sum(sum(t.histogram.values()) for t in tallies.values())
    unscored = total * len(goal.subgoals) - judged_pairs - len(failures)
    estimated = _apply_estimate(ws, goal, rows, judge) if unscored and judge else None
    if estimated is None and unscored and judge:  # a run under way or stopped: over the scored samples only
        from goalcover.tools.measure.partial import apply_partial

        scored = apply_partial(rows, total, settings)
        estimated = EstimateInfo(samples=scored, population=total, confidence=0.95, kind="partial")
    return CoverageReport(
        goal=goal.text,
        samples=total,
        failed=len(failures),
        unscored=unscored,
        subgoals=rows,
        off_goal=len(off_goal),
        off_goal_ids=off_goal,
        judge=judge,
        thresholds=Thresholds(
            support=settings.support_threshold,
            support_weighted=settings.support_weighted,
            weak_share=settings.weak_share,
            weak_relative=settings.weak_relative,
            weak_mean=settings.weak_mean,
            off_goal_max=settings.off_goal_max,
        ),
        failures=failures,
        synthetic_accepted=len(accepted),
        after=after,
        estimate=estimated,
        judge_quality=judge_quality(ws, goal, judge, rows),
    )


def _apply_estimate(ws: Workspace, goal, rows: list[SubgoalCoverage], judge: JudgeRef) -> EstimateInfo | None:
    """Where a saved sample design matches the dataset, replace each row's share and mean (biased while the
    data is partly scored) by the stratified estimates with their intervals, and decide `weak` on them.
    Reads only the drawn samples' judgments."""
    from goalcover.tools.measure.estimate import estimate
    from goalcover.tools.measure.strata import current_design

    design = current_design(ws)
    if design is None:
        return None
    settings = ws.settings
    drawn = ws.store.samples(design.drawn_ids())
    scores, _ = sample_scores(ws, drawn, explanations=False, judge=judge)
    weighted = sample_weighted(ws, drawn, judge)
    decided = {i: {g: supports(v, weighted.get(i, {}).get(g), settings) for g, (v, _) in per.items()} for i, per in scores.items()}
    est = estimate(design, {i: {g: v for g, (v, _) in per.items()} for i, per in scores.items()},
                   [g.id for g in goal.subgoals], support=settings.support_threshold,
                   weak_share=settings.weak_share, weak_relative=settings.weak_relative, supports=decided)
    by_id = {r.id: r for r in est.subgoals}
    for row in rows:
        found = by_id[row.id]
        row.share, row.ci_low, row.ci_high, row.p_weak = found.share, found.ci_low, found.ci_high, found.p_weak
        if found.mean is not None:
            row.mean, row.mean_ci_low, row.mean_ci_high = found.mean, found.mean_ci_low, found.mean_ci_high
    from goalcover.tools.measure.predict import apply_predicted  # score --predict's shares, where its predictor helps

    apply_predicted(ws, rows)
    _decide_weak(rows, settings)
    return EstimateInfo(samples=est.samples, population=est.population, confidence=est.confidence)


def _rows(goal, tallies: dict[str, _Tally], total: int, failures: list[Failure], settings, best: int) -> list[SubgoalCoverage]:
    rows = []
    for g in goal.subgoals:
        tally = tallies[g.id]
        scored = sum(tally.histogram.values())
        supporting = tally.supporting
        # The weighted score ranks where there is one, the 1-5 score elsewhere (stable: file order).
        ranked = sorted(tally.best, key=lambda c: (-(c[2] if c[2] is not None else c[1]), -c[1]))
        rows.append(
            SubgoalCoverage(
                id=g.id,
                title=g.title,
                supporting=supporting,
                supporting_verdict=tally.supporting_verdict if tally.weighted_n else None,
                share=round(supporting / total, 4),
                mean=round(sum(score * n for score, n in tally.histogram.items()) / scored, 3) if scored else None,
                weighted_mean=round(tally.weighted_sum / tally.weighted_n, 3) if tally.weighted_n else None,
                weak=False,  # decided below, against the other subgoals
                scored=scored,
                failed=sum(f.subgoal_id == g.id for f in failures),
                histogram={k: tally.histogram.get(k, 0) for k in range(1, 6)},
                best_sample_ids=[sid for sid, _, _ in ranked[:best]],
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

