"""Prose that repeats its prompt is not an answer: the grounding checks (tools/fill/why.py) reject a reply that
echoes the prompt's FACTS block, its JSON, or a run of the system prompt's own words — a model (or a stub)
that parrots its input would otherwise pass "every number and id appears in the facts" trivially."""

from __future__ import annotations

import re

RUN_WORDS = 6  # this many consecutive words of the instructions in the reply is a copy, not prose


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def echo_problems(answer: str, system_prompts: list[str] = ()) -> list[str]:
    """What in `answer` repeats the prompt: its "FACTS:" label, JSON syntax (`{"`, `":`), or RUN_WORDS
    consecutive words of one of `system_prompts` (the instructions and corrections it was sent); [] for prose of its own."""
    problems = []
    if re.search(r"\bFACTS\s*:", answer):
        problems.append('it repeats the prompt ("FACTS:")')
    if re.search(r'[{\[]\s*"|"\s*:\s*[\[{"\d]', answer):
        problems.append("it repeats the facts' JSON")
    words = _words(answer)
    runs = {" ".join(words[i:i + RUN_WORDS]) for i in range(len(words) - RUN_WORDS + 1)}
    for prompt in system_prompts:
        source = " ".join(_words(prompt))
        if any(run in source for run in runs):
            problems.append("it repeats the instructions")
            break
    return problems
