"""Browser tests of the chat app: the app served as `goalcover ui` in a subprocess, driven by real
Chromium through Playwright, its models answered by the fake endpoint running in the test process.

The agent's side of the conversation is scripted by what the request holds (the user's last message or
the last tool result), not by turn counts, so a retried or extra turn cannot shift the script.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from goalcover.testing import ChatRequest, Reply
from tests.agent.conftest import GOAL_FILE, agent_turn, tool_payloads
from tests.support.judges import TERMINATION_CLAUSES

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
GOAL = "a plain-English summarizer of terms-of-service clauses"
SUBGOALS = [
    {k: s[k] for k in ("title", "description", "evidence")} for s in yaml.safe_load(GOAL_FILE.read_text())["subgoals"]
]
S5_TITLE = "Arbitration and class-action waivers"


# --- the scripted agent -----------------------------------------------------------------------------

def call(name: str, **arguments) -> Reply:
    return Reply.tool_calls([{"name": name, "arguments": arguments}])


def last_tool(req: ChatRequest) -> str | None:
    """The tool whose result the request ends with, or None when it ends with the user's message."""
    last = req.messages[-1] if req.messages else {}
    if last.get("role") != "tool":
        return None
    match = re.match(r"(?:error: )?Result of (\w+)", str(last.get("content") or ""))
    return match.group(1) if match else "unknown"


def answer_user(text: str) -> Reply:
    lowered = text.lower()
    if lowered.startswith("my goal"):
        return call("propose_subgoals", goal=GOAL)
    if "too vague" in lowered:
        return call("edit_subgoals", edits=[{"op": "edit", "id": "S5", "title": S5_TITLE,
                                             "description": "Summarizes arbitration clauses and class-action waivers."}])
    if "approve these subgoals" in lowered:
        return call("approve_goal")
    if re.search(r"\bscor(e|ing) the dataset", lowered):
        return call("run_scoring", mode="batched")
    if lowered.startswith("why is"):
        return call("why_weak", subgoal_id=re.search(r"\bS\d\b", text).group(0))
    if "which gaps" in lowered:
        return call("find_gaps")
    if lowered.startswith("fill gap"):
        gap = re.search(r"\bG\d+\b", text).group(0)
        return call("synthesize_samples", gap_id=gap, n=int(re.search(r"with (\d+)", text).group(1)))
    return Reply.text(f"You said: {text}")


def answer_tool(req: ChatRequest, tool: str) -> Reply:
    result = str(req.messages[-1].get("content") or "")
    if result.startswith("error:"):
        return Reply.text(f"That did not work: {result[:300]}")
    payload = (tool_payloads(req) or [{}])[-1]
    if tool in ("propose_subgoals", "edit_subgoals"):
        titles = "; ".join(f"{s['id']} {s['title']}" for s in payload["draft"])
        return Reply.text(f"Here is the draft: {titles}. Tell me what to change, or approve it.")
    if tool == "approve_goal":
        return Reply.text("Saved. Score the dataset when you are ready: you will see the cost first.")
    if tool == "run_scoring":
        return Reply.text(f"Scoring finished: {payload['new']} new judgments, {payload['cached']} were already scored.")
    if tool == "why_weak":
        examples = [e["sample_id"] for g in payload["facts"]["gaps"] for e in g["examples"]]
        return Reply.text(f"{payload['answer']} Example samples: {', '.join(examples[:3])}.")
    if tool == "find_gaps":  # a long result is cut to the agent's budget: count the gap ids it names
        gaps = sorted(set(re.findall(r'"id": "(G\d+)"', result)))
        return Reply.text(f"I found gaps {', '.join(gaps)}; fill one with synthetic samples if you like.")
    if tool == "synthesize_samples":
        return Reply.text(f"Generated {payload['generated']}; {payload['kept']} are waiting for your review.")
    return Reply.text("Done.")


def agent_script(req: ChatRequest):
    if not agent_turn(req):
        return None
    tool = last_tool(req)
    return answer_user(req.last_user) if tool is None else answer_tool(req, tool)


