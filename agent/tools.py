"""The agent's tools: plain typed functions over the engine. Each takes a ToolContext and one pydantic
argument model; its docstring is the tool's description for the model, its argument model the schema.

A tool returns a ToolResult: JSON-like `data` for the model, a one-line `summary` for the UI, sample text
in `samples` (the graph puts it in delimited data blocks, never in instructions), and `update` for the
graph state. Engine errors (GoalCoverError) and bad arguments propagate; the graph turns them into tool
messages the model can read.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from goalcover.agent.configuration import AgentConfig
from goalcover.agent.draft import EditOp, apply_edits
from goalcover.tools import scoring
from goalcover.tools.coverage import JUDGE_KEY, sample_scores
from goalcover.tools.coverage import coverage as coverage_report
from goalcover.tools.errors import BadInput, GoalCoverError
from goalcover.tools.goal import current_goal, save_goal
from goalcover.tools.goal import propose_subgoals as engine_propose
from goalcover.tools.models import Goal, Subgoal
from goalcover.tools.plans import scoring_plan, synthesis_plan
from goalcover.tools.workspace import Workspace

# The dataset, index, gaps, why, synthesis and export modules are imported where used: they load Chroma,
# the embedder or scikit-learn, which a conversation about the goal never needs.

SubgoalRef = str  # "S3"; the engine says which ids exist when one does not


@dataclass
class ToolContext:
    ws: Workspace
    state: Any  # the graph State as of this tool call (earlier calls of the same turn applied)
    config: AgentConfig
    emit: Callable[[dict], None] = lambda event: None

    def progress(self, tool: str, done: int, total: int, **fields: Any) -> None:
        self.emit({"progress": {"tool": tool, "done": done, "total": total, **fields}})


@dataclass
class ToolResult:
    data: Any
    summary: str
    samples: dict[str, str] = field(default_factory=dict)
    update: dict[str, Any] = field(default_factory=dict)
    display: list[str] = field(default_factory=list)  # lines a UI may show as they are (e.g. the draft)


def _subgoal_lines(subgoals: list[Subgoal]) -> list[str]:
    return [f"{s.id}. {s.title} — {s.description}" for s in subgoals]


def _draft_view(subgoals: list[Subgoal]) -> list[dict]:
    return [{"id": s.id, "title": s.title, "description": s.description} for s in subgoals]


def _workspace_goal(ws: Workspace) -> Goal | None:
    return current_goal(ws, required=False)


# --- the dataset ------------------------------------------------------------------------------------

class NoArgs(BaseModel):
    pass


async def describe_dataset(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """What the workspace holds: number of samples, format, source files, length statistics, the approved
    goal (if any) and whether samples have been scored."""
    from goalcover.tools.dataset import describe

    info = describe(ctx.ws)
    goal = _workspace_goal(ctx.ws)
    info["goal"] = None if goal is None else {"text": goal.text, "subgoals": _draft_view(goal.subgoals)}
    info["scored"] = ctx.ws.store.get_meta(JUDGE_KEY) is not None
    return ToolResult(info, f"{info['samples']} samples" + (f", {info.get('format')}" if info["samples"] else ""))


class ScoreFilter(BaseModel):
    subgoal: SubgoalRef = Field(description='subgoal id, e.g. "S3"')
    op: Literal["<=", ">=", "=", "<", ">", "!="] = "<="
    score: int = Field(ge=1, le=5)


class SearchArgs(BaseModel):
    query: str = Field(min_length=1, description="what to look for, in words (semantic search)")
    k: int = Field(8, ge=1, le=30, description="how many samples to return")
    scores: list[ScoreFilter] = Field([], description="only samples whose judge score matches, e.g. S3 <= 2")
    where: list[str] = Field([], description='raw filters FIELD=VALUE / FIELD<=N on sample metadata, e.g. "score_S3<=2"')


async def search_samples(ctx: ToolContext, args: SearchArgs) -> ToolResult:
    """Semantic search over the samples, optionally filtered by judge scores (after scoring) or metadata.
    Returns sample ids, similarity, scores and the start of each sample's text."""
    from goalcover.tools.dataset import search
    from goalcover.tools.index import parse_where

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
    ids: list[str] = Field(min_length=1, max_length=10, description="sample ids, as returned by other tools")


