"""Predicting on a Ray cluster (`goalcover score --predict --engine ray`): the predictors are fitted on the
driver (a few hundred judged vectors, milliseconds), and the prediction over every sample's vector runs as
Ray Data `map_batches` tasks.

The driver reads the vectors from the index (and hashes the texts' words, measure/features.py) once, puts
them in the object store once as an Arrow table of (row index, 384-d tensor[, the row's word columns and
values]) and, per target, maps the fitted predictor (ppi.Predictor: K fold models' coefficients, a few kB
for the vectors alone, ~10 MB with the words) and its score regressor over the blocks; results come back
with their row index, so block order does not matter. The arithmetic is ppi.Predictor.predict's own, so P and every estimate built on
it equal the local engine's. Sources: Ray Data user guide, "Transforming data" (map_batches with
fn_kwargs) and "Loading data" (from_arrow, tensor extension types), docs.ray.io 2.60.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from goalcover.tools.scale.ray_engine import connected

# Rows per Ray Data block: 20,000 × 384 float32 = 31 MB, so 10⁶ vectors make 50 tasks.
BLOCK_ROWS = 20_000


def predict_batch(batch: dict[str, Any], model, regressor, words: int = 0) -> dict[str, Any]:
    """One Ray Data batch {"i": int64 (b,), "vector": float32 (b, d)[, "word_index": int32 lists, "word_value":
    float32 lists]} -> {"i", "p": float32 (b,), "score": float64 (b,) (NaN without a regressor)}:
    ppi.Predictor.predict and the regressor's clipped linear score; with `words` (D columns) the rows' words
    are rebuilt as a csr (b, D) beside the vectors (features.Features)."""
    x = np.asarray(batch["vector"], dtype=np.float32)
    if words:
        from scipy import sparse

        from goalcover.tools.measure.features import Features

        index, value = batch["word_index"], batch["word_value"]
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in index])]).astype(np.int64)
        flat_index = np.concatenate(list(index)).astype(np.int32) if len(index) else np.zeros(0, np.int32)
        flat_value = np.concatenate(list(value)).astype(np.float32) if len(value) else np.zeros(0, np.float32)
        x = Features(x, sparse.csr_matrix((flat_value, flat_index, indptr), shape=(len(x), words)))
    p = model.predict(x)
    score = (x @ regressor[0] + regressor[1]).clip(1, 5) if regressor is not None else np.full(len(x), np.nan)
    return {"i": np.asarray(batch["i"], dtype=np.int64), "p": p, "score": score}


class RayPredict:
    """A `predict_all` for measure.predict.predict that runs on Ray Data (module docstring). Use as a context
    manager: connects to Ray (`address` as ray_engine.connected; `num_cpus` for a private local Ray) on
    entry and disconnects on exit. Calling it with (Predictor, regressor (coef, intercept) or None, vectors
    (m, d): an array or features.Features) returns (P float32 (m,), predicted scores (m,) or None) in the
    vectors' order; the vectors (and words) are shipped once per distinct object. Raises ConfigError when
    Ray is missing or unreachable."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, block_rows: int = BLOCK_ROWS) -> None:
        self.address, self.num_cpus, self.block_rows = address, num_cpus, block_rows
        self._connection = self._ray = None
        self._x: np.ndarray | None = None
        self._dataset = None
        self.jobs = 0

    def __enter__(self) -> "RayPredict":
        self._connection = connected(self.address, self.num_cpus)
        self._ray = self._connection.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._dataset = self._x = None
        if self._connection is not None:
            self._connection.__exit__(*exc)
            self._connection = self._ray = None

    def _data(self, x):
        if self._x is not x:
            import pyarrow as pa
            from ray.data.extensions import ArrowTensorArray

            from goalcover.tools.measure.features import Features

            dense = x.vectors if isinstance(x, Features) else x
            columns = {"i": pa.array(np.arange(len(x), dtype=np.int64)),
                       "vector": ArrowTensorArray.from_numpy(np.ascontiguousarray(dense, dtype=np.float32))}
            if isinstance(x, Features) and x.words is not None:
                offsets = pa.array(x.words.indptr.astype(np.int64))  # large lists: 10⁶ long texts pass 2³¹ words
                columns["word_index"] = pa.LargeListArray.from_arrays(offsets, pa.array(x.words.indices.astype(np.int32)))
                columns["word_value"] = pa.LargeListArray.from_arrays(offsets, pa.array(x.words.data.astype(np.float32)))
            table = pa.table(columns)
            blocks = max(1, math.ceil(len(x) / self.block_rows))
            self._dataset = self._ray.data.from_arrow(table).repartition(blocks).materialize()
            self._x = x
        return self._dataset

    def __call__(self, model, regressor, x) -> tuple[np.ndarray, np.ndarray | None]:
        assert self._ray is not None, "use RayPredict as a context manager"
        p = np.zeros(len(x), dtype=np.float32)
        scores = np.full(len(x), np.nan)
        if len(x):
            mapped = self._data(x).map_batches(predict_batch, batch_format="numpy", batch_size=None,
                                               fn_kwargs={"model": model, "regressor": regressor,
                                                          "words": _word_columns(x)})
            self.jobs += 1
            for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
                i = np.asarray(batch["i"], dtype=np.int64)
                p[i] = batch["p"]
                scores[i] = batch["score"]
        return p, (scores if regressor is not None else None)


def _word_columns(x) -> int:
    """D, the word columns of features.Features `x` (0 for an array or Features without words)."""
    words = getattr(x, "words", None)
    return 0 if words is None else int(words.shape[1])


def ray_scorer(address: str | None, actors: int, processor: str, vllm_model: str | None):
    """An async scorer with scoring.score's calling shape (ws, mode, samples=…, concurrency=…, progress=…)
    that judges those samples on Ray (ray_engine.score_on_ray), for `score --sample N --predict --engine
    ray`: the sample and the cascade's band. `max_cost` is refused before (the Ray engine has no cost cap)."""
    from goalcover.tools.scale.ray_engine import score_on_ray

    async def scorer(ws, mode, samples=None, max_cost=None, concurrency=None, progress=None, **_):
        return score_on_ray(ws, mode, address=address, actors=actors, concurrency=concurrency, vllm_model=vllm_model,
                            processor=processor, progress=progress, samples=samples)

    return scorer
