"""Ingesting a file into a workspace, describing the dataset, and searching it.

Re-ingesting is incremental: samples are compared by id and content hash with what the workspace holds,
and only new or changed samples are embedded — the slow part on a CPU.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.index import INDEX_DOCUMENT_CHARS, STAGING, SearchHit, sample_metadata
from goalcover.tools.data.records import IdRegistry, scan
from goalcover.tools.data.staging import finish_pending_ingest
from goalcover.tools.core.store import INGEST_PENDING
from goalcover.tools.core.shapes import IngestResult, LengthStats, Sample, Shape
from goalcover.tools.core.tokens import CHARS_PER_TOKEN
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.core.lock import writes

if TYPE_CHECKING:
    import numpy as np

Progress = Callable[[int, int | None], None]
# A chunk of samples is cut at this many characters of text (and raw line) even when it has fewer than
# its count: 256 samples of 1.5 M characters are 0.8 GB of text and raw lines, each held several times
# over while the chunk is checked, staged and embedded.
CHUNK_MAX_CHARS = 32_000_000


def length_stats(values: list[int]) -> LengthStats:
    """min / mean / median / 95th percentile (nearest rank) / max of a non-empty list of lengths."""
    ordered = sorted(values)
    return LengthStats(
        min=ordered[0],
        mean=round(statistics.fmean(ordered), 1),
        median=float(statistics.median(ordered)),
        p95=float(ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]),
        max=ordered[-1],
    )


def _length_summary(lengths: list[int]) -> dict[str, LengthStats]:
    """{chars, est_tokens}: length statistics of text views in characters and in estimated tokens."""
    return {"chars": length_stats(lengths), "est_tokens": length_stats([math.ceil(n / CHARS_PER_TOKEN) for n in lengths])}


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


class _StagedIds(IdRegistry):
    """Duplicate-id checks against the staging table, so memory stays flat however big the file."""

    def __init__(self, ws: Workspace) -> None:
        self.store = ws.store
        self.pending: dict[str, int] = {}  # the chunk not staged yet

    def line_of(self, sample_id: str) -> int | None:
        """The line `sample_id` was first seen on in this ingest, or None."""
        return self.pending.get(sample_id) or self.store.staged_line(sample_id)

    def add(self, sample_id: str, line: int) -> None:
        """Note `sample_id` as seen on `line` (until its chunk is staged)."""
        self.pending[sample_id] = line

    def staged(self) -> None:
        """The current chunk's rows are in the staging table now."""
        self.pending.clear()


