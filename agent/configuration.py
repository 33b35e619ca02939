"""What the agent runs with: its model endpoint and the limits that keep a long session bounded.

The endpoint is the engine's `agent` role (GOALCOVER_AGENT_MODEL or GOALCOVER_MODEL, …); the limits come
from GOALCOVER_AGENT_MAX_HISTORY_TOKENS and friends (`AgentLimits` in tools/core/settings.py), so a small
local model's context can be respected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from goalcover.tools.core.settings import AgentLimits, ModelConfig
from goalcover.tools.core.workspace import Workspace


@dataclass(frozen=True)
class AgentConfig:
    """What the agent runs with: the agent model's endpoint, the limits, and whether to probe tool calling
    once. `from_workspace` raises ConfigError when no agent model is configured."""

    model: ModelConfig
    max_history_tokens: int = 24_000
    max_tool_chars: int = 8_000
    max_sample_chars: int = 1_500
    recursion_limit: int = 60
    stream: bool = True
    # Ask the endpoint once whether the model calls tools, so a model that can't fails at start, clearly.
    probe_tool_calling: bool = True

    @classmethod
    def from_workspace(cls, ws: Workspace, **overrides) -> "AgentConfig":
        """The agent role's endpoint from the workspace settings (a ConfigError names what to set)."""
        limits = {name.removeprefix("agent_"): value for name, value in AgentLimits().model_dump().items()}
        return replace(cls(model=ws.settings.model_for("agent"), **limits), **overrides)
