"""Test fixtures for goalcover: a deterministic fake OpenAI-compatible server.

Names are imported lazily so that ``python -m goalcover.testing.fake_openai`` does not
import the module twice, and importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FakeOpenAI": "fake_openai",
    "FakeOpenAIApp": "fake_openai",
    "Stats": "fake_openai",
    "load_rules": "fake_openai",
    "Faults": "fake_faults",
    "FAULT_KINDS": "fake_faults",
    "ChatRequest": "fake_types",
    "Reply": "fake_types",
    "Rule": "fake_types",
    "ToolCall": "fake_types",
    "ScriptedSequence": "fake_types",
    "sequence": "fake_types",
    "on": "fake_types",
    "default_reply": "fake_replies",
    "generate_instance": "fake_schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return __all__
