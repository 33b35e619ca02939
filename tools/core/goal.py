"""The goal and its subgoals: from a file the user wrote, or decomposed by the agent model."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from goalcover.tools.core.errors import BadInput, GoalCoverError, describe_validation_error
from goalcover.tools.judge.llm import JsonCaller
from goalcover.tools.core.shapes import Goal, Subgoal
from goalcover.tools.core.store import GOAL_KEY
from goalcover.tools.judge.prompts import CRITIQUE_SYSTEM, CRITIQUE_USER, DECOMPOSE_SYSTEM
from goalcover.tools.core.workspace import Workspace



def load_goal_file(path: Path) -> Goal:
    """Read a goal from YAML or JSON: `text` and `subgoals` (each with title, description, and optionally
    id and evidence). Ids default to S1, S2, … in order."""
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise BadInput(f"{path}: {where}not valid YAML/JSON ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping with `text` and `subgoals`")
    subgoals = data.get("subgoals")
    if isinstance(subgoals, list):
        for n, item in enumerate(subgoals, start=1):
            if isinstance(item, dict):
                item.setdefault("id", f"S{n}")
    try:
        goal = Goal.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{path}: {describe_validation_error(exc)}") from None
    ids = [s.id for s in goal.subgoals]
    if len(set(ids)) != len(ids):
        raise BadInput(f"{path}: subgoal ids repeat ({', '.join(ids)})")
    return goal


def save_goal(ws: Workspace, goal: Goal) -> None:
    """Store `goal` as the workspace's approved goal (replacing the last one; scores of unchanged subgoals
    stay valid)."""
    ws.store.set_meta(GOAL_KEY, goal.model_dump())


def current_goal(ws: Workspace, required: bool = True) -> Goal | None:
    """The workspace's approved goal; None when there is none and not `required`, else raises BadInput saying
    how to set one."""
    data = ws.store.get_meta(GOAL_KEY)
    if data is None:
        if required:
            raise BadInput(
                f"the workspace {ws.root} has no goal yet; set one with `goalcover goal \"YOUR GOAL\"` or "
                "`goalcover goal --file goal.yaml`"
            )
        return None
    return Goal.model_validate(data)


class ProposedSubgoal(BaseModel):
    """One subgoal as the agent model proposes it (no id yet)."""

    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    evidence: str = Field(min_length=1, description="what a training sample that supports this subgoal shows")


class ProposedSubgoals(BaseModel):
    """The agent model's draft: 4 to 8 subgoals."""

    subgoals: list[ProposedSubgoal] = Field(min_length=4, max_length=8, description="the subgoals, 4 to 8")


class SubgoalCritique(BaseModel):
    """The agent model's review of its draft: the problems found and the improved list."""

    issues: list[str] = Field(description="problems found in the proposal (bundles, overlaps, vague wording); empty if none")
    subgoals: list[ProposedSubgoal] = Field(min_length=4, max_length=8, description="the improved list")


class Proposal(BaseModel):
    """What `propose_subgoals` returns: the subgoals (numbered S1..Sn), the self-critique's findings, cost."""

    goal: Goal
    issues: list[str] = Field(default_factory=list, description="what the self-critique found and fixed")
    cost: float = Field(0.0, description="USD spent on the two calls (0 when the model has no price)")
    calls: int = 0


async def propose_subgoals(ws: Workspace, text: str, guidance: str | None = None, low: int = 4, high: int = 8) -> Proposal:
    """Draft `low`..`high` subgoals for `text` with the agent model, then have it critique its own draft for
    atomicity, overlap and checkability and return the improved list. The one proposal the CLI
    (`goalcover goal TEXT`), the terminal chat and the web app all use.

    Raises BadInput for an empty goal and GoalCoverError when the model returns no usable subgoals (a
    failed critique keeps the first draft and says so in `issues`).
    """
    if not text.strip():
        raise BadInput("goal: the goal text is empty")
    goal_text = text.strip()
    asked = goal_text + (f"\n(The user adds: {guidance.strip()})" if guidance and guidance.strip() else "")
    async with JsonCaller(ws.settings.model_for("agent"), ws.settings) as caller:
        first = await caller.call(
            [SystemMessage(DECOMPOSE_SYSTEM.format(low=low, high=high)), HumanMessage(f"My goal: {asked}")],
            ProposedSubgoals, name="subgoals", max_tokens=1500,
        )
        if first.value is None:
            raise GoalCoverError(f"the agent model did not return usable subgoals ({first.error})")
        draft = first.value.subgoals
        listing = "\n".join(f"{n}. {s.title} — {s.description} (evidence: {s.evidence})" for n, s in enumerate(draft, 1))
        second = await caller.call(
            [SystemMessage(CRITIQUE_SYSTEM.format(low=low, high=high)), HumanMessage(CRITIQUE_USER.format(goal=asked, proposal=listing))],
            SubgoalCritique, name="subgoal_critique", max_tokens=2000,
        )
    if second.value is None:  # the first draft is still good enough to show
        chosen, issues = draft, [f"(the self-critique failed: {second.error})"]
    else:
        chosen, issues = second.value.subgoals, second.value.issues
    subgoals = [Subgoal(id=f"S{n}", **s.model_dump()) for n, s in enumerate(chosen, start=1)]
    return Proposal(
        goal=Goal(text=goal_text, subgoals=subgoals), issues=issues,
        cost=round(first.usage.cost + second.usage.cost, 6), calls=first.usage.calls + second.usage.calls,
    )


async def decompose(ws: Workspace, text: str, low: int = 4, high: int = 8) -> Goal:
    """The proposed goal alone (see `propose_subgoals`); raises what it raises."""
    return (await propose_subgoals(ws, text, low=low, high=high)).goal


def goal_to_yaml(goal: Goal) -> str:
    """The goal as YAML that `goalcover goal --file` reads back (text, then subgoals with id, title,
    description, evidence)."""
    data = json.loads(goal.model_dump_json())
    for subgoal in data["subgoals"]:
        if not subgoal.get("anchors"):
            subgoal.pop("anchors", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
