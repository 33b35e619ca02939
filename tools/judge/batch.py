"""`goalcover score --via batch`: the judge through the OpenAI Batch API, at the batch price.

The same requests as the live judge (scoring.judge_request: prompts, schemas, bounds; so the same cache
keys) are written as JSONL, uploaded with the `openai` SDK (`files.create`, purpose "batch"), and run as
`batches.create` jobs on /v1/chat/completions, split to respect the API's per-batch limits (50,000
requests, 200 MB). Each job is saved in the workspace (meta `batch_jobs`) the moment its file or batch id
exists, so a killed process picks the same batch up: no second upload, no second charge. Finished jobs'
output and error files are downloaded and each line parsed with the live path's repair rules
(llm.parse_json_reply); lines that failed, expired or could not be parsed are retried through the live
judge, which also has the repair conversation a batch line cannot have.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator

from pydantic import BaseModel, Field

from goalcover.tools.judge import scoring
from goalcover.tools.judge.fit_store import save_fits
from goalcover.tools.judge.judge_ref import save_judge
from goalcover.tools.judge.llm import BulkJsonCaller, ReplyError, Result, Usage, parse_json_reply, reply_from_completion
from goalcover.tools.core.shapes import Goal, Sample
from goalcover.tools.core.store import JUDGE_KEY
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.core.lock import writes

JOBS_KEY = "batch_jobs"
# OpenAI's per-batch limits (platform.openai.com/docs/guides/batch): 50,000 requests, 200 MB input file.
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
TERMINAL = {"completed", "failed", "expired", "cancelled"}
ENDPOINT = "/v1/chat/completions"


class BatchJob(BaseModel):
    """One uploaded batch, as saved in the workspace: its file and batch ids, the tasks of its lines
    (custom_id "t<i>" is tasks[i]: [sample content hash, subgoal ids, subgoal hashes]) and the judge it
    asked (mode, prompt version, model)."""

    file_id: str
    batch_id: str | None = None
    mode: scoring.Mode
    prompt_version: str
    model: str
    tasks: list[tuple[str, list[str], list[str]]]
    status: str = "uploaded"
    collected: bool = False
    counts: dict[str, int] = Field(default_factory=dict)


def load_jobs(ws: Workspace) -> list[BatchJob]:
    """Every saved job (collected ones included, until the next batch run clears them)."""
    return [BatchJob.model_validate(j) for j in ws.store.get_meta(JOBS_KEY, [])]


def save_jobs(ws: Workspace, jobs: list[BatchJob]) -> None:
    """Save the jobs (SQLite autocommit: on disk when this returns)."""
    ws.store.set_meta(JOBS_KEY, [j.model_dump() for j in jobs])


def _client(ws: Workspace):
    import httpx
    import openai

    config = ws.settings.model_for("judge")
    return openai.AsyncOpenAI(base_url=config.base_url, api_key=config.api_key, max_retries=ws.settings.max_retries,
                              timeout=httpx.Timeout(config.timeout_s))


def batch_line(n: int, body: str) -> bytes:
    """One JSONL line of a batch input file: custom_id "t<n>", POST /v1/chat/completions, the body (JSON)."""
    return f'{{"custom_id": "t{n}", "method": "POST", "url": "{ENDPOINT}", "body": {body}}}\n'.encode()


async def submit(ws: Workspace, client, goal: Goal, tasks: Iterable[scoring.Task], mode: scoring.Mode, version: str,
                 caller: BulkJsonCaller, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES) -> list[BatchJob]:
    """Write the tasks' requests as JSONL, streaming: a file is uploaded and its batch created as soon as
    it holds `max_requests` lines or the next line would pass `max_bytes`, so memory holds one file at
    most. Each job is saved the moment its file id and then its batch id exist. Returns the new jobs.
    Raises ValueError for a single request larger than max_bytes."""
    anchors, top = ws.settings.judge_anchors, ws.settings.judge_logprobs
    jobs = load_jobs(ws)
    new: list[BatchJob] = []
    buffer, chunk = io.BytesIO(), []

    async def flush() -> None:
        if not new:  # the first new batch: the collected ones are history
            jobs[:] = [j for j in jobs if not j.collected]
        uploaded = await client.files.create(file=("goalcover-judge.jsonl", io.BytesIO(buffer.getvalue())), purpose="batch")
        job = BatchJob(file_id=uploaded.id, mode=mode, prompt_version=version, model=caller.config.model, tasks=list(chunk))
        jobs.append(job)
        save_jobs(ws, jobs)  # the file exists: a kill from here on reuses it
        await create_batch(ws, client, job, jobs)
        new.append(job)

    for task in tasks:
        body = json.dumps(scoring.judge_request(caller, goal, task, mode, anchors, top, ws.settings.judge_context_tokens))
        line = batch_line(len(chunk), body)
        if chunk and (len(chunk) >= max_requests or buffer.tell() + len(line) > max_bytes):
            await flush()
            buffer, chunk = io.BytesIO(), []
            line = batch_line(0, body)
        if len(line) > max_bytes:
            raise ValueError(f"one batch request is {len(line):,} bytes, over the {max_bytes:,}-byte file limit")
        buffer.write(line)
        chunk.append((task.sample.content_hash, [g.id for g in task.subgoals], [g.hash for g in task.subgoals]))
    if chunk:
        await flush()
    return new


async def create_batch(ws: Workspace, client, job: BatchJob, jobs: list[BatchJob], resuming: bool = False) -> None:
    """Create the batch of an uploaded file and save its id at once. `resuming` (a kill came between
    upload and the save of the batch id) first looks for a batch already made from this file, so a kill
    right after `batches.create` does not pay for the same file twice."""
    if resuming:
        async for found in client.batches.list(limit=100):
            if found.input_file_id == job.file_id:
                job.batch_id, job.status = found.id, found.status
                save_jobs(ws, jobs)
                return
    batch = await client.batches.create(input_file_id=job.file_id, endpoint=ENDPOINT, completion_window="24h",
                                        metadata={"tool": "goalcover", "prompt_version": job.prompt_version})
    job.batch_id, job.status = batch.id, batch.status
    save_jobs(ws, jobs)


async def wait(ws: Workspace, client, jobs: list[BatchJob], all_jobs: list[BatchJob], poll_s: float,
               progress: Callable[..., None] | None = None) -> None:
    """Poll the jobs until every one is terminal, reporting the batches' own request counts."""
    while True:
        totals = {"total": 0, "completed": 0, "failed": 0}
        statuses = []
        for job in jobs:
            if job.status not in TERMINAL:
                batch = await client.batches.retrieve(job.batch_id)
                job.status = batch.status
                counts = batch.request_counts
                job.counts = {"total": counts.total, "completed": counts.completed, "failed": counts.failed} if counts else {}
            for k in totals:
                totals[k] += job.counts.get(k, 0)
            statuses.append(job.status)
        save_jobs(ws, all_jobs)
        if progress:
            progress(totals["completed"] + totals["failed"], totals["total"] or sum(len(j.tasks) for j in jobs),
                     batch="/".join(sorted(set(statuses))), failed=totals["failed"])
        if all(s in TERMINAL for s in statuses):
            return
        await asyncio.sleep(poll_s)



