"""The agent graph: the model decides, tools act, and paid tools wait for the user's yes.

    START → agent ─(no tool call)→ END
              └─(tool calls)→ tools ─(all answered)→ agent
                                ↑ └─(next call is paid)→ confirm ─interrupt→ (user answers) ─┘

`tools` runs the calls of the model's message in order and stops before a paid one (scoring, synthesis)
the user has not answered for; `confirm` shows that call's plan (calls, tokens, estimated cost) through a
LangGraph `interrupt`, computed after the earlier calls took effect. The client resumes with
`Command(resume=True)` to run it or `Command(resume=False)` to decline; declined, the tool reports
"declined" to the model instead of running. Only `confirm` re-runs on resume, and it only previews, so no
tool runs twice. Tool errors and bad arguments go back to the model as tool messages; the conversation
sent to the model is bounded in size.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from goalcover.agent.configuration import AgentConfig
from goalcover.agent.nodes import make_nodes, pending_calls
from goalcover.agent.state import InputState, State
from goalcover.agent.text_calls import forced_choice
from goalcover.agent.tools import TOOLS, tool_spec
from goalcover.tools.core.workspace import Workspace


def build_graph(
    ws: Workspace,
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    config: AgentConfig | None = None,
    model: BaseChatModel | None = None,
):
    """The compiled graph for one workspace. `checkpointer` defaults to none (pass `await
    open_checkpointer(ws)` for threads that survive the process); `model` defaults to ChatOpenAI for the
    agent role. Drive it with `astream`/`ainvoke`; raises ConfigError when no agent model is configured."""
    from goalcover.tools.judge.llm import make_chat_model

    config = config or AgentConfig.from_workspace(ws)
    llm = model or make_chat_model(config.model, max_retries=ws.settings.max_retries, disable_streaming=not config.stream)
    # tool_choice "auto" spelled out: it is OpenAI's default, but llama-cpp-python's tool-calling chat format
    # ignores the tools when the field is absent.
    specs = [tool_spec(fn) for fn in TOOLS]
    nodes = make_nodes(ws, config, llm.bind_tools(specs, tool_choice="auto"),
                       force=lambda name: llm.bind_tools(specs, tool_choice=forced_choice(name)))
    builder = StateGraph(State, input_schema=InputState)
    for name, node in nodes.items():
        builder.add_node(name, node)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route_after_agent, ["tools", END])
    builder.add_conditional_edges("tools", route_after_tools, ["confirm", "agent"])
    builder.add_edge("confirm", "tools")
    return builder.compile(checkpointer=checkpointer, name="goalcover")


def route_after_agent(state: State) -> str:
    """To the tools when the model called any, else the turn ends."""
    return "tools" if pending_calls(state.messages) else END


def route_after_tools(state: State) -> str:
    """To confirm when a paid call is still unanswered, else back to the model."""
    return "confirm" if pending_calls(state.messages) else "agent"
