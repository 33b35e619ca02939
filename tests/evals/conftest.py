"""Fixtures for the experiments' plumbing tests."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest


@pytest.fixture
def fast_embeddings(monkeypatch):
    """Hash-seeded unit vectors instead of MiniLM, for experiments that ingest many tiny workspaces and
    never search or cluster them: the plumbing is the same, and the tests stay within seconds on 2 cores."""
    from goalcover.tools.data import embeddings

    def embed(texts, batch_size=64):
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")).normal(size=embeddings.DIMENSION)
                for t in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), embeddings.DIMENSION)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    monkeypatch.setattr(embeddings, "embed", embed)
