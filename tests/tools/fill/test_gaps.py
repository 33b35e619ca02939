"""Gaps, why, synthesis, review and export on real contracts data, against the fake endpoint with a judge
that makes some subgoals weak on purpose."""

from __future__ import annotations

import asyncio

import filecmp
import json
import os
from pathlib import Path

import pytest

from goalcover.testing import Reply
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import coverage, sample_scores
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.errors import BadInput
from goalcover.tools.fill.gaps import cluster, find_gaps, get_gap
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.data.records import read_samples
from goalcover.tools.measure.report import render
from goalcover.tools.fill.synthesis import list_synthetic, review, synthesize
from goalcover.tools.fill.why import template_answer, ungrounded, why
from tests.conftest import SFT, head_lines
from tests.support.judges import CONTRACT_PATTERNS, synth_writer, topic_of, topical_judge
from tests.tools.judge.test_scoring import GOAL_FILE, open_ws

N = 80


@pytest.fixture
def scored(tmp_path, fake_openai):
    fake_openai.rules.append(topical_judge(CONTRACT_PATTERNS))
    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", N)
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        asyncio.run(scoring.score(ws, concurrency=8))
        yield ws, data


def test_gaps_cluster_the_low_score_explanations_by_what_is_missing(scored, fake_openai):
    ws, data = scored
    report = coverage(ws)
    weak = {r.id for r in report.subgoals if r.weak}
    assert weak  # the judge makes most subgoals weak on this slice
    gaps = asyncio.run(find_gaps(ws))
    assert [g.id for g in gaps] == [f"G{i}" for i in range(1, len(gaps) + 1)]
    assert {g.subgoal_id for g in gaps} <= weak
    scores, _ = sample_scores(ws)
    texts = {s.id: s.text for s in read_samples(data).samples}
    for gap in gaps:
        assert gap.size == len(gap.member_ids) and set(gap.sample_ids) <= set(gap.member_ids)
        assert all(scores[m][gap.subgoal_id][0] < 4 for m in gap.member_ids)
        if gap.kind == "cluster":  # a cluster holds samples of one topic: the judge's explanations say so
            assert len({topic_of(texts[m]) for m in gap.member_ids}) == 1, gap
    labels = [r for r in fake_openai.requests if r.schema_name in ("gap_label", "uncovered_aspects")]
    assert len(labels) == len(gaps)
    assert all("<explanations>" in r.last_user for r in labels if r.schema_name == "gap_label")

    before = fake_openai.stats()["completions"]
    again = asyncio.run(find_gaps(ws))
    assert [g.model_dump() for g in again] == [g.model_dump() for g in gaps]
    assert fake_openai.stats()["completions"] == before  # unchanged data: no new LLM call
    only = asyncio.run(find_gaps(ws, "S1"))
    assert only and all(g.subgoal_id == "S1" for g in only)
    with pytest.raises(BadInput, match="no gap 'G99'"):
        get_gap(ws, "G99")


def test_an_unsupported_subgoal_gets_an_uncovered_gap_with_proposed_aspects(tmp_path, fake_openai):
    patterns = {**CONTRACT_PATTERNS, "S4": r"(?!)"}  # nothing supports S4
    fake_openai.rules.append(topical_judge(patterns))
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "c.jsonl", 30))
        save_goal(ws, load_goal_file(GOAL_FILE))
        asyncio.run(scoring.score(ws))
        (gap,) = asyncio.run(find_gaps(ws, "S4"))
    assert gap.kind == "uncovered" and gap.aspects and gap.size == 30
    assert sum(r.schema_name == "uncovered_aspects" for r in fake_openai.requests) == 1


def test_clustering_falls_back_for_a_handful_of_explanations():
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=384), rng.normal(size=384)
    points = np.array([a + 0.05 * rng.normal(size=384) for _ in range(3)] + [b + 0.05 * rng.normal(size=384) for _ in range(3)])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    labels = cluster(points)
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]
    assert list(cluster(points[:2])) == [0, 0] and len(cluster(points[:0])) == 0


def weak_ids(ws) -> list[str]:
    return [r.id for r in coverage(ws).subgoals if r.weak]


