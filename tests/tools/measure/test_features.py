"""The predictors' features (tools/measure/features.py): the stored vector and the text's hashed words."""

from __future__ import annotations

import asyncio

import numpy as np

from goalcover.tools.measure.features import WORD_CHARS, WORD_FEATURES, Features, words
from goalcover.tools.measure.ppi import fit
from goalcover.tools.measure.predict import predict
from goalcover.tools.measure.sampled import score_sampled
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.support.workspaces import contracts_workspace


def _column(word: str) -> int:
    return int(words([word]).indices[0])


def test_a_long_texts_words_come_from_both_ends():
    text = "openingword " + "filler " * (WORD_CHARS // 7) + "middleword " + "filler " * (WORD_CHARS // 7) + "closingword"
    row = words([text])
    assert row.shape == (1, WORD_FEATURES)
    seen = set(row.indices.tolist())
    assert _column("openingword") in seen and _column("closingword") in seen  # the response, after a long prompt
    assert _column("middleword") not in seen
    assert abs(float(row.multiply(row).sum()) - 1.0) < 1e-5 and words([""]).nnz == 0


def test_features_select_rows_and_multiply_as_their_joined_matrix():
    rng = np.random.default_rng(0)
    x = Features(rng.normal(size=(6, 4)).astype(np.float32), words(["a b", "b c", "", "d", "a d", "c"]))
    w = rng.normal(size=(x.shape[1], 3))
    np.testing.assert_allclose(x @ w, x.matrix() @ w, rtol=1e-5)
    np.testing.assert_allclose(x[[4, 1]] @ w[:, 0], (x.matrix() @ w[:, 0])[[4, 1]], rtol=1e-5)
    assert len(x[1:3]) == 2 and x.shape == (6, 4 + WORD_FEATURES)
    assert Features(x.vectors).matrix() is x.vectors  # without words: the vectors, dense


def test_a_verdict_that_turns_on_a_word_is_learned_from_the_words_not_the_vectors():
    rng = np.random.default_rng(3)
    n = 600
    vectors = rng.normal(size=(n, 16)).astype(np.float32)  # carry nothing about the verdict
    y = rng.random(n) < 0.3
    vocabulary = [f"w{k}" for k in range(300)]
    texts = [" ".join(rng.choice(vocabulary, 30)) + (" indemnify" if hit else "") for hit in y]
    alone = fit(vectors, y)
    both = fit(Features(vectors, words(texts)), y)
    assert alone.auc < 0.65 and both.auc > 0.95 and not both.chance
    assert both.predict(Features(vectors, words(texts))).shape == (n,)


def test_the_words_are_part_of_the_predictors_fingerprint(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with contracts_workspace(tmp_path, fake_openai, 160) as ws:
        asyncio.run(score_sampled(ws, n=80))
        assert ws.settings.predict_words
        with_words = predict(ws)
        assert with_words.refit and not predict(ws).refit
        ws.settings.predict_words = False  # GOALCOVER_PREDICT_WORDS=0: the vectors alone, so a refit
        alone = predict(ws)
        assert alone.refit and not predict(ws).refit
        assert [t.id for t in alone.targets] == [t.id for t in with_words.targets]
