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
from itertools import islice
from typing import Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from goalcover.tools.core.store import INDEXED_SCORE_KEYS
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.goal import current_goal
from goalcover.tools.judge.llm import BulkJsonCaller, Limits, Usage
from goalcover.tools.core.tokens import estimate_tokens
from goalcover.tools.core.shapes import Goal, Sample
from goalcover.tools.core.lock import writes
from goalcover.tools.judge.fit_store import fits_of, save_fits
from goalcover.tools.judge.judge_ref import JudgeRef, current_judge, save_judge
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.judge.calls import (
    EST_TOKENS_PER_VERDICT, FIT_VERSION, JUDGE_MAX_CHARS, MAX_TOKENS_PER_VERDICT, MODES, VERDICT_SCHEMA, JudgeSpec, Mode,
    Task, Verdict, batched_schema, check_mode, est_output_tokens, judge_messages, judge_request, judge_spec, judge_text,
    judgment_rows, pair_row, prompt_version, sample_budget,
)

__all__ = [  # one judge call (from `calls`), and the run: plan, score, index_scores
    "EST_TOKENS_PER_VERDICT", "FIT_VERSION", "JUDGE_MAX_CHARS", "MAX_TOKENS_PER_VERDICT", "MODES", "VERDICT_SCHEMA",
    "JudgeRef", "JudgeSpec", "Mode", "Progress", "SampledEstimate", "ScorePlan", "ScoreResult", "SubgoalEstimate", "Task", "Verdict", "batched_schema", "check_mode",
    "est_output_tokens", "index_scores", "iter_tasks", "judge_messages", "judge_request", "judge_spec", "judge_text",
    "judgment_rows", "pair_row", "plan", "prompt_version", "resolve_judge", "run", "sample_budget", "score",
]

Progress = Callable[..., None]


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


class SubgoalEstimate(BaseModel):
    """One subgoal's estimated coverage from a sampled run: the share of samples supporting it, its 95%
    interval (shares 0-1) and the probability that it is weak."""

    id: str
    share: float
    ci_low: float
    ci_high: float
    p_weak: float


class SampledEstimate(BaseModel):
    """A sampled run's estimate (`score --json`'s "estimate"): `samples` judged of `population`, per subgoal."""

    samples: int
    population: int
    subgoals: list[SubgoalEstimate]


