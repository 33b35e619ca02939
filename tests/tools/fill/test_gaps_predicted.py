"""Gap analysis after a cascade (`score --predict --min-precision`): the samples the predictor decided weak
join the gaps, and the gaps report says how many weak samples were judged vs predicted with the cascade's
estimated precision/recall of "weak". Real contracts data, the fake endpoint's topical judge."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from typer.testing import CliRunner

from goalcover.tools.fill.gaps import find_gaps
from goalcover.tools.fill.gaps_predicted import predicted_weak, weak_counts
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import sample_scores
from goalcover.tools.measure.predict import predict
from goalcover.tools.measure.sampled import score_sampled
from goalcover.ui.cli import app
from tests.support.judges import CONTRACT_PATTERNS, topic_of, topical_judge
from tests.support.workspaces import contracts_workspace, prepared_contracts

N = 160
CLI_N, CLI_SAMPLE = 400, "200"  # see tests/tools/measure/test_predict.py


def test_predicted_weak_samples_join_their_nearest_gap_with_stated_precision(tmp_path, fake_openai):
    fake_openai.rules.append(topical_judge(CONTRACT_PATTERNS))
    # 80 judged: too few for confidence bounds (ppi.bounded_thresholds); the point-estimate rule decides here.
    with contracts_workspace(tmp_path, fake_openai, N, cascade_confidence=0) as ws:
        asyncio.run(score_sampled(ws, n=80))
        final = predict(ws, min_precision=0.9)  # the cascade's decisions, its band not judged yet
        weak = predicted_weak(ws)
        assert any(ids for ids, _ in weak.values()), [(t.id, t.chance) for t in final.targets]
        judged_ids = set(sample_scores(ws)[0])
        gaps = asyncio.run(find_gaps(ws))
        counts = {c.subgoal_id: c for c in weak_counts(ws, gaps)}
        texts = {s.id: s.text for s in ws.store.samples(list(ws.store.sample_hashes()))}
        agree = placed_total = 0
        for subgoal_id, (ids, row) in weak.items():
            scores, _ = sample_scores(ws)
            # Decided by the predictor: never judged on this subgoal.
            assert all(subgoal_id not in scores.get(i, {}) for i in ids)
            mine = [g for g in gaps if g.subgoal_id == subgoal_id]
            placed = [i for g in mine for i in g.predicted_ids]
            assert len(placed) == len(set(placed)) and set(placed) <= set(ids)  # each in one gap at most
            assert all(g.predicted_size == len(g.predicted_ids) for g in mine)
            if subgoal_id in counts:
                c = counts[subgoal_id]
                assert c.predicted == len(ids) and c.in_gaps == len(placed)
                assert c.est_precision == row.est_precision_weak and c.est_recall == row.est_recall_weak
                assert c.judged == sum(1 for i in judged_ids if scores[i].get(subgoal_id, (9,))[0] < ws.settings.support_threshold)
            for g in mine:
                if g.kind == "cluster" and g.predicted_ids:
                    # The gap's judged members are one topic (their explanations say so); the predicted ones,
                    # placed by their embeddings, share it far more often than chance (1 in 5 gaps).
                    topic = Counter(topic_of(texts[m]) for m in g.member_ids).most_common(1)[0][0]
                    agree += sum(topic_of(texts[i]) == topic for i in g.predicted_ids)
                    placed_total += len(g.predicted_ids)
        assert placed_total >= 10 and agree / placed_total >= 0.45, (agree, placed_total)
        # The predicted "weak" decisions hold up against judging everything, about as estimated.
        asyncio.run(scoring.score(ws))
        scores, _ = sample_scores(ws)
        for subgoal_id, (ids, row) in weak.items():
            if ids:
                true_weak = sum(scores[i][subgoal_id][0] < ws.settings.support_threshold for i in ids) / len(ids)
                assert true_weak >= min(0.9, row.est_precision_weak) - 0.15, (subgoal_id, true_weak, row.est_precision_weak)



def test_cli_gaps_states_judged_vs_predicted_weak_samples(tmp_path, fake_openai, monkeypatch):
    fake_openai.rules.append(topical_judge(CONTRACT_PATTERNS))
    _, env = prepared_contracts(tmp_path, "ws", fake_openai, CLI_N)
    env = {k: v for k, v in env.items() if k.startswith(("GOALCOVER_", "OPENAI_"))}
    env["GOALCOVER_CASCADE_CONFIDENCE"] = "0"  # 200 judged: the point-estimate rule (ppi.thresholds) decides
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    scored = runner.invoke(app, ["score", "--sample", CLI_SAMPLE, "--predict", "--min-precision", "0.9"], env=env)
    assert scored.exit_code == 0, scored.output
    got = runner.invoke(app, ["gaps", "--json"], env=env)
    assert got.exit_code == 0, got.output
    payload = json.loads(got.stdout)
    assert all("predicted_ids" not in g for g in payload["gaps"])
    predicted = [w for w in payload["weak"] if w["predicted"]]
    assert predicted and all(w["est_precision"] is not None for w in predicted)
    assert sum(g["predicted_size"] for g in payload["gaps"]) == sum(w["in_gaps"] for w in payload["weak"]) > 0
    calls = fake_openai.stats()["completions"]
    text = runner.invoke(app, ["gaps"], env=env)
    assert text.exit_code == 0, text.output
    assert fake_openai.stats()["completions"] == calls  # labels cached: nothing paid again
    assert "predicted by the cascade (est. precision" in text.stdout and " predicted" in text.stdout


def test_without_a_cascade_gaps_are_the_judges_alone(tmp_path, fake_openai):
    fake_openai.rules.append(topical_judge(CONTRACT_PATTERNS))
    with contracts_workspace(tmp_path, fake_openai, 40) as ws:
        asyncio.run(scoring.score(ws))
        gaps = asyncio.run(find_gaps(ws))
        assert gaps and all(g.predicted_size == 0 and not g.predicted_ids for g in gaps)
        assert predicted_weak(ws) == {}
        assert all(c.predicted == 0 and c.est_precision is None for c in weak_counts(ws, gaps))
