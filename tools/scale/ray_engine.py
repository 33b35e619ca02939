"""Scoring on a Ray cluster (`goalcover score --engine ray`): Ray Data carries the judge calls, the driver
keeps the workspace.

The driver plans the missing pairs exactly as the asyncio engine does (`scoring.plan`: same prompts,
schemas, prompt versions, cache keys), turns each call into plain data (the chat messages, the subgoal
ids, the reply bound) and hands them to Ray Data in blocks. Workers never open the workspace: they send
the calls and return plain data (the reply text, token counts, logprobs, the error). The driver iterates
the finished blocks (`Dataset.iter_batches`, streaming) and commits each block's judgments to the store
before it asks for the next, so a killed job loses only unfinished blocks and a rerun sends only what is
still missing.

Processors (what turns a row into a reply):
- `actors` (the default): the engine's own `BulkJsonCaller` runs inside Ray Data actors (`map_batches`
  with a class whose `__call__` is a coroutine), each with `concurrency` calls in flight. Same retries
  (429 with Retry-After, 5xx, timeouts, garbled bodies), JSON-mode fallback and repair loop as the asyncio
  engine; the driver re-parses each reply with `parse_json_reply` into the same rows
  (`scoring.judgment_rows`).
- `http` (`ray.data.llm.HttpRequestProcessorConfig`, see ray_llm.http_dataset): posts the live judge's
  exact request bodies (`scoring.judge_request`). Opt-in, not the default: in Ray 2.60 it awaits a
  batch's requests one after another, retries only 408/429/502/503/504 and dropped connections (not a
  500 or a garbled body), has no JSON-mode fallback or repair round trip, and fails the whole job when a
  row's retries run out or its reply is not JSON.
- `vllm` (`--vllm MODEL`, `ray.data.llm.vLLMEngineProcessorConfig`, see ray_llm.vllm_dataset): vLLM
  replicas on GPU workers with the judge's JSON schema as structured output. Needs vLLM on the workers
  (a GPU stack, not installable on a CPU-only machine); not smoke-tested here.

Sources: Ray Data user guide, "Working with LLMs" and "Stateful transforms" (actor pools, fault
tolerance with `max_restarts` / `max_task_retries`), docs.ray.io 2.60.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from itertools import islice
from contextlib import contextmanager
from typing import Any

from goalcover.tools.core.errors import BadInput, ConfigError
from goalcover.tools.judge.fit import DEFAULT_CONTEXT_TOKENS
from goalcover.tools.judge.fit_store import save_fits
from goalcover.tools.judge.llm import BulkJsonCaller, Limits, ReplyError, Result, Usage, message_dicts, parse_json_reply
from goalcover.tools.core.shapes import Sample
from goalcover.tools.core.lock import writes
from goalcover.tools.judge.judge_ref import JudgeRef, save_judge
from goalcover.tools.judge.scoring import (
    Mode, Progress, ScoreResult, Task, iter_tasks, judge_messages, judge_request, judge_spec, judgment_rows, plan,
    resolve_judge,
)
from goalcover.tools.core.settings import ModelConfig, Settings
from goalcover.tools.core.workspace import Workspace

RAY_EXTRA = "--engine ray needs the ray extra: pip install 'goalcover[ray]'"
# A judge actor waits on the network, not the CPU: a quarter CPU each lets 4 actors share a 1-CPU slot.
ACTOR_CPUS = 0.25
# Calls per block: big enough that Ray's per-block overhead is small, small enough that a killed job
# loses little and the progress bar moves.
MAX_BLOCK = 256
# Calls per Ray Data job: each job's rows (prompts included) are built on the driver and put in the
# object store, so a run of millions goes in waves; a job's start-up (seconds) is small against 50,000 calls.
WAVE = 50_000


def require_ray():
    """The `ray` module, or ConfigError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(RAY_EXTRA) from None
    return ray


