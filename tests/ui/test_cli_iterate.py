"""history, diff, pool add/fill, verify through the CLI: the --json keys the design fixes, exit codes, cost first."""

from __future__ import annotations

import json

from tests.conftest import SFT, head_lines
from tests.tools.history.test_versions import LINES, S1, _text, write
from tests.ui.test_cli import run


def test_history_diff_pool_verify_through_the_cli(tmp_path, fake_openai, monkeypatch):
    from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
    from tests.tools.judge.test_scoring import GOAL_FILE

    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    monkeypatch.setenv("GOALCOVER_MODEL", "fake-model")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    ws = str(tmp_path / "ws")
    head = LINES[:50]
    data = write(tmp_path / "data.jsonl", [ln for ln in head if not S1.search(_text(ln))])
    pool = write(tmp_path / "pool.jsonl", [ln for ln in head if S1.search(_text(ln))])
    assert run("history", "-w", ws, "--json").stdout.strip() == '{"versions": []}'
    assert run("ingest", str(data), "-w", ws).exit_code == 0
    assert run("goal", "--file", str(GOAL_FILE), "-w", ws).exit_code == 0
    assert run("score", "-w", ws).exit_code == 0
    found = json.loads(run("history", "-w", ws, "--json").stdout)
    (version,) = found["versions"]
    assert {"id", "created_at", "samples", "coverage"} <= set(version)
    assert {"id", "share"} <= set(version["coverage"][0]) and version["samples"] == len(data.read_bytes().splitlines())
    assert run("diff", "v7", "-w", ws).exit_code == 2  # an unknown version: a clear error, no traceback
    assert "only one dataset version so far (v1)" in run("diff", "-w", ws).stdout
    other_shape = head_lines(SFT / "pubmedqa_messages.jsonl", tmp_path / "m.jsonl", 2)
    refused = run("pool", "add", str(other_shape), "-w", ws)
    assert refused.exit_code == 2 and "is messages, but the dataset is alpaca" in refused.stderr
    assert run("pool", "add", str(pool), "-w", ws).exit_code == 0
    gaps = json.loads(run("gaps", "-w", ws, "--json").stdout)["gaps"]
    gap = next(g["id"] for g in gaps if g["subgoal_id"] == "S1")
    fake_openai.reset_stats()
    dry = run("pool", "fill", "--gap", gap, "--dry-run", "-w", ws)
    assert dry.exit_code == 0 and "est. $" in dry.stderr and fake_openai.stats()["requests"] == 0
    filled = json.loads(run("pool", "fill", "--gap", gap, "-w", ws, "--json").stdout)
    assert filled["kept"] > 0 and fake_openai.stats()["completions"] == filled["judged"]
    listed = json.loads(run("review", "-w", ws, "--json").stdout)["synthetic"]
    assert {(x["id"], x["provenance"]["line"]) for x in listed} == {(p["id"], p["line"]) for p in filled["provenance"]}
    assert run("review", "--accept", "all", "-w", ws).exit_code == 0
    change = json.loads(run("diff", "-w", ws, "--json").stdout)
    assert set(change) >= {"from", "to", "subgoals", "gaps", "samples"}
    assert (change["from"], change["to"]) == ("v1", "v2")
    assert set(change["subgoals"][0]) >= {"id", "share_from", "share_to", "delta", "significant"}
    assert set(change["gaps"]) == {"closed", "opened", "changed"}
    assert change["samples"] == {"added": filled["kept"], "removed": 0, "changed": 0}
    checked = json.loads(run("verify", "--gap", gap, "-w", ws, "--json").stdout)
    assert checked["gaps"][0]["gap_id"] == gap and checked["gaps"][0]["status"] in ("closed", "shrunk")
    text = run("verify", "-w", ws)
    assert text.exit_code == 0 and gap in text.stdout
    assert "v2" in run("history", "-w", ws).stdout
    out = tmp_path / "out.jsonl"
    exported = json.loads(run("export", "-o", str(out), "--with-synthetic", "-w", ws, "--json").stdout)
    assert exported["synthetic"] == filled["kept"]
    pool_records = {json.loads(ln)["id"]: json.loads(ln) for ln in pool.read_bytes().splitlines()}
    written = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert sum(r in pool_records.values() for r in written) == filled["kept"]  # pool records come out as they went in
