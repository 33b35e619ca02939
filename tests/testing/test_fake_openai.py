"""Tests of the fake OpenAI server through the real ``openai`` and ``langchain_openai`` clients."""

from __future__ import annotations

import asyncio
import datetime
import enum
import json
import math
import random
import socket
import subprocess
import sys
import threading
import time
from typing import Annotated, Any, Literal, Optional

import httpx
import jsonschema
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel, Field, create_model

from goalcover.testing import ChatRequest, FakeOpenAI, Faults, Reply, generate_instance, on, sequence
from goalcover.testing.fake_wire import tokenize
from goalcover.testing.pytest_plugin import fake_openai  # noqa: F401  (fixture)

USER = [{"role": "user", "content": "Please audit refund requests for airline tickets"}]


# ----------------------------------------------------------------------------- helpers
class Subgoal(BaseModel):
    id: str
    title: str
    description: str


class SubgoalList(BaseModel):
    """The subgoals a dataset should cover."""

    subgoals: list[Subgoal]


class Judgement(BaseModel):
    score: int = Field(ge=1, le=5)
    explanation: str
    verdict: Literal["covered", "partial", "missing"]
    note: Optional[str] = None


def chat_model(server: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model="fake-model", api_key="test", base_url=server.base_url, max_retries=0, **kwargs)


def async_client(server: FakeOpenAI, **kwargs: Any) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="test", base_url=server.base_url, max_retries=0, **kwargs)


def json_schema_format(model: type[BaseModel]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": model.model_json_schema()}}


def post_chat(server: FakeOpenAI, **body: Any) -> httpx.Response:
    body = {"model": "fake-model", "messages": USER, **body}
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=5)


def content_of(response: httpx.Response) -> str:
    return response.json()["choices"][0]["message"]["content"]


# ------------------------------------------------------------------------- basics
def test_plain_completion_has_usage_and_quotes_the_prompt(fake_openai: FakeOpenAI) -> None:
    with OpenAI(api_key="test", base_url=fake_openai.base_url, max_retries=0) as client:
        result = client.chat.completions.create(model="any-model", messages=USER)
    content = result.choices[0].message.content
    assert "refund requests" in content
    assert result.model == "any-model"
    assert result.usage.prompt_tokens == math.ceil(len(USER[0]["content"]) / 4)
    assert result.usage.completion_tokens == math.ceil(len(content) / 4)
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert fake_openai.requests[-1].last_user == USER[0]["content"]


def test_models_health_and_custom_model_names() -> None:
    with FakeOpenAI(models=["judge", "writer"]) as server:
        assert httpx.get(f"{server.url}/health").status_code == 200
        with OpenAI(api_key="test", base_url=server.base_url) as client:
            assert [m.id for m in client.models.list()] == ["judge", "writer"]


def test_chat_request_helpers() -> None:
    req = ChatRequest(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be strict."},
                {"role": "user", "content": [{"type": "text", "text": "first"}]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
                {"role": "user", "content": "second"},
            ],
            "response_format": json_schema_format(Judgement),
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "tool_choice": "required",
        }
    )
    assert (req.system, req.last_user, req.tool_results) == ("Be strict.", "second", ["42"])
    assert req.text == "Be strict.\nfirst\n42\nsecond"
    assert req.schema_name == "Judgement" and req.schema["title"] == "Judgement"
    assert req.tool_names == ["f"] and req.forced_tool["name"] == "f"


# ------------------------------------------------------------- structured output
def test_langchain_json_schema_structured_output_default(fake_openai: FakeOpenAI) -> None:
    llm = chat_model(fake_openai).with_structured_output(SubgoalList, method="json_schema")
    result = llm.invoke("Goal: handle refund requests for airline tickets")
    assert isinstance(result, SubgoalList)
    assert 4 <= len(result.subgoals) <= 6
    assert [s.id for s in result.subgoals] == [f"S{i}" for i in range(1, len(result.subgoals) + 1)]
    assert all(2 <= len(s.title.split()) <= 4 for s in result.subgoals)
    assert fake_openai.requests[-1].schema_name == "SubgoalList"