async def _jsonl_rows(client, file_id: str | None) -> list[dict]:
    """The JSON lines of a batch's output or error file (none when the batch has no such file)."""
    if not file_id:
        return []
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines() if line.strip()]

async def collect(ws: Workspace, client, job: BatchJob, goal: Goal, samples: dict[str, Sample],
                  usage: Usage) -> tuple[int, set[tuple[str, tuple[str, ...]]]]:
    """Download a finished job's output and error files, save every judgment that parses (repair rules of
    the live path) and record every failed, unanswered or unparsable line as a failure (with the batch's
    error); returns (judgments saved, the (content hash, subgoal ids) of lines left for the live
    retry). Usage gets the lines'
    tokens at the batch price. Lines whose sample or subgoal changed since upload are dropped."""
    config = ws.settings.model_for("judge")
    factor = ws.settings.batch_price_factor
    batch = await client.batches.retrieve(job.batch_id)
    answered = {row["custom_id"]: row for row in await _jsonl_rows(client, batch.output_file_id)}
    errors = {row["custom_id"]: _line_error(row) for row in await _jsonl_rows(client, batch.error_file_id)}
    by_id = {s.id: s for s in goal.subgoals}
    saved, left = 0, set()
    failures: list[dict] = []
    for i, (content_hash, ids, hashes) in enumerate(job.tasks):
        sample = samples.get(content_hash)
        subgoals = [by_id.get(sid) for sid in ids]
        if sample is None or any(g is None or g.hash != h for g, h in zip(subgoals, hashes)):
            continue  # the dataset or the goal changed: this answer is to a question no longer asked
        fit = scoring.judge_text(goal, sample, job.mode, ws.settings.judge_anchors, ws.settings.judge_context_tokens)[1]
        task = scoring.Task(sample, subgoals, fit)  # type: ignore[arg-type]
        row = answered.get(f"t{i}")
        response = (row or {}).get("response") or {}
        if not row or response.get("status_code") != 200:
            left.add((content_hash, tuple(ids)))
            error = errors.get(f"t{i}") or (_line_error(row) if row else f"batch {batch.status}: no answer for this line")
            failures += _failure_rows(task, job, error)
            continue
        reply = reply_from_completion(response["body"])
        spec = scoring.judge_spec(task, job.mode, ws.settings.judge_logprobs)
        line_usage = Usage(calls=1, prompt_tokens=reply.prompt_tokens or 0, completion_tokens=reply.completion_tokens or 0)
        line_usage.cost = config.cost(line_usage.prompt_tokens, line_usage.completion_tokens) * factor
        usage.add(line_usage)
        try:
            value, repaired = parse_json_reply(reply.content, spec.schema)
        except ReplyError as exc:
            left.add((content_hash, tuple(ids)))  # the live retry has the repair conversation a batch line cannot have
            failures += _failure_rows(task, job, f"batch: {exc}")
            continue
        line_usage.repaired = int(repaired)
        usage.repaired += int(repaired)
        result = Result(value, line_usage, raw=reply.content, logprobs=reply.logprobs if spec.top_logprobs else None)
        rows, _ = scoring.judgment_rows(task, job.mode, result, job.prompt_version, job.model)
        ws.store.save_judgments(rows)
        save_fits(ws.store, rows)
        saved += len(rows)
    # Recorded so a run stopped before the live retry still shows them; the retry's judgments supersede them.
    if failures:
        ws.store.save_failures(failures)
    return saved, left


