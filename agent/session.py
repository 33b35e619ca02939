"""One conversation with the agent as a stream of plain events that any UI renders (terminal, Chainlit).

    async with await Session.open(ws, thread_id) as session:
        async for event in session.send("my goal is ..."):   # Text, Reply, ToolStep, Progress, Approval
            ...
        async for event in session.answer(True):             # after an Approval: run the paid step (False: don't)
            ...

The thread is checkpointed in the workspace, so a Session opened later (another process) with the same
thread id continues the conversation, including an approval that was left unanswered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, HumanMessage
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from goalcover.agent.configuration import AgentConfig
from goalcover.agent.graph import build_graph
from goalcover.agent.tool_check import ensure_tool_calling
from goalcover.agent.threads import new_thread_id, open_checkpointer, remember_thread, thread_config
from goalcover.tools.core.errors import GoalCoverError
from goalcover.tools.core.workspace import Workspace


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
    """A tool call's step: `status` is start, done or error; `summary` one line; `display` lines to show as
    they are."""

    name: str
    args: dict[str, Any]
    status: str  # start, done, error
    summary: str = ""
    display: list[str] = field(default_factory=list)


@dataclass
class Progress:
    """Progress of a long tool: done of total (counts), or only a `stage` in `fields` when there are no
    counts."""

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
    """One conversation with the agent over a checkpointed thread of the workspace.

    Open it with `await Session.open(ws, thread_id)` (or `async with await Session.open(...)`) on the event
    loop that will drive it, and close it with `await session.aclose()`. Stopping a turn is cancelling the
    task that iterates `send`/`answer`: tools stop taking new work and keep what was paid for.
    """

    def __init__(self, ws: Workspace, graph, checkpointer, thread_id: str, config: AgentConfig, owned_model=None) -> None:
        self.ws = ws
        self.graph = graph
        self.checkpointer = checkpointer
        self.thread_id = thread_id
        self.config = config
        self._owned_model = owned_model  # a ChatOpenAI this session made: its HTTP client closes with it
        self._closed = False

    @classmethod
    async def open(
        cls,
        ws: Workspace,
        thread_id: str | None = None,
        *,
        config: AgentConfig | None = None,
        model=None,
    ) -> "Session":
        """Build the graph on the workspace's checkpointer and, once per model and endpoint, check that
        the agent model can call tools. Raises ConfigError (no model) and GoalCoverError (the model
        cannot call tools or cannot be reached)."""
        from goalcover.tools.judge.llm import make_chat_model

        config = config or AgentConfig.from_workspace(ws)
        owned = None if model is not None else make_chat_model(config.model, max_retries=ws.settings.max_retries, disable_streaming=not config.stream)
        llm = model or owned
        checkpointer = await open_checkpointer(ws)
        try:
            graph = build_graph(ws, checkpointer=checkpointer, config=config, model=llm)
            if config.probe_tool_calling:
                await ensure_tool_calling(ws, llm, config.model)
        except BaseException:
            await checkpointer.conn.close()
            await _close_model(owned)
            raise
        session = cls(ws, graph, checkpointer, thread_id or new_thread_id(), config, owned)
        remember_thread(ws, session.thread_id)
        return session

    def new_thread(self) -> str:
        """Start a new conversation (the old one stays in the workspace); returns its id."""
        self.thread_id = new_thread_id()
        remember_thread(self.ws, self.thread_id)
        return self.thread_id

    @property
    def run_config(self) -> dict:
        """The LangGraph run config of the current thread (thread id, recursion limit)."""
        return thread_config(self.thread_id, self.config.recursion_limit)

    async def messages(self) -> list[AnyMessage]:
        """The thread's messages so far, oldest first."""
        return list((await self.graph.aget_state(self.run_config)).values.get("messages", []))

    async def pending(self) -> list[Approval]:
        """Approvals this thread is waiting for (e.g. left open when the last process ended)."""
        return [_approval(i.value) for i in (await self.graph.aget_state(self.run_config)).interrupts]

    def send(self, text: str) -> AsyncIterator[Event]:
        """Events of the agent's turn for the user's `text`."""
        return self._stream({"messages": [HumanMessage(text)]})

    def answer(self, approve: bool) -> AsyncIterator[Event]:
        """Events after answering the pending Approval: run the paid step (True) or not."""
        return self._stream(Command(resume=approve))

    async def _stream(self, graph_input: Any) -> AsyncIterator[Event]:
        try:
            async for mode, chunk in self.graph.astream(graph_input, self.run_config, stream_mode=["messages", "custom", "updates"]):
                for event in _events(mode, chunk):
                    yield event
        except GraphRecursionError:
            raise GoalCoverError(
                f"the agent took more than {self.config.recursion_limit} steps on one message and was stopped; "
                "ask again more specifically"
            ) from None

    async def aclose(self) -> None:
        """Close the checkpointer's connection and the agent model's HTTP client (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self.checkpointer.conn.close()
        await _close_model(self._owned_model)

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


async def _close_model(model) -> None:
    """Close a ChatOpenAI's async HTTP client on this loop (left to the garbage collector, it is closed
    later on a loop that has ended, with a traceback)."""
    client = getattr(model, "root_async_client", None)
    if client is not None:
        await client.close()


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