async def show_samples(ctx: ToolContext, args: ShowArgs) -> ToolResult:
    """The full text of samples by id, with their judge scores and explanations per subgoal (after
    scoring)."""
    found = ctx.ws.store.samples(args.ids)
    missing = [i for i in args.ids if i not in {s.id for s in found}]
    scores: dict = {}
    if found and _workspace_goal(ctx.ws) is not None:
        scores, _ = sample_scores(ctx.ws)
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
    return ToolResult(data, f"{len(found)} shown" + (f", {len(missing)} not found" if missing else ""), samples={s.id: s.text for s in found})


# --- the goal ---------------------------------------------------------------------------------------

class ProposeArgs(BaseModel):
    goal: str = Field(min_length=1, description="the user's goal for their model, in their words")
    guidance: str | None = Field(None, description="anything the user asked for about the subgoals")


async def propose_subgoals(ctx: ToolContext, args: ProposeArgs) -> ToolResult:
    """Propose 4 to 8 subgoals for the goal (the agent model drafts them, then critiques its draft for
    atomicity, overlap and checkability). Replaces any unsaved draft; show the user the returned list."""
    proposal = await engine_propose(ctx.ws, args.goal, args.guidance)
    subgoals = proposal.goal.subgoals
    data = {"goal": args.goal, "draft": _draft_view(subgoals), "critique": proposal.issues, "approved": False, "cost_usd": proposal.cost}
    return ToolResult(
        data,
        f"{len(subgoals)} subgoals proposed",
        update={"goal_text": args.goal, "draft": [s.model_dump() for s in subgoals], "approved": False},
        display=_subgoal_lines(subgoals),
    )


def _current_draft(ctx: ToolContext) -> list[Subgoal]:
    if ctx.state.draft:
        return [Subgoal.model_validate(s) for s in ctx.state.draft]
    goal = _workspace_goal(ctx.ws)
    if goal is None:
        raise BadInput("there is no draft to edit yet: propose subgoals for a goal first (propose_subgoals)")
    return list(goal.subgoals)


class EditArgs(BaseModel):
    edits: list[EditOp] = Field(
        min_length=1, description="operations applied in order, all or none; ids always refer to the list as last shown"
    )


async def edit_subgoals(ctx: ToolContext, args: EditArgs) -> ToolResult:
    """Change the draft subgoals exactly as the user asked: merge, split, edit (rewrite a title,
    description or evidence, e.g. make a vague one concrete), add, drop, rename. Ids refer to the list as
    last shown to the user; the result is renumbered S1..Sn. Edits the approved goal if there is no draft."""
    before = _current_draft(ctx)
    after, changes = apply_edits(before, args.edits)
    data: dict[str, Any] = {"changes": changes, "draft": _draft_view(after), "approved": False}
    if not 4 <= len(after) <= 8:
        data["note"] = f"{len(after)} subgoals; 4 to 8 usually keep scoring focused and cheap"
    goal_text = ctx.state.goal_text or ((g := _workspace_goal(ctx.ws)) and g.text)
    return ToolResult(
        data,
        "; ".join(changes),
        update={"draft": [s.model_dump() for s in after], "approved": False, "goal_text": goal_text},
        display=_subgoal_lines(after),
    )


