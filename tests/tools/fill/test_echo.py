"""The why answer's grounding check rejects prose that repeats its prompt (tools/fill/echo.py)."""

from __future__ import annotations

import asyncio

from goalcover.testing import Reply
from goalcover.tools.fill.echo import echo_problems
from goalcover.tools.judge.prompts import WHY_SYSTEM
from goalcover.tools.fill.why import template_answer, why
from tests.tools.fill.test_gaps import scored, weak_ids  # noqa: F401 (fixture)


def test_echoes_of_the_prompt_are_caught_and_prose_passes():
    assert echo_problems('Fake reply to "FACTS: { "subgoal": {…".')
    assert echo_problems('The subgoal {"id": "S3", "share_pct": "4.0%"} is weak.')
    assert echo_problems("Write 3 to 6 plain sentences from the FACTS below and nothing else", [WHY_SYSTEM])
    assert echo_problems("S3 is weak: 4.0% of samples support it against a median of 20.0%; G1 explains it.", [WHY_SYSTEM]) == []


def test_why_falls_back_to_the_facts_when_the_model_echoes_its_prompt(scored, fake_openai):
    ws, _ = scored
    target = weak_ids(ws)[0]
    # The fake endpoint's plain reply quotes the prompt ("Fake reply to "FACTS: {…"): numbers and ids all
    # come from the facts, so only the echo check can catch it.
    answer = asyncio.run(why(ws, target))
    assert answer.grounded_by == "template" and "Fake reply" not in answer.answer, answer.answer
    fake_openai.rules.insert(0, lambda req: Reply.text(template_answer(answer.facts)) if "FACTS:" in (req.last_user or "") else None)
    assert asyncio.run(why(ws, target)).grounded_by == "llm"
