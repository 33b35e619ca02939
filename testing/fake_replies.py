"""Default replies of the fake OpenAI server, used when no rule answers.

They are valid for what the request asks (a schema instance, a forced tool call,
or plain text) and deterministic: everything is derived from ``ChatRequest.digest``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .fake_schema import generate_instance, input_words
from .fake_types import ChatRequest, Reply

__all__ = ["default_reply", "embedded_schema", "is_yes_no_probe", "request_words"]

_SCHEMA_TAG = re.compile(r"<schema>\s*(.*?)\s*</schema>", re.DOTALL)


def request_words(req: ChatRequest) -> list[str]:
    """Words to echo in generated values: from the last user message, else any message."""
    return input_words(req.last_user) or input_words(req.text)


def embedded_schema(text: str) -> dict[str, Any] | None:
    """A JSON schema written between ``<schema>`` and ``</schema>`` in the prompt (json_object mode)."""
    for match in _SCHEMA_TAG.finditer(text):
        try:
            schema = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if isinstance(schema, dict):
            return schema
    return None


def default_reply(req: ChatRequest) -> Reply:
    """The reply when no rule matched; see the module docstring of ``fake_openai``."""
    words = request_words(req)
    forced = req.forced_tool
    if forced is not None:
        parameters = forced.get("parameters") or {"type": "object", "properties": {}}
        hint = f"{forced.get('name') or ''} {forced.get('description') or ''}"
        args = generate_instance(parameters, req.digest, words=words, hint=hint)
        return Reply.tool_calls([{"name": forced.get("name") or "function", "arguments": args}])
    if req.schema is not None:
        return Reply.json(generate_instance(req.schema, req.digest, words=words, hint=req.schema_name or ""))
    if req.response_format_type == "json_object":
        schema = embedded_schema(req.text)
        return Reply.json(generate_instance(schema, req.digest, words=words) if schema else {})
    if is_yes_no_probe(req):
        return Reply.text("yes" if int(req.digest[:8], 16) % 2 else "no")
    if req.tools:
        return Reply.text(f"No tool is needed to answer {_quote(req.last_user)}.")
    return Reply.text(f"Fake reply to {_quote(req.last_user)}.")


def is_yes_no_probe(req: ChatRequest) -> bool:
    """A probe judge's request (tools/judge/probe.py's probe_body): one output token with logprobs asked for.
    The default answer is then one word, "yes" or "no" (by the request's digest), whose logprobs weigh the
    other answer too (fake_wire), as a real model's first token would."""
    limit = req.body.get("max_tokens", req.body.get("max_completion_tokens"))
    return limit == 1 and bool(req.body.get("logprobs"))


def _quote(text: str, max_words: int = 6) -> str:
    words = text.split()
    if not words:
        return "an empty message"
    quoted = " ".join(words[:max_words])
    return f'"{quoted}{"..." if len(words) > max_words else ""}"'
