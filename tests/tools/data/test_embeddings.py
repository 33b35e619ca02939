"""The embedding backends: the default gives the PyTorch vectors (near enough to keep neighbours), the
ONNX export is made once and cached, and a failed export falls back to PyTorch, saying so once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from goalcover.tools.data import embed_onnx, embeddings
from goalcover.tools.data.records import read_samples

DATA = Path(__file__).resolve().parents[2] / "data" / "sft"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """A small mixed set of the vendored real samples' text views (short and 256-token ones)."""
    picked: list[str] = []
    for path in sorted(DATA.glob("*.jsonl")):
        picked += [s.text[: embeddings.MAX_EMBED_CHARS] for s in read_samples(path).samples[:12]]
    return list(dict.fromkeys(picked))


@pytest.fixture(scope="module")
def reference(texts) -> np.ndarray:
    return embeddings.torch_model("cpu").encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)


def _check_close(vectors: np.ndarray, reference: np.ndarray, min_cosine: float) -> None:
    assert vectors.dtype == np.float32 and vectors.shape == (len(reference), embeddings.DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosines = np.sum(vectors * reference, axis=1)
    assert cosines.min() >= min_cosine, cosines.min()
    # Each text's 10 nearest neighbours mostly survive.
    from goalcover.evals.bench_embed import agreement

    assert agreement(reference, vectors) >= 0.95


def test_default_path_gives_unit_vectors_that_agree_with_pytorch(texts, reference, monkeypatch):
    monkeypatch.delenv("GOALCOVER_EMBED_BACKEND", raising=False)
    monkeypatch.delenv("GOALCOVER_EMBED_DEVICE", raising=False)
    embeddings._model.cache_clear()
    try:
        vectors = embeddings.embed(texts)
        assert embeddings.active_backend() in ("openvino", "torch-bf16", "torch")
    finally:
        embeddings._model.cache_clear()
    _check_close(vectors, reference, 0.99)


def test_onnx_export_reproduces_pytorch_and_is_cached(texts, reference, tmp_path, monkeypatch):
    cache = embeddings.onnx_cache_dir()
    exports: list[Path] = []
    real_export = embeddings.export_onnx

    def counted_export(target: Path) -> Path:
        exports.append(target)
        return real_export(target)

    monkeypatch.setattr(embed_onnx, "export_onnx", counted_export)
    first = embeddings.ensure_onnx(cache_dir=cache)  # exports only if no earlier run cached it
    assert first == cache / "model.onnx" and first.is_file()
    embeddings.ensure_onnx(cache_dir=cache)
    assert len(exports) <= 1  # the second load found the cached file

    # In a fresh cache folder: the first load exports (here: copies the export made above), the next does not.
    fresh = tmp_path / "cache"
    monkeypatch.setattr(embed_onnx, "export_onnx", lambda target: exports.append(target) or Path(shutil.copyfile(first, target)))
    exports.clear()
    encoder = embeddings.onnx_model(cache_dir=fresh)
    encoder_again = embeddings.onnx_model(cache_dir=fresh)
    assert exports == [fresh / "model.onnx"]
    assert encoder_again.onnx_file == fresh / "model.onnx"

    vectors = encoder.encode(texts, batch_size=16)
    _check_close(vectors, reference, 0.9999)
    # Length-sorted batches give the same vectors as batches in the given order.
    unsorted = embeddings.onnx_model(cache_dir=fresh, sort_by_length=False).encode(texts, batch_size=16)
    assert np.allclose(vectors, unsorted, atol=1e-5)


def test_failed_export_falls_back_to_pytorch_and_says_so_once(texts, reference, tmp_path, monkeypatch, capsys):
    def broken_export(target: Path) -> Path:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(embed_onnx, "export_onnx", broken_export)
    monkeypatch.setenv("GOALCOVER_ONNX_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("GOALCOVER_EMBED_BACKEND", "onnx")
    embeddings._model.cache_clear()
    try:
        first = embeddings.embed(texts[:4])
        second = embeddings.embed(texts[4:8])
        assert embeddings.active_backend() == "torch"
    finally:
        embeddings._model.cache_clear()
    err = capsys.readouterr().err
    assert err.count("could not be prepared") == 1 and "exporter unavailable" in err and "PyTorch" in err
    _check_close(np.vstack([first, second]), reference[:8], 0.9999)


def test_openvino_gives_the_pytorch_neighbours_and_a_failure_falls_back_saying_so(texts, reference, monkeypatch, capsys):
    pytest.importorskip("openvino")
    encoder = embeddings.openvino_model()
    _check_close(encoder.encode(texts, batch_size=16), reference, 0.999)

    class broken:  # a class, as the real one is: active_backend() asks isinstance of it (on a machine without bf16)
        def __init__(self, *args, **kwargs):
            raise RuntimeError("no CPU plugin")

    monkeypatch.setattr(embed_onnx, "OpenVinoEncoder", broken)
    monkeypatch.setenv("GOALCOVER_EMBED_BACKEND", "openvino")
    monkeypatch.delenv("GOALCOVER_EMBED_DEVICE", raising=False)
    embeddings._model.cache_clear()
    try:
        vectors = np.vstack([embeddings.embed(texts[:4]), embeddings.embed(texts[4:8])])
        assert embeddings.active_backend() in ("torch-bf16", "torch")
    finally:
        embeddings._model.cache_clear()
    err = capsys.readouterr().err
    assert err.count("OpenVINO could not run") == 1 and "no CPU plugin" in err
    _check_close(vectors, reference[:8], 0.99)


def test_auto_without_openvino_installed_uses_pytorch_quietly(texts, monkeypatch, capsys):
    class missing:
        def __init__(self, *args, **kwargs):
            raise ImportError("No module named 'openvino'")

    monkeypatch.setattr(embed_onnx, "OpenVinoEncoder", missing)
    monkeypatch.delenv("GOALCOVER_EMBED_BACKEND", raising=False)
    monkeypatch.delenv("GOALCOVER_EMBED_DEVICE", raising=False)
    embeddings._model.cache_clear()
    try:
        assert embeddings.embed(texts[:2]).shape == (2, embeddings.DIMENSION)
        assert embeddings.active_backend() in ("torch-bf16", "torch")
    finally:
        embeddings._model.cache_clear()
    assert "OpenVINO" not in capsys.readouterr().err


def test_cuda_without_a_gpu_runs_on_cpu_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("GOALCOVER_EMBED_DEVICE", "cuda")
    monkeypatch.setenv("GOALCOVER_EMBED_BACKEND", "torch")
    monkeypatch.setattr(embeddings, "_torch_cuda", lambda: False)
    monkeypatch.setattr(embeddings, "_cuda_providers", lambda: False)
    embeddings._model.cache_clear()
    try:
        assert embeddings.embed(["one text"]).shape == (1, embeddings.DIMENSION)
        assert embeddings.active_backend() == "torch"
    finally:
        embeddings._model.cache_clear()
    assert "no GPU runtime is available" in capsys.readouterr().err


def test_bad_settings_are_refused(monkeypatch):
    monkeypatch.setenv("GOALCOVER_EMBED_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="GOALCOVER_EMBED_BACKEND"):
        embeddings.embed_settings()


def test_queries_start_on_the_cached_onnx_export_and_wait_for_no_export(texts, reference, tmp_path, monkeypatch):
    """`search` embeds its query on the ONNX export when one is cached (no PyTorch load), never exporting
    itself; `prepare_query_model` (run after a CLI ingest) makes it ready."""
    first = embeddings.ensure_onnx()  # the machine's cache (exported once, by this test or an earlier one)
    cache = tmp_path / "onnx"
    monkeypatch.setenv("GOALCOVER_ONNX_CACHE", str(cache))
    monkeypatch.delenv("GOALCOVER_EMBED_BACKEND", raising=False)
    monkeypatch.setattr(embed_onnx, "export_onnx", lambda target: Path(shutil.copyfile(first, target)))
    folder = embeddings.onnx_cache_dir()
    embeddings._query_model.cache_clear()
    try:
        assert not embeddings.query_model_ready()
        assert not isinstance(embeddings._query_model(), embeddings.OnnxEncoder)  # nothing cached: no export
        assert not (folder / "model.onnx").exists()
        assert embeddings.prepare_query_model() and embeddings.query_model_ready()
        assert isinstance(embeddings._query_model(), embeddings.OnnxEncoder)
        vectors = embeddings.MiniLMEmbedding().embed_query(texts[:3])
        _check_close(np.vstack(vectors), reference[:3], 0.9999)
    finally:
        embeddings._query_model.cache_clear()
