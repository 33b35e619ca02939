"""Agent tools for scoring and coverage: the plan, the paid run (after the user's yes), coverage, comparisons
and one subgoal in detail."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, Field

from goalcover.agent.context import SubgoalRef, ToolContext, ToolResult, workspace_goal
from goalcover.agent.tools_goal import require_no_draft
from goalcover.tools.judge import scoring
from goalcover.tools.judge.judge_ref import JudgeRef
from goalcover.tools.measure.coverage import coverage as coverage_report
from goalcover.tools.measure.coverage import sample_scores
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.plans import scoring_plan

# --- scoring ----------------------------------------------------------------------------------------

class ScoringArgs(BaseModel):
    """Arguments of estimate_scoring."""

    mode: Literal["batched", "pair", "probe"] | None = Field(
        None, description="batched: one call per sample (cheaper); pair: one call per sample × subgoal; probe: one "
        "yes/no token per sample × subgoal (for small local models); default: the configured GOALCOVER_JUDGE_MODE",
    )


class RunScoringArgs(ScoringArgs):
    """Arguments of run_scoring."""

    max_cost: float | None = Field(None, ge=0, description="stop before spending more than this many USD")
    sample: int | None = Field(
        None, ge=1, description="score only a stratified random sample of this many samples and estimate coverage "
        "with 95% intervals (for big datasets; a later full run reuses every judgment)",
    )


def _mode(ctx: ToolContext, args: ScoringArgs) -> JudgeRef:
    """The judge: the mode asked for, else the workspace's GOALCOVER_JUDGE_MODE (JudgeRef.resolve, as the
    CLI and the app's buttons resolve it)."""
    return JudgeRef.resolve(ctx.ws.settings, args.mode)


def _plan(ctx: ToolContext, judge: JudgeRef, sample: int | None = None) -> dict:
    from goalcover.tools.core.plans import sampled_plan

    plan, _, _ = scoring.plan(ctx.ws, judge)
    return (sampled_plan(plan, sample) if sample is not None else plan).model_dump()


async def estimate_scoring(ctx: ToolContext, args: ScoringArgs) -> ToolResult:
    """What scoring would do and cost, without calling any model: pairs to score, pairs already cached,
    model calls, estimated tokens and USD (or that the price is unknown)."""
    judge = _mode(ctx, args)
    shown = scoring_plan(ctx.ws, judge)
    return ToolResult({**_plan(ctx, judge), "cost": shown.cost}, shown.text())


def scoring_preview(ctx: ToolContext, args: RunScoringArgs) -> dict | None:
    """The plan the user approves before run_scoring spends anything: {"plan": ScorePlan fields plus
    `title`, `rows`, `cost` (text)}, "question"}; None when nothing would be paid."""
    require_no_draft(ctx)
    judge = _mode(ctx, args)
    shown = scoring_plan(ctx.ws, judge, args.max_cost, sample=args.sample)
    if shown.free:
        return None
    plan = {**_plan(ctx, judge, args.sample), "title": shown.title, "rows": [list(r) for r in shown.rows], "cost": shown.cost}
    return {"plan": plan, "question": f"{shown.text()}; {plan['cached']:,} pairs are already scored. Run it?"}


async def run_scoring(ctx: ToolContext, args: RunScoringArgs) -> ToolResult:
    """Score every sample against every subgoal with the LLM judge (paid; the user confirms the plan
    first). Only missing pairs are scored; results are saved as they arrive."""
    require_no_draft(ctx)

    def progress(done: int, total: int, **fields: Any) -> None:
        ctx.progress("run_scoring", done, total, **fields)

    judge = _mode(ctx, args)
    if args.sample is not None:
        from goalcover.tools.measure.sampled import score_sampled

        result = await score_sampled(ctx.ws, judge, n=args.sample, max_cost=args.max_cost, progress=progress)
    else:
        result = await scoring.score(ctx.ws, judge, max_cost=args.max_cost, progress=progress)
    ctx.emit({"progress": {"tool": "run_scoring", "stage": "indexing scores"}})
    await asyncio.to_thread(scoring.index_scores, ctx.ws)
    data = result.to_json()
    status = "stopped" if result.stopped else "done"
    estimated = f"; coverage estimated from {result.estimate.samples} samples (95% intervals)" if result.estimate else ""
    return ToolResult(
        data,
        f"{result.new} new judgments, {result.failed} failed, {result.calls} calls, ${result.cost:.4f}{estimated}",
        update={"run": {"tool": "run_scoring", "status": status, "result": data}},
    )


# --- coverage ---------------------------------------------------------------------------------------

class CoverageArgs(BaseModel):
    """Arguments of coverage."""

    subgoals: list[SubgoalRef] = Field([], description="only these subgoal ids (default: all)")


def _coverage(ctx: ToolContext):
    report = coverage_report(ctx.ws)
    if not report.judge:
        raise BadInput("no scores yet: run scoring first (estimate_scoring, then run_scoring)")
    return report


