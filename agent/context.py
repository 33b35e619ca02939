"""What every agent tool receives and returns: the context of the call, the typed result, and the few
views of the goal that several tools share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from goalcover.agent.configuration import AgentConfig
from goalcover.agent.state import State
from goalcover.tools.core.goal import current_goal
from goalcover.tools.core.shapes import Goal, Subgoal
from goalcover.tools.core.workspace import Workspace

SubgoalRef = str  # "S3"; the engine says which ids exist when one does not


@dataclass
class ToolContext:
    """One tool call's world: the workspace, the graph state as of this call (earlier calls of the same
    turn applied), the agent's configuration, and `emit` for progress events to the UI."""

    ws: Workspace
    state: State  # as of this tool call (earlier calls of the same turn applied)
    config: AgentConfig
    emit: Callable[[dict], None] = lambda event: None

    def progress(self, tool: str, done: int, total: int, **fields: Any) -> None:
        """Emit a progress event {tool, done, total, **fields} to the UI (done/total are counts of the tool's
        own units)."""
        self.emit({"progress": {"tool": tool, "done": done, "total": total, **fields}})


@dataclass
class ToolResult:
    """A tool's answer: JSON-like `data` for the model, a one-line `summary` for the UI, sample texts
    (sample id -> text; the graph puts them in delimited data blocks), `update` for the graph state and
    `display` lines a UI may show as they are (e.g. the draft)."""

    data: Any
    summary: str
    samples: dict[str, str] = field(default_factory=dict)
    update: dict[str, Any] = field(default_factory=dict)
    display: list[str] = field(default_factory=list)  # lines a UI may show as they are (e.g. the draft)


def subgoal_lines(subgoals: list[Subgoal]) -> list[str]:
    """"S1. Title — description" per subgoal, as the draft is shown."""
    return [f"{s.id}. {s.title} — {s.description}" for s in subgoals]


def draft_view(subgoals: list[Subgoal]) -> list[dict]:
    """[{id, title, description}] per subgoal, for tool data."""
    return [{"id": s.id, "title": s.title, "description": s.description} for s in subgoals]


def workspace_goal(ws: Workspace) -> Goal | None:
    """The approved goal, or None."""
    return current_goal(ws, required=False)


class NoArgs(BaseModel):
    """A tool that takes no arguments."""
