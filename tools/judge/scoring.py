"""The LLM judge over samples × subgoals: plan, run (async, bounded, rate-limited, resumable), index.

Three modes: `batched` (one call scores one sample against every subgoal it still needs), `pair` (one
call per sample × subgoal) and `probe` (one yes/no token per sample × subgoal, its probability the score,
explanations on demand: tools/judge/probe.py). Each judgment is committed to SQLite the moment it arrives, keyed by
(sample content hash, subgoal hash, prompt version, model): a killed run loses nothing it was told, and a
rerun pays only for what is missing — new samples, edited subgoals, earlier failures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from itertools import islice
from dataclasses import dataclass
from typing import Literal, get_args

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, create_model

from goalcover.tools.core.store import INDEXED_SCORE_KEYS, JUDGE_KEY
from goalcover.tools.core.errors import BadInput
from goalcover.tools.judge.fit import DEFAULT_CONTEXT_TOKENS, MIN_SAMPLE_TOKENS, fit_budget, fit_sample
from goalcover.tools.judge.geval import weighted_scores
from goalcover.tools.core.goal import current_goal
from goalcover.tools.judge.llm import BulkJsonCaller, JsonCaller, Limits, Result, Usage
from goalcover.tools.core.tokens import CHARS_PER_TOKEN, estimate_tokens
from goalcover.tools.core.shapes import Goal, Sample, Subgoal, content_hash
from goalcover.tools.core.lock import writes
from goalcover.tools.judge.prompts import (
    JUDGE_ANCHORS, JUDGE_PAIR_PROMPT_VERSION, JUDGE_PAIR_SYSTEM, JUDGE_PAIR_USER, JUDGE_PROMPT_VERSION, JUDGE_SYSTEM,
    JUDGE_USER, PROBE_PROMPT_VERSION, RUBRIC, clipped, format_subgoals, neutralise,
)
from goalcover.tools.judge.fit_store import fits_of, save_fits
from goalcover.tools.core.workspace import Workspace

Mode = Literal["batched", "pair", "probe"]
MODES: tuple[str, ...] = get_args(Mode)
# Before issue #23 the judge read the first 12,000 characters of a sample. A sample whose fitted text
# (tools/judge/fit.py) is what that gave gets exactly that prompt and keeps its judgments; any other is cut or
# shown whole under a FIT_VERSION tag (judge_text), so only those samples are judged again.
JUDGE_MAX_CHARS = 12_000
FIT_VERSION = "fit1"
# What one verdict costs in output tokens, for estimates before any call is made.
EST_TOKENS_PER_VERDICT = 60
# An explanation is one or two sentences; a verdict that runs past this is a model rambling.
MAX_TOKENS_PER_VERDICT = 200
Progress = Callable[..., None]


def check_mode(mode: str) -> None:
    """Raises BadInput naming the modes when `mode` is not one of MODES."""
    if mode not in MODES:
        raise BadInput(f"--mode {mode!r}: choose batched, pair or probe")


def est_output_tokens(mode: Mode, pairs: int) -> int:
    """Output tokens `pairs` judgments are expected to cost before any call: a probe writes one token, a
    verdict with its explanation ~EST_TOKENS_PER_VERDICT."""
    return pairs * (1 if mode == "probe" else EST_TOKENS_PER_VERDICT)


class Verdict(BaseModel):
    """The judge's verdict on one sample × subgoal pair: an explanation, then a score 1-5."""

    explanation: str = Field(min_length=1, description="what the sample shows and what it lacks for this subgoal")
    # The enum lets grammar-constrained local servers (llama.cpp) allow only 1-5; min/max alone they ignore.
    score: int = Field(
        ge=1, le=5, json_schema_extra={"enum": [1, 2, 3, 4, 5]},
        description="1 unrelated · 2 on topic, not exercised · 3 partly · 4 clearly · 5 exemplary",
    )


VERDICT_SCHEMA = Verdict.model_json_schema()


@lru_cache(maxsize=256)
def batched_schema(subgoal_ids: tuple[str, ...]) -> tuple[type[BaseModel], dict]:
    """One required key per subgoal id: the model cannot skip a subgoal without the reply failing.

    Returns the model and its JSON schema, built once per set of ids (not once per call).
    """
    model = create_model("BatchedVerdict", **{sid: (Verdict, ...) for sid in subgoal_ids})  # type: ignore[call-overload]
    return model, model.model_json_schema()


