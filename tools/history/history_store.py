"""The workspace's history tables: dataset versions and coverage snapshots (a few rows each, never a copy of the data).

A version stores its members — (sample id, content hash) pairs — as a zlib-compressed JSON delta against the
version before it (a full list every FULL_EVERY versions, or when the delta would be as big), so an unchanged
re-ingest adds nothing and a fill of 50 samples adds a few kilobytes. The tables are created on first use through
the workspace's own `Store` connection (`CREATE TABLE IF NOT EXISTS`), apart from store.py's schema.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from goalcover.tools.core.store import Store

# A full member list at least this often along a chain of deltas, so rebuilding a version reads few rows.
FULL_EVERY = 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    kind TEXT NOT NULL,
    note TEXT,
    fingerprint TEXT NOT NULL,
    samples INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    sources TEXT NOT NULL,
    base INTEGER,
    depth INTEGER NOT NULL DEFAULT 0,
    members BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS coverage_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version_id INTEGER NOT NULL,
    run_id INTEGER,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    judge TEXT NOT NULL,
    coverage TEXT NOT NULL,
    gaps TEXT
);
CREATE INDEX IF NOT EXISTS coverage_snapshots_version ON coverage_snapshots (version_id, id);
"""

def _db(store: Store):
    """The store's connection, with the history tables created on this Store's first use (outside any
    transaction: executescript commits)."""
    if not getattr(store, "_history_ready", False):
        store.db.executescript(SCHEMA)
        store._history_ready = True  # type: ignore[attr-defined]
    return store.db


def pack(members: dict[str, str] | None = None, drop: list[str] | None = None) -> bytes:
    """zlib(JSON) of {"set": [[id, content hash], ...] sorted, "drop": [ids]}."""
    body = {"set": sorted((members or {}).items()), "drop": sorted(drop or [])}
    return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6)


def unpack(blob: bytes) -> tuple[dict[str, str], list[str]]:
    """The (set members, dropped ids) a `pack` blob holds."""
    body = json.loads(zlib.decompress(blob))
    return {i: h for i, h in body["set"]}, body["drop"]


def latest_version(store: Store) -> dict[str, Any] | None:
    """The newest version row (without its members), or None before any."""
    rows = version_rows(store, newest_first=True, limit=1)
    return rows[0] if rows else None


COLUMNS = ("id", "created_at", "kind", "note", "fingerprint", "samples", "fills", "sources")


def version_rows(store: Store, *, newest_first: bool = False, limit: int = -1) -> list[dict[str, Any]]:
    """Version rows as dicts of COLUMNS (`sources` decoded), oldest first unless `newest_first`."""
    order = "DESC" if newest_first else "ASC"
    rows = _db(store).execute(f"SELECT {', '.join(COLUMNS)} FROM dataset_versions ORDER BY id {order} LIMIT ?", (limit,))
    return [{**dict(zip(COLUMNS, r)), "sources": json.loads(r[-1])} for r in rows]


def insert_version(store: Store, row: dict[str, Any], members: dict[str, str]) -> int:
    """Add a version (row: kind, note, fingerprint, samples, fills, sources) with its full `members`
    (id -> content hash), stored as a delta against the newest version where that is smaller. One
    transaction; returns the new id."""
    _db(store)
    with store.transaction() as conn:
        last = conn.execute("SELECT id, depth FROM dataset_versions ORDER BY id DESC LIMIT 1").fetchone()
        base, depth, blob = None, 0, pack(members)
        if last is not None and last[1] + 1 < FULL_EVERY:
            before = members_of(store, last[0])
            changed = {i: h for i, h in members.items() if before.get(i) != h}
            dropped = [i for i in before if i not in members]
            if len(changed) + len(dropped) < len(members) // 2 + 1:
                base, depth, blob = last[0], last[1] + 1, pack(changed, dropped)
        cur = conn.execute(
            "INSERT INTO dataset_versions (kind, note, fingerprint, samples, fills, sources, base, depth, members) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row["kind"], row.get("note"), row["fingerprint"], row["samples"], row["fills"], json.dumps(row["sources"]),
             base, depth, blob),
        )
        return int(cur.lastrowid)


def members_of(store: Store, version_id: int) -> dict[str, str]:
    """id -> content hash of every member of a version, rebuilt from its chain of deltas. Raises KeyError
    for an unknown version."""
    chain: list[bytes] = []
    current: int | None = version_id
    while current is not None:
        row = _db(store).execute("SELECT base, members FROM dataset_versions WHERE id = ?", (current,)).fetchone()
        if row is None:
            raise KeyError(version_id)
        chain.append(row[1])
        current = row[0]
    members: dict[str, str] = {}
    for blob in reversed(chain):
        changed, dropped = unpack(blob)
        for i in dropped:
            members.pop(i, None)
        members.update(changed)
    return members


def insert_snapshot(store: Store, version_id: int, run_id: int | None, judge: dict, coverage: list[dict],
                    gaps: list[dict] | None) -> int:
    """Record one scoring run's coverage (per subgoal dicts) and, when known, the gaps, for a version."""
    cur = _db(store).execute(
        "INSERT INTO coverage_snapshots (version_id, run_id, judge, coverage, gaps) VALUES (?, ?, ?, ?, ?)",
        (version_id, run_id, json.dumps(judge), json.dumps(coverage), None if gaps is None else json.dumps(gaps)),
    )
    return int(cur.lastrowid)


def set_snapshot_gaps(store: Store, snapshot_id: int, gaps: list[dict]) -> None:
    """Attach the gaps found after a scoring run to its snapshot."""
    _db(store).execute("UPDATE coverage_snapshots SET gaps = ? WHERE id = ?", (json.dumps(gaps), snapshot_id))


SNAPSHOT_COLUMNS = ("id", "version_id", "run_id", "created_at", "judge", "coverage", "gaps")


def snapshot_rows(store: Store, version_id: int | None = None) -> list[dict[str, Any]]:
    """Snapshots (JSON columns decoded), oldest first, of one version or all."""
    rows = _db(store).execute(
        f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM coverage_snapshots WHERE (? IS NULL OR version_id = ?) ORDER BY id",
        (version_id, version_id),
    )
    out = []
    for r in rows:
        row = dict(zip(SNAPSHOT_COLUMNS, r))
        row["judge"], row["coverage"] = json.loads(row["judge"]), json.loads(row["coverage"])
        row["gaps"] = None if row["gaps"] is None else json.loads(row["gaps"])
        out.append(row)
    return out


def runs_since(store: Store, since: str) -> list[dict[str, Any]]:
    """(kind, status, started_at) of the runs started after the UTC time `since` ('YYYY-MM-DD HH:MM:SS')."""
    rows = store.db.execute("SELECT kind, status, started_at FROM runs WHERE started_at > ? ORDER BY id", (since,))
    return [{"kind": k, "status": s, "started_at": t} for k, s, t in rows]
