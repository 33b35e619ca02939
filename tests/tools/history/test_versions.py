"""Versions, history, diff, pool fill and verify on real contracts data, judged by the fake endpoint's keyword
judge (5 where a subgoal's pattern matches the sample, else 1), so every expected figure comes from the data."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from goalcover.tools.history import history_store as hs
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.history.diff import diff, diff_against
from goalcover.tools.core.errors import BadInput
from goalcover.tools.fill.gaps import find_gaps
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.fill.pool import add_to_pool, fill_from_pool, provenance
from goalcover.tools.fill.synthesis import review
from goalcover.tools.fill.verify import verify
from goalcover.tools.history.versions import history, since, since_last_visit
from tests.conftest import SFT
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.tools.judge.test_scoring import GOAL_FILE, open_ws

LINES = (SFT / "contracts_alpaca.jsonl").read_bytes().splitlines(keepends=True)
S1 = re.compile(CONTRACT_PATTERNS["S1"], re.IGNORECASE)
S3 = re.compile(CONTRACT_PATTERNS["S3"], re.IGNORECASE)


def _text(line: bytes) -> str:
    record = json.loads(line)
    return " ".join(str(record.get(k, "")) for k in ("instruction", "input", "output"))


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def test_versions_follow_ingest_add_replace_and_accepted_fills(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    a = write(tmp_path / "a.jsonl", LINES[:30])
    b = write(tmp_path / "b.jsonl", LINES[30:40])
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, a)
        ingest_file(ws, a)  # unchanged: no new version
        assert [v["kind"] for v in hs.version_rows(ws.store)] == ["ingest"]
        edited = json.loads(LINES[0])
        edited["output"] += " (edited)"
        write(a, [json.dumps(edited).encode() + b"\n"] + LINES[1:29])  # one sample changed, one removed
        ingest_file(ws, a)
        ingest_file(ws, b, add=True)
        ingest_file(ws, b, replace=True)
        rows = hs.version_rows(ws.store)
        assert [r["samples"] for r in rows] == [30, 29, 39, 10]
        assert rows[-1]["sources"] == [str(b.resolve())]
        # Members are rebuilt exactly from the deltas.
        assert set(hs.members_of(ws.store, rows[2]["id"])) == set(hs.members_of(ws.store, rows[1]["id"])) | set(
            hs.members_of(ws.store, rows[3]["id"]))
        assert diff(ws, "v1", "v2").samples == {"added": 0, "removed": 1, "changed": 1}
        assert diff(ws, "v2", "v3").samples == {"added": 10, "removed": 0, "changed": 0}
        blobs = dict(ws.store.db.execute("SELECT id, length(members) FROM dataset_versions"))
        assert blobs[rows[2]["id"]] < blobs[rows[0]["id"]] / 2  # --add of 10 samples: a delta, not the full list
        save_goal(ws, load_goal_file(GOAL_FILE))
        asyncio.run(scoring.score(ws))
        pool = write(tmp_path / "pool.jsonl", [ln for ln in LINES[40:120] if S1.search(_text(ln))])
        add_to_pool(ws, pool)
        gaps = asyncio.run(find_gaps(ws, "S1"))
        filled = asyncio.run(fill_from_pool(ws, gaps[0].id, n=5))
        assert filled.kept
        before = len(hs.version_rows(ws.store))
        review(ws, accept=filled.kept_ids[:2])
        rows = hs.version_rows(ws.store)
        assert len(rows) == before + 1 and rows[-1]["kind"] == "fill" and rows[-1]["fills"] == 2
        review(ws, accept=filled.kept_ids[:2])  # the same decision again: nothing changed, no version
        assert len(hs.version_rows(ws.store)) == before + 1


@pytest.fixture
def audited(tmp_path, fake_openai):
    """60 clauses with every S1 (termination) clause taken out into a pool file, scored, gaps found."""
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    head = LINES[:80]
    data = write(tmp_path / "data.jsonl", [ln for ln in head if not S1.search(_text(ln))])
    pool = write(tmp_path / "pool.jsonl", [ln for ln in head if S1.search(_text(ln))] + LINES[80:90])
    return data, pool


def test_history_and_diff_recompute_coverage_from_the_cache(audited, tmp_path, fake_openai):
    data, _ = audited
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        assert since_last_visit(ws) is None  # the first visit
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        asyncio.run(scoring.score(ws))
        assert since_last_visit(ws) == "Since last time: 1 new dataset version(s) (v1..v1), 1 scoring run(s)."
        assert since_last_visit(ws) is None  # nothing since
        report = coverage(ws)
        found = history(ws)
        assert len(found.versions) == 1 and found.versions[0].snapshots == 1
        assert {r.id: r.share for r in found.versions[0].coverage} == {r.id: r.share for r in report.subgoals}
        assert {r.id: r.weak for r in found.versions[0].coverage} == {r.id: r.weak for r in report.subgoals}
        # Drop every S2 clause: the diff shows S2 falling to 0, significantly, as a regression.
        kept = [ln for ln in data.read_bytes().splitlines(keepends=True) if not re.search(CONTRACT_PATTERNS["S2"], _text(ln), re.I)]
        removed = len(data.read_bytes().splitlines()) - len(kept)
        write(data, kept)
        ingest_file(ws, data)
        calls = fake_openai.stats()["requests"]
        change = diff(ws)
        assert fake_openai.stats()["requests"] == calls  # a diff of versions calls nothing
        assert (change.from_, change.to) == ("v1", "v2")
        assert change.samples == {"added": 0, "removed": removed, "changed": 0}
        s2 = next(d for d in change.subgoals if d.id == "S2")
        assert s2.share_to == 0.0 and s2.share_from > 0 and s2.significant and s2.regression
        assert "S2" in change.regressions
        with pytest.raises(BadInput, match="no dataset version 'v9'"):
            diff(ws, "v9")


def test_diff_against_another_workspace_pays_only_for_new_content(audited, tmp_path, fake_openai):
    data, pool = audited
    ours = data.read_bytes().splitlines(keepends=True)
    other = write(tmp_path / "other.jsonl", ours[:20] + pool.read_bytes().splitlines(keepends=True)[:7])
    with open_ws(tmp_path / "theirs", fake_openai) as theirs:
        ingest_file(theirs, other)
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        asyncio.run(scoring.score(ws))
        fake_openai.reset_stats()
        plan, nothing = asyncio.run(diff_against(ws, tmp_path / "theirs", dry_run=True))
        assert nothing is None and plan.to_score == 7 * 5 and fake_openai.stats()["requests"] == 0
        _, change = asyncio.run(diff_against(ws, tmp_path / "theirs"))
        assert fake_openai.stats()["completions"] == 7  # one batched call per new sample; the 20 shared cost nothing
        assert change.calls == 7
        assert change.samples == {"added": 7, "removed": len(ours) - 20, "changed": 0}
        s1 = next(d for d in change.subgoals if d.id == "S1")
        assert s1.share_from == 0.0 and s1.share_to == round(7 / 27, 4) and s1.significant
        fake_openai.reset_stats()
        asyncio.run(diff_against(ws, tmp_path / "theirs"))
        assert fake_openai.stats()["requests"] == 0  # everything cached now
        with pytest.raises(BadInput, match="not a GoalCover workspace"):
            asyncio.run(diff_against(ws, tmp_path / "nowhere"))


def test_pool_fill_proposes_supporters_with_provenance_and_verify_closes_the_gap(audited, tmp_path, fake_openai):
    data, pool = audited
    pool_lines = pool.read_bytes().splitlines(keepends=True)
    on_target = [ln for ln in pool_lines if S1.search(_text(ln))]
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        asyncio.run(scoring.score(ws))
        added = add_to_pool(ws, pool)
        assert (added.samples, added.new, added.pool_size) == (len(pool_lines), len(pool_lines), len(pool_lines))
        assert add_to_pool(ws, pool).new == 0  # re-adding adds nothing
        gap = next(g for g in asyncio.run(find_gaps(ws)) if g.subgoal_id == "S1")
        fake_openai.reset_stats()
        dry = asyncio.run(fill_from_pool(ws, gap.id, n=50, dry_run=True))
        assert fake_openai.stats()["requests"] == 0 and dry.to_score == dry.judged * 5
        result = asyncio.run(fill_from_pool(ws, gap.id, n=50))
        assert fake_openai.stats()["completions"] == result.judged == result.calls  # one batched call per candidate
        assert result.kept == len(on_target) and result.rejected_by_judge == result.judged - result.kept
        lines = {p["line"] for p in result.provenance}
        assert lines == {n + 1 for n, ln in enumerate(pool_lines) if S1.search(_text(ln))}
        assert set(provenance(ws)) == set(result.kept_ids)
        fake_openai.reset_stats()
        again = asyncio.run(fill_from_pool(ws, gap.id, n=50))  # proposed already: nothing new, nothing paid
        assert again.kept == 0 and fake_openai.stats()["requests"] == 0
        review(ws, accept=["all"], gap_id=gap.id)
        checked = verify(ws, gap.id)
        v = checked.gaps[0]
        assert (v.gap_id, v.status, v.fills, v.supporting_fills) == (gap.id, "closed", len(on_target), len(on_target))
        assert v.share_before == 0.0 and v.share_after == round(len(on_target) / (len(data.read_bytes().splitlines()) + len(on_target)), 4)
        assert 1 <= v.effective_support <= v.supporting_fills
        change = diff(ws)
        assert [g.id for g in change.gaps["closed"]] == [gap.id]
        # Two judge runs: the dataset's and the pool candidates'.
        assert since(ws, {}).text == f"Since last time: 2 new dataset version(s) (v1..v2), 2 scoring run(s), {len(on_target)} fill(s) accepted."


def test_verify_flags_a_regression_built_on_purpose(audited, tmp_path, fake_openai):
    """Fills that teach S1 but not S3 dilute S3 under the weak line, set between its share before and after."""
    data, pool = audited
    ours = [ln for ln in data.read_bytes().splitlines(keepends=True)]
    fills = [ln for ln in pool.read_bytes().splitlines(keepends=True) if S1.search(_text(ln)) and not S3.search(_text(ln))]
    s3 = sum(bool(S3.search(_text(ln))) for ln in ours)
    before, after = s3 / len(ours), s3 / (len(ours) + len(fills))
    assert before - after > 0.02
    write(pool, fills)
    with open_ws(tmp_path / "ws", fake_openai, weak_share=(before + after) / 2, weak_relative=0.0) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        asyncio.run(scoring.score(ws))
        add_to_pool(ws, pool)
        gap = next(g for g in asyncio.run(find_gaps(ws)) if g.subgoal_id == "S1")
        result = asyncio.run(fill_from_pool(ws, gap.id, n=50))
        assert result.kept == len(fills)
        review(ws, accept=["all"])
        checked = verify(ws)
        assert "S3" in checked.regressions
        s3_row = next(d for d in checked.gaps[0].regressions if d.id == "S3")
        assert not s3_row.weak_from and s3_row.weak_to
        s1_after = len(fills) / (len(ours) + len(fills))  # the target gained: closed above the weak line, else shrunk
        assert checked.gaps[0].status == ("closed" if s1_after >= (before + after) / 2 else "shrunk")


async def test_the_agent_tools_read_history_diff_and_verify_and_ask_before_a_pool_fill(audited, tmp_path, fake_openai):
    from goalcover.agent.configuration import AgentConfig
    from goalcover.agent.state import State
    from goalcover.agent.tools import BY_NAME, PAID, NoArgs, ToolContext
    from goalcover.agent.tools_iterate import DiffArgs, PoolFillArgs, VerifyArgs

    data, pool = audited
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        await scoring.score(ws)
        add_to_pool(ws, pool)
        gap = next(g for g in await find_gaps(ws) if g.subgoal_id == "S1")
        ctx = ToolContext(ws, State(), AgentConfig.from_workspace(ws))
        requests = fake_openai.stats()["requests"]
        preview = PAID["fill_from_pool"](ctx, PoolFillArgs(gap_id=gap.id))
        assert preview["plan"]["rows"] and "Judge" in preview["question"]
        assert fake_openai.stats()["requests"] == requests  # the preview calls nothing
        filled = await BY_NAME["fill_from_pool"](ctx, PoolFillArgs(gap_id=gap.id))
        review(ws, accept=filled.data["kept_ids"])
        assert PAID["fill_from_pool"](ctx, PoolFillArgs(gap_id=gap.id)) is None  # the rest of the pool is judged already: nothing to ask
        versions = (await BY_NAME["dataset_history"](ctx, NoArgs())).data["versions"]
        assert [v["id"] for v in versions] == ["v1", "v2"] and versions[1]["fills"] == filled.data["kept"]
        changed = (await BY_NAME["diff_versions"](ctx, DiffArgs())).data
        assert changed["from"] == "v1" and [g["id"] for g in changed["gaps"]["closed"]] == [gap.id]
        checked = (await BY_NAME["verify_fill"](ctx, VerifyArgs(gap_id=gap.id))).data
        assert checked["gaps"][0]["status"] == "closed"


def test_members_rebuild_exactly_along_a_chain_of_deltas(tmp_path):
    """Versions alternate small changes and a full list every FULL_EVERY; every one rebuilds exactly."""
    from goalcover.tools.core.store import Store

    store = Store(tmp_path / "s.sqlite")
    members = {f"s{i}": f"h{i}" for i in range(100)}
    expected = {}
    for n in range(hs.FULL_EVERY + 5):
        members = {**members, f"s{n}": f"changed{n}"}
        members.pop(f"s{99 - n}", None)
        row = {"kind": "ingest", "fingerprint": str(n), "samples": len(members), "fills": 0, "sources": []}
        expected[hs.insert_version(store, row, dict(members))] = dict(members)
    for version, members_then in expected.items():
        assert hs.members_of(store, version) == members_then
    bases = [b for (b,) in store.db.execute("SELECT base FROM dataset_versions ORDER BY id")]
    assert bases[0] is None and bases[hs.FULL_EVERY] is None and bases.count(None) == 2  # full at the start and every 20th
    store.close()


def test_effective_support_counts_near_duplicates_once():
    from goalcover.tools.fill.verify import effective_count

    texts = ["Summarize: the service may suspend your account at any time.",
             "Summarize: the service may suspend your account at any time.",
             "Summarize: the service may suspend your account at any time!",
             "Explain the arbitration clause and the class-action waiver in plain words."]
    assert effective_count(texts, 0.92) == 2
    assert effective_count([], 0.92) == 0