async def approve_goal(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """Save the draft subgoals as the workspace's goal. Call only when the user has clearly approved the
    list as last shown. Scores of unchanged subgoals are kept; changed or new ones are scored next run."""
    if not ctx.state.draft:
        goal = _workspace_goal(ctx.ws)
        if goal is None:
            raise BadInput("there is nothing to approve: propose subgoals for a goal first (propose_subgoals)")
        return ToolResult({"saved": False, "note": "the workspace goal is already approved", "subgoals": _draft_view(goal.subgoals)}, "already approved")
    if not ctx.state.goal_text:
        raise BadInput("the goal text is unknown: propose subgoals for the goal first (propose_subgoals)")
    goal = Goal(text=ctx.state.goal_text, subgoals=[Subgoal.model_validate(s) for s in ctx.state.draft])
    save_goal(ctx.ws, goal)
    return ToolResult(
        {"saved": True, "goal": goal.text, "subgoals": _draft_view(goal.subgoals)},
        f"goal saved with {len(goal.subgoals)} subgoals",
        update={"draft": None, "approved": True, "goal": [s.model_dump() for s in goal.subgoals]},
        display=_subgoal_lines(goal.subgoals),
    )


async def discard_draft(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """Throw away the unsaved draft subgoals (the workspace's approved goal, if any, stays as it is)."""
    goal = _workspace_goal(ctx.ws)
    kept = None if goal is None else _draft_view(goal.subgoals)
    return ToolResult({"discarded": bool(ctx.state.draft), "approved_goal": kept}, "draft discarded", update={"draft": None})


def _require_no_draft(ctx: ToolContext) -> None:
    if ctx.state.draft:
        raise BadInput(
            "the draft subgoals have unsaved changes, and scoring would use the old approved goal: ask the user to "
            "approve the draft (approve_goal) or to discard it (discard_draft) first"
        )


# --- scoring ----------------------------------------------------------------------------------------

class ScoringArgs(BaseModel):
    mode: Literal["batched", "pair"] = Field("batched", description="batched: one call per sample (cheaper); pair: one call per sample × subgoal")


class RunScoringArgs(ScoringArgs):
    max_cost: float | None = Field(None, ge=0, description="stop before spending more than this many USD")


def _plan(ctx: ToolContext, mode: str) -> dict:
    plan, _, _ = scoring.plan(ctx.ws, mode)  # type: ignore[arg-type]
    return plan.model_dump()


async def estimate_scoring(ctx: ToolContext, args: ScoringArgs) -> ToolResult:
    """What scoring would do and cost, without calling any model: pairs to score, pairs already cached,
    model calls, estimated tokens and USD (or that the price is unknown)."""
    shown = scoring_plan(ctx.ws, args.mode)
    return ToolResult({**_plan(ctx, args.mode), "cost": shown.cost}, shown.text())


def scoring_preview(ctx: ToolContext, args: RunScoringArgs) -> dict | None:
    """The plan the user approves before run_scoring spends anything: {"plan": ScorePlan fields plus
    `title`, `rows`, `cost` (text)}, "question"}; None when nothing would be paid."""
    _require_no_draft(ctx)
    shown = scoring_plan(ctx.ws, args.mode, args.max_cost)
    if shown.free:
        return None
    plan = {**_plan(ctx, args.mode), "title": shown.title, "rows": [list(r) for r in shown.rows], "cost": shown.cost}
    return {"plan": plan, "question": f"{shown.text()}; {plan['cached']:,} pairs are already scored. Run it?"}


async def run_scoring(ctx: ToolContext, args: RunScoringArgs) -> ToolResult:
    """Score every sample against every subgoal with the LLM judge (paid; the user confirms the plan
    first). Only missing pairs are scored; results are saved as they arrive."""
    _require_no_draft(ctx)

    def progress(done: int, total: int, **fields: Any) -> None:
        ctx.progress("run_scoring", done, total, **fields)

    result = await scoring.score(ctx.ws, args.mode, max_cost=args.max_cost, progress=progress)
    ctx.emit({"progress": {"tool": "run_scoring", "stage": "indexing explanations"}})
    await asyncio.to_thread(scoring.index_scores, ctx.ws)
    data = result.model_dump()
    status = "stopped" if result.stopped else "done"
    return ToolResult(
        data,
        f"{result.new} new judgments, {result.failed} failed, {result.calls} calls, ${result.cost:.4f}",
        update={"run": {"tool": "run_scoring", "status": status, "result": data}},
    )


# --- coverage ---------------------------------------------------------------------------------------

class CoverageArgs(BaseModel):
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
        "thresholds": report.thresholds,
    }
    if report.samples and len(report.off_goal_ids) > 20:
        data["off_goal_ids_note"] = f"first 20 of {report.off_goal}"
    return ToolResult(data, f"{len(rows)} subgoals, weak: {', '.join(data['weak']) or 'none'}")


class CompareArgs(BaseModel):
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
    scores, _ = sample_scores(ctx.ws)
    threshold = report.thresholds["support"]
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
    subgoal_id: SubgoalRef = Field(description='e.g. "S3"')
    k: int = Field(5, ge=1, le=20, description="how many lowest- and highest-scoring samples to list")


async def subgoal_details(ctx: ToolContext, args: SubgoalArgs) -> ToolResult:
    """One subgoal in detail: its definition, coverage, and the lowest- and highest-scoring samples with
    the judge's explanation of each score (what the sample shows and lacks)."""
    report = _coverage(ctx)
    goal = _workspace_goal(ctx.ws)
    assert goal is not None
    subgoal = goal.subgoal(args.subgoal_id)
    row = next(r for r in report.subgoals if r.id == subgoal.id)
    scores, _ = sample_scores(ctx.ws)
    scored = sorted(((per[subgoal.id][0], sid, per[subgoal.id][1]) for sid, per in scores.items() if subgoal.id in per))
    pick = lambda rows: [{"id": sid, "score": v, "explanation": e} for v, sid, e in rows]  # noqa: E731
    data = {
        "subgoal": subgoal.model_dump(),
        "coverage": _row(row),
        "samples": report.samples,
        "lowest": pick(scored[: args.k]),
        "highest": pick(list(reversed(scored))[: args.k]),
    }
    return ToolResult(data, f"{subgoal.id}: {row.supporting} of {report.samples} support it")


# --- gaps, why, synthesis, review, export -----------------------------------------------------------

class GapsArgs(BaseModel):
    subgoal_id: SubgoalRef | None = Field(None, description="only this subgoal's gaps, weak or not (default: every weak subgoal)")


async def find_gaps(ctx: ToolContext, args: GapsArgs) -> ToolResult:
    """Capability gaps of weak subgoals: the judge's low-score explanations clustered by what is missing,
    each named, with its size, what would close it and representative sample ids. The first run names
    gaps with a few agent-model calls; unchanged data costs nothing again."""
    from goalcover.tools.gaps import find_gaps as engine_find_gaps

    ctx.emit({"progress": {"tool": "find_gaps", "stage": "clustering explanations"}})
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
            "sample_ids": g.sample_ids,
        }
        for g in gaps
    ]
    return ToolResult({"gaps": rows}, f"{len(rows)} gaps" + (f": {', '.join(g.id + ' ' + g.label for g in gaps[:3])}" if rows else ""))