def test_langchain_function_calling_structured_output(fake_openai: FakeOpenAI) -> None:
    result = chat_model(fake_openai).with_structured_output(Judgement, method="function_calling").invoke(
        "Judge this sample: a refund request"
    )
    assert isinstance(result, Judgement)
    assert 1 <= result.score <= 5
    assert result.explanation.startswith("The sample shows ")
    assert fake_openai.requests[-1].forced_tool["name"] == "Judgement"


def test_json_object_mode_uses_schema_tags(fake_openai: FakeOpenAI) -> None:
    schema = Judgement.model_json_schema()
    prompt = f"Answer as JSON.\n<schema>{json.dumps(schema)}</schema>\nSample: late refunds"
    json_mode = {"type": "json_object"}
    tagged = post_chat(fake_openai, messages=[{"role": "user", "content": prompt}], response_format=json_mode)
    jsonschema.validate(json.loads(content_of(tagged)), schema)
    untagged = post_chat(fake_openai, response_format=json_mode)
    assert json.loads(content_of(untagged)) == {}


def test_tools_with_auto_choice_answer_in_text(fake_openai: FakeOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    response = post_chat(fake_openai, tools=tools, tool_choice="auto").json()
    message = response["choices"][0]["message"]
    assert message["content"] and "tool_calls" not in message
    assert response["choices"][0]["finish_reason"] == "stop"


def test_bind_tools_with_scripted_sequence(fake_openai: FakeOpenAI) -> None:
    """A scripted agent turn: a tool call, then an answer that sees the tool result."""

    @tool
    def get_weather(city: str) -> str:
        """Current weather of a city."""
        return "sunny"

    fake_openai.rules.append(
        sequence(
            [
                Reply.tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}]),
                lambda req: Reply.text(f"It is {req.tool_results[-1]} in Paris."),
            ]
        )
    )
    llm = chat_model(fake_openai).bind_tools([get_weather])
    first = llm.invoke([HumanMessage("Weather in Paris?")])
    assert isinstance(first, AIMessage)
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert first.tool_calls[0]["id"].startswith("call_")
    result = get_weather.invoke(first.tool_calls[0]["args"])
    second = llm.invoke(
        [HumanMessage("Weather in Paris?"), first, ToolMessage(result, tool_call_id=first.tool_calls[0]["id"])]
    )
    assert second.content == "It is sunny in Paris."
    third = llm.invoke("Weather in Rome?")  # sequence exhausted: defaults answer
    assert third.content.startswith("No tool is needed")


# ---------------------------------------------------------------------- streaming
async def test_streaming_text_joins_and_reports_usage(fake_openai: FakeOpenAI) -> None:
    llm = chat_model(fake_openai, streaming=True, stream_usage=True)
    chunks = [chunk async for chunk in llm.astream("tell me a long story about dragons and knights")]
    assert len(chunks) > 3
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    expected = (await chat_model(fake_openai).ainvoke("tell me a long story about dragons and knights")).content
    assert full.content == expected
    assert full.usage_metadata["output_tokens"] == math.ceil(len(expected) / 4)
    assert full.usage_metadata["total_tokens"] > full.usage_metadata["output_tokens"]


async def test_streaming_tool_call_deltas(fake_openai: FakeOpenAI) -> None:
    args = {"query": "refund policy for delayed flights", "limit": 3}
    fake_openai.rules.append(on(lambda r: bool(r.tools), Reply.tool_calls([{"name": "search", "arguments": args}])))

    @tool
    def search(query: str, limit: int) -> str:
        """Search documents."""
        return ""

    llm = chat_model(fake_openai, streaming=True).bind_tools([search])
    chunks = [chunk async for chunk in llm.astream("find the policy")]
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert sum(1 for c in chunks if c.tool_call_chunks) > 2  # arguments really arrive in pieces
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [("search", args)]


