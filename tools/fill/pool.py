"""A pool of candidate real samples, kept apart from the dataset, and filling a gap from it.

`add_to_pool` reads a file with the dataset's readers and checks (and the dataset's shape, so an accepted
fill exports losslessly in the dataset's own shape), stores the samples in the `pool_samples` table and
embeds them into the workspace's own `pool` Chroma collection. `fill_from_pool` retrieves the pool samples
nearest to a gap (its subgoal, label, description and fill hint), drops exact and near duplicates of the
dataset, of earlier fills and of each other, judges the rest against every subgoal with the dataset's judge
(the same cache by content: nothing is paid twice), keeps those that support the gap's subgoal, and
proposes them for review exactly like synthetic candidates (`synthetic` rows with model `pool`), with
their provenance (pool file and line) in `fill_provenance`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from goalcover.tools.core.errors import BadInput
from goalcover.tools.fill.gaps import get_gap
from goalcover.tools.core.goal import current_goal
from goalcover.tools.core.shapes import Sample, content_hash
from goalcover.tools.core.store import Store
from goalcover.tools.judge.judge_ref import current_judge
from goalcover.tools.data.values import from_storable, to_storable
from goalcover.tools.core.workspace import Workspace

POOL = "pool"
POOL_MODEL = "pool"  # the `model` of a synthetic row that came from the pool
POOL_PROMPT_VERSION = "pool-v1"
# How many pool samples are retrieved per candidate asked for: duplicates and non-supporters fall out.
OVERFETCH = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS pool_samples (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    line INTEGER NOT NULL,
    format TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    record TEXT NOT NULL,
    text TEXT NOT NULL,
    added_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS fill_provenance (
    fill_id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, source TEXT NOT NULL, line INTEGER NOT NULL
);
"""


def _db(store: Store):
    """The store's connection with the pool tables created on this Store's first use."""
    if not getattr(store, "_pool_ready", False):
        store.db.executescript(SCHEMA)
        store._pool_ready = True  # type: ignore[attr-defined]
    return store.db


class PoolAddResult(BaseModel):
    """`goalcover pool add --json`."""

    file: str
    samples: int = Field(description="valid samples read")
    new: int = Field(description="samples not in the pool before (by content)")
    in_dataset: int = Field(description="samples whose content the dataset already holds (kept, never proposed)")
    pool_size: int
    invalid: int = 0


class PoolFillResult(BaseModel):
    """`goalcover pool fill --json`: what was retrieved, dropped, judged and proposed for review."""

    gap_id: str
    subgoal_id: str
    retrieved: int
    duplicates: int = Field(description="exact or near (cosine >= dedup_threshold) duplicates of the data, of fills or of each other")
    judged: int
    kept: int = Field(description="proposed for review: they support the gap's subgoal")
    rejected_by_judge: int
    calls: int = 0
    cost: float = 0.0
    est_cost: float = Field(0.0, description="the judging plan's estimate, shown before any call")
    to_score: int = Field(0, description="sample × subgoal pairs not in the judgment cache")
    dry_run: bool = False
    kept_ids: list[str] = []
    provenance: list[dict] = Field(default_factory=list, description="[{id, source, line}] of the kept samples")