@writes("ingest")
def ingest_file(
    ws: Workspace,
    path: Path,
    shape: Shape | Literal["auto"] = "auto",
    *,
    add: bool = False,
    replace: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
) -> IngestResult:
    """Read `path` (file, .gz/.zst, folder of shards, save_to_disk folder) into the workspace, atomically.

    Streams in chunks: each chunk is checked, its new or changed samples embedded into a staging
    collection and its rows staged in SQLite; one transaction then swaps the staged samples in, and the
    staged vectors are moved into the index (`finish_ingest`, redone on the next open if killed). A
    failure or kill before that transaction leaves the workspace exactly as it was. Raises BadInput for a
    bad file, record or workspace conflict; progress(done, None) is called per chunk (the total is unknown
    while streaming).

    `embedder` (default: `embeddings.embed` in this process, chunk by chunk) embeds the samples instead:
    it is handed up to `embedder.batch` samples at a time, gathered over several chunks, so that a
    distributed embedder (`ray_embed.RayEmbedder`) gets work big enough to spread."""
    settings = ws.settings
    finish_ingest(ws)  # a committed ingest that was killed before its index step: complete it first
    _abandon_staging(ws)
    chunk_size = max(settings.embed_batch_size, 256)
    rejected_log = _RejectedLog(ws, path.expanduser().resolve())
    reading = scan(
        path,
        shape,
        skip_invalid=skip_invalid,
        max_sample_chars=settings.max_sample_chars,
        max_expansion=settings.ingest_max_expansion,
        warn_sample_chars=settings.warn_sample_chars,
        ids=(staged_ids := _StagedIds(ws)),
        keep_rejected=10,
        on_reject=rejected_log.write,
    )
    source = str(reading.path)
    reset = False
    position = embedded = 0
    skipped_fields: dict[str, list] = {}
    waiting: list[Sample] = []  # samples gathered for the embedder
    try:
        for chunk in _chunks(reading.samples, chunk_size):
            if position == 0:
                assert reading.shape is not None
                reset = _check_source(ws, source, reading.shape, add, replace)
            rows, to_embed = _classify(ws, chunk, source, position, reset)
            position += len(chunk)
            if embedder is not None:
                waiting += to_embed
                if len(waiting) >= embedder.batch or sum(map(_chars, waiting)) >= CHUNK_MAX_CHARS:
                    _embed_into_staging(ws, waiting, skipped_fields, embedder)
                    waiting = []
            elif to_embed:
                _embed_into_staging(ws, to_embed, skipped_fields)
            embedded += len(to_embed)
            ws.store.stage_samples(rows)
            staged_ids.staged()
            if progress:
                progress(position, None)
        if waiting:
            _embed_into_staging(ws, waiting, skipped_fields, embedder)
        assert reading.shape is not None
        counts, duplicates, lengths = ws.store.staged_stats()
        removed = ws.store.commit_ingest(source, reading.file_type, reading.shape, reading.layout.model_dump(), replace=reset)
    except BaseException:
        try:
            _abandon_staging(ws)
        except Exception:  # e.g. the disk still full (#27 F12): the error to report is the first one, and
            pass  # the next ingest abandons this staging before it starts (above)
        finally:
            rejected_log.discard()
        raise
    finish_ingest(ws)
    from goalcover.tools.history.versions import record_version

    record_version(ws, "ingest", f"{'replaced by' if reset else 'ingested'} {Path(source).name}")
    report = rejected_log.keep()
    warnings = reading.warnings + [
        f"field {name!r} ({count:,} samples): {why}; kept for export, left out of the index's filters"
        for name, (why, count) in skipped_fields.items()
    ]
    return IngestResult(
        samples=position, format=reading.shape, invalid=reading.rejected_count, new=counts.get("new", 0),
        unchanged=counts.get("unchanged", 0), changed=counts.get("changed", 0), removed=removed, embedded=embedded,
        file=source, file_type=reading.file_type, exact_duplicates=duplicates, **_length_summary(lengths),
        warnings=warnings, rejected_report=str(report) if report else None,
    )


def _classify(ws: Workspace, chunk: list[Sample], source: str, position: int, reset: bool) -> tuple[list, list[Sample]]:
    """One chunk against what the workspace holds: ([(position, sample, "new" | "unchanged" | "changed")],
    the samples to embed — new or changed). Raises BadInput for an id another source file already holds."""
    held = {} if reset else ws.store.held([s.id for s in chunk])
    rows, to_embed = [], []
    for offset, sample in enumerate(chunk):
        old = held.get(sample.id)
        if old is not None and old[1] != source:
            raise BadInput(f"{source}: line {sample.line}: id {sample.id!r} is already in the workspace from {old[1]}")
        status = "new" if old is None else ("unchanged" if old[0] == sample.content_hash else "changed")
        rows.append((position + offset, sample, status))
        if status != "unchanged":
            to_embed.append(sample)
    return rows, to_embed


