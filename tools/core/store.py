"""The workspace's SQLite file: samples, goal, judgments, gaps, runs — the project's durable state.

WAL mode and one short transaction per write, so a judgment is on disk the moment it arrives and a
killed process loses nothing it was told.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from goalcover.tools.core.shapes import Sample
from goalcover.tools.core.store_judgments import SUPPORTS, TEXT_CHARS, JudgmentStore  # noqa: F401 (SUPPORTS: re-exported)
from goalcover.tools.data.values import from_storable, to_storable

# Meta key of a committed ingest whose index changes are not all applied yet (see dataset.finish_ingest).
INGEST_PENDING = "ingest_pending"
SAMPLE_COLUMNS = "id, format, source, line, part, record, raw, text"


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY, file_type TEXT NOT NULL, shape TEXT NOT NULL, position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    line INTEGER NOT NULL,
    format TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    record TEXT NOT NULL,
    raw TEXT,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_source ON samples (source, position);
-- Covers the joins to judgments by content (coverage, scores, plans) without reading the samples' texts.
CREATE INDEX IF NOT EXISTS samples_content ON samples (content_hash, id);
-- The judgment cache: keyed by what was judged, not by where it sits, so an unchanged pair is never paid twice.
CREATE TABLE IF NOT EXISTS judgments (
    sample_hash TEXT NOT NULL,
    subgoal_hash TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    subgoal_id TEXT NOT NULL,
    score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    explanation TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- G-Eval: the score weighted by the probabilities of its digit token, when logprobs were asked for.
    weighted_score REAL CHECK (weighted_score BETWEEN 1 AND 5),
    PRIMARY KEY (sample_hash, subgoal_hash, prompt_version, model)
);
CREATE TABLE IF NOT EXISTS judgment_failures (
    sample_hash TEXT NOT NULL,
    subgoal_hash TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    subgoal_id TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (sample_hash, subgoal_hash, prompt_version, model)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    detail TEXT NOT NULL DEFAULT '{}'
);
-- LLM answers that are pure functions of their input (cluster labels, …), so reruns cost nothing.
CREATE TABLE IF NOT EXISTS llm_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS synthetic (
    id TEXT PRIMARY KEY,
    gap_id TEXT NOT NULL,
    subgoal_id TEXT NOT NULL,
    format TEXT NOT NULL,
    record TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    judge_score INTEGER,
    judge_explanation TEXT,
    state TEXT NOT NULL DEFAULT 'proposed' CHECK (state IN ('proposed', 'accepted', 'rejected')),
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- An ingest in progress: its samples, staged here until one transaction swaps them in (atomic ingest).
CREATE TABLE IF NOT EXISTS ingest_staging (
    id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    line INTEGER NOT NULL,
    part TEXT,
    format TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    record TEXT NOT NULL,
    raw TEXT,
    text TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'changed', 'unchanged'))
);
-- Ids the committed ingest removed, until their vectors are gone from the index too.
CREATE TABLE IF NOT EXISTS ingest_removed (id TEXT PRIMARY KEY);
-- The user's own verdicts on judgments they spot-checked (`goalcover calibrate`): one per pair, by content,
-- with the judge's score they were shown (judge_model / prompt_version say which judge that was).
CREATE TABLE IF NOT EXISTS labels (
    sample_hash TEXT NOT NULL,
    subgoal_hash TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    subgoal_id TEXT NOT NULL,
    user_score INTEGER NOT NULL CHECK (user_score BETWEEN 1 AND 5),
    judge_score INTEGER NOT NULL CHECK (judge_score BETWEEN 1 AND 5),
    judge_model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (sample_hash, subgoal_hash)
);
-- Embeddings of texts that gap analysis read (explanations), by content hash and embedding model, so a
-- text is embedded once across runs and only when something reads it.
CREATE TABLE IF NOT EXISTS text_vectors (
    text_hash TEXT NOT NULL, model TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (text_hash, model)
);
"""



