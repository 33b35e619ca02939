"""After scoring: gaps, why, synthesis (behind approval), review and export, through the agent."""

from __future__ import annotations

import asyncio

import json

import pytest

from goalcover.agent.session import Approval, ToolStep
from goalcover.testing import Reply, sequence
from goalcover.tools.judge import scoring
from tests.agent.conftest import N, agent_turn, drain, reply_text, tool_payloads
from tests.support.judges import CONTRACT_PATTERNS, synth_writer, topical_judge


@pytest.fixture
def scored(contracts_ws, fake_openai):
    fake_openai.rules += [topical_judge(CONTRACT_PATTERNS), synth_writer(off_target=1)]
    ws = contracts_ws()
    asyncio.run(scoring.score(ws))
    return ws


def last_payload(fake) -> dict:
    return tool_payloads(fake.requests[-1])[-1]


async def test_gaps_why_synthesis_review_and_export(fake_openai, scored, session_factory):
    def synthesize_first_gap(req):
        gap = tool_payloads(req)[-2]["gaps"][0]  # the find_gaps result, before why_weak's
        return Reply.tool_calls([{"name": "synthesize_samples", "arguments": {"gap_id": gap["id"], "n": 5}}])

    fake_openai.rules.insert(
        0,
        sequence(
            [
                Reply.tool_calls([{"name": "find_gaps", "arguments": {"subgoal_id": "S1"}}, {"name": "why_weak", "arguments": {"subgoal_id": "S1"}}]),
                Reply.text("S1 has gaps."),
                synthesize_first_gap,
                Reply.text("Generated."),
                Reply.tool_calls([{"name": "review_synthetic", "arguments": {"accept": ["all"]}}]),
                Reply.text("Accepted."),
                Reply.tool_calls(
                    [
                        {"name": "export_dataset", "arguments": {"filename": "/etc/goalcover.jsonl"}},
                        {"name": "export_dataset", "arguments": {"filename": "../../escaped.jsonl"}},
                        {"name": "export_dataset", "arguments": {"filename": "augmented.jsonl", "with_synthetic": True}},
                    ]
                ),
                Reply.text("Exported."),
            ],
            when=agent_turn,
        ),
    )
    session = await session_factory(scored)
    await drain(session.send("what is missing for S1, and why?"))
    gaps, why = tool_payloads(fake_openai.requests[-1])[-2:]
    assert gaps["gaps"] and all(g["subgoal_id"] == "S1" for g in gaps["gaps"])
    assert why["subgoal_id"] == "S1" and why["answer"] and "coverage" in why["facts"]

    events = await drain(session.send("fill the first gap with 5 samples"))
    approval = events[-1]
    assert isinstance(approval, Approval) and approval.tool == "synthesize_samples"
    assert approval.plan["candidates"] == 5 and approval.plan["generation_calls"] == 1
    assert not any(r.schema_name == "synthetic_samples" for r in fake_openai.requests)  # nothing spent yet
    events = await drain(session.answer(True))
    result = last_payload(fake_openai)
    assert result["generated"] == 5 and result["kept"] >= 1 and result["rejected_by_judge"] >= 1

    await drain(session.send("accept them all"))
    reviewed = last_payload(fake_openai)
    assert reviewed["counts"]["accepted"] == result["kept"] and reviewed["counts"]["proposed"] == 0

    events = await drain(session.send("export with the synthetic samples to /etc, or anywhere"))
    steps = [e for e in events if isinstance(e, ToolStep) and e.status != "start"]
    assert [s.status for s in steps] == ["error", "error", "done"]
    assert all("exports go inside" in s.summary for s in steps[:2])
    assert reply_text(events) == "Exported."
    exported = scored.root / "exports" / "augmented.jsonl"
    lines = exported.read_text().splitlines()
    assert len(lines) == N + result["kept"] and json.loads(lines[-1])["id"].startswith("syn-")
    assert (scored.root / "exports" / "augmented.manifest.json").is_file()
    assert not (scored.root.parent / "escaped.jsonl").exists()
