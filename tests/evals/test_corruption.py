"""The corruption experiment's plumbing and arithmetic, on a few real samples per domain against the fake
endpoint with keyword judges. These runs claim no numbers about any model."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from goalcover.evals import corruption
from goalcover.evals.corruptions import CONTRACT_TOPICS, DOMAINS, pick
from goalcover.evals.harness import cohens_d, read_jsonl
from goalcover.tools.data.records import detect_shape
from goalcover.tools.core.goal import load_goal_file
from tests.evals.rules import expected, goal_keyword_judge, text_of

LIMIT = 3


def _d(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    return (a.mean() - b.mean()) / pooled


def test_cohens_d_is_the_pooled_sd_effect_size():
    a, b = [4, 4, 3, 0, 4, 2], [0, 0, 1, 0, -1, 0, 0, 1]
    assert cohens_d(a, b) == pytest.approx(_d(a, b))
    assert cohens_d([1], [1, 2]) is None
    assert cohens_d([3, 3], [0, 0]) == math.inf and cohens_d([1, 1], [1, 1]) is None


def test_every_corruption_keeps_the_shape_and_removes_its_part():
    for domain in DOMAINS.values():
        records = read_jsonl(domain.file)
        for record in pick(records, domain.corruptions, 6):
            for c in domain.corruptions:
                out = c.apply(record, records)
                if out is None:
                    continue
                assert out != record and list(out) == list(record) and out["id"] == record["id"]
                assert detect_shape(out) == detect_shape(record)
                text_of(out, detect_shape(out))  # still a valid record of its shape


def _by_id(domain: str) -> tuple[dict, list]:
    records = read_jsonl(DOMAINS[domain].file)
    return {r["id"]: r for r in records}, records


def _apply(domain: str, subgoal_id: str, record: dict, pool: list) -> dict:
    (c,) = [c for c in DOMAINS[domain].corruptions if c.subgoal_id == subgoal_id]
    return c.apply(record, pool)


def test_corruptions_remove_their_part_and_keep_the_rest():
    by_id, pool = _by_id("pubmedqa")
    r = by_id["pubmedqa-21645374"]
    user, answer = r["messages"][1]["content"], r["messages"][2]["content"]
    assert _apply("pubmedqa", "S1", r, pool)["messages"][1]["content"] == user[user.index("Question: "):]
    assert _apply("pubmedqa", "S2", r, pool)["messages"][1]["content"] == user[: user.index("\n\nQuestion: ")]
    assert _apply("pubmedqa", "S3", r, pool)["messages"][2]["content"] == "Answer: yes"
    assert _apply("pubmedqa", "S4", r, pool)["messages"][2]["content"] == answer.removesuffix("\n\nAnswer: yes")
    assert r["messages"][2]["content"] == answer  # the input record is not touched

    by_id, pool = _by_id("humaneval")
    r = by_id["HumanEval-2"]
    no_prose, no_examples = _apply("humaneval", "S1", r, pool)["prompt"], _apply("humaneval", "S2", r, pool)["prompt"]
    assert "Given a positive" not in no_prose and ">>> truncate_number(3.5)\n    0.5" in no_prose
    assert "Given a positive" in no_examples and ">>>" not in no_examples
    untyped = _apply("humaneval", "S4", r, pool)["prompt"]
    assert "def truncate_number(number):" in untyped and untyped.replace("def truncate_number(number):", "") == \
        r["prompt"].replace("def truncate_number(number: float) -> float:", "")
    assert _apply("humaneval", "S3", r, pool)["completion"] == "    return number // 1.0\n"

    by_id, pool = _by_id("mbpp")
    r = by_id["mbpp-3"]
    assert _apply("mbpp", "S1", r, pool)["instruction"] == "Write a Python function."
    assert _apply("mbpp", "S2", r, pool)["input"] == ""
    renamed = _apply("mbpp", "S4", r, pool)["output"]
    assert "def is_not_prime(v1):" in renamed and "math.sqrt(v1)" in renamed and "result" not in renamed
    broken = _apply("mbpp", "S3", r, pool)["output"]
    assert broken.count("\n") == r["output"].count("\n") and "n // i != 0" in broken

    by_id, pool = _by_id("contracts")
    r = by_id["contracts-legalsum08"]  # "we may cancel suspend or terminate your account …"
    swapped = _apply("contracts", "S1", r, pool)
    assert swapped["input"] == r["input"] and swapped["output"] != r["output"]
    donor = next(d for d in pool if d["output"] == swapped["output"])
    assert not re.search(CONTRACT_TOPICS["S1"], donor["input"], re.IGNORECASE)


def test_corruption_run_scores_clean_and_corrupted_sets_and_does_the_arithmetic(tmp_path, fake_openai, fast_embeddings):
    fake_openai.rules.append(goal_keyword_judge)
    report = corruption.main(["--model", "fake-model", "--base-url", fake_openai.base_url, "--limit", str(LIMIT),
                              "--out", str(tmp_path / "results")])
    assert [d["domain"] for d in report["domains"]] == list(DOMAINS)
    all_target, all_others, target_rel, others_rel = [], [], [], []
    for d in report["domains"]:
        domain = DOMAINS[d["domain"]]
        records = read_jsonl(domain.file)
        chosen = pick(records, domain.corruptions, LIMIT)
        goal = load_goal_file(domain.goal)
        subgoals = [s.id for s in goal.subgoals]
        shape = detect_shape(records[0])
        clean = {r["id"]: expected(goal.text, r["id"], text_of(r, shape)) for r in chosen}
        assert d["samples"] == len(chosen) and d["cost"]["failed"] == 0
        dom_target, dom_others = [], []
        for row, c in zip(d["subgoals"], domain.corruptions):
            corrupted = {r["id"]: expected(goal.text, r["id"], text_of(r, shape))
                         for r in (c.apply(x, records) for x in chosen) if r is not None}
            # every score in the report is the keyword verdict on the right text, clean or corrupted
            assert d["scores"][c.subgoal_id] == {i: {g: [clean[i][g], corrupted[i][g]] for g in subgoals} for i in corrupted}
            t = c.subgoal_id
            assert row["samples"] == row["judged"] == len(corrupted)
            if not corrupted:  # --limit too small for this corruption: an empty row, nothing scored
                assert row["target_drop"] is None and row["clean_mean"] is None
                continue
            before = np.mean([clean[i][t] for i in corrupted])
            after = np.mean([corrupted[i][t] for i in corrupted])
            assert row["clean_mean"] == pytest.approx(before, abs=1e-3)
            assert row["target_drop"] == pytest.approx((before - after) / before, abs=1e-3)
            others = [(np.mean([clean[i][g] for i in corrupted]) - np.mean([corrupted[i][g] for i in corrupted]))
                      / np.mean([clean[i][g] for i in corrupted]) for g in subgoals if g != t]
            assert row["others_drop"] == pytest.approx(np.mean(others), abs=1e-3)
            target_rel.append(row["target_drop"])
            others_rel.append(row["others_drop"])
            dom_target += [clean[i][t] - corrupted[i][t] for i in corrupted]
            dom_others += [clean[i][g] - corrupted[i][g] for i in corrupted for g in subgoals if g != t]
        assert d["target_drop"] == pytest.approx(np.mean([r["target_drop"] for r in d["subgoals"] if r["samples"]]), abs=1e-3)
        if np.std(dom_target) + np.std(dom_others) > 0:
            assert d["cohens_d"] == pytest.approx(_d(dom_target, dom_others), abs=1e-3)
        all_target += dom_target
        all_others += dom_others
    overall = report["overall"]
    assert overall["target_drop"] == pytest.approx(np.mean(target_rel), abs=1e-3)
    assert overall["others_drop"] == pytest.approx(np.mean(others_rel), abs=1e-3)
    assert overall["cohens_d"] == pytest.approx(_d(all_target, all_others), abs=1e-3)
    assert overall["target_drop"] > overall["others_drop"]  # the keyword judge sees what was removed

    (json_file,) = (tmp_path / "results").glob("corruption-fake-model.json")
    assert json.loads(json_file.read_text())["overall"] == overall
    md = (tmp_path / "results" / "corruption-fake-model.md").read_text()
    assert "| **all domains** |" in md and "paper (arXiv 2604.27547)" in md and "25.6%" in md


def test_with_logprobs_the_corruption_run_reports_the_weighted_scores_beside_the_verdicts(tmp_path, fake_openai, fast_embeddings):
    fake_openai.rules.append(goal_keyword_judge)
    args = ["--model", "fake-model", "--base-url", fake_openai.base_url, "--limit", "2", "--domains", "mbpp",
            "--out", str(tmp_path / "results")]
    report = corruption.main(args + ["--logprobs", "5"])
    assert all(r.body.get("top_logprobs") == 5 for r in fake_openai.requests if "response_format" in r.body)
    (d,) = report["domains"]
    w = d["weighted"]
    assert [r["subgoal_id"] for r in w["subgoals"]] == [r["subgoal_id"] for r in d["subgoals"]]
    for verdict_row, weighted_row in zip(d["subgoals"], w["subgoals"]):
        assert weighted_row["judged"] == verdict_row["judged"]
        if verdict_row["clean_mean"] is not None:
            # the fake's digit alternatives pull a 5 below 5 and a 1 above 1, never past the next half
            assert abs(weighted_row["clean_mean"] - verdict_row["clean_mean"]) < 0.5
            assert weighted_row["clean_mean"] != verdict_row["clean_mean"]
    assert report["overall"]["weighted"]["target_drop"] > report["overall"]["weighted"]["others_drop"]
    assert "G-Eval weighted" in (tmp_path / "results" / "corruption-fake-model-logprobs.md").read_text()
    # per sample, as for the verdicts: [clean, corrupted] weighted scores of each target and subgoal
    assert {i: set(v) for i, v in w["scores"].items()} == {i: set(v) for i, v in d["scores"].items()}
    fake_openai.requests.clear()
    plain = corruption.main(args)
    assert "weighted" not in plain["domains"][0] and "weighted" not in plain["overall"]


def test_a_bigger_run_recomputed_on_a_smaller_runs_samples_gives_the_smaller_runs_figures(tmp_path, fake_openai, fast_embeddings):
    """corruption_matched: `pick` takes samples in file order, so a --limit 1 run's samples are among a
    --limit 3 run's; with a deterministic judge the bigger run, recomputed on them, is the smaller run."""
    from goalcover.evals.corruption_matched import matched

    fake_openai.rules.append(goal_keyword_judge)
    args = ["--model", "fake-model", "--base-url", fake_openai.base_url, "--domains", "mbpp", "--logprobs", "5",
            "--out", str(tmp_path / "results")]
    big = corruption.main(args + ["--limit", "3"])
    small = corruption.main(args + ["--limit", "1"])
    same = matched(big, on=small)
    assert same["overall"]["verdict"] == {k: v for k, v in small["overall"].items() if k not in ("samples", "weighted")}
    assert same["overall"]["weighted"] == small["overall"]["weighted"]
    assert matched(big, on=big)["domains"]["mbpp"]["verdict"]["cohens_d"] == big["domains"][0]["cohens_d"]
