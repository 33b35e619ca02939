"""What the predictors of `score --predict` learn from: each sample's stored MiniLM vector (384-d, unit
length, read from the index) and, unless `GOALCOVER_PREDICT_WORDS=0`, its words — hashed binary unigram
counts of the sample's text, L2-normalised (scikit-learn's HashingVectorizer: stateless, so nothing but the
text is needed to rebuild a row, on the driver or on a Ray worker).

Why words as well as the vector: a judge's verdict often turns on what the text says in so many words
("mentions a termination clause", "returns a number"), which a 384-d sentence vector of the whole sample
blurs. Linear models on hashed n-grams are the field's cheap quality classifiers (fastText-style filters,
Joulin et al. 2017; DCLM's fastText filter, Li et al. 2024), and a logistic regression on both views at once
gains where either is weak: on bench_cascade's keyword oracle at 10⁴ samples the widest subgoal's saving at
1,000 judged rose from 2.00× (the joined text's vector alone) to 3.38× (with its words), 10 draws
(evals/cascade_limits.py --representations; evals/README.md, h28j).

A long text's words are taken from its first and last WORD_CHARS characters, so a long prompt does not hide
the response; the sample's text is the same view the judge and the index read (Sample.text).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

WORD_FEATURES = 2**18  # hashed unigram buckets; collisions at 2^18 are rare for one sample's few hundred words
WORD_CHARS = 20_000  # characters read from each end of a long text
TEXT_CHUNK = 500  # sample texts read from the store at a time


def words(texts: list[str]) -> sparse.csr_matrix:
    """Hashed binary unigram counts of `texts` (m strings): csr float32 (m, WORD_FEATURES), each row of
    unit L2 norm (an empty text gives a zero row). Texts longer than 2·WORD_CHARS keep both ends."""
    from sklearn.feature_extraction.text import HashingVectorizer

    clipped = [t if len(t) <= 2 * WORD_CHARS else t[:WORD_CHARS] + "\n" + t[-WORD_CHARS:] for t in texts]
    hashing = HashingVectorizer(n_features=WORD_FEATURES, alternate_sign=False, binary=True, norm="l2",
                                dtype=np.float32)
    return hashing.transform(clipped).tocsr()


@dataclass
class Features:
    """The predictors' design matrix for m samples, kept as two blocks so 10⁶ rows never become one dense
    (m, 384 + 2^18) array: `vectors` float32 (m, d) and `words` csr float32 (m, D) or None. Supports what
    ppi.Predictor and the regressor use: len(), row selection (`x[rows]`, a slice or an index array) and
    `x @ w` for w of shape (d [+ D],) or (d [+ D], K); `matrix()` gives the joined (m, d + D) matrix
    (sparse with words) that scikit-learn fits on."""

    vectors: np.ndarray
    words: sparse.csr_matrix | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(m, d + D): rows, and the joined matrix's columns."""
        return len(self.vectors), self.vectors.shape[1] + (self.words.shape[1] if self.words is not None else 0)

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, rows) -> "Features":
        return Features(self.vectors[rows], self.words[rows] if self.words is not None else None)

    def __matmul__(self, w: np.ndarray) -> np.ndarray:
        d = self.vectors.shape[1]
        out = self.vectors @ w[:d]
        if self.words is not None:
            out = out + self.words @ w[d:]
        return np.asarray(out)

    def matrix(self) -> np.ndarray | sparse.csr_matrix:
        """(m, d + D): the vectors alone (dense), or both blocks side by side (csr float32)."""
        if self.words is None:
            return self.vectors
        return sparse.hstack([sparse.csr_matrix(self.vectors), self.words], format="csr", dtype=np.float32)


def as_matrix(x) -> np.ndarray | sparse.csr_matrix:
    """`x` as scikit-learn takes it: Features.matrix() for Features, else `x` unchanged."""
    return x.matrix() if isinstance(x, Features) else x


class FeatureTable:
    """Every distinct sample content's features, built once per `predict` call: `hashes` (m content hashes),
    `vectors` float32 (m, d), `words` csr (m, D) or None. `rows(hashes)` selects by content hash (an
    unknown hash — a sample missing from the index — gets a zero vector and its words, if read)."""

    def __init__(self, hashes: list[str], vectors: np.ndarray, words_matrix: sparse.csr_matrix | None) -> None:
        self.hashes = hashes
        self.position = {h: k for k, h in enumerate(hashes)}
        self.all = Features(vectors, words_matrix)

    @property
    def dim(self) -> int:
        """Columns of the joined matrix (d + D)."""
        return self.all.shape[1]

    def rows(self, hashes: list[str]) -> Features:
        """Features of `hashes` (k,) in that order; every hash must be one of the table's."""
        return self.all[np.array([self.position[h] for h in hashes], dtype=np.int64)]


def features_key(ws) -> str:
    """What the predictors learn from, as part of their training fingerprint: "" for the vectors alone, "+words"
    with the words (so turning GOALCOVER_PREDICT_WORDS on or off refits instead of reusing)."""
    return "+words" if ws.settings.predict_words else ""


def feature_table(ws, by_id: dict[str, str], given: dict[str, np.ndarray] | None = None) -> FeatureTable:
    """Features of every distinct content of the workspace `ws`, with `by_id` (sample id -> content hash):
    the index's vectors (or `given`, sample id -> vector, as benchmarks pass) and, when
    `ws.settings.predict_words`, the words of each content's first sample's text (read from the store
    TEXT_CHUNK at a time). A content missing from the index gets a zero vector."""
    from goalcover.tools.measure.strata import sample_vectors

    first: dict[str, str] = {}
    for i in sorted(by_id):
        first.setdefault(by_id[i], i)
    hashes = list(first)
    got = given if given is not None else sample_vectors(ws, list(first.values()))
    dim = len(next(iter(got.values()))) if got else 384
    zero = np.zeros(dim, dtype=np.float32)
    vectors = (np.stack([np.asarray(got.get(first[h], zero), dtype=np.float32) for h in hashes])
               if hashes else np.zeros((0, dim), np.float32))
    words_matrix = None
    if ws.settings.predict_words:
        ids = [first[h] for h in hashes]
        text_of: dict[str, str] = {}
        for start in range(0, len(ids), TEXT_CHUNK):  # the text column alone: no record parsed
            chunk = ids[start:start + TEXT_CHUNK]
            marks = ",".join("?" * len(chunk))
            text_of.update(ws.store.db.execute(f"SELECT id, text FROM samples WHERE id IN ({marks})", chunk))
        words_matrix = words([text_of.get(i, "") for i in ids])
    return FeatureTable(hashes, vectors, words_matrix)
