"""The LangGraph agent over the engine: `build_graph` (graph.py), its `State`, typed tools, and `Session`,
one checkpointed conversation as a stream of events for a UI.

Imported lazily: the CLI imports this package for `chat` only, and LangGraph takes a moment to load.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_graph": "graph",
    "AgentConfig": "configuration",
    "State": "state",
    "TOOLS": "tools",
    "Session": "session",
    "open_checkpointer": "threads",
    "new_thread_id": "threads",
    "last_thread": "threads",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
