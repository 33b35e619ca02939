"""Benchmark: does the judge keep a slow endpoint busy, does batching pay, and do faults cost only time?

Runs `scoring.score` against the fake OpenAI endpoint (goalcover.testing.FakeOpenAI) answering every call
after 200 ms, on real SFT samples with a 6-subgoal goal, and prints ratios against baselines measured in
the same run (machines here are noisy):

1. throughput: calls/s as a share of the ideal (concurrency / latency) at concurrency 8, 32 and 128, in
   pair mode, each level about ROUNDS x latency of ideal time (target >= 0.9 at 32); the fake's
   max_in_flight shows the concurrency was real;
2. batched vs pair: calls and prompt tokens per sample, prompt tokens as the endpoint counted them
   (target: batched sends >= 4x fewer prompt tokens);
3. the runs of 2 again with 10% injected faults (429, 500 and malformed JSON, spread evenly): every
   judgment completes (target), with the slow-down (elapsed with faults / without) and the extra HTTP
   requests the endpoint saw (retries and repair calls).

Embedding (ingest) happens once, before any timing; each measurement scores a fresh copy of that workspace.

    python -m goalcover.evals.bench_scoring [--datasets DIR] [--files A.jsonl,B.jsonl] [--quick]
                                            [--repeat N] [--fake-process]
"""

from __future__ import annotations

import asyncio

import argparse
import itertools
import logging
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goalcover.testing import FakeOpenAI, Faults
from goalcover.tools.judge import scoring
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import save_goal
from goalcover.tools.core.shapes import Goal, Subgoal
from goalcover.tools.core.workspace import Workspace

DEFAULT_DATASETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sft"
# Self-instruct's user-oriented tasks, topped up with MBPP when the largest level needs more samples.
DEFAULT_FILES = "selfinstruct_alpaca.jsonl,mbpp_alpaca.jsonl"
MODEL = "fake-model"
LATENCY_S = 0.2
LEVELS = (8, 32, 128)
TARGET_LEVEL = 32
TARGET_SHARE = 0.9
TARGET_TOKEN_RATIO = 4.0
FAULT_RATE = 0.10
FAULT_SEED = 7

GOAL = Goal(
    text=(
        "A general-purpose assistant that does what everyday users ask: rewriting and summarising text, "
        "writing emails, answering factual questions, writing small programs and planning tasks, always in "
        "the form the user asked for."
    ),
    subgoals=[
        Subgoal(
            id="S1",
            title="Follows the requested output format",
            description="Produces exactly the form the instruction asks for: list, table, word limit, JSON, one word.",
            evidence="an instruction with an explicit format constraint and a response that meets it exactly",
        ),
        Subgoal(
            id="S2",
            title="Rewrites text clearly and concisely",
            description="Edits, paraphrases, shortens or corrects a given text while keeping its meaning.",
            evidence="an input text and a response that rewrites it more clearly, shorter or without errors",
        ),
        Subgoal(
            id="S3",
            title="Writes professional emails and messages",
            description="Drafts emails, replies and short messages with a suitable tone for the recipient.",
            evidence="a request for an email or message and a complete, well-toned draft",
        ),
        Subgoal(
            id="S4",
            title="Answers factual questions accurately",
            description="Gives correct, direct answers to questions about facts, definitions and concepts.",
            evidence="a factual question and a correct, to-the-point answer",
        ),
        Subgoal(
            id="S5",
            title="Writes correct code for small tasks",
            description="Writes short programs, functions or queries that solve the stated problem.",
            evidence="a programming task and code that solves it (and would pass the given tests, if any)",
        ),
        Subgoal(
            id="S6",
            title="Gives step-by-step plans and instructions",
            description="Breaks a goal into ordered, actionable steps: how-tos, itineraries, schedules.",
            evidence="a request for a plan or procedure and a response with clear ordered steps",
        ),
    ],
)


class _ClosedLoopNoise(logging.Filter):
    """Counts (and hides) 'Task exception was never retrieved … Event loop is closed': an HTTP client of a
    finished `scoring.score` run, garbage-collected after `asyncio.run` closed its loop, trying to close
    its connections. Harmless for the numbers, but it would bury the report; the count is printed."""

    count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            self.count += 1
            return False
        return True


