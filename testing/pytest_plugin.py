"""pytest plugin: ``pytest_plugins = ["goalcover.testing.pytest_plugin"]`` in a conftest.

Provides ``fake_openai``: a started ``FakeOpenAI`` per test (fresh rules, faults and
stats), stopped afterwards so no thread or port leaks between tests.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from .fake_openai import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI server; point clients at ``fake_openai.base_url``."""
    with FakeOpenAI() as server:
        yield server
