"""One judge call: the sample's text as the judge reads it (fitted to the context window), the prompt of
each mode, the reply's schema and bounds, the request body other engines send, and the store rows a reply
becomes. `scoring` plans and runs these calls; the Batch API and Ray engines build the same requests here,
so every engine shares the live judge's cache keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, create_model

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.shapes import Goal, Sample, Subgoal, content_hash
from goalcover.tools.core.tokens import CHARS_PER_TOKEN, estimate_tokens
from goalcover.tools.judge.fit import DEFAULT_CONTEXT_TOKENS, MIN_SAMPLE_TOKENS, fit_budget, fit_sample
from goalcover.tools.judge.geval import weighted_scores
from goalcover.tools.judge.llm import JsonCaller, Result
from goalcover.tools.judge.prompts import (
    JUDGE_ANCHORS, JUDGE_PAIR_PROMPT_VERSION, JUDGE_PAIR_SYSTEM, JUDGE_PAIR_USER, JUDGE_PROMPT_VERSION, JUDGE_SYSTEM,
    JUDGE_USER, PROBE_PROMPT_VERSION, RUBRIC, clipped, format_subgoals, neutralise,
)

Mode = Literal["batched", "pair", "probe"]
MODES: tuple[str, ...] = get_args(Mode)
# Before issue #23 the judge read the first 12,000 characters of a sample. A sample whose fitted text
# (tools/judge/fit.py) is what that gave gets exactly that prompt and keeps its judgments; any other is cut or
# shown whole under a FIT_VERSION tag (judge_text), so only those samples are judged again.
JUDGE_MAX_CHARS = 12_000
FIT_VERSION = "fit1"
# What one verdict costs in output tokens, for estimates before any call is made.
EST_TOKENS_PER_VERDICT = 60
# An explanation is one or two sentences; a verdict that runs past this is a model rambling.
MAX_TOKENS_PER_VERDICT = 200


def check_mode(mode: str) -> None:
    """Raises BadInput naming the modes when `mode` is not one of MODES."""
    if mode not in MODES:
        raise BadInput(f"--mode {mode!r}: choose batched, pair or probe")


def est_output_tokens(mode: Mode, pairs: int) -> int:
    """Output tokens `pairs` judgments are expected to cost before any call: a probe writes one token, a
    verdict with its explanation ~EST_TOKENS_PER_VERDICT."""
    return pairs * (1 if mode == "probe" else EST_TOKENS_PER_VERDICT)


class Verdict(BaseModel):
    """The judge's verdict on one sample × subgoal pair: an explanation, then a score 1-5."""

    explanation: str = Field(min_length=1, description="what the sample shows and what it lacks for this subgoal")
    # The enum lets grammar-constrained local servers (llama.cpp) allow only 1-5; min/max alone they ignore.
    score: int = Field(
        ge=1, le=5, json_schema_extra={"enum": [1, 2, 3, 4, 5]},
        description="1 unrelated · 2 on topic, not exercised · 3 partly · 4 clearly · 5 exemplary",
    )


VERDICT_SCHEMA = Verdict.model_json_schema()


@lru_cache(maxsize=256)
def batched_schema(subgoal_ids: tuple[str, ...]) -> tuple[type[BaseModel], dict]:
    """One required key per subgoal id: the model cannot skip a subgoal without the reply failing.

    Returns the model and its JSON schema, built once per set of ids (not once per call).
    """
    model = create_model("BatchedVerdict", **{sid: (Verdict, ...) for sid in subgoal_ids})  # type: ignore[call-overload]
    return model, model.model_json_schema()


def prompt_version(mode: Mode, anchors: bool = False) -> str:
    """The cache key's prompt version for a mode: judge-v1/batched, judge-v2/pair, with +anchors when the
    rubric has worked examples."""
    if mode == "probe":
        return f"{PROBE_PROMPT_VERSION}/probe"  # the probe has no rubric, so no anchors
    base = JUDGE_PAIR_PROMPT_VERSION if mode == "pair" else JUDGE_PROMPT_VERSION
    return f"{base}{'+anchors' if anchors else ''}/{mode}"