def test_why_answers_from_facts_and_every_number_and_id_is_in_them(scored, fake_openai):
    ws, _ = scored
    asyncio.run(find_gaps(ws))
    target = weak_ids(ws)[0]
    fake_openai.rules.insert(0, lambda req: Reply.text(f"{target} is weak: only 3 of 9999 samples support it, see contracts-made-up-7.")
                             if "FACTS:" in (req.last_user or "") else None)
    answer = asyncio.run(why(ws, target))
    assert answer.grounded_by == "template"  # the invented numbers and id were caught
    assert ungrounded(answer.answer, answer.facts) == []
    facts = answer.facts
    row = next(r for r in coverage(ws).subgoals if r.id == target)
    assert facts.subgoal.id == target and facts.gaps and facts.coverage.weak
    assert (facts.coverage.supporting, facts.samples) == (row.supporting, N)
    assert all(g.examples and g.examples[0].explanation for g in facts.gaps)
    ids_in_answer = {e.sample_id for g in facts.gaps for e in g.examples[:2]}
    assert ids_in_answer and all(i in answer.answer for i in ids_in_answer)

    good = template_answer(facts)  # a model that sticks to the facts passes the check
    fake_openai.rules[0] = lambda req: Reply.text(good) if "FACTS:" in (req.last_user or "") else None
    assert asyncio.run(why(ws, target)).grounded_by == "llm"
    assert ungrounded("S7 has 12345 samples", facts) == ["S7", "12345"]


def test_why_only_reads_it_never_clusters_labels_or_renumbers(scored, fake_openai):
    ws, _ = scored
    gaps = asyncio.run(find_gaps(ws))
    stored = ws.store.get_meta("gaps")
    target = gaps[0].subgoal_id
    before = len(fake_openai.requests)
    asyncio.run(why(ws, target))
    asked = fake_openai.requests[before:]
    # Only the prose: at most two drafts over the facts, no cluster label, no aspects, no judge.
    assert 1 <= len(asked) <= 2 and all("FACTS:" in (r.last_user or "") for r in asked)
    assert ws.store.get_meta("gaps") == stored  # the gaps and their ids are as the user saw them

    completions = fake_openai.stats()["completions"]
    facts_only = asyncio.run(why(ws, target, prose=False))
    assert facts_only.grounded_by == "facts" and fake_openai.stats()["completions"] == completions
    assert ws.store.get_meta("gaps") == stored


def test_why_on_a_weak_subgoal_without_stored_gaps_says_how_to_find_them(scored, fake_openai):
    ws, _ = scored
    target = weak_ids(ws)[0]
    answer = asyncio.run(why(ws, target, prose=False))
    assert answer.facts.gaps == [] and ws.store.get_meta("gaps") is None  # nothing was clustered
    assert f"goalcover gaps --subgoal {target}" in answer.answer
    assert not [r for r in fake_openai.requests if r.schema_name in ("gap_label", "uncovered_aspects")]


def test_why_on_a_subgoal_that_is_not_weak_says_so_against_the_median(tmp_path, fake_openai):
    fake_openai.rules.append(topical_judge(CONTRACT_PATTERNS))
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "c.jsonl", 30))
        save_goal(ws, load_goal_file(GOAL_FILE))
        asyncio.run(scoring.score(ws))
        strong = [r for r in coverage(ws).subgoals if not r.weak]
        assert strong, "the slice should cover some subgoal well"
        completions = fake_openai.stats()["completions"]
        answer = asyncio.run(why(ws, strong[0].id))
    assert fake_openai.stats()["completions"] == completions  # a subgoal that is not weak needs no model
    assert answer.grounded_by == "facts" and answer.facts.coverage.weak is False
    assert answer.answer.startswith(f"{strong[0].id} ({strong[0].title}) is not weak: it is supported by {strong[0].supporting} of 30")
    assert f"median of {answer.facts.other_subgoals_median_share_pct}" in answer.answer
    assert ungrounded(answer.answer, answer.facts) == []


