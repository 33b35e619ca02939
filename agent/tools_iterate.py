"""Agent tools of iterative gap-filling: history, diff, filling a gap from the pool (after the user's yes), verify."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from goalcover.agent.context import NoArgs, ToolContext, ToolResult


async def dataset_history(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """The dataset's versions (every ingest that changed it, every review that changed the accepted fills),
    oldest first, each with its coverage per subgoal recomputed from cached judgments (share, interval,
    weak). No model call."""
    from goalcover.tools.history.versions import history

    found = await asyncio.to_thread(history, ctx.ws)
    rows = [
        {"id": f"v{v.id}", "created_at": v.created_at, "kind": v.kind, "note": v.note, "samples": v.samples, "fills": v.fills,
         "coverage": [{"id": r.id, "share": r.share, "weak": r.weak} for r in v.coverage]}
        for v in found.versions[-20:]
    ]
    return ToolResult({"versions": rows}, f"{len(found.versions)} versions")


class DiffArgs(BaseModel):
    """Arguments of diff_versions."""

    from_version: str | None = Field(None, description='e.g. "v2" (default: the version before `to_version`)')
    to_version: str | None = Field(None, description='e.g. "v3" (default: the current version)')


async def diff_versions(ctx: ToolContext, args: DiffArgs) -> ToolResult:
    """What changed between two dataset versions: per subgoal the share before and after, the change and
    whether it is significant (Fisher's exact test); gaps closed, opened and changed; samples added,
    removed and changed; regressions. From cached judgments: no model call."""
    from goalcover.tools.history.diff import diff

    found = await asyncio.to_thread(diff, ctx.ws, args.from_version, args.to_version)
    moved = [d.id for d in found.subgoals if d.significant]
    return ToolResult(found.dump(), f"{found.from_}→{found.to}: significant change on {', '.join(moved) or 'no subgoal'}"
                      + (f"; regressions {', '.join(found.regressions)}" if found.regressions else ""))


class PoolFillArgs(BaseModel):
    """Arguments of fill_from_pool."""

    gap_id: str = Field(description='a gap id from find_gaps, e.g. "G1"')
    n: int = Field(50, ge=1, le=500, description="how many pool samples to judge at most")


def pool_fill_preview(ctx: ToolContext, args: PoolFillArgs) -> dict | None:
    """The plan the user approves before fill_from_pool judges anything: {"plan": {rows, cost, …}, "question"};
    None when nothing would be paid (every pair cached, or nothing to judge)."""
    from goalcover.tools.fill.pool import pool_fill_plan

    plan = pool_fill_plan(ctx.ws, args.gap_id, args.n)
    if not plan.to_score:
        return None
    rows = [("pool samples retrieved", str(plan.retrieved)), ("duplicates dropped", str(plan.duplicates)),
            ("samples to judge", str(plan.judged)), ("pairs not in the cache", str(plan.to_score))]
    cost = f"~${plan.est_cost:.4f}"
    return {"plan": {"gap_id": plan.gap_id, "rows": rows, "cost": cost, "est_cost": plan.est_cost},
            "question": f"Judge {plan.judged} pool samples for {plan.gap_id} ({cost})?"}


async def fill_from_pool(ctx: ToolContext, args: PoolFillArgs) -> ToolResult:
    """Fill a gap with real samples from the pool (`goalcover pool add FILE` filled it): the nearest pool
    samples to the gap, judged against every subgoal (paid: the user confirms first), kept if they support
    the gap's subgoal, near-duplicates dropped; kept ones wait for review with their pool file and line."""
    from goalcover.tools.fill.pool import fill_from_pool as engine_fill

    ctx.emit({"progress": {"tool": "fill_from_pool", "stage": f"retrieving and judging pool samples for {args.gap_id}"}})
    result = await engine_fill(ctx.ws, args.gap_id, args.n)
    return ToolResult(result.model_dump(), f"{result.kept} kept for review of {result.judged} judged ({result.duplicates} duplicates)",
                      update={"run": {"tool": "fill_from_pool", "status": "done", "result": result.model_dump()}})


class VerifyArgs(BaseModel):
    """Arguments of verify_fill."""

    gap_id: str | None = Field(None, description="only this gap (default: every gap with accepted fills)")


async def verify_fill(ctx: ToolContext, args: VerifyArgs) -> ToolResult:
    """Did the accepted fills close their gap? The target subgoal's share without and with them (95%
    intervals), the gap's status (closed, shrunk, open), regressions on other subgoals, and the effective
    count of added support (near-duplicates once). No model call."""
    from goalcover.tools.fill.verify import verify

    found = await asyncio.to_thread(verify, ctx.ws, args.gap_id)
    return ToolResult(found.model_dump(), "; ".join(f"{v.gap_id} {v.status}" for v in found.gaps)
                      + (f"; regressions {', '.join(found.regressions)}" if found.regressions else ""))


TOOLS = [dataset_history, diff_versions, fill_from_pool, verify_fill]
PAID = {"fill_from_pool": pool_fill_preview}
