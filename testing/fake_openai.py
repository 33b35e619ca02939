"""A deterministic fake of the OpenAI chat-completions API, served over real HTTP.

Test/benchmark fixture only (the product never imports it). It speaks the wire format
the ``openai`` client and ``langchain_openai.ChatOpenAI`` expect, so the code under
test runs unchanged against ``base_url=server.base_url``.

How a ``POST /v1/chat/completions`` is answered:

1. The request is counted and recorded (``FakeOpenAI.requests``), one fault is drawn
   (``Faults``) and the configured latency is slept (asyncio, so concurrent requests
   overlap: throughput ~ concurrency / latency).
2. HTTP faults (``429``/``500``/``503``), ``hang`` and ``bad_body`` answer right away.
3. Otherwise the *rules* are asked in order (``rule(req) -> Reply | None``); the first
   non-None reply wins; without one a deterministic default is generated from the
   request hash: an instance of the ``response_format`` JSON schema, a call of the
   forced tool, ``{}``/an instance of a ``<schema>`` for ``json_object``, "yes" or "no"
   for a one-token probe with logprobs, or a short sentence quoting the last user message.
4. Content faults (``malformed``/``truncated``/``wrong_schema``) break that reply's
   content (or tool-call arguments) before it is rendered, as JSON or as SSE chunks.

``/v1/files`` and ``/v1/batches`` (the Batch API) are served by ``fake_batches.FakeBatches``
(``FakeOpenAI.batches``): a batch answers its lines through the same rules, after a configurable delay,
with injectable failed lines, expiry and cancel; ``GET /stats`` adds its counts under ``batch``.

Run it standalone with ``python -m goalcover.testing.fake_openai --port 8089``;
``--fault-rate R`` spreads R evenly over 429, 500 and malformed content.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import signal
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Iterator

import httpx
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .fake_batches import FakeBatches
from .fake_faults import CONTENT_FAULTS, HTTP_FAULTS, FaultInjector, Faults, corrupt_reply, http_fault
from .fake_replies import default_reply
from .fake_types import ChatRequest, Reply, Rule, resolve_rules
from .fake_wire import completion_body, sse, sse_chunks, usage, with_call_ids

__all__ = ["FakeOpenAI", "FakeOpenAIApp", "Stats", "load_rules", "main"]

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("fake-model",)


@dataclass
class Stats:
    """Counters behind ``GET /stats``.

    ``requests`` counts every chat-completions request received, ``completions`` the
    ones answered with a (non-faulty) completion, ``faults`` the injected faults.
    """

    requests: int = 0
    completions: int = 0
    faults: int = 0
    faults_by_kind: Counter = field(default_factory=Counter)
    scripted_errors: int = 0
    rule_errors: int = 0
    bad_requests: int = 0
    streams: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_model: Counter = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0

    def snapshot(self) -> dict[str, Any]:
        """The counters as a JSON-ready dict (what GET /stats returns)."""
        data = asdict(self)
        data["faults_by_kind"] = dict(self.faults_by_kind)
        data["by_model"] = dict(self.by_model)
        return data


class FakeOpenAIApp:
    """State (rules, faults, stats, recorded requests) and the Starlette app serving it.

    Sockets and threads are ``FakeOpenAI``'s business; this class is pure ASGI so it can
    be served by the CLI or in-process alike. All mutable state lives here.
    """

    def __init__(
        self,
        rules: Iterable[Rule] | None = None,
        faults: Faults | None = None,
        models: Iterable[str] | None = None,
    ) -> None:
        self.rules: list[Rule] = list(rules or [])
        self.models: list[str] = list(models or DEFAULT_MODELS)
        self.requests: list[ChatRequest] = []
        self.stats = Stats()
        self.injector = FaultInjector(faults)
        self._slots: tuple[int, asyncio.Semaphore] | None = None  # (cap, its semaphore), see Faults.max_concurrency
        self.batches = FakeBatches(self)
        chat = ["POST"]
        self.asgi = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat_completions, methods=chat),
                Route("/chat/completions", self.chat_completions, methods=chat),
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/models", self.list_models, methods=["GET"]),
                Route("/stats", self.get_stats, methods=["GET"]),
                Route("/stats/reset", self.post_stats_reset, methods=["POST"]),
                Route("/faults", self.get_faults, methods=["GET"]),
                Route("/faults", self.post_faults, methods=["POST"]),
                Route("/health", self.health, methods=["GET"]),
                *self.batches.routes(),
            ]
        )

    # ------------------------------------------------------------------ control
    @property
    def faults(self) -> Faults:
        """The fault configuration in force."""
        return self.injector.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault configuration (takes effect on the next request)."""
        self.injector.configure(faults)

    def reset_stats(self) -> None:
        """Zero the counters (requests still in flight keep being tracked)."""
        self.stats = Stats(in_flight=self.stats.in_flight)

    # --------------------------------------------------------------- endpoints
    async def health(self, request: Request) -> Response:
        """GET /health: {"status": "ok"}."""
        return JSONResponse({"status": "ok"})

    async def list_models(self, request: Request) -> Response:
        """GET /v1/models: the models this fake serves, in OpenAI's list shape."""
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "goalcover-fake"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def get_stats(self, request: Request) -> Response:
        """GET /stats: request, fault and token counters, plus the Batch API's counts."""
        return JSONResponse({**self.stats.snapshot(), "batch": dict(self.batches.counts)})

    async def post_stats_reset(self, request: Request) -> Response:
        """POST /stats/reset: zero the counters; returns them."""
        self.reset_stats()
        return JSONResponse(self.stats.snapshot())

    async def get_faults(self, request: Request) -> Response:
        """GET /faults: the fault configuration as JSON."""
        return JSONResponse(self.faults.model_dump())

    async def post_faults(self, request: Request) -> Response:
        """POST /faults: replace the fault configuration (a `Faults` JSON body); 422 when invalid."""
        try:
            faults = Faults.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return _error(422, str(exc), "invalid_request_error")
        self.set_faults(faults)
        return JSONResponse(faults.model_dump())

    async def chat_completions(self, request: Request) -> Response:
        """POST /v1/chat/completions: the reply the rules choose (or the default), through the fault injector, streamed as SSE when asked."""
        self.stats.requests += 1
        req = await _parse_chat_request(request)
        if req is None:
            self.stats.bad_requests += 1
            return _error(400, "Body must be a JSON object with a 'messages' list.", "invalid_request_error")
        self.requests.append(req)
        self.stats.by_model[req.model] += 1
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        try:
            cap = self.faults.max_concurrency
            if not cap:
                return await self._serve(req)
            if self._slots is None or self._slots[0] != cap:
                self._slots = (cap, asyncio.Semaphore(cap))
            async with self._slots[1]:
                return await self._serve(req)
        finally:
            self.stats.in_flight -= 1

    async def _serve(self, req: ChatRequest) -> Response:
        fault = self.injector.choose()
        delay = self.injector.latency_s()
        if delay:
            await asyncio.sleep(delay)
        return await self._answer(req, fault)

    # ---------------------------------------------------------------- answering
    async def completion_for(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One chat completion without HTTP, as (status, JSON body): the same rules and default replies as
        ``POST /v1/chat/completions`` (no injected faults or latency). The Batch API fake answers its
        lines with it."""
        req = ChatRequest(body)
        try:
            reply = await resolve_rules(self.rules, req) or default_reply(req)
        except Exception as exc:
            self.stats.rule_errors += 1
            return 500, {"error": {"message": f"Rule raised {type(exc).__name__}: {exc}", "type": "rule_error"}}
        if reply.is_error:
            return reply.status, reply.error_body
        reply = with_call_ids(reply, req.digest)
        counted = usage(req, reply)
        self.stats.prompt_tokens += counted["prompt_tokens"]
        self.stats.completion_tokens += counted["completion_tokens"]
        return 200, completion_body(req, reply)

    async def _answer(self, req: ChatRequest, fault: str | None) -> Response:
        if fault in HTTP_FAULTS:
            self._count_fault(fault)
            error = http_fault(fault, self.faults)
            return JSONResponse(error.body, status_code=error.status, headers=error.headers)
        if fault == "hang":
            self._count_fault(fault)
            await asyncio.sleep(self.faults.hang_s)
            return _error(504, "Injected hang elapsed.", "timeout")
        if fault == "bad_body":
            self._count_fault(fault)
            return _bad_body(req)

        try:
            reply = await resolve_rules(self.rules, req) or default_reply(req)
        except Exception as exc:  # a broken rule must show up in the test, not hang it
            self.stats.rule_errors += 1
            logger.exception("fake-openai rule raised")
            return _error(500, f"Rule raised {type(exc).__name__}: {exc}", "rule_error")
        if reply.is_error:  # a scripted error wins over a drawn content fault
            self.stats.scripted_errors += 1
            return JSONResponse(reply.error_body, status_code=reply.status, headers=reply.headers)

        reply = with_call_ids(reply, req.digest)
        if fault in CONTENT_FAULTS:
            self._count_fault(fault)
            reply = corrupt_reply(reply, fault, req.digest)
        else:
            self.stats.completions += 1
        counted = usage(req, reply)
        self.stats.prompt_tokens += counted["prompt_tokens"]
        self.stats.completion_tokens += counted["completion_tokens"]
        return self._render(req, reply)

    def _render(self, req: ChatRequest, reply: Reply) -> Response:
        if not req.stream:
            return JSONResponse(completion_body(req, reply))
        self.stats.streams += 1
        return StreamingResponse(_aiter(sse_chunks(req, reply)), media_type="text/event-stream")

    def _count_fault(self, kind: str) -> None:
        self.stats.faults += 1
        self.stats.faults_by_kind[kind] += 1


async def _parse_chat_request(request: Request) -> ChatRequest | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    return ChatRequest(body)


def _error(status: int, message: str, kind: str) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


def _bad_body(req: ChatRequest) -> Response:
    """HTTP 200 whose body is not valid JSON (a proxy cut the connection, say)."""
    broken = '{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "message": {"content'
    if req.stream:
        return StreamingResponse(_aiter(iter([sse(broken), sse("[DONE]")])), media_type="text/event-stream")
    return Response(broken, media_type="application/json")


async def _aiter(events: Iterator[str]) -> AsyncIterator[str]:
    """Async wrapper: Starlette would push a sync iterator through its thread pool."""
    for event in events:
        yield event


# ------------------------------------------------------------------------------ serving
def server_config(app: Any, host: str, port: int, *, configure_logging: bool) -> uvicorn.Config:
    """uvicorn settings for high concurrency: no concurrency limit, big backlog, quiet logs."""
    extra: dict[str, Any] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        limit_concurrency=None,
        backlog=2048,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=1,  # don't wait out hung requests on stop
        lifespan="off",
        **extra,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn so that port 0 gives us the real port up front."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class FakeOpenAI:
    """The fake served by uvicorn in a background thread, for tests.

    >>> with FakeOpenAI(rules=[on(lambda r: "hi" in r.last_user, Reply.text("hello"))]) as server:
    ...     client = OpenAI(api_key="test", base_url=server.base_url)
    """

    def __init__(
        self,
        rules: Iterable[Rule] | None = None,
        faults: Faults | None = None,
        models: Iterable[str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.app = FakeOpenAIApp(rules=rules, faults=faults, models=models)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------------- state
    @property
    def rules(self) -> list[Rule]:
        """The live rule list: append/insert/clear it at any time."""
        return self.app.rules

    @rules.setter
    def rules(self, rules: Iterable[Rule]) -> None:
        self.app.rules[:] = list(rules)

    @property
    def requests(self) -> list[ChatRequest]:
        """Every chat request received so far, in arrival order."""
        return self.app.requests

    @property
    def faults(self) -> Faults:
        """The fault configuration in force."""
        return self.app.faults

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the fault config (``set_faults(Faults(...))``; None means no faults) or
        change some fields of the current one (``set_faults(rate_429=1.0)``)."""
        base = faults if faults is not None else (self.faults if changes else Faults())
        new = Faults.model_validate({**base.model_dump(), **changes})
        self.app.set_faults(new)
        return new

    def stats(self) -> dict[str, Any]:
        """The server's counters now (see `Stats.snapshot`)."""
        return self.app.stats.snapshot()

    @property
    def batches(self) -> FakeBatches:
        """The Files/Batch API fake: ``.counts`` (files, batches, lines), ``.configure(...)``, ``.requests``."""
        return self.app.batches

    def reset_stats(self) -> None:
        """Zero the server's counters."""
        self.app.reset_stats()

    @property
    def url(self) -> str:
        """The server's root URL, http://host:port (see `base_url` for the /v1 one)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to OpenAI clients."""
        return f"{self.url}/v1"

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 10.0) -> FakeOpenAI:
        """Serve on a background thread (binding a free port when `port` is 0) and wait up to `timeout` seconds until it answers; returns self. Idempotent."""
        if self._thread is not None:
            return self
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(server_config(self.app.asgi, self.host, self.port, configure_logging=False))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"fake-openai:{self.port}", daemon=True
        )
        self._thread.start()
        try:
            self._wait_until_healthy(timeout)
        except Exception:
            self.stop()
            sock.close()
            raise
        return self

    def _wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self._server is not None and self._thread is not None
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server thread died during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("fake OpenAI server did not start")
            time.sleep(0.01)
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            client.get(f"{self.url}/health").raise_for_status()

    def stop(self, timeout: float = 5.0) -> None:
        """Shut uvicorn down and join its thread (hung requests are cancelled after 1 s)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


# ---------------------------------------------------------------------------------- CLI
def load_rules(path: str | Path) -> list[Rule]:
    """The module-level ``RULES`` list of a Python file (``--rules FILE.py``)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"_fake_openai_rules_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load rules from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rules = getattr(module, "RULES", None)
    if not isinstance(rules, (list, tuple)):
        raise ValueError(f"{path} must define a module-level RULES list")
    return list(rules)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m goalcover.testing.fake_openai` (host, port, models, rules, faults)."""
    parser = argparse.ArgumentParser(
        prog="python -m goalcover.testing.fake_openai",
        description="Deterministic fake OpenAI-compatible chat-completions server.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port (printed on start)")
    parser.add_argument("--rules", help="Python file defining a module-level RULES list")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0)
    parser.add_argument("--latency-dist", choices=["fixed", "uniform", "exponential"], default="fixed")
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="total fault rate, split evenly over 429, 500 and malformed"
    )
    parser.add_argument("--faults", help="full Faults config as JSON (overrides the flags above)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model names")
    return parser.parse_args(argv)


def faults_from_args(args: argparse.Namespace) -> Faults:
    """A `Faults` from the command line: the --faults JSON, else --fault-rate spread over the kinds."""
    if args.faults:
        return Faults.model_validate_json(args.faults)
    return Faults.spread(
        args.fault_rate,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        latency_dist=args.latency_dist,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> None:
    """Run the fake server in the foreground until interrupted."""
    args = parse_args(argv)
    rules = load_rules(args.rules) if args.rules else []
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    app = FakeOpenAIApp(rules=rules, faults=faults_from_args(args), models=models)
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    print(f"fake-openai listening on http://{args.host}:{port}/v1", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handler installed before it: make that a clean exit (status 0) for test harnesses.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_cleanly)
    server = uvicorn.Server(server_config(app.asgi, args.host, port, configure_logging=True))
    server.run(sockets=[sock])


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
