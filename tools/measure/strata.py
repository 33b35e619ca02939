"""The sample design of an estimated audit: strata from the samples' source files and embedding clusters,
and a stratified random draw with proportional allocation that can grow without redrawing.

The design is saved in the workspace (meta `sample_design`): each stratum's samples in one random order,
and how many of each have been drawn. Drawing more extends every stratum's prefix, so a `--target-width`
run or a later `--sample 400` after `--sample 100` keeps (and never pays again for) what it already drew.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict

import numpy as np
from pydantic import BaseModel, Field

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.workspace import Workspace

DESIGN_KEY = "sample_design"
# Each stratum should expect at least this many draws: a stratum's variance needs two, and a few more keep
# the stratified interval's effective sample size stable.
MIN_PER_STRATUM = 10
MAX_CLUSTERS = 8
VECTOR_CHUNK = 2000


class SampleDesign(BaseModel):
    """A stratified random sample of the dataset: strata (label -> sample ids in random order), how many of
    each are drawn (a prefix of that order), the seed, and a fingerprint of the dataset it was drawn from."""

    seed: int
    dataset: str = Field(description="hash of the sorted sample ids the design covers")
    strata: dict[str, list[str]]
    drawn: dict[str, int]

    @property
    def population(self) -> int:
        """N, the samples in the dataset."""
        return sum(len(ids) for ids in self.strata.values())

    @property
    def size(self) -> int:
        """n, the samples drawn so far."""
        return sum(self.drawn.values())

    def drawn_ids(self) -> list[str]:
        """The ids drawn so far, stratum by stratum."""
        return [i for label, ids in self.strata.items() for i in ids[: self.drawn[label]]]


def dataset_fingerprint(ids: list[str]) -> str:
    """A short hash of the sorted sample ids: a design is stale once the dataset changes."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Proportional allocation of n draws over strata of `sizes` (Cochran 1977, §5.4), rounded by largest
    remainder (Hamilton's method) so the total is exactly min(n, N); each stratum gets at most its size."""
    total = sum(sizes.values())
    n = min(n, total)
    exact = {h: n * size / total for h, size in sizes.items()}
    counts = {h: min(sizes[h], math.floor(x)) for h, x in exact.items()}
    for h in sorted(sizes, key=lambda h: exact[h] - math.floor(exact[h]), reverse=True):
        if sum(counts.values()) >= n:
            break
        if counts[h] < sizes[h]:
            counts[h] += 1
    return counts


def sample_vectors(ws: Workspace, ids: list[str]) -> dict[str, np.ndarray]:
    """The samples' embeddings as stored in Chroma (id -> unit vector), fetched VECTOR_CHUNK at a time."""
    vectors: dict[str, np.ndarray] = {}
    collection = ws.index.collection()
    for start in range(0, len(ids), VECTOR_CHUNK):
        got = collection.get(ids=ids[start : start + VECTOR_CHUNK], include=["embeddings"])
        vectors.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
    return vectors


def cluster_labels(ws: Workspace, ids: list[str], k: int, seed: int, vectors: dict[str, np.ndarray] | None = None) -> list[int]:
    """k-means (scikit-learn; MiniBatchKMeans above 20,000 samples) on the samples' embeddings (`vectors`,
    default fetched from Chroma). Samples missing from the index share cluster -1."""
    if k <= 1:
        return [0] * len(ids)
    vectors = sample_vectors(ws, ids) if vectors is None else vectors
    known = [i for i in ids if i in vectors]
    if len(known) <= k:
        return [0] * len(ids)
    from sklearn.cluster import KMeans, MiniBatchKMeans

    matrix = np.stack([vectors[i] for i in known])
    model = (MiniBatchKMeans(k, random_state=seed, n_init=3) if len(known) > 20_000 else KMeans(k, random_state=seed, n_init=3))
    labels = dict(zip(known, model.fit_predict(matrix).tolist()))
    return [labels.get(i, -1) for i in ids]


def make_strata(ws: Workspace, sources: dict[str, str], n: int, seed: int,
                vectors: dict[str, np.ndarray] | None = None) -> dict[str, list[str]]:
    """Strata = source file × embedding cluster, with k = n / (MIN_PER_STRATUM · sources) clusters (1-8) so
    that every stratum expects about MIN_PER_STRATUM draws; strata that would get fewer than two draws are
    pooled into one. `sources` maps sample id -> source file. Returns label -> ids in a seeded random
    order (`shuffle`)."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for sample_id, source in sources.items():
        by_source[source].append(sample_id)
    k = max(1, min(MAX_CLUSTERS, n // (MIN_PER_STRATUM * len(by_source))))
    strata: dict[str, list[str]] = {}
    for si, (source, ids) in enumerate(sorted(by_source.items())):
        ids = sorted(ids)
        for i, label in zip(ids, cluster_labels(ws, ids, k, seed, vectors)):
            strata.setdefault(f"src{si}/c{label}", []).append(i)
    total = len(sources)
    small = [h for h, ids in strata.items() if n * len(ids) / total < 2]
    if len(small) > 1 or (small and len(strata) > 1):
        pooled = [i for h in small for i in strata.pop(h)]
        if strata and n * len(pooled) / total < 2:  # still too small: join the largest stratum
            strata[max(strata, key=lambda h: len(strata[h]))].extend(pooled)
        else:
            strata["pooled"] = pooled
    return shuffle(strata, seed)


def shuffle(strata: dict[str, list[str]], seed: int) -> dict[str, list[str]]:
    """Each stratum's ids (sorted first, for reproducibility) in a random order from `seed`: drawing n_h
    from a stratum is taking the first n_h, a simple random sample without replacement."""
    rng = np.random.default_rng(seed)
    out = {}
    for h, ids in sorted(strata.items()):
        ids = sorted(ids)
        out[h] = [ids[j] for j in rng.permutation(len(ids))]
    return out


def current_design(ws: Workspace, sources: dict[str, str] | None = None) -> SampleDesign | None:
    """The saved design if it still matches the dataset (`sources`: id -> source, default read from the
    store without loading the samples), else None."""
    saved = ws.store.get_meta(DESIGN_KEY)
    if not saved:
        return None
    design = SampleDesign.model_validate(saved)
    sources = sample_sources(ws) if sources is None else sources
    return design if design.dataset == dataset_fingerprint(list(sources)) else None


def sample_sources(ws: Workspace) -> dict[str, str]:
    """Every sample's id -> its source file, from the store (no sample text is read)."""
    return {i: source for i, (_, source) in ws.store.sample_hashes().items()}


def draw(ws: Workspace, n: int, seed: int = 0) -> SampleDesign:
    """Draw (or grow the saved draw to) a stratified random sample of n samples with proportional
    allocation, save the design and return it. A stratum never shrinks: n below what was drawn before keeps
    the earlier draw. Raises BadInput when n < 1 or the workspace has no samples."""
    if n < 1:
        raise BadInput(f"--sample {n}: give a number of samples of at least 1")
    sources = sample_sources(ws)
    if not sources:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    design = current_design(ws, sources)
    if design is None:
        strata = make_strata(ws, sources, n, seed)
        design = SampleDesign(seed=seed, dataset=dataset_fingerprint(list(sources)), strata=strata,
                              drawn={h: 0 for h in strata})
    wanted = allocate({h: len(ids) for h, ids in design.strata.items()}, n)
    design.drawn = {h: max(design.drawn.get(h, 0), wanted[h]) for h in design.strata}
    ws.store.set_meta(DESIGN_KEY, design.model_dump())
    return design
