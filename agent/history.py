"""What the model sees: tool results in delimited data blocks, a bounded history whose every tool call is
answered, and a summary of what the workspace holds now."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage, trim_messages

from goalcover.agent.configuration import AgentConfig
from goalcover.agent.prompts import TOOL_RESULT
from goalcover.agent.state import State
from goalcover.agent.tools import ToolResult
from goalcover.tools.core.untrusted import untrusted
from goalcover.tools.core.workspace import Workspace

# A `</sample>` or `</data>` (in any spelling) written inside a sample cannot close the block it sits in.
escape_tags = untrusted


def render_result(tool: str, result: ToolResult, config: AgentConfig) -> str:
    """The tool message: JSON data, then sample texts in <sample> blocks, all inside one <data> block,
    each part cut to its budget with a note that says so."""
    body = json.dumps(result.data, ensure_ascii=False, default=str)
    if len(body) > config.max_tool_chars:
        body = body[: config.max_tool_chars] + f"\n[… {len(body) - config.max_tool_chars:,} more characters cut: ask for fewer items]"
    parts = [escape_tags(body)]
    budget = config.max_tool_chars
    for n, (sample_id, text) in enumerate(result.samples.items()):
        if budget <= 0:
            parts.append(f"[{len(result.samples) - n} more samples not shown: ask for fewer ids]")
            break
        shown = text[: min(config.max_sample_chars, budget)]
        budget -= len(shown)
        if len(shown) < len(text):
            shown += f"\n[… {len(text) - len(shown):,} more characters not shown]"
        parts.append(f'<sample id="{untrusted(sample_id, attribute=True)}">\n{escape_tags(shown)}\n</sample>')
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
            ToolMessage(
                "not finished: the turn was stopped or ended before this call returned. Whatever it saved is kept "
                "(a stopped scoring run keeps every judgment that arrived; running it again scores only the rest).",
                tool_call_id=cid, name=name, status="error",
            )
            for cid, name in calls
            if cid not in answered
        ]
    return out


def workspace_facts(ws: Workspace, state: State) -> dict[str, Any]:
    """What the workspace holds now, as state updates (the CLI may have changed it between turns)."""
    from goalcover.tools.data.ingest import describe
    from goalcover.tools.core.goal import current_goal

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
    """The system prompt's lines about the workspace now: dataset, goal, approved subgoals, draft, last paid
    run, and how many earlier messages were left out."""
    lines = []
    data = state.dataset or {}
    if data.get("samples"):
        files = ", ".join(untrusted(src["path"].rsplit("/", 1)[-1], attribute=True) for src in data.get("sources", []))
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


