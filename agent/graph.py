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

import html
import json
import re
from dataclasses import replace
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage, trim_messages
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import ValidationError

from goalcover.agent.configuration import AgentConfig
from goalcover.agent.prompts import PROBE_SYSTEM, PROBE_TOOL, SYSTEM, TOOL_RESULT
from goalcover.agent.state import InputState, State
from goalcover.agent.tools import BY_NAME, PAID, TOOLS, ToolContext, ToolResult, args_model, tool_spec
from goalcover.tools.errors import GoalCoverError, describe_validation_error
from goalcover.tools.llm import ENGINE_CALL
from goalcover.tools.settings import ModelConfig
from goalcover.tools.workspace import Workspace

TOOL_CALLING_KEY = "agent_tool_calling"
APPROVED, DECLINED = "approved", "declined"


def build_graph(
    ws: Workspace,
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    config: AgentConfig | None = None,
    model: BaseChatModel | None = None,
):
    """The compiled graph for one workspace. `checkpointer` defaults to none (pass `open_checkpointer(ws)`
    for threads that survive the process); `model` defaults to ChatOpenAI for the agent role."""
    from goalcover.tools.llm import make_chat_model

    config = config or AgentConfig.from_workspace(ws)
    llm = model or make_chat_model(config.model, max_retries=ws.settings.max_retries)
    decide = llm.bind_tools([tool_spec(fn) for fn in TOOLS])

    async def agent(state: State) -> dict:
        facts = workspace_facts(ws, state)
        history, left_out = bounded_history(close_dangling_calls(state.messages), config.max_history_tokens)
        summary = workspace_summary(replace(state, **facts), left_out)
        system = SystemMessage(SYSTEM.format(threshold=ws.settings.support_threshold, workspace=summary))
        try:
            reply = await decide.ainvoke([system, *history])
        except openai.APIError as exc:
            raise GoalCoverError(f"the agent model {config.model.model!r} failed: {_brief_api_error(exc)}") from None
        return {"messages": [reply], "decisions": {}, **facts}

    def confirm(state: State) -> dict:
        call = pending_calls(state.messages)[0]
        preview = PAID[call["name"]]
        try:
            shown = preview(ToolContext(ws, state, config), args_model(BY_NAME[call["name"]]).model_validate(call["args"]))
        except (GoalCoverError, ValidationError) as exc:  # the tool reports it; nothing is asked or spent
            return {"decisions": {**state.decisions, call["id"]: f"error: {_error_text(exc)}"}}
        if shown is None:  # nothing would be paid (all cached)
            return {"decisions": {**state.decisions, call["id"]: APPROVED}}
        answer = interrupt({"kind": "approve", "tool": call["name"], "tool_call_id": call["id"], "args": call["args"], **shown})
        decision = APPROVED if is_yes(answer) else DECLINED
        run = {"tool": call["name"], "status": decision, "plan": shown.get("plan")}
        return {"decisions": {**state.decisions, call["id"]: decision}, "run": run}

    async def tools(state: State) -> dict:
        emit = get_stream_writer()
        view, updates, replies = state, {}, []
        for call in pending_calls(state.messages):
            if "error" in call:  # arguments that are not JSON: langchain's invalid_tool_calls
                text = f"the arguments of {call['name']} are not valid JSON ({call['error'] or 'unparsable'}); call it again with a JSON object"
                replies.append(ToolMessage(f"error: {text}", tool_call_id=call["id"], name=call["name"], status="error"))
                emit({"tool": {"id": call["id"], "name": call["name"], "args": {}, "status": "error", "summary": text}})
                continue
            if call["name"] in PAID and call["id"] not in state.decisions:
                break  # confirm asks the user, then this node goes on from here
            emit({"tool": {"id": call["id"], "name": call["name"], "args": call["args"], "status": "start"}})
            result, error = await _run_tool(ToolContext(ws, view, config, emit), call, state.decisions)
            if result is not None:
                view = replace(view, **result.update)
                updates.update(result.update)
                content = render_result(call["name"], result, config)
            else:
                content = f"error: {error}"
            replies.append(ToolMessage(content, tool_call_id=call["id"], name=call["name"], status="error" if error else "success"))
            emit(
                {
                    "tool": {
                        "id": call["id"],
                        "name": call["name"],
                        "args": call["args"],
                        "status": "error" if error else "done",
                        "summary": error or result.summary,
                        "display": [] if result is None else result.display,
                    }
                }
            )
        return {"messages": replies, **updates}

    builder = StateGraph(State, input_schema=InputState)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_node("confirm", confirm)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route_after_agent, ["tools", END])
    builder.add_conditional_edges("tools", route_after_tools, ["confirm", "agent"])
    builder.add_edge("confirm", "tools")
    return builder.compile(checkpointer=checkpointer, name="goalcover")


