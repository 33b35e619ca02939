"""The one error path: an exception as the user's one line, the same for the CLI, the agent and the app."""

from __future__ import annotations

import httpx
import openai
import pytest
import typer
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from goalcover.agent.nodes import brief_api_error
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.messages import MAX_CHARS, internal_error, is_bug, user_message
from goalcover.ui.common import handle_errors


class Shape(BaseModel):
    score: int


def test_a_goalcover_error_is_its_own_message_whole():
    text = "samples.jsonl line 3: field 'messages' is missing\n(see the README)" + "x" * 1000
    assert user_message(BadInput(text)) == text
    assert not is_bug(BadInput(text))


def test_a_bug_is_one_line_cut_at_the_limit():
    line = user_message(RuntimeError("first\nsecond   third" + "y" * 1000))
    assert line.startswith("RuntimeError: first second third") and "\n" not in line
    assert len(line) <= len("RuntimeError: ") + MAX_CHARS and line.endswith("…")
    assert is_bug(RuntimeError()) and user_message(RuntimeError()) == "RuntimeError"
    assert internal_error(KeyError("k")) == "Internal error: KeyError: 'k'"


def test_a_validation_error_names_the_field():
    with pytest.raises(ValidationError) as caught:
        Shape.model_validate({"score": "high"})
    assert "score" in user_message(caught.value) and not is_bug(caught.value)


def test_an_api_error_carries_its_status_and_the_agent_says_it_the_same_way():
    response = httpx.Response(429, request=httpx.Request("POST", "http://x/v1/chat/completions"))
    exc = openai.RateLimitError("slow down " * 100, response=response, body=None)
    assert user_message(exc).startswith("RateLimitError 429: slow down")
    assert brief_api_error(exc) == user_message(exc) and not is_bug(exc)


def test_the_cli_prints_the_same_line_for_a_bug_and_debug_shows_the_traceback(monkeypatch):
    app = typer.Typer()

    @app.command()
    @handle_errors
    def boom() -> None:
        raise RuntimeError("broken\nstate")

    monkeypatch.delenv("GOALCOVER_DEBUG", raising=False)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: broken state (set GOALCOVER_DEBUG=1" in " ".join(result.stderr.split())
    monkeypatch.setenv("GOALCOVER_DEBUG", "1")
    result = CliRunner().invoke(app, [])
    assert isinstance(result.exception, RuntimeError)
