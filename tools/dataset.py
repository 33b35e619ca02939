"""Ingesting a file into a workspace, describing the dataset, and searching it.

Re-ingesting is incremental: samples are compared by id and content hash with what the workspace holds,
and only new or changed samples are embedded — the slow part on a CPU.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from goalcover.tools.errors import BadInput
from goalcover.tools.index import SearchHit, sample_metadata
from goalcover.tools.ingest import read_samples
from goalcover.tools.models import IngestResult, LengthStats, Sample, Shape
from goalcover.tools.workspace import Workspace

Progress = Callable[[int, int], None]
CHARS_PER_TOKEN = 4  # a local estimate: tokenizers of hosted models are not available offline


def length_stats(values: list[int]) -> LengthStats:
    ordered = sorted(values)
    return LengthStats(
        min=ordered[0],
        mean=round(statistics.fmean(ordered), 1),
        median=float(statistics.median(ordered)),
        p95=float(ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]),
        max=ordered[-1],
    )


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _check_source(ws: Workspace, path: str, shape: Shape, add: bool, replace: bool) -> bool:
    """Whether the file may go in; returns True when everything the workspace holds must be dropped first."""
    sources = ws.store.sources()
    if not sources or replace:
        return bool(sources)
    paths = [s["path"] for s in sources]
    if path in paths:
        if len(sources) > 1 and sources[0]["shape"] != shape:
            raise BadInput(f"{path}: is now {shape}, but the workspace's other files are {sources[0]['shape']}")
        return False
    if not add:
        held = ", ".join(paths)
        raise BadInput(
            f"{path}: the workspace {ws.root} holds another dataset ({held}); use --add to add this file "
            "(same shape) or --replace to start over with it"
        )
    if sources[0]["shape"] != shape:
        raise BadInput(f"{path}: is {shape}, but the workspace holds {sources[0]['shape']}; --add needs the same shape")
    return False


def ingest_file(
    ws: Workspace,
    path: Path,
    shape: Shape | Literal["auto"] = "auto",
    *,
    add: bool = False,
    replace: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> IngestResult:
    settings = ws.settings
    read = read_samples(
        path,
        shape,
        skip_invalid=skip_invalid,
        max_sample_chars=settings.max_sample_chars,
        warn_sample_chars=settings.warn_sample_chars,
    )
    source = read.samples[0].source
    if _check_source(ws, source, read.shape, add, replace):
        ws.index.reset()
        with ws.store.transaction() as conn:
            ws.store.clear_samples(conn)

    held = ws.store.sample_hashes()
    new, changed, unchanged = [], [], []
    for sample in read.samples:
        if sample.id not in held:
            new.append(sample)
            continue
        old_hash, old_source = held[sample.id]
        if old_source != source:
            raise BadInput(f"{source}: line {sample.line}: id {sample.id!r} is already in the workspace from {old_source}")
        (unchanged if old_hash == sample.content_hash else changed).append(sample)
    current = {s.id for s in read.samples}
    removed = [i for i, (_, src) in held.items() if src == source and i not in current]

    to_embed = new + changed
    positions = {s.id: n for n, s in enumerate(read.samples)}
    with ws.store.transaction() as conn:
        ws.store.add_source(conn, source, read.file_type, read.shape)
    if to_embed:
        _embed_and_index(ws, to_embed, positions, progress)
    with ws.store.transaction() as conn:
        # Unchanged samples may have moved in the file; their rows are cheap to rewrite, their vectors stay.
        ws.store.upsert_samples(conn, ((positions[s.id], s) for s in unchanged))
        ws.store.delete_samples(conn, removed)
    if removed:
        ws.index.delete(removed)

    report = _write_rejected(ws, Path(source), read.rejected) if read.rejected else None
    seen: set[str] = set()
    duplicates = 0
    for sample in read.samples:
        duplicates += sample.content_hash in seen
        seen.add(sample.content_hash)
    lengths = [len(s.text) for s in read.samples]
    return IngestResult(
        samples=len(read.samples),
        format=read.shape,
        invalid=len(read.rejected),
        new=len(new),
        unchanged=len(unchanged),
        changed=len(changed),
        removed=len(removed),
        embedded=len(to_embed),
        file=source,
        file_type=read.file_type,
        exact_duplicates=duplicates,
        chars=length_stats(lengths),
        est_tokens=length_stats([math.ceil(n / CHARS_PER_TOKEN) for n in lengths]),
        warnings=read.warnings,
        rejected_report=str(report) if report else None,
    )


def _embed_and_index(ws: Workspace, samples: list[Sample], positions: dict[str, int], progress: Progress | None) -> None:
    """Embed in batches and commit each batch to Chroma and SQLite, so a kill loses at most one batch."""
    from goalcover.tools.embeddings import embed

    batch = max(ws.settings.embed_batch_size, 256)
    done = 0
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        vectors = embed([s.text for s in chunk], ws.settings.embed_batch_size)
        ws.index.upsert([s.id for s in chunk], vectors, [s.text for s in chunk], [sample_metadata(s) for s in chunk])
        with ws.store.transaction() as conn:
            ws.store.upsert_samples(conn, ((positions[s.id], s) for s in chunk))
        done += len(chunk)
        if progress:
            progress(done, len(samples))


def _write_rejected(ws: Workspace, source: Path, rejected) -> Path:
    folder = ws.root / "rejected"
    folder.mkdir(exist_ok=True)
    path = folder / f"{source.name}.rejected.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for item in rejected:
            out.write(json.dumps({"file": str(source), "line": item.line, "reason": item.reason}, ensure_ascii=False) + "\n")
    return path


def describe(ws: Workspace) -> dict[str, Any]:
    """What the workspace holds, for the CLI, the agent and the UI."""
    samples = ws.store.samples()
    if not samples:
        return {"samples": 0, "sources": []}
    lengths = [len(s.text) for s in samples]
    return {
        "samples": len(samples),
        "format": samples[0].format,
        "sources": ws.store.sources(),
        "chars": length_stats(lengths).model_dump(),
        "est_tokens": length_stats([math.ceil(n / CHARS_PER_TOKEN) for n in lengths]).model_dump(),
    }


def search(ws: Workspace, query: str, k: int = 10, where: dict[str, Any] | None = None) -> list[SearchHit]:
    if not query.strip():
        raise BadInput("search: the query is empty")
    if k < 1:
        raise BadInput("search: -k must be at least 1")
    if ws.store.count_samples() == 0:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    return ws.index.search(query, k, where)
