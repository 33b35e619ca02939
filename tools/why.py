""""Why is subgoal S3 weak?" — answered from computed facts, never from the model's imagination.

The facts (coverage against the other subgoals, gap clusters with counts, example samples with quoted
explanation snippets, the best supporting samples, what would close the gap) are computed here. The LLM
only writes prose over them, and the prose is checked: every number and id in it must appear in the facts.
Prose that fails the check twice is replaced by a plain sentence built from the facts.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from goalcover.tools.coverage import coverage, sample_scores
from goalcover.tools.errors import GoalCoverError
from goalcover.tools.gaps import find_gaps, stored_gaps
from goalcover.tools.goal import current_goal
from goalcover.tools.llm import make_chat_model
from goalcover.tools.prompts import WHY_SYSTEM
from goalcover.tools.workspace import Workspace

SNIPPET_CHARS = 160
EXAMPLES_PER_GAP = 3
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:\.\d+)?")


class WhyAnswer(BaseModel):
    subgoal_id: str
    answer: str
    facts: dict
    grounded_by: str  # "llm" when the model's prose passed the check, "template" otherwise


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def why_facts(ws: Workspace, subgoal_id: str) -> dict:
    goal = current_goal(ws)
    assert goal is not None
    subgoal = goal.subgoal(subgoal_id)
    report = coverage(ws)
    if not report.judge:
        raise GoalCoverError("no scores yet: run `goalcover score` first")
    row = next(r for r in report.subgoals if r.id == subgoal.id)
    others = [r for r in report.subgoals if r.id != subgoal.id]
    gaps = [g for g in stored_gaps(ws) if g.subgoal_id == subgoal.id] or [g for g in find_gaps(ws, subgoal.id)]
    scores, _ = sample_scores(ws)
    ranked = sorted(report.subgoals, key=lambda r: -r.share)
    median_share = statistics.median([r.share for r in others]) if others else row.share
    return {
        "subgoal": {"id": subgoal.id, "title": subgoal.title, "description": subgoal.description},
        "samples": report.samples,
        "coverage": {
            "supporting": row.supporting,
            "share": row.share,
            "share_pct": _pct(row.share),
            "mean": row.mean,
            "weak": row.weak,
            "rank_by_share": ranked.index(row) + 1,
            "of_subgoals": len(report.subgoals),
            "histogram": row.histogram,
        },
        "other_subgoals": [
            {"id": r.id, "title": r.title, "supporting": r.supporting, "share_pct": _pct(r.share), "mean": r.mean} for r in others
        ],
        "other_subgoals_median_share_pct": _pct(median_share),
        "support_threshold": ws.settings.support_threshold,
        "gaps": [
            {
                "id": g.id,
                "kind": g.kind,
                "label": g.label,
                "description": g.description,
                "size": g.size,
                "what_would_close_it": g.fill_hint,
                "examples": [
                    {"sample_id": sid, "score": scores[sid][subgoal.id][0], "explanation": _snippet(scores[sid][subgoal.id][1])}
                    for sid in g.sample_ids[:EXAMPLES_PER_GAP]
                    if subgoal.id in scores.get(sid, {})
                ],
            }
            for g in gaps
        ],
        "best_supporting_samples": [
            {"sample_id": sid, "score": scores[sid][subgoal.id][0], "explanation": _snippet(scores[sid][subgoal.id][1])}
            for sid in row.best_sample_ids[:3]
        ],
    }


def _allowed_tokens(facts: dict) -> tuple[set[str], set[str]]:
    text = json.dumps(facts, ensure_ascii=False)
    ids = set(re.findall(r'"(?:id|sample_id)": "([^"]+)"', text))
    numbers = set(_NUMBER.findall(text))
    return ids, numbers


def ungrounded(answer: str, facts: dict) -> list[str]:
    """Numbers and ids in `answer` that do not appear in `facts` (empty means grounded)."""
    ids, numbers = _allowed_tokens(facts)
    problems = []
    stripped = answer
    for known in sorted(ids, key=len, reverse=True):  # ids such as `contracts-legalsum13` hold digits
        stripped = stripped.replace(known, " ")
    for token in re.findall(r"\b(?:S|G)\d+\b", stripped):
        problems.append(token)  # a subgoal or gap id that is not in the facts
    stripped = re.sub(r"\b(?:S|G)\d+\b", " ", stripped)
    for number in _NUMBER.findall(stripped):
        if number not in numbers and number.rstrip("0").rstrip(".") not in numbers:
            problems.append(number)
    return problems


def template_answer(facts: dict) -> str:
    """Plain prose built from the facts alone: the fallback when the model's prose is not grounded."""
    s, c = facts["subgoal"], facts["coverage"]
    parts = [
        f"{s['id']} ({s['title']}) is supported by {c['supporting']} of {facts['samples']} samples "
        f"({c['share_pct']}), rank {c['rank_by_share']} of {c['of_subgoals']} subgoals; the other subgoals have a "
        f"median of {facts['other_subgoals_median_share_pct']}."
    ]
    for g in facts["gaps"]:
        examples = ", ".join(e["sample_id"] for e in g["examples"][:2])
        quote = f' ("{g["examples"][0]["explanation"]}")' if g["examples"] else ""
        parts.append(f"{g['id']} — {g['label']}: {g['size']} samples, e.g. {examples}{quote}. To close it: {g['what_would_close_it']}")
    if facts["best_supporting_samples"]:
        parts.append("Best supporting samples: " + ", ".join(b["sample_id"] for b in facts["best_supporting_samples"]) + ".")
    return " ".join(parts)


def why(ws: Workspace, subgoal_id: str, attempts: int = 2) -> WhyAnswer:
    facts = why_facts(ws, subgoal_id)
    llm = make_chat_model(ws.settings.model_for("agent"), max_retries=ws.settings.max_retries, max_tokens=500)
    messages = [SystemMessage(WHY_SYSTEM), HumanMessage(f"FACTS:\n{json.dumps(facts, ensure_ascii=False, indent=1)}")]

    async def ask() -> str | None:
        try:
            return await _grounded(llm, list(messages), facts, attempts)
        finally:
            await llm.root_async_client.close()

    answer = asyncio.run(ask())
    return WhyAnswer(
        subgoal_id=facts["subgoal"]["id"],
        answer=answer or template_answer(facts),
        facts=facts,
        grounded_by="llm" if answer else "template",
    )


async def _grounded(llm, history: list, facts: dict, attempts: int) -> str | None:
    """The model's prose if it cites only numbers and ids from the facts (after one correction), else None."""
    for _ in range(attempts):
        reply = await llm.ainvoke(history)
        answer = str(reply.content).strip()
        problems = ungrounded(answer, facts)
        if answer and not problems:
            return answer
        history += [
            AIMessage(answer),
            HumanMessage(
                f"These numbers or ids are not in the FACTS: {', '.join(problems) or '(empty answer)'}. "
                "Rewrite using only numbers and ids from the FACTS."
            ),
        ]
    return None