def test_sse_wire_format_and_logprobs(fake_openai: FakeOpenAI) -> None:
    usage_option = {"include_usage": True}
    response = post_chat(fake_openai, stream=True, stream_options=usage_option, logprobs=True, top_logprobs=2)
    events = [line[len("data: ") :] for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    logprobs = [c["choices"][0]["logprobs"] for c in chunks[:-1] if c["choices"][0]["logprobs"]]
    tokens = [entry["token"] for chunk_logprobs in logprobs for entry in chunk_logprobs["content"]]
    assert "".join(tokens) == text
    plain = post_chat(fake_openai, logprobs=True, top_logprobs=3).json()["choices"][0]["logprobs"]["content"]
    assert all(t["logprob"] <= 0 and len(t["top_logprobs"]) == 3 for t in plain)
    assert "".join(tokenize("a, b  c!\n")) == "a, b  c!\n"


# -------------------------------------------------------------- default instances
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def random_model(index: int, rng: random.Random, depth: int = 0) -> type[BaseModel]:
    """A pydantic model mixing nesting, lists, enums, Optional, bounds, tuples and dicts."""
    simple = [
        int,
        float,
        str,
        bool,
        datetime.date,
        Color,
        Literal["x", "y", "z"],
        Annotated[int, Field(ge=-3, le=3)],
        Annotated[float, Field(gt=0, lt=1)],
        Annotated[str, Field(min_length=12, max_length=20)],
        tuple[int, str],
        dict[str, int],
    ]
    fields: dict[str, Any] = {"score": (int, ...), "explanation": (str, ...)}
    for n in range(rng.randint(2, 5)):
        kind = rng.choice(simple)
        roll = rng.random()
        if depth < 2 and roll < 0.25:
            kind = random_model(index * 10 + n, rng, depth + 1)
        if roll < 0.45:
            kind = Annotated[list[kind], Field(min_length=rng.randint(0, 2), max_length=rng.randint(2, 8))]
        elif roll < 0.6:
            kind = Optional[kind]
        fields[f"field_{n}"] = (kind, None if roll >= 0.45 and roll < 0.6 else ...)
    if rng.random() < 0.3:
        fields["title"] = (str, ...)
    return create_model(f"Model{index}_{depth}", **fields)


async def test_default_instances_validate_against_random_models(fake_openai: FakeOpenAI) -> None:
    rng = random.Random(7)
    models = [random_model(i, rng) for i in range(20)]
    async with async_client(fake_openai) as client:
        results = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="fake-model", messages=USER, response_format=json_schema_format(model)
                )
                for model in models
            )
        )
    for model, result in zip(models, results):
        instance = json.loads(result.choices[0].message.content)
        jsonschema.validate(instance, model.model_json_schema())
        model.model_validate(instance)