class Store(JudgmentStore):
    """The SQLite file, with one connection per thread: a connection shared across threads would mix
    their transactions (the agent runs engine calls in worker threads); WAL lets them work side by side.
    The judgment and label queries are in store_judgments.py (`JudgmentStore`), the rest here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a workspace made by an earlier version up to this schema (columns added since)."""
        added = (
            ("judgments", "weighted_score", "REAL CHECK (weighted_score BETWEEN 1 AND 5)"),
            ("sources", "layout", "TEXT NOT NULL DEFAULT '{}'"),
            ("samples", "part", "TEXT"),
        )
        for table, column, declaration in added:
            columns = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column in columns:
                continue
            try:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as exc:  # another process opening the same workspace got there first
                if "duplicate column" not in str(exc):
                    raise

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (autocommit, WAL, 30 s busy timeout), opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.create_function("text_chars", 1, len, deterministic=True)  # for TEXT_CHARS
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close the calling thread's connection now and let go of the others: each closes when its thread
        no longer uses it (a connection is closed when its last reference goes). Closing another thread's
        connection while that thread runs a statement on it crashes the process (SIGSEGV in sqlite3: a Ctrl-C
        in `goalcover chat` cancels the wait for a worker thread, not the thread). A later use opens a new one."""
        mine = getattr(self._local, "conn", None)
        self._local = threading.local()  # the other threads' connections: closed once no statement holds them
        if mine is not None:
            mine.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT around the block (ROLLBACK on any exception, which is re-raised)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str, default=None):
        """The JSON value stored under `key` in `meta`, or `default`."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value) -> None:
        """Store a JSON-serialisable `value` under `key` (autocommits)."""
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # --- sources and samples ----------------------------------------------------------------------
    def sources(self) -> list[dict]:
        """[{path, file_type, shape, layout}] in the order added; `layout` is readers.SourceLayout's dict."""
        rows = self.db.execute("SELECT path, file_type, shape, layout FROM sources ORDER BY position").fetchall()
        return [{"path": p, "file_type": f, "shape": s, "layout": json.loads(lay or "{}")} for p, f, s, lay in rows]

    def count_samples(self) -> int:
        """How many samples the workspace holds."""
        return self.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def count_contents(self) -> int:
        """How many distinct sample contents (exact duplicates count once) the workspace holds."""
        return self.db.execute("SELECT COUNT(DISTINCT content_hash) FROM samples").fetchone()[0]

    def sample_hashes(self, source: str | None = None) -> dict[str, tuple[str, str]]:
        """id -> (content hash, source), optionally for one source file."""
        query, args = "SELECT id, content_hash, source FROM samples", ()
        if source is not None:
            query, args = query + " WHERE source = ?", (source,)
        return {i: (h, s) for i, h, s in self.db.execute(query, args)}

    def delete_samples(self, conn: sqlite3.Connection, ids: Iterable[str]) -> None:
        """Delete samples by id inside the caller's transaction `conn`."""
        conn.executemany("DELETE FROM samples WHERE id = ?", [(i,) for i in ids])

    def sample_lengths(self) -> list[int]:
        """The text view's length (characters) of every sample, for the dataset summary."""
        return [n for (n,) in self.db.execute(f"SELECT {TEXT_CHARS} FROM samples")]

    def held(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        """id -> (content hash, source) for those of `ids` the workspace holds (ids in chunks of 500)."""
        out: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for i, h, src in self.db.execute(f"SELECT id, content_hash, source FROM samples WHERE id IN ({marks})", chunk):
                out[i] = (h, src)
        return out

    # --- atomic ingest: stage, commit in one transaction, then apply to the index -----------------
    def clear_staging(self) -> None:
        """Forget an ingest that never committed (its staged rows and removed-id list)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM ingest_staging")
            conn.execute("DELETE FROM ingest_removed")

    def stage_samples(self, rows: list[tuple[int, Sample, str]]) -> None:
        """Stage (position, sample, status) rows of the ingest in progress, in one short transaction."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO ingest_staging (id, position, line, part, format, content_hash, record, raw, text, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(s.id, pos, s.line, s.part, s.format, s.content_hash, _record_json(s.record), s.raw, s.text, status) for pos, s, status in rows],
            )

    def staged_line(self, sample_id: str) -> int | None:
        """The line of a staged sample with this id, or None (duplicate-id checks while ingesting)."""
        row = self.db.execute("SELECT line FROM ingest_staging WHERE id = ?", (sample_id,)).fetchone()
        return row[0] if row else None

    def staged_stats(self) -> tuple[dict[str, int], int, list[int]]:
        """({status: count}, exact duplicates by content, text lengths) of the staged ingest."""
        counts = dict(self.db.execute("SELECT status, COUNT(*) FROM ingest_staging GROUP BY status").fetchall())
        total, distinct = self.db.execute("SELECT COUNT(*), COUNT(DISTINCT content_hash) FROM ingest_staging").fetchone()
        lengths = [n for (n,) in self.db.execute(f"SELECT {TEXT_CHARS} FROM ingest_staging")]
        return counts, total - distinct, lengths

    def commit_ingest(self, source: str, file_type: str, shape: str, layout: dict, *, replace: bool) -> int:
        """Swap the staged samples in, in one transaction: with `replace` the workspace's samples and
        sources go; otherwise this source's samples that are no longer in the file go (their ids are kept
        in `ingest_removed` until the index has dropped them). Records INGEST_PENDING for the index
        step and returns how many samples were removed."""
        with self.transaction() as conn:
            if replace:
                conn.execute("DELETE FROM samples")
                conn.execute("DELETE FROM sources")
                removed = 0
            else:
                conn.execute(
                    "INSERT OR IGNORE INTO ingest_removed SELECT id FROM samples WHERE source = ? "
                    "AND id NOT IN (SELECT id FROM ingest_staging)",
                    (source,),
                )
                removed = conn.execute("SELECT COUNT(*) FROM ingest_removed").fetchone()[0]
                conn.execute("DELETE FROM samples WHERE id IN (SELECT id FROM ingest_removed)")
            conn.execute(
                "INSERT OR REPLACE INTO samples (id, source, position, line, part, format, content_hash, record, raw, text) "
                "SELECT id, ?, position, line, part, format, content_hash, record, raw, text FROM ingest_staging",
                (source,),
            )
            position = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM sources").fetchone()[0]
            conn.execute(
                "INSERT INTO sources (path, file_type, shape, position, layout) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET file_type = excluded.file_type, shape = excluded.shape, layout = excluded.layout",
                (source, file_type, shape, position, json.dumps(layout)),
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (INGEST_PENDING, json.dumps({"reset": replace}))
            )
        return removed

    def removed_ids(self, limit: int = 5000) -> list[str]:
        """Up to `limit` ids the committed ingest removed whose vectors are still to be dropped."""
        return [i for (i,) in self.db.execute("SELECT id FROM ingest_removed LIMIT ?", (limit,))]

    def forget_removed(self, ids: list[str]) -> None:
        """The index has dropped these removed ids."""
        with self.transaction() as conn:
            conn.executemany("DELETE FROM ingest_removed WHERE id = ?", [(i,) for i in ids])

    def finish_ingest(self) -> None:
        """The index has every change of the committed ingest: drop the staging rows and the pending mark."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM ingest_staging")
            conn.execute("DELETE FROM ingest_removed")
            conn.execute("DELETE FROM meta WHERE key = ?", (INGEST_PENDING,))


    # --- llm cache ----------------------------------------------------------------------------------
    def cached(self, key: str):
        """The cached JSON answer of a pure LLM call (e.g. a gap label) under `key`, or None."""
        row = self.db.execute("SELECT value FROM llm_cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def cache(self, key: str, value) -> None:
        """Cache a pure LLM call's JSON answer under `key`."""
        self.db.execute("INSERT OR REPLACE INTO llm_cache (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # --- runs ---------------------------------------------------------------------------------------
    def start_run(self, kind: str, detail: dict) -> int:
        """Record a run (score, gaps, …) as running; returns its id."""
        cur = self.db.execute("INSERT INTO runs (kind, detail) VALUES (?, ?)", (kind, json.dumps(detail)))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, detail: dict) -> None:
        """Close a run with its status (done, interrupted, failed) and detail."""
        self.db.execute(
            "UPDATE runs SET status = ?, detail = ?, finished_at = CURRENT_TIMESTAMP WHERE id = ?",
            (status, json.dumps(detail), run_id),
        )

    def samples(self, ids: Iterable[str] | None = None) -> list[Sample]:
        """Samples in file order (sources in the order added, then position), or the given ids in their
        order. Loads them all: prefer `iter_samples` for whole-dataset passes."""
        if ids is None:
            return list(self.iter_samples())
        wanted = list(ids)
        rows = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(f"SELECT {SAMPLE_COLUMNS} FROM samples WHERE id IN ({marks})", chunk).fetchall()
        order = {i: n for n, i in enumerate(wanted)}
        rows.sort(key=lambda r: order[r[0]])
        return [_sample(row) for row in rows]

    def iter_samples(self, batch: int = 1000) -> Iterator[Sample]:
        """Every sample in file order, fetched `batch` rows at a time (bounded memory)."""
        cursor = self.db.execute(
            f"SELECT {', '.join('s.' + c.strip() for c in SAMPLE_COLUMNS.split(','))} FROM samples s "
            "JOIN sources src ON src.path = s.source ORDER BY src.position, s.position"
        )
        while rows := cursor.fetchmany(batch):
            yield from (_sample(row) for row in rows)

    # --- synthetic samples ------------------------------------------------------------------------
    SYNTHETIC_COLUMNS = (
        "id", "gap_id", "subgoal_id", "format", "record", "text", "model", "prompt_version", "judge_score",
        "judge_explanation", "state",
    )

    def synthetic_rows(self, gap_id: str | None = None, state: str | None = None) -> list[dict]:
        """Synthetic samples as dicts of SYNTHETIC_COLUMNS (`record` decoded), oldest first, optionally of one
        gap and/or one review state."""
        rows = self.db.execute(
            f"SELECT {', '.join(self.SYNTHETIC_COLUMNS)} FROM synthetic "
            "WHERE (? IS NULL OR gap_id = ?) AND (? IS NULL OR state = ?) ORDER BY created_at, id",
            (gap_id, gap_id, state, state),
        ).fetchall()
        return [{**dict(zip(self.SYNTHETIC_COLUMNS, r)), "record": json.loads(r[4])} for r in rows]

    def save_synthetic(self, rows: list[dict]) -> None:
        """Insert or replace synthetic samples (dicts with SYNTHETIC_COLUMNS plus `content_hash`) in one
        transaction."""
        columns = (*self.SYNTHETIC_COLUMNS, "content_hash")
        with self.transaction() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO synthetic ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [
                    tuple(json.dumps(r["record"], ensure_ascii=False) if c == "record" else r[c] for c in columns)
                    for r in rows
                ],
            )

    def set_synthetic_states(self, accepted: Iterable[str], rejected: Iterable[str]) -> None:
        """Mark synthetic samples accepted or rejected by id, in one transaction."""
        with self.transaction() as conn:
            conn.executemany("UPDATE synthetic SET state = 'accepted' WHERE id = ?", [(i,) for i in accepted])
            conn.executemany("UPDATE synthetic SET state = 'rejected' WHERE id = ?", [(i,) for i in rejected])

    # --- cached text embeddings ---------------------------------------------------------------------
    def text_vectors(self, hashes: list[str], model: str) -> dict[str, bytes]:
        """text hash -> float32 vector bytes, for those of `hashes` embedded before with `model`."""
        out: dict[str, bytes] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT text_hash, vector FROM text_vectors WHERE model = ? AND text_hash IN ({marks})", [model, *chunk])
            out.update(rows)
        return out

    def count_text_vectors(self, model: str) -> int:
        """How many distinct texts have a vector cached for `model`."""
        return self.db.execute("SELECT COUNT(*) FROM text_vectors WHERE model = ?", (model,)).fetchone()[0]

    def save_text_vectors(self, rows: list[tuple[str, bytes]], model: str) -> None:
        """Store (text hash, float32 vector bytes) pairs embedded with `model`, in one transaction."""
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO text_vectors (text_hash, model, vector) VALUES (?, ?, ?)", [(h, model, v) for h, v in rows])


def _record_json(record: dict) -> str:
    """A record as JSON text; values JSON cannot hold (bytes, datetimes, …) are tagged, losslessly."""
    return json.dumps(to_storable(record), ensure_ascii=False)


def _sample(row: tuple) -> Sample:
    i, f, src, ln, part, rec, raw, text = row
    return Sample(id=i, format=f, source=src, line=ln, part=part, record=from_storable(json.loads(rec)), raw=raw, text=text)


# --- meta keys ----------------------------------------------------------------------------------------
# Every key of the `meta` table the engine and the agent use, in one place (values are JSON).
GOAL_KEY = "goal"  # the approved Goal
JUDGE_KEY = "judge"  # the judge of the last scoring run: {model, prompt_version, mode}
INDEXED_SCORE_KEYS = "indexed_score_keys"  # the score_* metadata keys last written to Chroma
GAPS_KEY = "gaps"  # the stored gaps, as find_gaps left them
GAP_COUNTER_KEY = "gaps_last_number"  # the highest G<n> ever issued, so an id is never reused
LAST_THREAD_KEY = "last_thread"  # the conversation a plain `goalcover chat` continues
TOOL_CALLING_KEY = "agent_tool_calling"  # [model, base_url] of the agent model known to call tools
