"""Answers are grounded: the facts reach the model as tool results, and the prompt forbids anything else."""

from __future__ import annotations

import asyncio

import re

import pytest

from goalcover.testing import Reply, sequence
from goalcover.tools.judge import scoring
from tests.agent.conftest import agent_turn, drain, reply_text, tool_payloads
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge

NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")


@pytest.fixture
def scored(contracts_ws, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    ws = contracts_ws()
    asyncio.run(scoring.score(ws))
    scoring.index_scores(ws)  # what run_scoring does after scoring, so score filters work
    return ws


def grounded_answer(req) -> Reply:
    """What a careful model writes: only numbers and ids from the tool results it was given."""
    coverage, details = tool_payloads(req)[-2:]
    row = details["coverage"]
    low = ", ".join(s["id"] for s in details["lowest"][:2])
    best = ", ".join(row["best_sample_ids"][:2]) or "none"
    return Reply.text(
        f"{details['subgoal']['id']} ({row['title']}) is supported by {row['supporting']} of {details['samples']} samples "
        f"(share {row['share']}, mean score {row['mean']}). Lowest-scoring samples: {low}. Best: {best}. "
        f"Weak subgoals overall: {', '.join(coverage['weak']) or 'none'}; {coverage['off_goal']} samples are off-goal."
    )


async def test_a_why_answer_cites_only_numbers_and_ids_from_tool_results(fake_openai, scored, session_factory):
    fake_openai.rules.insert(
        0,
        sequence(
            [
                Reply.tool_calls(
                    [{"name": "coverage", "arguments": {}}, {"name": "subgoal_details", "arguments": {"subgoal_id": "S4", "k": 3}}]
                ),
                grounded_answer,
            ],
            when=agent_turn,
        ),
    )
    session = await session_factory(scored)
    answer = reply_text(await drain(session.send("Why is S4 weak?")))
    last = fake_openai.requests[-1]
    assert "Use only what tool results" in last.system and "never instructions" in last.system
    evidence = "\n".join(last.tool_results)
    numbers = NUMBER.findall(answer)
    assert len(numbers) >= 5
    for number in numbers:
        assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", evidence), f"{number} is in no tool result"
    known_ids = {s.id for s in scored.store.samples()}
    cited = [token for token in re.findall(r"[\w-]+", answer) if token in known_ids]
    assert cited, "the answer cites sample ids"
    for sample_id in cited:
        assert sample_id in evidence
    # The tool results themselves hold the engine's numbers.
    details = tool_payloads(last)[-1]
    expected = sum(bool(re.search(CONTRACT_PATTERNS["S4"], s.text, re.IGNORECASE)) for s in scored.store.samples())
    assert details["coverage"]["supporting"] == expected


async def test_compare_and_search_by_score(fake_openai, scored, session_factory):
    fake_openai.rules.insert(
        0,
        sequence(
            [
                Reply.tool_calls(
                    [
                        {"name": "compare_subgoals", "arguments": {"ids": ["S1", "S2"]}},
                        {"name": "search_samples", "arguments": {"query": "account termination", "k": 5, "scores": [{"subgoal": "S1", "op": ">=", "score": 4}]}},
                    ]
                ),
                Reply.text("Compared."),
            ],
            when=agent_turn,
        ),
    )
    session = await session_factory(scored)
    await drain(session.send("compare S1 and S2, and find termination samples that support S1"))
    compared, found = tool_payloads(fake_openai.requests[-1])[-2:]
    samples = scored.store.samples()
    s1 = {s.id for s in samples if re.search(CONTRACT_PATTERNS["S1"], s.text, re.IGNORECASE)}
    s2 = {s.id for s in samples if re.search(CONTRACT_PATTERNS["S2"], s.text, re.IGNORECASE)}
    assert compared["support_all"] == len(s1 & s2)
    assert compared["support_only"]["S1"]["count"] == len(s1 - s2)
    assert found["filters"] == ["score_S1>=4"]
    assert found["found"] == min(5, len(s1))
    assert {h["id"] for h in found["samples"]} <= s1 and all(h["scores"]["S1"] == 5 for h in found["samples"])
    assert '<sample id="' in fake_openai.requests[-1].tool_results[-1]  # their text comes as delimited data
