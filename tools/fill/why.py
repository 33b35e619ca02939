""""Why is subgoal S3 weak?" — answered from computed facts, never from the model's imagination.

Read-only: the facts (coverage against the other subgoals, the stored gaps with counts, example samples
with quoted explanation snippets, the best supporting samples, what would close each gap) are read from
what scoring and `find_gaps` stored; nothing is clustered, labelled or renumbered here. The agent model
only writes prose over them, and the prose is checked: every number and id in it must appear in the facts.
Prose that fails the check twice is replaced by a plain sentence built from the facts. A subgoal that is
not weak gets that answer, with its share against the median, and no model call.
"""

from __future__ import annotations

import json
import re
import statistics
from typing import Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from goalcover.tools.measure.coverage import coverage, sample_scores
from goalcover.tools.core.errors import GoalCoverError
from goalcover.tools.fill.gaps import stored_gaps
from goalcover.tools.core.goal import current_goal
from goalcover.tools.judge.llm import ENGINE_CALL, make_chat_model
from goalcover.tools.judge.prompts import WHY_SYSTEM
from goalcover.tools.core.untrusted import untrusted
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.fill.echo import echo_problems

SNIPPET_CHARS = 160
EXAMPLES_PER_GAP = 3
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:\.\d+)?")


class SubgoalInfo(BaseModel):
    """The subgoal the answer is about."""

    id: str
    title: str
    description: str


class CoverageFacts(BaseModel):
    """The subgoal's own coverage; shares are fractions of all samples (0-1), `share_pct` the same as text."""

    supporting: int
    share: float
    share_pct: str
    mean: float | None
    weak: bool
    rank_by_share: int = Field(description="1 = the best covered subgoal")
    of_subgoals: int
    histogram: dict[int, int] = Field(description="score 1-5 -> samples")


class OtherSubgoal(BaseModel):
    """Another subgoal's coverage, to compare against."""

    id: str
    title: str
    supporting: int
    share_pct: str
    mean: float | None


class Example(BaseModel):
    """A sample cited as evidence: its id, its score 1-5 and the judge's explanation (cut)."""

    sample_id: str
    score: int
    explanation: str = Field(description=f"the judge's explanation, cut to {SNIPPET_CHARS} characters")


class GapFacts(BaseModel):
    """One stored gap of the subgoal: size, what would close it, example samples."""

    id: str
    kind: str
    label: str
    description: str
    size: int = Field(description="low-scoring samples in the gap")
    what_would_close_it: str
    examples: list[Example]


class WhyFacts(BaseModel):
    """Everything a why-answer may cite; the answer's numbers and ids are checked against these."""

    subgoal: SubgoalInfo
    samples: int
    coverage: CoverageFacts
    other_subgoals: list[OtherSubgoal]
    other_subgoals_median_share_pct: str
    support_threshold: int
    gaps: list[GapFacts]
    gaps_note: str | None = Field(None, description="why no gap is listed, when none is")
    best_supporting_samples: list[Example]


class WhyAnswer(BaseModel):
    """`goalcover why --json`: the answer, the facts it may cite, and who wrote the prose."""

    subgoal_id: str
    answer: str
    facts: WhyFacts
    grounded_by: Literal["llm", "template", "facts"] = Field(
        description="llm: the model's prose passed the check; template: built from the facts after it failed; "
        "facts: no model was asked (the subgoal is not weak, or prose was not wanted)"
    )


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def why_facts(ws: Workspace, subgoal_id: str) -> WhyFacts:
    """The facts for `subgoal_id`, from stored scores and gaps only. Raises BadInput for an unknown
    subgoal and GoalCoverError when nothing is scored yet."""
    goal = current_goal(ws)
    assert goal is not None
    subgoal = goal.subgoal(subgoal_id)
    report = coverage(ws)
    if not report.judge:
        raise GoalCoverError("no scores yet: run `goalcover score` first")
    row = next(r for r in report.subgoals if r.id == subgoal.id)
    others = [r for r in report.subgoals if r.id != subgoal.id]
    gaps = [g for g in stored_gaps(ws) if g.subgoal_id == subgoal.id]
    # Only the samples quoted below are read, not every judgment of the dataset.
    quoted = [sid for g in gaps for sid in g.sample_ids[:EXAMPLES_PER_GAP]] + row.best_sample_ids[:3]
    scores, _ = sample_scores(ws, ws.store.samples(dict.fromkeys(quoted)))
    ranked = sorted(report.subgoals, key=lambda r: -r.share)
    median_share = statistics.median([r.share for r in others]) if others else row.share
    note = None
    if not gaps:
        note = (
            f"no gaps of {subgoal.id} are stored: run `goalcover gaps --subgoal {subgoal.id}` to find them"
            if row.weak
            else f"{subgoal.id} is not weak, so `goalcover gaps` does not look for its gaps"
        )

    def example(sid: str) -> Example:
        value, text = scores[sid][subgoal.id]
        return Example(sample_id=sid, score=value, explanation=_snippet(text))

    return WhyFacts(
        subgoal=SubgoalInfo(id=subgoal.id, title=subgoal.title, description=subgoal.description),
        samples=report.samples,
        coverage=CoverageFacts(
            supporting=row.supporting, share=row.share, share_pct=_pct(row.share), mean=row.mean, weak=row.weak,
            rank_by_share=ranked.index(row) + 1, of_subgoals=len(report.subgoals), histogram=row.histogram,
        ),
        other_subgoals=[
            OtherSubgoal(id=r.id, title=r.title, supporting=r.supporting, share_pct=_pct(r.share), mean=r.mean) for r in others
        ],
        other_subgoals_median_share_pct=_pct(median_share),
        support_threshold=ws.settings.support_threshold,
        gaps=[
            GapFacts(
                id=g.id, kind=g.kind, label=g.label, description=g.description, size=g.size, what_would_close_it=g.fill_hint,
                examples=[example(sid) for sid in g.sample_ids[:EXAMPLES_PER_GAP] if subgoal.id in scores.get(sid, {})],
            )
            for g in gaps
        ],
        gaps_note=note,
        best_supporting_samples=[example(sid) for sid in row.best_sample_ids[:3]],
    )


