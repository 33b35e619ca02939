"""The record shapes and the text they are judged by.

One pydantic model per fine-tuning format (alpaca, OpenAI messages, ShareGPT, prompt-completion, text),
and `text_view` / `text_parts`: the one readable text per sample — system prompts, tools, tool calls and
results, a reasoning model's reasoning included — that the embedder and the judge read. `records` parses
raw records into these models; tools/judge/fit.py cuts long samples along `text_parts`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from goalcover.tools.core.shapes import Shape

class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


class AlpacaRecord(_Record):
    """instruction / input / output (Stanford Alpaca); `system` and `history` (LLaMA-Factory) are read too."""
    instruction: str
    input: str | None = None
    output: str


class ChatMessage(_Record):
    """One OpenAI chat message; content is text, a list of parts, or null (with `tool_calls`)."""
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class MessagesRecord(_Record):
    """OpenAI chat fine-tuning record: `messages`, optionally `tools`."""
    messages: list[ChatMessage] = Field(min_length=1)


class ShareGPTTurn(_Record):
    """One ShareGPT turn {from, value}; function_call / observation are tool calls and results."""
    from_: Literal["system", "human", "user", "gpt", "assistant", "function_call", "observation", "tool"] = Field(
        alias="from"
    )
    value: str


class ShareGPTRecord(_Record):
    """ShareGPT record: `conversations`, optionally record-level `system` and `tools`."""
    conversations: list[ShareGPTTurn] = Field(min_length=1)


class PromptCompletionRecord(_Record):
    """prompt / completion (OpenAI legacy fine-tuning, HumanEval-style)."""
    prompt: str
    completion: str


class TextRecord(_Record):
    """Plain `text` (pre-training style)."""
    text: str


RECORD_MODELS: dict[Shape, type[_Record]] = {
    "alpaca": AlpacaRecord,
    "messages": MessagesRecord,
    "sharegpt": ShareGPTRecord,
    "prompt-completion": PromptCompletionRecord,
    "text": TextRecord,
}
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant"}


# Placeholders for parts of a message the judge cannot read, so it knows they were there.
PART_PLACEHOLDERS = {"image_url": "[image]", "image": "[image]", "input_image": "[image]", "input_audio": "[audio]", "audio": "[audio]", "file": "[file]", "video": "[video]"}


def _content_text(content: Any) -> str:
    """A message's content as text: strings as they are, text parts joined, other parts as placeholders."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content if isinstance(content, list) else [content]:
        if not isinstance(part, dict):
            parts.append(str(part))
        elif isinstance(part.get("text"), str):
            parts.append(part["text"])
        else:
            kind = str(part.get("type", "part"))
            parts.append(PART_PLACEHOLDERS.get(kind, f"[{kind}]"))
    return "\n".join(parts)


