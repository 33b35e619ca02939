"""Benchmark: how fast does each way of running all-MiniLM-L6-v2 embed, and are its vectors the same?

On the same texts in one run (the vendored real data's text views, clipped as `embed` clips them):
- `torch`: sentence-transformers on PyTorch in float32, as GoalCover embedded before (the baseline;
  its `encode` already sorts each call's texts by length and pads per batch);
- `torch-bf16`: the same under CPU bfloat16 autocast (only where the CPU has AMX or AVX512-BF16);
- `onnx`, `onnx-sorted`: the packaged weights exported to ONNX (cached), on onnxruntime, with batches
  in the given order or length-sorted (each batch padded only to its own longest text);
- `onnx-int8-sorted`: the same, sorted, with dynamically int8-quantized weights;
- `openvino`: the float32 ONNX export compiled by OpenVINO for the CPU (bfloat16 matrix products where
  the CPU has AMX or AVX512-BF16), length-sorted (only where the `openvino` package is installed).

Per variant: samples/s of wall time and per CPU-second (best of `--repeats` rounds, the variants alternating within each round, as
machines here are noisy), the ratio to `torch` measured in the same run, the mean top-10
nearest-neighbour agreement with the `torch` vectors (each text's 10 nearest other texts by cosine),
and the lowest per-text cosine to the `torch` vector. The last line names the variant `embed` uses
(`GOALCOVER_EMBED_BACKEND`, default `auto`) and its ratio.

    python -m goalcover.evals.bench_embed [--limit N] [--repeats R] [--batch-size B] [--datasets DIR]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from goalcover.tools.data import embeddings
from goalcover.tools.data.records import read_samples

DEFAULT_DATASETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sft"
AGREEMENT_TARGET = 0.95


def load_texts(datasets: Path, limit: int | None, seed: int = 0) -> list[str]:
    """Distinct text views of every vendored file, shuffled together (fixed seed), the first `limit`."""
    texts: list[str] = []
    for path in sorted(datasets.glob("*.jsonl")):
        texts += [s.text[: embeddings.MAX_EMBED_CHARS] for s in read_samples(path).samples]
    texts = list(dict.fromkeys(texts))
    random.Random(seed).shuffle(texts)
    return texts[:limit] if limit else texts


def top_k(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    """Indices of each row's k nearest other rows by cosine (the vectors are unit length)."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(vectors) - 1)
    return np.argpartition(-similarity, k - 1, axis=1)[:, :k]


def agreement(reference: np.ndarray, other: np.ndarray, k: int = 10) -> float:
    """Mean share of each text's top-k neighbours under `reference` that are also its top-k under `other`."""
    a, b = top_k(reference, k), top_k(other, k)
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)]))


def variants() -> dict[str, object]:
    """name -> encoder (loaded, and exported/quantized into the cache if needed, before timing)."""
    reference = embeddings.torch_model("cpu")
    found: dict[str, object] = {"torch": reference}
    if embeddings.cpu_has_bf16():
        found["torch-bf16"] = embeddings.Bf16Encoder(reference)
    found["onnx"] = embeddings.onnx_model(quantized=False, sort_by_length=False)
    found["onnx-sorted"] = embeddings.onnx_model(quantized=False, sort_by_length=True)
    found["onnx-int8-sorted"] = embeddings.onnx_model(quantized=True, sort_by_length=True)
    try:
        found["openvino"] = embeddings.openvino_model()
    except Exception as error:  # noqa: BLE001 - not installed, or no CPU plugin: the others still run
        print(f"openvino skipped: {type(error).__name__}: {error}")
    return found


ADOPTED = {"onnx": "onnx-sorted", "onnx-int8": "onnx-int8-sorted", "torch": "torch", "torch-bf16": "torch-bf16", "openvino": "openvino"}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line (see the module docstring); exit status 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--limit", type=int, default=2000, help="texts to embed (default 2000; 0 = all)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds per variant (best counts)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    texts = load_texts(args.datasets, args.limit or None)
    print(f"bench_embed: {len(texts)} distinct texts ({np.mean([len(t) for t in texts]):.0f} chars on average), batch size {args.batch_size}")
    started = time.perf_counter()
    encoders = variants()
    print(f"models loaded (ONNX exported/quantized if not cached) in {time.perf_counter() - started:.1f} s")
    for encoder in encoders.values():  # warm-up: first-call allocations are not what we measure
        encoder.encode(texts[:8], batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False)

    names = list(encoders)
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(args.repeats):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            out = encoders[name].encode(texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            vectors[name] = np.asarray(out, dtype=np.float32)
            rate = len(texts) / seconds
            best[name] = max(best.get(name, 0.0), rate)
            best_cpu[name] = max(best_cpu.get(name, 0.0), len(texts) / cpu)
            print(f"  round {round_ + 1} {name:<17} {seconds:7.1f} s  {rate:7.1f} samples/s  {len(texts) / cpu:7.1f} per CPU-s", flush=True)

    reference = vectors["torch"]
    print(f"\n{'variant':<17} {'samples/s':>10} {'x torch':>8} {'per CPU-s':>10} {'x torch':>8} {'top-10 agree':>13} {'min cos':>8}")
    for name in names:
        cosines = np.sum(reference * vectors[name], axis=1)
        agree = agreement(reference, vectors[name])
        print(
            f"{name:<17} {best[name]:10.1f} {best[name] / best['torch']:8.2f} {best_cpu[name]:10.1f} "
            f"{best_cpu[name] / best_cpu['torch']:8.2f} {agree:13.3f} {cosines.min():8.4f}"
        )

    adopted = ADOPTED[embeddings.active_backend().split(" ")[0]]
    agree = agreement(reference, vectors[adopted])
    verdict = "ok" if agree >= AGREEMENT_TARGET else f"BELOW the {AGREEMENT_TARGET:.2f} target"
    print(f"bench_embed: adopted {adopted} at {best[adopted]:.1f} samples/s, x{best[adopted] / best['torch']:.2f} the PyTorch path (x{best_cpu[adopted] / best_cpu['torch']:.2f} per CPU-s), top-10 agreement {agree:.3f} ({verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
