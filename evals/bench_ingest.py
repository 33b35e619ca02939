"""Benchmark: does the index add little on top of embedding, and is re-ingesting nearly free?

Prints ratios against baselines measured in the same run (machines here are noisy):
- ingest throughput / raw embedding throughput of the same model on the same texts (target >= 0.8);
- re-ingest time of an unchanged file / first ingest time (target <= 0.05).

    python -m goalcover.evals.bench_ingest [--datasets DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from goalcover.tools.dataset import ingest_file
from goalcover.tools.embeddings import embed
from goalcover.tools.ingest import read_samples
from goalcover.tools.workspace import Workspace

DEFAULT_DATASETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sft"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="folder of .jsonl files to ingest")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N records of each file (0: all)")
    args = parser.parse_args()

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
