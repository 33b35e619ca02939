"""Gap analysis after a cascade (`score --predict --min-precision P`): the samples the predictor decided
do not support a subgoal — weak, but never judged, so without an explanation to cluster — join the gaps.

Gaps are still found and named from the judge's explanations of its judged low scores (gaps.py). Each
predicted-weak sample is then placed in the gap of its subgoal whose judged members it is nearest to, by the
samples' own embeddings (the index's vectors: a vote of its 5 nearest judged members by cosine), unless it is
farther from every judged member than those members mostly are from each other; an
"uncovered" gap (almost nothing supports the subgoal) takes every predicted-weak sample. The summary states,
per subgoal, how many weak samples were judged and how many predicted, with the cascade's estimated
precision and recall of "weak" (predict.TargetPrediction.est_precision_weak / est_recall_weak, out-of-fold
on the judged sample). Without a stored cascade for the current goal, judge and sample design, nothing is
predicted and gaps are the judge's alone.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from goalcover.tools.core.workspace import Workspace

# A predicted-weak sample joins the gap most of its NEIGHBOURS nearest judged members are in, unless even
# its nearest one is farther than this quantile of the judged members' distances to their own nearest.
NEIGHBOURS = 5
FLOOR_QUANTILE = 0.05
FLOOR_SUBSET = 2_000


class WeakCount(BaseModel):
    """One subgoal's weak samples for gap analysis: judged low by the judge vs decided weak by the cascade's
    predictor, with the cascade's estimated precision/recall of "weak" (None when no cascade is stored)."""

    subgoal_id: str
    judged: int = Field(description="samples the judge scored below the support threshold")
    predicted: int = Field(0, description="samples the cascade's predictor decided do not support the subgoal (not judged)")
    in_gaps: int = Field(0, description="of the predicted ones, those placed in one of the subgoal's gaps")
    est_precision: float | None = Field(None, description="cascade's estimated precision of 'weak' (judged sample, out-of-fold)")
    est_recall: float | None = Field(None, description="cascade's estimated recall of 'weak' (judged sample, out-of-fold)")


def predicted_weak(ws: Workspace) -> dict[str, tuple[list[str], object]]:
    """subgoal id -> (sample ids, sorted, the cascade's predictor decided 'does not support', its stored
    predict.TargetPrediction row) for every subgoal with a stored cascade (a --min-precision run whose
    predictor is better than chance) for the current goal, judge and design; {} without one."""
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.judge.judge_ref import current_judge
    from goalcover.tools.measure import predict_store
    from goalcover.tools.measure.predict import OFF_GOAL, _target_hash, stored_rows

    rows = {k: r for k, r in stored_rows(ws).items() if k != OFF_GOAL and not r.chance and r.est_precision is not None}
    if not rows:
        return {}
    judge = current_judge(ws)
    hashes = _target_hash(current_goal(ws))
    by_hash: dict[str, list[str]] = {}
    for i, (h, _) in ws.store.sample_hashes().items():
        by_hash.setdefault(h, []).append(i)
    out = {}
    for target, row in rows.items():
        stored = predict_store.predictions(ws, hashes[target], *judge.key)
        weak = sorted(i for h, (_, _, d, by) in stored.items() if by == "predictor" and d == 0 for i in by_hash.get(h, []))
        out[target] = (weak, row)
    return out


