"""The Chroma index: one collection of samples (vectors + filterable metadata) per workspace.

Embedded `PersistentClient` under the workspace by default; a Chroma server when `GOALCOVER_CHROMA_URL`
is set, with collection names prefixed by the workspace's name so workspaces can share a server.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from pydantic import BaseModel

from goalcover.tools.data.embeddings import MAX_EMBED_CHARS, MiniLMEmbedding
from goalcover.tools.core.errors import BadInput, GoalCoverError
from goalcover.tools.core.shapes import Sample
from goalcover.tools.data.values import FIELD_PREFIX, index_fields, typed_cell

SAMPLES = "samples"
# A document in the index is the start of the sample's text, as much as its vector was embedded from
# (embeddings.MAX_EMBED_CHARS): the whole text is in the store. Whole documents of 1.5 M characters made
# Chroma's SQLite (and its full-text index) hold and rewrite gigabytes (see ingest.CHUNK_MAX_CHARS).
INDEX_DOCUMENT_CHARS = MAX_EMBED_CHARS
# Where an ingest puts its vectors until it commits (see dataset.ingest_file).
STAGING = "samples-staging"
# Metadata keys GoalCover writes itself; the record's own fields live under `field.` (values.FIELD_PREFIX).
SYSTEM_KEYS = ("source", "format", "line", "content_hash")
SYSTEM_KEY = re.compile(r"^(score|weighted)_S\d+$")
WHERE_OPS = {"<=": "$lte", ">=": "$gte", "!=": "$ne", "=": "$eq", "<": "$lt", ">": "$gt"}


class SearchHit(BaseModel):
    """One search result: cosine similarity in [-1, 1], the sample's text view, GoalCover's metadata
    (source, format, line, score_S1 …) and the record's own indexed fields (by their own names)."""

    id: str
    similarity: float
    text: str
    metadata: dict[str, Any]
    fields: dict[str, Any] = {}


