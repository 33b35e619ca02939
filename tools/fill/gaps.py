"""Capability gaps: the low-score explanations of weak subgoals, embedded, clustered and named.

The judge already explained, for every sample, what it lacks for each subgoal. For a weak subgoal, the
explanations of samples below the support threshold are embedded (only those, on demand, cached by
content across runs: see `vectors`) and clustered (scikit-learn's HDBSCAN after a PCA, with a fallback for a handful of points), and
the LLM names each cluster: the missing capability and what would fill it. A subgoal that almost nothing
supports gets one "uncovered" gap whose aspects the LLM proposes. Labels are cached by their input, so
rerunning on unchanged data makes no LLM call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Literal

import numpy as np
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from goalcover.tools.measure.coverage import coverage
from goalcover.tools.core.errors import BadInput, GoalCoverError
from goalcover.tools.core.goal import current_goal
from goalcover.tools.judge.llm import JsonCaller
from goalcover.tools.core.shapes import Goal, Subgoal
from goalcover.tools.judge.prompts import GAP_LABEL_SYSTEM, GAPS_PROMPT_VERSION, UNCOVERED_SYSTEM, format_subgoals
from goalcover.tools.core.store import GAP_COUNTER_KEY, GAPS_KEY
from goalcover.tools.judge.judge_ref import current_judge
from goalcover.tools.data.vectors import cached_vectors
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.core.untrusted import untrusted
from goalcover.tools.core.lock import writes

# A new cluster is the same gap as a stored one when they share at least this share of their members.
SAME_GAP_OVERLAP = 0.5
MAX_GAPS_PER_SUBGOAL = 5
REPRESENTATIVES = 5
EXPLANATIONS_PER_LABEL = 8
# Below this many explanations a density-based clustering has nothing to work with.
MIN_FOR_HDBSCAN = 12
PCA_DIMENSIONS = 16
# HDBSCAN grows worse than quadratically in 16 dimensions; past this many points it clusters a seeded
# random subset and assigns the rest to the nearest cluster, which keeps the cost linear in the data.
MAX_DIRECT = 20_000


class Gap(BaseModel):
    """A capability gap of one subgoal: a cluster of low-scoring samples (or, kind `uncovered`, all of them
    when almost nothing supports the subgoal), named by the agent model. Ids G1, G2, … are stable across
    reruns."""

    id: str
    subgoal_id: str
    kind: Literal["cluster", "uncovered"] = "cluster"
    label: str
    description: str
    fill_hint: str = ""
    aspects: list[str] = []
    size: int = Field(description="low-scoring samples in this gap")
    sample_ids: list[str] = Field(description="representative samples, most typical first")
    member_ids: list[str] = Field(default_factory=list, description="every sample in the gap")
    predicted_size: int = Field(0, description="samples the cascade's predictor decided weak (not judged) placed in this gap (gaps_predicted.py)")
    predicted_ids: list[str] = Field(default_factory=list, description="those samples' ids")


class GapLabel(BaseModel):
    """What the agent model returns to name a cluster."""

    label: str = Field(min_length=1, description="3 to 8 words")
    description: str = Field(min_length=1, description="the capability the data lacks")
    fill_hint: str = Field(min_length=1, description="what kind of new sample would close the gap")


class UncoveredAspects(BaseModel):
    """What the agent model returns for a subgoal nothing supports: its label and the aspects new samples
    should cover."""

    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    aspects: list[str] = Field(min_length=1, max_length=8)


# --- clustering -------------------------------------------------------------------------------------

def cluster(vectors: np.ndarray, min_cluster_size: int | None = None) -> np.ndarray:
    """Cluster labels (-1 = noise) for unit vectors. Deterministic for the same input order."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n < MIN_FOR_HDBSCAN:
        return _small_clusters(vectors)
    if n > MAX_DIRECT:
        return _cluster_then_assign(vectors, min_cluster_size)
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    # HDBSCAN's trees work in a few dimensions; 384 would make it quadratic. Unit vectors keep
    # Euclidean distance a monotone function of cosine distance.
    reduced = PCA(n_components=min(PCA_DIMENSIONS, n - 1, vectors.shape[1]), random_state=0).fit_transform(vectors)
    size = min_cluster_size or max(3, min(50, n // 25))
    labels = HDBSCAN(min_cluster_size=size, min_samples=min(size, 5), copy=True).fit_predict(reduced)
    if labels.max() < 0:  # all noise: fall back rather than report no gap at all
        return _small_clusters(vectors)
    return labels


def _cluster_then_assign(vectors: np.ndarray, min_cluster_size: int | None) -> np.ndarray:
    rng = np.random.default_rng(0)
    subset = np.sort(rng.choice(len(vectors), MAX_DIRECT, replace=False))
    sub_labels = cluster(vectors[subset], min_cluster_size)
    found = sorted(set(sub_labels.tolist()) - {-1})
    labels = np.full(len(vectors), -1, dtype=int)
    if not found:
        return labels
    centroids = np.stack([vectors[subset][sub_labels == c].mean(axis=0) for c in found])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    # A point joins its nearest cluster only if it is as close as that cluster's own members mostly are.
    member_sims = [vectors[subset][sub_labels == c] @ centroids[i] for i, c in enumerate(found)]
    floors = np.array([np.quantile(s, 0.05) for s in member_sims])
    for start in range(0, len(vectors), 50_000):
        sims = vectors[start : start + 50_000] @ centroids.T
        best = sims.argmax(axis=1)
        ok = sims[np.arange(len(best)), best] >= floors[best]
        labels[start : start + 50_000] = np.where(ok, np.array(found)[best], -1)
    labels[subset] = sub_labels
    return labels


def _small_clusters(vectors: np.ndarray) -> np.ndarray:
    """A handful of explanations: agglomerative clustering by cosine distance, one cluster if all are alike."""
    n = len(vectors)
    if n < 3:
        return np.zeros(n, dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=None, distance_threshold=0.6, metric="cosine", linkage="average").fit_predict(
        vectors
    )


def _representatives(ids: list[str], vectors: np.ndarray, k: int) -> list[str]:
    centroid = vectors.mean(axis=0)
    order = np.argsort(-(vectors @ centroid), kind="stable")
    return [ids[i] for i in order[:k]]


# --- finding gaps -----------------------------------------------------------------------------------

def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@writes("gaps")
async def find_gaps(ws: Workspace, subgoal_id: str | None = None) -> list[Gap]:
    """Gaps of every weak subgoal (and of `subgoal_id`, weak or not), stored in the workspace; returns
    those of `subgoal_id` when given, else all.

    Clustering runs in a worker thread (CPU); naming calls the agent model once per new cluster (labels are
    cached by their input, so unchanged data costs nothing). Ids are stable: a cluster that shares most of
    its members with a stored gap of the same subgoal keeps that gap's id; new clusters get ids never used
    before in this workspace. Raises GoalCoverError when nothing is scored yet or a label cannot be had,
    BadInput for an unknown subgoal.
    """
    goal = current_goal(ws)
    assert goal is not None
    wanted = goal.subgoal(subgoal_id) if subgoal_id else None
    judge = current_judge(ws)
    if judge is not None and judge.mode == "probe":  # a probe judge wrote no explanations: write the ones read below, now
        from goalcover.tools.judge.probe import explain_low

        report = await asyncio.to_thread(coverage, ws)
        weak = {r.id for r in report.subgoals if r.weak}
        await explain_low(ws, [g for g in goal.subgoals if g.id in weak or (wanted and g.id == wanted.id)], judge)
    targets, pending = await asyncio.to_thread(_clusters, ws, goal, wanted)
    names: list[dict] = []
    if pending:
        async with JsonCaller(ws.settings.model_for("agent"), ws.settings) as caller:
            jobs = [
                asyncio.ensure_future(
                    _uncovered(ws, caller, goal, subgoal) if explanations is None else _label(ws, caller, goal, subgoal, explanations)
                )
                for subgoal, _, _, explanations in pending
            ]
            try:
                names = await asyncio.shield(asyncio.gather(*jobs))
            except asyncio.CancelledError:
                # Stopped: labels already asked for are paid; let them arrive and be cached, so the next
                # run does not pay for them again. A second cancellation abandons them.
                await asyncio.gather(*jobs, return_exceptions=True)
                raise
    fresh = [
        Gap(
            id="",
            subgoal_id=subgoal.id,
            kind="uncovered" if explanations is None else "cluster",
            label=name["label"],
            description=name["description"],
            fill_hint=name.get("fill_hint") or "new samples covering: " + "; ".join(name.get("aspects", [])),
            aspects=name.get("aspects", []),
            size=len(members),
            sample_ids=reps[:REPRESENTATIVES],
            member_ids=members,
        )
        for (subgoal, members, reps, explanations), name in zip(pending, names)
    ]
    if fresh:  # after a cascade, the samples its predictor decided weak join their nearest gap
        from goalcover.tools.fill.gaps_predicted import attach_predicted

        fresh = await asyncio.to_thread(attach_predicted, ws, fresh)
    last = ws.store.get_meta(GAP_COUNTER_KEY, 0)
    before = stored_gaps(ws)
    gaps = assign_ids(fresh, before, last)
    # Gaps of subgoals this run did not look at (found earlier with --subgoal) stay, as long as the
    # subgoal does: a later `goalcover gaps` must not take away a gap the user is filling.
    current = {s.id for s in goal.subgoals}
    kept = [g for g in before if g.subgoal_id in current and g.subgoal_id not in targets]
    ws.store.set_meta(GAP_COUNTER_KEY, max([last] + [_number(g.id) for g in gaps]))
    ws.store.set_meta(GAPS_KEY, [g.model_dump() for g in kept + gaps])
    from goalcover.tools.history.versions import record_gaps

    record_gaps(ws)  # the gaps of this version, for diffs that match gaps by members
    return [g for g in gaps if wanted is None or g.subgoal_id == wanted.id]


def _clusters(
    ws: Workspace, goal: Goal, wanted: Subgoal | None
) -> tuple[set[str], list[tuple[Subgoal, list[str], list[str], list[str] | None]]]:
    """The target subgoal ids (the weak ones and `wanted`), and (subgoal, member ids, representative ids,
    explanations to name it by — None for `uncovered`) for each cluster of their low-score explanations.
    CPU work: embedding and clustering."""
    report = coverage(ws)
    if not report.judge:
        raise GoalCoverError("no scores yet: run `goalcover score` first")
    threshold = ws.settings.support_threshold
    judge = report.judge
    targets = [s for s in goal.subgoals if (wanted and s.id == wanted.id) or any(r.id == s.id and r.weak for r in report.subgoals)]
    pending: list[tuple[Subgoal, list[str], list[str], list[str] | None]] = []
    for subgoal in targets:
        row = next(r for r in report.subgoals if r.id == subgoal.id)
        # Only the low-score judgments of this subgoal are read (one SQL query), not every judgment.
        found = ws.store.low_scored(*judge.key, subgoal.hash, threshold)
        # A probe judge explains only a capped subset (probe.explain_low): cluster what is explained.
        found = [f for f in found if f[2]] or found
        low = [sid for sid, _, _ in found]
        score_of = {sid: score for sid, score, _ in found}
        explanation_of = {sid: text for sid, _, text in found}
        if not low:
            continue
        if row.supporting <= max(1, int(ws.settings.uncovered_share * report.samples)):
            best = sorted(low, key=lambda sid: (-score_of[sid], sid))
            pending.append((subgoal, low, best[:REPRESENTATIVES], None))
            continue
        # Only these explanations are embedded, on demand and cached by content (scoring embeds none).
        ids = low
        vectors = cached_vectors(ws, [explanation_of[sid] for sid in ids])
        labels = cluster(vectors)
        groups = sorted(
            ([i for i, l in enumerate(labels) if l == label] for label in set(labels.tolist()) if label >= 0),
            key=lambda members: (-len(members), ids[members[0]]),
        )[:MAX_GAPS_PER_SUBGOAL]
        for members in groups:
            member_ids = [ids[i] for i in members]
            reps = _representatives(member_ids, vectors[members], max(REPRESENTATIVES, EXPLANATIONS_PER_LABEL))
            pending.append((subgoal, member_ids, reps, [explanation_of[i] for i in reps[:EXPLANATIONS_PER_LABEL]]))
    return {s.id for s in targets}, pending


def _number(gap_id: str) -> int:
    return int(gap_id[1:]) if gap_id[1:].isdigit() else 0


def jaccard(a: list[str], b: list[str]) -> float:
    """|a ∩ b| / |a ∪ b| of two id lists (0.0 when both are empty)."""
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def assign_ids(fresh: list[Gap], stored: list[Gap], last_number: int = 0) -> list[Gap]:
    """Give each new gap the id of the stored gap of the same subgoal it overlaps most (Jaccard of members
    at least SAME_GAP_OVERLAP; best pairs first, each stored id used once); the others get G<n> with n
    above every id issued so far (`last_number` and the stored ones), so an id never changes meaning."""
    pairs = sorted(
        (-jaccard(new.member_ids, old.member_ids), i, old.id)
        for i, new in enumerate(fresh)
        for old in stored
        if old.subgoal_id == new.subgoal_id
    )
    ids: dict[int, str] = {}
    taken: set[str] = set()
    for negative, i, old_id in pairs:
        if -negative < SAME_GAP_OVERLAP or i in ids or old_id in taken:
            continue
        ids[i] = old_id
        taken.add(old_id)
    counter = max([last_number] + [_number(g.id) for g in stored])
    out = []
    for i, gap in enumerate(fresh):
        if i not in ids:
            counter += 1
            ids[i] = f"G{counter}"
        out.append(gap.model_copy(update={"id": ids[i]}))
    return out


def stored_gaps(ws: Workspace) -> list[Gap]:
    """The gaps the last `find_gaps` stored, in its order; reads only (no clustering, no model)."""
    return [Gap.model_validate(g) for g in ws.store.get_meta(GAPS_KEY, [])]


def get_gap(ws: Workspace, gap_id: str) -> Gap:
    """The stored gap `gap_id` (case-insensitive); raises BadInput naming the gaps there are."""
    gaps = stored_gaps(ws)
    for gap in gaps:
        if gap.id == gap_id.upper():
            return gap
    known = ", ".join(g.id for g in gaps) or "none yet (run `goalcover gaps`)"
    raise BadInput(f"no gap {gap_id!r}; the workspace has {known}")


async def _label(ws: Workspace, caller: JsonCaller, goal: Goal, subgoal: Subgoal, explanations: list[str]) -> dict:
    data = "\n".join(f"- {untrusted(e)}" for e in explanations)
    messages = [
        SystemMessage(GAP_LABEL_SYSTEM.format(goal=goal.text, subgoal=format_subgoals([subgoal]))),
        HumanMessage(f"<explanations>\n{data}\n</explanations>"),
    ]
    key = _key(GAPS_PROMPT_VERSION, caller.config.model, goal.text, subgoal.hash, explanations)
    return await _cached_call(ws, caller, key, messages, GapLabel, "gap_label", f"name a gap of {subgoal.id}", 400)


async def _uncovered(ws: Workspace, caller: JsonCaller, goal: Goal, subgoal: Subgoal) -> dict:
    messages = [
        SystemMessage(UNCOVERED_SYSTEM.format(goal=goal.text, subgoal=format_subgoals([subgoal]))),
        HumanMessage(f"Propose the aspects for {subgoal.id}."),
    ]
    key = _key(GAPS_PROMPT_VERSION, "uncovered", caller.config.model, goal.text, subgoal.hash)
    return await _cached_call(
        ws, caller, key, messages, UncoveredAspects, "uncovered_aspects", f"propose aspects for {subgoal.id}", 600
    )


async def _cached_call(
    ws: Workspace, caller: JsonCaller, key: str, messages, schema, name: str, what: str, max_tokens: int
) -> dict:
    """An answer that depends only on its input: from the workspace's cache, else from the model (then cached)."""
    if (hit := ws.store.cached(key)) is not None:
        return hit
    result = await caller.call(messages, schema, name=name, max_tokens=max_tokens)
    if result.value is None:
        raise GoalCoverError(f"the model could not {what}: {result.error}")
    ws.store.cache(key, result.value.model_dump())
    return result.value.model_dump()
