"""What the agent runs with: its model endpoint and the limits that keep a long session bounded.

The endpoint is the engine's `agent` role (GOALCOVER_AGENT_MODEL or GOALCOVER_MODEL, …); the limits come
from GOALCOVER_AGENT_MAX_HISTORY_TOKENS and friends, so a small local model's context can be respected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from goalcover.tools.core.settings import ModelConfig
from goalcover.tools.core.workspace import Workspace


class AgentLimits(BaseSettings):
    """Bounds on one conversation, from the environment (GOALCOVER_AGENT_*): steps a turn, characters of a
    tool result and of one sample shown to the model, tokens of history sent."""

    model_config = SettingsConfigDict(env_prefix="GOALCOVER_AGENT_", extra="ignore")

    # The conversation sent with each model call, in approximate tokens; older turns are left out first.
    max_history_tokens: int = Field(24_000, ge=500)
    # One tool result as the model sees it; longer ones are cut with a note saying how to ask for less.
    max_tool_chars: int = Field(8_000, ge=500)
    # One sample's text inside a tool result.
    max_sample_chars: int = Field(1_500, ge=100)
    # Model and tool steps within one user message before the run is stopped.
    recursion_limit: int = Field(60, ge=5)


@dataclass(frozen=True)
class AgentConfig:
    """What the agent runs with: the agent model's endpoint, the limits, and whether to probe tool calling
    once. `from_workspace` raises ConfigError when no agent model is configured."""

    model: ModelConfig
    max_history_tokens: int = 24_000
    max_tool_chars: int = 8_000
    max_sample_chars: int = 1_500
    recursion_limit: int = 60
    # Ask the endpoint once whether the model calls tools, so a model that can't fails at start, clearly.
    probe_tool_calling: bool = True

    @classmethod
    def from_workspace(cls, ws: Workspace, **overrides) -> "AgentConfig":
        """The agent role's endpoint from the workspace settings (a ConfigError names what to set)."""
        limits = AgentLimits().model_dump()
        return replace(cls(model=ws.settings.model_for("agent"), **limits), **overrides)
