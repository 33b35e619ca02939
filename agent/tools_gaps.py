"""Agent tools after coverage: gaps, why, synthesis (after the user's yes), review, export."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from goalcover.agent.context import SubgoalRef, ToolContext, ToolResult
from goalcover.tools.core.plans import gaps_plan, synthesis_plan

# --- gaps, why, synthesis, review, export -----------------------------------------------------------

class GapsArgs(BaseModel):
    """Arguments of find_gaps."""

    subgoal_id: SubgoalRef | None = Field(None, description="only this subgoal's gaps, weak or not (default: every weak subgoal)")


async def find_gaps(ctx: ToolContext, args: GapsArgs) -> ToolResult:
    """Capability gaps of weak subgoals: the judge's low-score explanations clustered by what is missing,
    each named, with its size, what would close it and representative sample ids. The first run names
    gaps with a few agent-model calls; unchanged data costs nothing again."""
    from goalcover.tools.fill.gaps import find_gaps as engine_find_gaps

    # Labelling is paid but small and cached, so it is shown before it runs rather than asked for.
    plan = await asyncio.to_thread(gaps_plan, ctx.ws, args.subgoal_id)
    ctx.emit({"progress": {"tool": "find_gaps", "stage": f"clustering explanations; then {plan.text()}"}})
    gaps = await engine_find_gaps(ctx.ws, args.subgoal_id)
    rows = [
        {
            "id": g.id,
            "subgoal_id": g.subgoal_id,
            "kind": g.kind,
            "label": g.label,
            "description": g.description,
            "fill_hint": g.fill_hint,
            "aspects": g.aspects,
            "size": g.size,
            "predicted_size": g.predicted_size,  # after a cascade: samples its predictor decided weak, placed here
            "sample_ids": g.sample_ids,
        }
        for g in gaps
    ]
    return ToolResult({"gaps": rows}, f"{len(rows)} gaps" + (f": {', '.join(g.id + ' ' + g.label for g in gaps[:3])}" if rows else ""))


class WhyArgs(BaseModel):
    """Arguments of why_weak."""

    subgoal_id: SubgoalRef = Field(description='e.g. "S3"')


async def why_weak(ctx: ToolContext, args: WhyArgs) -> ToolResult:
    """Why one subgoal is weakly covered, from the data: computed facts (its coverage against the other
    subgoals, its gaps with sizes, example samples with the judge's explanations, the best supporting
    samples) and a short answer whose every number and id was checked against those facts."""
    from goalcover.tools.fill.why import why

    answer = await why(ctx.ws, args.subgoal_id)
    return ToolResult(
        {"subgoal_id": answer.subgoal_id, "answer": answer.answer, "grounded_by": answer.grounded_by, "facts": answer.facts.model_dump()},
        f"{answer.subgoal_id}: {len(answer.facts.gaps)} gaps",
    )


class SynthesizeArgs(BaseModel):
    """Arguments of synthesize_samples."""

    gap_id: str = Field(description='a gap id from find_gaps, e.g. "G1"')
    n: int = Field(20, ge=1, le=200, description="how many candidates to generate")
    guidance: str | None = Field(None, description="what the user wants the new samples to be like")


def synthesis_preview(ctx: ToolContext, args: SynthesizeArgs) -> dict:
    """The plan the user approves before synthesize_samples spends anything: {"plan": PaidPlan fields plus
    gap_id and candidates, "question"}."""
    from goalcover.tools.fill.gaps import get_gap
    from goalcover.tools.fill.synthesis import BATCH

    shown = synthesis_plan(ctx.ws, args.gap_id, args.n)
    gap = get_gap(ctx.ws, args.gap_id)
    plan = {
        **shown.model_dump(mode="json"), "gap_id": gap.id, "label": gap.label, "subgoal_id": gap.subgoal_id,
        "candidates": args.n, "generation_calls": -(-args.n // BATCH), "judge_calls_at_most": args.n,
        "synth_model": ctx.ws.settings.model_for("synth", need_key=False).model,
        "judge_model": ctx.ws.settings.model_for("judge", need_key=False).model,
    }
    return {"plan": plan, "question": f"{shown.text()}. Run it?"}


async def synthesize_samples(ctx: ToolContext, args: SynthesizeArgs) -> ToolResult:
    """Generate new training samples for one gap, in the dataset's own shape (paid: the synth model writes
    them and the judge scores them; the user confirms first). Duplicates and samples the judge does not
    find supporting the subgoal are dropped; the kept ones wait for the user's review."""
    from goalcover.tools.fill.synthesis import synthesize

    ctx.emit({"progress": {"tool": "synthesize_samples", "stage": f"generating {args.n} candidates"}})
    result = await synthesize(ctx.ws, args.gap_id, args.n, args.guidance)
    return ToolResult(
        result.model_dump(),
        f"{result.generated} generated, {result.kept} kept for review, {result.duplicates} duplicates",
        update={"run": {"tool": "synthesize_samples", "status": "done", "result": result.model_dump()}},
    )


class ReviewArgs(BaseModel):
    """Arguments of review_synthetic."""

    accept: list[str] = Field([], description='synthetic sample ids to accept, or ["all"] for every proposed one')
    reject: list[str] = Field([], description='synthetic sample ids to reject, or ["all"]')
    gap_id: str | None = Field(None, description="only this gap's samples")


async def review_synthetic(ctx: ToolContext, args: ReviewArgs) -> ToolResult:
    """List the synthetic samples (state proposed, accepted or rejected; text, judge score and
    explanation) and, only when the user says so, accept or reject them by id. Accepted samples count in
    coverage ("after") and can be exported."""
    from goalcover.tools.fill.synthesis import list_synthetic, review

    if args.accept or args.reject:
        items = review(ctx.ws, list(args.accept), list(args.reject), args.gap_id)
    else:
        items = list_synthetic(ctx.ws, args.gap_id)
    counts = {state: sum(i.state == state for i in items) for state in ("proposed", "accepted", "rejected")}
    shown = [i for i in items if i.state == "proposed"][:5] or items[:5]
    rows = [{"id": i.id, "gap_id": i.gap_id, "subgoal_id": i.subgoal_id, "state": i.state, "judge_score": i.judge_score,
             "judge_explanation": i.judge_explanation} for i in items[:50]]
    return ToolResult(
        {"counts": counts, "samples": rows, "text_shown_for": [i.id for i in shown]},
        ", ".join(f"{v} {k}" for k, v in counts.items()),
        samples={i.id: i.text for i in shown},
    )


class ExportArgs(BaseModel):
    """Arguments of export_dataset."""

    filename: str = Field(min_length=1, description="a file name inside the workspace's exports/ folder, with the dataset's extension, e.g. filtered.jsonl")
    drop_off_goal: bool = Field(False, description="leave out samples that no subgoal scores above the off-goal threshold")
    with_synthetic: bool = Field(False, description="add the accepted synthetic samples")


async def export_dataset(ctx: ToolContext, args: ExportArgs) -> ToolResult:
    """Write the dataset in its own format into the workspace's exports/ folder (never anywhere else),
    optionally without off-goal samples and with the accepted synthetic samples, plus a manifest.json."""
    from goalcover.tools.data.exports_folder import export_to_workspace

    result = await asyncio.to_thread(
        export_to_workspace, ctx.ws, args.filename, drop_off_goal=args.drop_off_goal, with_synthetic=args.with_synthetic
    )
    return ToolResult(result.model_dump(), f"{result.written} written to {result.path} ({result.dropped} dropped, {result.synthetic} synthetic)")

