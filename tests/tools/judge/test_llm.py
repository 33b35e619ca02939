"""Structured calls that survive real models: repair, JSON-mode fallback, and local-server detection."""

from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from goalcover.testing import Reply
from goalcover.tools.judge.llm import JsonCaller, ReplyError, parse_json_reply, reply_limit
from goalcover.tools.judge.local import detect, local_settings, probe, suggestion
from goalcover.tools.core.settings import load_settings


class Verdict(BaseModel):
    explanation: str
    score: int = Field(ge=1, le=5)


@pytest.mark.parametrize(
    "reply",
    [
        '{"explanation": "ok", "score": 4}',
        '```json\n{"explanation": "ok", "score": 4}\n```',
        '{"explanation": "ok", "score": "4",}',
        '{"explanation": "ok", "score": 4',
        '```\n{"explanation": "ok", "score": 4.0}\n```',
    ],
)
def test_small_model_habits_are_repaired(reply):
    value, _ = parse_json_reply(reply, Verdict)
    assert value == Verdict(explanation="ok", score=4)


@pytest.mark.parametrize(
    "reply", ['{"explanation": "ok", "score": 7}', '{"score": 4}', "I think it deserves a 4.", '{"explanation": "x", "score": "high"}']
)
def test_what_cannot_be_repaired_is_refused_not_invented(reply):
    with pytest.raises(ReplyError):
        parse_json_reply(reply, Verdict)


def call(caller: JsonCaller, **kwargs):
    """One call, then the caller's HTTP clients closed on the same event loop."""
    messages = [SystemMessage("Judge the sample."), HumanMessage("<sample>x</sample>")]

    async def once():
        async with caller:
            return await caller.call(messages, Verdict, name="judgment", **kwargs)

    return asyncio.run(once())


def test_auto_mode_falls_back_to_json_object_when_json_schema_is_rejected(fake_openai):
    def llama_cpp_python(req):
        fmt = req.body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return Reply.error(400, {"error": {"message": "response_format type json_schema is not supported"}})
        if fmt.get("type") == "json_object":
            assert "schema" in fmt  # llama-cpp-python compiles it into a grammar
            return Reply.json({"explanation": "fine", "score": 3})
        return None

    fake_openai.rules.append(llama_cpp_python)
    settings = load_settings(model="m", base_url=fake_openai.base_url, api_key="k")
    caller = JsonCaller(settings.model_for("judge"), settings)
    result = call(caller)
    assert result.value == Verdict(explanation="fine", score=3)
    assert caller.json_mode == "json_object"
    assert "<schema>" in fake_openai.requests[-1].system  # the schema travels in the prompt too
    assert call(caller).value is not None and len(fake_openai.requests) == 3  # no second failed try


def test_a_reply_bound_reaches_a_local_server_as_max_tokens(fake_openai):
    """llama-cpp-python ignores `max_completion_tokens` (what ChatOpenAI sends for `max_tokens`)."""
    fake_openai.rules.append(lambda req: Reply.json({"explanation": "fine", "score": 3}))
    settings = load_settings(model="m", base_url=fake_openai.base_url, api_key="k")
    caller = JsonCaller(settings.model_for("judge"), settings)
    messages = [SystemMessage("Judge the sample."), HumanMessage("<sample>x</sample>")]
    assert asyncio.run(caller.call(messages, Verdict, name="judgment", max_tokens=123)).value is not None
    body = fake_openai.requests[-1].body
    assert body.get("max_tokens") == 123 and "max_completion_tokens" not in body
    # OpenAI itself gets its current name (it refuses both at once); langchain renames it on the way.
    assert reply_limit(load_settings(model="gpt-4o-mini", api_key="k").model_for("judge"), 123) == {"max_tokens": 123}
    assert reply_limit(settings.model_for("judge"), None) == {}


def test_a_forced_json_schema_mode_reports_the_rejection(fake_openai):
    fake_openai.rules.append(lambda req: Reply.error(400, "response_format json_schema is not supported"))
    settings = load_settings(model="m", base_url=fake_openai.base_url, api_key="k", json_mode="json_schema")
    result = call(JsonCaller(settings.model_for("judge"), settings))
    assert result.value is None and "400" in result.error and "json_schema" in result.error