def _line_error(row: dict) -> str:
    """The error of one output/error-file line, as "batch: <code or status>: <message>"."""
    error = row.get("error") or ((row.get("response") or {}).get("body") or {}).get("error") or {}
    status = (row.get("response") or {}).get("status_code")
    return f"batch: {error.get('code') or error.get('type') or status}: {error.get('message') or 'failed'}"[:500]


def _failure_rows(task: scoring.Task, job: BatchJob, error: str) -> list[dict]:
    result = Result(None, Usage(), error=error)
    return scoring.judgment_rows(task, job.mode, result, job.prompt_version, job.model)[1]


@writes("score")
async def score_batch(
    ws: Workspace,
    mode: scoring.JudgeRef | str | None = None,
    *,
    samples: list[Sample] | None = None,
    max_cost: float | None = None,
    progress: Callable[..., None] | None = None,
    concurrency: int | None = None,
    poll_s: float | None = None,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
) -> scoring.ScoreResult:
    """Judge every missing pair of `samples` (default the dataset) through the Batch API: resume the
    workspace's unfinished batches, or submit the missing pairs as new ones (at most `max_cost` USD at the
    batch price, estimated); wait (polling every `poll_s`, default GOALCOVER_BATCH_POLL_S); collect; then
    retry what the batch did not answer through the live judge (`concurrency` calls at once). Returns a
    ScoreResult with via="batch" (`calls` counts batch lines answered plus live calls). Raises what
    scoring.plan raises, and openai errors the SDK's own retries could not fix."""
    started = time.monotonic()
    judge = scoring.resolve_judge(ws, mode)  # a JudgeRef, or a mode (default GOALCOVER_JUDGE_MODE)
    mode = judge.mode
    if mode == "probe":
        from goalcover.tools.core.errors import BadInput

        raise BadInput("--mode probe runs live only (one token per call, nothing for the Batch API to save): leave out --via batch")
    score_plan, _, goal = scoring.plan(ws, judge, samples, keep_tasks=False)
    config = judge.endpoint(ws.settings)
    version = score_plan.prompt_version
    save_judge(ws, judge)
    run_id = ws.store.start_run("score", {**score_plan.model_dump(), "via": "batch"})
    usage = Usage()
    caller = BulkJsonCaller(config, ws.settings)
    client = _client(ws)
    factor = ws.settings.batch_price_factor
    stopped = None
    status = "interrupted"
    new = left = 0
    retry: set[tuple[str, tuple[str, ...]]] = set()
    try:
        jobs = load_jobs(ws)
        resumed = [j for j in jobs if not j.collected]
        for round_ in ("resume", "new"):
            if round_ == "resume":
                pending = resumed
            else:
                # What is still missing (after any resumed batch) and was not just answered badly: new batches,
                # streamed from the store.
                tasks = (t for t in scoring.iter_tasks(ws, goal, mode, version, config.model, samples)
                         if (t.sample.content_hash, tuple(g.id for g in t.subgoals)) not in retry)
                if max_cost is not None:
                    budget = _Budget(ws, goal, mode, max(0.0, max_cost - usage.cost) / factor, f"max-cost {max_cost:g} reached")
                    tasks = budget.within(tasks)
                pending = await submit(ws, client, goal, tasks, mode, version, caller, max_requests, max_bytes)
                if max_cost is not None:
                    stopped = budget.stopped
                if not pending:
                    break
                jobs = load_jobs(ws)
                pending = [j for j in jobs if not j.collected]
            if not pending:
                continue
            for job in pending:
                if job.batch_id is None:  # killed between upload and create: reuse the uploaded file
                    await create_batch(ws, client, job, jobs, resuming=True)
            await wait(ws, client, pending, jobs, poll_s or ws.settings.batch_poll_s, progress)
            by_hash = samples_by_hash(ws, {h for job in pending for h, _, _ in job.tasks})
            for job in pending:
                saved, unanswered = await collect(ws, client, job, goal, by_hash, usage)
                new += saved
                left += len(unanswered)
                retry |= unanswered
                job.collected = True
                save_jobs(ws, jobs)
        status = "stopped" if stopped else "done"
    finally:
        await client.close()
        ws.store.finish_run(run_id, status, {"via": "batch", "calls": usage.calls, "new": new, "retry": left})
    live = None
    if left and stopped is None:
        spent = usage.cost
        live = await scoring.score(ws, judge, samples=samples, concurrency=concurrency, progress=progress,
                                   max_cost=None if max_cost is None else max(0.0, max_cost - spent))
        usage.calls += live.calls
        usage.prompt_tokens += live.prompt_tokens
        usage.completion_tokens += live.completion_tokens
        usage.cost += live.cost
        usage.repaired += live.repaired
        new += live.new
        stopped = live.stopped
    hashes = None if samples is None else [s.content_hash for s in samples]
    _, judged, failed = ws.store.pair_counts(version, config.model, {g.hash: g.id for g in goal.subgoals}, hashes)
    if samples is None and live is None:  # (a live finish recorded its own) the coverage left, for history
        from goalcover.tools.history.versions import record_snapshot

        record_snapshot(ws, run_id)
    return scoring.ScoreResult(
        judgments=judged, calls=usage.calls, failed=failed,
        cached=score_plan.cached, new=new, mode=mode, model=config.model, prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens, cost=round(usage.cost, 6), repaired=usage.repaired,
        stopped=stopped, elapsed_s=round(time.monotonic() - started, 3), via="batch",
    )


