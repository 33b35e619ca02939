"""Can the agent model call tools? One forced call per model and endpoint, remembered in the workspace."""

from __future__ import annotations

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from goalcover.agent.nodes import brief_api_error
from goalcover.agent.prompts import PROBE_SYSTEM, PROBE_TOOL
from goalcover.tools.core.errors import GoalCoverError
from goalcover.tools.judge.llm import ENGINE_CALL
from goalcover.tools.core.settings import ModelConfig
from goalcover.tools.core.store import TOOL_CALLING_KEY
from goalcover.tools.core.workspace import Workspace

# How servers refuse a tool_choice they do not support: 400 (OpenAI-style), 422 (schema validation), 500
# (llama-cpp-python asserts). Auth, rate-limit and connection errors are not refusals and are not retried.
REFUSED_CHOICE = (openai.BadRequestError, openai.UnprocessableEntityError, openai.InternalServerError)


async def ensure_tool_calling(ws: Workspace, llm: BaseChatModel, model: ModelConfig) -> None:
    """One forced tool call, once per model and endpoint (remembered in the workspace); a GoalCoverError
    naming the model when it cannot call tools."""
    key = [model.model, model.base_url]
    if ws.store.get_meta(TOOL_CALLING_KEY) == key:
        return
    where = f" at {model.base_url}" if model.base_url else ""
    need = (
        f"The agent model {model.model!r}{where} {{why}}; `goalcover chat` needs a model with tool (function) calling. "
        "Set GOALCOVER_AGENT_MODEL (and GOALCOVER_AGENT_BASE_URL) to one that supports it."
    )
    tool = {
        "type": "function",
        "function": {
            "name": PROBE_TOOL,
            "description": "Report that you are ready.",
            "parameters": {"type": "object", "properties": {"ready": {"type": "boolean"}}, "required": ["ready"]},
        },
    }
    messages = [SystemMessage(PROBE_SYSTEM), HumanMessage("Are you ready?")]
    try:
        try:
            reply = await llm.bind_tools([tool], tool_choice="required").ainvoke(messages, config=ENGINE_CALL)
        except REFUSED_CHOICE:
            # Some servers call tools but refuse tool_choice="required" (llama-cpp-python's
            # chatml-function-calling answers 500); force the call by naming the tool (OpenAI's other form).
            named = {"type": "function", "function": {"name": PROBE_TOOL}}
            reply = await llm.bind_tools([tool], tool_choice=named).ainvoke(messages, config=ENGINE_CALL)
    except openai.BadRequestError as exc:
        raise GoalCoverError(need.format(why=f"refused a request with tools ({brief_api_error(exc)})")) from None
    except openai.APIError as exc:
        raise GoalCoverError(f"Cannot use the agent model {model.model!r}{where}: {brief_api_error(exc)}") from None
    if not getattr(reply, "tool_calls", None):
        raise GoalCoverError(need.format(why="answered in text when a tool call was required"))
    ws.store.set_meta(TOOL_CALLING_KEY, key)

