"""The tables of `score --predict`: one fitted predictor per target and judge, and one prediction (and
cascade decision) per sample content × target × judge.

Keyed like judgments — by content hash, the target's hash (a subgoal's hash, or the off-goal target's hash
of all subgoal hashes) and the judge (prompt version, model) — so an edited subgoal or another judge never
reuses them, and `trained` (a fingerprint of the judged sample the predictor learned from) says whether the
stored predictions are still those of the current fit. Created on first use through the workspace's Store
connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from goalcover.tools.core.workspace import Workspace

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictors (
    target_hash TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    target_id TEXT NOT NULL,
    trained TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (target_hash, prompt_version, model)
);
CREATE TABLE IF NOT EXISTS predictions (
    sample_hash TEXT NOT NULL,
    target_hash TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    trained TEXT NOT NULL,
    p REAL NOT NULL CHECK (p BETWEEN 0 AND 1),
    score REAL,
    decision INTEGER CHECK (decision IN (0, 1)),
    decided_by TEXT NOT NULL CHECK (decided_by IN ('judge', 'predictor', 'pending')),
    p_decide REAL,
    PRIMARY KEY (sample_hash, target_hash, prompt_version, model)
);
"""


def _ensure(ws: Workspace) -> None:
    ws.store.db.executescript(SCHEMA)
    columns = {row[1] for row in ws.store.db.execute("PRAGMA table_info(predictions)")}
    if "p_decide" not in columns:  # a workspace from before h28k: its decisions came from `p`
        ws.store.db.execute("ALTER TABLE predictions ADD COLUMN p_decide REAL")


def predictor(ws: Workspace, target_hash: str, version: str, model: str) -> tuple[str, dict] | None:
    """(trained fingerprint, detail dict) of the stored predictor of one target for one judge, or None."""
    _ensure(ws)
    row = ws.store.db.execute(
        "SELECT trained, detail FROM predictors WHERE target_hash = ? AND prompt_version = ? AND model = ?",
        (target_hash, version, model)).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def save(ws: Workspace, target_hash: str, target_id: str, version: str, model: str, trained: str, detail: dict,
         rows: Iterable[tuple[str, float, float | None, int | None, str, float | None]]) -> None:
    """Replace one target's predictor and its predictions in one transaction: `rows` are (sample hash, P,
    predicted score or None, decision 0/1 or None, decided_by, the cascade's decision P or None where `P`
    decided)."""
    _ensure(ws)
    with ws.store.transaction() as conn:
        conn.execute("DELETE FROM predictions WHERE target_hash = ? AND prompt_version = ? AND model = ?",
                     (target_hash, version, model))
        conn.executemany(
            "INSERT INTO predictions (sample_hash, target_hash, prompt_version, model, trained, p, score, decision, decided_by, "
            "p_decide) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(h, target_hash, version, model, trained, p, s, d, by, pd) for h, p, s, d, by, pd in rows])
        conn.execute(
            "INSERT OR REPLACE INTO predictors (target_hash, prompt_version, model, target_id, trained, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (target_hash, version, model, target_id, trained, json.dumps(detail)))


def save_detail(ws: Workspace, target_hash: str, version: str, model: str, detail: dict) -> None:
    """Rewrite a stored predictor's detail (its interval, thresholds, quality) without touching predictions."""
    _ensure(ws)
    ws.store.db.execute("UPDATE predictors SET detail = ? WHERE target_hash = ? AND prompt_version = ? AND model = ?",
                        (json.dumps(detail), target_hash, version, model))


def update_decisions(ws: Workspace, target_hash: str, version: str, model: str,
                     rows: Iterable[tuple[int | None, str, float | None, str]]) -> None:
    """Set (decision, decided_by, decision P) per sample hash: `rows` are (decision, decided_by, the cascade's
    decision P or None, sample hash)."""
    _ensure(ws)
    with ws.store.transaction() as conn:
        conn.executemany(
            "UPDATE predictions SET decision = ?, decided_by = ?, p_decide = ? WHERE sample_hash = ? AND target_hash = ? "
            "AND prompt_version = ? AND model = ?",
            [(d, by, pd, h, target_hash, version, model) for d, by, pd, h in rows])


def predictions(ws: Workspace, target_hash: str, version: str, model: str) -> dict[str, tuple[float, float | None, int | None, str]]:
    """sample hash -> (P, predicted score, decision, decided_by) of one target's stored predictions."""
    _ensure(ws)
    return {h: (p, s, d, by) for h, p, s, d, by in ws.store.db.execute(
        "SELECT sample_hash, p, score, decision, decided_by FROM predictions WHERE target_hash = ? AND prompt_version = ? AND model = ?",
        (target_hash, version, model))}


def decision_ps(ws: Workspace, target_hash: str, version: str, model: str) -> dict[str, float | None]:
    """sample hash -> the cascade's decision P (decide.py) of one target, None where `p` decided."""
    _ensure(ws)
    return dict(ws.store.db.execute(
        "SELECT sample_hash, p_decide FROM predictions WHERE target_hash = ? AND prompt_version = ? AND model = ?",
        (target_hash, version, model)))


def clear_decision_ps(ws: Workspace, target_hash: str, version: str, model: str) -> None:
    """Forget one target's stored decision P (no decision predictor decides it now: `p` does)."""
    _ensure(ws)
    ws.store.db.execute("UPDATE predictions SET p_decide = NULL WHERE target_hash = ? AND prompt_version = ? AND model = ? "
                        "AND p_decide IS NOT NULL", (target_hash, version, model))


def count(ws: Workspace, target_hash: str, version: str, model: str, trained: str) -> int:
    """How many stored predictions of one target come from the fit `trained`."""
    _ensure(ws)
    return ws.store.db.execute(
        "SELECT COUNT(*) FROM predictions WHERE target_hash = ? AND prompt_version = ? AND model = ? AND trained = ?",
        (target_hash, version, model, trained)).fetchone()[0]
