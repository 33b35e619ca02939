"""The corruption experiment's domains: a dataset, its goal file, and per subgoal a corruption that removes
what that subgoal needs and as little else as it can.

A corruption is a pure function `(record, pool) -> record | None`: it returns a new record in the same
shape (same keys, same id), or None when it does not apply to this record (nothing to remove). `pool` is
every record of the file, for corruptions that borrow from another sample.

| domain | S1 | S2 | S3 | S4 | S5 |
|---|---|---|---|---|---|
| pubmedqa | drop the abstract | drop the question | drop the reasoning, keep "Answer: yes" | drop the verdict line | |
| contracts | summary of a clause not about the topic, for each of the five topics (termination, liability, privacy, changes, disputes) |||||
| mbpp | instruction becomes "Write a Python function." | drop the tests | flip operators (`<`/`>`, `+`/`-`, min/max …) | rename every variable to v1, v2 … | |
| humaneval | drop the docstring's prose, keep its examples | drop the examples, keep the prose | flip operators in the body | strip the type annotations | |
"""

from __future__ import annotations

import ast
import copy
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from goalcover.evals.harness import GOALS, SFT

Record = dict
Corrupt = Callable[[Record, list[Record]], Record | None]


@dataclass(frozen=True)
class Corruption:
    """One corruption: the subgoal it removes, a description, and the function making a corrupted record (None when it does not apply)."""
    subgoal_id: str
    what: str
    apply: Corrupt


@dataclass(frozen=True)
class Domain:
    """One dataset of the corruption experiment: its file, goal and corruptions."""
    name: str
    task: str
    file: Path
    goal: Path
    corruptions: tuple[Corruption, ...]


def pick(records: list[Record], corruptions: tuple[Corruption, ...], limit: int) -> list[Record]:
    """Up to `limit` records in file order, taken in turn for each corruption from those it applies to,
    so that every subgoal gets about the same number of corrupted samples."""
    chosen: list[Record] = []
    seen: set[int] = set()
    cursors = [0] * len(corruptions)
    while len(chosen) < limit:
        progressed = False
        for n, corruption in enumerate(corruptions):
            while cursors[n] < len(records):
                i = cursors[n]
                cursors[n] += 1
                if i not in seen and corruption.apply(records[i], records) is not None:
                    seen.add(i)
                    chosen.append(records[i])
                    progressed = True
                    break
            if len(chosen) >= limit:
                break
        if not progressed:
            break
    return chosen


# --- medical QA: pubmedqa_messages.jsonl -------------------------------------------------------------
# user: "Context:\n<abstract>\n\nQuestion: <question>"; assistant: "<reasoning>\n\nAnswer: yes|no|maybe"

_USER = re.compile(r"\AContext:\n(?P<context>.+)\n\nQuestion: (?P<question>.+)\Z", re.DOTALL)
_ANSWER = re.compile(r"\A(?P<reasoning>.+)\n\nAnswer: (?P<verdict>yes|no|maybe)\Z", re.DOTALL)


def _turns(record: Record) -> tuple[re.Match, re.Match] | None:
    roles = [m.get("role") for m in record.get("messages", [])]
    if roles != ["system", "user", "assistant"]:
        return None
    user, answer = _USER.match(record["messages"][1]["content"]), _ANSWER.match(record["messages"][2]["content"])
    return (user, answer) if user and answer else None


def _with_turns(record: Record, user: str | None = None, assistant: str | None = None) -> Record:
    out = copy.deepcopy(record)
    if user is not None:
        out["messages"][1]["content"] = user
    if assistant is not None:
        out["messages"][2]["content"] = assistant
    return out


def drop_abstract(record: Record, pool: list[Record]) -> Record | None:
    """The record without its context (the question only), or None when it has no parsable turns."""
    parts = _turns(record)
    return parts and _with_turns(record, user=f"Question: {parts[0]['question']}")


