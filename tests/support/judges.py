"""Rules for the fake endpoint that judge like a crude but predictable model: by keywords.

A subgoal scores 5 on a sample whose text matches its pattern and 1 otherwise, so tests can compute
the expected coverage from the data themselves.
"""

from __future__ import annotations

import re

from goalcover.testing import ChatRequest, Reply

SAMPLE_BLOCK = re.compile(r'<sample id="([^"]*)">\n(.*)\n</sample>', re.DOTALL)


def sample_of(req: ChatRequest) -> tuple[str, str] | None:
    # Search the whole conversation: a repair turn asks again about the sample of the first user message.
    match = SAMPLE_BLOCK.search(req.text or "")
    return (match.group(1), match.group(2)) if match else None


def judged_subgoals(req: ChatRequest) -> list[str]:
    """The subgoal ids a judge request asks for: the batched schema's keys, or the one subgoal of a pair call."""
    schema = req.schema or {}
    props = schema.get("properties", {})
    if "score" in props:
        return re.findall(r"^(S\d+): ", req.system, re.MULTILINE)
    return list(props)


def keyword_judge(patterns: dict[str, str], explain: dict[str, str] | None = None):
    """A rule: score 5 where the subgoal's regex matches the sample text, else 1."""
    compiled = {sid: re.compile(p, re.IGNORECASE) for sid, p in patterns.items()}

    def rule(req: ChatRequest):
        found = sample_of(req)
        if found is None or req.schema_name != "judgment":
            return None
        sample_id, text = found
        verdicts = {}
        for sid in judged_subgoals(req):
            hit = bool(compiled[sid].search(text))
            reason = (explain or {}).get(sid, f"the {sid} topic")
            verdicts[sid] = {
                "explanation": f"The sample {'covers' if hit else 'lacks'} {reason}.",
                "score": 5 if hit else 1,
            }
        if "score" in (req.schema or {}).get("properties", {}):
            return Reply.json(next(iter(verdicts.values())))
        return Reply.json(verdicts)

    return rule


CONTRACT_PATTERNS = {
    "S1": r"terminat|suspend",
    "S2": r"liab|warrant|indemn",
    "S3": r"personal (data|information)|privacy",
    "S4": r"(change|modif)\w* (to )?(these|the|this) (terms|agreement)",
    "S5": r"arbitrat|dispute|governing law|class action",
}