class FakeProcess:
    """The same fake served by `python -m goalcover.testing.fake_openai` in a child process, so that its
    CPU does not share this process's GIL with the engine (`--fake-process`). Same face as FakeOpenAI."""

    def __enter__(self) -> "FakeProcess":
        import httpx

        cmd = [sys.executable, "-m", "goalcover.testing.fake_openai", "--host", "127.0.0.1", "--port", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        found = re.search(r"listening on (http://\S+)/v1", line)
        if not found:
            self.proc.kill()
            raise RuntimeError(f"the fake server did not start (exit status {self.proc.wait()}): {line!r}")
        self.url = found.group(1)
        self.base_url = f"{self.url}/v1"
        self.http = httpx.Client(base_url=self.url, trust_env=False, timeout=10)
        return self

    def set_faults(self, faults: Faults) -> None:
        """Replace the fake endpoint's fault configuration (POST /faults)."""
        self.http.post("/faults", json=faults.model_dump()).raise_for_status()

    def stats(self) -> dict[str, Any]:
        """The fake endpoint's counters (GET /stats)."""
        return self.http.get("/stats").json()

    def reset_stats(self) -> None:
        """Zero the fake endpoint's counters (POST /stats/reset)."""
        self.http.post("/stats/reset").raise_for_status()

    def __exit__(self, *exc: Any) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Run:
    """One scoring run's settings and results: mode, concurrency, samples, the ScoreResult, wall and CPU seconds, the fake's counters."""
    mode: str
    concurrency: int
    samples: int
    expected_pairs: int
    result: scoring.ScoreResult
    elapsed: float
    cpu: float
    stats: dict[str, Any]
    sample_tokens: float  # mean estimated tokens of the samples scored (len / 4)

    @property
    def share(self) -> float:
        """Achieved calls/s over the ideal concurrency / latency."""
        return self.result.calls / self.elapsed / (self.concurrency / LATENCY_S)

    @property
    def complete(self) -> bool:
        """Whether every expected pair was judged and none failed."""
        return self.result.failed == 0 and self.result.judgments == self.expected_pairs


class Bench:
    """Scoring runs, each in a fresh copy of one ingested workspace, against one fake endpoint."""
    def __init__(self, fake: Any, base: Path, scratch: Path, sample_ids: list[str]) -> None:
        self.fake, self.base, self.scratch, self.sample_ids = fake, base, scratch, sample_ids
        self.counter = itertools.count()

    def run(self, mode: str, samples: int, concurrency: int, faults: Faults) -> Run:
        """Score the first `samples` samples in a fresh copy of the ingested workspace."""
        folder = self.scratch / f"run{next(self.counter)}"
        shutil.copytree(self.base, folder)
        try:
            with Workspace.open(folder, model=MODEL, base_url=self.fake.base_url, api_key="not-needed") as ws:
                with ws.store.transaction() as conn:
                    ws.store.delete_samples(conn, self.sample_ids[samples:])
                plan = scoring.plan(ws, mode)[0]
                texts = [s.text for s in ws.store.samples()]
                self.fake.set_faults(faults)
                self.fake.reset_stats()
                cpu, start = time.process_time(), time.perf_counter()
                result = asyncio.run(scoring.score(ws, mode, concurrency=concurrency))
                elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
                stats = self.fake.stats()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        tokens = sum(len(t) for t in texts) / 4 / max(1, len(texts))
        return Run(mode, concurrency, samples, plan.pairs, result, elapsed, cpu, stats, tokens)


def ingest(base: Path, files: list[Path], needed: int, scratch: Path) -> tuple[list[str], list[str], float]:
    """Ingest files in order until `needed` samples are in (the last one cut short); returns the sample ids
    in file order, the names of the files used and the time it took."""
    start = time.perf_counter()
    used: list[str] = []
    with Workspace.open(base) as ws:
        have = 0
        for n, path in enumerate(files):
            if have >= needed:
                break
            used.append(path.name)
            lines = path.read_bytes().splitlines(keepends=True)
            if have + len(lines) > needed:  # embed only what the benchmark uses: embedding is the slow part
                path = scratch / f"part-{path.name}"
                path.write_bytes(b"".join(lines[: needed - have]))
            have += ingest_file(ws, path, add=n > 0).samples
        save_goal(ws, GOAL)
        ids = [s.id for s in ws.store.samples()]
    return ids, used, time.perf_counter() - start


def main() -> None:
    """Run the benchmark from the command line and print its table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="folder holding the --files")
    parser.add_argument("--files", default=DEFAULT_FILES, help="comma-separated .jsonl files (alpaca shape), used in order")
    parser.add_argument("--quick", action="store_true", help="a smaller run: ~2 s of ideal time per level, 48 samples")
    parser.add_argument("--rounds", type=int, help="calls per level = ROUNDS x concurrency (default 25, --quick 10)")
    parser.add_argument("--samples", type=int, help="samples in the batched/pair/fault runs (default 150, --quick 48)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each throughput level N times, report the median")
    parser.add_argument(
        "--fake-process", action="store_true", help="serve the fake from a child process instead of a thread in this one"
    )
    args = parser.parse_args()
    rounds = args.rounds or (10 if args.quick else 25)
    pair_samples = args.samples or (48 if args.quick else 150)
    subgoals = len(GOAL.subgoals)
    level_samples = {c: math.ceil(rounds * c / subgoals) for c in LEVELS}

    noise = _ClosedLoopNoise()
    logging.getLogger("asyncio").addFilter(noise)
    files = [args.datasets / name.strip() for name in args.files.split(",") if name.strip()]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        parser.error(f"no such dataset file: {', '.join(missing)} (see --datasets, --files)")

    bench_start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    checks: list[tuple[str, bool]] = []
    try:
        base = scratch / "base"
        ids, used, ingest_s = ingest(base, files, max(max(level_samples.values()), pair_samples), scratch)
        level_samples = {c: min(n, len(ids)) for c, n in level_samples.items()}
        pair_samples = min(pair_samples, len(ids))
        fake_cm = FakeProcess() if args.fake_process else FakeOpenAI(faults=Faults(latency_ms=LATENCY_S * 1000))
        with fake_cm as fake:
            bench = Bench(fake, base, scratch, ids)
            clean = Faults(latency_ms=LATENCY_S * 1000)
            faulty = Faults.spread(FAULT_RATE, latency_ms=LATENCY_S * 1000, seed=FAULT_SEED)
            print(f"samples: {len(ids)} ingested from {', '.join(used)} in {ingest_s:.1f} s (not timed)")
            print(
                f"fake endpoint: {LATENCY_S * 1000:.0f} ms per call, "
                f"{'child process' if args.fake_process else 'thread in this process (shares its GIL)'}; "
                f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; goal with {subgoals} subgoals"
            )
            bench.run("pair", 2, 8, clean)  # warm-up: imports the client stack, opens the first connections

            # 1. Throughput against the ideal, per concurrency level.
            print(f"\n1. throughput, pair mode, {rounds} rounds of calls per level (ideal: concurrency / {LATENCY_S:g} s)")
            print(f"{'conc':>5} {'samples':>7} {'calls':>6} {'ideal s':>8} {'elapsed s':>9} {'calls/s':>8} {'ideal/s':>8} "
                  f"{'share':>6} {'max in flight':>13} {'cpu ms/call':>11}")
            shares: dict[int, float] = {}
            in_flight: dict[int, int] = {}
            for c in LEVELS:
                tries = [bench.run("pair", level_samples[c], c, clean) for _ in range(max(1, args.repeat))]
                run = sorted(tries, key=lambda r: r.share)[len(tries) // 2]
                shares[c], in_flight[c] = run.share, max(r.stats["max_in_flight"] for r in tries)
                checks.append((f"all judgments at c={c}", all(r.complete for r in tries)))
                spread = "  (of " + ", ".join(f"{r.share:.3f}" for r in tries) + ")" if len(tries) > 1 else ""
                print(
                    f"{c:>5} {run.samples:>7} {run.result.calls:>6} {run.result.calls * LATENCY_S / c:>8.2f} "
                    f"{run.elapsed:>9.2f} {run.result.calls / run.elapsed:>8.1f} {c / LATENCY_S:>8.1f} {run.share:>6.3f} "
                    f"{in_flight[c]:>13} {run.cpu / run.result.calls * 1000:>11.2f}{spread}"
                )
            single = bench.run("batched", 1, 1, clean)
            burst = bench.run("batched", TARGET_LEVEL, TARGET_LEVEL, clean)
            print(
                f"time over the {LATENCY_S:g} s latency: a 1-call run {single.elapsed - LATENCY_S:.3f} s (start-up and "
                f"wrap-up of a run); a {TARGET_LEVEL}-call one-round run {burst.elapsed - LATENCY_S:.3f} s "
                f"(plus {TARGET_LEVEL} calls' client work in series)"
            )

            # 2. Batched vs pair on the same samples; 3. the same runs with injected faults.
            runs: dict[tuple[str, bool], Run] = {}
            for mode in ("batched", "pair"):
                runs[mode, False] = bench.run(mode, pair_samples, TARGET_LEVEL, clean)
                runs[mode, True] = bench.run(mode, pair_samples, TARGET_LEVEL, faulty)
            batched, pair = runs["batched", False], runs["pair", False]
            n = batched.expected_pairs // subgoals  # distinct samples (exact duplicates share a judgment)
            print(
                f"\n2. batched vs pair, {n} samples (mean ~{batched.sample_tokens:.0f} tokens) x {subgoals} subgoals, "
                f"concurrency {TARGET_LEVEL}"
            )
            print(
                f"{'mode':>8} {'calls':>6} {'calls/sample':>12} {'prompt tok/sample':>17} {'compl tok/sample':>16} "
                f"{'elapsed s':>9}"
            )
            for run in (batched, pair):
                r = run.result
                print(
                    f"{run.mode:>8} {r.calls:>6} {r.calls / n:>12.2f} {r.prompt_tokens / n:>17.1f} "
                    f"{r.completion_tokens / n:>16.1f} {run.elapsed:>9.2f}"
                )
                checks.append((f"all judgments, {run.mode}", run.complete))
            token_ratio = pair.result.prompt_tokens / max(1, batched.result.prompt_tokens)
            call_ratio = pair.result.calls / max(1, batched.result.calls)
            print(f"prompt tokens pair / batched: {token_ratio:.2f}x  (calls: {call_ratio:.1f}x)")

            print(f"\n3. the same runs with {FAULT_RATE:.0%} injected faults (429, 500, malformed JSON; seed {FAULT_SEED})")
            print(f"{'mode':>8} {'judgments':>11} {'failed':>6} {'faults':>26} {'HTTP req':>13} {'calls':>11} "
                  f"{'repaired':>8} {'elapsed s':>13} {'slow-down':>9}")
            slowdown: dict[str, float] = {}
            for mode in ("batched", "pair"):
                base_run, run = runs[mode, False], runs[mode, True]
                r = run.result
                kinds = ", ".join(f"{k} {v}" for k, v in sorted(run.stats["faults_by_kind"].items())) or "none"
                slowdown[mode] = run.elapsed / base_run.elapsed
                judged = f"{r.judgments}/{run.expected_pairs}"
                requests = f"{run.stats['requests']} (+{run.stats['requests'] - base_run.stats['requests']})"
                calls = f"{r.calls} (+{r.calls - base_run.result.calls})"
                times = f"{run.elapsed:.2f} / {base_run.elapsed:.2f}"
                print(
                    f"{mode:>8} {judged:>11} {r.failed:>6} {kinds:>26} {requests:>13} {calls:>11} {r.repaired:>8} "
                    f"{times:>13} {slowdown[mode]:>8.2f}x"
                )
                checks.append((f"all judgments with faults, {mode}", run.complete))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    faults_ok = {m: runs[m, True].complete for m in ("batched", "pair")}
    rows = [
        *(
            (
                f"throughput share of ideal, c={c} (max in flight {in_flight[c]})",
                f"{shares[c]:.3f}",
                f">= {TARGET_SHARE}" if c == TARGET_LEVEL else "-",
                verdict(shares[c] >= TARGET_SHARE) if c == TARGET_LEVEL else "",
            )
            for c in LEVELS
        ),
        ("prompt tokens per sample, pair / batched", f"{token_ratio:.2f}x", f">= {TARGET_TOKEN_RATIO:g}x",
         verdict(token_ratio >= TARGET_TOKEN_RATIO)),
        *(
            (f"judgments complete with {FAULT_RATE:.0%} faults, {m}",
             f"{runs[m, True].result.judgments}/{runs[m, True].expected_pairs}", "all", verdict(faults_ok[m]))
            for m in ("batched", "pair")
        ),
        *((f"slow-down with faults, {m} (elapsed ratio)", f"{slowdown[m]:.2f}x", "-", "") for m in ("batched", "pair")),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'summary':<{width}}  {'value':>9}  {'target':>8}")
    for name, value, target, mark in rows:
        print(f"{name:<{width}}  {value:>9}  {target:>8}  {mark}".rstrip())
    total = time.perf_counter() - bench_start
    print(f"\ntotal {total:.0f} s; load average now {os.getloadavg()[0]:.1f} (other processes skew every ratio)")
    if noise.count:
        print(
            f"note: {noise.count} 'Task exception was never retrieved ... Event loop is closed' errors hidden: "
            "HTTP clients of finished runs were garbage-collected after their event loop had closed"
        )
    broken = [name for name, ok in checks if not ok]
    if broken:
        print(f"FAILED: incomplete judgments in: {', '.join(broken)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