def test_local_servers_are_detected_and_offered(fake_openai):
    port = int(fake_openai.base_url.rsplit(":", 1)[1].split("/")[0])
    (server,) = detect(ports={port: "llama.cpp"})
    assert server.base_url == fake_openai.base_url and server.models
    assert f"OPENAI_BASE_URL={fake_openai.base_url}" in server.settings()
    assert "GOALCOVER_JUDGE_MODE=probe" in server.settings() and "PROBE_THRESHOLDS" not in server.settings()
    # a model calibrated here comes with its fitted cut points, in a form the shell and the settings read
    line = local_settings("http://127.0.0.1:8080/v1", "/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    value = line.split("GOALCOVER_PROBE_THRESHOLDS=", 1)[1].strip("'")
    from goalcover.tools.judge.probe import calibrated_cuts
    from goalcover.tools.core.settings import load_settings

    assert tuple(load_settings(probe_thresholds=json.loads(value)).probe_thresholds) == calibrated_cuts(line)
    assert "GOALCOVER_AGENT_STREAM" not in line
    # local serve's tool-calling server cannot stream a tool call: its settings turn the agent's streaming off
    assert local_settings("http://127.0.0.1:8080/v1", "m.gguf", agent_stream=False).endswith(" GOALCOVER_AGENT_STREAM=0")
    assert probe("http://127.0.0.1:9/v1", timeout=0.2) is None
    assert "GOALCOVER_MODEL" in suggestion() or "goalcover local serve" in suggestion()


def test_serve_refuses_a_port_held_by_a_server_that_does_not_answer(tmp_path):
    """A busy llama.cpp server keeps its port but answers no probe for minutes: a connect tells."""
    pytest.importorskip("llama_cpp.server")
    import socket

    from goalcover.tools.core.errors import BadInput
    from goalcover.tools.judge.local import serve

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(60))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BadInput, match=f"port {port} is taken"):
            serve(model, port=port)


def test_the_bulk_judge_times_out_retries_and_reports_a_hung_server(fake_openai):
    """BulkJsonCaller posts through the SDK's aiohttp transport: its timeout and our retries still hold."""
    from goalcover.tools.judge.llm import BulkJsonCaller

    fake_openai.set_faults(rate_hang=1.0, hang_s=5.0)
    settings = load_settings(model="m", base_url=fake_openai.base_url, api_key="k", llm_timeout_s=0.3, max_retries=1)
    result = call(BulkJsonCaller(settings.model_for("judge"), settings))  # `call` closes the caller
    assert result.value is None and "Timeout" in result.error
    assert result.usage.calls == 2 and fake_openai.stats()["requests"] == 2  # one retry, each counted once


def test_the_bulk_judge_sends_the_same_body_as_it_prices_and_repairs_like_the_rest(fake_openai):
    from goalcover.tools.judge.llm import BulkJsonCaller

    replies = iter(['{"explanation": "ok", "score": 9}', '```json\n{"explanation": "ok", "score": 4,}\n```'])
    fake_openai.rules.append(lambda req: Reply(content=next(replies)))
    settings = load_settings(model="m", base_url=fake_openai.base_url, api_key="k")
    caller = BulkJsonCaller(settings.model_for("judge"), settings)
    messages = [SystemMessage("Judge the sample."), HumanMessage("<sample>x</sample>")]
    result = call(caller, max_tokens=50, top_logprobs=3)
    assert result.value == Verdict(explanation="ok", score=4) and result.usage.repair_calls == 1
    first = fake_openai.requests[0].body
    expected = caller.request_body(messages, name="judgment", json_schema=Verdict.model_json_schema(), max_tokens=50, top_logprobs=3)
    assert first == expected and first["max_tokens"] == 50 and first["logprobs"] is True
    assert fake_openai.requests[1].body["messages"][-1]["role"] == "user"  # the repair turn