def test_rerunning_gaps_keeps_every_id_and_new_clusters_get_new_ones(scored, fake_openai):
    ws, _ = scored
    first = asyncio.run(find_gaps(ws))
    weak = set(weak_ids(ws))
    other = next(r.id for r in coverage(ws).subgoals if r.id not in weak and r.scored)
    asyncio.run(find_gaps(ws, other))  # a subgoal that is not weak: its clusters are new gaps
    again = asyncio.run(find_gaps(ws))
    by_members = {tuple(g.member_ids): g.id for g in first}
    assert {tuple(g.member_ids): g.id for g in again if g.subgoal_id in weak} == by_members
    added = [g for g in ws.store.get_meta("gaps") if g["subgoal_id"] == other]
    numbers = sorted(int(g.id[1:]) for g in first)
    # The other subgoal's gaps survive the rerun over the weak ones, with ids above every earlier one.
    assert added and all(int(g["id"][1:]) > numbers[-1] for g in added)


def test_gap_ids_follow_their_members_not_their_order():
    from goalcover.tools.fill.gaps import Gap, assign_ids

    def gap(subgoal: str, members: list[str], id: str = "") -> Gap:
        return Gap(id=id, subgoal_id=subgoal, label="l", description="d", size=len(members), sample_ids=members[:1], member_ids=members)

    stored = [gap("S1", ["a", "b", "c", "d"], "G1"), gap("S1", ["e", "f", "g"], "G2"), gap("S2", ["a", "b"], "G3")]
    fresh = [gap("S1", ["e", "f", "g", "h"]), gap("S1", ["a", "b", "c"]), gap("S1", ["x", "y"]), gap("S2", ["z"])]
    assert [g.id for g in assign_ids(fresh, stored, last_number=5)] == ["G2", "G1", "G6", "G7"]
    # An id that was issued once is never issued again, even after its gap went away.
    assert [g.id for g in assign_ids([gap("S3", ["q"])], [], last_number=7)] == ["G8"]


def test_synthesis_dedups_judges_and_waits_for_review(scored, fake_openai):
    ws, data = scored
    gaps = asyncio.run(find_gaps(ws, "S1"))
    existing = json.loads(data.read_text().splitlines()[0])
    fake_openai.rules.insert(0, synth_writer(duplicate_of=existing, off_target=2))
    result = asyncio.run(synthesize(ws, gaps[0].id, n=10))
    assert result.generated == 10
    assert result.duplicates >= 1 and result.rejected_by_judge == 2
    assert result.kept == 10 - result.duplicates - result.rejected_by_judge > 0
    items = list_synthetic(ws, gaps[0].id)
    assert {i.state for i in items} == {"proposed"} and all(i.judge_score >= 4 for i in items)
    assert all(i.record["id"] == i.id and i.subgoal_id == "S1" for i in items)
    prompt = next(r for r in fake_openai.requests if r.schema_name == "synthetic_samples")
    assert gaps[0].label in prompt.system and "<examples>" in prompt.last_user

    # The writer's next batch repeats clauses 0-4: 1 and 2 were kept above and are dropped as duplicates;
    # 0, 3 and 4 were replaced by the copy and the off-target samples in the first batch, so they are new.
    again = asyncio.run(synthesize(ws, gaps[0].id, n=5))
    assert (again.kept, again.duplicates) == (3, 2)
    texts = [i.text for i in list_synthetic(ws)]
    assert len(texts) == len(set(texts))
    items = list_synthetic(ws, gaps[0].id)

    review(ws, accept=[items[0].id], reject=[items[1].id])
    review(ws, accept=["all"], gap_id=gaps[0].id)
    states = {i.id: i.state for i in list_synthetic(ws)}
    assert states[items[1].id] == "rejected" and sum(s == "accepted" for s in states.values()) == len(items) - 1
    with pytest.raises(BadInput, match="no synthetic sample"):
        review(ws, accept=["nope"])

    report = coverage(ws)
    assert report.synthetic_accepted == len(items) - 1
    before, after = report.subgoals[0], report.after[0]
    assert after.supporting == before.supporting + len(items) - 1
    assert "accepted synthetic samples" in render(report, "md")


