"""Ingesting into a workspace: the Chroma index, incremental re-ingest, workspace rules, search."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from goalcover.tools.data.ingest import describe, ingest_file, search
from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.index import parse_where
from goalcover.tools.core.workspace import Workspace
from tests.conftest import BAD, SFT, head_lines


@pytest.fixture
def contracts(tmp_path):
    return head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", 40)


def test_ingest_indexes_every_sample_and_reingest_changes_nothing(workspace, contracts):
    first = ingest_file(workspace, contracts)
    assert (first.samples, first.new, first.embedded, first.format) == (40, 40, 40, "alpaca")
    assert workspace.index.count() == 40 and workspace.store.count_samples() == 40
    again = ingest_file(workspace, contracts)
    assert (again.new, again.unchanged, again.changed, again.embedded) == (0, 40, 0, 0)
    assert workspace.index.count() == 40


def test_edited_file_embeds_only_what_changed(workspace, contracts):
    ingest_file(workspace, contracts)
    lines = contracts.read_text().splitlines()
    edited = json.loads(lines[3])
    edited["output"] = "You may cancel at any time."
    lines[3] = json.dumps(edited)
    removed_id = json.loads(lines.pop(10))["id"]
    extra = (SFT / "contracts_alpaca.jsonl").read_text().splitlines()[100]
    lines.append(extra)
    contracts.write_text("\n".join(lines) + "\n")
    result = ingest_file(workspace, contracts)
    assert (result.new, result.changed, result.removed, result.unchanged, result.embedded) == (1, 1, 1, 38, 2)
    assert workspace.index.count() == 40
    assert removed_id not in {s.id for s in workspace.store.samples()}
    stored = workspace.store.samples([edited["id"]])[0]
    assert stored.record["output"] == "You may cancel at any time."
    assert [s.id for s in workspace.store.samples()] == [json.loads(line)["id"] for line in lines]


def test_a_workspace_holds_one_dataset_unless_add_or_replace(workspace, contracts, tmp_path):
    ingest_file(workspace, contracts)
    mbpp = head_lines(SFT / "mbpp_alpaca.jsonl", tmp_path / "mbpp.jsonl", 10)
    with pytest.raises(BadInput, match="holds another dataset .* --add .* --replace"):
        ingest_file(workspace, mbpp)
    added = ingest_file(workspace, mbpp, add=True)
    assert added.new == 10 and workspace.index.count() == 50
    assert {Path(s["path"]).name for s in describe(workspace)["sources"]} == {"contracts.jsonl", "mbpp.jsonl"}
    humaneval = head_lines(SFT / "humaneval_prompt_completion.jsonl", tmp_path / "he.jsonl", 5)
    with pytest.raises(BadInput, match="--add needs the same shape"):
        ingest_file(workspace, humaneval, add=True)
    replaced = ingest_file(workspace, humaneval, replace=True)
    assert replaced.new == 5 and workspace.index.count() == 5 and workspace.store.count_samples() == 5


def test_skip_invalid_writes_a_report_in_the_workspace(workspace):
    result = ingest_file(workspace, BAD / "malformed_line.jsonl", skip_invalid=True)
    assert (result.samples, result.invalid) == (2, 1)
    report = [json.loads(line) for line in Path(result.rejected_report).read_text().splitlines()]
    assert report[0]["line"] == 2 and "not valid JSON" in report[0]["reason"]
    assert Path(result.rejected_report).is_relative_to(workspace.root)
    assert result.exact_duplicates == 1  # lines 1 and 3 are the same record


def test_search_finds_the_sample_by_meaning_and_filters_by_field(workspace, tmp_path):
    ingest_file(workspace, head_lines(SFT / "selfinstruct_alpaca.jsonl", tmp_path / "si.jsonl", 60))
    hits = search(workspace, "make this sentence shorter and clearer", k=3)
    assert hits[0].id == "user_oriented_task_0-0" and hits[0].similarity > 0.4
    filtered = search(workspace, "write an email", k=5, where=parse_where(["app=Gmail"]))
    assert filtered and all(h.fields["app"] == "Gmail" for h in filtered)
    # The record's own fields live under `field.`; the judge's scores keep their names.
    assert parse_where(["score_S3<=2", "app!=Gmail"]) == {"$and": [{"score_S3": {"$lte": 2}}, {"field.app": {"$ne": "Gmail"}}]}
    assert parse_where(["field.score_S1=5"]) == {"field.score_S1": {"$eq": 5}}
    with pytest.raises(BadInput, match="expected FIELD=VALUE"):
        parse_where(["nonsense"])


def test_the_index_keeps_a_long_texts_start_and_search_returns_it_whole(workspace, tmp_path):
    from goalcover.tools.data.index import INDEX_DOCUMENT_CHARS

    source = tmp_path / "long.jsonl"
    long_output = "The tenant may terminate the lease. " * 1000  # 36,000 characters
    rows = [{"instruction": "Summarise the lease.", "output": long_output}, {"instruction": "Say hello.", "output": "Hello."}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest_file(workspace, source)
    stored = workspace.index.collection().get(include=["documents"])["documents"]
    assert sorted(map(len, stored))[-1] == INDEX_DOCUMENT_CHARS
    [hit] = search(workspace, "ending a lease", k=1)
    assert hit.text == workspace.store.samples([hit.id])[0].text and len(hit.text) > 36_000


def test_reopened_workspace_searches_without_reembedding(contracts, tmp_path):
    with Workspace.open(tmp_path / "w2") as ws:
        ingest_file(ws, contracts)
    with Workspace.open(tmp_path / "w2") as ws:
        assert search(ws, "terminate your account", k=1)[0].id.startswith("contracts-")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    """A real `chroma run` on a free loopback port, stopped after the test."""
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "chroma run exited"
            assert time.monotonic() < deadline, "chroma run did not answer in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_chroma_server_is_used_when_configured(chroma_server, contracts, tmp_path):
    with Workspace.open(tmp_path / "remote-ws", chroma_url=chroma_server) as ws:
        result = ingest_file(ws, contracts)
        assert result.embedded == 40
        assert ws.index.count() == 40
        assert search(ws, "terminate your account", k=2)[0].id.startswith("contracts-")
    assert not (tmp_path / "remote-ws" / "chroma").exists()  # nothing went to the embedded index
    # Workspaces share a server through prefixed collections.
    names = [c.name for c in ws.index.client.list_collections()]
    assert names == ["remote-ws-samples"]


def test_repeated_texts_are_embedded_once_and_get_the_same_vector(monkeypatch):
    from goalcover.tools.data import embeddings

    texts = ["The sample lacks any termination clause.", "It covers arbitration.", "The sample lacks any termination clause."]
    alone = embeddings.embed(texts[:2])
    encoded: list[list[str]] = []
    model = embeddings._model()
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda batch, **kw: encoded.append(list(batch)) or real(batch, **kw))
    vectors = embeddings.embed(texts)
    assert encoded == [texts[:2]]
    assert vectors.shape == (3, embeddings.DIMENSION)
    assert np.allclose(vectors[0], vectors[2]) and np.allclose(vectors[:2], alone, atol=1e-6)