def subgoal_rules(req: ChatRequest):
    if req.schema_name == "subgoals":
        return Reply.json({"subgoals": SUBGOALS})
    if req.schema_name == "subgoal_critique":
        return Reply.json({"issues": [], "subgoals": SUBGOALS})
    return None


CLAUSES = {  # new samples the fake synthesizer writes for a gap, by the gap's subgoal: distinct, and on topic
    "S1": [c for c, _ in TERMINATION_CLAUSES[:5]],
    "S2": [
        "the service is provided as is and we disclaim every warranty of fitness for a particular purpose",
        "our total liability for any claim is limited to the fees you paid in the twelve months before it",
        "you will indemnify us against claims arising from content you upload",
        "we are not liable for lost profits or data even if we were told such loss was possible",
        "some jurisdictions do not allow these liability exclusions, so they may not apply to you",
    ],
    "S3": [
        "we collect personal information such as your name, email address and location when you register",
        "we share personal data with advertising partners unless you opt out in the privacy settings",
        "your personal information is kept for two years after you close your account",
        "read our privacy policy to learn how cookies track what pages you visit",
        "you can ask us to delete the personal data we hold about you at any time",
    ],
    "S4": [
        "we may modify these terms at any time by posting the new version on this page",
        "we will email you thirty days before changes to the terms take effect",
        "continuing to use the app after we change the terms means you accept the new terms",
        "if you do not agree with changes to this agreement you must stop using the service",
        "we may modify the agreement for legal reasons without notice to you",
    ],
    "S5": [
        "any dispute will be settled by binding arbitration rather than in court",
        "you waive your right to take part in a class action against the company",
        "these terms are governed by the law of the state of delaware",
        "you may opt out of arbitration by writing to us within thirty days of signing up",
        "small claims court remains available for disputes under five thousand dollars",
    ],
}


def synthesizer(req: ChatRequest):
    """Candidates for the gap's subgoal (named in the request), in the dataset's alpaca shape."""
    if req.schema_name != "synthetic_samples":
        return None
    subgoal = re.search(r"^(S\d+): ", req.system, re.MULTILINE).group(1)
    size = int(re.search(r"Write (\d+) new samples", req.system).group(1))
    clauses = CLAUSES[subgoal]
    items = [
        {
            "aspect": clause.split(" ")[2],
            "difficulty": ["easy", "medium", "hard"][i % 3],
            "sample": {"instruction": "Summarize this contract clause in plain English.", "input": clause,
                       "output": f"In short: {clause.split(',')[0]}."},
        }
        for i, clause in enumerate(clauses[:size])
    ]
    return Reply.json({"candidates": items})


class Gate:
    """Answers the judge right away until `limit` judgments, then holds further replies until opened:
    the browser test presses stop while scoring is visibly half done."""

    def __init__(self, judge, limit: int) -> None:
        self.judge = judge
        self.limit = limit
        self.answered = 0
        self.opened = threading.Event()

    async def __call__(self, req: ChatRequest):
        reply = self.judge(req)
        if reply is None:
            return None
        held_since = time.monotonic()
        while self.answered >= self.limit and not self.opened.is_set() and time.monotonic() - held_since < 60:
            await asyncio.sleep(0.02)
        self.answered += 1
        return reply


def judge_calls(fake) -> int:
    return sum(r.schema_name == "judgment" for r in fake.requests)


# --- the app and the browser ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(workspace: Path, fake, **env: str) -> Iterator[str]:
    """`goalcover ui` on a free port, its models at the fake endpoint; yields the URL."""
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GOALCOVER_", "CHAINLIT_")) or k == "GOALCOVER_DATASETS"},
        "GOALCOVER_MODEL": "fake-model",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "test",
        "GOALCOVER_CONCURRENCY": "4",
        "GOALCOVER_MAX_RETRIES": "1",
        "GOALCOVER_LLM_TIMEOUT_S": "30",
        **env,
    }
    log = (ARTIFACTS / f"server-{workspace.parent.name}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "goalcover.ui.serve", "--workspace", str(workspace), "--port", str(port)],
        env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=workspace.parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"goalcover ui exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"goalcover ui did not answer on {url}; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing (scripts/install.sh installs Debian's chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