def _collection_prefix(workspace: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", workspace.resolve().name).strip("-._") or "workspace"
    return f"{name[:40]}-"


def sample_metadata(sample: Sample) -> tuple[dict[str, Any], dict[str, str]]:
    """(Chroma metadata, {field: why it is not in the index}) for one sample: where it came from, plus the
    record's short scalar fields (e.g. a category label) under `field.NAME` for `--where NAME=…`.

    The namespace keeps a user's own `score_S1` apart from the judge's `score_S1`, and makes every key one
    Chroma accepts (it refuses `""`, `$…`, `#…` and drops `chroma:…`); see values.index_fields."""
    meta: dict[str, Any] = {
        "source": Path(sample.part or sample.source).name,
        "format": sample.format,
        "line": sample.line,
        "content_hash": sample.content_hash,
    }
    fields, skipped = index_fields(sample.record)
    if sample.raw is not None and sample.raw.startswith("["):  # a CSV row (raw: its cells as a JSON list): type the text
        fields = {key: typed_cell(value) for key, value in fields.items()}
    meta.update(fields)
    return meta, skipped


# GoalCover's keys a user's own column may also be called; `goalcover.NAME` always means GoalCover's.
SHADOWABLE_KEYS = ("source", "format", "line")
OWN_PREFIX = "goalcover."


def where_key(name: str) -> str:
    """The metadata key a `--where` field names: GoalCover's own keys (source, format, line, score_S3, …)
    as they are, `goalcover.NAME` for them explicitly, `field.NAME` as written, any other name as the
    record's field `field.NAME`. (A bare source/format/line names the record's own field where the records
    have one: `dataset.search` settles that, as it knows the records.)"""
    if name.startswith(OWN_PREFIX) and name.removeprefix(OWN_PREFIX) in SYSTEM_KEYS:
        return name
    if name in SYSTEM_KEYS or SYSTEM_KEY.match(name) or name.startswith(FIELD_PREFIX):
        return name
    return FIELD_PREFIX + name


def parse_where(clauses: Sequence[str]) -> dict[str, Any] | None:
    """`["app=Grammarly", "score_S3<=2"]` -> a Chroma `where` filter; numbers compare as numbers."""
    parts = []
    for clause in clauses:
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$", clause)
        if not match or not match.group(3):
            raise BadInput(f"--where {clause!r}: expected FIELD=VALUE (or FIELD<=N, FIELD>=N, FIELD!=VALUE)")
        field, op, raw = match.groups()
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw in ("true", "false"):
            value = raw == "true"
        if op in ("<", ">", "<=", ">=") and isinstance(value, str):
            raise BadInput(f"--where {clause!r}: {op} needs a number")
        parts.append({where_key(field): {WHERE_OPS[op]: value}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


class Index:
    """The workspace's Chroma collections (samples, and staging while an ingest runs), embedded or on a server."""
    def __init__(self, workspace: Path, chroma_url: str | None = None, batch_size: int = 64) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        self.embedding_function = MiniLMEmbedding(batch_size=batch_size)
        if chroma_url:
            url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
            try:
                self.client = chromadb.HttpClient(
                    host=url.hostname or "localhost",
                    port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
            except Exception as exc:  # the client checks the server at construction
                raise GoalCoverError(f"Cannot reach the Chroma server at {chroma_url} (GOALCOVER_CHROMA_URL): {exc}") from None
            self.prefix = _collection_prefix(workspace)
        else:
            self.client = chromadb.PersistentClient(path=str(workspace / "chroma"), settings=chroma_settings)
            self.prefix = ""
        self._collections: dict[str, Any] = {}

    def collection(self, name: str = SAMPLES):
        """The Chroma collection `name` (created on first use), with GoalCover's embedding function."""
        if name not in self._collections:
            # Pass the embedding function every time: reopening without it silently falls back to
            # Chroma's default, which downloads a model and then fails.
            self._collections[name] = self.client.get_or_create_collection(
                self.prefix + name, embedding_function=self.embedding_function, metadata={"hnsw:space": "cosine"}
            )
        return self._collections[name]

    def _batches(self, n: int):
        size = max(1, min(self.client.get_max_batch_size(), 5000))
        return range(0, n, size), size

    def upsert(
        self, ids: list[str], vectors: np.ndarray, documents: list[str], metadatas: list[dict[str, Any]], name: str = SAMPLES
    ) -> None:
        """Insert or replace entries: unit vectors (n, 384), their documents (kept to their first
        INDEX_DOCUMENT_CHARS characters) and metadata, in batches."""
        starts, size = self._batches(len(ids))
        for start in starts:
            end = start + size
            clipped = [document[:INDEX_DOCUMENT_CHARS] for document in documents[start:end]]
            self.collection(name).upsert(ids=ids[start:end], embeddings=vectors[start:end], documents=clipped, metadatas=metadatas[start:end])

    def update_metadata(self, ids: list[str], metadatas: list[dict[str, Any]], name: str = SAMPLES) -> None:
        """Merge metadata into existing entries (a None value removes that key), in Chroma-sized batches."""
        starts, size = self._batches(len(ids))
        for start in starts:
            self.collection(name).update(ids=ids[start : start + size], metadatas=metadatas[start : start + size])

    def delete(self, ids: list[str], name: str = SAMPLES) -> None:
        """Delete entries by id, in Chroma-sized batches."""
        starts, size = self._batches(len(ids))
        for start in starts:
            self.collection(name).delete(ids=ids[start : start + size])

    def move(self, source: str, target: str = SAMPLES, page: int = 1000) -> None:
        """Upsert every entry of collection `source` (vectors, documents, metadata) into `target`, then
        drop `source`. Idempotent: a move killed half-way is completed by running it again."""
        if source not in self.names():
            return
        staged = self.collection(source)
        offset = 0
        while True:
            got = staged.get(limit=page, offset=offset, include=["embeddings", "documents", "metadatas"])
            if not got["ids"]:
                break
            self.collection(target).upsert(
                ids=got["ids"], embeddings=got["embeddings"], documents=got["documents"], metadatas=got["metadatas"]
            )
            offset += len(got["ids"])
        self.reset(source)

    def names(self) -> set[str]:
        """The collections this workspace has (without the server prefix)."""
        return {c.name.removeprefix(self.prefix) for c in self.client.list_collections() if c.name.startswith(self.prefix)}

    def rename(self, source: str, target: str) -> None:
        """Rename collection `source` to `target` (which must not exist): Chroma's own `modify(name=)`."""
        self.collection(source).modify(name=self.prefix + target)
        self._collections.pop(source, None)
        self._collections.pop(target, None)

    def count(self, name: str = SAMPLES) -> int:
        """How many entries collection `name` holds."""
        return self.collection(name).count()

    def reset(self, name: str = SAMPLES) -> None:
        """Drop collection `name` (nothing happens if it does not exist)."""
        try:
            self.client.delete_collection(self.prefix + name)
        except Exception:  # absent already: nothing to reset
            pass
        self._collections.pop(name, None)

    def search(self, query: str, k: int = 10, where: dict[str, Any] | None = None, name: str = SAMPLES) -> list[SearchHit]:
        """The `k` nearest entries to `query` by cosine similarity, each with its document (a text's first
        INDEX_DOCUMENT_CHARS characters); raises BadInput when Chroma refuses `where`."""
        collection = self.collection(name)
        total = collection.count()
        if total == 0:
            return []
        try:
            found = collection.query(
                query_texts=[query], n_results=min(k, total), where=where, include=["documents", "metadatas", "distances"]
            )
        except ValueError as exc:
            raise BadInput(f"--where: Chroma refused the filter ({exc})") from None
        hits = []
        for i, d, doc, meta in zip(found["ids"][0], found["distances"][0], found["documents"][0], found["metadatas"][0]):
            meta = meta or {}
            own = {k.removeprefix(FIELD_PREFIX): v for k, v in meta.items() if k.startswith(FIELD_PREFIX)}
            system = {k: v for k, v in meta.items() if not k.startswith(FIELD_PREFIX)}
            hits.append(SearchHit(id=i, similarity=round(1.0 - float(d), 4), text=doc or "", metadata=system, fields=own))
        return hits