def _row(row) -> dict:
    return {
        "id": row.id,
        "title": row.title,
        "supporting": row.supporting,
        "share": row.share,
        "mean": row.mean,
        "weak": row.weak,
        "scored": row.scored,
        "failed": row.failed,
        "histogram": row.histogram,
        "best_sample_ids": row.best_sample_ids,
        # Estimated coverage (a stratified sample was scored, not the whole dataset): the 95% interval.
        **({"ci_low": row.ci_low, "ci_high": row.ci_high, "p_weak": row.p_weak} if row.ci_low is not None else {}),
    }


async def coverage(ctx: ToolContext, args: CoverageArgs) -> ToolResult:
    """Per-subgoal coverage from the judge's scores: supporting samples (score at or above the support
    threshold), share, mean score, histogram of scores 1-5, whether it is weak, the best sample ids; plus
    off-goal samples, failed and unscored pairs."""
    report = _coverage(ctx)
    wanted = {s.upper() for s in args.subgoals}
    rows = [_row(r) for r in report.subgoals if not wanted or r.id in wanted]
    data = {
        "samples": report.samples,
        "subgoals": rows,
        "weak": [r["id"] for r in rows if r["weak"]],
        "off_goal": report.off_goal,
        "off_goal_ids": report.off_goal_ids[:20],
        "failed_pairs": report.failed,
        "unscored_pairs": report.unscored,
        "thresholds": report.thresholds.model_dump(),
    }
    if report.estimate:
        data["estimate"] = {**report.estimate.model_dump(), "note": "shares are estimates from a stratified sample, with 95% intervals"}
    if report.samples and len(report.off_goal_ids) > 20:
        data["off_goal_ids_note"] = f"first 20 of {report.off_goal}"
    return ToolResult(data, f"{len(rows)} subgoals, weak: {', '.join(data['weak']) or 'none'}")


class CompareArgs(BaseModel):
    """Arguments of compare_subgoals."""

    ids: list[SubgoalRef] = Field(min_length=2, max_length=8, description="subgoal ids to compare")


async def compare_subgoals(ctx: ToolContext, args: CompareArgs) -> ToolResult:
    """Compare subgoals side by side: coverage of each, and how many samples support several of them at
    once versus only one (with example ids)."""
    report = _coverage(ctx)
    ids = [s.upper() for s in args.ids]
    by_id = {r.id: r for r in report.subgoals}
    unknown = [s for s in ids if s not in by_id]
    if unknown:
        raise BadInput(f"no subgoal {', '.join(unknown)}; the goal has {', '.join(by_id)}")
    scores, _ = sample_scores(ctx.ws, explanations=False)
    threshold = report.thresholds.support
    supports = {sid: {x for x, per in scores.items() if per.get(sid, (0, ""))[0] >= threshold} for sid in ids}
    everyone = set.intersection(*supports.values())
    only = {sid: sorted(s - set().union(*(supports[o] for o in ids if o != sid))) for sid, s in supports.items()}
    data = {
        "subgoals": [_row(by_id[s]) for s in ids],
        "support_all": len(everyone),
        "support_all_ids": sorted(everyone)[:10],
        "support_only": {sid: {"count": len(v), "ids": v[:10]} for sid, v in only.items()},
    }
    return ToolResult(data, f"compared {', '.join(ids)}: {len(everyone)} samples support all")


class SubgoalArgs(BaseModel):
    """Arguments of subgoal_details."""

    subgoal_id: SubgoalRef = Field(description='e.g. "S3"')
    k: int = Field(5, ge=1, le=20, description="how many lowest- and highest-scoring samples to list")


async def subgoal_details(ctx: ToolContext, args: SubgoalArgs) -> ToolResult:
    """One subgoal in detail: its definition, coverage, and the lowest- and highest-scoring samples with
    the judge's explanation of each score (what the sample shows and lacks)."""
    report = _coverage(ctx)
    goal = workspace_goal(ctx.ws)
    assert goal is not None
    subgoal = goal.subgoal(args.subgoal_id)
    row = next(r for r in report.subgoals if r.id == subgoal.id)
    assert report.judge is not None  # _coverage refuses a workspace with no scores
    version, model = report.judge.key
    lowest = ctx.ws.store.extreme_scored(version, model, subgoal.hash, args.k, lowest=True)
    highest = ctx.ws.store.extreme_scored(version, model, subgoal.hash, args.k, lowest=False)
    pick = lambda rows: [{"id": sid, "score": v, "explanation": e} for v, sid, e in rows]  # noqa: E731
    data = {
        "subgoal": subgoal.model_dump(),
        "coverage": _row(row),
        "samples": report.samples,
        "lowest": pick(lowest),
        "highest": pick(highest),
    }
    return ToolResult(data, f"{subgoal.id}: {row.supporting} of {report.samples} support it")

