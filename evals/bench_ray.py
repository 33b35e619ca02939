"""Benchmark: does the Ray engine scale with actors, and how does it compare with the asyncio engine?

Against the fake OpenAI endpoint (a child process) answering every call after 200 ms and serving at most
CAP calls at once (`Faults.max_concurrency`: a GPU server's batch limit), so the endpoint's ideal
throughput is CAP / latency calls/s. On one local Ray cluster (loopback, `--cpus` CPUs, started here and
ended here), the same pair-mode scoring runs (real SFT samples, the 6-subgoal goal of bench_scoring,
each run on a fresh copy of one ingested workspace):

1. the asyncio engine (`scoring.score`) with concurrency CAP;
2. the Ray engine (`ray_engine.score_on_ray`) with 1, 2 and 4 actors, each with CAP/4 calls in flight
   (so 4 actors can fill the endpoint, 1 actor a quarter of it).

For each: calls/s over the whole run (Ray Data's job start included; the driver is connected to the
cluster once, before any timing), the share of the endpoint's ideal it reaches, and the fake's
max_in_flight. Ratios, not absolute times, are what carries between machines; the last line is

    ray scaling: 1→2 actors ×A, 2→4 actors ×B, vs asyncio ×C

with A, B the throughput ratios (whole runs) and C = Ray with 4 actors / asyncio; the line before it gives
the same ratios after start-up (from the endpoint's first call to the end).

    python -m goalcover.evals.bench_ray [--samples N] [--cap 64] [--cpus 2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from goalcover.evals.bench_scoring import DEFAULT_DATASETS, GOAL, MODEL, FakeProcess
from goalcover.testing import Faults
from goalcover.tools.judge import scoring
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import save_goal
from goalcover.tools.core.workspace import Workspace

LATENCY_S = 0.2
ACTOR_LEVELS = (1, 2, 4)
FILE = "selfinstruct_alpaca.jsonl"


@dataclass
class Measured:
    """One engine run: calls and judgments made (and expected), seconds, the most requests in flight, seconds to the first request."""
    name: str
    calls: int
    elapsed: float
    judgments: int
    expected: int
    max_in_flight: int
    first_s: float  # when the endpoint saw the first request, from the start of the run

    @property
    def rate(self) -> float:
        """Judge calls per second."""
        return self.calls / self.elapsed

    @property
    def steady(self) -> float:
        """calls/s from the endpoint's first request to the end: the run without its start-up."""
        return self.calls / max(1e-9, self.elapsed - self.first_s)


def prepare(base: Path, samples: int, scratch: Path) -> int:
    """Ingest the first `samples` self-instruct samples and save the goal; returns the pairs to judge."""
    lines = (DEFAULT_DATASETS / FILE).read_bytes().splitlines(keepends=True)[:samples]
    part = scratch / FILE
    part.write_bytes(b"".join(lines))
    with Workspace.open(base) as ws:
        ingest_file(ws, part)
        save_goal(ws, GOAL)
        return len(ws.store.samples()) * len(GOAL.subgoals)


def watch_first_request(fake: FakeProcess, start: float, first: list[float], done: threading.Event) -> None:
    """Poll the fake's stats (every 20 ms, on a client of its own) until it has seen a request; note when."""
    import httpx

    with httpx.Client(base_url=fake.url, trust_env=False, timeout=10) as http:
        while not done.is_set():
            if http.get("/stats").json()["requests"]:
                first.append(time.perf_counter() - start)
                return
            time.sleep(0.02)


def measure(name: str, base: Path, scratch: Path, fake: FakeProcess, expected: int, run) -> Measured:
    """Score a fresh copy of the ingested workspace `base` with `run(ws)` against the fake; its figures."""
    folder = scratch / name.replace(" ", "-")
    shutil.copytree(base, folder)
    try:
        with Workspace.open(folder, model=MODEL, base_url=fake.base_url, api_key="not-needed") as ws:
            fake.reset_stats()
            first: list[float] = []
            done = threading.Event()
            start = time.perf_counter()
            watcher = threading.Thread(target=watch_first_request, args=(fake, start, first, done), daemon=True)
            watcher.start()
            try:
                result = run(ws)
            finally:
                done.set()
                watcher.join()
            elapsed = time.perf_counter() - start
            stats = fake.stats()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Measured(name, result.calls, elapsed, result.judgments, expected, stats["max_in_flight"], first[0] if first else 0.0)


def main() -> None:
    """Run the benchmark from the command line and print its table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, help="self-instruct samples (x6 pair calls; default 300, --quick 120)")
    parser.add_argument("--cap", type=int, default=64, help="calls the endpoint serves at once (default 64)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default 2)")
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    samples = args.samples or (120 if args.quick else 300)
    per_actor = max(1, args.cap // max(ACTOR_LEVELS))
    ideal = args.cap / LATENCY_S

    import ray

    from goalcover.testing.ray_cluster import local_cluster
    from goalcover.tools.scale.ray_engine import score_on_ray

    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        base = scratch / "base"
        expected = prepare(base, samples, scratch)
        with FakeProcess() as fake, local_cluster(num_cpus=args.cpus) as cluster:
            fake.set_faults(Faults(latency_ms=LATENCY_S * 1000, max_concurrency=args.cap))
            ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                runs = [measure(f"asyncio c={args.cap}", base, scratch, fake, expected,
                                lambda ws: asyncio.run(scoring.score(ws, "pair", concurrency=args.cap)))]
                for actors in ACTOR_LEVELS:
                    runs.append(measure(
                        f"ray {actors} actor{'s' if actors > 1 else ''} x c={per_actor}", base, scratch, fake, expected,
                        lambda ws, a=actors: score_on_ray(ws, "pair", address=cluster.address, actors=a,
                                                          concurrency=per_actor),
                    ))
            finally:
                ray.shutdown()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"{samples} samples x {len(GOAL.subgoals)} subgoals, pair mode: {expected} calls a run; endpoint "
          f"{LATENCY_S * 1000:.0f} ms/call, at most {args.cap} at once: ideal {ideal:.0f} calls/s; Ray cluster of {args.cpus} CPUs")
    print("calls/s: over the whole run; start s: until the endpoint saw the first call (Ray: job and actor "
          "start-up); steady: calls/s after that")
    print(f"{'engine':<24} {'calls':>6} {'s':>7} {'start s':>8} {'calls/s':>8} {'of ideal':>9} {'steady':>7} {'of ideal':>9} "
          f"{'max in flight':>14} complete")
    for m in runs:
        print(f"{m.name:<24} {m.calls:>6} {m.elapsed:>7.2f} {m.first_s:>8.2f} {m.rate:>8.1f} {m.rate / ideal:>9.1%} "
              f"{m.steady:>7.1f} {m.steady / ideal:>9.1%} {m.max_in_flight:>14} {'yes' if m.judgments == m.expected else 'NO'}")
    for label, rate in (("after start-up, ", "steady"), ("", "rate")):
        rates = {m.name.split(" x")[0]: getattr(m, rate) for m in runs}
        one, two, four = rates["ray 1 actor"], rates["ray 2 actors"], rates["ray 4 actors"]
        local = rates[f"asyncio c={args.cap}"]
        print(f"ray scaling: {label}1→2 actors ×{two / one:.2f}, 2→4 actors ×{four / two:.2f}, vs asyncio ×{four / local:.2f}")


if __name__ == "__main__":
    main()