def test_generator_handles_bounds_refs_and_combinators() -> None:
    schema = {
        "$defs": {"Leaf": {"type": "object", "properties": {"id": {"type": "integer"}, "tag": {"const": "t"}}}},
        "type": "object",
        "properties": {
            "score": {"type": "number", "minimum": 10, "maximum": 20},
            "ratio": {"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 0.6},
            "even": {"type": "integer", "multipleOf": 2, "minimum": 3, "maximum": 7},
            "short": {"type": "string", "maxLength": 3},
            "when": {"type": "string", "format": "date-time"},
            "both": {"allOf": [{"$ref": "#/$defs/Leaf"}, {"properties": {"extra": {"type": "boolean"}}}]},
            "either": {
                "oneOf": [{"type": "null"}, {"type": "array", "items": {"$ref": "#/$defs/Leaf"}, "maxItems": 2}]
            },
            "unique": {"type": "array", "items": {"enum": [1, 2, 3, 4]}, "uniqueItems": True, "minItems": 2},
            "anything": {"default": 7},
            "typed_list": {"type": ["string", "null"]},
        },
    }
    for seed in map(str, range(30)):
        instance = generate_instance(schema, seed)
        jsonschema.validate(instance, schema)
        assert 10 <= instance["score"] <= 20 and instance["anything"] == 7
        assert [leaf["id"] for leaf in instance["either"]] == list(range(1, len(instance["either"]) + 1))


class Tree(BaseModel):
    name: str
    children: list["Tree"]
    parent: Optional["Tree"] = None


def test_recursive_schemas_stay_small() -> None:
    schema = Tree.model_json_schema()
    instance = generate_instance(schema, "seed")
    jsonschema.validate(instance, schema)
    assert 3 <= len(instance["children"]) <= 6 and instance["parent"] is None
    assert all(child["children"] == [] for child in instance["children"])


def test_ids_follow_subgoal_hints() -> None:
    nested = {"type": "object", "properties": {"id": {"type": "string"}}}
    item = {"type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}, "ref": nested}}
    plain = {"type": "object", "properties": {"items": {"type": "array", "items": item}}}
    hinted = {**plain, "description": "Subgoals of the user's goal."}
    assert generate_instance(plain, "s")["items"][0]["id"] == "item-1"
    assert generate_instance(plain, "s")["items"][0]["ref"]["id"].startswith("id-")  # only direct properties
    assert [i["id"] for i in generate_instance(hinted, "s")["items"]][:3] == ["S1", "S2", "S3"]
    assert generate_instance(plain, "s", hint="SubgoalDraft")["items"][1]["id"] == "S2"
    assert 3 <= len(generate_instance(plain, "s")["items"]) <= 6


async def test_score_defaults_spread_over_one_to_five(fake_openai: FakeOpenAI) -> None:
    async with async_client(fake_openai) as client:
        results = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="fake-model",
                    messages=[{"role": "user", "content": f"Judge sample number {i}"}],
                    response_format=json_schema_format(Judgement),
                )
                for i in range(40)
            )
        )
    scores = [json.loads(r.choices[0].message.content)["score"] for r in results]
    assert set(scores) == {1, 2, 3, 4, 5}
    assert max(scores.count(s) for s in range(1, 6)) <= 16  # roughly even, not lumped


def test_replies_are_deterministic(fake_openai: FakeOpenAI) -> None:
    fmt = json_schema_format(SubgoalList)
    first = content_of(post_chat(fake_openai, response_format=fmt))
    again = content_of(post_chat(fake_openai, response_format=fmt))
    other = content_of(
        post_chat(fake_openai, response_format=fmt, messages=[{"role": "user", "content": "Goal: tax advice"}])
    )
    assert first == again and first != other
    with FakeOpenAI() as second_server:  # another server instance too
        assert content_of(post_chat(second_server, response_format=fmt)) == first


# ------------------------------------------------------------------------- faults
@pytest.mark.parametrize(
    ("kind", "error"),
    [("429", openai.RateLimitError), ("500", openai.InternalServerError), ("503", openai.InternalServerError)],
)
def test_http_faults(fake_openai: FakeOpenAI, kind: str, error: type[Exception]) -> None:
    fake_openai.set_faults(**{f"rate_{kind}": 1.0}, retry_after_s=2)
    with OpenAI(api_key="test", base_url=fake_openai.base_url, max_retries=0) as client:
        with pytest.raises(error) as raised:
            client.chat.completions.create(model="fake-model", messages=USER)
    assert raised.value.status_code == int(kind)
    if kind == "429":
        assert raised.value.response.headers["Retry-After"] == "2"
        assert raised.value.body["code"] == "rate_limit_exceeded"
    assert fake_openai.stats()["faults_by_kind"] == {kind: 1}


