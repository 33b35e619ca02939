"""Long samples (issue #23): which samples does the fit rule change, and what does a cut prompt look like?

1. For every sample of the shared sets (the `sft/*.jsonl` files under --datasets, default the vendored
   tests/data), with the dataset's own goal (evals/goals), counts the samples whose judge prompt differs
   from the one before the rule (scoring.judge_text gives them a fit tag), per judge mode, at the default
   judge context (fit.DEFAULT_CONTEXT_TOKENS) and at `goalcover local serve`'s 4,096 tokens. Samples whose
   record does not rebuild its text in parts (fit.sample_parts falls back to one part) are counted too.
2. Builds a 40,000-character sample of each shape from that data (`long_samples`, also used by
   tests/tools/judge/test_fit.py) and prints, per shape, how its judge prompt is fitted at 4,096 tokens:
   characters kept and cut, the roles cut, and whether the whole response and instruction are in it.

    python -m goalcover.evals.long_samples [--datasets DIR] [--show SHAPE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from goalcover.tools.judge.fit import DEFAULT_CONTEXT_TOKENS, Part, fit_sample, sample_parts
from goalcover.tools.data.records import parse_record, read_samples
from goalcover.tools.core.shapes import Goal, Sample
from goalcover.tools.data.readers import RawRecord

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "tests" / "data"
GOALS = ROOT / "evals" / "goals"
LOCAL_CONTEXT_TOKENS = 4_096  # `goalcover local serve --ctx` default
LONG_CHARS = 40_000
MODES = ("batched", "pair", "probe")


def _records(path: Path, n: int | None = None) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[:n] if n else rows


def _filler(pieces: list[str], chars: int) -> str:
    """The pieces joined by blank lines, repeated as needed, cut to exactly `chars` characters."""
    out, i = [], 0
    while sum(len(p) + 2 for p in out) < chars:
        out.append(pieces[i % len(pieces)])
        i += 1
    return "\n\n".join(out)[:chars]


def as_sample(record: dict[str, Any], shape: str, sample_id: str) -> Sample:
    """A Sample of `record` read as ingest reads it (its text view from ingest.parse_record)."""
    _, text = parse_record(RawRecord(line=1, record=record), shape)  # type: ignore[arg-type]
    return Sample(id=sample_id, format=shape, source="built", line=1, record=record, text=text)  # type: ignore[arg-type]


def long_samples(data: Path = DATASETS, chars: int = LONG_CHARS) -> dict[str, tuple[Sample, list[str], list[str]]]:
    """{name: (a sample of about `chars` characters, its instruction texts, its response texts)} built
    from the real records in `data`/sft: one per shape (alpaca, messages, sharegpt, prompt-completion,
    text; the long part is context where the shape has context: a document in the input, the system
    prompt, an earlier turn; the prompt itself for prompt-completion, the whole text for text), and
    "long-response", an alpaca sample whose output alone is `chars` long. The texts are as they appear
    in the sample's text view; for prompt-completion and text the instruction list is empty (the prompt
    is the long part: its start and end are what must survive)."""
    sft = data / "sft"
    contracts = _records(sft / "contracts_alpaca.jsonl", 200)
    pubmed = _records(sft / "pubmedqa_messages.jsonl", 60)
    humaneval = _records(sft / "humaneval_prompt_completion.jsonl", 164)
    clauses = [r["input"] for r in contracts if r.get("input")]
    abstracts = [r["messages"][1]["content"].split("\n\nQuestion:")[0] for r in pubmed]
    out: dict[str, tuple[Sample, list[str], list[str]]] = {}

    first = contracts[0]
    fixed = len(first["instruction"]) + len(first["output"]) + 40
    record = {"instruction": first["instruction"], "input": _filler(clauses, chars - fixed), "output": first["output"]}
    out["alpaca"] = (as_sample(record, "alpaca", "long-alpaca"), [f"Instruction: {record['instruction']}"],
                     [f"Response: {record['output']}"])

    last = pubmed[-1]["messages"]
    system = last[0]["content"] + "\n\nReference abstracts:\n\n"
    question, answer = last[1]["content"].split("\n\nQuestion:")[-1].strip(), last[2]["content"]
    fixed = len(system) + len(question) + len(answer) + 40
    record = {"messages": [{"role": "system", "content": system + _filler(abstracts, chars - fixed)},
                           {"role": "user", "content": f"Question: {question}"}, {"role": "assistant", "content": answer}]}
    out["messages"] = (as_sample(record, "messages", "long-messages"), [f"user: Question: {question}"], [f"assistant: {answer}"])

    one, two = contracts[1], contracts[2]
    fixed = len(one["output"]) + len(two["instruction"]) + len(two["output"]) + 80
    document = "Here is the contract:\n\n" + _filler(clauses[3:], chars - fixed)
    record = {"conversations": [{"from": "human", "value": document}, {"from": "gpt", "value": one["output"]},
                                {"from": "human", "value": two["instruction"]}, {"from": "gpt", "value": two["output"]}]}
    out["sharegpt"] = (as_sample(record, "sharegpt", "long-sharegpt"), [f"user: {two['instruction']}"],
                       [f"assistant: {one['output']}", f"assistant: {two['output']}"])

    target = humaneval[-1]
    examples = [r["prompt"] + r["completion"] for r in humaneval[:-1]]
    fixed = len(target["prompt"]) + len(target["completion"]) + 40
    record = {"prompt": _filler(examples, chars - fixed) + "\n\n" + target["prompt"], "completion": target["completion"]}
    out["prompt-completion"] = (as_sample(record, "prompt-completion", "long-prompt-completion"), [],
                                [f"Completion: {target['completion']}"])

    record = {"text": _filler([f"{r['instruction']}\n\n{r.get('input') or ''}\n\n{r['output']}" for r in contracts], chars)}
    out["text"] = (as_sample(record, "text", "long-text"), [], [])

    record = {"instruction": first["instruction"], "input": clauses[0], "output": _filler([r["output"] for r in contracts], chars)}
    out["long-response"] = (as_sample(record, "alpaca", "long-response"), [f"Instruction: {record['instruction']}"], [])
    return out


def load_goal(name: str) -> Goal:
    """The goal of one shared set (evals/goals/NAME.yaml)."""
    return Goal.model_validate(yaml.safe_load((GOALS / f"{name}.yaml").read_text(encoding="utf-8")))


def changed_counts(data: Path = DATASETS) -> list[dict[str, Any]]:
    """Per shared file: samples, samples whose parts do not rebuild the text, and per (context, mode)
    the samples whose judge prompt differs from the one before the fit rule."""
    from goalcover.tools.judge.scoring import judge_text

    rows = []
    for path in sorted((data / "sft").glob("*.jsonl")):
        samples = read_samples(path).samples
        goal = load_goal(path.stem.split("_")[0])
        row: dict[str, Any] = {"file": path.name, "samples": len(samples),
                               "max_chars": max(len(s.text) for s in samples),
                               "unparted": sum(len(sample_parts(s)) == 1 and s.format != "text" for s in samples)}
        for context in (DEFAULT_CONTEXT_TOKENS, LOCAL_CONTEXT_TOKENS):
            for mode in MODES:
                row[f"{mode}@{context}"] = sum(judge_text(goal, s, mode, False, context)[1] != "" for s in samples)  # type: ignore[arg-type]
        rows.append(row)
    return rows


def describe(name: str, sample: Sample, instructions: list[str], responses: list[str], goal: Goal,
             context: int = LOCAL_CONTEXT_TOKENS, mode: str = "batched") -> dict[str, Any]:
    """How one sample's judge text is fitted: characters of the sample and of the fitted text, characters
    cut, roles cut, and whether every instruction and response text is whole in it."""
    from goalcover.tools.judge.scoring import sample_budget

    budget = sample_budget(goal, mode, False, context)  # type: ignore[arg-type]
    fitted = fit_sample(sample, budget)
    parts: list[Part] = sample_parts(sample)
    return {
        "sample": name, "chars": len(sample.text), "parts": "+".join(p.role[0] for p in parts),
        "budget_tokens": budget, "kept_chars": len(fitted.text), "cut_chars": fitted.cut, "cut_roles": ",".join(fitted.roles),
        "instruction_whole": all(t in fitted.text for t in instructions),
        "response_whole": all(t in fitted.text for t in responses),
        "start_and_end": fitted.text[:200] == sample.text[:200] and fitted.text[-200:] == sample.text[-200:],
    }


def main(argv: list[str] | None = None) -> None:
    """Print the counts over the shared sets, then each long sample's fit (and one fitted text with --show)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="a folder with sft/*.jsonl (default: tests/data)")
    parser.add_argument("--show", help="print the fitted judge text of this long sample (e.g. messages)")
    args = parser.parse_args(argv)
    print("Samples whose judge prompt the fit rule changes (context tokens: default / local serve):")
    for row in changed_counts(args.datasets):
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    goal = load_goal("contracts")
    print(f"\n{LONG_CHARS:,}-character samples, judge prompt (batched, goal: contracts) at {LOCAL_CONTEXT_TOKENS:,} tokens:")
    built = long_samples(args.datasets)
    for name, (sample, instructions, responses) in built.items():
        print("  " + "  ".join(f"{k}={v}" for k, v in describe(name, sample, instructions, responses, goal).items()))
    if args.show:
        from goalcover.tools.judge.scoring import judge_text

        text, tag = judge_text(goal, built[args.show][0], "batched", False, LOCAL_CONTEXT_TOKENS)
        print(f"\n--- {args.show}: fitted judge text (fit tag {tag!r}) ---\n{text}")


if __name__ == "__main__":
    main()
