"""Did the accepted fills close the gap? Coverage without and with them, from cached judgments only.

For a gap (or each gap with accepted fills): the target subgoal's share before (the dataset and the other
gaps' fills) and after (plus this gap's accepted fills), each with its 95% Wilson interval; the gap's status
— `closed` when the subgoal is no longer weak, `shrunk` when its share rose but it is still weak, `open`
otherwise —; every other subgoal checked for a regression (share fell significantly by Fisher's exact test,
or it became weak: adding samples dilutes the subgoals they do not teach); and the effective count of added
support, in which near-duplicate supporting fills (cosine >= dedup_threshold) count once.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from goalcover.tools.measure.coverage import supports
from goalcover.tools.history.diff import SubgoalDelta, compare
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.goal import current_goal
from goalcover.tools.core.shapes import content_hash
from goalcover.tools.judge.judge_ref import current_judge
from goalcover.tools.history.versions import coverage_of, current_members
from goalcover.tools.core.workspace import Workspace


class GapVerdict(BaseModel):
    """One gap's verification (shares 0-1)."""

    gap_id: str
    subgoal_id: str
    status: str = Field(description="closed, shrunk or open")
    share_before: float
    share_after: float
    ci_before: tuple[float | None, float | None]
    ci_after: tuple[float | None, float | None]
    weak_before: bool
    weak_after: bool
    fills: int = Field(description="accepted fills of this gap")
    supporting_fills: int = Field(description="accepted fills the judge finds supporting the target subgoal")
    effective_support: int = Field(description="supporting fills with near-duplicates counted once")
    regressions: list[SubgoalDelta] = Field(default_factory=list, description="other subgoals that lost significantly or became weak")


class VerifyResult(BaseModel):
    """`goalcover verify --json`."""

    gaps: list[GapVerdict]
    regressions: list[str] = Field(description="subgoal ids flagged by any gap's check")


def effective_count(texts: list[str], threshold: float, batch_size: int = 64) -> int:
    """How many of `texts` remain when each group of near-duplicates (cosine >= threshold, greedy in order;
    exact duplicates too) counts once."""
    from goalcover.tools.data.embeddings import embed

    if not texts:
        return 0
    vectors = embed(texts, batch_size)
    kept: list[int] = []
    for i in range(len(texts)):
        if not any(float(vectors[i] @ vectors[j]) >= threshold for j in kept):
            kept.append(i)
    return len(kept)


def verify(ws: Workspace, gap_id: str | None = None) -> VerifyResult:
    """Verify the accepted fills of `gap_id` (default: every gap with accepted fills). Calls no model.
    Raises BadInput when nothing is scored yet or the gap has no accepted fill."""
    goal = current_goal(ws)
    judge = current_judge(ws)
    if goal is None or judge is None:
        raise BadInput("nothing is scored yet: run `goalcover score` first")
    accepted = ws.store.synthetic_rows(state="accepted")
    wanted = gap_id.upper() if gap_id else None
    gap_ids = sorted({r["gap_id"] for r in accepted if wanted is None or r["gap_id"] == wanted})
    if not gap_ids:
        raise BadInput(
            f"no accepted fill{f' for gap {wanted}' if wanted else ''}: propose some with `goalcover pool fill --gap G1` "
            "or `goalcover synthesize --gap G1`, then accept them with `goalcover review --accept …`"
        )
    members, _, _ = current_members(ws)
    verdicts = []
    for gid in gap_ids:
        fills = [r for r in accepted if r["gap_id"] == gid]
        subgoal = goal.subgoal(fills[0]["subgoal_id"])
        before = {i: h for i, h in members.items() if i not in {r["id"] for r in fills}}
        rows_before, _ = coverage_of(ws, before, judge)
        rows_after, _ = coverage_of(ws, members, judge)
        deltas = compare(rows_before, len(before), rows_after, len(members))
        target = next(d for d in deltas if d.id == subgoal.id)
        judged = ws.store.judgments_among(judge.prompt_version, judge.model, [content_hash(r["text"]) for r in fills])
        supporting = []
        for r in fills:
            found = judged.get((content_hash(r["text"]), subgoal.hash))
            if found is not None and supports(found[0], found[2], ws.settings):
                supporting.append(r["text"])
        status = "closed" if not target.weak_to else ("shrunk" if target.delta > 0 else "open")
        verdicts.append(GapVerdict(
            gap_id=gid, subgoal_id=subgoal.id, status=status, share_before=target.share_from, share_after=target.share_to,
            ci_before=target.ci_from, ci_after=target.ci_to, weak_before=target.weak_from, weak_after=target.weak_to,
            fills=len(fills), supporting_fills=len(supporting),
            effective_support=effective_count(supporting, ws.settings.dedup_threshold, ws.settings.embed_batch_size),
            regressions=[d for d in deltas if d.id != subgoal.id and d.regression],
        ))
    flagged = sorted({d.id for v in verdicts for d in v.regressions})
    return VerifyResult(gaps=verdicts, regressions=flagged)