def test_langchain_sees_429_with_max_retries_zero(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_faults(rate_429=1.0)
    with pytest.raises(openai.RateLimitError):
        chat_model(fake_openai).invoke("hello")
    assert fake_openai.stats()["requests"] == 1


@pytest.mark.parametrize("kind", ["malformed", "truncated", "wrong_schema"])
def test_content_faults_break_json(fake_openai: FakeOpenAI, kind: str) -> None:
    fake_openai.set_faults(**{f"rate_{kind}": 1.0})
    response = post_chat(fake_openai, response_format=json_schema_format(Judgement))
    assert response.status_code == 200 and response.json()["usage"]["total_tokens"] > 0
    content = content_of(response)
    if kind == "wrong_schema":
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(content), Judgement.model_json_schema())
        assert json.loads(content)["score"] == "eleven out of five"
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)
    if kind == "malformed":
        fmt = json_schema_format(Judgement)
        prompts = [[{"role": "user", "content": str(i)}] for i in range(12)]
        replies = [post_chat(fake_openai, messages=messages, response_format=fmt) for messages in prompts]
        variants = {content_of(reply).startswith("```json") for reply in replies}
        assert variants == {True, False}  # both fenced-with-trailing-comma and missing-bracket forms


def test_content_fault_breaks_forced_tool_arguments(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_faults(rate_truncated=1.0)
    message = chat_model(fake_openai).bind_tools([Judgement], tool_choice="Judgement").invoke("judge")
    assert message.tool_calls == []
    assert [call["name"] for call in message.invalid_tool_calls] == ["Judgement"]
    assert chat_model(fake_openai).with_structured_output(Judgement, method="function_calling").invoke("judge") is None


def test_bad_body_fault(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_faults(rate_bad_body=1.0)
    response = post_chat(fake_openai)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    with OpenAI(api_key="test", base_url=fake_openai.base_url, max_retries=0) as client:
        with pytest.raises(Exception):
            client.chat.completions.create(model="fake-model", messages=USER)


async def test_hang_times_out_client_without_blocking_others(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_faults(rate_hang=1.0, hang_s=1.5)
    async with async_client(fake_openai, timeout=0.5) as slow, async_client(fake_openai, timeout=5) as fast:
        hung = asyncio.create_task(slow.chat.completions.create(model="fake-model", messages=USER))
        while fake_openai.stats()["requests"] < 1:
            await asyncio.sleep(0.01)
        fake_openai.set_faults(Faults())
        answered = await fast.chat.completions.create(model="fake-model", messages=USER)
        assert answered.choices[0].message.content and not hung.done()
        with pytest.raises(openai.APITimeoutError):
            await hung
    assert fake_openai.stats()["faults_by_kind"] == {"hang": 1}


async def test_latency_overlaps_across_concurrent_requests() -> None:
    with FakeOpenAI(faults=Faults(latency_ms=200)) as server:
        async with async_client(server) as client:
            started = time.perf_counter()
            await asyncio.gather(
                *(client.chat.completions.create(model="fake-model", messages=USER) for _ in range(32))
            )
            elapsed = time.perf_counter() - started
        assert 0.2 <= elapsed < 1.5
        assert server.stats()["max_in_flight"] > 16


async def test_max_concurrency_queues_the_requests_beyond_it() -> None:
    with FakeOpenAI(faults=Faults(latency_ms=100, max_concurrency=2)) as server:
        async with async_client(server) as client:
            started = time.perf_counter()
            await asyncio.gather(
                *(client.chat.completions.create(model="fake-model", messages=USER) for _ in range(6))
            )
            elapsed = time.perf_counter() - started
        # Six calls two at a time take at least three latencies; all six were received at once.
        assert elapsed >= 0.3
        assert server.stats()["completions"] == 6 and server.stats()["max_in_flight"] == 6


def test_fault_draws_are_reproducible_from_seed() -> None:
    def outcomes(seed: int) -> list[int]:
        body = {"model": "fake-model", "messages": USER}
        with FakeOpenAI(faults=Faults.spread(0.6, seed=seed)) as server, httpx.Client() as client:
            return [client.post(f"{server.base_url}/chat/completions", json=body).status_code for _ in range(30)]

    first = outcomes(3)
    assert first == outcomes(3)
    assert {200, 429, 500} <= set(first)


# -------------------------------------------------------------------- stats & rules
def test_stats_count_requests_completions_and_faults(fake_openai: FakeOpenAI) -> None:
    post_chat(fake_openai, model="judge")
    fake_openai.set_faults(rate_500=1.0)
    post_chat(fake_openai)
    stats = httpx.get(f"{fake_openai.url}/stats").json()
    assert (stats["requests"], stats["completions"], stats["faults"]) == (2, 1, 1)
    assert stats["by_model"] == {"judge": 1, "fake-model": 1}
    assert stats["prompt_tokens"] > 0 and stats["completion_tokens"] > 0
    assert httpx.post(f"{fake_openai.url}/stats/reset").status_code == 200
    assert fake_openai.stats()["requests"] == 0
    assert httpx.post(f"{fake_openai.url}/faults", json={"rate_503": 1.0}).status_code == 200
    assert post_chat(fake_openai).status_code == 503
    assert httpx.post(f"{fake_openai.url}/faults", json={"rate_503": 2}).status_code == 422


def test_rules_scripted_errors_and_broken_rules(fake_openai: FakeOpenAI) -> None:
    fake_openai.rules.extend(
        [
            on(lambda r: "boom" in r.last_user, lambda r: 1 / 0),
            on(lambda r: "quota" in r.last_user, Reply.error(402, "pay up", {"X-Why": "quota"})),
            lambda r: {"echo": r.last_user} if r.schema_name == "Echo" else None,
        ]
    )
    broken = post_chat(fake_openai, messages=[{"role": "user", "content": "boom"}])
    assert broken.status_code == 500 and "ZeroDivisionError" in broken.json()["error"]["message"]
    scripted = post_chat(fake_openai, messages=[{"role": "user", "content": "quota"}])
    assert (scripted.status_code, scripted.headers["X-Why"]) == (402, "quota")
    assert scripted.json()["error"]["message"] == "pay up"
    echo_format = {"type": "json_schema", "json_schema": {"name": "Echo", "schema": {}}}
    echo = post_chat(fake_openai, response_format=echo_format)
    assert json.loads(content_of(echo)) == {"echo": USER[0]["content"]}
    stats = fake_openai.stats()
    assert (stats["rule_errors"], stats["scripted_errors"], stats["completions"]) == (1, 1, 1)


def test_sequence_filters_and_repeats(fake_openai: FakeOpenAI) -> None:
    script = sequence(["one", "two"], when=lambda r: "count" in r.last_user, repeat_last=True)
    fake_openai.rules = [script]
    ask = lambda text: content_of(post_chat(fake_openai, messages=[{"role": "user", "content": text}]))  # noqa: E731
    assert [ask("count"), ask("other"), ask("count"), ask("count")] == ["one", 'Fake reply to "other".', "two", "two"]
    assert script.calls == 3 and script.remaining == 0


def test_stop_frees_port_and_thread() -> None:
    server = FakeOpenAI().start()
    port = server.port
    server.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-openai:")]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# ---------------------------------------------------------------------------- CLI
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_serves_models_and_rules_file(tmp_path: Any) -> None:
    rules_file = tmp_path / "rules.py"
    rules_file.write_text(
        "from goalcover.testing import Reply, on\n"
        "RULES = [on(lambda r: 'ping' in r.last_user, Reply.text('pong'))]\n"
    )
    port = _free_port()
    command = [sys.executable, "-m", "goalcover.testing.fake_openai", "--port", str(port), "--rules", str(rules_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "CLI server did not start"
            time.sleep(0.1)
        assert httpx.get(f"{base}/v1/models").json()["data"][0]["id"] == "fake-model"
        body = {"model": "m", "messages": [{"role": "user", "content": "ping"}]}
        assert httpx.post(f"{base}/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"] == "pong"
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert f"127.0.0.1:{port}/v1" in stdout