@contextmanager
def connected(address: str | None, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to a Ray cluster for the length of the block: `address` "auto" (the cluster `ray start`
    started on this machine), "ray://HOST:10001" (Ray Client) or "HOST:6379"; None uses RAY_ADDRESS when
    set and otherwise starts a private local Ray (`num_cpus` CPUs) that ends with the block. An already
    initialised Ray (a test, a notebook) is used as it is and left running. Raises ConfigError when Ray
    is missing or the cluster cannot be reached."""
    ray = require_ray()
    if ray.is_initialized():
        quiet(ray)
        yield ray
        return
    try:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        chain = f"{exc} {exc.__cause__ or ''}"
        hint = ""
        if "auth" in chain.lower():
            # Ray 2.60: `ray start` turns token authentication on when ~/.ray/auth_token exists (a local
            # `ray.init()` writes one), and a driver then needs RAY_AUTH_MODE=token to send it.
            hint = ("; the cluster wants a token: set RAY_AUTH_MODE=token (the token comes from ~/.ray/auth_token, "
                    "or RAY_AUTH_TOKEN on another machine)")
        raise ConfigError(f"--ray-address {address or 'auto'}: cannot connect to a Ray cluster ({exc}){hint}") from None
    try:
        quiet(ray)
        yield ray
    finally:
        ray.shutdown()


def quiet(ray) -> None:
    """GoalCover draws its own progress bar: no Ray Data progress bars or per-dataset INFO lines."""
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def task_row(index: int, task: Task, goal, mode: Mode, anchors: bool, context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> dict[str, Any]:
    """One call as plain data for a worker: its index in the plan and a JSON request holding the chat
    messages (role, content), the subgoal ids (which rebuild the reply schema) and the reply bound."""
    messages = judge_messages(goal, task.subgoals, task.sample, anchors, mode, context_tokens)
    spec = judge_spec(task, mode)
    request = {"messages": message_dicts(messages), "ids": [s.id for s in task.subgoals], "max_tokens": spec.max_tokens}
    return {"i": index, "request": json.dumps(request)}


class JudgeActor:
    """A Ray Data actor that judges blocks of calls with the engine's own BulkJsonCaller (retries,
    limits, JSON-mode fallback, repair loop), at most `concurrency` calls in flight across the blocks it
    holds. Its `__call__` is a coroutine, so Ray Data runs it on the actor's event loop and hands it the
    next block while the last calls of the previous one are still out (no idle tail per block); its HTTP
    connections live as long as the actor.

    In: a batch {"i": [int], "request": [JSON str]} (see task_row). Out: the same "i" with "raw" (reply
    text, "" when none), "error" ("" when the reply parsed), "logprobs" (JSON, "" when none) and the call's
    usage: "calls", "prompt_tokens", "completion_tokens", "repaired", "repair_calls", "cost" (USD).
    """

    def __init__(self, config: dict, settings: dict, mode: str, top_logprobs: int | None, concurrency: int,
                 actors: int) -> None:
        self.config = ModelConfig(**config)
        self.settings = Settings(**settings)
        self.mode = mode
        self.top_logprobs = top_logprobs
        self.concurrency = concurrency
        # The cluster-wide request and token limits are shared out among the actors.
        share = dict(self.settings)
        for key in ("requests_per_minute", "tokens_per_minute"):
            if share[key]:
                share[key] = share[key] / actors
        self.caller = BulkJsonCaller(self.config, self.settings, limits=Limits.from_settings(Settings(**share)))
        self.gate: asyncio.Semaphore | None = None  # made on the actor's event loop, at the first block

    async def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from langchain_core.messages import HumanMessage, SystemMessage

        from goalcover.tools.judge.scoring import VERDICT_SCHEMA, Verdict, batched_schema

        if self.gate is None:
            self.gate = asyncio.Semaphore(self.concurrency)
        gate = self.gate
        kinds = {"system": SystemMessage, "user": HumanMessage}

        async def one(text: str) -> Result:
            request = json.loads(text)
            if self.mode == "batched":
                schema, json_schema = batched_schema(tuple(request["ids"]))
            else:
                schema, json_schema = Verdict, VERDICT_SCHEMA
            messages = [kinds[m["role"]](m["content"]) for m in request["messages"]]
            async with gate:
                return await self.caller.call(messages, schema, name="judgment", json_schema=json_schema,
                                              max_tokens=request["max_tokens"], top_logprobs=self.top_logprobs)

        indexes = [int(i) for i in batch["i"]]
        results = await asyncio.gather(*(one(str(r)) for r in batch["request"]))
        out: dict[str, list] = {k: [] for k in ("i", "raw", "error", "logprobs", "calls", "prompt_tokens",
                                                  "completion_tokens", "repaired", "repair_calls", "cost")}
        for index, result in zip(indexes, results):
            out["i"].append(index)
            out["raw"].append(result.raw or "")
            out["error"].append((result.error or "no reply") if result.value is None else "")
            out["logprobs"].append(json.dumps(result.logprobs) if result.logprobs else "")
            for key in ("calls", "prompt_tokens", "completion_tokens", "repaired", "repair_calls", "cost"):
                out[key].append(getattr(result.usage, key))
        return out


def result_of(task: Task, mode: Mode, row: dict[str, Any]) -> Result:
    """A worker's output row as the Result the asyncio engine would have had: the reply re-parsed with
    the same repair rules (parse_json_reply) into the task's schema, with its usage and logprobs."""
    usage = Usage(**{k: row[k] for k in ("calls", "prompt_tokens", "completion_tokens", "repaired", "repair_calls")},
                  cost=float(row["cost"]))
    raw = row["raw"] or None
    if row["error"] or not raw:
        return Result(None, usage, error=row["error"] or "no reply", raw=raw)
    try:
        value, _ = parse_json_reply(raw, judge_spec(task, mode).schema)
    except ReplyError as exc:  # cannot happen when the worker parsed it; recorded as a failure if it does
        return Result(None, usage, error=str(exc), raw=raw)
    return Result(value, usage, raw=raw, logprobs=json.loads(row["logprobs"]) if row["logprobs"] else None)