class WhyArgs(BaseModel):
    subgoal_id: SubgoalRef = Field(description='e.g. "S3"')


async def why_weak(ctx: ToolContext, args: WhyArgs) -> ToolResult:
    """Why one subgoal is weakly covered, from the data: computed facts (its coverage against the other
    subgoals, its gaps with sizes, example samples with the judge's explanations, the best supporting
    samples) and a short answer whose every number and id was checked against those facts."""
    from goalcover.tools.why import why

    answer = await why(ctx.ws, args.subgoal_id)
    return ToolResult(
        {"subgoal_id": answer.subgoal_id, "answer": answer.answer, "grounded_by": answer.grounded_by, "facts": answer.facts.model_dump()},
        f"{answer.subgoal_id}: {len(answer.facts.gaps)} gaps",
    )


class SynthesizeArgs(BaseModel):
    gap_id: str = Field(description='a gap id from find_gaps, e.g. "G1"')
    n: int = Field(20, ge=1, le=200, description="how many candidates to generate")
    guidance: str | None = Field(None, description="what the user wants the new samples to be like")


def synthesis_preview(ctx: ToolContext, args: SynthesizeArgs) -> dict:
    """The plan the user approves before synthesize_samples spends anything: {"plan": PaidPlan fields plus
    gap_id and candidates, "question"}."""
    from goalcover.tools.gaps import get_gap
    from goalcover.tools.synthesis import BATCH

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
    from goalcover.tools.synthesis import synthesize

    ctx.emit({"progress": {"tool": "synthesize_samples", "stage": f"generating {args.n} candidates"}})
    result = await synthesize(ctx.ws, args.gap_id, args.n, args.guidance)
    return ToolResult(
        result.model_dump(),
        f"{result.generated} generated, {result.kept} kept for review, {result.duplicates} duplicates",
        update={"run": {"tool": "synthesize_samples", "status": "done", "result": result.model_dump()}},
    )


