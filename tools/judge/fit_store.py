"""Which text a judgment was made on, for the samples the judge does not read whole as before (issue #23).

A judgment is cached under (sample content hash, subgoal hash, prompt version, model). A sample whose
fitted text differs from what the judge read before (scoring.judge_text gives it a non-empty tag) is
recorded here with that tag when it is judged; a cached judgment of such a sample counts only when its
tag matches the text the judge would read now. Samples judged as before have no row here at all, so
their cache keys, prompts and judgments are exactly what they were.
"""

from __future__ import annotations

from goalcover.tools.core.store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgment_fits (
    sample_hash TEXT NOT NULL,
    subgoal_hash TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    fit TEXT NOT NULL,
    PRIMARY KEY (sample_hash, subgoal_hash, prompt_version, model)
)"""


def _table(store: Store) -> None:
    store.db.execute(_SCHEMA)  # a no-op read once the table exists


def fits_of(store: Store, prompt_version: str, model: str, hashes: list[str]) -> dict[tuple[str, str], str]:
    """{(sample hash, subgoal hash): tag} recorded for these sample contents under one judge."""
    _table(store)
    out: dict[tuple[str, str], str] = {}
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for sample_hash, subgoal_hash, fit in store.db.execute(
            f"SELECT sample_hash, subgoal_hash, fit FROM judgment_fits WHERE prompt_version = ? AND model = ? "
            f"AND sample_hash IN ({marks})", [prompt_version, model, *chunk],
        ):
            out[(sample_hash, subgoal_hash)] = fit
    return out


def save_fits(store: Store, rows: list[dict]) -> None:
    """Record the tag (`fit`) of judgment rows just saved; a row without one clears an older tag (the
    sample is judged as before again). One transaction; rows are scoring's judgment rows."""
    if not rows:
        return
    _table(store)
    if not any(r.get("fit") for r in rows) and store.db.execute("SELECT 1 FROM judgment_fits LIMIT 1").fetchone() is None:
        return  # the usual case: nothing was ever cut, nothing to record or clear
    keys = [(r["sample_hash"], r["subgoal_hash"], r["prompt_version"], r["model"]) for r in rows]
    with store.transaction() as conn:
        conn.executemany(
            "DELETE FROM judgment_fits WHERE sample_hash = ? AND subgoal_hash = ? AND prompt_version = ? AND model = ?", keys
        )
        conn.executemany(
            "INSERT INTO judgment_fits (sample_hash, subgoal_hash, prompt_version, model, fit) VALUES (?, ?, ?, ?, ?)",
            [(*k, r["fit"]) for k, r in zip(keys, rows) if r.get("fit")],
        )