def drop_question(record: Record, pool: list[Record]) -> Record | None:
    """The record without its question (the context only), or None when it has no parsable turns."""
    parts = _turns(record)
    return parts and _with_turns(record, user=f"Context:\n{parts[0]['context']}")


def drop_reasoning(record: Record, pool: list[Record]) -> Record | None:
    """The record whose answer keeps the verdict but not the reasoning, or None."""
    parts = _turns(record)
    return parts and _with_turns(record, assistant=f"Answer: {parts[1]['verdict']}")


def drop_verdict(record: Record, pool: list[Record]) -> Record | None:
    """The record whose answer keeps the reasoning but not the verdict, or None."""
    parts = _turns(record)
    return parts and _with_turns(record, assistant=parts[1]["reasoning"])


# --- legal summarization: contracts_alpaca.jsonl -----------------------------------------------------
# The subgoals are topics. A clause about the topic keeps its text, but its summary is swapped for the
# summary of the next clause in the file that is not about the topic: the sample no longer teaches how to
# summarize that topic. (Its summary of any other topic in the same clause goes too: the leak is measured.)

CONTRACT_TOPICS = {
    "S1": r"terminat|suspend|deactivat",
    "S2": r"liab|warrant|indemn",
    "S3": r"personal (data|information)|privacy|personally identifiable",
    "S4": r"(chang|modif|amend|updat|revis)\w* (to )?(these|the|this|our) (terms|agreement)",
    "S5": r"arbitrat|dispute|governing law|class action|jurisdiction",
}
MIN_SUMMARY_WORDS = 5


def swap_summary(subgoal_id: str) -> Corrupt:
    """A corruption for topic `subgoal_id`: a clause about the topic gets the summary of the next clause that is not."""
    topic = re.compile(CONTRACT_TOPICS[subgoal_id], re.IGNORECASE)

    def corrupt(record: Record, pool: list[Record]) -> Record | None:
        if not topic.search(record.get("input", "")) or len(record.get("output", "").split()) < MIN_SUMMARY_WORDS:
            return None
        start = next((i for i, r in enumerate(pool) if r.get("id") == record.get("id")), -1) + 1
        for donor in pool[start:] + pool[:start]:
            summary = donor.get("output", "")
            if (not topic.search(donor.get("input", "")) and not topic.search(summary)
                    and len(summary.split()) >= MIN_SUMMARY_WORDS and summary != record["output"]):
                return {**record, "output": summary}
        return None

    corrupt.__name__ = f"swap_summary_{subgoal_id}"
    return corrupt


# --- code: shared by mbpp and humaneval --------------------------------------------------------------

_OP_FLIPS = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "!=", "!=": "==", "+": "-", "-": "+",
             "+=": "-=", "-=": "+=", "*": "/", "/": "*", "//": "*", "**": "*", "%": "//"}
_NAME_FLIPS = {"True": "False", "False": "True", "min": "max", "max": "min", "and": "or", "or": "and",
               "nlargest": "nsmallest", "nsmallest": "nlargest"}


def _splice(code: str, edits: list[tuple[int, int, int, str]]) -> str:
    """Replace (row, start col, end col) spans of single-line tokens, right to left so columns stay valid."""
    lines = code.splitlines(keepends=True)
    for row, start, end, text in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + text + line[end:]
    return "".join(lines)


def _tokens(code: str) -> list[tokenize.TokenInfo] | None:
    try:
        return list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def break_logic(code: str) -> str | None:
    """Flip every comparison, arithmetic operator, boolean and min/max: the code keeps its look and its
    names, but no longer computes the right thing. None if there is nothing to flip."""
    tokens = _tokens(code)
    if tokens is None:
        return None
    edits = []
    for tok in tokens:
        flips = _OP_FLIPS if tok.type == tokenize.OP else _NAME_FLIPS if tok.type == tokenize.NAME else {}
        if tok.string in flips and tok.start[0] == tok.end[0]:
            edits.append((tok.start[0], tok.start[1], tok.end[1], flips[tok.string]))
    return _splice(code, edits) if edits else None


