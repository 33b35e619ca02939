"""The ONNX backends of the embedding model: the packaged weights exported once to ONNX (checked against
PyTorch, cached outside any workspace), run by onnxruntime (float32 or int8) or compiled by OpenVINO
(bfloat16 where the CPU computes it natively). See `embeddings` for how a backend is chosen.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from goalcover.tools.data.embed_torch import (
    DIMENSION,
    MAX_SEQ_LENGTH,
    model_path,
    offline_env,
    onnx_cache_dir,
    torch_model,
)

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

# Two texts, short and 100+ word pieces, that every fast path must embed as PyTorch does.
_CHECK_TEXTS = ("Short.", "A clause that limits liability for indirect damages to the fees paid in the last year. " * 6)
CHECK_VECTORS = "check_vectors.npy"  # their float32 PyTorch vectors, beside the export


def export_onnx(target: Path) -> Path:
    """Export the packaged weights to one ONNX file at `target` (atomically), checked against PyTorch."""
    offline_env()
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
