"""A diff of capabilities: what a change of the dataset did to each subgoal and gap.

Between two versions of this workspace (`diff`), or between this workspace's dataset and another
workspace's (`diff_against`: its samples are judged under this workspace's goal, every judgment already in
this workspace's cache reused by content). Coverage of both sides is recomputed from cached judgments
(versions.coverage_of). A change is significant when Fisher's exact test of the two shares (scipy.stats
.fisher_exact, two-sided) gives p < SIGNIFICANCE; the two versions mostly share samples, so the test is
conservative for small edits. A regression is a subgoal whose share fell significantly or that became weak.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from goalcover.tools.history import history_store as hs
from goalcover.tools.core.errors import BadInput
from goalcover.tools.fill.gaps import SAME_GAP_OVERLAP, jaccard
from goalcover.tools.core.goal import current_goal
from goalcover.tools.core.shapes import content_hash
from goalcover.tools.judge.scoring import ScorePlan
from goalcover.tools.judge.judge_ref import current_judge
from goalcover.tools.history.versions import ShareRow, coverage_of, current_version, gaps_of, resolve
from goalcover.tools.core.workspace import DB_NAME, Workspace

SIGNIFICANCE = 0.05


class SubgoalDelta(BaseModel):
    """One subgoal before and after: shares 0-1 with 95% Wilson intervals, the change, Fisher's p."""

    id: str
    title: str = ""
    share_from: float
    share_to: float
    delta: float
    significant: bool
    p_value: float
    ci_from: tuple[float | None, float | None] = (None, None)
    ci_to: tuple[float | None, float | None] = (None, None)
    weak_from: bool = False
    weak_to: bool = False
    regression: bool = Field(False, description="share fell significantly, or the subgoal became weak")


class GapChange(BaseModel):
    """A gap matched across the two sides by its members (as stable gap ids are)."""

    id: str
    subgoal_id: str
    label: str = ""
    size_from: int | None = None
    size_to: int | None = None


class DiffResult(BaseModel):
    """`goalcover diff --json`; `from`, `to`, `subgoals`, `gaps`, `samples` are fixed by the design."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    subgoals: list[SubgoalDelta]
    gaps: dict[str, list[GapChange]] = Field(description="closed, opened, changed")
    samples: dict[str, int] = Field(description="added, removed, changed (same id, new content)")
    regressions: list[str] = []
    unscored: dict[str, int] = Field(default_factory=dict, description="members without a cached judgment, per side")
    calls: int = Field(0, description="LLM calls made (diff --against judging new content)")
    cost: float = 0.0

    def dump(self) -> dict:
        """The JSON object, with `from` as the key."""
        return self.model_dump(by_alias=True)


def fisher_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p of Fisher's exact test that k1/n1 and k2/n2 are the same proportion (scipy)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue)


def compare(rows_from: list[ShareRow], n_from: int, rows_to: list[ShareRow], n_to: int) -> list[SubgoalDelta]:
    """Per-subgoal deltas of two coverages (matched by subgoal id) with significance and regression flags."""
    before = {r.id: r for r in rows_from}
    out = []
    for row in rows_to:
        old = before.get(row.id)
        if old is None:
            continue
        p = fisher_p(old.supporting, n_from, row.supporting, n_to)
        significant = p < SIGNIFICANCE
        delta = round(row.share - old.share, 4)
        out.append(SubgoalDelta(
            id=row.id, title=row.title, share_from=old.share, share_to=row.share, delta=delta, significant=significant,
            p_value=round(p, 6), ci_from=(old.ci_low, old.ci_high), ci_to=(row.ci_low, row.ci_high), weak_from=old.weak,
            weak_to=row.weak, regression=(delta < 0 and significant) or (row.weak and not old.weak),
        ))
    return out


def sample_changes(a: dict[str, str], b: dict[str, str]) -> dict[str, int]:
    """{added, removed, changed} going from members `a` to `b` (id -> content hash)."""
    return {
        "added": sum(1 for i in b if i not in a),
        "removed": sum(1 for i in a if i not in b),
        "changed": sum(1 for i, h in b.items() if i in a and a[i] != h),
    }


def _low_members(ws: Workspace, members: dict[str, str], subgoal_id: str, ids: list[str]) -> list[str]:
    """Those of `ids` still in `members` that score below the support threshold on the subgoal."""
    goal = current_goal(ws, required=False)
    judge = current_judge(ws)
    if goal is None or judge is None:
        return []
    sub = goal.subgoal(subgoal_id)
    kept = [i for i in ids if i in members]
    judged = ws.store.judgments_among(judge.prompt_version, judge.model, [members[i] for i in kept])
    low = []
    for i in kept:
        found = judged.get((members[i], sub.hash))
        if found is None or found[0] < ws.settings.support_threshold:
            low.append(i)
    return low


def gap_changes(ws: Workspace, gaps_from: list[dict] | None, gaps_to: list[dict] | None, deltas: list[SubgoalDelta],
                members_to: dict[str, str]) -> dict[str, list[GapChange]]:
    """Gaps closed, opened and changed. With gaps found on both sides they are matched by members (same
    subgoal, Jaccard >= gaps.SAME_GAP_OVERLAP). Without gaps found on the later side, a gap is closed when its
    subgoal is no longer weak, changed when fewer of its members are still low-scoring; a subgoal newly weak
    counts as an opened gap."""
    weak_to = {d.id: d.weak_to for d in deltas}
    weak_from = {d.id: d.weak_from for d in deltas}
    out: dict[str, list[GapChange]] = {"closed": [], "opened": [], "changed": []}
    gaps_from = gaps_from or []
    if gaps_to is not None:
        taken: set[str] = set()
        for old in gaps_from:
            match = max(
                (g for g in gaps_to if g["subgoal_id"] == old["subgoal_id"] and g["id"] not in taken),
                key=lambda g: jaccard(old["member_ids"], g["member_ids"]), default=None,
            )
            if match is None or jaccard(old["member_ids"], match["member_ids"]) < SAME_GAP_OVERLAP:
                out["closed"].append(GapChange(id=old["id"], subgoal_id=old["subgoal_id"], label=old.get("label") or "",
                                               size_from=len(old["member_ids"]), size_to=0))
                continue
            taken.add(match["id"])
            if set(match["member_ids"]) != set(old["member_ids"]):
                out["changed"].append(GapChange(id=match["id"], subgoal_id=match["subgoal_id"], label=match.get("label") or "",
                                                size_from=len(old["member_ids"]), size_to=len(match["member_ids"])))
        for new in gaps_to:
            if new["id"] not in taken:
                out["opened"].append(GapChange(id=new["id"], subgoal_id=new["subgoal_id"], label=new.get("label") or "",
                                               size_from=0, size_to=len(new["member_ids"])))
        return out
    for old in gaps_from:
        change = GapChange(id=old["id"], subgoal_id=old["subgoal_id"], label=old.get("label") or "", size_from=len(old["member_ids"]))
        if not weak_to.get(old["subgoal_id"], False):
            change.size_to = 0
            out["closed"].append(change)
            continue
        change.size_to = len(_low_members(ws, members_to, old["subgoal_id"], old["member_ids"]))
        if change.size_to != change.size_from:
            out["changed"].append(change)
    gapped = {g["subgoal_id"] for g in gaps_from}
    for d in deltas:
        if d.weak_to and not d.weak_from and d.id not in gapped:
            out["opened"].append(GapChange(id=f"weak:{d.id}", subgoal_id=d.id, label="subgoal became weak"))
    return out


def diff_members(ws: Workspace, name_from: str, members_from: dict[str, str], name_to: str, members_to: dict[str, str],
                 gaps_from: list[dict] | None, gaps_to: list[dict] | None) -> DiffResult:
    """The diff of two member sets (id -> content hash) under this workspace's goal and judge."""
    rows_from, unscored_from = coverage_of(ws, members_from)
    rows_to, unscored_to = coverage_of(ws, members_to)
    deltas = compare(rows_from, len(members_from), rows_to, len(members_to))
    return DiffResult(
        from_=name_from, to=name_to, subgoals=deltas, gaps=gap_changes(ws, gaps_from, gaps_to, deltas, members_to),
        samples=sample_changes(members_from, members_to), regressions=[d.id for d in deltas if d.regression],
        unscored={"from": unscored_from, "to": unscored_to},
    )