def obscure_names(code: str) -> str | None:
    """Rename every parameter and local variable to v1, v2, … (function names stay, so the tests still
    call the same function, and so does the logic). None if the code does not parse or binds no name."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    keep = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    keep |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    bound: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            name = node.arg
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            name = node.id
        else:
            continue
        if name not in keep and name not in bound and name not in ("self", "_"):
            bound.append(name)
    tokens = _tokens(code)
    if not bound or tokens is None:
        return None
    taken = {t.string for t in tokens if t.type == tokenize.NAME}
    fresh = (f"v{i}" for i in range(1, 10_000) if f"v{i}" not in taken)
    names = {old: next(fresh) for old in bound}
    edits = []
    previous = None
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string in names and not (previous and previous.string == "."):
            edits.append((tok.start[0], tok.start[1], tok.end[1], names[tok.string]))
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            previous = tok
    return _splice(code, edits)


# --- code generation: mbpp_alpaca.jsonl (instruction, input = tests, output = code) -----------------

GENERIC_TASK = "Write a Python function."


def vague_task(record: Record, pool: list[Record]) -> Record | None:
    """The record with a generic instruction instead of its own, or None when it already has it."""
    return {**record, "instruction": GENERIC_TASK} if record.get("instruction", "").strip() != GENERIC_TASK else None


def drop_tests(record: Record, pool: list[Record]) -> Record | None:
    """The record without its test cases (input emptied), or None when it has none."""
    return {**record, "input": ""} if "assert" in record.get("input", "") else None


def mbpp_break_logic(record: Record, pool: list[Record]) -> Record | None:
    """The record with its solution's logic broken, or None when no change applies."""
    code = break_logic(record.get("output", ""))
    return {**record, "output": code} if code else None


def mbpp_obscure_names(record: Record, pool: list[Record]) -> Record | None:
    """The record with its solution's names made meaningless, or None when nothing changes."""
    code = obscure_names(record.get("output", ""))
    return {**record, "output": code} if code and code != record["output"] else None


# --- code generation: humaneval_prompt_completion.jsonl (prompt = signature + docstring, completion = body)
# Only doctest-style docstrings are used: prose first, then ">>> call" lines with their results.

_DOCSTRING = re.compile(r'("""|\'\'\')(?P<body>.*?)\1', re.DOTALL)
_EXAMPLES_HEADER = re.compile(r"^\s*(for )?(examples?|example usage)\s*:?\s*$", re.IGNORECASE)


def _docstring_parts(prompt: str) -> tuple[re.Match, list[str], list[str], str] | None:
    """The target function's (last) docstring split into prose lines, example lines, and the closing indent."""
    found = list(_DOCSTRING.finditer(prompt))
    if not found:
        return None
    match = found[-1]
    lines = match["body"].split("\n")
    closing = lines.pop() if len(lines) > 1 and not lines[-1].strip() else ""
    start = next((i for i, l in enumerate(lines) if l.strip().startswith(">>>")), None)
    if start is None:
        return None
    while start > 0 and (_EXAMPLES_HEADER.match(lines[start - 1]) or not lines[start - 1].strip()):
        start -= 1
    prose, examples = lines[:start], lines[start:]
    if not any(l.strip() for l in prose):
        return None
    return match, prose, examples, closing


def _replace_docstring(prompt: str, match: re.Match, lines: list[str], closing: str) -> str:
    quote = match.group(1)
    body = "\n".join(lines) + ("\n" + closing if closing or len(lines) > 1 else "")
    return prompt[: match.start()] + quote + body + quote + prompt[match.end():]


def drop_prose(record: Record, pool: list[Record]) -> Record | None:
    """The record whose prompt docstring keeps its examples but not its description, or None."""
    parts = _docstring_parts(record.get("prompt", ""))
    if parts is None:
        return None
    match, _, examples, closing = parts
    examples = [l for l in examples if not _EXAMPLES_HEADER.match(l) and l.strip()]
    return {**record, "prompt": _replace_docstring(record["prompt"], match, [""] + examples, closing)}


