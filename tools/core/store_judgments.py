"""The judgments part of the workspace's SQLite store: what the judge said (scores, explanations, G-Eval
weighted scores), its failures, and the user's labels — every query the coverage, gap, trust and report
code needs, keyed by judge (prompt version, model).

`JudgmentStore` is a mixin of `Store` (store.py): callers use `ws.store.save_judgments(...)` as before; it
needs the host's `db` connection and `transaction()`. The tables are in store.SCHEMA.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager

# Whether a judgment supports its subgoal (parameters: weighted threshold, score threshold): the G-Eval
# weighted score decides where the judge recorded one, the 1-5 verdict elsewhere.
# A text's length in characters. SQLite's length() stops at the first NUL (https://sqlite.org/lang_corefunc.html#length),
# so a text holding `\u0000` is measured by Python's len (registered as text_chars on each connection).
TEXT_CHARS = "CASE WHEN instr(CAST(text AS BLOB), x'00') THEN text_chars(text) ELSE length(text) END"

SUPPORTS = "(CASE WHEN j.weighted_score IS NOT NULL THEN j.weighted_score >= ? ELSE j.score >= ? END)"


class JudgmentStore:
    """Judgments, judgment failures and labels (a mixin of `Store`; see the module docstring)."""

    db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover - Store's
        """Store.transaction (BEGIN IMMEDIATE ... COMMIT); declared here for the mixin's methods."""
        raise NotImplementedError

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