def diff(ws: Workspace, from_ref: str | None = None, to_ref: str | None = None) -> DiffResult:
    """Version FROM against version TO (default: the one before the newest against the newest; a single
    version is diffed against itself). Calls no model. Raises BadInput for an unknown version."""
    newest = current_version(ws)
    ids = [r["id"] for r in hs.version_rows(ws.store)]
    to_id = resolve(ws, to_ref, newest or (ids[-1] if ids else 0))
    earlier = [i for i in ids if i < to_id]
    from_id = resolve(ws, from_ref, earlier[-1] if earlier else to_id)
    return diff_members(
        ws, f"v{from_id}", hs.members_of(ws.store, from_id), f"v{to_id}", hs.members_of(ws.store, to_id),
        gaps_of(ws, from_id), gaps_of(ws, to_id),
    )


async def diff_against(ws: Workspace, other: Path, *, dry_run: bool = False, max_cost: float | None = None,
                       progress=None) -> tuple[ScorePlan, DiffResult | None]:
    """This workspace's current version against the dataset of the workspace at `other`, under this
    workspace's goal and judge: (the plan of judging the other's samples — only content this workspace's
    cache lacks costs anything —, the diff; None with `dry_run`). The other workspace is only read.
    Raises BadInput when `other` is not a workspace with samples, or nothing is scored here yet."""
    from goalcover.tools.judge import scoring

    other = other.expanduser().resolve()
    if not (other / DB_NAME).is_file():
        raise BadInput(f"--against {other}: not a GoalCover workspace (no {DB_NAME} there)")
    if other == ws.root:
        raise BadInput(f"--against {other}: that is this workspace; give another one")
    judge = current_judge(ws)
    if judge is None:
        raise BadInput("nothing is scored in this workspace yet: run `goalcover score` first")
    with Workspace.open(other) as theirs:
        samples = list(theirs.store.iter_samples())
        fills = theirs.store.synthetic_rows(state="accepted")
    if not samples:
        raise BadInput(f"--against {other}: the workspace holds no samples")
    members_to = {s.id: s.content_hash for s in samples} | {r["id"]: content_hash(r["text"]) for r in fills}
    mode = judge.mode
    plan, _, _ = scoring.plan(ws, mode, samples, keep_tasks=False)
    if dry_run:
        return plan, None
    calls, cost = 0, 0.0
    if plan.to_score:
        result = await scoring.score(ws, mode, samples=samples, max_cost=max_cost, progress=progress)
        calls, cost = result.calls, result.cost
    version = current_version(ws)
    assert version is not None
    found = diff_members(ws, f"v{version}", hs.members_of(ws.store, version), str(other), members_to,
                         gaps_of(ws, version), None)
    found.calls, found.cost = calls, cost
    return plan, found