def drop_examples(record: Record, pool: list[Record]) -> Record | None:
    """The record whose prompt docstring keeps its description but not its examples, or None."""
    parts = _docstring_parts(record.get("prompt", ""))
    if parts is None:
        return None
    match, prose, _, closing = parts
    while prose and not prose[-1].strip():
        prose.pop()
    return {**record, "prompt": _replace_docstring(record["prompt"], match, prose, closing)}


def strip_annotations(code: str) -> str | None:
    """Remove parameter and return annotations from every `def` header (and `typing` imports)."""
    out: list[str] = []
    i = 0
    changed = False
    for header in re.finditer(r"^[ \t]*def \w+\(", code, re.MULTILINE):
        if header.start() < i:
            continue
        out.append(code[i : header.end()])
        j, depth, skipping = header.end(), 1, False
        while j < len(code) and depth > 0:
            c = code[j]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            if depth == 1 and c == ":" and not skipping:
                skipping, changed = True, True
            elif depth <= 1 and c in ",=)" and skipping:
                skipping = False
            if not skipping:
                out.append(c)
            j += 1
        colon = code.find(":", j)
        arrow = code.find("->", j)
        if arrow != -1 and arrow < colon:
            out.append(code[j:arrow].rstrip())
            changed = True
            j = colon
        i = j
    out.append(code[i:])
    if not changed:
        return None
    result = "".join(out)
    return re.sub(r"^from typing import [^\n]*\n(\s*\n)?", "", result, flags=re.MULTILINE)


def humaneval_break_logic(record: Record, pool: list[Record]) -> Record | None:
    """The record with its completion's logic broken, or None."""
    if _docstring_parts(record.get("prompt", "")) is None:
        return None
    code = break_logic(record.get("completion", ""))
    return {**record, "completion": code} if code else None


def humaneval_untyped(record: Record, pool: list[Record]) -> Record | None:
    """The record with the type annotations removed from its prompt, or None."""
    if _docstring_parts(record.get("prompt", "")) is None:
        return None
    prompt = strip_annotations(record.get("prompt", ""))
    return {**record, "prompt": prompt} if prompt else None


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain("pubmedqa", "medical QA", SFT / "pubmedqa_messages.jsonl", GOALS / "pubmedqa.yaml", (
            Corruption("S1", "drop the abstract, keep the question", drop_abstract),
            Corruption("S2", "drop the question, keep the abstract", drop_question),
            Corruption("S3", 'drop the reasoning, keep "Answer: yes/no"', drop_reasoning),
            Corruption("S4", "drop the verdict line, keep the reasoning", drop_verdict),
        )),
        Domain("contracts", "legal summarization", SFT / "contracts_alpaca.jsonl", GOALS / "contracts.yaml", tuple(
            Corruption(sid, "summary of another clause, not about the topic", swap_summary(sid)) for sid in CONTRACT_TOPICS
        )),
        Domain("mbpp", "code generation", SFT / "mbpp_alpaca.jsonl", GOALS / "mbpp.yaml", (
            Corruption("S1", f'instruction becomes "{GENERIC_TASK}"', vague_task),
            Corruption("S2", "drop the tests", drop_tests),
            Corruption("S3", "flip operators, booleans, min/max", mbpp_break_logic),
            Corruption("S4", "rename variables to v1, v2, …", mbpp_obscure_names),
        )),
        Domain("humaneval", "code generation", SFT / "humaneval_prompt_completion.jsonl", GOALS / "humaneval.yaml", (
            Corruption("S1", "drop the docstring's prose, keep its examples", drop_prose),
            Corruption("S2", "drop the docstring's examples, keep the prose", drop_examples),
            Corruption("S3", "flip operators in the body", humaneval_break_logic),
            Corruption("S4", "strip the type annotations", humaneval_untyped),
        )),
    )
}
