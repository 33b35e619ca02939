"""The goal and its subgoals: from a file the user wrote, or decomposed by the agent model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from goalcover.tools.errors import BadInput, GoalCoverError
from goalcover.tools.llm import JsonCaller
from goalcover.tools.models import Goal, Subgoal
from goalcover.tools.prompts import DECOMPOSE_SYSTEM
from goalcover.tools.workspace import Workspace

GOAL_KEY = "goal"


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
        err = exc.errors()[0]
        field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in err["loc"]).replace(".[", "[")
        raise BadInput(f"{path}: field {field!r}: {err['msg']}") from None
    ids = [s.id for s in goal.subgoals]
    if len(set(ids)) != len(ids):
        raise BadInput(f"{path}: subgoal ids repeat ({', '.join(ids)})")
    return goal


def save_goal(ws: Workspace, goal: Goal) -> None:
    ws.store.set_meta(GOAL_KEY, goal.model_dump())


def current_goal(ws: Workspace, required: bool = True) -> Goal | None:
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
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    evidence: str = Field(min_length=1, description="what a training sample that supports this subgoal shows")


class ProposedSubgoals(BaseModel):
    subgoals: list[ProposedSubgoal] = Field(min_length=4, max_length=8, description="the subgoals, 4 to 8")


def decompose(ws: Workspace, text: str, low: int = 4, high: int = 8) -> Goal:
    """Ask the agent model for atomic, non-overlapping, checkable subgoals."""
    if not text.strip():
        raise BadInput("goal: the goal text is empty")
    caller = JsonCaller(ws.settings.model_for("agent"), ws.settings)
    messages = [SystemMessage(DECOMPOSE_SYSTEM.format(low=low, high=high)), HumanMessage(f"My goal: {text.strip()}")]
    async def ask():
        async with caller:
            return await caller.call(messages, ProposedSubgoals, name="subgoals", max_tokens=1500)

    result = asyncio.run(ask())
    if result.value is None:
        raise GoalCoverError(f"the agent model did not return usable subgoals ({result.error})")
    subgoals = [Subgoal(id=f"S{n}", **s.model_dump()) for n, s in enumerate(result.value.subgoals, start=1)]
    return Goal(text=text.strip(), subgoals=subgoals)


def goal_to_yaml(goal: Goal) -> str:
    return yaml.safe_dump(json.loads(goal.model_dump_json()), sort_keys=False, allow_unicode=True, width=100)