def prompt_version(mode: Mode, anchors: bool = False) -> str:
    """The cache key's prompt version for a mode: judge-v1/batched, judge-v2/pair, with +anchors when the
    rubric has worked examples."""
    if mode == "probe":
        return f"{PROBE_PROMPT_VERSION}/probe"  # the probe has no rubric, so no anchors
    base = JUDGE_PAIR_PROMPT_VERSION if mode == "pair" else JUDGE_PROMPT_VERSION
    return f"{base}{'+anchors' if anchors else ''}/{mode}"


def sample_budget(goal: Goal, mode: Mode, anchors: bool = False, context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> int:
    """Tokens (estimated) a sample may take in a judge call of `mode` within `context_tokens`: the window
    less the prompt around the sample and the longest reply, both sized for the goal's whole subgoal list
    (so a sample's fit does not depend on which of its subgoals are still missing). Raises BadInput when
    the window is too small for that prompt (fit.fit_budget)."""
    empty = Sample(id="", format="text", source="", line=0, record={}, text="")
    if mode == "probe":
        from goalcover.tools.judge.probe import probe_messages

        longest = max(goal.subgoals, key=lambda g: len(format_subgoals([g])))
        frame, reply = probe_messages(goal, longest, empty, ""), 1
    else:
        frame = _judge_messages(goal, goal.subgoals, empty, "", anchors, mode)
        reply = MAX_TOKENS_PER_VERDICT * (len(goal.subgoals) if mode == "batched" else 1)
    try:
        return fit_budget(context_tokens, sum(estimate_tokens(str(m.content)) for m in frame), reply)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def judge_text(goal: Goal, sample: Sample, mode: Mode, anchors: bool = False,
               context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> tuple[str, str]:
    """(the sample's text as the judge reads it, its fit tag). The tag is "" when that text is what the
    judge read before issue #23 (the sample is whole and at most JUDGE_MAX_CHARS), else FIT_VERSION and a
    hash of the text: tools/judge/fit_store.py keeps it with the judgments, so a judgment made on other text is
    stale and only that sample is judged again."""
    if len(sample.text) <= MIN_SAMPLE_TOKENS * CHARS_PER_TOKEN:
        return sample.text, ""  # fits any budget fit_budget allows: the usual case, without sizing the prompt
    fitted = fit_sample(sample, sample_budget(goal, mode, anchors, context_tokens))
    if fitted.text == clipped(sample.text, JUDGE_MAX_CHARS):
        return fitted.text, ""
    return fitted.text, f"{FIT_VERSION}:{content_hash(fitted.text)[:16]}"


def judge_messages(goal: Goal, subgoals: list[Subgoal], sample: Sample, anchors: bool = False,
                   mode: Mode = "batched", context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> list[BaseMessage]:
    """Batched: the subgoals in the system prompt, the sample after. Pair: the system prompt holds only
    what every call shares, and the one subgoal follows the sample (see JUDGE_PAIR_PROMPT_VERSION).
    The sample is fitted to `context_tokens` (judge_text)."""
    text, _ = judge_text(goal, sample, mode, anchors, context_tokens)
    if mode == "probe":
        from goalcover.tools.judge.probe import probe_messages

        return probe_messages(goal, subgoals[0], sample, text)
    return _judge_messages(goal, subgoals, sample, text, anchors, mode)


def _judge_messages(goal: Goal, subgoals: list[Subgoal], sample: Sample, text: str, anchors: bool,
                    mode: Mode) -> list[BaseMessage]:
    if mode == "pair":
        system = JUDGE_PAIR_SYSTEM.format(goal=goal.text, rubric=RUBRIC)
        user = JUDGE_PAIR_USER.format(sample_id=neutralise(sample.id, attribute=True), text=neutralise(text), subgoal=format_subgoals(subgoals))
    else:
        which = "this subgoal" if len(subgoals) == 1 else f"each of these {len(subgoals)} subgoals"
        system = JUDGE_SYSTEM.format(goal=goal.text, which=which, subgoals=format_subgoals(subgoals), rubric=RUBRIC)
        user = JUDGE_USER.format(sample_id=neutralise(sample.id, attribute=True), text=neutralise(text))
    if anchors:
        system += JUDGE_ANCHORS
    return [SystemMessage(system), HumanMessage(user)]


@dataclass
class Task:
    """One judge call: a sample and the subgoals it still needs."""

    sample: Sample
    subgoals: list[Subgoal]
    fit: str = ""  # the sample's fit tag (judge_text): recorded with its judgments by fit_store.save_fits


@dataclass(frozen=True)
class JudgeSpec:
    """How one task is asked: the reply's pydantic model and JSON schema, the reply bound (tokens) and
    the logprobs requested (None: none)."""

    schema: type[BaseModel]
    json_schema: dict
    max_tokens: int
    top_logprobs: int | None


def judge_spec(task: Task, mode: Mode, top_logprobs: int | None = None) -> JudgeSpec:
    """The reply schema and bounds of one task: batched asks one required Verdict per subgoal id
    (batched_schema), pair one Verdict; MAX_TOKENS_PER_VERDICT per subgoal."""
    if mode == "batched":
        schema, json_schema = batched_schema(tuple(s.id for s in task.subgoals))
        return JudgeSpec(schema, json_schema, MAX_TOKENS_PER_VERDICT * len(task.subgoals), top_logprobs)
    return JudgeSpec(Verdict, VERDICT_SCHEMA, MAX_TOKENS_PER_VERDICT, top_logprobs)


def judge_request(caller: JsonCaller, goal: Goal, task: Task, mode: Mode, anchors: bool = False,
                  top_logprobs: int | None = None, context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> dict:
    """The `/v1/chat/completions` body the live judge posts for `task` (same prompt, schema, bounds and
    logprobs): what the Batch API and Ray engines send so their judgments share the live path's cache
    keys. `caller` supplies the model and JSON mode (JsonCaller.request_body)."""
    spec = judge_spec(task, mode, top_logprobs)
    return caller.request_body(judge_messages(goal, task.subgoals, task.sample, anchors, mode, context_tokens), name="judgment",
                               json_schema=spec.json_schema, max_tokens=spec.max_tokens, top_logprobs=spec.top_logprobs)


def judgment_rows(task: Task, mode: Mode, result: Result, version: str, model: str) -> tuple[list[dict], list[dict]]:
    """A call's Result as store rows: (judgments, failures) — one judgment per subgoal of the task when
    the reply parsed (with the G-Eval weighted score where logprobs came back), else one failure per
    subgoal carrying the error. Exactly one of the two lists is non-empty."""
    if mode == "batched":
        ids = tuple(s.id for s in task.subgoals)
        verdicts = {s.id: getattr(result.value, s.id) for s in task.subgoals} if result.value else {}
        weighted = weighted_scores(result.logprobs, ids, {k: v.score for k, v in verdicts.items()}) if verdicts else {}
    else:
        only = task.subgoals[0].id
        verdicts = {only: result.value} if result.value else {}
        found = weighted_scores(result.logprobs, expected={None: result.value.score}) if result.value else {}
        weighted = {only: found[None]} if None in found else {}
    if verdicts:
        return [
            _row(task, s, version, model, score=verdicts[s.id].score, explanation=verdicts[s.id].explanation,
                 weighted_score=weighted.get(s.id))
            for s in task.subgoals
        ], []
    return [], [_row(task, s, version, model, error=result.error or "no reply") for s in task.subgoals]


class ScorePlan(BaseModel):
    """What a scoring run would do: counts of samples, subgoals, pairs, cached pairs and calls; estimated
    tokens; USD (0 when the judge has no price)."""

    mode: Mode
    model: str
    prompt_version: str
    samples: int
    subgoals: int
    pairs: int = Field(description="samples × subgoals")
    cached: int = Field(description="pairs already judged by this model and prompt")
    to_score: int
    calls: int
    est_prompt_tokens: int
    est_completion_tokens: int
    est_cost: float


class ScoreResult(BaseModel):
    """`goalcover score --json`; the first four keys are fixed by the design."""

    judgments: int = Field(description="current judgments for this goal and dataset")
    calls: int = Field(description="LLM calls made by this run, repairs included")
    failed: int = Field(description="pairs that have no valid judgment after this run")
    cached: int = Field(description="pairs that were already judged before this run")
    new: int = 0
    mode: Mode
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    repaired: int = 0
    stopped: str | None = Field(None, description="why the run stopped early, if it did")
    elapsed_s: float = 0.0
    via: Literal["live", "batch"] = "live"
    estimate: dict | None = Field(
        None, description="sampled runs only: {samples, population, subgoals: [{id, share, ci_low, ci_high, p_weak}]}"
    )

    def to_json(self) -> dict:
        """The `score --json` object: every field, with "estimate" only when the run was sampled."""
        return self.model_dump(exclude=None if self.estimate else {"estimate"})


def iter_tasks(ws: Workspace, goal: Goal, mode: Mode, version: str, model: str,
               samples: Iterable[Sample] | None = None, chunk: int = 1000) -> Iterator[Task]:
    """The calls still missing for one judge (prompt `version`, `model`), streamed in file order: the
    samples are read `chunk` at a time (default: the dataset's, from the store) and their judgments looked
    up per chunk, so memory does not grow with the dataset beyond one content hash per distinct sample.
    Exact duplicates share one judgment; batched mode makes one task per sample, pair mode one per pair."""
    seen: set[str] = set()
    anchors, context_tokens = ws.settings.judge_anchors, ws.settings.judge_context_tokens
    source = ws.store.iter_samples(chunk) if samples is None else iter(samples)
    while block := list(islice(source, chunk)):
        fresh = []
        for sample in block:
            if sample.content_hash not in seen:  # exact duplicates share one judgment
                seen.add(sample.content_hash)
                fresh.append(sample)
        done = ws.store.judged_pairs(version, model, [s.content_hash for s in fresh])
        fits = fits_of(ws.store, version, model, [s.content_hash for s in fresh])
        for sample in fresh:
            _, fit = judge_text(goal, sample, mode, anchors, context_tokens)
            # A judgment counts when it was made on the text the judge would read now (fit_store).
            missing = [g for g in goal.subgoals if (sample.content_hash, g.hash) not in done
                       or fits.get((sample.content_hash, g.hash), "") != fit]
            if not missing:
                continue
            if mode == "batched":
                yield Task(sample, missing, fit)
            else:
                yield from (Task(sample, [g], fit) for g in missing)


def plan(ws: Workspace, mode: Mode = "batched", samples: list[Sample] | None = None, *,
         keep_tasks: bool = True) -> tuple[ScorePlan, list[Task], Goal]:
    """What a run would do: the pairs still missing, grouped into calls, with token and cost estimates
    (tokens estimated locally, USD from the judge's prices; 0 when it has none). Calls no model.

    `samples` defaults to the dataset, streamed from the store (see iter_tasks); synthesis passes its
    candidates to have them judged the same way. Returns (plan, the calls as tasks — [] when not
    `keep_tasks` — , the goal). Raises BadInput (unknown mode, no samples, no goal) and ConfigError (no
    judge model name).
    """
    check_mode(mode)
    goal = current_goal(ws)
    assert goal is not None
    count = ws.store.count_samples() if samples is None else len(samples)
    if not count:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    config = ws.settings.model_for("judge", need_key=False)  # a plan calls nothing: the model name is enough
    anchors = ws.settings.judge_anchors
    version = prompt_version(mode, anchors)
    tasks: list[Task] = []
    est_prompt = to_score = calls = 0
    for task in iter_tasks(ws, goal, mode, version, config.model, samples):
        messages = judge_messages(goal, task.subgoals, task.sample, anchors, mode, ws.settings.judge_context_tokens)
        est_prompt += sum(estimate_tokens(str(m.content)) for m in messages)
        to_score += len(task.subgoals)
        calls += 1
        if keep_tasks:
            tasks.append(task)
    distinct = ws.store.count_contents() if samples is None else len({s.content_hash for s in samples})
    est_completion = est_output_tokens(mode, to_score)
    pairs = distinct * len(goal.subgoals)
    return (
        ScorePlan(
            mode=mode,
            model=config.model,
            prompt_version=version,
            samples=count,
            subgoals=len(goal.subgoals),
            pairs=pairs,
            cached=pairs - to_score,
            to_score=to_score,
            calls=calls,
            est_prompt_tokens=est_prompt,
            est_completion_tokens=est_completion,
            est_cost=config.cost(est_prompt, est_completion),
        ),
        tasks,
        goal,
    )


def _row(task: Task, subgoal: Subgoal, version: str, model: str, **values) -> dict:
    return {
        "sample_hash": task.sample.content_hash,
        "subgoal_hash": subgoal.hash,
        "prompt_version": version,
        "model": model,
        "sample_id": task.sample.id,
        "subgoal_id": subgoal.id,
        "fit": task.fit,
        **values,
    }


@writes("score")
async def score(
    ws: Workspace,
    mode: Mode = "batched",
    *,
    concurrency: int | None = None,
    max_cost: float | None = None,
    progress: Progress | None = None,
    samples: list[Sample] | None = None,
) -> ScoreResult:
    """Judge every missing sample × subgoal pair (of `samples`, default the dataset) and commit each
    judgment the moment it arrives.

    At most `concurrency` calls (default GOALCOVER_CONCURRENCY) are in flight; `max_cost` (USD) stops
    before a call that could cross it; `progress(done, total, tokens=…, cost=…, failed=…)` is called after
    each call. Cancelling the task is the stop button: no new call starts, the calls in flight finish and
    are saved (so none is paid twice), the run is recorded as `interrupted`, and CancelledError propagates;
    a second cancellation while draining abandons the calls in flight. Raises BadInput (unknown mode, no
    samples) and ConfigError (no judge model).
    """
    started = time.monotonic()
    score_plan, _, goal = plan(ws, mode, samples, keep_tasks=False)  # counts only; the tasks stream below
    config = ws.settings.model_for("judge")
    version = score_plan.prompt_version
    ws.store.set_meta(JUDGE_KEY, {"model": config.model, "prompt_version": version, "mode": mode})
    caller = BulkJsonCaller(config, ws.settings, limits=Limits.from_settings(ws.settings))
    top_logprobs = ws.settings.judge_logprobs
    run_id = ws.store.start_run("score", score_plan.model_dump())
    usage = Usage()
    counts = {"new": 0, "failed_now": 0, "done": 0}
    reserved = 0.0  # estimated cost of calls in flight, so --max-cost is not overshot by concurrency
    stopped: str | None = None
    width = min(concurrency or ws.settings.concurrency, max(1, score_plan.calls))
    # Bounded: the tasks (and their samples' texts) stream from the store as the calls go out.
    queue: asyncio.Queue[Task | None] = asyncio.Queue(maxsize=4 * width)
    in_flight: set[asyncio.Task] = set()

    unreadable: list[Exception] = []  # why the tasks stopped coming, if reading the store failed

    async def produce() -> None:
        try:
            for task in iter_tasks(ws, goal, mode, version, config.model, samples):
                await queue.put(task)
        except Exception as exc:  # noqa: BLE001 - re-raised by the run once the calls in flight are saved
            unreadable.append(exc)
        for _ in range(width):
            await queue.put(None)  # one end mark per worker: none of them waits for tasks that never come

    async def judge_one(task: Task, messages: list[BaseMessage]) -> None:
        """One call and its commit: runs to the end even when the run is cancelled (it is shielded)."""
        if mode == "probe":
            rows, failed = await probe_one(task, messages)
        else:
            spec = judge_spec(task, mode, top_logprobs)
            result = await caller.call(messages, spec.schema, name="judgment", json_schema=spec.json_schema,
                                       max_tokens=spec.max_tokens, top_logprobs=spec.top_logprobs)
            usage.add(result.usage)
            rows, failed = judgment_rows(task, mode, result, version, config.model)
        if rows:
            ws.store.save_judgments(rows)
            save_fits(ws.store, rows)
            counts["new"] += len(rows)
        else:
            ws.store.save_failures(failed)
            counts["failed_now"] += len(failed)
        counts["done"] += 1
        if progress:
            progress(
                counts["done"],
                score_plan.calls,
                tokens=f"{usage.prompt_tokens + usage.completion_tokens:,}",
                cost=f"${usage.cost:.4f}",
                failed=counts["failed_now"],
            )

    async def probe_one(task: Task, messages: list[BaseMessage]) -> tuple[list[dict], list[dict]]:
        from goalcover.tools.judge.probe import p_yes, probe_body, probe_call, to_verdict

        body = probe_body(config.model, messages, ws.settings.probe_extra_body)
        content, logprobs, spent, error = await probe_call(caller, body)
        usage.add(spent)
        p = None if error else p_yes(content, logprobs)
        subgoal = task.subgoals[0]
        if p is None:
            reason = error or f"the probe answered {content[:40]!r}, not yes or no, and its logprobs name neither"
            return [], [_row(task, subgoal, version, config.model, error=reason)]
        verdict, weighted = to_verdict(p, ws.settings.probe_thresholds)
        return [_row(task, subgoal, version, config.model, score=verdict, explanation="", weighted_score=weighted)], []

    async def worker() -> None:
        nonlocal reserved, stopped
        while stopped is None:
            task = await queue.get()
            if task is None or stopped is not None:
                return
            messages = judge_messages(goal, task.subgoals, task.sample, ws.settings.judge_anchors, mode,
                                      ws.settings.judge_context_tokens)
            est_cost = config.cost(
                sum(estimate_tokens(str(m.content)) for m in messages),
                est_output_tokens(mode, len(task.subgoals)),
            )
            if max_cost is not None and usage.cost + reserved + est_cost > max_cost:
                stopped = f"max-cost {max_cost:g} reached"
                return
            reserved += est_cost
            job = asyncio.ensure_future(judge_one(task, messages))
            in_flight.add(job)
            job.add_done_callback(in_flight.discard)
            try:
                # Shielded: cancelling the worker (the stop button, Ctrl-C) must not cancel a paid call.
                await asyncio.shield(job)
            finally:
                reserved -= est_cost

    producer = asyncio.create_task(produce())
    workers = [asyncio.create_task(worker()) for _ in range(width)]
    status = "interrupted"
    try:
        await asyncio.gather(*workers)
        if unreadable:
            status = "failed"
            raise unreadable[0]
        status = "stopped" if stopped else "done"
    except asyncio.CancelledError:
        stopped = "stopped by the user"
        for w in workers:
            w.cancel()
        # Drain: the calls already sent are paid for; wait for their replies and commit them. A second
        # cancellation lands here and abandons them (gather cancels its children).
        if in_flight:
            await asyncio.gather(*list(in_flight), return_exceptions=True)
        raise
    finally:
        producer.cancel()
        for w in workers:
            w.cancel()
        for job in list(in_flight):  # only left when the drain itself was cancelled
            job.cancel()
        await caller.aclose()
        result = ScoreResult(
            judgments=0,
            calls=usage.calls,
            failed=0,
            cached=score_plan.cached,
            new=counts["new"],
            mode=mode,
            model=config.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=round(usage.cost, 6),
            repaired=usage.repaired,
            stopped=stopped,
            elapsed_s=round(time.monotonic() - started, 3),
        )
        ws.store.finish_run(run_id, status, result.model_dump())
    hashes = None if samples is None else [s.content_hash for s in samples]
    _, result.judgments, result.failed = ws.store.pair_counts(version, config.model, {g.hash: g.id for g in goal.subgoals}, hashes)
    if samples is None:  # a run over the dataset: record the coverage it left (history, diff, verify)
        from goalcover.tools.history.versions import record_snapshot

        record_snapshot(ws, run_id)
    return result


run = score  # the name the agent and the web app used before scoring became a coroutine


@writes("score")
def index_scores(ws: Workspace, progress: Progress | None = None) -> int:
    """Put scores into the samples' Chroma metadata (`score_S1` …, for filters like `score_S3<=2`);
    returns how many samples were updated. Embeds nothing: explanations are embedded only when gap
    analysis reads them (`vectors.cached_vectors`). `progress(done, total)` is called per batch."""
    goal = current_goal(ws)
    assert goal is not None
    judge = ws.store.get_meta(JUDGE_KEY)
    if not judge:
        return 0
    # Merge into the metadata; None removes keys of subgoals that no longer exist.
    keys = sorted(set(ws.store.get_meta(INDEXED_SCORE_KEYS, [])) | {f"score_{g.id}" for g in goal.subgoals})
    subgoals = {g.hash: g.id for g in goal.subgoals}
    total = ws.store.count_samples()
    batch, done = 5000, 0
    ids: list[str] = []
    metadatas: list[dict] = []

    def flush() -> None:
        nonlocal done
        ws.index.update_metadata(ids, metadatas)
        done += len(ids)
        ids.clear()
        metadatas.clear()
        if progress:
            progress(done, total)

    # Streamed sample by sample from one SQL join: memory stays flat in the dataset's size.
    for sample_id, per in ws.store.iter_scores(judge["prompt_version"], judge["model"], subgoals, explanations=False):
        ids.append(sample_id)
        metadatas.append({k: per.get(k.removeprefix("score_"), (None,))[0] for k in keys})
        if len(ids) == batch:
            flush()
    if ids:
        flush()
    ws.store.set_meta(INDEXED_SCORE_KEYS, [f"score_{g.id}" for g in goal.subgoals])
    return done