def pending_calls(messages: list[AnyMessage]) -> list[dict]:
    """The calls of the model's last message that have no result yet, in order (unparsable ones carry
    an "error")."""
    for n in range(len(messages) - 1, -1, -1):
        if isinstance(messages[n], AIMessage):
            break
    else:
        return []
    message = messages[n]
    answered = {m.tool_call_id for m in messages[n + 1 :] if isinstance(m, ToolMessage)}
    calls = list(message.tool_calls) + [
        {"id": c["id"], "name": c.get("name") or "unknown", "args": {}, "error": c.get("error") or ""} for c in message.invalid_tool_calls
    ]
    return [c for c in calls if c["id"] not in answered]


def route_after_agent(state: State) -> str:
    return "tools" if pending_calls(state.messages) else END


def route_after_tools(state: State) -> str:
    return "confirm" if pending_calls(state.messages) else "agent"


def is_yes(answer: Any) -> bool:
    if isinstance(answer, dict):
        answer = answer.get("approve", answer.get("approved"))
    if isinstance(answer, str):
        return answer.strip().lower() in ("y", "yes", "ok", "approve", "approved", "run", "true")
    return answer is True


# --- running one tool call --------------------------------------------------------------------------

async def _run_tool(ctx: ToolContext, call: dict, decisions: dict[str, str]) -> tuple[ToolResult | None, str | None]:
    """(result, None) or (None, the error the model should read). Never raises for the tool's own faults."""
    name = call["name"]
    fn = BY_NAME.get(name)
    if fn is None:
        return None, f"there is no tool {name!r}; the tools are {', '.join(BY_NAME)}"
    if name in PAID:
        decision = decisions.get(call["id"], "")
        if decision.startswith("error: "):
            return None, decision.removeprefix("error: ")
        if decision != APPROVED:
            return ToolResult(
                {"ran": False, "reason": "the user declined the plan; nothing was run and nothing was spent"},
                "declined by the user",
                update={"run": {**(ctx.state.run or {}), "status": "declined"}},
            ), None
    try:
        return await fn(ctx, args_model(fn).model_validate(call["args"])), None
    except ValidationError as exc:
        return None, f"invalid arguments for {name}: {_error_text(exc)}"
    except GoalCoverError as exc:
        return None, str(exc)
    except GraphBubbleUp:  # interrupts and control flow belong to LangGraph
        raise
    except Exception as exc:  # a bug in a tool must not end the conversation; the model can say so
        return None, f"{name} failed unexpectedly ({type(exc).__name__}: {str(exc)[:300]})"


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return describe_validation_error(exc, limit=5)
    return str(exc)


def _brief_api_error(exc: openai.APIError) -> str:
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__}{f' {status}' if status else ''}: {str(exc)[:300]}"


# --- what the model sees ----------------------------------------------------------------------------

_TAG = re.compile(r"<(/?\s*(?:sample|data)\b)", re.IGNORECASE)


def _escape(text: str) -> str:
    """A `</sample>` or `</data>` written inside a sample cannot close the block it sits in."""
    return _TAG.sub(r"&lt;\1", text)


def render_result(tool: str, result: ToolResult, config: AgentConfig) -> str:
    """The tool message: JSON data, then sample texts in <sample> blocks, all inside one <data> block,
    each part cut to its budget with a note that says so."""
    body = json.dumps(result.data, ensure_ascii=False, default=str)
    if len(body) > config.max_tool_chars:
        body = body[: config.max_tool_chars] + f"\n[… {len(body) - config.max_tool_chars:,} more characters cut: ask for fewer items]"
    parts = [_escape(body)]
    budget = config.max_tool_chars
    for n, (sample_id, text) in enumerate(result.samples.items()):
        if budget <= 0:
            parts.append(f"[{len(result.samples) - n} more samples not shown: ask for fewer ids]")
            break
        shown = text[: min(config.max_sample_chars, budget)]
        budget -= len(shown)
        if len(shown) < len(text):
            shown += f"\n[… {len(text) - len(shown):,} more characters not shown]"
        parts.append(f'<sample id="{html.escape(sample_id)}">\n{_escape(shown)}\n</sample>')
    return TOOL_RESULT.format(tool=tool, body="\n".join(parts))


def bounded_history(messages: list[AnyMessage], max_tokens: int) -> tuple[list[AnyMessage], int]:
    """The recent part of the conversation that fits `max_tokens` (approximately), starting at a user
    message so that no tool result is separated from its call; the current turn is always kept."""
    kept = trim_messages(
        messages, max_tokens=max_tokens, token_counter="approximate", strategy="last", start_on="human", allow_partial=False
    )
    if not any(isinstance(m, HumanMessage) for m in kept):
        starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
        kept = messages[starts[-1] :] if starts else list(messages)
    return kept, len(messages) - len(kept)


