"""Long samples (issue #23): the judge, the probe and explanations read the whole response and instruction
of a 40,000-character sample of every shape within the configured context; samples under the budget get
exactly the prompt they had, so their judgments stay cached."""

from __future__ import annotations

import asyncio
import json

import pytest

from goalcover.evals.long_samples import GOALS, as_sample, load_goal, long_samples
from goalcover.tools.judge import scoring
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.errors import BadInput
from goalcover.tools.judge.fit import EDGE_CHARS, Part, fit_parts, fit_record, fit_sample, fit_view, sample_parts
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.data.records import read_samples
from goalcover.tools.judge.probe import explain_messages
from goalcover.tools.judge.prompts import JUDGE_USER, neutralise
from goalcover.tools.core.settings import load_settings
from goalcover.tools.core.tokens import estimate_tokens
from goalcover.tools.core.workspace import Workspace
from tests.conftest import SFT, head_lines
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge

CONTEXT = 4_096  # `goalcover local serve`'s window
GOAL = load_goal("contracts")
LONG = long_samples(SFT.parent)


def _tokens(messages) -> int:
    return sum(estimate_tokens(str(m.content)) for m in messages)


def _prompts(sample):
    """(name, messages, reply tokens) of every prompt that shows `sample` to the judge model."""
    g = GOAL.subgoals[0]
    yield "batched", scoring.judge_messages(GOAL, GOAL.subgoals, sample, False, "batched", CONTEXT), 200 * len(GOAL.subgoals)
    yield "pair", scoring.judge_messages(GOAL, [g], sample, False, "pair", CONTEXT), 200
    yield "probe", scoring.judge_messages(GOAL, [g], sample, False, "probe", CONTEXT), 1
    yield "explanation", explain_messages(GOAL, g, sample, 0.2, CONTEXT), 200


@pytest.mark.parametrize("name", ["alpaca", "messages", "sharegpt", "prompt-completion", "text"])
def test_a_40000_character_sample_of_each_shape_keeps_its_response_and_instruction_within_the_context(name):
    sample, instructions, responses = LONG[name]
    assert len(sample.text) >= 39_900 and sample.format == ("alpaca" if name == "long-response" else name)
    assert len(sample_parts(sample)) > 1 or name == "text"  # read in parts, not as flat text
    for prompt, messages, reply in _prompts(sample):
        shown = str(messages[-1].content)
        assert _tokens(messages) + reply <= CONTEXT, prompt
        for text in instructions + responses:
            assert neutralise(text) in shown, (prompt, text[:60])
        # the cut is in the middle and says so; the sample's start and its end (the last response) are shown
        assert "left out to fit" in shown
        assert neutralise(sample.text[:EDGE_CHARS]) in shown and neutralise(sample.text[-EDGE_CHARS:]) in shown
    fitted = fit_sample(sample, scoring.sample_budget(GOAL, "batched", False, CONTEXT))
    assert fitted.roles == (("instruction",) if name == "prompt-completion" else ("text",) if name == "text" else ("context",))


def test_a_response_longer_than_the_budget_keeps_its_start_and_end_and_says_so():
    sample, instructions, _ = LONG["long-response"]
    output = sample.record["output"]
    for prompt, messages, reply in _prompts(sample):
        shown = str(messages[-1].content)
        assert _tokens(messages) + reply <= CONTEXT, prompt
        assert neutralise(instructions[0]) in shown
        assert output[:EDGE_CHARS] in shown and output[-EDGE_CHARS:] in shown
        assert f"of this response's {len('Response: ' + output):,} characters left out to fit; its start and end are shown" in shown


def test_every_shared_sample_gets_exactly_the_prompt_it_had():
    """Nothing in the shared sets is cut at the default context or at 4,096 tokens: the user message is
    the one the judge got before the fit rule (the whole text, under 12,000 characters)."""
    for path in sorted(SFT.glob("*.jsonl")):
        goal = load_goal(path.stem.split("_")[0])
        for sample in read_samples(path).samples[::7]:
            assert _joined(sample) == sample.text and len(sample_parts(sample)) > 1
            for context in (CONTEXT, load_settings().judge_context_tokens):
                for mode in ("batched", "pair", "probe"):
                    text, tag = scoring.judge_text(goal, sample, mode, False, context)
                    assert (text, tag) == (sample.text, "")
            user = scoring.judge_messages(goal, goal.subgoals, sample, False, "batched", CONTEXT)[1].content
            assert user == JUDGE_USER.format(sample_id=sample.id, text=neutralise(sample.text))


def _joined(sample) -> str:
    return "\n\n".join(p.text for p in sample_parts(sample))


