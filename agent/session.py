"""One conversation with the agent as a stream of plain events that any UI renders (terminal, Chainlit).

    session = Session(ws, thread_id)
    for event in session.send("my goal is ..."):   # Text, Reply, ToolStep, Progress, Approval
        ...
    for event in session.answer(True):             # after an Approval: run the paid step (False: don't)
        ...

The thread is checkpointed in the workspace, so a Session opened later (another process) with the same
thread id continues the conversation, including an approval that was left unanswered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, HumanMessage
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from goalcover.agent.configuration import AgentConfig
from goalcover.agent.graph import build_graph
from goalcover.agent.threads import new_thread_id, open_checkpointer, remember_thread, thread_config
from goalcover.tools.errors import GoalCoverError
from goalcover.tools.workspace import Workspace


@dataclass
class Text:
    """A piece of the agent's reply, as the model streams it."""

    text: str


@dataclass
class Reply:
    """The agent's complete reply (also sent when nothing was streamed)."""

    text: str


@dataclass
class ToolStep:
    name: str
    args: dict[str, Any]
    status: str  # start, done, error
    summary: str = ""
    display: list[str] = field(default_factory=list)


@dataclass
class Progress:
    tool: str
    done: int | None = None
    total: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Approval:
    """The graph waits for a yes or no before a paid step; answer with `Session.answer`."""

    tool: str
    question: str
    plan: dict[str, Any] | None
    args: dict[str, Any]


Event = Union[Text, Reply, ToolStep, Progress, Approval]


class Session:
    def __init__(
        self,
        ws: Workspace,
        thread_id: str | None = None,
        *,
        config: AgentConfig | None = None,
        model=None,
    ) -> None:
        self.ws = ws
        self.config = config or AgentConfig.from_workspace(ws)
        self.checkpointer = open_checkpointer(ws)
        try:
            self.graph = build_graph(ws, checkpointer=self.checkpointer, config=self.config, model=model)
        except BaseException:
            self.checkpointer.conn.close()
            raise
        self.thread_id = thread_id or new_thread_id()
        remember_thread(ws, self.thread_id)

    def new_thread(self) -> str:
        self.thread_id = new_thread_id()
        remember_thread(self.ws, self.thread_id)
        return self.thread_id

    @property
    def run_config(self) -> dict:
        return thread_config(self.thread_id, self.config.recursion_limit)

    def messages(self) -> list[AnyMessage]:
        return list(self.graph.get_state(self.run_config).values.get("messages", []))

    def pending(self) -> list[Approval]:
        """Approvals this thread is waiting for (e.g. left open when the last process ended)."""
        return [_approval(i.value) for i in self.graph.get_state(self.run_config).interrupts]

    def send(self, text: str) -> Iterator[Event]:
        yield from self._stream({"messages": [HumanMessage(text)]})

    def answer(self, approve: bool) -> Iterator[Event]:
        yield from self._stream(Command(resume=approve))

    def _stream(self, graph_input: Any) -> Iterator[Event]:
        try:
            for mode, chunk in self.graph.stream(graph_input, self.run_config, stream_mode=["messages", "custom", "updates"]):
                yield from _events(mode, chunk)
        except GraphRecursionError:
            raise GoalCoverError(
                f"the agent took more than {self.config.recursion_limit} steps on one message and was stopped; "
                "ask again more specifically"
            ) from None

    def close(self) -> None:
        self.checkpointer.conn.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _events(mode: str, chunk: Any) -> Iterator[Event]:
    if mode == "messages":
        message, meta = chunk
        if meta.get("langgraph_node") == "agent" and isinstance(message, AIMessageChunk) and message.text:
            yield Text(message.text)
    elif mode == "custom" and isinstance(chunk, dict):
        if "tool" in chunk:
            step = chunk["tool"]
            yield ToolStep(step["name"], step.get("args") or {}, step["status"], step.get("summary", ""), step.get("display") or [])
        elif "progress" in chunk:
            p = dict(chunk["progress"])
            yield Progress(p.pop("tool", ""), p.pop("done", None), p.pop("total", None), p)
    elif mode == "updates" and isinstance(chunk, dict):
        for interrupt in chunk.get("__interrupt__", ()):
            yield _approval(interrupt.value)
        agent = chunk.get("agent") or {}
        for message in agent.get("messages", []):
            if isinstance(message, AIMessage) and message.text:
                yield Reply(message.text)


def _approval(value: dict) -> Approval:
    return Approval(value.get("tool", ""), value.get("question", ""), value.get("plan"), value.get("args") or {})
