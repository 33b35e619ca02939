"""Goal-conditioned synthetic samples for a gap: generate, validate, de-duplicate, judge, keep for review.

Candidates are written in the dataset's own shape, conditioned on the goal, the subgoal, the gap and a few
nearest real samples as style examples. Each is checked like an ingested record, dropped if it duplicates
the data or another candidate (same hash, or embedding cosine above the threshold), judged against every
subgoal by the same judge as the data, and kept only if it supports the target subgoal. Kept samples wait
for the user's review (proposed / accepted / rejected); accepted ones join coverage and the export.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import numpy as np
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, create_model

from goalcover.tools.core.errors import BadInput
from goalcover.tools.judge.fit import fit_record
from goalcover.tools.fill.gaps import Gap, get_gap
from goalcover.tools.core.goal import current_goal
from goalcover.tools.data.records import RawRecord, parse_record
from goalcover.tools.judge.llm import JsonCaller, Usage
from goalcover.tools.core.shapes import Sample, Shape, content_hash
from goalcover.tools.judge.prompts import SYNTH_PROMPT_VERSION, SYNTH_SYSTEM, SYNTH_USER, format_subgoals
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.core.untrusted import untrusted
from goalcover.tools.core.lock import writes, writing

BATCH = 5
STYLE_EXAMPLES = 3
EXAMPLE_CHARS = 1500
ReviewState = Literal["proposed", "accepted", "rejected"]


class SyntheticSample(BaseModel):
    """A Sample plus where it came from and what the judge and the user said."""

    id: str
    gap_id: str
    subgoal_id: str
    format: Shape
    record: dict[str, Any]
    text: str
    model: str
    prompt_version: str
    judge_score: int | None
    judge_explanation: str | None
    state: ReviewState

    def as_sample(self) -> Sample:
        """This candidate as a Sample (source `synthetic`), for judging and coverage."""
        return Sample(id=self.id, format=self.format, source="synthetic", line=0, record=self.record, text=self.text)


class SynthesisResult(BaseModel):
    """`goalcover synthesize --json`; the first five keys are fixed by the design."""

    gap_id: str
    generated: int = Field(description="candidates the model returned")
    kept: int = Field(description="candidates kept for review: valid, not duplicates, supported by the judge")
    duplicates: int
    rejected_by_judge: int
    invalid: int = Field(0, description="returned candidates that are not a valid record of the dataset's shape")
    requested: int = 0
    missing: int = Field(0, description="requested candidates the model did not return (a failed or short reply)")
    kept_ids: list[str] = []
    calls: int = 0
    cost: float = 0.0


# --- the shapes the model writes --------------------------------------------------------------------

class _Turn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class _ShareTurn(BaseModel):
    from_: Literal["system", "human", "gpt"] = Field(alias="from")
    value: str


SHAPE_OUTPUT: dict[str, type[BaseModel]] = {
    "alpaca": create_model("AlpacaSample", instruction=(str, ...), input=(str, ""), output=(str, ...)),
    "messages": create_model("MessagesSample", messages=(list[_Turn], Field(min_length=2))),
    "sharegpt": create_model("ShareGPTSample", conversations=(list[_ShareTurn], Field(min_length=2))),
    "prompt-completion": create_model("PromptCompletionSample", prompt=(str, ...), completion=(str, ...)),
    "text": create_model("TextSample", text=(str, ...)),
}


def batch_schema(shape: Shape) -> type[BaseModel]:
    """The JSON shape the synth model writes: a list of candidates, each with its aspect, difficulty and a
    sample in the dataset's `shape`."""
    candidate = create_model(
        "Candidate",
        aspect=(str, Field(description="the aspect of the gap this sample covers")),
        difficulty=(Literal["easy", "medium", "hard"], ...),
        sample=(SHAPE_OUTPUT[shape], ...),
    )
    return create_model("CandidateBatch", candidates=(list[candidate], Field(min_length=1)))  # type: ignore[valid-type]


# --- storage ----------------------------------------------------------------------------------------

def list_synthetic(ws: Workspace, gap_id: str | None = None, state: ReviewState | None = None) -> list[SyntheticSample]:
    """The synthetic samples, oldest first, optionally of one gap and/or review state."""
    return [SyntheticSample(**row) for row in ws.store.synthetic_rows(gap_id, state)]


def _save(ws: Workspace, items: list[SyntheticSample]) -> None:
    ws.store.save_synthetic([{**s.model_dump(), "content_hash": content_hash(s.text)} for s in items])