def _allowed_tokens(facts: WhyFacts | dict) -> tuple[set[str], set[str]]:
    data = facts.model_dump() if isinstance(facts, WhyFacts) else facts
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    ids = set(re.findall(r'"(?:id|sample_id)":"([^"]+)"', text))
    numbers = set(_NUMBER.findall(json.dumps(data, ensure_ascii=False)))
    return ids, numbers


def ungrounded(answer: str, facts: WhyFacts | dict) -> list[str]:
    """Numbers and ids in `answer` that do not appear in `facts` (the model, or its JSON as `why --json`
    prints it); empty means grounded."""
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


def template_answer(facts: WhyFacts) -> str:
    """Plain prose built from the facts alone: the answer for a subgoal that is not weak, and the fallback
    when the model's prose is not grounded."""
    s, c = facts.subgoal, facts.coverage
    verdict = "is weak" if c.weak else "is not weak"
    parts = [
        f"{s.id} ({s.title}) {verdict}: it is supported by {c.supporting} of {facts.samples} samples ({c.share_pct}), "
        f"rank {c.rank_by_share} of {c.of_subgoals} subgoals; the other subgoals have a median of "
        f"{facts.other_subgoals_median_share_pct}."
    ]
    for g in facts.gaps:
        examples = ", ".join(e.sample_id for e in g.examples[:2])
        quote = f' ("{g.examples[0].explanation}")' if g.examples else ""
        parts.append(f"{g.id} — {g.label}: {g.size} samples, e.g. {examples}{quote}. To close it: {g.what_would_close_it}")
    if facts.gaps_note and c.weak:
        parts.append(facts.gaps_note[0].upper() + facts.gaps_note[1:] + ".")
    if facts.best_supporting_samples:
        parts.append("Best supporting samples: " + ", ".join(b.sample_id for b in facts.best_supporting_samples) + ".")
    return " ".join(parts)


async def why(ws: Workspace, subgoal_id: str, attempts: int = 2, prose: bool = True) -> WhyAnswer:
    """Why `subgoal_id` is (or is not) weak. Reads stored scores and gaps only; for a weak subgoal and
    `prose`, the agent model writes at most `attempts` drafts over the facts (nothing else is called).
    Raises BadInput for an unknown subgoal, GoalCoverError when nothing is scored, ConfigError when prose
    is wanted and no model is configured."""
    facts = why_facts(ws, subgoal_id)
    answer = None
    if prose and facts.coverage.weak:
        llm = make_chat_model(ws.settings.model_for("agent"), max_retries=ws.settings.max_retries, max_tokens=500)
        messages = [SystemMessage(WHY_SYSTEM), HumanMessage(f"FACTS:\n{untrusted(facts.model_dump_json(indent=1))}")]
        try:
            answer = await _grounded(llm, messages, facts, attempts)
        finally:
            await llm.root_async_client.close()
    return WhyAnswer(
        subgoal_id=facts.subgoal.id,
        answer=answer or template_answer(facts),
        facts=facts,
        grounded_by="llm" if answer else ("template" if prose and facts.coverage.weak else "facts"),
    )


async def _grounded(llm, history: list, facts: WhyFacts, attempts: int) -> str | None:
    """The model's prose if it cites only numbers and ids from the facts (after one correction), else None."""
    for _ in range(attempts):
        reply = await llm.ainvoke(history, config=ENGINE_CALL)
        answer = str(reply.content).strip()
        said = [WHY_SYSTEM] + [str(m.content) for m in history[2:] if isinstance(m, HumanMessage)]  # instructions and corrections
        problems = ungrounded(answer, facts) + echo_problems(answer, said)  # an echo of the prompt is no answer
        if answer and not problems:
            return answer
        history = history + [
            AIMessage(answer),
            HumanMessage(
                f"These numbers or ids are not in the FACTS: {', '.join(problems) or '(empty answer)'}. "
                "Rewrite using only numbers and ids from the FACTS."
            ),
        ]
    return None
