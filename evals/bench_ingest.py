"""Benchmark: does the index add little on top of embedding, is re-ingesting nearly free, and does
ingest memory stay flat as files grow?

Prints ratios against baselines measured in the same run (machines here are noisy):
- ingest throughput / raw embedding throughput of the same model on the same texts (target >= 0.8);
- re-ingest time of an unchanged file / first ingest time (target <= 0.05);
- with --memory: peak RSS of a whole ingest (a fresh process each) at 10^4 and 10^5 synthetic samples
  built from the real files' records, and the growth per 10x (target <= 2x). The embedder is replaced
  by random unit vectors in those processes only (its memory does not depend on the file's size, and
  10^5 real embeddings take most of an hour on 2 cores); reading, checking, staging, the index and its
  commit all run for real.

    python -m goalcover.evals.bench_ingest [--datasets DIR] [--limit N] [--memory [--sizes 10000,100000]]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.data.embeddings import embed
from goalcover.tools.data.records import read_samples
from goalcover.tools.core.workspace import Workspace

DEFAULT_DATASETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sft"


def synthetic_file(source: Path, n: int, out: Path) -> Path:
    """`n` alpaca records cycled from a real file's, each with its own id and a numbered instruction."""
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    with out.open("w", encoding="utf-8") as f:
        for i, record in zip(range(n), itertools.cycle(records)):
            f.write(json.dumps({**record, "id": f"syn-{i}", "instruction": f"{record['instruction']} (#{i})"}, ensure_ascii=False) + "\n")
    return out


def memory_child(path: Path | str, workspace: Path | str) -> None:
    """Run in a fresh process: ingest `path` with a stand-in embedder; print RSS figures (MiB) as JSON."""
    import numpy as np

    from goalcover.tools.data import embeddings

    rng = np.random.default_rng(0)

    def fake_embed(texts, batch_size=64):
        vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    embeddings.embed = fake_embed  # the ingest imports it at call time
    with Workspace.open(Path(workspace)) as ws:
        ws.index.count()  # Chroma loaded before the baseline
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        result = ingest_file(ws, Path(path))
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples": result.samples, "base_mib": base, "peak_mib": peak, "seconds": seconds}))


def chroma_child(n: int | str, workspace: Path | str) -> None:
    """The baseline, in a fresh process: Chroma alone, taking `n` random unit vectors with short
    documents and the same metadata keys in chunks of 256, as ingest writes them; RSS figures as JSON."""
    import numpy as np

    from goalcover.tools.data.index import Index

    n = int(n)
    index = Index(Path(workspace))
    index.count()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(0)
    for start in range(0, n, 256):
        k = min(256, n - start)
        vectors = rng.standard_normal((k, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.upsert(
            [f"v{start + j}" for j in range(k)], vectors, ["Instruction: a short task. Response: its answer."] * k,
            [{"source": "x.jsonl", "format": "alpaca", "line": start + j, "content_hash": "0" * 64} for j in range(k)],
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples": n, "base_mib": base, "peak_mib": peak, "seconds": 0.0}))


def _child(function: str, *args: str) -> dict:
    code = f"import sys; from pathlib import Path; from goalcover.evals.bench_ingest import {function} as f; f(*sys.argv[1:])"
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory(datasets: Path, sizes: list[int]) -> None:
    """Peak memory of ingesting each size in `sizes` from `datasets`, each in a child process, beside Chroma alone
    with as many vectors; prints one line per size and the growth per decade."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-mem-"))
    try:
        rows, bases = [], []
        for n in sizes:
            data = synthetic_file(datasets / "mbpp_alpaca.jsonl", n, tmp / f"syn-{n}.jsonl")
            row = _child("memory_child", str(data), str(tmp / f"ws-{n}"))
            base = _child("chroma_child", str(n), str(tmp / f"chroma-{n}"))
            rows.append(row)
            bases.append(base)
            size_mib = data.stat().st_size / 2**20
            added, chroma = row["peak_mib"] - row["base_mib"], base["peak_mib"] - base["base_mib"]
            print(f"{n:>8,} samples ({size_mib:6.1f} MiB file): peak RSS {row['peak_mib']:7.1f} MiB "
                  f"(after imports {row['base_mib']:7.1f} MiB, ingest adds {added:6.1f} MiB) in {row['seconds']:6.1f} s; "
                  f"Chroma alone with as many vectors adds {chroma:6.1f} MiB, so GoalCover's own share is {added - chroma:6.1f} MiB")
        for (small, big), (small_base, big_base) in zip(zip(rows, rows[1:]), zip(bases, bases[1:])):
            decades = math.log10(big["samples"] / small["samples"])
            per10 = (big["peak_mib"] / small["peak_mib"]) ** (1 / decades)
            chroma10 = (big_base["peak_mib"] / small_base["peak_mib"]) ** (1 / decades)
            print(f"peak RSS growth per 10x samples: {per10:.2f}x  (target <= 2x; Chroma's own index alone: {chroma10:.2f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    """Run the benchmark from the command line and print its table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="folder of .jsonl files to ingest")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N records of each file (0: all)")
    parser.add_argument("--memory", action="store_true", help="measure peak RSS at --sizes instead of throughput")
    parser.add_argument("--sizes", default="10000,100000", help="sample counts for --memory, comma-separated")
    args = parser.parse_args()
    if args.memory:
        memory(args.datasets, [int(n) for n in args.sizes.split(",")])
        return

    files = sorted(args.datasets.glob("*.jsonl"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        if args.limit:
            for i, f in enumerate(files):
                small = tmp / f.name
                small.write_bytes(b"\n".join(f.read_bytes().split(b"\n")[: args.limit]) + b"\n")
                files[i] = small
        texts = [s.text for f in files for s in read_samples(f).samples]
        embed(texts[:8])  # load the model once, outside every timing

        def raw() -> float:
            start = time.perf_counter()
            embed(texts)
            return time.perf_counter() - start

        raw_first = raw()
        first = again = 0.0
        for n, f in enumerate(files):
            with Workspace.open(tmp / f"ws{n}") as ws:
                start = time.perf_counter()
                ingest_file(ws, f)
                first += time.perf_counter() - start
                start = time.perf_counter()
                result = ingest_file(ws, f)
                again += time.perf_counter() - start
                assert result.embedded == 0
        raw_time = (raw_first + raw()) / 2  # before and after, to even out drift on a noisy machine

        print(f"samples: {len(texts)} in {len(files)} files")
        print(f"raw embedding:        {raw_time:7.2f} s  ({len(texts) / raw_time:7.1f} samples/s)")
        print(f"ingest + embed:       {first:7.2f} s  ({len(texts) / first:7.1f} samples/s)")
        print(f"re-ingest, unchanged: {again:7.2f} s")
        print(f"throughput ratio ingest/raw:  {raw_time / first:.3f}  (target >= 0.8)")
        print(f"re-ingest / first ingest:     {again / first:.4f}  (target <= 0.05)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