def review(
    ws: Workspace, accept: list[str] = (), reject: list[str] = (), gap_id: str | None = None  # type: ignore[assignment]
) -> list[SyntheticSample]:
    """Set review states (`all` selects every proposed sample, of `gap_id` if given); returns the samples
    (of `gap_id`, if given). Raises BadInput for an unknown id or one both accepted and rejected."""
    known = {s.id: s for s in list_synthetic(ws, gap_id)}
    proposed = [i for i, s in known.items() if s.state == "proposed"]

    def resolve(ids) -> list[str]:
        out: list[str] = []
        for i in ids:
            if i == "all":
                out += proposed
            elif i in known:
                out.append(i)
            else:
                raise BadInput(f"no synthetic sample {i!r}{f' in gap {gap_id}' if gap_id else ''}; see `goalcover review`")
        return out

    accepted, rejected = resolve(accept), resolve(reject)
    if set(accepted) & set(rejected):
        raise BadInput(f"accepted and rejected at once: {', '.join(sorted(set(accepted) & set(rejected)))}")
    if accepted or rejected:  # a change: one writer at a time (listing alone takes no lock)
        from goalcover.tools.history.versions import record_version

        with writing(ws, "review"):
            ws.store.set_synthetic_states(accepted, rejected)
            record_version(ws, "fill", f"review: {len(accepted)} accepted, {len(rejected)} rejected")
    return list_synthetic(ws, gap_id)


# --- generation -------------------------------------------------------------------------------------

def _style_examples(ws: Workspace, gap: Gap, query: str) -> list[dict]:
    ids = gap.sample_ids[:1] + [h.id for h in ws.index.search(query, k=STYLE_EXAMPLES + 1)]
    seen: list[str] = []
    for i in ids:
        if i not in seen:
            seen.append(i)
    return [s.record for s in ws.store.samples(seen[:STYLE_EXAMPLES])]


def _example_text(record: dict) -> str:
    """A style example as JSON, at most about EXAMPLE_CHARS: a longer record keeps its shape and its whole
    response where it can, its longest fields cut in the middle (fit.fit_record); neutralised for the prompt."""
    shown = {k: v for k, v in record.items() if k != "id"}
    text = json.dumps(shown, ensure_ascii=False)
    return untrusted(text if len(text) <= EXAMPLE_CHARS else json.dumps(fit_record(shown, EXAMPLE_CHARS), ensure_ascii=False))


def _to_record(shape: Shape, produced: BaseModel, template: dict) -> dict[str, Any]:
    record = produced.model_dump(by_alias=True)
    # Keep the dataset's extra columns (ids, labels) so exports stay rectangular; values we cannot know stay empty.
    extra = {k: None for k in template if k not in record}
    return {**extra, **record}


@writes("synthesize")
async def synthesize(ws: Workspace, gap_id: str, n: int = 20, guidance: str | None = None) -> SynthesisResult:
    """Write `n` candidates for gap `gap_id` in the dataset's shape (in calls of BATCH), keep the valid,
    non-duplicate ones the judge finds supporting the gap's subgoal, and store them as `proposed`.

    Raises BadInput (n < 1, unknown gap, no samples) and ConfigError (no synth or judge model).
    Cancelling stops after the current call; candidates already judged are kept in the judgment cache.
    """
    if n < 1:
        raise BadInput("synthesize: -n must be at least 1")
    gap = get_gap(ws, gap_id)
    goal = current_goal(ws)
    assert goal is not None
    subgoal = goal.subgoal(gap.subgoal_id)
    sources = ws.store.sources()
    if not sources:
        raise BadInput(f"the workspace {ws.root} holds no samples yet")
    shape: Shape = sources[0]["shape"]
    examples = _style_examples(ws, gap, f"{subgoal.title}. {gap.description}")
    config = ws.settings.model_for("synth")
    caller = JsonCaller(config, ws.settings)
    async with caller:
        produced, usage, missing = await _generate(caller, goal, subgoal, gap, shape, examples, n, guidance)
    candidates, invalid = _candidates(produced, shape, examples[0] if examples else {}, gap)
    kept, duplicates = await asyncio.to_thread(_deduplicate, ws, candidates)
    accepted, rejected_by_judge = await _judge_candidates(ws, kept, subgoal, gap, shape, config.model, usage)
    _save(ws, accepted)
    return SynthesisResult(
        gap_id=gap.id,
        generated=len(produced),
        kept=len(accepted),
        duplicates=duplicates,
        rejected_by_judge=rejected_by_judge,
        invalid=invalid,
        requested=n,
        missing=missing,
        kept_ids=[s.id for s in accepted],
        calls=usage.calls,
        cost=round(usage.cost, 6),
    )


