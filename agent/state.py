"""What the graph remembers per thread; checkpointed after every step.

Values are plain JSON-like data (subgoals as dicts, not models) so checkpoints read back in any later
version of the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


@dataclass
class InputState:
    """What a turn starts from: the new messages."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)


@dataclass
class State(InputState):
    """The conversation's checkpointed state: messages, the goal text, the draft and approved subgoals, what
    the workspace held at the last turn, decisions on paid calls, and the last paid run."""

    dataset: dict[str, Any] | None = None
    """What the workspace holds (`dataset.describe`), refreshed when the sample count changes."""
    goal_text: str | None = None
    """The user's goal in their words, from the last proposal (or the workspace's goal)."""
    draft: list[dict[str, Any]] | None = None
    """Subgoals being discussed, ids S1..Sn as last shown; None when there is no unsaved draft."""
    approved: bool = False
    """Whether the workspace holds an approved goal that the draft (if any) has not changed since."""
    goal: list[dict[str, Any]] | None = None
    """The approved goal's subgoals as the workspace holds them."""
    run: dict[str, Any] | None = None
    """The last paid run (scoring or synthesis): tool, status (approved, declined, done, stopped), plan, result."""
    decisions: dict[str, bool] = field(default_factory=dict)
    """Tool-call id -> the user's answer at the approval interrupt for that (paid) call."""
