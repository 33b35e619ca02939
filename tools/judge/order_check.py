"""Batched mode's order effect, measured: re-score a few samples with their subgoals shuffled and count
the verdicts that change.

A judge that reads five subgoals in one prompt may score a subgoal differently by where it stands in the
list (position bias; Zheng et al. 2023, "Judging LLM-as-a-judge"). The check re-asks the same judge, same
prompt version, about `n` randomly drawn samples already judged on every subgoal, with the subgoals in a
shuffled order, and compares each 1-5 verdict with the stored one. The re-scored verdicts are not stored
as judgments (the stored ones stay the reference); the result is kept in the workspace meta, where the
coverage report reads it (tools/judge/judge_quality.py).
"""

from __future__ import annotations

import asyncio
import random

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.goal import current_goal
from goalcover.tools.judge.judge_quality import ORDER_CHECK_KEY, OrderCheck
from goalcover.tools.judge.llm import BulkJsonCaller, Limits
from goalcover.tools.judge.scoring import Task, judge_messages, judge_spec
from goalcover.tools.judge.judge_ref import current_judge
from goalcover.tools.core.workspace import Workspace


async def order_check(ws: Workspace, n: int = 8, seed: int = 0) -> OrderCheck:
    """Re-score up to `n` samples (drawn with `seed` among those the last batched run judged on every
    subgoal) with the subgoals shuffled, compare verdicts, save and return the OrderCheck. Calls made:
    one per sample. Raises BadInput when the last run was not batched, the goal has one subgoal, or no
    sample is fully judged."""
    goal = current_goal(ws)
    assert goal is not None
    judge = current_judge(ws)
    if judge is None or judge.mode != "batched":
        raise BadInput("the order check re-scores a batched run: run `goalcover score --mode batched` first")
    if judge.jurors:
        raise BadInput("the order check measures one judge; the current scores are a jury's consensus")
    if len(goal.subgoals) < 2:
        raise BadInput("the order check needs at least two subgoals to shuffle")
    version, model = judge.key
    ids = {s.content_hash: s.id for s in ws.store.iter_samples()}  # one id per content: memory is hashes only
    keys = ws.store.judged_pairs(version, model, list(ids))
    complete = [h for h in ids if all((h, g.hash) in keys for g in goal.subgoals)]
    if not complete:
        raise BadInput("no sample is judged on every subgoal yet: run `goalcover score` first")
    rng = random.Random(seed)
    drawn = rng.sample(sorted(complete), min(n, len(complete)))
    samples = {s.content_hash: s for s in ws.store.samples([ids[h] for h in drawn])}
    judged = ws.store.judgments_among(version, model, drawn)
    config = judge.endpoint(ws.settings)
    caller = BulkJsonCaller(config, ws.settings, limits=Limits.from_settings(ws.settings))
    gate = asyncio.Semaphore(ws.settings.concurrency)
    anchors = ws.settings.judge_anchors

    async def rescore(h: str) -> tuple[int, int]:
        order = list(goal.subgoals)
        while len(order) > 1 and order == goal.subgoals:  # a shuffle that keeps the order measures nothing
            rng.shuffle(order)
        task = Task(samples[h], order)
        spec = judge_spec(task, "batched")
        async with gate:
            result = await caller.call(judge_messages(goal, order, task.sample, anchors, "batched", ws.settings.judge_context_tokens), spec.schema,
                                       name="judgment", json_schema=spec.json_schema, max_tokens=spec.max_tokens)
        if result.value is None:
            return 0, 0
        changed = sum(getattr(result.value, g.id).score != judged[(h, g.hash)][0] for g in goal.subgoals)
        return len(goal.subgoals), changed

    try:
        counts = await asyncio.gather(*(rescore(h) for h in drawn))
    finally:
        await caller.aclose()
    verdicts = sum(v for v, _ in counts)
    changed = sum(c for _, c in counts)
    check = OrderCheck(prompt_version=version, model=model, samples=len(drawn), verdicts=verdicts, changed=changed,
                       consistency=round(1 - changed / verdicts, 4) if verdicts else 0.0)
    ws.store.set_meta(ORDER_CHECK_KEY, check.model_dump())
    return check