def place(member_vectors: list[np.ndarray], candidates: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """For candidate unit vectors (m, d): the index of the group in `member_vectors` (each (n_g, d), the
    judged members of one gap) with the largest summed (1 + cosine) over its `k` nearest judged members;
    -1 where its nearest member is less similar than FLOOR_QUANTILE of the members' own
    nearest-other-member similarities (an outlier to every gap)."""
    if not len(candidates) or not member_vectors:
        return np.full(len(candidates), -1, dtype=int)
    members = np.concatenate(member_vectors)
    group = np.concatenate([np.full(len(m), g) for g, m in enumerate(member_vectors)])
    k = max(1, min(k, len(members)))
    # The floor from at most FLOOR_SUBSET members' nearest other member (seeded), so memory stays linear.
    subset = np.random.default_rng(0).choice(len(members), min(FLOOR_SUBSET, len(members)), replace=False)
    inner = members[subset] @ members.T
    inner[np.arange(len(subset)), subset] = -np.inf
    floor = float(np.quantile(inner.max(axis=1), FLOOR_QUANTILE)) if len(members) > 1 else -1.0
    out = np.empty(len(candidates), dtype=int)
    step = max(1, 20_000_000 // len(members))  # candidates × members similarities per chunk (~80 MB)
    for start in range(0, len(candidates), step):
        sims = candidates[start : start + step] @ members.T
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < len(members) else np.tile(np.arange(len(members)), (len(sims), 1))
        near_sims = np.take_along_axis(sims, near, axis=1)
        votes = np.zeros((len(sims), len(member_vectors)))
        np.add.at(votes, (np.repeat(np.arange(len(sims)), k), group[near].ravel()), (near_sims + 1.0).ravel())
        out[start : start + step] = np.where(near_sims.max(axis=1) >= floor, votes.argmax(axis=1), -1)
    return out


def attach_predicted(ws: Workspace, gaps: list) -> list:
    """The gaps (gaps.Gap, judged members) with `predicted_ids` / `predicted_size` filled from the
    cascade's predicted-weak samples of their subgoal (module docstring); unchanged without a cascade.
    Reads the index's vectors of the gaps' members and the candidates (CPU; call it in a worker thread)."""
    from goalcover.tools.measure.strata import sample_vectors

    weak = predicted_weak(ws)
    out = list(gaps)
    for subgoal_id, (ids, _) in weak.items():
        mine = [k for k, g in enumerate(out) if g.subgoal_id == subgoal_id]
        if not mine or not ids:
            continue
        uncovered = [k for k in mine if out[k].kind == "uncovered"]
        if uncovered:
            out[uncovered[0]] = out[uncovered[0]].model_copy(update={"predicted_ids": ids, "predicted_size": len(ids)})
            continue
        members = {m for k in mine for m in out[k].member_ids}
        vectors = sample_vectors(ws, sorted(members | set(ids)))
        groups = [np.stack([vectors[m] for m in out[k].member_ids if m in vectors]) for k in mine
                  if any(m in vectors for m in out[k].member_ids)]
        usable = [k for k in mine if any(m in vectors for m in out[k].member_ids)]
        known = [i for i in ids if i in vectors]
        where = place(groups, np.stack([vectors[i] for i in known]) if known else np.zeros((0, 1), np.float32))
        for j, k in enumerate(usable):
            got = [i for i, w in zip(known, where) if w == j]
            out[k] = out[k].model_copy(update={"predicted_ids": got, "predicted_size": len(got)})
    return out


def weak_counts(ws: Workspace, gaps: list) -> list[WeakCount]:
    """One WeakCount per subgoal that has gaps in `gaps` (in their order): judged low samples (one SQL
    query each), the cascade's predicted-weak samples, how many of those the gaps hold, and the cascade's
    estimated precision/recall of 'weak'."""
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.judge.judge_ref import current_judge

    judge = current_judge(ws)
    goal = current_goal(ws, required=False)
    if not judge or goal is None:
        return []
    weak = predicted_weak(ws)
    out = []
    for subgoal_id in dict.fromkeys(g.subgoal_id for g in gaps):
        subgoal = next((s for s in goal.subgoals if s.id == subgoal_id), None)
        if subgoal is None:
            continue
        judged = len(ws.store.low_scored(*judge.key, subgoal.hash, ws.settings.support_threshold))
        ids, row = weak.get(subgoal_id, ([], None))
        count = WeakCount(subgoal_id=subgoal_id, judged=judged, predicted=len(ids),
                          in_gaps=sum(g.predicted_size for g in gaps if g.subgoal_id == subgoal_id))
        if row is not None:
            count.est_precision, count.est_recall = row.est_precision_weak, row.est_recall_weak
        out.append(count)
    return out
