"""Fault injection for the fake OpenAI server: latency, HTTP errors, hangs and broken output.

Faults only apply to chat completions. Each request draws at most one fault from a
seeded ``random.Random`` so that a run is reproducible for a given request order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .fake_types import Reply, ToolCall

__all__ = ["FAULT_KINDS", "Faults", "FaultInjector", "corrupt_reply"]

# Order matters: with rates summing above 1, earlier kinds take precedence.
FAULT_KINDS = ("429", "500", "503", "hang", "bad_body", "malformed", "truncated", "wrong_schema")
HTTP_FAULTS = ("429", "500", "503")
CONTENT_FAULTS = ("malformed", "truncated", "wrong_schema")

Rate = Field(default=0.0, ge=0.0, le=1.0)


class Faults(BaseModel):
    """Fault/latency configuration (CLI flags, ``FakeOpenAI.set_faults`` or ``POST /faults``).

    Latency per request, in ms, by ``latency_dist``:
      * ``fixed``: ``latency_ms + U(0, latency_jitter_ms)``
      * ``uniform``: ``U(latency_ms - latency_jitter_ms, latency_ms + latency_jitter_ms)`` (>= 0)
      * ``exponential``: ``latency_ms + Exp(mean=latency_jitter_ms)`` (a floor plus a long tail)

    Rates are probabilities in [0, 1] per request; at most one fault per request.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0.0)
    latency_jitter_ms: float = Field(default=0.0, ge=0.0)
    latency_dist: Literal["fixed", "uniform", "exponential"] = "fixed"

    rate_429: float = Rate
    rate_500: float = Rate
    rate_503: float = Rate
    rate_hang: float = Rate
    rate_bad_body: float = Rate
    rate_malformed: float = Rate
    rate_truncated: float = Rate
    rate_wrong_schema: float = Rate

    max_concurrency: int | None = Field(
        default=None, ge=1,
        description="serve at most this many requests at once (the rest queue, as on a GPU server's batch "
        "limit): the ideal throughput is then max_concurrency / latency",
    )
    retry_after_s: float = Field(default=1.0, ge=0.0, description="Retry-After header of 429 replies")
    hang_s: float = Field(default=60.0, ge=0.0, description="how long a hung request sleeps")
    seed: int = 0

    @classmethod
    def spread(cls, rate: float, **overrides: Any) -> Faults:
        """``--fault-rate R``: R split evenly over 429, 500 and malformed content."""
        third = rate / 3
        return cls(rate_429=third, rate_500=third, rate_malformed=third, **overrides)

    def rates(self) -> dict[str, float]:
        """{fault kind: probability per request} for every kind in FAULT_KINDS."""
        return {kind: getattr(self, f"rate_{kind}") for kind in FAULT_KINDS}


class FaultInjector:
    """Draws the fault and latency of each request from seeded generators."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.configure(faults or Faults())

    def configure(self, faults: Faults) -> None:
        """Install a new config and restart the random streams (reproducible from ``seed``)."""
        self.faults = faults
        self._fault_rng = random.Random(faults.seed)
        self._latency_rng = random.Random(faults.seed + 1)

    def choose(self) -> str | None:
        """One fault kind or None, using a single draw against the cumulative rates."""
        draw = self._fault_rng.random()
        cumulative = 0.0
        for kind, rate in self.faults.rates().items():
            cumulative += rate
            if rate > 0 and draw < cumulative:
                return kind
        return None

    def latency_s(self) -> float:
        """The next request's added latency in seconds, drawn from the configured distribution (never negative)."""
        f, rng = self.faults, self._latency_rng
        if f.latency_dist == "uniform":
            ms = rng.uniform(f.latency_ms - f.latency_jitter_ms, f.latency_ms + f.latency_jitter_ms)
        elif f.latency_dist == "exponential":
            ms = f.latency_ms + (rng.expovariate(1 / f.latency_jitter_ms) if f.latency_jitter_ms else 0.0)
        else:
            ms = f.latency_ms + (rng.uniform(0, f.latency_jitter_ms) if f.latency_jitter_ms else 0.0)
        return max(0.0, ms) / 1000


@dataclass(frozen=True)
class HttpFault:
    """An HTTP error the fake answers with instead of a completion: status, JSON body, headers."""
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def http_fault(kind: str, faults: Faults) -> HttpFault:
    """OpenAI-style error bodies for the injected HTTP errors."""
    if kind == "429":
        return HttpFault(
            429,
            _error_body("Rate limit reached (injected by fake server).", "requests", "rate_limit_exceeded"),
            {"Retry-After": _seconds(faults.retry_after_s)},
        )
    if kind == "503":
        return HttpFault(503, _error_body("Service unavailable (injected).", "server_error", "service_unavailable"), {})
    return HttpFault(500, _error_body("Internal server error (injected).", "server_error", "internal_error"), {})


def _error_body(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --------------------------------------------------------------------------- content corruption
def corrupt_reply(reply: Reply, kind: str, salt: str) -> Reply:
    """The reply with its content (or each tool call's arguments) broken the ``kind`` way."""
    corrupt = {"malformed": malformed_json, "truncated": truncated_json, "wrong_schema": wrong_schema_json}[kind]
    if reply.calls:
        calls = tuple(ToolCall(c.name, corrupt(c.arguments, salt), c.id) for c in reply.calls)
        return Reply(content=reply.content, calls=calls)
    return Reply(content=corrupt(reply.content or "", salt))


def _as_json_text(content: str) -> str:
    """Content that is JSON already, or a JSON wrapping of plain text, so it can be broken."""
    try:
        json.loads(content)
        return content
    except (json.JSONDecodeError, TypeError):
        return json.dumps({"text": content})


def malformed_json(content: str, salt: str) -> str:
    """Broken the way LLMs break JSON: ```json fences with a trailing comma, or a missing bracket."""
    text = _as_json_text(content).rstrip()
    if int(salt[:8] or "0", 16) % 2 == 0 and text[-1:] in "}]":
        body = text[:-1].rstrip()
        body = body if body.endswith(("{", "[")) else body + ","
        return f"```json\n{body}\n{text[-1]}\n```"
    return text[:-1] if text[-1:] in "}]" else text + "{"


def truncated_json(content: str, salt: str) -> str:
    """The JSON cut in half (as if the output hit max_tokens)."""
    text = _as_json_text(content)
    half = text[: max(1, len(text) // 2)]
    try:
        json.loads(half)
    except json.JSONDecodeError:
        return half
    return half + "{"  # e.g. a number cut into a shorter number: make sure it is broken


def wrong_schema_json(content: str, salt: str) -> str:
    """Valid JSON that does not match the requested schema: renamed keys, score out of range as string."""
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, TypeError):
        value = {"text": content}
    wrong: dict[str, Any] = {}
    if isinstance(value, dict):
        wrong = {f"{key}_unexpected": item for key, item in value.items()}
    wrong["unexpected_field"] = True
    wrong["score"] = "eleven out of five"
    return json.dumps(wrong)