def _rows(batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
    keys = list(batch)
    for values in zip(*(batch[k] for k in keys)):
        yield {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(keys, values)}


@writes("score")
def score_on_ray(
    ws: Workspace,
    mode: JudgeRef | Mode | None = None,
    *,
    address: str | None = None,
    actors: int = 2,
    concurrency: int | None = None,
    block_size: int | None = None,
    vllm_model: str | None = None,
    processor: str = "actors",
    progress: Progress | None = None,
    samples: list[Sample] | None = None,
) -> ScoreResult:
    """Judge every missing sample × subgoal pair on a Ray cluster and commit each block's judgments on
    the driver as the block finishes.

    `mode`: the JudgeRef, or a mode resolved with the settings (default GOALCOVER_JUDGE_MODE).
    `address`: see `connected`. `actors`: Ray Data actors sending calls (each needs ACTOR_CPUS of a CPU),
    each with `concurrency` calls in flight (default GOALCOVER_CONCURRENCY). `block_size`: calls per block
    (default: about four blocks per actor, at most MAX_BLOCK). Runs of more than WAVE calls go to Ray in
    several jobs, one after another. `processor`: "actors" or "http" (see the
    module docstring). `vllm_model`: judge with vLLM replicas on GPU workers instead of the configured
    endpoint (ray_llm.vllm_dataset). `progress(done, total, …)` after
    each block. Nothing is sent, and Ray is not contacted, when no pair is missing. Ctrl-C stops the job:
    blocks already committed stay, the run is recorded as interrupted and KeyboardInterrupt propagates.
    Returns the same ScoreResult as `scoring.score`. Raises BadInput (bad actors / block size, unknown
    mode, no samples) and ConfigError (no judge model, Ray missing or unreachable).
    """
    if actors < 1 or (block_size is not None and block_size < 1):
        raise BadInput("--actors and the block size must be at least 1")
    if processor not in ("actors", "http"):
        raise BadInput(f"--ray-processor {processor!r}: choose actors or http")
    if vllm_model and processor != "actors":
        raise BadInput("--vllm runs its own processor: leave out --ray-processor")
    judge = resolve_judge(ws, mode)  # a JudgeRef, or a mode (default GOALCOVER_JUDGE_MODE)
    if vllm_model:  # the vLLM model is the judge of this run: the plan looks up (and the rows carry) its cache keys
        judge = judge.with_model(vllm_model)
    return _score(ws, judge, address, actors, concurrency, block_size, vllm_model, processor, progress, samples)


def _score(ws: Workspace, judge: JudgeRef, address: str | None, actors: int, concurrency: int | None,
           block_size: int | None, vllm_model: str | None, processor: str, progress: Progress | None,
           samples: list[Sample] | None) -> ScoreResult:
    started = time.monotonic()
    mode = judge.mode
    score_plan, _, goal = plan(ws, judge, samples, keep_tasks=False)  # counts only; the tasks stream in waves
    # vLLM runs on the workers: no endpoint, so no key, is needed.
    config = judge.endpoint(ws.settings, need_key=not vllm_model)
    if score_plan.calls:
        require_ray()
    version = score_plan.prompt_version
    save_judge(ws, judge)
    run_id = ws.store.start_run("score", score_plan.model_dump() | {"engine": "ray", "actors": actors,
                                                                     "processor": "vllm" if vllm_model else processor})
    usage = Usage()
    counts = {"new": 0, "failed_now": 0, "done": 0}
    status, stopped = "interrupted", None
    try:
        if score_plan.calls:
            from goalcover.tools.scale import ray_llm

            anchors = ws.settings.judge_anchors
            caller = BulkJsonCaller(config, ws.settings)  # only builds request bodies (http), calls nothing

            def row(i: int, task: Task) -> dict[str, Any]:
                if processor == "http":
                    body = judge_request(caller, goal, task, mode, anchors, ws.settings.judge_logprobs, ws.settings.judge_context_tokens)
                    return {"i": i, "request": json.dumps(body)}
                return task_row(i, task, goal, mode, anchors, ws.settings.judge_context_tokens)

            size = block_size or max(1, min(MAX_BLOCK, math.ceil(min(score_plan.calls, WAVE) / (4 * actors))))
            stream = iter_tasks(ws, goal, mode, version, config.model, samples)
            with connected(address) as ray:
                # In waves of WAVE calls, streamed from the store: the driver never holds every prompt (or
                # every sample) of a 10^6-sample run at once.
                while tasks := list(islice(stream, WAVE)):
                    rows = [row(i, task) for i, task in enumerate(tasks)]
                    if vllm_model:
                        dataset = ray_llm.vllm_dataset(ray, rows, vllm_model, mode, ws.settings, actors, size)
                    elif processor == "http":
                        dataset = ray_llm.http_dataset(ray, rows, config, ws.settings, actors, size)
                    else:
                        dataset = judge_dataset(ray, rows, config, ws.settings, mode, actors,
                                                concurrency or ws.settings.concurrency, size)
                    del rows
                    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                        saved, failed = [], []
                        for out in _rows(batch):
                            task = tasks[out["i"]]
                            result = result_of(task, mode, out)
                            usage.add(result.usage)
                            good, bad = judgment_rows(task, mode, result, version, config.model)
                            saved += good
                            failed += bad
                            counts["done"] += 1
                        # Committed per block, before the next is read: what is not in the store is sent next run.
                        ws.store.save_judgments(saved)
                        save_fits(ws.store, saved)
                        ws.store.save_failures(failed)
                        counts["new"] += len(saved)
                        counts["failed_now"] += len(failed)
                        if progress:
                            progress(counts["done"], score_plan.calls, tokens=f"{usage.prompt_tokens + usage.completion_tokens:,}",
                                     cost=f"${usage.cost:.4f}", failed=counts["failed_now"])
        status = "done"
    except KeyboardInterrupt:
        stopped = "stopped by the user"
        raise
    finally:
        result = ScoreResult(
            judgments=0, calls=usage.calls, failed=0, cached=score_plan.cached, new=counts["new"], mode=mode,
            model=config.model, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            cost=round(usage.cost, 6), repaired=usage.repaired, stopped=stopped,
            elapsed_s=round(time.monotonic() - started, 3),
        )
        ws.store.finish_run(run_id, status, result.model_dump() | {"engine": "ray"})
    # The same closing counts as scoring.score: current judgments and still-failed pairs of these samples.
    hashes = None if samples is None else [s.content_hash for s in samples]
    _, result.judgments, result.failed = ws.store.pair_counts(version, config.model, {g.hash: g.id for g in goal.subgoals}, hashes)
    if samples is None:  # the coverage this run left, for history, diff and verify
        from goalcover.tools.history.versions import record_snapshot

        record_snapshot(ws, run_id)
    return result


def judge_dataset(ray, rows: list[dict], config: ModelConfig, settings: Settings, mode: Mode, actors: int,
                  concurrency: int, block_size: int):
    """The Ray Data pipeline of the actor processor: the rows in blocks of `block_size`, mapped by a pool
    of `actors` JudgeActors. A worker that dies is restarted and its unfinished blocks are sent again
    (Ray Data's actor pools default to max_restarts = max_task_retries = -1: restart forever, resend)."""
    blocks = max(1, math.ceil(len(rows) / block_size))
    return ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        JudgeActor,
        batch_size=block_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=ACTOR_CPUS,
        fn_constructor_kwargs={
            "config": config.model_dump(),
            "settings": settings.model_dump(mode="json"),
            "mode": mode,
            "top_logprobs": settings.judge_logprobs,
            "concurrency": concurrency,
            "actors": actors,
        },
    )
