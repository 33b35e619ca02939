"""The graph's three nodes: `agent` (the model decides), `confirm` (a paid call waits for the user's yes
at an interrupt) and `tools` (runs the model's calls in order, stopping before an unanswered paid one),
and how one tool call runs. `graph.py` wires them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import openai
from langchain_core.messages import AIMessage, AnyMessage, SystemMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.errors import GraphBubbleUp
from langgraph.types import interrupt
from pydantic import ValidationError

from goalcover.agent.configuration import AgentConfig
from goalcover.agent.history import bounded_history, close_dangling_calls, render_result, workspace_facts, workspace_summary
from goalcover.agent.prompts import SYSTEM
from goalcover.agent.state import State
from goalcover.agent.text_calls import as_call, named_call
from goalcover.agent.tools import BY_NAME, PAID, ToolContext, ToolResult, args_model
from goalcover.tools.core.errors import GoalCoverError, describe_validation_error
from goalcover.tools.core.messages import user_message
from goalcover.tools.core.workspace import Workspace

APPROVED, DECLINED = "approved", "declined"


def make_nodes(ws: Workspace, config: AgentConfig, decide, force=None) -> dict[str, Any]:
    """{"agent", "confirm", "tools"} -> node functions for one workspace; `decide` is the agent model with
    the tools bound, `force(name)` the same model made to call the tool `name` (for a call the model wrote
    as text: agent/text_calls.py), or None."""

    async def agent(state: State) -> dict:
        facts = workspace_facts(ws, state)
        history, left_out = bounded_history(close_dangling_calls(state.messages), config.max_history_tokens)
        summary = workspace_summary(replace(state, **facts), left_out)
        system = SystemMessage(SYSTEM.format(threshold=ws.settings.support_threshold, workspace=summary))
        messages = [system, *with_content(history)]
        try:
            reply = await decide.ainvoke(messages)
            if (named := named_call(reply, BY_NAME)) is not None:  # a tool call written as text
                name, args = named
                if args is not None:
                    reply = as_call(name, args)
                elif force is not None and (forced := await force(name).ainvoke(messages)).tool_calls:
                    reply = forced
        except openai.APIError as exc:
            raise GoalCoverError(f"the agent model {config.model.model!r} failed: {brief_api_error(exc)}") from None
        return {"messages": [reply], "decisions": {}, **facts}

    def confirm(state: State) -> dict:
        call = pending_calls(state.messages)[0]
        preview = PAID[call["name"]]
        try:
            shown = preview(ToolContext(ws, state, config), args_model(BY_NAME[call["name"]]).model_validate(call["args"]))
        except (GoalCoverError, ValidationError) as exc:  # the tool reports it; nothing is asked or spent
            return {"decisions": {**state.decisions, call["id"]: f"error: {error_text(exc)}"}}
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
            result, error = await run_tool(ToolContext(ws, view, config, emit), call, state.decisions)
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

    return {"agent": agent, "confirm": confirm, "tools": tools}


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


def is_yes(answer: Any) -> bool:
    """Whether an interrupt's answer approves: True, "yes"/"y"/"ok"/"run"…, or {"approve": …}."""
    if isinstance(answer, dict):
        answer = answer.get("approve", answer.get("approved"))
    if isinstance(answer, str):
        return answer.strip().lower() in ("y", "yes", "ok", "approve", "approved", "run", "true")
    return answer is True


# --- running one tool call --------------------------------------------------------------------------

async def run_tool(ctx: ToolContext, call: dict, decisions: dict[str, str]) -> tuple[ToolResult | None, str | None]:
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
        return None, f"invalid arguments for {name}: {error_text(exc)}"
    except GoalCoverError as exc:
        return None, user_message(exc)
    except GraphBubbleUp:  # interrupts and control flow belong to LangGraph
        raise
    except Exception as exc:  # a bug in a tool must not end the conversation; the model can say so
        from goalcover.tools.core.failures import explain

        if (clear := explain(exc)) is not None:  # a full disk, a database another process holds
            return None, str(clear)
        return None, f"{name} failed unexpectedly ({user_message(exc)})"


def error_text(exc: Exception) -> str:
    """The message a model reads for a tool's error (a ValidationError as field-by-field lines)."""
    if isinstance(exc, ValidationError):
        return describe_validation_error(exc, limit=5)
    return str(exc)


def brief_api_error(exc: openai.APIError) -> str:
    """An OpenAI API error in one short line: class, status code, the start of its text (`user_message`)."""
    return user_message(exc)


def with_content(messages: list) -> list:
    """The history with a one-space text on tool-calling AI messages that have none: langchain-openai sends
    such a message's content as null, which llama-cpp-python's server refuses (its assistant content must be
    a string; a 500 naming 'messages', N)."""
    return [
        m.model_copy(update={"content": " "}) if isinstance(m, AIMessage) and m.tool_calls and not m.content else m
        for m in messages
    ]