def _chunks(samples: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    """`samples` in lists of `size`, or fewer where their text reaches CHUNK_MAX_CHARS: a chunk's samples
    are held several times over (record, raw line, text) while it is checked, staged and embedded."""
    chunk: list[Sample] = []
    chars = 0
    for sample in samples:
        chunk.append(sample)
        chars += _chars(sample)
        if len(chunk) >= size or chars >= CHUNK_MAX_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _chars(sample: Sample) -> int:
    return len(sample.text) + len(sample.raw or "")


class Embedder(Protocol):
    """Embeds texts somewhere else (a Ray cluster): `batch` samples per call at most; calling it with
    texts returns their unit-length float32 vectors, one row per text, in order."""

    batch: int

    def __call__(self, texts: list[str]) -> np.ndarray: ...


def _embed_into_staging(ws: Workspace, samples: list[Sample], skipped_fields: dict[str, list],
                        embedder: Embedder | None = None) -> None:
    from goalcover.tools.data.embeddings import embed

    metadatas = []
    for sample in samples:
        meta, skipped = sample_metadata(sample)
        metadatas.append(meta)
        for name, why in skipped.items():
            skipped_fields.setdefault(name, [why, 0])[1] += 1
    texts = [s.text for s in samples]
    vectors = embedder(texts) if embedder is not None else embed(texts, ws.settings.embed_batch_size)
    ws.index.upsert([s.id for s in samples], vectors, [s.text for s in samples], metadatas, name=STAGING)


def _abandon_staging(ws: Workspace) -> None:
    """Drop what an ingest that never committed left behind (staged rows and vectors)."""
    if ws.store.get_meta(INGEST_PENDING) is not None:
        return
    ws.index.reset(STAGING)
    ws.store.clear_staging()


def finish_ingest(ws: Workspace) -> None:
    """Apply a committed ingest to the index (see staging.finish_pending_ingest); a no-op when none is pending."""
    finish_pending_ingest(ws.store, ws.index)


class _RejectedLog:
    """Rejected records written to `rejected/<file>.rejected.jsonl` as they come (a temporary file until
    the ingest commits), so a file with a million bad lines does not fill memory."""

    def __init__(self, ws: Workspace, source: Path) -> None:
        self.path = ws.root / "rejected" / f"{source.name}.rejected.jsonl"
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.source = source
        self.out = None

    def write(self, item) -> None:
        """Append one Rejected {file, line, reason} as a JSON line."""
        if self.out is None:
            self.path.parent.mkdir(exist_ok=True)
            self.out = self.tmp.open("w", encoding="utf-8")
        self.out.write(json.dumps({"file": str(self.source), "line": item.line, "reason": item.reason}, ensure_ascii=False) + "\n")

    def keep(self) -> Path | None:
        """Move the log into place (the ingest committed); its path, or None if nothing was rejected."""
        if self.out is None:
            return None
        self.out.close()
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Drop the log (the ingest failed)."""
        if self.out is not None:
            self.out.close()
            self.tmp.unlink(missing_ok=True)


def describe(ws: Workspace) -> dict[str, Any]:
    """What the workspace holds, for the CLI, the agent and the UI: {samples, format, sources, chars,
    est_tokens} (length statistics in characters and estimated tokens), from SQL, without loading samples."""
    lengths = ws.store.sample_lengths()
    if not lengths:
        return {"samples": 0, "sources": []}
    sources = ws.store.sources()
    return {
        "samples": len(lengths),
        "format": sources[0]["shape"],
        "sources": [{k: v for k, v in src.items() if k != "layout"} for src in sources],
        **{k: v.model_dump() for k, v in _length_summary(lengths).items()},
    }


def search(ws: Workspace, query: str, k: int = 10, where: dict[str, Any] | None = None) -> list[SearchHit]:
    """The `k` samples nearest to `query` by meaning (cosine), optionally filtered by a Chroma `where`
    (see index.parse_where), each with its whole text. Raises BadInput for an empty query, k < 1 or an
    empty workspace."""
    if not query.strip():
        raise BadInput("search: the query is empty")
    if k < 1:
        raise BadInput("search: -k must be at least 1")
    if ws.store.count_samples() == 0:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    hits = ws.index.search(query, k, _own_fields_first(ws, where) if where else where)
    clipped = [hit.id for hit in hits if len(hit.text) >= INDEX_DOCUMENT_CHARS]  # the index keeps a text's start
    if clipped:
        whole = {sample.id: sample.text for sample in ws.store.samples(clipped)}
        for hit in hits:
            hit.text = whole.get(hit.id, hit.text)
    return hits


def _own_fields_first(ws: Workspace, where: dict[str, Any]) -> dict[str, Any]:
    """`where` with a bare `source`, `format` or `line` turned into the record's own `field.NAME` when the
    records have such a field (the user's column is what they mean; GoalCover's stays `goalcover.NAME`),
    and `goalcover.NAME` into GoalCover's key NAME."""
    import sqlite3

    from goalcover.tools.data.index import OWN_PREFIX, SHADOWABLE_KEYS
    from goalcover.tools.data.values import FIELD_PREFIX

    own: dict[str, bool] = {}

    def has_own(name: str) -> bool:
        if name not in own:
            try:
                row = ws.store.db.execute(
                    "SELECT 1 FROM samples WHERE json_extract(record, ?) IS NOT NULL LIMIT 1", (f'$."{name}"',)
                ).fetchone()
            except sqlite3.Error:
                row = None
            own[name] = row is not None
        return own[name]

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key.startswith(OWN_PREFIX):
                key = key.removeprefix(OWN_PREFIX)
            elif key in SHADOWABLE_KEYS and has_own(key):
                key = FIELD_PREFIX + key
            out[key] = rewrite(value) if key.startswith("$") else value
        return out

    return rewrite(where)
