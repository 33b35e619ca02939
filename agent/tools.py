"""The agent's tools: plain async functions over the engine, registered in one list. Each takes a
ToolContext and one pydantic argument model; its docstring is the tool's description for the model, its
argument model the schema. The tools themselves live by topic in tools_data, tools_goal, tools_scoring and
tools_gaps; engine errors (GoalCoverError) and bad arguments propagate, and the graph turns them into tool
messages the model can read.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from goalcover.agent.context import NoArgs, ToolContext, ToolResult
from goalcover.agent.tools_data import SearchArgs, ShowArgs, describe_dataset, search_samples, show_samples
from goalcover.agent.tools_gaps import (
    ExportArgs, GapsArgs, ReviewArgs, SynthesizeArgs, WhyArgs, export_dataset, find_gaps, review_synthetic, synthesis_preview,
    synthesize_samples, why_weak,
)
from goalcover.agent.tools_iterate import PAID as ITERATE_PAID, TOOLS as ITERATE_TOOLS
from goalcover.agent.tools_goal import (
    EditArgs, ProposeArgs, approve_goal, discard_draft, edit_subgoals, propose_subgoals,
)
from goalcover.agent.tools_scoring import (
    CompareArgs, CoverageArgs, RunScoringArgs, ScoringArgs, SubgoalArgs, compare_subgoals, coverage, estimate_scoring,
    run_scoring, scoring_preview, subgoal_details,
)

__all__ = [
    "TOOLS", "PAID", "BY_NAME", "args_model", "tool_spec", "ToolContext", "ToolResult", "NoArgs",
    *(fn.__name__ for fn in (
        describe_dataset, search_samples, show_samples, propose_subgoals, edit_subgoals, approve_goal, discard_draft,
        estimate_scoring, run_scoring, scoring_preview, coverage, compare_subgoals, subgoal_details, find_gaps, why_weak,
        synthesis_preview, synthesize_samples, review_synthetic, export_dataset,
    )),
    "SearchArgs", "ShowArgs", "ProposeArgs", "EditArgs", "ScoringArgs", "RunScoringArgs", "CoverageArgs", "CompareArgs",
    "SubgoalArgs", "GapsArgs", "WhyArgs", "SynthesizeArgs", "ReviewArgs", "ExportArgs",
]

# --- the registry -----------------------------------------------------------------------------------

TOOLS: list[Callable[..., Awaitable[ToolResult]]] = [
    describe_dataset,
    search_samples,
    show_samples,
    propose_subgoals,
    edit_subgoals,
    approve_goal,
    discard_draft,
    estimate_scoring,
    run_scoring,
    coverage,
    compare_subgoals,
    subgoal_details,
    find_gaps,
    why_weak,
    synthesize_samples,
    review_synthetic,
    export_dataset,
    *ITERATE_TOOLS,  # history, diff, fill from a pool, verify (tools_iterate)
]
# Tools that spend money: the graph shows the preview and waits for the user's yes before calling them.
PAID: dict[str, Callable[[ToolContext, Any], dict | None]] = {
    "run_scoring": scoring_preview,
    "synthesize_samples": synthesis_preview,
    **ITERATE_PAID,
}
BY_NAME = {fn.__name__: fn for fn in TOOLS}


def args_model(fn: Callable) -> type[BaseModel]:
    """The pydantic argument model of a tool (its `args` annotation)."""
    return inspect.get_annotations(fn, eval_str=True)["args"]


def tool_spec(fn: Callable) -> dict:
    """The OpenAI tool schema: name and docstring of the function, parameters from its argument model."""
    spec = convert_to_openai_tool(args_model(fn))
    spec["function"]["name"] = fn.__name__
    spec["function"]["description"] = " ".join((inspect.getdoc(fn) or fn.__name__).split())
    spec["function"]["parameters"] = _plain_schema(spec["function"]["parameters"])
    return spec


def _plain_schema(node: Any) -> Any:
    """Drop pydantic's discriminator hints (their $refs dangle once refs are inlined) and use anyOf,
    which more OpenAI-compatible servers accept than oneOf."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _plain_schema(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_plain_schema(v) for v in node]
    return node
