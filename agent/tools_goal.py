"""Agent tools for the goal: propose subgoals (the engine's one proposal), edit the draft in plain words,
approve or discard it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from goalcover.agent.context import NoArgs, ToolContext, ToolResult, draft_view, subgoal_lines, workspace_goal
from goalcover.agent.draft import EditOp, apply_edits
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.goal import propose_subgoals as engine_propose
from goalcover.tools.core.goal import save_goal
from goalcover.tools.core.shapes import Goal, Subgoal

# --- the goal ---------------------------------------------------------------------------------------

class ProposeArgs(BaseModel):
    """Arguments of propose_subgoals."""

    goal: str = Field(min_length=1, description="the user's goal for their model, in their words")
    guidance: str | None = Field(None, description="anything the user asked for about the subgoals")


async def propose_subgoals(ctx: ToolContext, args: ProposeArgs) -> ToolResult:
    """Propose 4 to 8 subgoals for the goal (the agent model drafts them, then critiques its draft for
    atomicity, overlap and checkability). Replaces any unsaved draft; show the user the returned list."""
    proposal = await engine_propose(ctx.ws, args.goal, args.guidance)
    subgoals = proposal.goal.subgoals
    data = {"goal": args.goal, "draft": draft_view(subgoals), "critique": proposal.issues, "approved": False, "cost_usd": proposal.cost}
    return ToolResult(
        data,
        f"{len(subgoals)} subgoals proposed",
        update={"goal_text": args.goal, "draft": [s.model_dump() for s in subgoals], "approved": False},
        display=subgoal_lines(subgoals),
    )


def _current_draft(ctx: ToolContext) -> list[Subgoal]:
    if ctx.state.draft:
        return [Subgoal.model_validate(s) for s in ctx.state.draft]
    goal = workspace_goal(ctx.ws)
    if goal is None:
        raise BadInput("there is no draft to edit yet: propose subgoals for a goal first (propose_subgoals)")
    return list(goal.subgoals)


class EditArgs(BaseModel):
    """Arguments of edit_subgoals."""

    edits: list[EditOp] = Field(
        min_length=1, description="operations applied in order, all or none; ids always refer to the list as last shown"
    )


async def edit_subgoals(ctx: ToolContext, args: EditArgs) -> ToolResult:
    """Change the draft subgoals exactly as the user asked: merge, split, edit (rewrite a title,
    description or evidence, e.g. make a vague one concrete), add, drop, rename. Ids refer to the list as
    last shown to the user; the result is renumbered S1..Sn. Edits the approved goal if there is no draft."""
    before = _current_draft(ctx)
    after, changes = apply_edits(before, args.edits)
    data: dict[str, Any] = {"changes": changes, "draft": draft_view(after), "approved": False}
    if not 4 <= len(after) <= 8:
        data["note"] = f"{len(after)} subgoals; 4 to 8 usually keep scoring focused and cheap"
    goal_text = ctx.state.goal_text or ((g := workspace_goal(ctx.ws)) and g.text)
    return ToolResult(
        data,
        "; ".join(changes),
        update={"draft": [s.model_dump() for s in after], "approved": False, "goal_text": goal_text},
        display=subgoal_lines(after),
    )


async def approve_goal(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """Save the draft subgoals as the workspace's goal. Call only when the user has clearly approved the
    list as last shown. Scores of unchanged subgoals are kept; changed or new ones are scored next run."""
    if not ctx.state.draft:
        goal = workspace_goal(ctx.ws)
        if goal is None:
            raise BadInput("there is nothing to approve: propose subgoals for a goal first (propose_subgoals)")
        return ToolResult({"saved": False, "note": "the workspace goal is already approved", "subgoals": draft_view(goal.subgoals)}, "already approved")
    if not ctx.state.goal_text:
        raise BadInput("the goal text is unknown: propose subgoals for the goal first (propose_subgoals)")
    goal = Goal(text=ctx.state.goal_text, subgoals=[Subgoal.model_validate(s) for s in ctx.state.draft])
    save_goal(ctx.ws, goal)
    return ToolResult(
        {"saved": True, "goal": goal.text, "subgoals": draft_view(goal.subgoals)},
        f"goal saved with {len(goal.subgoals)} subgoals",
        update={"draft": None, "approved": True, "goal": [s.model_dump() for s in goal.subgoals]},
        display=subgoal_lines(goal.subgoals),
    )


async def discard_draft(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """Throw away the unsaved draft subgoals (the workspace's approved goal, if any, stays as it is)."""
    goal = workspace_goal(ctx.ws)
    kept = None if goal is None else draft_view(goal.subgoals)
    return ToolResult({"discarded": bool(ctx.state.draft), "approved_goal": kept}, "draft discarded", update={"draft": None})


def require_no_draft(ctx: ToolContext) -> None:
    """Raises BadInput while the draft has unsaved changes (paid steps would use the old goal)."""
    if ctx.state.draft:
        raise BadInput(
            "the draft subgoals have unsaved changes, and scoring would use the old approved goal: ask the user to "
            "approve the draft (approve_goal) or to discard it (discard_draft) first"
        )

