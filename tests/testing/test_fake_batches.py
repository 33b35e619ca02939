"""The fake's Files and Batch APIs through the real ``openai`` SDK: upload, content, create, retrieve with
rising counts, completion through the live rules, failed lines, expiry and cancel."""

from __future__ import annotations

import io
import json
import time

import pytest
from openai import BadRequestError, OpenAI

from goalcover.testing import FakeOpenAI, Reply, on


def line(i: int, text: str) -> dict:
    return {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "fake-model", "messages": [{"role": "user", "content": text}]}}


@pytest.fixture
def server():
    with FakeOpenAI(rules=[on(lambda r: "ping" in r.last_user, Reply.text("pong"))]) as fake:
        yield fake


def upload(client: OpenAI, rows: list[dict]) -> str:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch").id


def lines_of(client: OpenAI, file_id: str | None) -> dict[str, dict]:
    if file_id is None:
        return {}
    return {row["custom_id"]: row for row in map(json.loads, client.files.content(file_id).text.splitlines())}


def test_a_batch_runs_its_lines_through_the_live_rules(server):
    client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    server.batches.configure(delay_s=0.4, fail_custom_ids=["r2"])
    file_id = upload(client, [line(i, "ping" if i % 2 == 0 else "hello") for i in range(6)])
    assert client.files.retrieve(file_id).purpose == "batch"
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "in_progress" and batch.request_counts.total == 6
    time.sleep(0.2)
    assert client.batches.retrieve(batch.id).request_counts.completed in range(1, 6)  # rising with time
    time.sleep(0.3)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and (done.request_counts.completed, done.request_counts.failed) == (5, 1)
    output, errors = lines_of(client, done.output_file_id), lines_of(client, done.error_file_id)
    assert set(output) == {"r0", "r1", "r3", "r4", "r5"} and set(errors) == {"r2"}
    assert output["r0"]["response"]["body"]["choices"][0]["message"]["content"] == "pong"
    assert output["r1"]["response"]["status_code"] == 200 and errors["r2"]["response"]["status_code"] == 500
    assert server.batches.counts == {"files": 1, "batches": 1, "lines": 5, "cancels": 0}
    assert server.stats()["requests"] == 0  # batch lines are not live requests


def test_an_expired_batch_and_a_cancelled_one_keep_what_they_answered(server):
    client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    server.batches.configure(expire=True, expire_after=2)
    expired = client.batches.create(input_file_id=upload(client, [line(i, "ping") for i in range(5)]),
                                    endpoint="/v1/chat/completions", completion_window="24h")
    expired = client.batches.retrieve(expired.id)
    assert expired.status == "expired"
    assert set(lines_of(client, expired.output_file_id)) == {"r0", "r1"}
    assert {r["error"]["code"] for r in lines_of(client, expired.error_file_id).values()} == {"batch_expired"}

    server.batches.configure(expire=False, delay_s=60)
    slow = client.batches.create(input_file_id=upload(client, [line(i, "ping") for i in range(4)]),
                                 endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.cancel(slow.id).status == "cancelling"
    cancelled = client.batches.retrieve(slow.id)
    assert cancelled.status == "cancelled" and cancelled.output_file_id is None
    assert len(lines_of(client, cancelled.error_file_id)) == 4


def test_bad_batches_are_refused_like_the_api_does(server):
    client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    with pytest.raises(BadRequestError, match="does not exist"):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    twice = upload(client, [line(1, "a"), line(1, "b")])
    with pytest.raises(BadRequestError, match="unique"):
        client.batches.create(input_file_id=twice, endpoint="/v1/chat/completions", completion_window="24h")