class ReviewArgs(BaseModel):
    accept: list[str] = Field([], description='synthetic sample ids to accept, or ["all"] for every proposed one')
    reject: list[str] = Field([], description='synthetic sample ids to reject, or ["all"]')
    gap_id: str | None = Field(None, description="only this gap's samples")


async def review_synthetic(ctx: ToolContext, args: ReviewArgs) -> ToolResult:
    """List the synthetic samples (state proposed, accepted or rejected; text, judge score and
    explanation) and, only when the user says so, accept or reject them by id. Accepted samples count in
    coverage ("after") and can be exported."""
    from goalcover.tools.synthesis import list_synthetic, review

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
    filename: str = Field(min_length=1, description="a file name inside the workspace's exports/ folder, with the dataset's extension, e.g. filtered.jsonl")
    drop_off_goal: bool = Field(False, description="leave out samples that no subgoal scores above the off-goal threshold")
    with_synthetic: bool = Field(False, description="add the accepted synthetic samples")


async def export_dataset(ctx: ToolContext, args: ExportArgs) -> ToolResult:
    """Write the dataset in its own format into the workspace's exports/ folder (never anywhere else),
    optionally without off-goal samples and with the accepted synthetic samples, plus a manifest.json."""
    from goalcover.tools.export import export

    folder = ctx.ws.exports_dir.resolve()
    target = (folder / args.filename).resolve()
    if not target.is_relative_to(folder) or target == folder:
        raise BadInput(f"{args.filename}: exports go inside {folder}; give a file name there, not a path outside it")
    result = await asyncio.to_thread(export, ctx.ws, target, drop_off_goal=args.drop_off_goal, with_synthetic=args.with_synthetic, allowed_root=folder)
    return ToolResult(result.model_dump(), f"{result.written} written to {result.path} ({result.dropped} dropped, {result.synthetic} synthetic)")


# --- the registry -----------------------------------------------------------------------------------

TOOLS: list[Callable[..., Awaitable[ToolResult]]] = [
    describe_dataset,
    search_samples,
    show_samples,
    propose_subgoals,
    edit_subgoals,
    approve_goal,
    discard_draft,
    estimate_scoring,
    run_scoring,
    coverage,
    compare_subgoals,
    subgoal_details,
    find_gaps,
    why_weak,
    synthesize_samples,
    review_synthetic,
    export_dataset,
]
# Tools that spend money: the graph shows the preview and waits for the user's yes before calling them.
PAID: dict[str, Callable[[ToolContext, Any], dict | None]] = {
    "run_scoring": scoring_preview,
    "synthesize_samples": synthesis_preview,
}
BY_NAME = {fn.__name__: fn for fn in TOOLS}


def args_model(fn: Callable) -> type[BaseModel]:
    return inspect.get_annotations(fn, eval_str=True)["args"]


def tool_spec(fn: Callable) -> dict:
    """The OpenAI tool schema: name and docstring of the function, parameters from its argument model."""
    spec = convert_to_openai_tool(args_model(fn))
    spec["function"]["name"] = fn.__name__
    spec["function"]["description"] = " ".join((inspect.getdoc(fn) or fn.__name__).split())
    spec["function"]["parameters"] = _plain_schema(spec["function"]["parameters"])
    return spec


def _plain_schema(node: Any) -> Any:
    """Drop pydantic's discriminator hints (their $refs dangle once refs are inlined) and use anyOf,
    which more OpenAI-compatible servers accept than oneOf."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _plain_schema(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_plain_schema(v) for v in node]
    return node