def test_synthesis_counts_what_the_model_did_not_return_apart_from_what_it_returned_broken(scored, fake_openai):
    ws, _ = scored
    gaps = asyncio.run(find_gaps(ws, "S1"))
    writer = synth_writer(off_target=0)

    def short(req):  # a small model that writes 3 of the 5 candidates asked for
        reply = writer(req)
        if reply is None:
            return None
        return Reply.json({"candidates": json.loads(reply.content)["candidates"][:3]})

    fake_openai.rules.insert(0, short)
    result = asyncio.run(synthesize(ws, gaps[0].id, n=5))
    assert (result.requested, result.generated, result.missing, result.invalid) == (5, 3, 2, 0)
    assert result.kept + result.duplicates + result.rejected_by_judge == result.generated - result.invalid


def test_export_filters_adds_and_writes_a_manifest(scored, fake_openai, tmp_path):
    ws, data = scored
    gaps = asyncio.run(find_gaps(ws, "S1"))
    fake_openai.rules.insert(0, synth_writer(off_target=0))
    asyncio.run(synthesize(ws, gaps[0].id, n=5))
    review(ws, accept=["all"])
    out = tmp_path / "out" / "clean.jsonl"
    result = __import__("goalcover.tools.data.export", fromlist=["export"]).export(ws, out, drop_off_goal=True, with_synthetic=True)
    report = coverage(ws)
    assert result.dropped == report.off_goal > 0 and result.synthetic == 5
    lines = out.read_text().splitlines()
    assert len(lines) == N - result.dropped + 5 == result.written
    originals = data.read_text().splitlines()
    kept = [line for line in originals if json.loads(line)["id"] not in set(report.off_goal_ids)]
    assert lines[: len(kept)] == kept  # untouched records, byte for byte, in order
    manifest = json.loads(Path(result.manifest).read_text())
    umask = os.umask(0)
    os.umask(umask)
    # Ordinary files the user can share, not the 0600 of a temporary file.
    assert {out.stat().st_mode & 0o777, Path(result.manifest).stat().st_mode & 0o777} == {0o666 & ~umask}
    assert manifest["counts"] == {"input": N, "written": result.written, "dropped": result.dropped, "synthetic": 5}
    assert {d["id"] for d in manifest["dropped"]} == set(report.off_goal_ids)
    assert all(d["reason"].startswith("off-goal") for d in manifest["dropped"])
    assert manifest["synthetic"][0]["gap_id"] == gaps[0].id and manifest["synthetic"][0]["judge_score"] >= 4
    assert manifest["coverage_after"][0]["supporting"] == manifest["coverage_before"][0]["supporting"] + 5
    assert len(manifest["goal"]["subgoals"]) == 5

    from goalcover.tools.data.export import export

    with pytest.raises(BadInput, match="refusing to overwrite"):
        export(ws, data)
    with pytest.raises(BadInput, match=r"name the export with (a )?\.jsonl"):
        export(ws, tmp_path / "x.csv")
    with pytest.raises(BadInput, match="refusing a path outside"):
        export(ws, tmp_path / "elsewhere.jsonl", allowed_root=ws.root)


def test_stopping_gap_labelling_keeps_the_labels_in_flight(scored, fake_openai):
    """Cancel find_gaps while its labels are being asked for: the calls already sent finish and are cached,
    so the rerun asks only for the labels it never asked for (each label paid once)."""
    from goalcover.testing import Faults

    ws, _ = scored
    fake_openai.set_faults(Faults(latency_ms=500))

    def label_requests() -> int:
        return sum(r.schema_name in ("gap_label", "uncovered_aspects") for r in fake_openai.requests)

    async def stop_while_labelling() -> None:
        task = asyncio.create_task(find_gaps(ws))
        while label_requests() == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(stop_while_labelling())
    asked = label_requests()
    assert ws.store.get_meta("gaps") is None  # nothing half-stored
    fake_openai.set_faults(Faults())
    gaps = asyncio.run(find_gaps(ws))
    assert label_requests() == len(gaps)  # the labels asked for before the stop were not asked again
    assert asked >= 1