def resolve_judge(ws: Workspace, judge: JudgeRef | str | None = None) -> JudgeRef:
    """`judge` as a JudgeRef: itself, or resolved from the workspace's settings with `judge` as the mode
    (None: GOALCOVER_JUDGE_MODE). Raises BadInput (unknown mode) and ConfigError (no judge model name)."""
    return judge if isinstance(judge, JudgeRef) else JudgeRef.resolve(ws.settings, judge)


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
    estimate: SampledEstimate | None = Field(
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


def plan(ws: Workspace, mode: JudgeRef | str | None = None, samples: list[Sample] | None = None, *,
         keep_tasks: bool = True) -> tuple[ScorePlan, list[Task], Goal]:
    """What a run would do: the pairs still missing, grouped into calls, with token and cost estimates
    (tokens estimated locally, USD from the judge's prices; 0 when it has none). Calls no model.

    `mode` is the judge: a JudgeRef, or a mode resolved with the settings (see resolve_judge; default
    GOALCOVER_JUDGE_MODE). `samples` defaults to the dataset, streamed from the store (see iter_tasks);
    synthesis passes its candidates to have them judged the same way. Returns (plan, the calls as tasks — [] when not
    `keep_tasks` — , the goal). Raises BadInput (unknown mode, no samples, no goal) and ConfigError (no
    judge model name).
    """
    judge = resolve_judge(ws, mode)
    mode = judge.mode
    goal = current_goal(ws)
    assert goal is not None
    count = ws.store.count_samples() if samples is None else len(samples)
    if not count:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    config = judge.endpoint(ws.settings, need_key=False)  # a plan calls nothing: the model name is enough
    anchors = ws.settings.judge_anchors
    version = judge.prompt_version
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


@writes("score")
async def score(
    ws: Workspace,
    mode: JudgeRef | str | None = None,
    *,
    concurrency: int | None = None,
    max_cost: float | None = None,
    progress: Progress | None = None,
    samples: list[Sample] | None = None,
) -> ScoreResult:
    """Judge every missing sample × subgoal pair (of `samples`, default the dataset) with the judge `mode`
    (a JudgeRef, or a mode resolved with the settings: see resolve_judge) and commit each judgment the
    moment it arrives; that judge becomes the workspace's current judge.

    At most `concurrency` calls (default GOALCOVER_CONCURRENCY) are in flight; `max_cost` (USD) stops
    before a call that could cross it; `progress(done, total, tokens=…, cost=…, failed=…)` is called after
    each call. Cancelling the task is the stop button: no new call starts, the calls in flight finish and
    are saved (so none is paid twice), the run is recorded as `interrupted`, and CancelledError propagates;
    a second cancellation while draining abandons the calls in flight. Raises BadInput (unknown mode, no
    samples) and ConfigError (no judge model).
    """
    run = _ScoreRun(ws, resolve_judge(ws, mode), samples, concurrency, max_cost, progress)  # plan it; record the judge and the run
    result = await run.judge_all()  # the calls, each judgment committed as it arrives; the run's record closed
    run.count_judgments(result)  # what the goal and dataset now hold under this judge
    if samples is None:  # a run over the dataset: record the coverage it left (history, diff, verify)
        from goalcover.tools.history.versions import record_snapshot

        record_snapshot(ws, run.run_id)
    return result


class _ScoreRun:
    """One scoring run's state and steps (see `score`): a producer streams the missing tasks from the store
    into a bounded queue, `width` workers send them, each call and its commit is shielded from cancellation."""

    def __init__(self, ws: Workspace, judge: JudgeRef, samples: list[Sample] | None, concurrency: int | None,
                 max_cost: float | None, progress: Progress | None) -> None:
        self.started = time.monotonic()
        self.ws, self.mode, self.samples, self.max_cost, self.progress = ws, judge.mode, samples, max_cost, progress
        self.plan, _, self.goal = plan(ws, judge, samples, keep_tasks=False)  # counts only; the tasks stream later
        self.config = judge.endpoint(ws.settings)
        self.version = self.plan.prompt_version
        save_judge(ws, judge)
        self.caller = BulkJsonCaller(self.config, ws.settings, limits=Limits.from_settings(ws.settings))
        self.top_logprobs = ws.settings.judge_logprobs
        self.run_id = ws.store.start_run("score", self.plan.model_dump())
        self.usage = Usage()
        self.counts = {"new": 0, "failed_now": 0, "done": 0}
        self.reserved = 0.0  # estimated cost of calls in flight, so --max-cost is not overshot by concurrency
        self.stopped: str | None = None
        self.width = min(concurrency or ws.settings.concurrency, max(1, self.plan.calls))
        # Bounded: the tasks (and their samples' texts) stream from the store as the calls go out.
        self.queue: asyncio.Queue[Task | None] = asyncio.Queue(maxsize=4 * self.width)
        self.in_flight: set[asyncio.Task] = set()
        self.unreadable: list[Exception] = []  # why the tasks stopped coming, if reading the store failed

    async def judge_all(self) -> ScoreResult:
        """Run the producer and the workers to the end, a stop (max-cost) or a cancellation (drained, then
        re-raised); close the caller and record the run's status and result whatever happened."""
        producer = asyncio.create_task(self.produce())
        workers = [asyncio.create_task(self.worker()) for _ in range(self.width)]
        status = "interrupted"
        try:
            await asyncio.gather(*workers)
            if self.unreadable:
                status = "failed"
                raise self.unreadable[0]
            status = "stopped" if self.stopped else "done"
        except asyncio.CancelledError:
            self.stopped = "stopped by the user"
            for w in workers:
                w.cancel()
            # Drain: the calls already sent are paid for; wait for their replies and commit them. A second
            # cancellation lands here and abandons them (gather cancels its children).
            if self.in_flight:
                await asyncio.gather(*list(self.in_flight), return_exceptions=True)
            raise
        finally:
            producer.cancel()
            for w in workers:
                w.cancel()
            for job in list(self.in_flight):  # only left when the drain itself was cancelled
                job.cancel()
            await self.caller.aclose()
            result = self.result()
            self.ws.store.finish_run(self.run_id, status, result.model_dump())
        return result

    async def produce(self) -> None:
        """Stream the missing tasks into the queue, then one end mark per worker."""
        try:
            for task in iter_tasks(self.ws, self.goal, self.mode, self.version, self.config.model, self.samples):
                await self.queue.put(task)
        except Exception as exc:  # noqa: BLE001 - re-raised by the run once the calls in flight are saved
            self.unreadable.append(exc)
        for _ in range(self.width):
            await self.queue.put(None)  # one end mark per worker: none of them waits for tasks that never come

    async def worker(self) -> None:
        """Take tasks until the end mark or a stop; reserve each call's estimated cost against --max-cost."""
        ws, mode = self.ws, self.mode
        while self.stopped is None:
            task = await self.queue.get()
            if task is None or self.stopped is not None:
                return
            messages = judge_messages(self.goal, task.subgoals, task.sample, ws.settings.judge_anchors, mode,
                                      ws.settings.judge_context_tokens)
            est_cost = self.config.cost(
                sum(estimate_tokens(str(m.content)) for m in messages),
                est_output_tokens(mode, len(task.subgoals)),
            )
            if self.max_cost is not None and self.usage.cost + self.reserved + est_cost > self.max_cost:
                self.stopped = f"max-cost {self.max_cost:g} reached"
                return
            self.reserved += est_cost
            job = asyncio.ensure_future(self.judge_one(task, messages))
            self.in_flight.add(job)
            job.add_done_callback(self.in_flight.discard)
            try:
                # Shielded: cancelling the worker (the stop button, Ctrl-C) must not cancel a paid call.
                await asyncio.shield(job)
            finally:
                self.reserved -= est_cost

    async def judge_one(self, task: Task, messages: list[BaseMessage]) -> None:
        """One call and its commit: runs to the end even when the run is cancelled (it is shielded)."""
        if self.mode == "probe":
            rows, failed = await self.probe_one(task, messages)
        else:
            spec = judge_spec(task, self.mode, self.top_logprobs)
            result = await self.caller.call(messages, spec.schema, name="judgment", json_schema=spec.json_schema,
                                            max_tokens=spec.max_tokens, top_logprobs=spec.top_logprobs)
            self.usage.add(result.usage)
            rows, failed = judgment_rows(task, self.mode, result, self.version, self.config.model)
        counts, usage = self.counts, self.usage
        if rows:
            self.ws.store.save_judgments(rows)
            save_fits(self.ws.store, rows)
            counts["new"] += len(rows)
        else:
            self.ws.store.save_failures(failed)
            counts["failed_now"] += len(failed)
        counts["done"] += 1
        if self.progress:
            self.progress(
                counts["done"],
                self.plan.calls,
                tokens=f"{usage.prompt_tokens + usage.completion_tokens:,}",
                cost=f"${usage.cost:.4f}",
                failed=counts["failed_now"],
            )

    async def probe_one(self, task: Task, messages: list[BaseMessage]) -> tuple[list[dict], list[dict]]:
        """A probe call (tools/judge/probe.py): P(yes) into a verdict and weighted score, or a failure row."""
        from goalcover.tools.judge.probe import p_yes, probe_body, probe_call, to_verdict

        settings, model = self.ws.settings, self.config.model
        body = probe_body(model, messages, settings.probe_extra_body)
        content, logprobs, spent, error = await probe_call(self.caller, body)
        self.usage.add(spent)
        p = None if error else p_yes(content, logprobs)
        subgoal = task.subgoals[0]
        if p is None:
            reason = error or f"the probe answered {content[:40]!r}, not yes or no, and its logprobs name neither"
            return [], [pair_row(task, subgoal, self.version, model, error=reason)]
        verdict, weighted = to_verdict(p, settings.probe_thresholds)
        return [pair_row(task, subgoal, self.version, model, score=verdict, explanation="", weighted_score=weighted)], []

    def result(self) -> ScoreResult:
        """What this run did so far (judgments and failures are counted by `count_judgments`)."""
        usage = self.usage
        return ScoreResult(
            judgments=0,
            calls=usage.calls,
            failed=0,
            cached=self.plan.cached,
            new=self.counts["new"],
            mode=self.mode,
            model=self.config.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=round(usage.cost, 6),
            repaired=usage.repaired,
            stopped=self.stopped,
            elapsed_s=round(time.monotonic() - self.started, 3),
        )

    def count_judgments(self, result: ScoreResult) -> None:
        """Fill `result.judgments` and `.failed`: the pairs of the goal and the samples this judge has."""
        hashes = None if self.samples is None else [s.content_hash for s in self.samples]
        subgoals = {g.hash: g.id for g in self.goal.subgoals}
        _, result.judgments, result.failed = self.ws.store.pair_counts(self.version, self.config.model, subgoals, hashes)


run = score  # the name the agent and the web app used before scoring became a coroutine


@writes("score")
def index_scores(ws: Workspace, progress: Progress | None = None) -> int:
    """Put scores into the samples' Chroma metadata (`score_S1` …, for filters like `score_S3<=2`);
    returns how many samples were updated. Embeds nothing: explanations are embedded only when gap
    analysis reads them (`vectors.cached_vectors`). `progress(done, total)` is called per batch."""
    goal = current_goal(ws)
    assert goal is not None
    judge = current_judge(ws)
    if judge is None:
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
    for sample_id, per in ws.store.iter_scores(judge.prompt_version, judge.model, subgoals, explanations=False):
        ids.append(sample_id)
        metadatas.append({k: per.get(k.removeprefix("score_"), (None,))[0] for k in keys})
        if len(ids) == batch:
            flush()
    if ids:
        flush()
    ws.store.set_meta(INDEXED_SCORE_KEYS, [f"score_{g.id}" for g in goal.subgoals])
    return done
