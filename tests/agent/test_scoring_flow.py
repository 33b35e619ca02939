"""Paid scoring waits for the user's yes: the plan is shown at an interrupt, approve runs it, decline doesn't."""

from __future__ import annotations

import asyncio

import pytest

from goalcover.agent.session import Approval, Progress, ToolStep
from goalcover.testing import Reply, sequence
from goalcover.tools.measure.coverage import coverage
from tests.agent.conftest import N, agent_turn, drain, reply_text
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge


def judge_calls(fake) -> int:
    return sum(r.schema_name == "judgment" for r in fake.requests)


@pytest.fixture
def ws(contracts_ws, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    return contracts_ws(max_retries=2, llm_timeout_s=10)


def script(fake, *replies):
    fake.rules.insert(0, sequence(list(replies), when=agent_turn))


async def test_scoring_waits_for_approval_then_runs_with_progress(fake_openai, ws, session_factory):
    script(
        fake_openai,
        Reply.tool_calls([{"name": "run_scoring", "arguments": {"mode": "batched"}}]),
        Reply.text("Scored."),
    )
    session = await session_factory(ws)
    events = await drain(session.send("score the dataset"))
    approval = events[-1]
    assert isinstance(approval, Approval) and approval.tool == "run_scoring"
    assert approval.plan["calls"] == N and approval.plan["to_score"] == N * 5 and approval.plan["cached"] == 0
    assert f"{N} model calls" in approval.question and "cost unknown: no price is set for fake-model" in approval.question
    assert judge_calls(fake_openai) == 0  # nothing is spent before the yes
    assert (await session.pending())[0].plan == approval.plan  # the question survives in the checkpoint

    events = await drain(session.answer(True))
    assert judge_calls(fake_openai) == N, events
    progress = [e for e in events if isinstance(e, Progress) and e.total]
    assert progress[-1].done == progress[-1].total == N and "cost" in progress[-1].fields
    done = next(e for e in events if isinstance(e, ToolStep) and e.status == "done")
    assert done.name == "run_scoring" and f"{N * 5} new judgments" in done.summary
    assert reply_text(events) == "Scored."
    assert (await session.pending()) == []
    report = coverage(ws)
    assert report.unscored == 0 and sum(r.scored for r in report.subgoals) == N * 5
    state = (await session.graph.aget_state(session.run_config)).values
    assert state["run"]["status"] == "done" and state["run"]["result"]["new"] == N * 5


async def test_declining_runs_nothing_and_tells_the_model(fake_openai, ws, session_factory):
    script(
        fake_openai,
        Reply.tool_calls([{"name": "run_scoring", "arguments": {}}]),
        Reply.text("OK, not scoring."),
    )
    session = await session_factory(ws)
    await drain(session.send("score it"))
    events = await drain(session.answer(False))
    assert judge_calls(fake_openai) == 0
    assert reply_text(events) == "OK, not scoring."
    told = fake_openai.requests[-1].tool_results[-1]
    assert "declined" in told and '"ran": false' in told
    assert (await session.graph.aget_state(session.run_config)).values["run"]["status"] == "declined"


async def test_an_approval_left_open_is_answered_from_a_new_session(fake_openai, ws, session_factory):
    script(
        fake_openai,
        Reply.tool_calls([{"name": "run_scoring", "arguments": {}}]),
        Reply.text("Scored."),
    )
    first = await session_factory(ws, "t-open")
    await drain(first.send("score it"))
    await first.aclose()
    second = await session_factory(ws, "t-open")  # a new checkpointer connection, as in a new process
    assert [a.tool for a in (await second.pending())] == ["run_scoring"]
    assert reply_text(await drain(second.answer(True))) == "Scored."
    assert judge_calls(fake_openai) == N


async def test_nothing_to_pay_needs_no_approval(fake_openai, ws, session_factory):
    from goalcover.tools.judge import scoring

    await scoring.score(ws)
    before = judge_calls(fake_openai)
    script(fake_openai, Reply.tool_calls([{"name": "run_scoring", "arguments": {}}]), Reply.text("Already scored."))
    session = await session_factory(ws)
    events = await drain(session.send("score it"))
    assert not any(isinstance(e, Approval) for e in events)
    assert reply_text(events) == "Already scored." and judge_calls(fake_openai) == before


async def test_estimate_is_free(fake_openai, ws, session_factory):
    script(fake_openai, Reply.tool_calls([{"name": "estimate_scoring", "arguments": {"mode": "pair"}}]), Reply.text("That's the estimate."))
    session = await session_factory(ws)
    events = await drain(session.send("what would scoring cost?"))
    assert not any(isinstance(e, Approval) for e in events) and judge_calls(fake_openai) == 0
    assert f'"calls": {N * 5}' in fake_openai.requests[-1].tool_results[-1]


async def test_an_unapproved_draft_blocks_scoring_until_approved_or_discarded(fake_openai, ws, session_factory):
    script(
        fake_openai,
        Reply.tool_calls([{"name": "edit_subgoals", "arguments": {"edits": [{"op": "drop", "id": "S5"}]}}]),
        Reply.text("Dropped S5."),
        Reply.tool_calls([{"name": "run_scoring", "arguments": {}}]),
        Reply.text("Approve or discard the draft first."),
        Reply.tool_calls([{"name": "discard_draft", "arguments": {}}, {"name": "run_scoring", "arguments": {}}]),
        Reply.text("Scored."),
    )
    session = await session_factory(ws)
    await drain(session.send("drop the last subgoal"))
    events = await drain(session.send("now score"))
    assert not any(isinstance(e, Approval) for e in events) and judge_calls(fake_openai) == 0
    assert "the draft subgoals have unsaved changes" in fake_openai.requests[-1].tool_results[-1]
    events = await drain(session.send("forget the draft and score"))
    assert isinstance(events[-1], Approval) and events[-1].plan["subgoals"] == 5


async def test_calls_around_a_paid_one_run_once_and_in_order(fake_openai, ws, session_factory):
    script(
        fake_openai,
        Reply.tool_calls(
            [
                {"name": "estimate_scoring", "arguments": {}},
                {"name": "run_scoring", "arguments": {}},
                {"name": "coverage", "arguments": {}},
            ]
        ),
        Reply.text("Done."),
    )
    session = await session_factory(ws)
    before = await drain(session.send("estimate, score, then show coverage"))
    after = await drain(session.answer(True))
    steps = [(e.name, e.status) for e in before + after if isinstance(e, ToolStep) and e.status != "start"]
    assert steps == [("estimate_scoring", "done"), ("run_scoring", "done"), ("coverage", "done")]
    assert isinstance(before[-1], Approval)
    results = fake_openai.requests[-1].tool_results
    assert len(results) == 3 and f'"samples": {N}' in results[2] and '"unscored_pairs": 0' in results[2]


async def test_a_sampled_run_shows_its_plan_and_coverage_with_intervals(fake_openai, ws, session_factory):
    script(
        fake_openai,
        Reply.tool_calls([{"name": "run_scoring", "arguments": {"mode": "batched", "sample": 8}}]),
        Reply.tool_calls([{"name": "coverage", "arguments": {}}]),
        Reply.text("Estimated."),
    )
    session = await session_factory(ws)
    approval = (await drain(session.send("estimate coverage from 8 samples")))[-1]
    assert isinstance(approval, Approval) and approval.plan["calls"] == 8
    assert any(row[0] == "stratified sample" for row in approval.plan["rows"])
    events = await drain(session.answer(True))
    assert judge_calls(fake_openai) == 8, events
    done = [e for e in events if isinstance(e, ToolStep) and e.status == "done"]
    assert "coverage estimated from 8 samples" in done[0].summary
    report = coverage(ws)
    assert report.estimate.samples == 8 and report.estimate.population == N
    assert all(r.ci_low is not None for r in report.subgoals)
