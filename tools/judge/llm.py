"""Every model call goes through here: ChatOpenAI, rate limits, usage and cost, and JSON that survives
real models.

Transient faults (429 with Retry-After, 5xx, timeouts, dropped connections, a garbled response body) are
retried here with tenacity: Retry-After when the server gives one, else exponential backoff with jitter.
The OpenAI client's own retries are off so that every request is counted once. What no retry can fix — a reply that is not the JSON we asked
for — is repaired when it can be (code fences, trailing commas, scores as strings) and otherwise sent back
to the model with the validation error, a bounded number of times. What still fails is reported as failed,
never replaced by a made-up value.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import openai
from aiolimiter import AsyncLimiter
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from goalcover.tools.core.settings import ModelConfig, Settings
from goalcover.tools.core.tokens import estimate_tokens
from goalcover.tools.judge.replies import (  # noqa: F401 (re-exported: callers import them from here)
    Reply,
    ReplyError,
    message_dicts,
    parse_json_reply,
    reply_from_completion,
)

T = TypeVar("T", bound=BaseModel)
JsonMode = Literal["auto", "json_schema", "json_object"]


# The run config of the engine's own model calls. No callbacks: when the engine runs inside a LangGraph
# node, LangChain would otherwise inherit the node's callbacks from the context, so the judge's JSON would
# stream to the chat as if it were the agent's reply (and calls would switch to streaming).
ENGINE_CALL: dict[str, Any] = {"callbacks": []}


def reply_limit(config: ModelConfig, max_tokens: int | None) -> dict[str, Any]:
    """The request arguments that bound a reply to `max_tokens`, for this endpoint.

    ChatOpenAI sends `max_tokens` as `max_completion_tokens`, OpenAI's current name, which OpenAI needs
    (it refuses both at once) but llama-cpp-python's server ignores: a small model then writes until its
    context is full (seen: 2,731 tokens where 200 were asked). Other endpoints get the original
    `max_tokens` in the body, which every OpenAI-compatible server reads.
    """
    if not max_tokens:
        return {}
    if config.base_url is None or "api.openai.com" in config.base_url:
        return {"max_tokens": max_tokens}
    return {"extra_body": {"max_tokens": max_tokens}}


def make_chat_model(config: ModelConfig, max_retries: int, max_tokens: int | None = None, **kwargs: Any):
    """A ChatOpenAI for one role's endpoint, with `max_retries` client retries, a per-model HTTP client, usage
    in streams, and replies bounded to `max_tokens` (see reply_limit). Raises nothing itself; calls raise
    openai errors."""
    import httpx
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=config.model,
        base_url=config.base_url,
        api_key=config.api_key,
        # An httpx.Timeout (unhashable) makes langchain-openai build a client per model instead of sharing a
        # process-wide one, which breaks as soon as a second event loop (a second CLI command in one process, a test) reuses it.
        timeout=httpx.Timeout(config.timeout_s),
        max_retries=max_retries,
        stream_usage=True,
        **reply_limit(config, max_tokens),
        **kwargs,
    )


def is_transient(exc: BaseException) -> bool:
    """Worth sending again: the request may well succeed the next time."""
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, json.JSONDecodeError, openai.APIResponseValidationError)):
        return True
    if _rejects_json_schema(exc):  # a server that cannot do json_schema will not learn it by retrying
        return False
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


_backoff = wait_exponential_jitter(multiplier=0.5, max=30, jitter=0.5)


def wait_for_retry(state: RetryCallState) -> float:
    """Honour the server's Retry-After (seconds, capped at 2 minutes); otherwise back off with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    response = getattr(exc, "response", None)
    retry_after = response.headers.get("retry-after") if response is not None else None
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), 120.0)
        except ValueError:
            pass
    return _backoff(state)


