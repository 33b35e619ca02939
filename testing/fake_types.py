"""Request/reply types and rule helpers for the fake OpenAI server.

Tests script the fake with *rules*: callables ``rule(req: ChatRequest) -> Reply | None``.
The server tries them in order and the first non-None reply wins; when no rule
answers, a deterministic default reply is generated (see ``fake_replies``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Awaitable, Callable, Iterable, Union

__all__ = [
    "ChatRequest",
    "Reply",
    "ReplyLike",
    "Rule",
    "ScriptedSequence",
    "ToolCall",
    "content_text",
    "on",
    "sequence",
]


def content_text(content: Any) -> str:
    """Flatten an OpenAI message ``content`` (string, list of parts, or None) to text.

    Multi-part contents (``[{"type": "text", "text": ...}, ...]``) are what LangChain
    sends for some messages; rules should not have to care about that.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


@dataclass(frozen=True)
class ChatRequest:
    """A parsed ``/v1/chat/completions`` request, with helpers for writing rules.

    Only ``body`` is stored; everything else is derived from it so that what a rule
    sees is exactly what the client sent.
    """

    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's `messages` list ([] when absent or malformed)."""
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def model(self) -> str:
        """The requested model name ("" when absent)."""
        return str(self.body.get("model") or "")

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streamed (SSE) reply."""
        return bool(self.body.get("stream"))

    def contents(self, role: str | None = None) -> list[str]:
        """Text of every message (optionally only those with ``role``)."""
        return [
            content_text(m.get("content"))
            for m in self.messages
            if isinstance(m, dict) and (role is None or m.get("role") == role)
        ]

    @property
    def system(self) -> str:
        """System (and ``developer``) message contents joined by newlines."""
        return "\n".join(self.contents("system") + self.contents("developer"))

    @property
    def last_user(self) -> str:
        """The text of the last user message ("" when none)."""
        users = self.contents("user")
        return users[-1] if users else ""

    @property
    def text(self) -> str:
        """All message contents joined by newlines (handy for ``"x" in req.text``)."""
        return "\n".join(self.contents())

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The `response_format` dict, or None."""
        fmt = self.body.get("response_format")
        return fmt if isinstance(fmt, dict) else None

    @property
    def response_format_type(self) -> str | None:
        """"json_schema", "json_object", "text" or None."""
        fmt = self.response_format
        return fmt.get("type") if fmt else None

    @property
    def _json_schema_spec(self) -> dict[str, Any] | None:
        fmt = self.response_format
        if fmt and fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
            return fmt["json_schema"]
        return None

    @property
    def schema_name(self) -> str | None:
        """The `json_schema` response format's name, or None."""
        spec = self._json_schema_spec
        return spec.get("name") if spec else None

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema the client asked the reply to follow, or None."""
        spec = self._json_schema_spec
        schema = spec.get("schema") if spec else None
        return schema if isinstance(schema, dict) else None

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The request's `tools` list ([] when absent)."""
        tools = self.body.get("tools")
        return tools if isinstance(tools, list) else []

    @property
    def tool_names(self) -> list[str]:
        """The names of the offered tools, in order."""
        return [_tool_name(t) for t in self.tools]

    @property
    def tool_choice(self) -> Any:
        """The request's `tool_choice` as sent (None when absent)."""
        return self.body.get("tool_choice")

    @property
    def tool_results(self) -> list[str]:
        """Contents of ``role == "tool"`` messages, in order (results of earlier calls)."""
        return self.contents("tool")

    @property
    def forced_tool(self) -> dict[str, Any] | None:
        """The function the model *must* call, as ``{"name", "parameters", ...}``, or None.

        Forced when ``tool_choice`` names a function, or when it is ``"required"``
        (then the first tool is used; LangChain sends exactly one in that case).
        """
        choice = self.tool_choice
        functions = [_tool_function(t) for t in self.tools]
        if isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            for fn in functions:
                if fn.get("name") == name:
                    return fn
            return {"name": name, "parameters": {"type": "object", "properties": {}}}
        if choice == "required" and functions:
            return functions[0]
        return None

    @cached_property
    def digest(self) -> str:
        """sha256 of what determines the default reply (messages + schema + forced tool)."""
        key = {
            "messages": self.messages,
            "schema": self.schema,
            "format": self.response_format_type,
            "forced": (self.forced_tool or {}).get("name"),
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _tool_function(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function") if isinstance(tool, dict) else None
    return fn if isinstance(fn, dict) else {}


def _tool_name(tool: dict[str, Any]) -> str:
    return str(_tool_function(tool).get("name") or "")


@dataclass(frozen=True)
class ToolCall:
    """One function call in a reply; ``arguments`` is the JSON string sent on the wire.

    ``id`` may be None: the server then derives one from the request hash so that
    ids are deterministic yet distinct between turns of a conversation.
    """

    name: str
    arguments: str = "{}"
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the fake answers: assistant content and/or tool calls, or a scripted HTTP error.

    Build one with ``Reply.text``, ``Reply.json``, ``Reply.tool_calls`` or ``Reply.error``.
    (The calls themselves live in ``.calls``: ``tool_calls`` is the constructor.)
    """

    content: str | None = None
    calls: tuple[ToolCall, ...] = ()
    status: int = 200
    error_body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        """Whether this reply is an HTTP error (status >= 400)."""
        return self.status >= 400

    @classmethod
    def text(cls, content: str) -> Reply:
        """A plain text completion."""
        return cls(content=content)

    @classmethod
    def json(cls, obj: Any) -> Reply:
        """A completion whose content is `obj` as JSON."""
        return cls(content=json.dumps(obj))

    @classmethod
    def tool_calls(cls, calls: Iterable[dict[str, Any] | ToolCall], content: str | None = None) -> Reply:
        """Tool calls from ``[{"name": ..., "arguments": {...} or "json"}, ...]`` (``id`` optional)."""
        parsed = []
        for call in calls:
            if isinstance(call, ToolCall):
                parsed.append(call)
                continue
            args = call.get("arguments", {})
            parsed.append(
                ToolCall(
                    name=call["name"],
                    arguments=args if isinstance(args, str) else json.dumps(args),
                    id=call.get("id"),
                )
            )
        return cls(content=content, calls=tuple(parsed))

    @classmethod
    def error(cls, status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        """A scripted HTTP error; ``body`` may be a dict (sent as is), a message string, or None."""
        if body is None or isinstance(body, str):
            body = {
                "error": {
                    "message": body or f"Scripted error {status}",
                    "type": "scripted_error",
                    "param": None,
                    "code": str(status),
                }
            }
        return cls(status=status, error_body=body, headers=dict(headers or {}))


ReplyLike = Union[Reply, str, dict, list, None]
Rule = Callable[[ChatRequest], Union[ReplyLike, Awaitable[ReplyLike]]]


def coerce_reply(value: Any) -> Reply | None:
    """Let rules return shorthand: a str is a text reply, a dict/list a JSON reply."""
    if value is None or isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply.text(value)
    if isinstance(value, (dict, list)):
        return Reply.json(value)
    raise TypeError(f"rule returned {type(value).__name__}; expected Reply, str, dict, list or None")


async def resolve_rules(rules: Iterable[Rule], req: ChatRequest) -> Reply | None:
    """Ask each rule in order; the first non-None answer wins (async rules are awaited)."""
    for rule in list(rules):
        value = rule(req)
        if inspect.isawaitable(value):
            value = await value
        reply = coerce_reply(value)
        if reply is not None:
            return reply
    return None


class ScriptedSequence:
    """A rule answering with the next scripted item on each matching call.

    Items are replies (or shorthand, see ``coerce_reply``) or callables
    ``item(req) -> reply``. Once exhausted it returns None (so later rules or the
    defaults answer) unless ``repeat_last`` is set.
    """

    def __init__(
        self,
        items: Iterable[Any],
        *,
        when: Callable[[ChatRequest], bool] | None = None,
        repeat_last: bool = False,
    ) -> None:
        self.items = list(items)
        self.when = when
        self.repeat_last = repeat_last
        self.calls = 0

    @property
    def remaining(self) -> int:
        """Scripted replies not yet given."""
        return max(0, len(self.items) - self.calls)

    def __call__(self, req: ChatRequest) -> Any:
        if self.when is not None and not self.when(req):
            return None
        if self.calls >= len(self.items):
            if not (self.repeat_last and self.items):
                return None
            item = self.items[-1]
        else:
            item = self.items[self.calls]
        self.calls += 1
        return item(req) if callable(item) else item


def sequence(
    items: Iterable[Any],
    *,
    when: Callable[[ChatRequest], bool] | None = None,
    repeat_last: bool = False,
) -> ScriptedSequence:
    """Scripted conversation: answer the n-th matching request with ``items[n]``."""
    return ScriptedSequence(items, when=when, repeat_last=repeat_last)


def on(predicate: Callable[[ChatRequest], bool], reply: Any) -> Rule:
    """A rule answering ``reply`` (or ``reply(req)`` if callable) whenever ``predicate(req)``."""

    def rule(req: ChatRequest) -> Any:
        if not predicate(req):
            return None
        return reply(req) if callable(reply) else reply

    return rule
