"""Benchmark: does reading a JSON array grow linearly with its size, and how does it compare with the same
records as JSON Lines?

Issue 27 (F7) measured a JSON array of 80k records taking 291 s to read (20k: 18 s) against 0.45 s for
the same data as JSONL: quadratic. This prints, for each size, the read time of the array (streamed by
`read_json._JsonArray`) and of the same records as JSONL, measured in the same run on the same machine:
- array time / JSONL time at each size (target: a small constant, <= 3x);
- the array's time growth per 4x records (target <= 4.5x: linear, with noise; quadratic would be 16x).

Records are cycled from a real file (tests/data/sft) with a numbered instruction and id; reading means
`ingest.scan`: parsing, shape checks and ids, everything but embedding.

    python -m goalcover.evals.bench_json_array [--sizes 20000,80000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

from goalcover.tools.data.records import scan

SOURCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "sft" / "contracts_alpaca.jsonl"


def write_both(n: int, folder: Path) -> tuple[Path, Path]:
    """`n` records as a pretty-printed JSON array (as people save them) and as JSON Lines."""
    records = [json.loads(line) for line in SOURCE.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [{**r, "id": f"r-{i}", "instruction": f"{r['instruction']} (#{i})"} for i, r in zip(range(n), itertools.cycle(records))]
    array, lines = folder / f"data-{n}.json", folder / f"data-{n}.jsonl"
    with array.open("w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False, indent=2) for r in rows) + "\n]\n")
    with lines.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return array, lines


def read_seconds(path: Path, n: int, repeat: int) -> float:
    """The best of `repeat` full reads (seconds); asserts all `n` records came through."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        count = sum(1 for _ in scan(path).samples)
        best = min(best, time.perf_counter() - start)
        assert count == n, f"{path}: {count} of {n} records read"
    return best


def main() -> None:
    """Command line: time reading the same records as a JSON array and as JSONL at each size; print the ratios and growth."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,80000", help="record counts, comma-separated, ascending")
    parser.add_argument("--repeat", type=int, default=3, help="reads per file; the best time counts")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-json-array-"))
    try:
        times = []
        for n in sizes:
            array, lines = write_both(n, tmp)
            a, j = read_seconds(array, n, args.repeat), read_seconds(lines, n, args.repeat)
            times.append((n, a))
            print(f"{n:>8,} records: JSON array {a:7.2f} s ({array.stat().st_size / 2**20:6.1f} MiB), "
                  f"JSONL {j:7.2f} s ({lines.stat().st_size / 2**20:6.1f} MiB); array / JSONL = {a / j:.2f}x (target <= 3x)")
        for (n1, t1), (n2, t2) in zip(times, times[1:]):
            per4 = (t2 / t1) ** (math.log(4) / math.log(n2 / n1))
            print(f"array read time growth per 4x records: {per4:.2f}x (target <= 4.5x; linear 4x, quadratic 16x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