def _rejects_json_schema(exc: BaseException) -> bool:
    """The server refused the request's response_format (llama-cpp-python answers 500 for json_schema)."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422, 500):
        return False
    text = str(exc).lower()
    return "json_schema" in text or "response_format" in text


@dataclass
class Usage:
    """What calls cost: calls made (retries and repairs included), prompt and completion tokens, replies
    repaired locally, repair calls, USD."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    repaired: int = 0
    repair_calls: int = 0
    cost: float = 0.0

    def add(self, other: "Usage") -> None:
        """Add another Usage into this one."""
        for name in ("calls", "prompt_tokens", "completion_tokens", "repaired", "repair_calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost += other.cost


@dataclass
class Result(Generic[T]):
    """One structured call's outcome: the parsed value (None when it failed), its usage, the error, the raw
    reply and, when asked for, token logprobs."""

    value: T | None
    usage: Usage
    error: str | None = None
    raw: str | None = None
    logprobs: list[dict[str, Any]] | None = None  # the reply's `logprobs.content`, when asked for and given


@dataclass
class Limits:
    """Client-side rate limits shared by every call of a run."""

    requests: AsyncLimiter | None = None
    tokens: AsyncLimiter | None = None
    tokens_per_minute: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        """Limits from GOALCOVER_REQUESTS_PER_MINUTE / GOALCOVER_TOKENS_PER_MINUTE (none when unset)."""
        return cls(
            requests=AsyncLimiter(settings.requests_per_minute, 60) if settings.requests_per_minute else None,
            tokens=AsyncLimiter(settings.tokens_per_minute, 60) if settings.tokens_per_minute else None,
            tokens_per_minute=settings.tokens_per_minute,
        )

    async def wait(self, est_tokens: int) -> None:
        """Wait until one more request of about `est_tokens` tokens fits the limits."""
        if self.requests:
            await self.requests.acquire()
        if self.tokens and self.tokens_per_minute:
            await self.tokens.acquire(min(est_tokens, self.tokens_per_minute))


@dataclass
class JsonCaller:
    """Structured calls to one model role with bounded repair."""

    config: ModelConfig
    settings: Settings
    json_mode: JsonMode | None = None
    repairs: int = 2
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        self.json_mode = self.json_mode or self.settings.json_mode
        self._clients: dict[int, Any] = {}

    @property
    def llm(self):
        """A chat model per event loop: its HTTP client belongs to the loop it first ran on, and engine
        functions may run on several event loops in one process (one per CLI command, one per test)."""
        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            self._clients = {loop: make_chat_model(self.config, max_retries=0)}
        return self._clients[loop]

    async def aclose(self) -> None:
        """Close this loop's HTTP client; call before the event loop ends (or use `async with caller`)."""
        client = self._clients.pop(id(asyncio.get_running_loop()), None)
        if client is not None and getattr(client, "root_async_client", None) is not None:
            await client.root_async_client.close()

    async def __aenter__(self) -> "JsonCaller":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def response_format(self, name: str, json_schema: dict[str, Any]) -> dict[str, Any]:
        """The `response_format` request field for this server: json_schema, or json_object with the schema
        (llama-cpp-python's grammar)."""
        if self.json_mode == "json_object":
            # llama-cpp-python turns a `schema` here into a grammar; other servers ignore it.
            return {"type": "json_object", "schema": json_schema}
        return {"type": "json_schema", "json_schema": {"name": name, "schema": json_schema}}

    def _with_schema_in_prompt(self, messages: list[BaseMessage], json_schema: dict[str, Any]) -> list[BaseMessage]:
        """In json_object mode the schema travels in the prompt: the server only promises *some* JSON."""
        if self.json_mode != "json_object" or not messages:
            return messages
        note = f"\n\nThe JSON object must match this schema:\n<schema>{json.dumps(json_schema)}</schema>"
        first = messages[0]
        return [type(first)(content=str(first.content) + note), *messages[1:]]

    async def call(
        self,
        messages: list[BaseMessage],
        schema: type[T],
        *,
        name: str,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
    ) -> Result[T]:
        """One structured call; `top_logprobs` (1-20) also asks for token logprobs, which servers that
        support them return in `Result.logprobs` (others leave it None)."""
        json_schema = json_schema or schema.model_json_schema()
        usage = Usage()
        history = list(messages)
        error = raw = None
        for attempt in range(self.repairs + 1):
            try:
                reply = await self._request(history, json_schema, name, usage, max_tokens, top_logprobs)
            except Exception as exc:  # retries are spent, or the request itself is wrong
                return Result(None, usage, error=f"{type(exc).__name__}: {exc}"[:500])
            usage.repair_calls += attempt > 0
            prompt_tokens = reply.prompt_tokens or sum(estimate_tokens(str(m.content)) for m in history)
            completion_tokens = reply.completion_tokens if reply.completion_tokens is not None else estimate_tokens(reply.content)
            usage.prompt_tokens += prompt_tokens
            usage.completion_tokens += completion_tokens
            usage.cost += self.config.cost(prompt_tokens, completion_tokens)
            raw = reply.content
            try:
                value, repaired = parse_json_reply(raw, schema)
            except ReplyError as exc:
                error = str(exc)
                history += [
                    AIMessage(content=raw),
                    HumanMessage(
                        content=f"Your reply could not be used: {error}. Reply again with only the JSON object, "
                        "matching the schema exactly, nothing else."
                    ),
                ]
                continue
            usage.repaired += repaired
            return Result(value, usage, raw=raw, logprobs=(reply.logprobs or None) if top_logprobs else None)
        return Result(None, usage, error=error, raw=raw)

    async def _request(self, history: list[BaseMessage], json_schema: dict[str, Any], name: str, usage: Usage,
                       max_tokens: int | None, top_logprobs: int | None = None) -> Reply:
        """One request (with retries); in auto mode, fall back for good to json_object when the server
        rejects json_schema (llama-cpp-python does, and honours json_object with a grammar instead)."""
        try:
            return await self._send(history, json_schema, name, usage, max_tokens, top_logprobs)
        except openai.APIStatusError as exc:
            if self.json_mode != "auto" or not _rejects_json_schema(exc):
                raise
            self.json_mode = "json_object"
            return await self._send(history, json_schema, name, usage, max_tokens, top_logprobs)

    async def _send(self, history: list[BaseMessage], json_schema: dict[str, Any], name: str, usage: Usage,
                    max_tokens: int | None, top_logprobs: int | None = None) -> Reply:
        sent = self._with_schema_in_prompt(history, json_schema)
        await self.limits.wait(sum(estimate_tokens(str(m.content)) for m in sent))
        async for attempt in self._retrying():
            with attempt:
                usage.calls += 1
                return await self._post(history, json_schema, name, max_tokens, top_logprobs)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _retrying(self) -> AsyncRetrying:
        """Retries of transient faults (is_transient), GOALCOVER_MAX_RETRIES of them, waiting as the
        server's Retry-After says or with jittered backoff (wait_for_retry); the last error is re-raised."""
        return AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=wait_for_retry,
            reraise=True,
        )

    async def _post(self, messages: list[BaseMessage], json_schema: dict[str, Any], name: str,
                    max_tokens: int | None, top_logprobs: int | None) -> Reply:
        """One HTTP request through ChatOpenAI (no retries of its own); `messages` without the schema note."""
        # A bound on the reply keeps a rambling small model from filling its context (and the bill).
        extra = reply_limit(self.config, max_tokens)
        if top_logprobs:
            extra |= {"logprobs": True, "top_logprobs": top_logprobs}
        llm = self.llm.bind(response_format=self.response_format(name, json_schema), **extra)
        reply = await llm.ainvoke(self._with_schema_in_prompt(messages, json_schema), config=ENGINE_CALL)
        meta = reply.usage_metadata or {}
        return Reply(
            content=str(reply.content),
            prompt_tokens=meta.get("input_tokens"),
            completion_tokens=meta.get("output_tokens"),
            logprobs=(reply.response_metadata.get("logprobs") or {}).get("content"),
        )

    def request_body(self, messages: list[BaseMessage], *, name: str, json_schema: dict[str, Any],
                     max_tokens: int | None = None, top_logprobs: int | None = None) -> dict[str, Any]:
        """The `/v1/chat/completions` JSON body of one structured call, exactly as the bulk judge posts it:
        model, messages (with the schema in the prompt in json_object mode), response_format, the reply
        bound (`max_completion_tokens` for OpenAI, `max_tokens` elsewhere, see reply_limit) and logprobs.
        The Batch API and Ray engines send these same bodies. In auto mode the body asks for json_schema."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": message_dicts(self._with_schema_in_prompt(messages, json_schema)),
            "response_format": self.response_format(name, json_schema),
        }
        if max_tokens:
            openai_api = self.config.base_url is None or "api.openai.com" in self.config.base_url
            body["max_completion_tokens" if openai_api else "max_tokens"] = max_tokens
        if top_logprobs:
            body |= {"logprobs": True, "top_logprobs": top_logprobs}
        return body


@dataclass
class BulkJsonCaller(JsonCaller):
    """The bulk judge's caller: the same retries, limits, JSON modes, repair loop and logprobs as
    JsonCaller, but each request posts its prepared JSON body (`request_body`) through the `openai` SDK's
    low-level `AsyncOpenAI.post` — the client ChatOpenAI wraps — and reads the reply as plain JSON.

    Why (issue 15, profiled at concurrency 32-128 against the fake endpoint): LangChain's message
    conversion plus the SDK's per-call parameter transform (`_async_transform_recursive`) and response
    model building cost ~5-6 ms of client CPU per call, which caps a 2-core client well below the
    endpoint's ideal throughput. Prose calls and the agent keep ChatOpenAI.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._bulk: tuple[int, Any] | None = None  # (event loop id, AsyncOpenAI)

    def _bulk_client(self):
        """An `openai.AsyncOpenAI` for this event loop on the SDK's aiohttp transport
        (`openai.DefaultAioHttpClient`), with the SDK's retries off (tenacity retries, as for every call).
        Not httpx's default pool: it rescans every pooled connection on each request
        (`_assign_requests_to_connections`, a poll() per idle socket), O(concurrency) per call — at 128
        calls in flight, more client CPU than everything else together. Not ChatOpenAI either: building one
        imports langchain-openai (~0.6 s) for nothing the bulk judge uses."""
        loop = id(asyncio.get_running_loop())
        if self._bulk is None or self._bulk[0] != loop:
            try:
                http_client = openai.DefaultAioHttpClient(timeout=self.config.timeout_s)
            except (AttributeError, RuntimeError):  # an SDK without it, or aiohttp missing: httpx's pool then
                http_client = None
            client = openai.AsyncOpenAI(
                base_url=self.config.base_url,
                api_key=self.config.api_key,
                timeout=self.config.timeout_s,
                max_retries=0,
                http_client=http_client,
            )
            self._bulk = (loop, client)
        return self._bulk[1]

    async def aclose(self) -> None:
        """Close this loop's HTTP clients (the bulk aiohttp one too)."""
        if self._bulk is not None and self._bulk[0] == id(asyncio.get_running_loop()):
            await self._bulk[1].close()
            self._bulk = None
        await super().aclose()

    async def _post(self, messages: list[BaseMessage], json_schema: dict[str, Any], name: str,
                    max_tokens: int | None, top_logprobs: int | None) -> Reply:
        body = self.request_body(messages, name=name, json_schema=json_schema, max_tokens=max_tokens,
                                 top_logprobs=top_logprobs)
        return await self._post_body(body)

    async def _post_body(self, body: dict[str, Any]) -> Reply:
        """One POST of a prepared `/chat/completions` body, read as plain JSON (no retries)."""
        response = await self._bulk_client().post("/chat/completions", body=body, cast_to=bytes)
        return reply_from_completion(json.loads(response))

    async def post_body(self, body: dict[str, Any], usage: Usage) -> Reply:
        """A prepared `/chat/completions` body (e.g. a probe's) sent as every call is: after the client-side
        rate limits, with the same retries (`_retrying`). Counts each attempt in `usage.calls` and the
        tokens and cost of the reply it returns; raises the last error when the retries run out."""
        await self.limits.wait(sum(estimate_tokens(str(m.get("content") or "")) for m in body["messages"]))
        async for attempt in self._retrying():
            with attempt:
                usage.calls += 1
                reply = await self._post_body(body)
        prompt_tokens, completion_tokens = reply.prompt_tokens or 0, reply.completion_tokens or 0
        usage.prompt_tokens += prompt_tokens
        usage.completion_tokens += completion_tokens
        usage.cost += self.config.cost(prompt_tokens, completion_tokens)
        return reply
