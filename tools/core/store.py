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
from goalcover.tools.data.values import from_storable, to_storable

# Meta key of a committed ingest whose index changes are not all applied yet (see dataset.finish_ingest).
INGEST_PENDING = "ingest_pending"
SAMPLE_COLUMNS = "id, format, source, line, part, record, raw, text"

# Whether a judgment supports its subgoal (parameters: weighted threshold, score threshold): the G-Eval
# weighted score decides where the judge recorded one, the 1-5 verdict elsewhere.
SUPPORTS = "(CASE WHEN j.weighted_score IS NOT NULL THEN j.weighted_score >= ? ELSE j.score >= ? END)"

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

# A text's length in characters. SQLite's length() stops at the first NUL (https://sqlite.org/lang_corefunc.html#length),
# so a text holding `\u0000` is measured by Python's len (registered as text_chars on each connection).
TEXT_CHARS = "CASE WHEN instr(CAST(text AS BLOB), x'00') THEN text_chars(text) ELSE length(text) END"


class Store:
    """The SQLite file, with one connection per thread: a connection shared across threads would mix
    their transactions (the agent runs engine calls in worker threads); WAL lets them work side by side."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
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
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

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

    # --- judgments --------------------------------------------------------------------------------
    def judgment_keys(self, prompt_version: str, model: str) -> set[tuple[str, str]]:
        """(sample hash, subgoal hash) of every judgment one judge (prompt version, model) made."""
        rows = self.db.execute(
            "SELECT sample_hash, subgoal_hash FROM judgments WHERE prompt_version = ? AND model = ?", (prompt_version, model)
        )
        return set(rows)

    def save_judgments(self, rows: list[dict]) -> None:
        """Commit judgments at once (one short transaction) and clear their earlier failures."""
        keys = [(r["sample_hash"], r["subgoal_hash"], r["prompt_version"], r["model"]) for r in rows]
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO judgments (sample_hash, subgoal_hash, prompt_version, model, sample_id, "
                "subgoal_id, score, explanation, weighted_score) VALUES (:sample_hash, :subgoal_hash, :prompt_version, "
                ":model, :sample_id, :subgoal_id, :score, :explanation, :weighted_score)",
                [{"weighted_score": None, **r} for r in rows],
            )
            conn.executemany(
                "DELETE FROM judgment_failures WHERE sample_hash = ? AND subgoal_hash = ? AND prompt_version = ? AND model = ?",
                keys,
            )

    def save_failures(self, rows: list[dict]) -> None:
        """Record failed judgments (dicts of the judgment_failures columns), counting attempts, in one transaction."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO judgment_failures (sample_hash, subgoal_hash, prompt_version, model, sample_id, subgoal_id, error) "
                "VALUES (:sample_hash, :subgoal_hash, :prompt_version, :model, :sample_id, :subgoal_id, :error) "
                "ON CONFLICT DO UPDATE SET error = excluded.error, attempts = attempts + 1, created_at = CURRENT_TIMESTAMP",
                rows,
            )

    def judgments_for(self, prompt_version: str, model: str) -> dict[tuple[str, str], tuple[int, str]]:
        """(sample hash, subgoal hash) -> (score, explanation) for one judge."""
        rows = self.db.execute(
            "SELECT sample_hash, subgoal_hash, score, explanation FROM judgments WHERE prompt_version = ? AND model = ?",
            (prompt_version, model),
        )
        return {(a, b): (score, expl) for a, b, score, expl in rows}

    def _judge_filter(self, subgoals: dict[str, str]) -> tuple[str, list[str]]:
        marks = ",".join("?" * len(subgoals))
        return f"j.prompt_version = ? AND j.model = ? AND j.subgoal_hash IN ({marks})", list(subgoals)

    def iter_scores(self, prompt_version: str, model: str, subgoals: dict[str, str], *, explanations: bool = True,
                    batch: int = 2000) -> Iterator[tuple[str, dict[str, tuple[int, str]]]]:
        """(sample id, {subgoal id: (score 1-5, explanation)}) for every sample, in file order, streamed
        from one SQL join; `subgoals` maps subgoal hash -> id (the current goal's). Samples without a
        judgment come with {}; without `explanations` the explanation is "" (less to read)."""
        where, args = self._judge_filter(subgoals)
        cursor = self.db.execute(
            f"SELECT s.id, j.subgoal_hash, j.score, {'j.explanation' if explanations else chr(39) * 2} FROM samples s "
            "JOIN sources src ON src.path = s.source "
            f"LEFT JOIN judgments j ON j.sample_hash = s.content_hash AND {where} "
            "ORDER BY src.position, s.position",
            [prompt_version, model, *args],
        )
        current: str | None = None
        row: dict[str, tuple[int, str]] = {}
        while rows := cursor.fetchmany(batch):
            for sample_id, subgoal_hash, score, explanation in rows:
                if sample_id != current:
                    if current is not None:
                        yield current, row
                    current, row = sample_id, {}
                if subgoal_hash is not None:
                    row[subgoals[subgoal_hash]] = (score, explanation)
        if current is not None:
            yield current, row

    def score_tallies(self, prompt_version: str, model: str, subgoals: dict[str, str]) -> list[tuple[str, int, int, float, int]]:
        """(subgoal id, score, samples, sum of weighted scores, samples with one) per subgoal and score:
        the dataset's coverage counts as one SQL aggregate (a sample counts once per subgoal, duplicates
        by content each count)."""
        where, args = self._judge_filter(subgoals)
        rows = self.db.execute(
            "SELECT j.subgoal_hash, j.score, COUNT(*), COALESCE(SUM(j.weighted_score), 0), COUNT(j.weighted_score) "
            f"FROM samples s JOIN judgments j ON j.sample_hash = s.content_hash AND {where} GROUP BY j.subgoal_hash, j.score",
            [prompt_version, model, *args],
        )
        return [(subgoals[h], score, n, w, nw) for h, score, n, w, nw in rows]

    def support_counts(self, prompt_version: str, model: str, subgoals: dict[str, str], min_score: int,
                       min_weighted: float) -> dict[str, tuple[int, int]]:
        """subgoal id -> (supporting samples, supporting by the 1-5 verdict alone). A judgment with a
        G-Eval weighted score supports at weighted >= `min_weighted`; one without, at score >= `min_score`."""
        where, args = self._judge_filter(subgoals)
        rows = self.db.execute(
            f"SELECT j.subgoal_hash, SUM({SUPPORTS}), SUM(j.score >= ?) FROM samples s "
            f"JOIN judgments j ON j.sample_hash = s.content_hash AND {where} GROUP BY j.subgoal_hash",
            [min_weighted, min_score, min_score, prompt_version, model, *args],
        )
        return {subgoals[h]: (n, n_verdict) for h, n, n_verdict in rows}

    def score_lengths(self, prompt_version: str, model: str, subgoal_hashes: list[str], limit: int = 5000,
                      seed: int = 0) -> dict[str, list[tuple[int, float]]]:
        """subgoal hash -> (sample length in characters, score) of the judged samples — the G-Eval weighted
        score where there is one, else the 1-5 verdict; one per distinct content. Past `limit` samples, a
        seeded random subset of about `limit` rows (looked up by rowid, so a big dataset is not scanned)."""
        total = self.count_samples()
        if total <= limit:
            rows = self.db.execute(f"SELECT content_hash, {TEXT_CHARS} FROM samples").fetchall()
        else:
            top = self.db.execute("SELECT MAX(rowid) FROM samples").fetchone()[0] or 0
            import random

            picked = random.Random(seed).sample(range(1, top + 1), min(limit, top))
            rows = []
            for start in range(0, len(picked), 500):
                chunk = picked[start : start + 500]
                rows += self.db.execute(
                    f"SELECT content_hash, {TEXT_CHARS} FROM samples WHERE rowid IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
        length = dict(rows)
        judged = self.judgments_among(prompt_version, model, list(length))
        wanted = set(subgoal_hashes)
        out: dict[str, list[tuple[int, float]]] = {h: [] for h in subgoal_hashes}
        for (sample_hash, subgoal_hash), (score, _, weighted) in judged.items():
            if subgoal_hash in wanted:
                out[subgoal_hash].append((length[sample_hash], weighted if weighted is not None else score))
        return out

    def judgments_of_subgoal(self, prompt_version: str, model: str, subgoal_hash: str) -> Iterator[tuple]:
        """(sample hash, sample id, score, explanation, weighted score) of one judge's judgments of one
        subgoal, one per distinct sample content present in the dataset, by sample hash."""
        yield from self.db.execute(
            "SELECT j.sample_hash, MIN(s.id), j.score, j.explanation, j.weighted_score FROM judgments j "
            "JOIN samples s ON s.content_hash = j.sample_hash "
            "WHERE j.prompt_version = ? AND j.model = ? AND j.subgoal_hash = ? GROUP BY j.sample_hash ORDER BY j.sample_hash",
            (prompt_version, model, subgoal_hash),
        )

    def unexplained_low(self, prompt_version: str, model: str, subgoal_hash: str, below: int, limit: int) -> list[tuple[str, str, float | None]]:
        """(sample hash, a sample id, weighted score) of up to `limit` judgments of one subgoal scoring below
        `below` whose explanation is still empty (probe mode), in sample-hash order."""
        return self.db.execute(
            "SELECT j.sample_hash, MIN(s.id), j.weighted_score FROM judgments j JOIN samples s ON s.content_hash = j.sample_hash "
            "WHERE j.prompt_version = ? AND j.model = ? AND j.subgoal_hash = ? AND j.score < ? AND j.explanation = '' "
            "GROUP BY j.sample_hash ORDER BY j.sample_hash LIMIT ?",
            (prompt_version, model, subgoal_hash, below, limit),
        ).fetchall()

    def set_explanation(self, sample_hash: str, subgoal_hash: str, prompt_version: str, model: str, explanation: str) -> None:
        """Fill in one judgment's explanation (probe mode writes them on demand)."""
        self.db.execute(
            "UPDATE judgments SET explanation = ? WHERE sample_hash = ? AND subgoal_hash = ? AND prompt_version = ? AND model = ?",
            (explanation, sample_hash, subgoal_hash, prompt_version, model),
        )

    def save_label(self, row: dict) -> None:
        """Store (or replace) the user's verdict on one pair: keys sample_hash, subgoal_hash, sample_id,
        subgoal_id, user_score, judge_score, judge_model, prompt_version."""
        self.db.execute(
            "INSERT OR REPLACE INTO labels (sample_hash, subgoal_hash, sample_id, subgoal_id, user_score, judge_score, "
            "judge_model, prompt_version) VALUES (:sample_hash, :subgoal_hash, :sample_id, :subgoal_id, :user_score, "
            ":judge_score, :judge_model, :prompt_version)",
            row,
        )

    def move_labels(self, old_subgoal_hash: str, new_subgoal_hash: str) -> None:
        """Carry a subgoal's labels over to its new hash (its meaning is unchanged: anchors were added)."""
        self.db.execute("UPDATE OR REPLACE labels SET subgoal_hash = ? WHERE subgoal_hash = ?", (new_subgoal_hash, old_subgoal_hash))

    def labels(self, subgoal_hashes: Iterable[str] | None = None) -> list[dict]:
        """The user's labels (of these subgoals' current hashes, default all), oldest first."""
        rows = self.db.execute(
            "SELECT sample_hash, subgoal_hash, sample_id, subgoal_id, user_score, judge_score, judge_model, prompt_version "
            "FROM labels ORDER BY created_at, rowid"
        ).fetchall()
        keep = None if subgoal_hashes is None else set(subgoal_hashes)
        names = ("sample_hash", "subgoal_hash", "sample_id", "subgoal_id", "user_score", "judge_score", "judge_model", "prompt_version")
        return [dict(zip(names, r)) for r in rows if keep is None or r[1] in keep]

    def best_scored(self, prompt_version: str, model: str, subgoals: dict[str, str], min_score: int, limit: int,
                    min_weighted: float | None = None) -> dict[str, list[tuple[str, int, float | None]]]:
        """subgoal id -> (sample id, score, weighted score) of its `limit` best samples that support it
        (score >= `min_score`, or with `min_weighted`, weighted score >= it where there is one): by the
        weighted score where there is one, else the score, then file order. One window-function pass over
        the judgments of every subgoal (SQLite >= 3.25), not one sort per subgoal."""
        if min_weighted is None:
            supports, support_args = "j.score >= ?", [min_score]
        else:
            supports, support_args = SUPPORTS, [min_weighted, min_score]
        where, args = self._judge_filter(subgoals)
        rows = self.db.execute(
            "SELECT subgoal_hash, id, score, weighted FROM (SELECT j.subgoal_hash, s.id, j.score, j.weighted_score AS weighted, "
            "ROW_NUMBER() OVER (PARTITION BY j.subgoal_hash ORDER BY COALESCE(j.weighted_score, j.score) DESC, j.score DESC, "
            "src.position, s.position) AS rank FROM samples s JOIN sources src ON src.path = s.source "
            f"JOIN judgments j ON j.sample_hash = s.content_hash AND {where} WHERE {supports}) "
            "WHERE rank <= ? ORDER BY subgoal_hash, rank",
            [prompt_version, model, *args, *support_args, limit],
        )
        out: dict[str, list[tuple[str, int, float | None]]] = {sid: [] for sid in subgoals.values()}
        for subgoal_hash, sample_id, score, weighted in rows:
            out[subgoals[subgoal_hash]].append((sample_id, score, weighted))
        return out

    def low_scored(self, prompt_version: str, model: str, subgoal_hash: str, below: int) -> list[tuple[str, int, str]]:
        """(sample id, score, explanation) of every sample scoring below `below` on one subgoal, by id."""
        return self.db.execute(
            "SELECT s.id, j.score, j.explanation FROM samples s JOIN judgments j ON j.sample_hash = s.content_hash "
            "AND j.prompt_version = ? AND j.model = ? AND j.subgoal_hash = ? WHERE j.score < ? ORDER BY s.id",
            (prompt_version, model, subgoal_hash, below),
        ).fetchall()

    def extreme_scored(self, prompt_version: str, model: str, subgoal_hash: str, k: int, *, lowest: bool) -> list[tuple[int, str, str]]:
        """(score, sample id, explanation) of the `k` lowest (score, then id, ascending) or highest
        (descending) scored samples of one subgoal."""
        order = "ASC" if lowest else "DESC"
        return self.db.execute(
            "SELECT j.score, s.id, j.explanation FROM samples s JOIN judgments j ON j.sample_hash = s.content_hash "
            "AND j.prompt_version = ? AND j.model = ? AND j.subgoal_hash = ? "
            f"ORDER BY j.score {order}, s.id {order} LIMIT ?",
            (prompt_version, model, subgoal_hash, k),
        ).fetchall()

    def off_goal_ids(self, prompt_version: str, model: str, subgoals: dict[str, str], max_score: int) -> list[str]:
        """Ids (file order) of the samples judged on every subgoal whose best score is at most `max_score`."""
        where, args = self._judge_filter(subgoals)
        rows = self.db.execute(
            "SELECT s.id FROM samples s JOIN sources src ON src.path = s.source "
            f"JOIN judgments j ON j.sample_hash = s.content_hash AND {where} "
            "GROUP BY s.id HAVING COUNT(*) = ? AND MAX(j.score) <= ? ORDER BY MIN(src.position), MIN(s.position)",
            [prompt_version, model, *args, len(subgoals), max_score],
        )
        return [i for (i,) in rows]

    def unjudged_failures(self, prompt_version: str, model: str, subgoals: dict[str, str]) -> list[tuple[str, str, str]]:
        """(sample id, subgoal id, last error) of every sample × current subgoal whose judgment failed and
        has no judgment since, in file order."""
        marks = ",".join("?" * len(subgoals))
        rows = self.db.execute(
            "SELECT s.id, f.subgoal_hash, f.error FROM samples s JOIN sources src ON src.path = s.source "
            "JOIN judgment_failures f ON f.sample_hash = s.content_hash AND f.prompt_version = ? AND f.model = ? "
            f"AND f.subgoal_hash IN ({marks}) WHERE NOT EXISTS (SELECT 1 FROM judgments j WHERE j.sample_hash = f.sample_hash "
            "AND j.subgoal_hash = f.subgoal_hash AND j.prompt_version = f.prompt_version AND j.model = f.model) "
            "ORDER BY src.position, s.position",
            [prompt_version, model, *subgoals],
        )
        found = [(i, subgoals[h], e) for i, h, e in rows]
        rank = {sid: n for n, sid in enumerate(subgoals.values())}
        first = {i: n for n, (i, _, _) in reversed(list(enumerate(found)))}
        return sorted(found, key=lambda r: (first[r[0]], rank[r[1]]))  # file order, then the goal's order

    def judgments_among(self, prompt_version: str, model: str, hashes: list[str]) -> dict[tuple[str, str], tuple[int, str, float | None]]:
        """(sample hash, subgoal hash) -> (score, explanation, weighted score) of one judge's judgments of
        these sample contents (queried in chunks of 500)."""
        out: dict[tuple[str, str], tuple[int, str, float | None]] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT sample_hash, subgoal_hash, score, explanation, weighted_score FROM judgments "
                f"WHERE prompt_version = ? AND model = ? AND sample_hash IN ({marks})",
                [prompt_version, model, *chunk],
            )
            out.update(((a, b), (score, expl, w)) for a, b, score, expl, w in rows)
        return out

    def judged_pairs(self, prompt_version: str, model: str, hashes: list[str]) -> set[tuple[str, str]]:
        """(sample hash, subgoal hash) of one judge's judgments of these sample contents (chunks of 500)."""
        out: set[tuple[str, str]] = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(
                f"SELECT sample_hash, subgoal_hash FROM judgments WHERE prompt_version = ? AND model = ? AND sample_hash IN ({marks})",
                [prompt_version, model, *chunk],
            ))
        return out

    def pair_counts(self, prompt_version: str, model: str, subgoals: dict[str, str], hashes: list[str] | None = None) -> tuple[int, int, int]:
        """(distinct sample contents, judged pairs, failed-and-unjudged pairs) for the current subgoals over
        the dataset's samples (or the given content hashes), by SQL."""
        marks = ",".join("?" * len(subgoals))
        if hashes is None:
            contents = "SELECT DISTINCT content_hash AS h FROM samples"
            args: list = []
        else:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_hashes (h TEXT PRIMARY KEY)")
            self.db.execute("DELETE FROM wanted_hashes")
            self.db.executemany("INSERT OR IGNORE INTO wanted_hashes VALUES (?)", [(h,) for h in hashes])
            contents, args = "SELECT h FROM wanted_hashes", []
        distinct = self.db.execute(f"SELECT COUNT(*) FROM ({contents})", args).fetchone()[0]
        judged = self.db.execute(
            f"SELECT COUNT(*) FROM judgments WHERE prompt_version = ? AND model = ? AND subgoal_hash IN ({marks}) "
            f"AND sample_hash IN ({contents})",
            [prompt_version, model, *subgoals, *args],
        ).fetchone()[0]
        failed = self.db.execute(
            f"SELECT COUNT(*) FROM judgment_failures f WHERE f.prompt_version = ? AND f.model = ? AND f.subgoal_hash IN ({marks}) "
            f"AND f.sample_hash IN ({contents}) AND NOT EXISTS (SELECT 1 FROM judgments j WHERE j.sample_hash = f.sample_hash "
            "AND j.subgoal_hash = f.subgoal_hash AND j.prompt_version = f.prompt_version AND j.model = f.model)",
            [prompt_version, model, *subgoals, *args],
        ).fetchone()[0]
        return distinct, judged, failed

    def weighted_scores_for(self, prompt_version: str, model: str) -> dict[tuple[str, str], float]:
        """(sample hash, subgoal hash) -> G-Eval weighted score, for the judgments that have one."""
        rows = self.db.execute(
            "SELECT sample_hash, subgoal_hash, weighted_score FROM judgments "
            "WHERE prompt_version = ? AND model = ? AND weighted_score IS NOT NULL",
            (prompt_version, model),
        )
        return {(a, b): w for a, b, w in rows}

    def failures_for(self, prompt_version: str, model: str) -> dict[tuple[str, str], str]:
        """(sample hash, subgoal hash) -> the last error, for one judge's failed judgments."""
        rows = self.db.execute(
            "SELECT sample_hash, subgoal_hash, error FROM judgment_failures WHERE prompt_version = ? AND model = ?",
            (prompt_version, model),
        )
        return {(a, b): err for a, b, err in rows}

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
