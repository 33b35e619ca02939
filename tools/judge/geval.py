"""Probability-weighted scores from a reply's token logprobs, as in G-Eval (Liu et al., 2023).

A judge that writes `"score": 4` has also put some probability on 3 and 5. Weighting each score by the
probability of its digit token — Σ p(s)·s / Σ p(s) over s in 1…5 — turns a coarse 1–5 verdict into a
continuous one: ties break, and a small model's hesitation shows instead of being rounded away.

Works on the OpenAI `logprobs.content` shape (a list of `{token, logprob, top_logprobs: [...]}`), which
OpenAI, vLLM, llama.cpp's server and llama-cpp-python all return. Everything here is read from the reply:
a score whose digit cannot be found, or whose alternatives are missing, gets no weighted score (None) —
never a guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

SCORES = (1, 2, 3, 4, 5)
# `"score": 4` or `"score": "4"`; a quote preceded by a backslash is inside a string and does not count.
_SCORE = re.compile(r'(?<!\\)"score"\s*:\s*"?([1-5])(?![0-9])')


def _key_pattern(key: str) -> re.Pattern[str]:
    return re.compile(r'(?<!\\)"' + re.escape(key) + r'"\s*:\s*\{')


def _spell(tokens: Sequence[dict[str, Any]]) -> tuple[str, list[int], list[int]]:
    """The reply text as the tokens spell it, the index of the token under each character, and where
    each token starts."""
    text, owner, starts = [], [], []
    for i, entry in enumerate(tokens):
        piece = str(entry.get("token", ""))
        starts.append(len(owner))
        text.append(piece)
        owner.extend([i] * len(piece))
    return "".join(text), owner, starts


def digit_weighted(entry: dict[str, Any], at: int) -> float | None:
    """The expected score at one token: its alternatives that differ from it only in the digit at `at`
    (so `" 4"` competes with `" 3"`, `"4"` with `"3"`), their probabilities renormalised over 1–5."""
    token = str(entry.get("token", ""))
    prefix, suffix = token[:at], token[at + 1:]
    mass: dict[int, float] = {}
    for alt in entry.get("top_logprobs") or []:
        text, logprob = str(alt.get("token", "")), alt.get("logprob")
        if logprob is None or len(text) != len(token) or not (text.startswith(prefix) and text.endswith(suffix)):
            continue
        digit = text[at]
        if digit.isdigit() and int(digit) in SCORES:
            mass.setdefault(int(digit), math.exp(float(logprob)))
    total = sum(mass.values())
    if total <= 0:
        return None
    return min(5.0, max(1.0, sum(s * p for s, p in mass.items()) / total))


def weighted_scores(tokens: Sequence[dict[str, Any]] | None, keys: Iterable[str] | None = None,
                    expected: dict[str | None, int] | None = None) -> dict[str | None, float]:
    """Weighted score per verdict in a reply.

    `keys` are the ids a batched reply is keyed by (`{"S1": {..., "score": 4}, "S2": ...}`): each score
    belongs to the last key opened before it. Without keys (a single verdict) the first score counts, under
    the key None. `expected` holds the parsed scores: a digit that disagrees with it (the tokens and the
    parsed content went different ways) gives no weighted score for that key.
    """
    if not tokens:
        return {}
    text, owner, token_starts = _spell(tokens)
    starts: list[tuple[int, str]] = []
    for key in keys or ():
        starts += [(m.start(), key) for m in _key_pattern(key).finditer(text)]
    starts.sort()
    found: dict[str | None, float] = {}
    for match in _SCORE.finditer(text):
        pos = match.start(1)
        owners = [k for start, k in starts if start < pos]
        key = owners[-1] if owners else None
        if (keys and key is None) or key in found:
            continue  # a score outside any verdict, or a second one inside the same verdict
        if expected is not None and expected.get(key) != int(match.group(1)):
            continue
        index = owner[pos]
        weighted = digit_weighted(tokens[index], pos - token_starts[index])
        if weighted is not None:
            found[key] = weighted
        if not keys:
            break
    return found
