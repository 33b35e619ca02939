"""Keyword judges for the experiments' plumbing tests: one scorer per goal, picked by a phrase of the goal
text in the judge's system prompt. Mostly: 5 where a subgoal's pattern matches the sample, else 1."""

from __future__ import annotations

import re

from goalcover.evals.harness import read_jsonl
from goalcover.testing import ChatRequest, Reply
from goalcover.tools.data.records import RawRecord, parse_record
from tests.conftest import SFT
from tests.support.judges import CONTRACT_PATTERNS, judged_subgoals, sample_of

# Each pattern looks for the part of a sample that the subgoal's corruption removes. Some are deliberately
# narrower than that part (S3 of pubmedqa wants long reasoning), so clean scores vary and Cohen's d is finite.
PATTERNS = {
    "biomedical question-answering": {
        "S1": r"user: Context:\n",
        "S2": r"Question: ",
        "S3": r"assistant: (?!Answer:).{600,}",
        "S4": r"Answer: (yes|no|maybe)\s*\Z",
    },
    "assert-based tests": {
        "S1": r"Instruction: (?!Write a Python function\.\n)",
        "S2": r"assert ",
        "S3": r"==|<|>|\+",  # a crude "logic" detector: flipped operators still match some of these
        "S4": r"\b(?!v\d+\b)[a-z_]{3,}\s*=(?!=)",
    },
    "completes a function body": {
        "S1": r'"""[ \t]*\w|"""\n[ \t]+\w',
        "S2": r">>> ",
        "S3": r"Completion: [\s\S]*(%|==|<|>|\+)",
        "S4": r"\)\s*->|\w: [A-Z]?[a-z]+[\[,)]",
    },
}
CONTRACTS = "terms-of-service"
_SUMMARIES = {r["id"]: r["output"] for r in read_jsonl(SFT / "contracts_alpaca.jsonl")}
_INPUT = re.compile(r"\nInput: (.*)\n\nResponse: ", re.DOTALL)


def _contracts(sample_id: str, text: str) -> dict[str, int]:
    """An oracle for the topic subgoals: 5 for a clause on the topic with its own summary, 2 for one with
    another summary, 1 for a clause not on the topic."""
    clause = _INPUT.search(text)
    own = text.endswith("Response: " + _SUMMARIES.get(sample_id, "\0"))
    return {sid: (5 if own else 2) if clause and re.search(p, clause.group(1), re.IGNORECASE) else 1
            for sid, p in CONTRACT_PATTERNS.items()}


def expected(goal_text: str, sample_id: str, text: str) -> dict[str, int] | None:
    """What the keyword judge gives this sample under this goal (None: a goal it does not know)."""
    if CONTRACTS in goal_text:
        return _contracts(sample_id, text)
    for marker, patterns in PATTERNS.items():
        if marker in goal_text:
            return {sid: 5 if re.search(p, text, re.IGNORECASE) else 1 for sid, p in patterns.items()}
    return None


def text_of(record: dict, shape: str) -> str:
    return parse_record(RawRecord(0, record), shape)[1]


def goal_keyword_judge(req: ChatRequest):
    """A rule for every goal above (pair and batched calls alike)."""
    found = sample_of(req)
    if found is None or req.schema_name != "judgment":
        return None
    scores = expected(req.system, *found)
    if scores is None:
        return None
    verdicts = {sid: {"explanation": f"keyword verdict for {sid}", "score": scores[sid]} for sid in judged_subgoals(req)}
    if "score" in (req.schema or {}).get("properties", {}):
        return Reply.json(next(iter(verdicts.values())))
    return Reply.json(verdicts)


# `python -m goalcover.testing.fake_openai --port 8099 --rules tests/evals/rules.py` serves these judges.
RULES = [goal_keyword_judge]