async def _generate(caller: JsonCaller, goal, subgoal, gap, shape: Shape, examples: list[dict], n: int,
                    guidance: str | None) -> tuple[list[tuple[str, str, BaseModel]], Usage, int]:
    """Ask the synth model for `n` candidates in calls of BATCH, each call told what was already written:
    ([(aspect, difficulty, sample model)], usage, how many candidates the model did not return)."""
    produced: list[tuple[str, str, BaseModel]] = []
    usage = Usage()
    missing = 0
    difficulties = ["easy", "medium", "hard"]
    schema = batch_schema(shape)
    for start in range(0, n, BATCH):
        size = min(BATCH, n - start)
        avoid = ""
        if produced:
            listed = "\n".join(f"- {untrusted(a)}: {untrusted(json.dumps(p.model_dump(by_alias=True), ensure_ascii=False)[:100])}" for a, _, p in produced)
            avoid = f"\nAlready written (cover other aspects, do not repeat these):\n{listed}"
        messages = [
            SystemMessage(
                SYNTH_SYSTEM.format(
                    goal=goal.text,
                    subgoal=format_subgoals([subgoal]),
                    gap_label=untrusted(gap.label),
                    gap_description=untrusted(gap.description),
                    fill_hint=untrusted(gap.fill_hint or "samples that clearly exercise the subgoal"),
                    n=size,
                    shape=shape,
                    difficulties=", ".join(difficulties[(start // BATCH + i) % 3] for i in range(3)),
                    guidance=f"\nThe user asks: {guidance}" if guidance else "",
                )
            ),
            HumanMessage(SYNTH_USER.format(examples="\n".join(_example_text(r) for r in examples), avoid=avoid)),
        ]
        result = await caller.call(messages, schema, name="synthetic_samples", max_tokens=1200 * size)
        usage.add(result.usage)
        if result.value is None:
            missing += size
            continue
        got = result.value.candidates[:size]  # type: ignore[attr-defined]
        missing += max(0, size - len(got))
        produced += [(c.aspect, c.difficulty, c.sample) for c in got]
    return produced, usage, missing


def _candidates(produced: list[tuple[str, str, BaseModel]], shape: Shape, template: dict, gap) -> tuple[list[Sample], int]:
    """The generated samples as records in the dataset's shape (ids `syn-<gap>-<content hash>`): (the
    ones that parse as that shape, how many did not)."""
    invalid = 0
    candidates: list[Sample] = []
    for _aspect, _difficulty, output in produced:
        record = _to_record(shape, output, template)
        try:
            _, text = parse_record(RawRecord(0, record), shape)
        except ValueError:
            invalid += 1
            continue
        sid = f"syn-{gap.id.lower()}-{content_hash(text)[:10]}"
        if "id" in template:
            record["id"] = sid
        candidates.append(Sample(id=sid, format=shape, source="synthetic", line=0, record=record, text=text))
    return candidates, invalid


async def _judge_candidates(ws: Workspace, kept: list[Sample], subgoal, gap, shape: Shape, model: str,
                            usage: Usage) -> tuple[list[SyntheticSample], int]:
    """Judge the kept candidates in the current judge's mode (its calls and cost added to `usage`): (those
    that support the gap's subgoal, as proposed synthetic samples; how many the judge rejected)."""
    if not kept:
        return [], 0
    from goalcover.tools.judge import scoring
    from goalcover.tools.judge.judge_ref import JudgeRef, current_judge

    current = current_judge(ws)
    judge = JudgeRef.resolve(ws.settings, current.mode if current else None)
    judged = await scoring.score(ws, judge, samples=kept)
    usage.calls += judged.calls
    usage.cost += judged.cost
    verdicts = ws.store.judgments_for(*judge.key)
    accepted: list[SyntheticSample] = []
    rejected = 0
    for sample in kept:
        verdict = verdicts.get((sample.content_hash, subgoal.hash))
        if verdict is None or verdict[0] < ws.settings.support_threshold:
            rejected += 1
            continue
        accepted.append(
            SyntheticSample(
                id=sample.id, gap_id=gap.id, subgoal_id=subgoal.id, format=shape, record=sample.record, text=sample.text,
                model=model, prompt_version=SYNTH_PROMPT_VERSION, judge_score=verdict[0],
                judge_explanation=verdict[1], state="proposed",
            )
        )
    return accepted, rejected


def _deduplicate(ws: Workspace, candidates: list[Sample]) -> tuple[list[Sample], int]:
    """Drop exact and near duplicates of the dataset, of earlier synthetic samples and of each other."""
    from goalcover.tools.data.embeddings import embed

    if not candidates:
        return [], 0
    known_hashes = set(h for h, _ in ws.store.sample_hashes().values())
    known_hashes |= {content_hash(s.text) for s in list_synthetic(ws)}
    vectors = embed([c.text for c in candidates], ws.settings.embed_batch_size)
    earlier = list_synthetic(ws)
    earlier_vectors = embed([s.text for s in earlier], ws.settings.embed_batch_size) if earlier else np.zeros((0, vectors.shape[1]))
    threshold = ws.settings.dedup_threshold
    collection = ws.index.collection()
    nearest = collection.query(query_embeddings=vectors, n_results=1, include=["distances"]) if collection.count() else None
    kept: list[Sample] = []
    kept_vectors: list[np.ndarray] = []
    duplicates = 0
    for i, candidate in enumerate(candidates):
        sim_data = 1.0 - nearest["distances"][i][0] if nearest and nearest["distances"][i] else 0.0
        sims = [float(vectors[i] @ v) for v in kept_vectors] + [float(vectors[i] @ v) for v in earlier_vectors]
        if candidate.content_hash in known_hashes or sim_data >= threshold or any(s >= threshold for s in sims):
            duplicates += 1
            continue
        known_hashes.add(candidate.content_hash)
        kept.append(candidate)
        kept_vectors.append(vectors[i])
    return kept, duplicates
