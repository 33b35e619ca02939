"""`score --via batch` against the fake's Files and Batch APIs, through the real openai SDK: the same
requests as the live judge, failed and expired lines retried live, splitting, and a killed process that
resumes its batch without a second upload."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from goalcover.tools.judge import scoring
from goalcover.tools.judge.batch import load_jobs, score_batch
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.judge.llm import BulkJsonCaller
from goalcover.tools.core.workspace import Workspace
from tests.conftest import SFT, head_lines
from tests.support.workspaces import contracts_workspace
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.support.processes import kill_when
from tests.tools.measure.test_estimate import truth
from tests.tools.judge.test_scoring import GOAL_FILE

N = 30


@pytest.fixture
def data(tmp_path) -> Path:
    return head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", N)


@pytest.fixture
def ws(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with contracts_workspace(tmp_path, fake_openai, N, batch_poll_s=0.05) as ws:
        yield ws


def assert_scores_match_the_data(ws, data: Path) -> None:
    known = truth(data)
    report = coverage(ws)
    assert report.unscored == 0 and report.failed == 0
    for row in report.subgoals:
        assert row.supporting == sum(k[row.id] for k in known.values())


def test_batch_scores_the_dataset_with_the_live_requests_and_no_live_call(ws, fake_openai, data):
    _, tasks, goal = scoring.plan(ws)
    caller = BulkJsonCaller(ws.settings.model_for("judge"), ws.settings)
    expected = sorted(json.dumps(scoring.judge_request(caller, goal, t, "batched"), sort_keys=True) for t in tasks)
    fake_openai.batches.configure(delay_s=0.3)
    seen: list[dict] = []
    result = asyncio.run(score_batch(ws, progress=lambda done, total, **f: seen.append({"done": done, "total": total, **f})))
    assert (result.judgments, result.new, result.failed, result.via) == (N * 5, N * 5, 0, "batch")
    assert result.calls == N and result.prompt_tokens > 0
    assert fake_openai.batches.counts == {"files": 1, "batches": 1, "lines": N, "cancels": 0}
    assert fake_openai.stats()["completions"] == 0  # nothing went through the live path
    # Every batch line is exactly the body the live judge would post: same prompts, schema, bounds.
    assert sorted(json.dumps(r.body, sort_keys=True) for r in fake_openai.batches.requests) == expected
    # The progress bar showed the batch's own counts while it ran, then its final status.
    assert seen[0]["batch"] == "in_progress" and seen[-1] == {"done": N, "total": N, "batch": "completed", "failed": 0}
    assert_scores_match_the_data(ws, data)
    again = asyncio.run(score_batch(ws))
    assert again.calls == 0 and fake_openai.batches.counts["files"] == 1  # all cached: nothing uploaded


def test_failed_lines_are_retried_through_the_live_path(ws, fake_openai, data):
    fake_openai.batches.configure(fail_every=4)
    result = asyncio.run(score_batch(ws))
    failed_lines = N // 4
    assert fake_openai.batches.counts["lines"] == N - failed_lines
    assert fake_openai.stats()["completions"] == failed_lines  # exactly the failed lines, live
    assert result.calls == N and result.judgments == N * 5 and result.failed == 0
    assert_scores_match_the_data(ws, data)


def test_an_expired_batch_keeps_its_answers_and_the_rest_go_live(ws, fake_openai, data):
    fake_openai.batches.configure(expire=True, expire_after=8)
    result = asyncio.run(score_batch(ws))
    assert [j.status for j in load_jobs(ws)] == ["expired"]
    assert fake_openai.stats()["completions"] == N - 8 and result.judgments == N * 5
    assert_scores_match_the_data(ws, data)


def test_unparsable_batch_replies_are_retried_live_with_the_repair_rules(ws, fake_openai, data):
    from goalcover.testing import Reply
    from tests.support.judges import sample_of

    first = sorted(truth(data))[:3]
    answered: set[str] = set()

    def garbled_once(req):
        found = sample_of(req)
        if found and found[0] in first and found[0] not in answered:
            answered.add(found[0])
            return Reply.text("I think this sample is about contracts.")
        return None

    fake_openai.rules.insert(0, garbled_once)
    result = asyncio.run(score_batch(ws))
    assert fake_openai.stats()["completions"] == 3 and result.judgments == N * 5
    assert_scores_match_the_data(ws, data)


def test_large_runs_are_split_by_requests_and_bytes(ws, fake_openai, data):
    asyncio.run(score_batch(ws, max_requests=7))
    assert fake_openai.batches.counts["batches"] == 5 and fake_openai.batches.counts["files"] == 5
    assert [len(j.tasks) for j in load_jobs(ws)] == [7, 7, 7, 7, 2]
    assert_scores_match_the_data(ws, data)



def test_large_runs_are_split_by_file_size(ws, fake_openai, data):
    asyncio.run(score_batch(ws, max_bytes=40_000))
    sizes = [f["bytes"] for f in fake_openai.batches.files.values() if f["purpose"] == "batch"]
    assert len(sizes) > 1 and max(sizes) <= 40_000
    assert sum(len(j.tasks) for j in load_jobs(ws)) == N
    assert_scores_match_the_data(ws, data)


def test_a_request_larger_than_the_file_limit_is_refused(ws, fake_openai):
    with pytest.raises(ValueError, match="file limit"):
        asyncio.run(score_batch(ws, max_bytes=100))
    assert fake_openai.batches.counts["files"] == 0


def test_sampled_run_through_the_batch_api(tmp_path, ws, fake_openai):
    from typer.testing import CliRunner

    from goalcover.ui.cli import app

    result = CliRunner().invoke(app, ["score", "--via", "batch", "--sample", "12", "--json", "-w", str(tmp_path / "ws")], env={
        "GOALCOVER_MODEL": "fake-model", "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "test",
        "GOALCOVER_BATCH_POLL_S": "0.05",
    }, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["via"] == "batch" and payload["estimate"]["samples"] == 12 and payload["calls"] == 12
    assert fake_openai.batches.counts["lines"] == 12 and fake_openai.stats()["completions"] == 0


def saved_batch_ids(db: Path) -> list[str | None]:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'batch_jobs'").fetchone()
    return [j["batch_id"] for j in json.loads(row[0])] if row else []


def test_killed_after_upload_the_rerun_resumes_the_same_batch(tmp_path, ws, fake_openai, data):
    db = ws.store.path
    env = {
        **os.environ, "GOALCOVER_WORKSPACE": str(tmp_path / "ws"), "GOALCOVER_MODEL": "fake-model",
        "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "test", "GOALCOVER_BATCH_POLL_S": "0.1",
    }
    fake_openai.batches.configure(delay_s=600)  # the batch would take ten minutes
    proc = subprocess.Popen([sys.executable, "-m", "goalcover", "score", "--via", "batch"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: any(saved_batch_ids(db)))
    assert fake_openai.batches.counts["files"] == 1 and fake_openai.batches.counts["batches"] == 1
    batch_id = saved_batch_ids(db)[0]

    fake_openai.batches.configure(delay_s=0)  # the batch finishes while nobody is watching
    rerun = subprocess.run([sys.executable, "-m", "goalcover", "score", "--via", "batch", "--json"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    payload = json.loads(rerun.stdout)
    assert (payload["judgments"], payload["failed"], payload["via"]) == (N * 5, 0, "batch")
    # The same batch was picked up: no second upload, no second batch, no live call.
    assert fake_openai.batches.counts["files"] == 1 and fake_openai.batches.counts["batches"] == 1
    assert fake_openai.stats()["completions"] == 0
    assert [j.batch_id for j in load_jobs(ws)] == [batch_id] and load_jobs(ws)[0].collected
    assert_scores_match_the_data(ws, data)


def test_killed_between_upload_and_create_the_rerun_reuses_the_uploaded_file(ws, fake_openai, data, monkeypatch):
    from goalcover.tools.judge import batch

    real = batch.create_batch

    async def crash(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(batch, "create_batch", crash)
    with pytest.raises(RuntimeError, match="killed"):
        asyncio.run(score_batch(ws))
    assert [(j.file_id is not None, j.batch_id) for j in load_jobs(ws)] == [(True, None)]
    monkeypatch.setattr(batch, "create_batch", real)
    result = asyncio.run(score_batch(ws))
    assert fake_openai.batches.counts["files"] == 1 and fake_openai.batches.counts["batches"] == 1
    assert result.judgments == N * 5
    assert_scores_match_the_data(ws, data)


def test_max_cost_limits_what_is_submitted_at_the_batch_price(tmp_path, fake_openai, data):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with Workspace.open(tmp_path / "ws", model="fake-model", base_url=fake_openai.base_url, api_key="test",
                        batch_poll_s=0.05, input_price_per_mtok=10, output_price_per_mtok=30) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        plan, _, _ = scoring.plan(ws)
        # Half the live estimate buys the whole run at the batch price (0.5); a quarter buys about half of it.
        result = asyncio.run(score_batch(ws, max_cost=plan.est_cost / 4))
        assert result.stopped and "max-cost" in result.stopped
        assert N * 0.3 < fake_openai.batches.counts["lines"] < N * 0.7
        assert fake_openai.stats()["completions"] == 0
        rest = asyncio.run(score_batch(ws, max_cost=plan.est_cost / 2))
        assert rest.stopped is None and rest.judgments == N * 5


def test_failed_lines_keep_the_batch_error_when_the_live_retry_cannot_run(tmp_path, fake_openai, data):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    fake_openai.batches.configure(fail_every=3)
    with Workspace.open(tmp_path / "ws", model="fake-model", base_url=fake_openai.base_url, api_key="test",
                        batch_poll_s=0.05, max_retries=0) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        fake_openai.set_faults(rate_500=1.0)  # the live path is down: the retry fails too
        result = asyncio.run(score_batch(ws))
        assert result.failed == (N // 3) * 5 and result.judgments == (N - N // 3) * 5
        report = coverage(ws)
        assert report.failed == (N // 3) * 5
        assert fake_openai.stats()["completions"] == 0
        errors = {f.error for f in report.failures}
        assert errors and all("500" in e or "server_error" in e or "Internal" in e for e in errors), errors


def test_killed_right_after_batch_creation_the_rerun_finds_that_batch(ws, fake_openai, data, monkeypatch):
    from goalcover.tools.judge import batch

    real = batch.create_batch

    async def created_then_killed(ws_, client, job, jobs, resuming=False):
        await client.batches.create(input_file_id=job.file_id, endpoint=batch.ENDPOINT, completion_window="24h")
        raise RuntimeError("killed before the batch id was saved")

    monkeypatch.setattr(batch, "create_batch", created_then_killed)
    with pytest.raises(RuntimeError, match="killed"):
        asyncio.run(score_batch(ws))
    assert fake_openai.batches.counts["batches"] == 1 and load_jobs(ws)[0].batch_id is None
    monkeypatch.setattr(batch, "create_batch", real)
    result = asyncio.run(score_batch(ws))
    assert fake_openai.batches.counts == {"files": 1, "batches": 1, "lines": N, "cancels": 0}
    assert result.judgments == N * 5
