"""Benchmark: how time and memory grow with the dataset, through every stage of an audit.

For each size (default 10³, 10⁴, 10⁵ samples) a synthetic alpaca-shaped dataset is built from the vendored
SFT files' real fields — the prompt side (instruction + input) of one record recombined with the response
of another, every pair distinct, so the text is real and every sample unique — and taken through:

1. ingest   — `dataset.ingest_file` (read, check, embed, index);
2. score    — `scoring.score` in batched mode with the 6-subgoal goal of bench_scoring, against the fake
              endpoint in its own process (0 ms latency), then `scoring.index_scores`;
3. coverage — `coverage.coverage`;
4. gaps     — `gaps.find_gaps` for S1 (the user asks why S1 is weak: its low-score explanations are embedded
              and clustered; the fake agent model names the clusters);
5. export   — `export.export` of the whole dataset to JSONL.

Each stage runs in its own child process, so its peak RSS (`ru_maxrss`) is its own; "above start" is that
peak minus the process's RSS once its imports are done (what the stage's work added). Ratios are against
the next smaller size measured in the same run; the last line is

    scale: A->B time xT, memory xM, total B S s

for the two largest sizes A and B: T and M the worst stage's growth (M over the stages that do not build
the vector index, i.e. all but ingest, whose peak holds Chroma's in-memory HNSW index), S the end-to-end
seconds at B. Targets (issue 15): T <= 11 for every stage, M <= 3, B = 10⁵ end to end under 30 minutes.

    python -m goalcover.evals.bench_scale [--sizes 1000,10000,100000] [--datasets DIR] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATASETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sft"
ALPACA_FILES = ("contracts_alpaca.jsonl", "mbpp_alpaca.jsonl", "selfinstruct_alpaca.jsonl")
STAGES = ("ingest", "score", "coverage", "gaps", "export")
INDEX_STAGES = ("ingest",)  # their peak holds the vector index, which the memory target excludes
MODEL = "fake-model"
TARGET_TIME, TARGET_MEMORY, TARGET_TOTAL_S = 11.0, 3.0, 30 * 60


def build_dataset(datasets: Path, n: int, target: Path, seed: int = 0) -> None:
    """Write `n` unique alpaca records to `target`: prompt (instruction, input) of record i with the output
    of record j, (i, j) drawn without replacement from all pairs. Raises ValueError when the files hold
    too few pairs."""
    prompts: list[tuple[str, str]] = []
    outputs: list[str] = []
    for name in ALPACA_FILES:
        for line in (datasets / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            prompts.append((record["instruction"], record.get("input", "")))
            outputs.append(record["output"])
    prompts, outputs = list(dict.fromkeys(prompts)), list(dict.fromkeys(outputs))  # distinct pairs, distinct texts
    if n > len(prompts) * len(outputs):
        raise ValueError(f"{datasets} has {len(prompts) * len(outputs):,} prompt × response pairs; {n:,} asked")
    picks = np.random.default_rng(seed).choice(len(prompts) * len(outputs), size=n, replace=False)
    with target.open("w", encoding="utf-8") as out:
        for k, pick in enumerate(picks.tolist()):
            (instruction, given), output = prompts[pick // len(outputs)], outputs[pick % len(outputs)]
            record = {"id": f"scale-{k}", "instruction": instruction, "input": given, "output": output}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _rss_mb() -> float:
    """This process's resident set size now, MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_stage(stage: str, workspace: Path, data: Path, base_url: str, concurrency: int) -> dict:
    """One stage, in this (child) process; returns seconds, peak and start RSS (MiB) and a detail line."""
    from goalcover.tools.judge import scoring
    from goalcover.tools.measure.coverage import coverage
    from goalcover.tools.data.ingest import ingest_file
    from goalcover.tools.data.export import export
    from goalcover.tools.fill.gaps import find_gaps
    from goalcover.tools.core.goal import save_goal
    from goalcover.tools.core.workspace import Workspace
    from goalcover.evals.bench_scoring import GOAL

    start_rss = _rss_mb()
    started = time.perf_counter()
    with Workspace.open(workspace, model=MODEL, base_url=base_url, api_key="not-needed") as ws:
        if stage == "ingest":
            result = ingest_file(ws, data)
            save_goal(ws, GOAL)
            detail = f"{result.samples:,} samples, {result.embedded:,} embedded"
        elif stage == "score":
            result = asyncio.run(scoring.score(ws, "batched", concurrency=concurrency))
            indexed = scoring.index_scores(ws)
            detail = f"{result.judgments:,} judgments in {result.calls:,} calls, {result.failed} failed; {indexed:,} indexed"
        elif stage == "coverage":
            report = coverage(ws)
            detail = ", ".join(f"{r.id} {r.share:.0%}" for r in report.subgoals)
        elif stage == "gaps":
            found = asyncio.run(find_gaps(ws, "S1"))
            detail = f"{len(found)} gaps of S1 over {sum(g.size for g in found):,} samples"
        elif stage == "export":
            result = export(ws, workspace.parent / f"{workspace.name}-export.jsonl")
            detail = f"{result.written:,} samples written"
        else:
            raise ValueError(stage)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak, "start_mb": start_rss, "detail": detail}


