"""The judge-agreement experiment's plumbing and arithmetic, against the fake endpoint with a keyword judge
that is one point harsher on S1 in pair mode. These runs claim no numbers about any model."""

from __future__ import annotations

import json

import pytest
from scipy.stats import spearmanr

from goalcover.evals import judge_agreement
from goalcover.evals.corruptions import DOMAINS, pick
from goalcover.evals.harness import read_jsonl
from goalcover.testing import Reply
from goalcover.tools.core.goal import load_goal_file
from tests.evals.rules import expected, goal_keyword_judge, text_of
from tests.support.judges import judged_subgoals

LIMIT = 4


def harsher_on_s1_in_pair_mode(req):
    reply = goal_keyword_judge(req)
    if reply is None or "score" not in (req.schema or {}).get("properties", {}) or judged_subgoals(req) != ["S1"]:
        return reply
    verdict = json.loads(reply.content)
    return Reply.json({**verdict, "score": max(1, verdict["score"] - 1)})


def test_batched_and_pair_scores_are_compared_pair_by_pair_with_their_token_costs(tmp_path, fake_openai, fast_embeddings):
    fake_openai.rules.append(harsher_on_s1_in_pair_mode)
    report = judge_agreement.main(["--model", "fake-model", "--base-url", fake_openai.base_url, "--limit", str(LIMIT),
                                   "--domain", "pubmedqa", "--out", str(tmp_path / "results")])
    spec = DOMAINS["pubmedqa"]
    goal = load_goal_file(spec.goal)
    records = pick(read_jsonl(spec.file), spec.corruptions, LIMIT)
    batched = {(r["id"], g): v for r in records for g, v in expected(goal.text, r["id"], text_of(r, "messages")).items()}
    pair = {k: max(1, v - 1) if k[1] == "S1" else v for k, v in batched.items()}
    assert report["scores"] == {f"{s}::{g}": [batched[(s, g)], pair[(s, g)]] for s, g in sorted(batched)}

    o = report["overall"]
    n = len(batched)
    assert o["pairs"] == n == LIMIT * 4
    assert o["exact"] == pytest.approx(sum(batched[k] == pair[k] for k in batched) / n, abs=1e-3)  # S1 always differs
    assert o["exact"] == 0.75 and o["within_1"] == 1.0
    assert o["support_agreement"] == pytest.approx(sum((batched[k] >= 4) == (pair[k] >= 4) for k in batched) / n, abs=1e-3)
    keys = sorted(batched)
    assert o["spearman"] == pytest.approx(spearmanr([batched[k] for k in keys], [pair[k] for k in keys]).statistic, abs=1e-3)
    assert report["per_subgoal"]["S2"]["exact"] == 1.0 and report["per_subgoal"]["S1"]["exact"] == 0.0

    b, p = report["cost"]["batched"], report["cost"]["pair"]
    assert (b["calls"], p["calls"]) == (LIMIT, LIMIT * 4) and b["judgments"] == p["judgments"] == n
    assert b["prompt_tokens"] + p["prompt_tokens"] == fake_openai.stats()["prompt_tokens"]  # usage as the endpoint reported it
    assert p["prompt_tokens"] > b["prompt_tokens"] > 0
    assert report["pair_over_batched_prompt_tokens"] == pytest.approx(p["prompt_tokens"] / b["prompt_tokens"], abs=0.01)
    md = (tmp_path / "results" / "judge_agreement-fake-model.md").read_text()
    assert "| **all** | 16 | **75.0%** | **100.0%** |" in md
