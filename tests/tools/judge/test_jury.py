"""A jury of two judge models against the fake endpoint: each scores, coverage reads the consensus, the
report shows inter-judge agreement per subgoal and the pairs they disagree on most."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from goalcover.testing import ChatRequest
from goalcover.tools.judge.jury import consensus, parse_judges
from goalcover.tools.core.errors import BadInput
from goalcover.ui.cli import app
from tests.conftest import SFT, head_lines
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.tools.judge.test_scoring import GOAL_FILE

runner = CliRunner()
N = 12


def test_consensus_is_the_rounded_mean_on_the_majoritys_side_of_the_support_threshold():
    assert consensus([5, 5], 4) == 5 and consensus([1, 2], 4) == 2
    assert consensus([5, 1], 4) == 3  # one of two supports: no majority, so below 4
    assert consensus([4, 4, 1], 4) == 4  # mean 3 but two of three support
    assert consensus([5, 3, 3], 4) == 3  # mean 3.67 rounds to 4, yet only one of three supports
    assert parse_judges("a, b") == ["a", "b"]
    for bad in ("a", "a,a", "a,b,c,d,e,f"):
        with pytest.raises(BadInput):
            parse_judges(bad)


def by_model(model: str, rule):
    def only(req: ChatRequest):
        return rule(req) if req.body.get("model") == model else None
    return only


def test_a_two_judge_run_reports_inter_judge_agreement(tmp_path, fake_openai, monkeypatch):
    # judge-a is the keyword judge; judge-b agrees on every subgoal but S2, where it says the opposite
    flipped = {**CONTRACT_PATTERNS, "S2": r"^(?![\s\S]*(liab|warrant|indemn))"}
    fake_openai.rules += [by_model("judge-a", keyword_judge(CONTRACT_PATTERNS)), by_model("judge-b", keyword_judge(flipped))]
    for k, v in {"GOALCOVER_MODEL": "fake-model", "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "test"}.items():
        monkeypatch.setenv(k, v)
    ws = str(tmp_path / "ws")
    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "c.jsonl", N)
    assert runner.invoke(app, ["ingest", str(data), "-w", ws]).exit_code == 0
    assert runner.invoke(app, ["goal", "--file", str(GOAL_FILE), "-w", ws]).exit_code == 0
    result = runner.invoke(app, ["score", "--judges", "judge-a,judge-b", "-w", ws, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    scored = json.loads(result.stdout)
    assert scored["model"] == "jury(judge-a,judge-b)" and scored["judgments"] == N * 5 and scored["failed"] == 0
    assert [(j["model"], j["calls"]) for j in scored["jury"]] == [("judge-a", N), ("judge-b", N)]
    assert {r.body["model"] for r in fake_openai.requests} == {"judge-a", "judge-b"}
    report = json.loads(runner.invoke(app, ["report", "-w", ws, "--json"]).stdout)
    jury = report["judge"]["jury"]
    assert jury["models"] == ["judge-a", "judge-b"]
    for sid in ("S1", "S3", "S4", "S5"):
        assert jury["subgoals"][sid]["exact"] == 1.0 and jury["subgoals"][sid]["pairs"] == N
    assert jury["subgoals"]["S2"]["exact"] == 0.0 and jury["subgoals"]["S2"]["kappa"] < 0
    assert any(f.startswith("S2: the judges disagree with each other") for f in report["judge"]["flags"])
    # every S2 pair is a 5-against-1 disagreement, listed for review
    assert jury["disagreements"] and all(d["subgoal_id"] == "S2" and d["spread"] == 4 for d in jury["disagreements"])
    texts = {json.loads(l)["id"]: l for l in data.read_text().splitlines()}
    hits = {sid: sum(bool(re.search(p, t, re.IGNORECASE)) for t in texts.values()) for sid, p in CONTRACT_PATTERNS.items()}
    rows = {r["id"]: r for r in report["subgoals"]}
    assert rows["S1"]["supporting"] == hits["S1"]  # both judges agree: the consensus is theirs
    assert rows["S2"]["supporting"] == 0  # 5 against 1: no majority supports
    md = runner.invoke(app, ["report", "-w", ws]).stdout
    assert "Jury of judge-a, judge-b" in md and "disagree on most" in md