def samples_by_hash(ws: Workspace, hashes: set[str]) -> dict[str, Sample]:
    """content hash -> one sample with that content, for the hashes a batch asked about (reads only those)."""
    ids: dict[str, str] = {}
    for sample_id, (content_hash, _) in ws.store.sample_hashes().items():
        if content_hash in hashes:
            ids.setdefault(content_hash, sample_id)
    return {s.content_hash: s for s in ws.store.samples(list(ids.values()))}


class _Budget:
    """Passes tasks while their estimated live cost fits `budget` (USD); `stopped` says why it stopped."""

    def __init__(self, ws: Workspace, goal: Goal, mode: scoring.Mode, budget: float, reason: str) -> None:
        self.ws, self.goal, self.mode, self.budget, self.reason = ws, goal, mode, budget, reason
        self.spent = 0.0
        self.stopped: str | None = None

    def within(self, tasks: Iterable[scoring.Task]) -> Iterator[scoring.Task]:
        from goalcover.tools.core.tokens import estimate_tokens

        config = self.ws.settings.model_for("judge")
        for task in tasks:
            messages = scoring.judge_messages(self.goal, task.subgoals, task.sample, self.ws.settings.judge_anchors, self.mode,
                                              self.ws.settings.judge_context_tokens)
            cost = config.cost(sum(estimate_tokens(str(m.content)) for m in messages),
                               scoring.EST_TOKENS_PER_VERDICT * len(task.subgoals))
            if self.spent + cost > self.budget:
                self.stopped = self.reason
                return
            self.spent += cost
            yield task
