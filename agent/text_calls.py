"""Tool calls a small local model writes as text, recovered.

Through llama-cpp-python's `chatml-function-calling` chat format (what `goalcover local serve` starts) a
model answers either "message:" and text, or "functions.<name>:" and JSON arguments under a grammar
(llama_cpp/llama_chat_format.py, `chatml_function_calling`). Small models often take the "message:" branch
and then write the call as text — Qwen2.5-Coder-1.5B wrote `functions.approve_goal:` and nothing else in 8
of the 10 turns of evals/agent_turns.py — and models trained on Hermes-style tool use (Qwen2.5) write
`<tool_call>{"name": …, "arguments": …}</tool_call>`. Both mean the model chose a tool; only the format
was lost. `named_call` reads such a reply when the *whole* reply is one call of a tool that exists (prose
that mentions a tool is left alone); the agent node then asks the model once more with that tool forced
(tool_choice by name, which the chat format answers with the JSON arguments under the tool's schema), or
uses the arguments the text already holds.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Container

from langchain_core.messages import AIMessage

_FUNCTIONS = re.compile(r"^\s*(?:message:\s*)?functions\.([A-Za-z_]\w*)\s*:?\s*(\{.*\})?\s*$", re.DOTALL)
_TAGGED = re.compile(r"^\s*<tool_call>\s*(\{.*\})\s*</tool_call>\s*$", re.DOTALL)


def named_call(reply: AIMessage, tools: Container[str]) -> tuple[str, dict | None] | None:
    """(tool name, its arguments or None when the text gives none) for a reply without tool calls whose
    whole text is one tool call written as text (module docstring); None otherwise, and for a name that is
    not in `tools` or arguments that are not a JSON object."""
    if reply.tool_calls or not isinstance(reply.content, str):
        return None
    if (match := _FUNCTIONS.match(reply.content)) is not None:
        name, raw = match.group(1), match.group(2)
    elif (match := _TAGGED.match(reply.content)) is not None:
        try:
            call = json.loads(match.group(1))
        except json.JSONDecodeError:
            return None
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return None
        name, raw = call["name"], json.dumps(call.get("arguments", {}))
    else:
        return None
    if name not in tools:
        return None
    if raw is None:
        return name, None
    try:
        args = json.loads(raw)
    except json.JSONDecodeError:
        return name, None  # the text's arguments are broken: ask for them
    return (name, args) if isinstance(args, dict) else (name, None)


def as_call(name: str, args: dict) -> AIMessage:
    """An AI message holding the one tool call `name(args)` (a fresh call id), marked as recovered from text."""
    return AIMessage(content="", tool_calls=[{"id": f"call_text_{uuid.uuid4().hex[:12]}", "name": name, "args": args}],
                     additional_kwargs={"goalcover_recovered_from_text": True})


def forced_choice(name: str) -> dict:
    """The OpenAI `tool_choice` that makes the model call `name`."""
    return {"type": "function", "function": {"name": name}}
