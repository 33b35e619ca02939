"""Model replies as the engine reads them: one completion (`Reply`), its JSON parsed into a schema with
only meaning-keeping repairs (`parse_json_reply`, `ReplyError`), and the wire shapes of chat completions
(`message_dicts`, `reply_from_completion`). Used by every caller in llm.py (which re-exports these names).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ValidationError

from goalcover.tools.core.errors import describe_validation_error

T = TypeVar("T", bound=BaseModel)
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


class ReplyError(ValueError):
    """The model answered, but not with what was asked."""


def parse_json_reply(content: str, schema: type[T]) -> tuple[T, bool]:
    """Parse a model's reply into `schema`; returns (value, repaired?) or raises ReplyError.

    Repairs only what keeps the model's meaning: fences, trailing commas, missing brackets, and numbers
    written as strings. Values out of range are not clamped: that would be inventing a score.
    """
    text = content.strip()
    fenced = _FENCE.match(text)
    repaired = False
    if fenced:
        text, repaired = fenced.group(1).strip(), True
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        import json_repair

        data = json_repair.loads(text)
        repaired = True
        if not isinstance(data, (dict, list)) or data in ({}, []):
            raise ReplyError(f"the reply is not JSON: {content[:200]!r}") from None
    try:
        return schema.model_validate(data), repaired
    except ValidationError as exc:
        raise ReplyError(f"the reply does not match the schema ({describe_validation_error(exc, limit=5)})") from None


@dataclass
class Reply:
    """One chat completion, as the repair loop needs it: the reply text, token counts as the server
    reported them (None when it did not) and the `logprobs.content` list when asked for."""

    content: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    logprobs: list[dict[str, Any]] | None = None


def message_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as the chat-completions API's `messages` list (role, content)."""
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles.get(m.type, m.type), "content": str(m.content)} for m in messages]


def reply_from_completion(data: dict[str, Any]) -> Reply:
    """A chat completion's JSON (a dict, as the API returns it) as a Reply. Raises json.JSONDecodeError
    (which the retry policy treats as transient, like a garbled body) when it has no choices[0].message."""
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise json.JSONDecodeError("the completion has no choices[0].message", json.dumps(data)[:200], 0) from None
    usage = data.get("usage") or {}
    return Reply(
        content=content,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        logprobs=(choice.get("logprobs") or {}).get("content"),
    )
