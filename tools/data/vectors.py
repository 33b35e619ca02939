"""Embeddings of texts the engine reads, made on demand and cached by content hash across runs.

Scoring embeds nothing: of the N×K explanations a run produces, gap analysis reads only the low-score
ones of the subgoals it clusters. Those are embedded here when it asks, once per distinct text (small
judges repeat stock explanations), and kept in the workspace's `text_vectors` table, so a rerun of
`gaps` on the same data embeds nothing.
"""

from __future__ import annotations

import numpy as np

from goalcover.tools.core.shapes import content_hash
from goalcover.tools.core.workspace import Workspace

BATCH = 512


def cached_vectors(ws: Workspace, texts: list[str]) -> np.ndarray:
    """Unit float32 vectors, shape (len(texts), 384), one row per text: cached ones read from the
    workspace, the others embedded (distinct texts once, in batches) and cached under the embedding
    model's name (embeddings.MODEL_NAME), so vectors of another model are never reused."""
    # Imported here: the embedder pulls in Chroma and torch, which importing gaps must not.
    from goalcover.tools.data.embeddings import DIMENSION, MODEL_NAME, embed

    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    hashes = [content_hash(t) for t in texts]
    distinct = dict(zip(hashes, texts))
    known = ws.store.text_vectors(list(distinct), MODEL_NAME)
    missing = [h for h in distinct if h not in known]
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        vectors = embed([distinct[h] for h in chunk], ws.settings.embed_batch_size).astype(np.float32)
        rows = [(h, v.tobytes()) for h, v in zip(chunk, vectors)]
        ws.store.save_text_vectors(rows, MODEL_NAME)
        known.update(rows)
    return np.stack([np.frombuffer(known[h], dtype=np.float32) for h in hashes])


def embedded_count(ws: Workspace) -> int:
    """How many distinct texts the workspace has embedded (for tests and benchmarks)."""
    from goalcover.tools.data.embeddings import MODEL_NAME

    return ws.store.count_text_vectors(MODEL_NAME)
