"""Agent tools over the dataset: what it holds, semantic search, the samples themselves."""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import BaseModel, Field

from goalcover.agent.context import NoArgs, SubgoalRef, ToolContext, ToolResult, draft_view, workspace_goal
from goalcover.tools.measure.coverage import JUDGE_KEY, sample_scores
from goalcover.tools.judge.fit import fit_view

# --- the dataset ------------------------------------------------------------------------------------

async def describe_dataset(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """What the workspace holds: number of samples, format, source files, length statistics, the approved
    goal (if any) and whether samples have been scored."""
    from goalcover.tools.data.ingest import describe

    info = describe(ctx.ws)
    goal = workspace_goal(ctx.ws)
    info["goal"] = None if goal is None else {"text": goal.text, "subgoals": draft_view(goal.subgoals)}
    info["scored"] = ctx.ws.store.get_meta(JUDGE_KEY) is not None
    return ToolResult(info, f"{info['samples']} samples" + (f", {info.get('format')}" if info["samples"] else ""))


class ScoreFilter(BaseModel):
    """A judge-score filter: subgoal id, comparison, score 1-5."""

    subgoal: SubgoalRef = Field(description='subgoal id, e.g. "S3"')
    op: Literal["<=", ">=", "=", "<", ">", "!="] = "<="
    score: int = Field(ge=1, le=5)


class SearchArgs(BaseModel):
    """Arguments of search_samples."""

    query: str = Field(min_length=1, description="what to look for, in words (semantic search)")
    k: int = Field(8, ge=1, le=30, description="how many samples to return")
    scores: list[ScoreFilter] = Field([], description="only samples whose judge score matches, e.g. S3 <= 2")
    where: list[str] = Field([], description='raw filters FIELD=VALUE / FIELD<=N on sample metadata, e.g. "score_S3<=2"')


async def search_samples(ctx: ToolContext, args: SearchArgs) -> ToolResult:
    """Semantic search over the samples, optionally filtered by judge scores (after scoring) or metadata.
    Returns sample ids, similarity, scores and the start of each sample's text."""
    from goalcover.tools.data.ingest import search
    from goalcover.tools.data.index import parse_where

    clauses = [f"score_{f.subgoal.upper()}{f.op}{f.score}" for f in args.scores] + list(args.where)
    hits = await asyncio.to_thread(search, ctx.ws, args.query, args.k, parse_where(clauses))
    rows = [
        {
            "id": h.id,
            "similarity": h.similarity,
            "line": h.metadata.get("line"),
            "scores": {k.removeprefix("score_"): v for k, v in h.metadata.items() if k.startswith("score_") and v is not None},
        }
        for h in hits
    ]
    snippet = min(400, ctx.config.max_sample_chars)
    return ToolResult(
        {"query": args.query, "filters": clauses, "found": len(rows), "samples": rows},
        f"{len(rows)} samples" + (f" with {', '.join(clauses)}" if clauses else ""),
        samples={h.id: h.text[:snippet] + (" […]" if len(h.text) > snippet else "") for h in hits},
    )


class ShowArgs(BaseModel):
    """Arguments of show_samples."""

    ids: list[str] = Field(min_length=1, max_length=10, description="sample ids, as returned by other tools")


async def show_samples(ctx: ToolContext, args: ShowArgs) -> ToolResult:
    """The full text of samples by id, with their judge scores and explanations per subgoal (after
    scoring)."""
    found = ctx.ws.store.samples(args.ids)
    missing = [i for i in args.ids if i not in {s.id for s in found}]
    scores: dict = {}
    if found and workspace_goal(ctx.ws) is not None:
        scores, _ = sample_scores(ctx.ws, found)
    rows = [
        {
            "id": s.id,
            "line": s.line,
            "format": s.format,
            "chars": len(s.text),
            "scores": {sid: {"score": v, "explanation": e} for sid, (v, e) in scores.get(s.id, {}).items()},
        }
        for s in found
    ]
    data = {"samples": rows, "not_found": missing}
    return ToolResult(data, f"{len(found)} shown" + (f", {len(missing)} not found" if missing else ""), samples={s.id: fit_view(s, ctx.config.max_sample_chars) for s in found})

