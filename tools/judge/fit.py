"""Fit a sample into a model's context: keep what it is trained to write, cut where it hides the least.

The rule (issue #23), for every prompt that shows a sample to a model (the judge in every mode, the
probe and its explanations, synthesis examples, gap views) or a capped view of it to a person or the agent:

1. A sample whose text fits the budget is shown whole, unchanged.
2. Otherwise the cut comes out of the MIDDLE of the longest "context" part (system prompt, tools, input,
   earlier turns, tool results), then the next longest, each keeping its first and last `EDGE_CHARS`, and a
   line in its place says how many characters were left out.
3. Only when the context alone cannot make room are the instruction parts cut the same way (a prompt-
   completion sample's prompt is its instruction and its context at once), and last the responses
   (every assistant turn, the output, the completion): a response longer than the budget by itself keeps
   its start and end, and its line says so. A `text` sample has no parts: its middle is cut.

Parts come from `ingest.text_parts` (the text view's own pieces), so a sample's fitted text is its text
view with marked holes. Budgets are in tokens, estimated as `tokens.CHARS_PER_TOKEN` characters per token
(the project's one local estimate; tokenizers of hosted models are not available offline).
"""

from __future__ import annotations

from dataclasses import dataclass

from goalcover.tools.core.shapes import Sample
from goalcover.tools.core.tokens import CHARS_PER_TOKEN

# Every cut part keeps this much of its start and of its end (characters): enough to see what it is.
EDGE_CHARS = 300
# The order parts are cut in: context first, the response only when nothing else is left.
CUT_ORDER = ("context", "text", "instruction", "response")
SEPARATOR = "\n\n"
# The fewest tokens a sample may be given; a smaller budget is a configuration error (fit_budget).
MIN_SAMPLE_TOKENS = 256
# The judge's context window (tokens) when none is configured: one every current hosted judge has, and a
# cost bound (a sample gets about 6,000 tokens of it). `goalcover local serve` says 4,096.
DEFAULT_CONTEXT_TOKENS = 8_192
# Headroom for the chars/4 estimate (code and non-Latin scripts take more tokens per character).
HEADROOM = 0.9


@dataclass(frozen=True)
class Part:
    """One piece of a sample's text view: `role` is "instruction", "context", "response" or "text"."""

    role: str
    text: str


@dataclass(frozen=True)
class Fitted:
    """A sample's text as a model is shown it: `text`, the characters left out (`cut`, 0 when whole) and
    the roles of the parts that were cut."""

    text: str
    cut: int = 0
    roles: tuple[str, ...] = ()


def sample_parts(sample: Sample) -> list[Part]:
    """The sample's text view in parts (ingest.text_parts); one "text" part when its record no longer
    rebuilds exactly that text (a record from an older text view), so the fit never shows other text."""
    from goalcover.tools.data.records import parse_record
    from goalcover.tools.data.readers import RawRecord

    try:
        parsed, _ = parse_record(RawRecord(line=sample.line, record=sample.record), sample.format)
        from goalcover.tools.data.records import text_parts

        parts = [Part(role, text) for role, text in text_parts(sample.format, parsed)]
    except (ValueError, TypeError, KeyError):
        return [Part("text", sample.text)]
    if SEPARATOR.join(p.text for p in parts) != sample.text:
        return [Part("text", sample.text)]
    return parts


def _hole(role: str, left_out: int, whole: int) -> str:
    """The line that stands in for a cut: how much of which part is left out."""
    if role == "response":
        return f"\n[… {left_out:,} of this response's {whole:,} characters left out to fit; its start and end are shown …]\n"
    return f"\n[… {left_out:,} characters of this {role} left out to fit …]\n"


