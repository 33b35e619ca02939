"""Embeddings on a Ray cluster (`goalcover ingest --engine ray`): Ray Data `map_batches` actors, on CPU
or GPU workers, each loading the packaged all-MiniLM-L6-v2 once.

The ingest stays on the driver (reading, checking, staging, the atomic commit, see dataset.ingest_file);
only the texts travel: the driver hands up to `batch` texts at a time to one Ray Data job, collects the
vectors as blocks finish, and writes them to the index's staging collection itself (the Chroma server
when GOALCOVER_CHROMA_URL is set), so workers need no access to the workspace or the index.

Sources: Ray Data user guide, "Stateful transforms" and "End-to-end: offline batch inference"
(docs.ray.io 2.60).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from goalcover.tools.core.errors import BadInput
from goalcover.tools.scale.ray_engine import connected

# Texts per Ray Data job: enough to keep every actor busy for a while, small enough that the driver
# never holds more than a bounded number of texts and vectors (20,000 × 384 float32 = 31 MB).
JOB_TEXTS = 20_000


class EmbedActor:
    """A Ray Data actor that embeds with GoalCover's own encoder (`embeddings.embed`), loaded once per
    actor with the driver's GOALCOVER_EMBED_BACKEND and GOALCOVER_EMBED_DEVICE.

    In: a batch {"i": [int], "text": [str]}. Out: {"i": [int], "vector": float32 array (rows, 384)}.
    """

    def __init__(self, backend: str, device: str, batch_size: int) -> None:
        self.batch_size = batch_size
        from goalcover.tools.data.embeddings import embed, use

        use(backend, device)

        self.embed = embed
        self.embed(["warm up"], 1)  # load the model now, not inside the first block's time

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {"i": batch["i"], "vector": self.embed([str(t) for t in batch["text"]], self.batch_size)}


class RayEmbedder:
    """An `Embedder` for dataset.ingest_file that runs on a Ray cluster (see the module docstring).

    `address`: as ray_engine.connected. `actors`: embedding actors (each takes `cpus` CPUs, or one GPU
    when GOALCOVER_EMBED_DEVICE=cuda). `block`: texts per Ray Data block. Use as a context manager: Ray is
    connected at the first call (not at all when nothing needs embedding) and disconnected on exit. Calling it with texts returns unit-length float32
    vectors (len(texts), 384), in order. Raises BadInput (actors < 1) and ConfigError (Ray missing or the
    cluster unreachable).
    """

    batch = JOB_TEXTS

    def __init__(self, address: str | None = None, actors: int = 2, cpus: float = 1.0, block: int = 512,
                 batch_size: int = 64) -> None:
        if actors < 1 or block < 1:
            raise BadInput("--actors and the block size must be at least 1")
        from goalcover.tools.data.embeddings import embed_settings

        self.address, self.actors, self.cpus, self.block, self.batch_size = address, actors, cpus, block, batch_size
        self.backend, self.device = embed_settings()
        self._connection = None
        self._ray = None

    def __enter__(self) -> "RayEmbedder":
        return self

    def __exit__(self, *exc) -> None:
        if self._connection is not None:
            self._connection.__exit__(*exc)
            self._connection = self._ray = None

    def __call__(self, texts: list[str]) -> np.ndarray:
        from goalcover.tools.data.embeddings import DIMENSION

        if self._ray is None:
            self._connection = connected(self.address)
            self._ray = self._connection.__enter__()
        ray = self._ray

        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        rows = [{"i": i, "text": t} for i, t in enumerate(texts)]
        gpu = self.device == "cuda"
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows) / self.block))).map_batches(
            EmbedActor,
            batch_size=self.block,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=0 if gpu else self.cpus,
            num_gpus=1 if gpu else 0,
            fn_constructor_kwargs={"backend": self.backend, "device": self.device, "batch_size": self.batch_size},
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            out[np.asarray(batch["i"], dtype=np.int64)] = np.asarray(batch["vector"], dtype=np.float32)
        return out