def sample_budget(goal: Goal, mode: Mode, anchors: bool = False, context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> int:
    """Tokens (estimated) a sample may take in a judge call of `mode` within `context_tokens`: the window
    less the prompt around the sample and the longest reply, both sized for the goal's whole subgoal list
    (so a sample's fit does not depend on which of its subgoals are still missing). Raises BadInput when
    the window is too small for that prompt (fit.fit_budget)."""
    empty = Sample(id="", format="text", source="", line=0, record={}, text="")
    if mode == "probe":
        from goalcover.tools.judge.probe import probe_messages

        longest = max(goal.subgoals, key=lambda g: len(format_subgoals([g])))
        frame, reply = probe_messages(goal, longest, empty, ""), 1
    else:
        frame = _judge_messages(goal, goal.subgoals, empty, "", anchors, mode)
        reply = MAX_TOKENS_PER_VERDICT * (len(goal.subgoals) if mode == "batched" else 1)
    try:
        return fit_budget(context_tokens, sum(estimate_tokens(str(m.content)) for m in frame), reply)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def judge_text(goal: Goal, sample: Sample, mode: Mode, anchors: bool = False,
               context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> tuple[str, str]:
    """(the sample's text as the judge reads it, its fit tag). The tag is "" when that text is what the
    judge read before issue #23 (the sample is whole and at most JUDGE_MAX_CHARS), else FIT_VERSION and a
    hash of the text: tools/judge/fit_store.py keeps it with the judgments, so a judgment made on other text is
    stale and only that sample is judged again."""
    if len(sample.text) <= MIN_SAMPLE_TOKENS * CHARS_PER_TOKEN:
        return sample.text, ""  # fits any budget fit_budget allows: the usual case, without sizing the prompt
    fitted = fit_sample(sample, sample_budget(goal, mode, anchors, context_tokens))
    if fitted.text == clipped(sample.text, JUDGE_MAX_CHARS):
        return fitted.text, ""
    return fitted.text, f"{FIT_VERSION}:{content_hash(fitted.text)[:16]}"


def judge_messages(goal: Goal, subgoals: list[Subgoal], sample: Sample, anchors: bool = False,
                   mode: Mode = "batched", context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> list[BaseMessage]:
    """Batched: the subgoals in the system prompt, the sample after. Pair: the system prompt holds only
    what every call shares, and the one subgoal follows the sample (see JUDGE_PAIR_PROMPT_VERSION).
    The sample is fitted to `context_tokens` (judge_text)."""
    text, _ = judge_text(goal, sample, mode, anchors, context_tokens)
    if mode == "probe":
        from goalcover.tools.judge.probe import probe_messages

        return probe_messages(goal, subgoals[0], sample, text)
    return _judge_messages(goal, subgoals, sample, text, anchors, mode)


def _judge_messages(goal: Goal, subgoals: list[Subgoal], sample: Sample, text: str, anchors: bool,
                    mode: Mode) -> list[BaseMessage]:
    if mode == "pair":
        system = JUDGE_PAIR_SYSTEM.format(goal=goal.text, rubric=RUBRIC)
        user = JUDGE_PAIR_USER.format(sample_id=neutralise(sample.id, attribute=True), text=neutralise(text), subgoal=format_subgoals(subgoals))
    else:
        which = "this subgoal" if len(subgoals) == 1 else f"each of these {len(subgoals)} subgoals"
        system = JUDGE_SYSTEM.format(goal=goal.text, which=which, subgoals=format_subgoals(subgoals), rubric=RUBRIC)
        user = JUDGE_USER.format(sample_id=neutralise(sample.id, attribute=True), text=neutralise(text))
    if anchors:
        system += JUDGE_ANCHORS
    return [SystemMessage(system), HumanMessage(user)]


@dataclass
class Task:
    """One judge call: a sample and the subgoals it still needs."""

    sample: Sample
    subgoals: list[Subgoal]
    fit: str = ""  # the sample's fit tag (judge_text): recorded with its judgments by fit_store.save_fits


@dataclass(frozen=True)
class JudgeSpec:
    """How one task is asked: the reply's pydantic model and JSON schema, the reply bound (tokens) and
    the logprobs requested (None: none)."""

    schema: type[BaseModel]
    json_schema: dict
    max_tokens: int
    top_logprobs: int | None


def judge_spec(task: Task, mode: Mode, top_logprobs: int | None = None) -> JudgeSpec:
    """The reply schema and bounds of one task: batched asks one required Verdict per subgoal id
    (batched_schema), pair one Verdict; MAX_TOKENS_PER_VERDICT per subgoal."""
    if mode == "batched":
        schema, json_schema = batched_schema(tuple(s.id for s in task.subgoals))
        return JudgeSpec(schema, json_schema, MAX_TOKENS_PER_VERDICT * len(task.subgoals), top_logprobs)
    return JudgeSpec(Verdict, VERDICT_SCHEMA, MAX_TOKENS_PER_VERDICT, top_logprobs)


def judge_request(caller: JsonCaller, goal: Goal, task: Task, mode: Mode, anchors: bool = False,
                  top_logprobs: int | None = None, context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> dict:
    """The `/v1/chat/completions` body the live judge posts for `task` (same prompt, schema, bounds and
    logprobs): what the Batch API and Ray engines send so their judgments share the live path's cache
    keys. `caller` supplies the model and JSON mode (JsonCaller.request_body)."""
    spec = judge_spec(task, mode, top_logprobs)
    return caller.request_body(judge_messages(goal, task.subgoals, task.sample, anchors, mode, context_tokens), name="judgment",
                               json_schema=spec.json_schema, max_tokens=spec.max_tokens, top_logprobs=spec.top_logprobs)


def judgment_rows(task: Task, mode: Mode, result: Result, version: str, model: str) -> tuple[list[dict], list[dict]]:
    """A call's Result as store rows: (judgments, failures) — one judgment per subgoal of the task when
    the reply parsed (with the G-Eval weighted score where logprobs came back), else one failure per
    subgoal carrying the error. Exactly one of the two lists is non-empty."""
    if mode == "batched":
        ids = tuple(s.id for s in task.subgoals)
        verdicts = {s.id: getattr(result.value, s.id) for s in task.subgoals} if result.value else {}
        weighted = weighted_scores(result.logprobs, ids, {k: v.score for k, v in verdicts.items()}) if verdicts else {}
    else:
        only = task.subgoals[0].id
        verdicts = {only: result.value} if result.value else {}
        found = weighted_scores(result.logprobs, expected={None: result.value.score}) if result.value else {}
        weighted = {only: found[None]} if None in found else {}
    if verdicts:
        return [
            pair_row(task, s, version, model, score=verdicts[s.id].score, explanation=verdicts[s.id].explanation,
                 weighted_score=weighted.get(s.id))
            for s in task.subgoals
        ], []
    return [], [pair_row(task, s, version, model, error=result.error or "no reply") for s in task.subgoals]


def pair_row(task: Task, subgoal: Subgoal, version: str, model: str, **values) -> dict:
    """The store row of one sample × subgoal judgment (or failure) of `task`: its cache key (content and
    subgoal hashes, prompt version, model), ids, fit tag, and `values` (score, explanation, weighted_score,
    or error)."""
    return {
        "sample_hash": task.sample.content_hash,
        "subgoal_hash": subgoal.hash,
        "prompt_version": version,
        "model": model,
        "sample_id": task.sample.id,
        "subgoal_id": subgoal.id,
        "fit": task.fit,
        **values,
    }
