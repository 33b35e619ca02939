"""Embeddings of texts the engine reads, made on demand and cached by content hash across runs.

Scoring embeds nothing: of the N×K explanations a run produces, gap analysis reads only the low-score
ones of the subgoals it clusters. Those are embedded here when it asks, once per distinct text (small
judges repeat stock explanations), and kept in the workspace's `text_vectors` table, so a rerun of
`gaps` on the same data embeds nothing.
"""

from __future__ import annotations

import numpy as np

from goalcover.tools.models import content_hash
from goalcover.tools.workspace import Workspace

# Bumped if the embedder changes in a way that changes its vectors (cached vectors are then not reused).
EMBEDDER = "all-MiniLM-L6-v2"
BATCH = 512


def cached_vectors(ws: Workspace, texts: list[str]) -> np.ndarray:
    """Unit float32 vectors, shape (len(texts), 384), one row per text: cached ones read from the
    workspace, the others embedded (distinct texts once, in batches) and cached."""
    from goalcover.tools.embeddings import DIMENSION, embed

    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    hashes = [content_hash(t) for t in texts]
    distinct = dict(zip(hashes, texts))
    known = ws.store.text_vectors(list(distinct), EMBEDDER)
    missing = [h for h in distinct if h not in known]
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        vectors = embed([distinct[h] for h in chunk], ws.settings.embed_batch_size).astype(np.float32)
        rows = [(h, v.tobytes()) for h, v in zip(chunk, vectors)]
        ws.store.save_text_vectors(rows, EMBEDDER)
        known.update(rows)
    return np.stack([np.frombuffer(known[h], dtype=np.float32) for h in hashes])


def embedded_count(ws: Workspace) -> int:
    """How many distinct texts the workspace has embedded (for tests and benchmarks)."""
    return ws.store.db.execute("SELECT COUNT(*) FROM text_vectors WHERE model = ?", (EMBEDDER,)).fetchone()[0]