def _cut_middle(text: str, left_out: int, role: str) -> str:
    """`text` with `left_out` characters taken from its middle and a line saying so."""
    keep = len(text) - left_out
    head = keep - keep // 2
    return text[:head] + _hole(role, left_out, len(text)) + text[len(text) - keep // 2:]


def fit_parts(parts: list[Part], max_chars: int) -> Fitted:
    """The parts joined, at most `max_chars` characters (the hole lines included): whole when they fit,
    else cut by the module's rule. Raises ValueError when `max_chars` cannot hold even the kept edges."""
    texts = [p.text for p in parts]
    total = len(SEPARATOR.join(texts))
    if total <= max_chars:
        return Fitted(SEPARATOR.join(texts))
    need = total - max_chars
    cut, roles = 0, []
    for role in CUT_ORDER:
        while need > 0:
            # The longest part of this role that can still give something.
            order = sorted((i for i, p in enumerate(parts) if p.role == role and len(texts[i]) == len(p.text)
                            and len(p.text) > 2 * EDGE_CHARS + len(_hole(role, 10**9, 10**9))),
                           key=lambda i: -len(texts[i]))
            if not order:
                break
            i = order[0]
            text = parts[i].text
            hole = len(_hole(role, 10**9, 10**9))  # the widest its line can be
            left_out = min(need + hole, len(text) - 2 * EDGE_CHARS)
            texts[i] = _cut_middle(text, left_out, role)
            need = len(SEPARATOR.join(texts)) - max_chars
            cut += left_out
            roles.append(role)
        if need <= 0:
            break
    if need > 0:
        raise ValueError(f"{max_chars:,} characters cannot hold this sample's kept parts; raise the judge's context")
    return Fitted(SEPARATOR.join(texts), cut, tuple(dict.fromkeys(roles)))


def fit_sample(sample: Sample, max_tokens: int) -> Fitted:
    """`sample`'s text within `max_tokens` (estimated tokens): whole when it fits, else cut by the rule."""
    max_chars = max_tokens * CHARS_PER_TOKEN
    if len(sample.text) <= max_chars:
        return Fitted(sample.text)
    return fit_parts(sample_parts(sample), max_chars)


def fit_text(text: str, max_chars: int) -> str:
    """A text with no known parts (a snippet for a person or the agent) in at most about `max_chars`
    characters: its start and its end, with a line in between saying how much was left out."""
    if len(text) <= max_chars:
        return text
    return fit_parts([Part("text", text)], max(max_chars, 2 * EDGE_CHARS + 200)).text


def fit_budget(context_tokens: int, frame_tokens: int, reply_tokens: int) -> int:
    """Tokens a sample may take in a call to a model with a `context_tokens` window, when the rest of
    the prompt takes `frame_tokens` and the reply up to `reply_tokens`: what is left, less 10% headroom
    for the estimate (HEADROOM). Raises ValueError when fewer than MIN_SAMPLE_TOKENS are left."""
    budget = int((context_tokens - frame_tokens - reply_tokens) * HEADROOM)
    if budget < MIN_SAMPLE_TOKENS:
        raise ValueError(
            f"a judge context of {context_tokens:,} tokens leaves {max(budget, 0):,} for the sample after the prompt "
            f"({frame_tokens:,}) and the reply ({reply_tokens:,}); raise GOALCOVER_JUDGE_CONTEXT_TOKENS"
        )
    return budget


def fit_view(sample: Sample, max_chars: int) -> str:
    """A capped view of `sample` for a person or the agent: at most about `max_chars` characters, cut by
    the same rule as the judge's (whole responses and instruction first); when even those do not fit,
    the start and end of the text (fit_text)."""
    if len(sample.text) <= max_chars:
        return sample.text
    try:
        return fit_parts(sample_parts(sample), max_chars).text
    except ValueError:
        return fit_text(sample.text, max_chars)


# Record fields a model is trained to write (synthesis style examples keep them whole first).
_RESPONSE_KEYS = {"output", "completion", "response", "chosen"}
_RESPONSE_ROLES = {"assistant", "gpt", "function_call"}


def fit_record(record: dict, max_chars: int) -> dict:
    """A copy of `record` whose JSON is at most about `max_chars` characters: the longest string values
    are cut in their middle (with a line saying so), the response's (`output`, `completion`, an
    assistant turn's content) only after every other; the keys and the shape stay as they are."""
    import copy
    import json

    out = copy.deepcopy(record)
    leaves: list[tuple[bool, list, object]] = []  # (is a response, container, key)

    def walk(node, response: bool) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        role = node.get("role", node.get("from")) if isinstance(node, dict) else None
        for key, value in items:
            here = response or key in _RESPONSE_KEYS or (role in _RESPONSE_ROLES and key in ("content", "value"))
            if isinstance(value, str):
                leaves.append((here, node, key))
            else:
                walk(value, here)

    walk(out, False)
    for response in (False, True):
        for _, node, key in sorted((leaf for leaf in leaves if leaf[0] == response), key=lambda leaf: -len(leaf[1][leaf[2]])):
            over = len(json.dumps(out, ensure_ascii=False)) - max_chars
            if over <= 0:
                return out
            text = node[key]
            hole = len(json.dumps(_hole("response", 10**9, 10**9)))  # the widest line, as JSON writes it
            if len(text) - 2 * EDGE_CHARS > hole:
                left_out = min(over + hole, len(text) - 2 * EDGE_CHARS)
                node[key] = _cut_middle(text, left_out, "response" if response else "text")
    return out
