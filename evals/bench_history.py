"""What recording history costs a plain audit: a dataset version and a coverage snapshot, against the coverage
report itself, on a store of N samples with a judgment per sample and subgoal (rows written straight into
SQLite: no model, no embedding). Prints the ratio of each step to `coverage()` measured in the same run, and
the bytes a version adds (full list, then a delta after 1% of the samples change).

    python -m goalcover.evals.bench_history [--samples 100000] [--subgoals 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
import time
from pathlib import Path

from goalcover.tools.history import history_store as hs
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.core.goal import save_goal
from goalcover.tools.core.shapes import Goal, Subgoal
from goalcover.tools.core.store import JUDGE_KEY
from goalcover.tools.history.versions import coverage_of, record_snapshot, record_version
from goalcover.tools.core.workspace import Workspace


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fill(ws: Workspace, n: int, k: int, seed: int = 0) -> None:
    """n samples of one source and k subgoals, every pair judged (scores 1-5 at random)."""
    goal = Goal(text="bench", subgoals=[Subgoal(id=f"S{i}", title=f"t{i}", description=f"d{i}") for i in range(1, k + 1)])
    save_goal(ws, goal)
    rng = random.Random(seed)
    with ws.store.transaction() as db:
        db.execute("INSERT INTO sources (path, file_type, shape, position) VALUES ('bench.jsonl', 'jsonl', 'text', 0)")
        db.executemany(
            "INSERT INTO samples (id, source, position, line, format, content_hash, record, text) VALUES (?, 'bench.jsonl', ?, ?, 'text', ?, '{}', '')",
            [(f"s{i}", i, i + 1, _h(f"s{i}")) for i in range(n)],
        )
        db.executemany(
            "INSERT INTO judgments (sample_hash, subgoal_hash, prompt_version, model, sample_id, subgoal_id, score, explanation) "
            "VALUES (?, ?, 'v', 'm', ?, ?, ?, '')",
            [(_h(f"s{i}"), g.hash, f"s{i}", g.id, rng.randint(1, 5)) for i in range(n) for g in goal.subgoals],
        )
    ws.store.set_meta(JUDGE_KEY, {"model": "m", "prompt_version": "v", "mode": "batched"})


def timed(fn, *args):
    """(seconds, value) of one call of `fn(*args)`, by perf_counter."""
    started = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - started, value


def run(n: int, k: int) -> dict:
    """One measurement on `n` samples x `k` subgoals: seconds to record a version, a snapshot and a delta version and to recompute a past version, each against a coverage report in the same workspace; bytes stored per version."""
    with tempfile.TemporaryDirectory() as tmp, Workspace.open(Path(tmp) / "ws") as ws:
        fill(ws, n, k)
        base, _ = timed(coverage, ws)
        first, v1 = timed(record_version, ws, "ingest", None)
        snap, _ = timed(record_snapshot, ws, None)
        with ws.store.transaction() as db:  # 1% of the samples change content
            db.executemany("UPDATE samples SET content_hash = ? WHERE id = ?", [(_h(f"x{i}"), f"s{i}") for i in range(0, n, 100)])
        second, v2 = timed(record_version, ws, "ingest", None)
        recompute, _ = timed(coverage_of, ws, hs.members_of(ws.store, v1))
        sizes = dict(ws.store.db.execute("SELECT id, length(members) FROM dataset_versions"))
    return {
        "samples": n, "subgoals": k, "coverage_s": round(base, 3),
        "version_full_s": round(first, 3), "snapshot_s": round(snap, 3), "version_delta_s": round(second, 3),
        "recompute_past_version_s": round(recompute, 3),
        "bytes_full": sizes[v1], "bytes_delta": sizes[v2],
        "ratio_version_to_coverage": round(first / base, 2), "ratio_snapshot_to_coverage": round(snap / base, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    """Command line: run the history benchmark and print its figures as JSON (returned too)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--subgoals", type=int, default=5)
    args = p.parse_args(argv)
    result = run(args.samples, args.subgoals)
    print(json.dumps(result, indent=2))
    print(f"bench_history: version {result['ratio_version_to_coverage']}x and snapshot {result['ratio_snapshot_to_coverage']}x "
          f"the coverage report's time at {args.samples} samples; a version is {result['bytes_full'] / args.samples:.1f} B/sample "
          f"in full, {result['bytes_delta']} B after 1% changed")
    return result


if __name__ == "__main__":
    main()
