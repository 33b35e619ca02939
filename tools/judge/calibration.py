"""The user spot-checks the judge: judgments to review, stratified by subgoal and score, and their labels.

`to_review` picks judgments of the current judge the user has not labelled yet, spread over the subgoals
and, within each, over the scores 1-5 (round robin, random within a cell, seeded), so a short session sees
high and low scores of every subgoal rather than the dataset's majority. `save_label` stores the user's
verdict — agree (the judge's score) or their own 1-5 — in the workspace (`labels` table, keyed by
content so a re-ingest keeps it). Agreement is computed in tools/judge/judge_quality.py and shown by the
coverage report.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, Field

from goalcover.tools.core.errors import BadInput
from goalcover.tools.judge.fit import fit_text
from goalcover.tools.core.goal import current_goal
from goalcover.tools.judge.judge_quality import Agreement, label_agreement
from goalcover.tools.core.shapes import Subgoal
from goalcover.tools.judge.judge_ref import current_judge
from goalcover.tools.core.workspace import Workspace

# A sample longer than this is folded in the review: its start and end are shown, the rest on request.
FOLD_CHARS = 1_200


class ReviewItem(BaseModel):
    """One judgment to check: the sample (full text; callers fold it), the subgoal, the judge's verdict."""

    sample_id: str
    sample_hash: str
    subgoal_id: str
    subgoal_hash: str
    subgoal_title: str
    subgoal_description: str
    text: str
    score: int = Field(ge=1, le=5)
    weighted_score: float | None = None
    explanation: str

    def folded(self, limit: int = FOLD_CHARS) -> str:
        """The sample's text in about `limit` characters: its start and its end (where the response is),
        with a line in between saying how much is hidden (fit.fit_text)."""
        return fit_text(self.text, limit)


def to_review(ws: Workspace, n: int = 20, subgoal: str | None = None, seed: int = 0) -> list[ReviewItem]:
    """Up to `n` unlabelled judgments of the current judge, stratified by subgoal (or only `subgoal`) and
    score (round robin over subgoals, then over scores 1-5 within each, a random sample per cell). Raises
    BadInput before any scoring, for an unknown subgoal, or for n < 1."""
    if n < 1:
        raise BadInput(f"--n {n}: review at least one judgment")
    goal = current_goal(ws)
    assert goal is not None
    judge = current_judge(ws)
    if judge is None:
        raise BadInput("nothing to check yet: run `goalcover score` first")
    subgoals = [goal.subgoal(subgoal)] if subgoal else list(goal.subgoals)
    labelled = {(r["sample_hash"], r["subgoal_hash"]) for r in ws.store.labels()}
    rng = random.Random(seed)
    cells: dict[str, dict[int, list[tuple]]] = {}
    for g in subgoals:
        # A uniform sample of at most n per score (reservoir sampling, Vitter's algorithm R): memory stays
        # at 5·n judgments per subgoal whatever the dataset's size.
        by_score: dict[int, list[tuple]] = {}
        seen: dict[int, int] = {}
        for row in ws.store.judgments_of_subgoal(judge.prompt_version, judge.model, g.hash):
            if (row[0], g.hash) in labelled:
                continue
            score = row[2]
            seen[score] = seen.get(score, 0) + 1
            cell = by_score.setdefault(score, [])
            if len(cell) < n:
                cell.append(row)
            elif (slot := rng.randrange(seen[score])) < n:
                cell[slot] = row
        for rows in by_score.values():
            rng.shuffle(rows)
        cells[g.id] = by_score
    # Within a subgoal: one of each score in turn; across subgoals: one subgoal's next item in turn.
    queues = {g.id: _round_robin([cells[g.id][score] for score in sorted(cells[g.id])]) for g in subgoals}
    picked = [(g, row) for row, g in _round_robin([[(r, g) for r in queues[g.id]] for g in subgoals])][:n]
    texts = {s.id: s.text for s in ws.store.samples([row[1] for _, row in picked])}
    return [
        ReviewItem(sample_id=sid, sample_hash=h, subgoal_id=g.id, subgoal_hash=g.hash, subgoal_title=g.title,
                   subgoal_description=g.description, text=texts.get(sid, ""), score=score, weighted_score=w,
                   explanation=explanation)
        for g, (h, sid, score, explanation, w) in picked
    ]