def _as_json_text(value: Any) -> str:
    """Tool definitions and call arguments as compact JSON (strings holding JSON are shown as they are)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _tool_call_text(call: Any) -> str:
    """`name(arguments)` for an OpenAI tool call ({function: {name, arguments}}) or a bare {name, arguments}."""
    if not isinstance(call, dict):
        return _as_json_text(call)
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    return f"{fn.get('name', '?')}({_as_json_text(fn.get('arguments', ''))})"


def _extras(parsed: _Record) -> dict[str, Any]:
    return parsed.model_extra or {}


def _preamble(extras: dict[str, Any]) -> list[str]:
    """Record-level `system` prompt and `tools` definitions (LLaMA-Factory, OpenAI fine-tuning files;
    OpenAI's legacy `functions` definitions count as tools)."""
    parts = []
    if extras.get("system"):
        parts.append(f"system: {_content_text(extras['system'])}")
    if extras.get("tools"):
        parts.append(f"tools: {_as_json_text(extras['tools'])}")
    if extras.get("functions"):
        parts.append(f"functions: {_as_json_text(extras['functions'])}")
    return parts


# Fields that hold a reasoning model's thinking next to the answer (DeepSeek's `reasoning_content`,
# OpenRouter/vLLM `reasoning`, Anthropic-style `thinking`); the model learns them, so they are judged.
REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")


def _reasoning(extras: dict[str, Any]) -> list[str]:
    """The reasoning a record or message carries, as `[reasoning] …` lines (empty when it has none)."""
    return [f"[reasoning] {_content_text(extras[k])}" for k in REASONING_KEYS if extras.get(k)]


def _message_text(message: ChatMessage) -> str:
    extras = _extras(message)
    lines = _reasoning(extras)
    text = _content_text(message.content)
    if text:
        lines.append(text)
    calls = extras.get("tool_calls") or ([extras["function_call"]] if extras.get("function_call") else [])
    for call in calls if isinstance(calls, list) else [calls]:
        lines.append(f"[tool call] {_tool_call_text(call)}")
    role = message.role
    if role in ("tool", "function"):
        name = extras.get("name") or extras.get("tool_call_id")
        role = f"{role} result" + (f" ({name})" if name else "")
    return f"{role}: " + "\n".join(lines)


SHAREGPT_LABELS = {"human": "user", "gpt": "assistant", "function_call": "assistant [tool call]", "observation": "tool result"}


def text_view(shape: Shape, parsed: _Record) -> str:
    """One readable text per sample, the same for every shape, for the embedder and the judge: what the
    model will learn from, system prompts, tool definitions, tool calls, tool results and a reasoning
    model's reasoning (`REASONING_KEYS`) included. It is `text_parts` joined by blank lines."""
    return "\n\n".join(text for _, text in text_parts(shape, parsed))


def text_parts(shape: Shape, parsed: _Record) -> list[tuple[str, str]]:
    """The parts of `text_view` in order, each as (role, text): "response" for what the model is trained
    to write (the output, the completion, every assistant turn, the reasoning before them), "instruction"
    for the request it answers (alpaca's instruction, the last user turn before the last response, the
    prompt), "context" for the rest (system prompts, tools, inputs, earlier turns, tool results), "text"
    for a plain text sample. tools/judge/fit.py reads them to cut long samples where it hides the least."""
    if isinstance(parsed, AlpacaRecord):
        parts = [("context", p) for p in _preamble(_extras(parsed))]
        for turn in _extras(parsed).get("history") or []:  # LLaMA-Factory: earlier [instruction, response] turns
            if isinstance(turn, list) and len(turn) == 2:
                parts += [("context", f"Instruction: {turn[0]}"), ("response", f"Response: {turn[1]}")]
        parts.append(("instruction", f"Instruction: {parsed.instruction}"))
        if parsed.input:
            parts.append(("context", f"Input: {parsed.input}"))
        parts += [("response", r) for r in _reasoning(_extras(parsed))]
        parts.append(("response", f"Response: {parsed.output}"))
        return parts
    if isinstance(parsed, MessagesRecord):
        turns = [("response" if m.role == "assistant" else "context", _message_text(m)) for m in parsed.messages]
        return [("context", p) for p in _preamble(_extras(parsed))] + _mark_instruction(turns, [m.role == "user" for m in parsed.messages])
    if isinstance(parsed, ShareGPTRecord):
        turns = [("response" if SHAREGPT_LABELS.get(t.from_, t.from_).startswith("assistant") else "context",
                  f"{SHAREGPT_LABELS.get(t.from_, t.from_)}: " + "\n".join(_reasoning(_extras(t)) + [t.value]))
                 for t in parsed.conversations]
        users = [SHAREGPT_LABELS.get(t.from_, t.from_) == "user" for t in parsed.conversations]
        return [("context", p) for p in _preamble(_extras(parsed))] + _mark_instruction(turns, users)
    if isinstance(parsed, PromptCompletionRecord):
        return ([("instruction", f"Prompt: {parsed.prompt}")] + [("response", r) for r in _reasoning(_extras(parsed))]
                + [("response", f"Completion: {parsed.completion}")])
    assert isinstance(parsed, TextRecord)
    return [("text", parsed.text)]


def _mark_instruction(turns: list[tuple[str, str]], is_user: list[bool]) -> list[tuple[str, str]]:
    """The last user turn before the last response becomes the "instruction" (the request answered)."""
    last = max((i for i, (role, _) in enumerate(turns) if role == "response"), default=len(turns))
    for i in range(min(last, len(turns)) - 1, -1, -1):
        if is_user[i]:
            turns[i] = ("instruction", turns[i][1])
            break
    return turns
