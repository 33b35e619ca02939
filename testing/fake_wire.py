"""OpenAI chat-completions wire format: completion bodies, SSE chunks, usage and logprobs.

Kept apart from the server so the rendering rules (what real clients parse) are in
one place and testable without HTTP.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from typing import Any, Iterator

from .fake_types import ChatRequest, Reply, ToolCall, content_text

__all__ = [
    "completion_body",
    "estimate_tokens",
    "prompt_tokens",
    "sse_chunks",
    "tokenize",
    "usage",
]

SYSTEM_FINGERPRINT = "fp_goalcover_fake"
MAX_STREAM_CHUNKS = 48
_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")
_ALTERNATIVES = (" the", " a", ",", ".", " and", " of", " to", " is")


def estimate_tokens(text: str) -> int:
    """ceil(len/4): the usual rule of thumb; good enough for budget accounting tests."""
    return math.ceil(len(text) / 4)


def prompt_tokens(req: ChatRequest) -> int:
    """Tokens of all message contents (+ assistant tool-call arguments) + tools + schema JSON."""
    parts = []
    for message in req.messages:
        if not isinstance(message, dict):
            continue
        parts.append(content_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            fn = (call.get("function") or {}) if isinstance(call, dict) else {}
            parts.append(str(fn.get("arguments") or ""))
    if req.tools:
        parts.append(json.dumps(req.tools))
    if req.schema is not None:
        parts.append(json.dumps(req.schema))
    return estimate_tokens("".join(parts))


def completion_text(reply: Reply) -> str:
    """The reply's generated text: its content and its tool calls' arguments."""
    return (reply.content or "") + "".join(call.arguments for call in reply.calls)


def usage(req: ChatRequest, reply: Reply) -> dict[str, int]:
    """OpenAI's `usage` dict for this request and reply, tokens estimated locally."""
    prompt = prompt_tokens(req)
    completion = estimate_tokens(completion_text(reply))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def tokenize(text: str) -> list[str]:
    """Word/punctuation pieces with their leading whitespace; ``"".join`` gives ``text`` back."""
    return _TOKEN.findall(text)


def with_call_ids(reply: Reply, digest: str) -> Reply:
    """Give id-less tool calls ids derived from the request hash (deterministic, distinct per turn)."""
    if all(call.id for call in reply.calls):
        return reply
    calls = tuple(
        call if call.id else ToolCall(call.name, call.arguments, f"call_{_hash(digest, i, call.name)[:24]}")
        for i, call in enumerate(reply.calls)
    )
    return Reply(content=reply.content, calls=calls)


def _hash(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _finish_reason(reply: Reply) -> str:
    return "tool_calls" if reply.calls else "stop"


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _alternatives(token: str) -> tuple[str, ...]:
    """What else the fake 'considered': for a digit, the neighbouring digits (nearest first, as a judge
    torn between adjacent scores would be), so weighted (G-Eval) scores have something to weigh; for yes
    or no, the other answer first (probe judges read P(yes) from it)."""
    stripped = token.lstrip()
    if stripped.lower() in ("yes", "no"):  # a yes/no answer (probe judges) weighed the other answer too
        other = "no" if stripped.lower() == "yes" else "yes"
        return (token[: len(token) - len(stripped)] + other, *_ALTERNATIVES)
    if len(stripped) == 1 and stripped.isdigit():
        lead, d = token[: len(token) - 1], int(stripped)
        return tuple(lead + str(n) for n in sorted(range(10), key=lambda n: (abs(n - d), n)) if n != d)
    return _ALTERNATIVES


def _logprob_entries(tokens: list[str], digest: str, top: int, offset: int = 0) -> list[dict[str, Any]]:
    """Plausible logprobs: mostly near 0, deterministic per token; alternatives rank lower."""
    entries = []
    for i, token in enumerate(tokens, start=offset):
        fraction = int(_hash(digest, i, token)[:8], 16) / 16**8
        logprob = round(-3.0 * fraction**3, 4)
        alternatives = [token] + [a for a in _alternatives(token) if a != token][: max(0, top - 1)]
        entries.append(
            {
                "token": token,
                "logprob": logprob,
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {"token": alt, "logprob": round(logprob - 1.5 * rank, 4), "bytes": list(alt.encode())}
                    for rank, alt in enumerate(alternatives[:top])
                ],
            }
        )
    return entries


def _logprobs_request(req: ChatRequest) -> tuple[bool, int]:
    top = req.body.get("top_logprobs")
    return bool(req.body.get("logprobs")), int(top) if isinstance(top, int) else 0


def completion_body(req: ChatRequest, reply: Reply, *, created: int | None = None) -> dict[str, Any]:
    """A ``chat.completion`` object for ``reply``."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.calls:
        message["tool_calls"] = [_tool_call_json(call) for call in reply.calls]
    want_logprobs, top = _logprobs_request(req)
    logprobs = None
    if want_logprobs and reply.content:
        logprobs = {"content": _logprob_entries(tokenize(reply.content), req.digest, top), "refusal": None}
    return {
        "id": f"chatcmpl-{req.digest[:24]}",
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": req.model or "fake-model",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": _finish_reason(reply)}],
        "usage": usage(req, reply),
    }


def sse(data: Any) -> str:
    """One server-sent event line ("data: ...\\n\\n") for a string or a JSON-ready value."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def sse_chunks(req: ChatRequest, reply: Reply, *, created: int | None = None) -> Iterator[str]:
    """``chat.completion.chunk`` SSE events: role, content pieces, tool-call deltas, finish,
    optional usage chunk (``stream_options.include_usage``), then ``[DONE]``."""
    created = created if created is not None else int(time.time())
    include_usage = bool((req.body.get("stream_options") or {}).get("include_usage"))
    want_logprobs, top = _logprobs_request(req)
    base = {
        "id": f"chatcmpl-{req.digest[:24]}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": req.model or "fake-model",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}
        if include_usage:
            body["usage"] = None
        return sse(body)

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    tokens = tokenize(reply.content or "")
    offset = 0
    for piece in _group(tokens, MAX_STREAM_CHUNKS):
        logprobs = None
        if want_logprobs:
            logprobs = {"content": _logprob_entries(piece, req.digest, top, offset), "refusal": None}
        offset += len(piece)
        yield chunk({"content": "".join(piece)}, logprobs=logprobs)
    for index, call in enumerate(reply.calls):
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        yield chunk({"tool_calls": [head]})
        for part in _split(call.arguments, 8):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, finish=_finish_reason(reply))
    if include_usage:
        yield sse({**base, "choices": [], "usage": usage(req, reply)})
    yield sse("[DONE]")


def _group(tokens: list[str], max_groups: int) -> Iterator[list[str]]:
    size = max(1, math.ceil(len(tokens) / max_groups))
    for start in range(0, len(tokens), size):
        yield tokens[start : start + size]


def _split(text: str, parts: int) -> Iterator[str]:
    """Arbitrary cut points, like OpenAI streaming JSON arguments mid-token."""
    size = max(1, math.ceil(len(text) / parts))
    for start in range(0, len(text), size):
        yield text[start : start + size]
