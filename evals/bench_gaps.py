"""Benchmark: how gap clustering scales with the number of low-score explanations.

Clusters 1k, 10k and 100k synthetic unit vectors (384 dimensions, like the MiniLM explanation embeddings:
a mixture of topic blobs plus noise) with the same `cluster` function `goalcover gaps` uses, and prints
time, peak traced memory, the number of clusters found, and the growth ratio per 10× data (time and
memory relative to the previous size, measured in the same run).

    python -m goalcover.evals.bench_gaps [--sizes 1000 10000 100000] [--topics 12]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from goalcover.tools.fill.gaps import cluster


def explanation_like(n: int, topics: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors (n, 384) around `topics` random centres, like embedded explanations, and each one's true topic (n,)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, 384)).astype(np.float32)
    truth = rng.integers(0, topics, size=n)
    vectors = centres[truth] + rng.normal(scale=0.9, size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, truth


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of clustered points whose cluster's majority topic is their own."""
    clustered = labels >= 0
    if not clustered.any():
        return 0.0
    agree = 0
    for label in set(labels[clustered].tolist()):
        members = truth[labels == label]
        agree += np.bincount(members).max()
    return agree / clustered.sum()


def main() -> None:
    """Run the benchmark from the command line and print its table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--topics", type=int, default=12)
    args = parser.parse_args()

    cluster(explanation_like(200, args.topics)[0])  # import and warm scikit-learn outside the timings
    rows = []
    for n in args.sizes:
        vectors, truth = explanation_like(n, args.topics)
        tracemalloc.start()
        start = time.perf_counter()
        labels = cluster(vectors)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        found = len(set(labels.tolist()) - {-1})
        rows.append((n, elapsed, peak / 2**20, found, float((labels < 0).mean()), purity(labels, truth)))

    print(f"{'explanations':>12} {'time s':>8} {'peak MiB':>9} {'clusters':>8} {'noise':>6} {'purity':>6} {'time x':>7} {'mem x':>6}")
    for i, (n, elapsed, mib, found, noise, pure) in enumerate(rows):
        growth_t = f"{elapsed / rows[i - 1][1]:7.1f}" if i else "      –"
        growth_m = f"{mib / rows[i - 1][2]:6.1f}" if i else "     –"
        print(f"{n:>12,} {elapsed:8.2f} {mib:9.1f} {found:8d} {noise:6.2f} {pure:6.2f} {growth_t} {growth_m}")
    print("time x / mem x: growth against the previous size (10x data: 10 is linear, 100 quadratic)")


if __name__ == "__main__":
    main()