def close_dangling_calls(messages: list[AnyMessage]) -> list[AnyMessage]:
    """Answer tool calls that never got a result (a turn stopped by an error, or an approval left open
    when the user moved on): OpenAI-compatible servers refuse a history with unanswered calls."""
    out: list[AnyMessage] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        out.append(message)
        i += 1
        if not isinstance(message, AIMessage):
            continue
        calls = [(c["id"], c["name"]) for c in message.tool_calls]
        calls += [(c["id"], c.get("name") or "unknown") for c in message.invalid_tool_calls]
        answered = set()
        while i < len(messages) and isinstance(messages[i], ToolMessage):
            answered.add(messages[i].tool_call_id)
            out.append(messages[i])
            i += 1
        out += [
            ToolMessage("not run: the turn ended before this call ran", tool_call_id=cid, name=name, status="error")
            for cid, name in calls
            if cid not in answered
        ]
    return out


def workspace_facts(ws: Workspace, state: State) -> dict[str, Any]:
    """What the workspace holds now, as state updates (the CLI may have changed it between turns)."""
    from goalcover.tools.dataset import describe
    from goalcover.tools.goal import current_goal

    facts: dict[str, Any] = {}
    count = ws.store.count_samples()
    if state.dataset is None or state.dataset.get("samples") != count:
        facts["dataset"] = describe(ws)
    goal = current_goal(ws, required=False)
    facts["goal"] = None if goal is None else [s.model_dump() for s in goal.subgoals]
    facts["approved"] = goal is not None and not state.draft
    if not state.goal_text and goal is not None:
        facts["goal_text"] = goal.text
    return facts


def workspace_summary(state: State, left_out: int = 0) -> str:
    lines = []
    data = state.dataset or {}
    if data.get("samples"):
        files = ", ".join(src["path"].rsplit("/", 1)[-1] for src in data.get("sources", []))
        lines.append(f"- Dataset: {data['samples']} samples, {data.get('format')} format, from {files}.")
    else:
        lines.append("- Dataset: none yet (the user ingests one with `goalcover ingest FILE`).")
    if state.goal_text:
        lines.append(f"- Goal: {state.goal_text}")
    if state.goal:
        lines.append("- Approved subgoals (saved in the workspace):")
        lines += [f"  {s['id']}. {s['title']}" for s in state.goal]
    if state.draft:
        lines.append("- Draft subgoals (not approved yet), as last shown:")
        lines += [f"  {s['id']}. {s['title']} — {s['description']}" for s in state.draft]
    if state.run:
        lines.append(f"- Last paid run: {state.run.get('tool', 'run_scoring')} {state.run.get('status')}.")
    if left_out:
        lines.append(f"- {left_out} earlier messages of this conversation are not shown to you; call tools again for facts from them.")
    return "\n".join(lines)


# --- can this model call tools? ---------------------------------------------------------------------

async def ensure_tool_calling(ws: Workspace, llm: BaseChatModel, model: ModelConfig) -> None:
    """One forced tool call, once per model and endpoint (remembered in the workspace); a GoalCoverError
    naming the model when it cannot call tools."""
    key = [model.model, model.base_url]
    if ws.store.get_meta(TOOL_CALLING_KEY) == key:
        return
    where = f" at {model.base_url}" if model.base_url else ""
    need = (
        f"The agent model {model.model!r}{where} {{why}}; `goalcover chat` needs a model with tool (function) calling. "
        "Set GOALCOVER_AGENT_MODEL (and GOALCOVER_AGENT_BASE_URL) to one that supports it."
    )
    tool = {
        "type": "function",
        "function": {
            "name": PROBE_TOOL,
            "description": "Report that you are ready.",
            "parameters": {"type": "object", "properties": {"ready": {"type": "boolean"}}, "required": ["ready"]},
        },
    }
    messages = [SystemMessage(PROBE_SYSTEM), HumanMessage("Are you ready?")]
    try:
        try:
            reply = await llm.bind_tools([tool], tool_choice="required").ainvoke(messages, config=ENGINE_CALL)
        except openai.BadRequestError:
            # Some servers call tools but refuse tool_choice="required"; ask again with the default choice.
            reply = await llm.bind_tools([tool]).ainvoke(messages, config=ENGINE_CALL)
    except openai.BadRequestError as exc:
        raise GoalCoverError(need.format(why=f"refused a request with tools ({_brief_api_error(exc)})")) from None
    except openai.APIError as exc:
        raise GoalCoverError(f"Cannot use the agent model {model.model!r}{where}: {_brief_api_error(exc)}") from None
    if not getattr(reply, "tool_calls", None):
        raise GoalCoverError(need.format(why="answered in text when a tool call was required"))
    ws.store.set_meta(TOOL_CALLING_KEY, key)