def _child(stage: str, workspace: Path, data: Path, base_url: str, concurrency: int) -> dict:
    cmd = [sys.executable, "-m", "goalcover.evals.bench_scale", "--stage", stage, "--workspace", str(workspace),
           "--data", str(data), "--base-url", base_url, "--concurrency", str(concurrency)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"stage {stage} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def _ratio(a: float, b: float) -> float:
    return b / a if a > 0 else float("inf")


def main() -> None:
    """Run the benchmark from the command line and print its table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated dataset sizes, ascending")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="folder with the alpaca SFT files")
    parser.add_argument("--concurrency", type=int, default=32, help="judge calls in flight (default 32)")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:  # a child: one stage, one JSON line
        print(json.dumps(run_stage(args.stage, args.workspace, args.data, args.base_url, args.concurrency)), flush=True)
        return

    from goalcover.evals.bench_scoring import FakeProcess

    sizes = sorted(int(s) for s in args.sizes.split(","))
    if len(sizes) < 2:
        parser.error("--sizes needs at least two sizes to measure growth")
    results: dict[int, dict[str, dict]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="goalcover-scale-"))
    print(f"bench_scale: sizes {', '.join(f'{n:,}' for n in sizes)}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}", flush=True)
    try:
        with FakeProcess() as fake:
            for n in sizes:
                data = scratch / f"scale-{n}.jsonl"
                build_dataset(args.datasets, n, data)
                workspace = scratch / f"ws-{n}"
                results[n] = {}
                for stage in STAGES:
                    fake.reset_stats()
                    results[n][stage] = row = _child(stage, workspace, data, fake.base_url, args.concurrency)
                    print(f"{n:>8,} {stage:<9} {row['seconds']:8.1f} s  peak {row['peak_mb']:7.1f} MiB  "
                          f"(above start {row['peak_mb'] - row['start_mb']:6.1f})  {row['detail']}", flush=True)
                shutil.rmtree(workspace, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print("\ngrowth per step (time ×, peak memory ×, memory above start ×)")
    print(f"{'stage':<9}" + "".join(f"  {a:,}->{b:,}".ljust(34) for a, b in zip(sizes, sizes[1:])))
    for stage in STAGES:
        cells = []
        for a, b in zip(sizes, sizes[1:]):
            ra, rb = results[a][stage], results[b][stage]
            cells.append(
                f"  x{_ratio(ra['seconds'], rb['seconds']):5.2f} x{_ratio(ra['peak_mb'], rb['peak_mb']):5.2f} "
                f"x{_ratio(ra['peak_mb'] - ra['start_mb'], rb['peak_mb'] - rb['start_mb']):6.2f}".ljust(34)
            )
        print(f"{stage:<9}" + "".join(cells))
    a, b = sizes[-2], sizes[-1]
    time_growth = {s: _ratio(results[a][s]["seconds"], results[b][s]["seconds"]) for s in STAGES}
    memory_growth = {s: _ratio(results[a][s]["peak_mb"], results[b][s]["peak_mb"]) for s in STAGES if s not in INDEX_STAGES}
    total = sum(results[b][s]["seconds"] for s in STAGES)
    worst_t, worst_m = max(time_growth, key=time_growth.get), max(memory_growth, key=memory_growth.get)
    ingest_m = _ratio(results[a]["ingest"]["peak_mb"], results[b]["ingest"]["peak_mb"])
    print(f"\nworst time growth: {worst_t} x{time_growth[worst_t]:.2f} (target <= {TARGET_TIME:g}); worst memory growth: "
          f"{worst_m} x{memory_growth[worst_m]:.2f} (target <= {TARGET_MEMORY:g}; ingest, holding the vector index: x{ingest_m:.2f}); "
          f"end to end at {b:,}: {total:.0f} s (target < {TARGET_TOTAL_S} s at 100,000)")
    print(f"scale: {a}->{b} time x{time_growth[worst_t]:.2f}, memory x{memory_growth[worst_m]:.2f}, total {b} {total:.0f} s")


if __name__ == "__main__":
    main()