def test_cuts_come_from_the_longest_context_first_then_the_instruction_then_the_response():
    parts = [Part("context", "c" * 3000), Part("context", "d" * 1500), Part("instruction", "i" * 2000), Part("response", "r" * 2000)]
    whole = len("\n\n".join(p.text for p in parts))
    assert fit_parts(parts, whole).text == "\n\n".join(p.text for p in parts)  # fits: unchanged
    one = fit_parts(parts, whole - 1000)
    assert one.roles == ("context",) and "d" * 1500 in one.text and "i" * 2000 in one.text and "r" * 2000 in one.text
    assert len(one.text) <= whole - 1000 and "characters of this context left out to fit" in one.text
    both = fit_parts(parts, 5_500)
    assert both.roles == ("context",) and "i" * 2000 in both.text and "r" * 2000 in both.text and len(both.text) <= 5_500
    last = fit_parts(parts, 3_000)
    assert last.roles == ("context", "instruction", "response") and len(last.text) <= 3_000
    with pytest.raises(ValueError, match="raise the judge's context"):
        fit_parts(parts, 1_000)


def test_a_record_that_does_not_rebuild_its_text_is_cut_as_plain_text():
    sample = LONG["alpaca"][0].model_copy(update={"text": "x" * 20_000})
    assert [p.role for p in sample_parts(sample)] == ["text"]
    fitted = fit_sample(sample, 1_000)
    assert len(fitted.text) <= 4_000 and fitted.text.startswith("x" * EDGE_CHARS) and fitted.text.endswith("x" * EDGE_CHARS)


def test_a_context_too_small_for_the_prompt_is_a_clear_error():
    with pytest.raises(BadInput, match="GOALCOVER_JUDGE_CONTEXT_TOKENS"):
        scoring.sample_budget(GOAL, "batched", False, 1_024)
    with pytest.raises(BadInput, match="GOALCOVER_JUDGE_CONTEXT_TOKENS"):
        load_settings(judge_context_tokens=100)


def test_views_and_style_examples_keep_the_response():
    sample, _, responses = LONG["messages"]
    view = fit_view(sample, 1_500)
    assert responses[0] in view and len(view) <= 1_500
    record = {"instruction": "Summarize.", "input": "w" * 5_000, "output": "o" * 700}
    fitted = fit_record(record, 1_500)
    assert fitted["output"] == "o" * 700 and fitted["instruction"] == "Summarize." and len(json.dumps(fitted)) <= 1_500
    chat = {"messages": [{"role": "user", "content": "u" * 3_000}, {"role": "assistant", "content": "a" * 600}]}
    assert fit_record(chat, 1_500)["messages"][1]["content"] == "a" * 600
    short = as_sample({"prompt": "p", "completion": "c"}, "prompt-completion", "x")
    assert fit_view(short, 1_500) == short.text


def _open(path, fake, **overrides) -> Workspace:
    return Workspace.open(path, model="fake-model", base_url=fake.base_url, api_key="test", **overrides)


def test_only_the_cut_sample_is_judged_again_when_the_context_changes(tmp_path, fake_openai):
    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", 5)
    long_record = {"id": "long-1", **LONG["alpaca"][0].record}
    with data.open("a", encoding="utf-8") as f:
        f.write(json.dumps(long_record) + "\n")
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with _open(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOALS / "contracts.yaml"))
        first = asyncio.run(scoring.score(ws, "batched"))
        assert (first.calls, first.failed) == (6, 0)
        # the long sample is cut in its input: its whole output is read (the first 12,000 characters were, before)
        long_prompt = next(r.text for r in fake_openai.requests if "long-1" in (r.text or ""))
        assert neutralise(long_record["output"]) in long_prompt and "characters of this context left out" in long_prompt
        calls = fake_openai.stats()["completions"]
        again = asyncio.run(scoring.score(ws, "batched"))
        assert (again.calls, fake_openai.stats()["completions"]) == (0, calls)  # a rerun pays nothing
    fake_openai.requests.clear()
    with _open(tmp_path / "ws", fake_openai, judge_context_tokens=CONTEXT) as ws:
        plan, tasks, _ = scoring.plan(ws, "batched")
        assert [t.sample.id for t in tasks] == ["long-1"] and plan.cached == 5 * len(GOAL.subgoals)
        third = asyncio.run(scoring.score(ws, "batched"))
        assert third.calls == 1 and third.judgments == 6 * len(GOAL.subgoals)
        (request,) = fake_openai.requests
        assert "left out to fit" in request.text and neutralise(long_record["output"]) in request.text
        assert asyncio.run(scoring.score(ws, "batched")).calls == 0


def test_local_serve_settings_name_its_context_window():
    from goalcover.tools.judge.local import local_settings

    line = local_settings("http://127.0.0.1:8080/v1", "m.gguf", 4_096)
    assert line.endswith("GOALCOVER_JUDGE_CONTEXT_TOKENS=4096")
    assert load_settings(judge_context_tokens=int(line.rsplit("=", 1)[1])).judge_context_tokens == CONTEXT
    assert "JUDGE_CONTEXT_TOKENS" not in local_settings("http://127.0.0.1:8080/v1", "m.gguf")