def next_for_review(ws: Workspace, seed: int = 0) -> ReviewItem | None:
    """The one judgment to check next in a click-by-click session (the chat app): of the stratified
    candidates (to_review), the first whose subgoal, then whose (subgoal, judge score) cell, has the fewest
    labels so far. None when every judgment is labelled."""
    candidates = to_review(ws, n=50, seed=seed)
    if not candidates:
        return None
    labels = ws.store.labels()
    per_subgoal: dict[str, int] = {}
    per_cell: dict[tuple[str, int], int] = {}
    for r in labels:
        per_subgoal[r["subgoal_hash"]] = per_subgoal.get(r["subgoal_hash"], 0) + 1
        per_cell[(r["subgoal_hash"], r["judge_score"])] = per_cell.get((r["subgoal_hash"], r["judge_score"]), 0) + 1
    return min(candidates, key=lambda i: (per_subgoal.get(i.subgoal_hash, 0), per_cell.get((i.subgoal_hash, i.score), 0)))


MAX_ANCHORS = 4
ANCHOR_CHARS = 400


def apply_labels(ws: Workspace, subgoal_id: str) -> tuple[Subgoal, Subgoal]:
    """Make the user's labels of one subgoal its rubric anchors: up to MAX_ANCHORS labelled samples (the
    disagreements first, then one per user score), each as its first ANCHOR_CHARS characters and the user's
    score, saved in the goal. The subgoal's hash changes (anchors are part of it), so the next `goalcover
    score` re-scores that subgoal only; its labels move to the new hash, and agreement leaves out the
    anchored samples (the judge has seen them). Returns (old, new subgoal). Raises BadInput for an unknown
    subgoal or one without labels."""
    from goalcover.tools.core.goal import save_goal
    from goalcover.tools.core.shapes import Anchor

    goal = current_goal(ws)
    assert goal is not None
    old = goal.subgoal(subgoal_id)
    labels = ws.store.labels([old.hash])
    if not labels:
        raise BadInput(f"{old.id} has no labels yet: check some of its judgments first (`goalcover calibrate --subgoal {old.id}`)")
    ranked = sorted(labels, key=lambda r: -abs(r["user_score"] - r["judge_score"]))
    chosen: list[dict] = []
    for r in ranked:  # the widest disagreements first, one per user score
        if len(chosen) < MAX_ANCHORS and all(c["user_score"] != r["user_score"] for c in chosen):
            chosen.append(r)
    for r in ranked:  # then fill up
        if len(chosen) < MAX_ANCHORS and r not in chosen:
            chosen.append(r)
    texts = {s.content_hash: s.text for s in ws.store.samples([r["sample_id"] for r in chosen])}
    anchors = [Anchor(excerpt=texts[r["sample_hash"]][:ANCHOR_CHARS], score=r["user_score"], sample_hash=r["sample_hash"])
               for r in sorted(chosen, key=lambda r: r["user_score"]) if r["sample_hash"] in texts]
    new = old.model_copy(update={"anchors": anchors})
    save_goal(ws, goal.model_copy(update={"subgoals": [new if g.id == old.id else g for g in goal.subgoals]}))
    ws.store.move_labels(old.hash, new.hash)
    return old, new


def _round_robin(lists: list[list]) -> list:
    """The first item of each list, then the second of each, …"""
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out += [x[i] for x in lists if i < len(x)]
    return out


def save_label(ws: Workspace, item: ReviewItem | dict, user_score: int | None = None) -> None:
    """Store the user's verdict on `item` (a ReviewItem, or a dict of its sample_hash, subgoal_hash,
    sample_id, subgoal_id and score, as a chat button carries it): their own 1-5 score, or None to agree
    with the judge's. Raises BadInput for a score outside 1-5."""
    if isinstance(item, dict):
        item = ReviewItem(subgoal_title="", subgoal_description="", text="", explanation="", **item)
    score = item.score if user_score is None else user_score
    if score not in (1, 2, 3, 4, 5):
        raise BadInput(f"a label is a score 1-5, not {user_score!r}")
    judge = current_judge(ws)
    ws.store.save_label({
        "sample_hash": item.sample_hash, "subgoal_hash": item.subgoal_hash, "sample_id": item.sample_id,
        "subgoal_id": item.subgoal_id, "user_score": score, "judge_score": item.score,
        "judge_model": judge.model if judge else "", "prompt_version": judge.prompt_version if judge else "",
    })


def agreement_now(ws: Workspace) -> dict[str, Agreement]:
    """Agreement per subgoal and "overall" between the user's labels and the current judge (see
    judge_quality.label_agreement); {} without labels."""
    goal = current_goal(ws)
    assert goal is not None
    return label_agreement(ws, goal, current_judge(ws))