def add_to_pool(ws: Workspace, path: Path) -> PoolAddResult:
    """Read `path` into the pool (same readers and checks as ingest; the dataset's shape, so a fill can be
    exported losslessly) and embed its new samples into the `pool` collection. Re-adding a file adds
    only content the pool lacks. Raises BadInput for a bad file or a shape other than the dataset's."""
    from goalcover.tools.data.embeddings import embed
    from goalcover.tools.data.index import sample_metadata
    from goalcover.tools.data.records import scan

    sources = ws.store.sources()
    if not sources:
        raise BadInput(f"the workspace {ws.root} holds no dataset yet; run `goalcover ingest FILE` first")
    shape = sources[0]["shape"]
    settings = ws.settings
    reading = scan(path, "auto", max_sample_chars=settings.max_sample_chars, warn_sample_chars=settings.warn_sample_chars,
                   max_expansion=settings.ingest_max_expansion)
    samples = list(reading.samples)
    if reading.shape is not None and reading.shape != shape:
        raise BadInput(f"{reading.path}: is {reading.shape}, but the dataset is {shape}; the pool takes the dataset's shape, "
                       "so that an accepted fill is exported in it losslessly")
    db = _db(ws.store)
    known = {h for (h,) in db.execute("SELECT content_hash FROM pool_samples")}
    dataset = {h for h, _ in ws.store.sample_hashes().values()}
    fresh: dict[str, Sample] = {}
    for s in samples:
        if s.content_hash not in known and s.content_hash not in fresh:
            fresh[s.content_hash] = s
    rows = [
        (f"pool-{h[:16]}", str(reading.path), s.line, s.format, h, json.dumps(to_storable(s.record), ensure_ascii=False), s.text)
        for h, s in fresh.items()
    ]
    if rows:
        vectors = embed([r[6] for r in rows], settings.embed_batch_size)
        metas = [{**sample_metadata(s)[0], "source": Path(r[1]).name} for r, s in zip(rows, fresh.values())]
        ws.index.upsert([r[0] for r in rows], vectors, [r[6] for r in rows], metas, name=POOL)
        with ws.store.transaction() as conn:  # after the vectors: a pool row always has its vector
            conn.executemany(
                "INSERT OR IGNORE INTO pool_samples (id, source, line, format, content_hash, record, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    size = db.execute("SELECT COUNT(*) FROM pool_samples").fetchone()[0]
    return PoolAddResult(file=str(reading.path), samples=len(samples), new=len(rows),
                         in_dataset=sum(s.content_hash in dataset for s in samples), pool_size=size,
                         invalid=reading.rejected_count)


def pool_samples(ws: Workspace, ids: list[str]) -> list[Sample]:
    """The pool samples with these ids, in this order (unknown ids are skipped)."""
    db = _db(ws.store)
    out = []
    for i in ids:
        row = db.execute("SELECT id, source, line, format, record, text FROM pool_samples WHERE id = ?", (i,)).fetchone()
        if row:
            out.append(Sample(id=row[0], source=row[1], line=row[2], format=row[3], record=from_storable(json.loads(row[4])), text=row[5]))
    return out


def provenance(ws: Workspace, fill_ids: list[str] | None = None) -> dict[str, dict]:
    """fill id -> {pool_id, source, line} of the fills that came from the pool."""
    rows = _db(ws.store).execute("SELECT fill_id, pool_id, source, line FROM fill_provenance").fetchall()
    wanted = None if fill_ids is None else set(fill_ids)
    return {f: {"pool_id": p, "source": s, "line": ln} for f, p, s, ln in rows if wanted is None or f in wanted}


def _query_text(ws: Workspace, gap, subgoal) -> str:
    return ". ".join(x for x in (subgoal.title, subgoal.description, gap.label, gap.description, gap.fill_hint) if x)


def _drop_duplicates(ws: Workspace, candidates: list[Sample], vectors: np.ndarray) -> tuple[list[int], int]:
    """Indexes of candidates that are neither exact nor near duplicates (cosine >= dedup_threshold) of the
    dataset, of synthetic/pool fills already proposed, or of an earlier candidate; and how many were dropped."""
    from goalcover.tools.data.embeddings import embed

    threshold = ws.settings.dedup_threshold
    known = {h for h, _ in ws.store.sample_hashes().values()}
    earlier = ws.store.synthetic_rows()
    known |= {content_hash(r["text"]) for r in earlier}
    earlier_vectors = embed([r["text"] for r in earlier], ws.settings.embed_batch_size) if earlier else np.zeros((0, vectors.shape[1]))
    collection = ws.index.collection()
    nearest = collection.query(query_embeddings=vectors, n_results=1, include=["distances"]) if collection.count() and len(vectors) else None
    kept: list[int] = []
    dropped = 0
    for i, cand in enumerate(candidates):
        sim_data = 1.0 - nearest["distances"][i][0] if nearest and nearest["distances"][i] else 0.0
        near = any(float(vectors[i] @ vectors[j]) >= threshold for j in kept) or any(float(vectors[i] @ v) >= threshold for v in earlier_vectors)
        if cand.content_hash in known or sim_data >= threshold or near:
            dropped += 1
            continue
        known.add(cand.content_hash)
        kept.append(i)
    return kept, dropped


def _prepare(ws: Workspace, gap_id: str, n: int):
    """Retrieve, de-duplicate and plan (no model call): (result so far, candidates, judging plan or None, subgoal)."""
    from goalcover.tools.judge import scoring
    from goalcover.tools.data.embeddings import embed

    if n < 1:
        raise BadInput("pool fill: -n must be at least 1")
    gap = get_gap(ws, gap_id)
    goal = current_goal(ws)
    assert goal is not None
    subgoal = goal.subgoal(gap.subgoal_id)
    judge = current_judge(ws)
    if judge is None:
        raise BadInput("nothing is scored yet: run `goalcover score` first")
    if not _db(ws.store).execute("SELECT COUNT(*) FROM pool_samples").fetchone()[0]:
        raise BadInput("the pool is empty: add candidate samples with `goalcover pool add FILE`")
    proposed = {r["id"] for r in ws.store.synthetic_rows()}
    hits = ws.index.search(_query_text(ws, gap, subgoal), k=OVERFETCH * n + len(proposed), name=POOL)
    ids = [h.id for h in hits if _fill_id(h.id, gap.id) not in proposed][: OVERFETCH * n]
    candidates = pool_samples(ws, ids)
    vectors = embed([c.text for c in candidates], ws.settings.embed_batch_size)
    keep, duplicates = _drop_duplicates(ws, candidates, vectors)
    candidates = [candidates[i] for i in keep][:n]
    result = PoolFillResult(gap_id=gap.id, subgoal_id=subgoal.id, retrieved=len(ids), duplicates=duplicates,
                            judged=len(candidates), kept=0, rejected_by_judge=0)
    if not candidates:
        return result, candidates, None, subgoal
    plan, _, _ = scoring.plan(ws, judge.mode, candidates, keep_tasks=False)
    result.est_cost, result.to_score = plan.est_cost, plan.to_score
    return result, candidates, plan, subgoal


def pool_fill_plan(ws: Workspace, gap_id: str, n: int = 50) -> PoolFillResult:
    """What `fill_from_pool` would do (retrieved, duplicates, samples and pairs to judge, estimated cost),
    computed without any model call. Raises BadInput as fill_from_pool does."""
    result, _, _, _ = _prepare(ws, gap_id, n)
    result.dry_run = True
    return result


async def fill_from_pool(ws: Workspace, gap_id: str, n: int = 50, *, dry_run: bool = False,
                         max_cost: float | None = None) -> PoolFillResult:
    """Propose up to `n` pool samples for gap `gap_id` (see the module doc). With `dry_run`, retrieve and
    de-duplicate, and return the judging plan (pairs to score, estimated cost) without any call. Raises
    BadInput (n < 1, unknown gap, empty pool, nothing scored yet)."""
    from goalcover.tools.judge import scoring

    result, candidates, plan, subgoal = await asyncio.to_thread(_prepare, ws, gap_id, n)
    result.dry_run = dry_run
    if plan is None or dry_run:
        return result
    if plan.to_score:
        judged = await scoring.score(ws, plan.mode, samples=candidates, max_cost=max_cost)
        result.calls, result.cost = judged.calls, judged.cost
    verdicts = ws.store.judgments_among(plan.prompt_version, plan.model, [c.content_hash for c in candidates])
    from goalcover.tools.measure.coverage import supports

    rows, prov = [], []
    for cand in candidates:
        verdict = verdicts.get((cand.content_hash, subgoal.hash))
        if verdict is None or not supports(verdict[0], verdict[2], ws.settings):
            result.rejected_by_judge += 1
            continue
        fill_id = _fill_id(cand.id, result.gap_id)
        rows.append({
            "id": fill_id, "gap_id": result.gap_id, "subgoal_id": subgoal.id, "format": cand.format, "record": cand.record,
            "text": cand.text, "model": POOL_MODEL, "prompt_version": POOL_PROMPT_VERSION, "judge_score": verdict[0],
            "judge_explanation": verdict[1], "state": "proposed", "content_hash": cand.content_hash,
        })
        prov.append((fill_id, cand.id, cand.source, cand.line))
    with ws.store.transaction() as conn:  # provenance before the rows it describes: a proposal never lacks it
        conn.executemany("INSERT OR REPLACE INTO fill_provenance (fill_id, pool_id, source, line) VALUES (?, ?, ?, ?)", prov)
    ws.store.save_synthetic(rows)
    result.kept = len(rows)
    result.kept_ids = [r["id"] for r in rows]
    result.provenance = [{"id": f, "source": src, "line": ln} for f, _, src, ln in prov]
    return result


def _fill_id(pool_id: str, gap_id: str) -> str:
    return f"{pool_id}-{gap_id.lower()}"
