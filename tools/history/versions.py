"""Dataset versions, coverage snapshots and the history built from them.

A version is the set of (sample id, content hash) pairs the workspace holds — the dataset plus the accepted
fills (synthetic or pool samples) — with a fingerprint, counts, sources, time and an optional note. Ingests
that change the dataset and review decisions that change the accepted fills record one; recording is
idempotent (same fingerprint as the newest version: nothing is added). Because judgments are cached by
content, the coverage of any past version under the current goal and judge is recomputed exactly from the
cache (`coverage_of`), with no model call. Every scoring run also records a snapshot of the coverage it saw
(with the estimate's intervals when the run was sampled) and, once `goalcover gaps` runs, the gaps.
"""

from __future__ import annotations

import hashlib
import statistics
from typing import Any

from pydantic import BaseModel, Field

from goalcover.tools.history import history_store as hs
from goalcover.tools.measure.coverage import supports
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.goal import current_goal
from goalcover.tools.core.shapes import content_hash
from goalcover.tools.core.store import GAPS_KEY
from goalcover.tools.judge.judge_ref import JudgeRef, current_judge
from goalcover.tools.core.workspace import Workspace

LAST_SEEN_KEY = "history_last_seen"  # meta: when a conversation last opened on the workspace (UTC, SQLite's format)


class ShareRow(BaseModel):
    """One subgoal's coverage in one version: supporting / samples, with a 95% Wilson interval (scipy)."""

    id: str
    title: str = ""
    supporting: int
    share: float = Field(description="supporting samples / samples of the version, 0-1")
    ci_low: float | None = None
    ci_high: float | None = None
    mean: float | None = Field(None, description="mean 1-5 score over the judged samples")
    weak: bool = False
    scored: int = Field(0, description="samples with a cached judgment of this subgoal")


class Version(BaseModel):
    """A dataset version as `goalcover history --json` lists it."""

    id: int
    created_at: str
    kind: str = Field(description="ingest, fill (review changed the accepted fills), or detected (found changed on opening)")
    note: str | None = None
    fingerprint: str
    samples: int = Field(description="dataset samples plus accepted fills")
    fills: int = Field(description="accepted fills (synthetic or pool samples) among them")
    sources: list[str]
    coverage: list[ShareRow] = Field(default_factory=list, description="recomputed from cached judgments; empty before scoring")
    unscored: int = Field(0, description="members with no cached judgment of some subgoal")
    snapshots: int = Field(0, description="scoring runs recorded on this version")


class History(BaseModel):
    """`goalcover history --json`: every version, oldest first."""

    versions: list[Version]


def current_members(ws: Workspace) -> tuple[dict[str, str], list[str], int]:
    """(id -> content hash of the dataset and the accepted fills, source paths, number of fills)."""
    members = {i: h for i, (h, _) in ws.store.sample_hashes().items()}
    fills = ws.store.synthetic_rows(state="accepted")
    for row in fills:
        members[row["id"]] = content_hash(row["text"])
    return members, [s["path"] for s in ws.store.sources()], len(fills)


def fingerprint(members: dict[str, str]) -> str:
    """SHA-256 (hex, first 16) of the sorted `id\\thash` lines: equal for equal member sets."""
    digest = hashlib.sha256()
    for i, h in sorted(members.items()):
        digest.update(f"{i}\t{h}\n".encode())
    return digest.hexdigest()[:16]


def record_version(ws: Workspace, kind: str, note: str | None = None) -> int | None:
    """Record the workspace's current members as a new version unless the newest version has the same
    fingerprint; returns the new version's id, or None when nothing changed (or the workspace is empty)."""
    members, sources, fills = current_members(ws)
    if not members:
        return None
    print_ = fingerprint(members)
    last = hs.latest_version(ws.store)
    if last is not None and last["fingerprint"] == print_:
        return None
    row = {"kind": kind, "note": note, "fingerprint": print_, "samples": len(members), "fills": fills, "sources": sources}
    return hs.insert_version(ws.store, row, members)


def current_version(ws: Workspace) -> int | None:
    """The id of the version matching the workspace now, recording one (kind `detected`) if a change was not
    recorded (a kill between an ingest's commit and its version, or a workspace older than history)."""
    record_version(ws, "detected")
    last = hs.latest_version(ws.store)
    return None if last is None else last["id"]


def resolve(ws: Workspace, ref: str | int | None, default: int) -> int:
    """A version id from `ref`: a number (`3`, `v3`), a negative offset from the newest (`-1` the one
    before it), `current`/`latest`, or None for `default`. Raises BadInput naming the versions there are."""
    rows = hs.version_rows(ws.store)
    ids = [r["id"] for r in rows]
    if not ids:
        raise BadInput("no dataset versions yet: run `goalcover ingest FILE` first")
    if ref is None:
        return default
    text = str(ref).strip().lower().removeprefix("v")
    if text in ("current", "latest"):
        return ids[-1]
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is not None and number < 0 and len(ids) >= -number + 1:
        return ids[number - 1]
    if number is not None and number in ids:
        return number
    raise BadInput(f"no dataset version {ref!r}; the workspace has v{ids[0]}..v{ids[-1]} (see `goalcover history`)")


def _wilson(k: int, n: int) -> tuple[float | None, float | None]:
    if n <= 0:
        return None, None
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return round(float(ci.low), 4), round(float(ci.high), 4)


def coverage_of(ws: Workspace, members: dict[str, str], judge: JudgeRef | None = None) -> tuple[list[ShareRow], int]:
    """(per-subgoal coverage of a member set under the current goal and `judge` (default the last one),
    members lacking a judgment of some subgoal), from the cached judgments only: no model call. A member
    counts once per id (content duplicates each count, as in the coverage report); weak follows the
    report's rules (tools/measure/coverage.py). ([], 0) before any scoring."""
    goal = current_goal(ws, required=False)
    judge = judge or current_judge(ws)
    if goal is None or judge is None or not members:
        return [], 0
    judged = ws.store.judgments_among(judge.prompt_version, judge.model, list(members.values()))
    settings = ws.settings
    rows: list[ShareRow] = []
    unscored: set[str] = set()
    for g in goal.subgoals:
        supporting = scored = total_score = 0
        for sid, h in members.items():
            found = judged.get((h, g.hash))
            if found is None:
                unscored.add(sid)
                continue
            scored += 1
            total_score += found[0]
            supporting += supports(found[0], found[2], settings)
        low, high = _wilson(supporting, len(members))
        rows.append(ShareRow(
            id=g.id, title=g.title, supporting=supporting, share=round(supporting / len(members), 4), ci_low=low,
            ci_high=high, mean=round(total_score / scored, 3) if scored else None, scored=scored,
        ))
    _decide_weak(rows, settings)
    return rows, len(unscored)


def _decide_weak(rows: list[ShareRow], settings) -> None:
    """The coverage report's weak rule (coverage._decide_weak) on ShareRows."""
    shares = [r.share for r in rows if r.scored]
    median_share = statistics.median(shares) if shares else 0.0
    for row in rows:
        row.weak = bool(row.scored) and (
            row.share < settings.weak_share
            or row.share < settings.weak_relative * median_share
            or (settings.weak_mean is not None and row.mean is not None and row.mean < settings.weak_mean)
        )


def record_snapshot(ws: Workspace, run_id: int | None) -> int | None:
    """Record the coverage report of the current version after a scoring run (per subgoal: share with its
    interval when estimated, mean, weak, supporting; and the stored gaps). A few rows; returns its id."""
    from goalcover.tools.measure.coverage import coverage

    version = current_version(ws)
    if version is None:
        return None
    report = coverage(ws, best=0)
    rows = [
        {k: getattr(r, k) for k in ("id", "share", "ci_low", "ci_high", "mean", "weak", "supporting", "scored")}
        for r in report.subgoals
    ]
    return hs.insert_snapshot(ws.store, version, run_id, report.judge.to_stored() if report.judge else {}, rows, None)


def record_gaps(ws: Workspace) -> None:
    """Attach the stored gaps (id, subgoal, label, members) to the newest snapshot of the current version,
    recording one if the version has none yet, so diffs can match gaps by their members."""
    gaps = [
        {k: g.get(k) for k in ("id", "subgoal_id", "label", "member_ids")} for g in ws.store.get_meta(GAPS_KEY, [])
    ]
    version = current_version(ws)
    if version is None:
        return
    snaps = hs.snapshot_rows(ws.store, version)
    snap_id = snaps[-1]["id"] if snaps else record_snapshot(ws, None)
    if snap_id is not None:
        hs.set_snapshot_gaps(ws.store, snap_id, gaps)


def gaps_of(ws: Workspace, version_id: int) -> list[dict] | None:
    """The gaps recorded on a version (its newest snapshot with gaps), or None when none were found on it."""
    for snap in reversed(hs.snapshot_rows(ws.store, version_id)):
        if snap["gaps"] is not None:
            return snap["gaps"]
    return None


def history(ws: Workspace) -> History:
    """Every version, oldest first, with its coverage recomputed from the cached judgments (no call)."""
    current_version(ws)
    counts: dict[int, int] = {}
    for snap in hs.snapshot_rows(ws.store):
        counts[snap["version_id"]] = counts.get(snap["version_id"], 0) + 1
    out = []
    for row in hs.version_rows(ws.store):
        rows, unscored = coverage_of(ws, hs.members_of(ws.store, row["id"]))
        out.append(Version(**row, coverage=rows, unscored=unscored, snapshots=counts.get(row["id"], 0)))
    return History(versions=out)


class SinceSummary(BaseModel):
    """What happened in a workspace after a visit: new versions, scoring runs, accepted fills, exports."""

    versions: list[int] = []
    runs: int = 0
    fills_accepted: int = 0
    exports: int = 0
    text: str = ""


def visit_marker(ws: Workspace) -> dict[str, Any]:
    """Where the workspace stands now, to compare a later visit with: newest version id, newest run id,
    accepted fills, and the time (UTC, SQLite's CURRENT_TIMESTAMP format)."""
    current_version(ws)
    last = hs.latest_version(ws.store)
    run = ws.store.db.execute("SELECT COALESCE(MAX(id), 0), CURRENT_TIMESTAMP FROM runs").fetchone()
    return {"version": last["id"] if last else 0, "run": run[0], "fills": last["fills"] if last else 0, "at": run[1]}


def since(ws: Workspace, marker: dict[str, Any]) -> SinceSummary:
    """The "since last time" summary: what changed after `marker` (a visit_marker)."""
    now = visit_marker(ws)
    new = [r["id"] for r in hs.version_rows(ws.store) if r["id"] > marker.get("version", 0)]
    runs = ws.store.db.execute("SELECT COUNT(*) FROM runs WHERE kind = 'score' AND id > ?", (marker.get("run", 0),)).fetchone()[0]
    exports = sum(1 for p in ws.exports_dir.glob("*.manifest.json") if _mtime_utc(p) > marker.get("at", ""))
    summary = SinceSummary(versions=new, runs=runs, fills_accepted=max(0, now["fills"] - marker.get("fills", 0)), exports=exports)
    parts = []
    if new:
        parts.append(f"{len(new)} new dataset version(s) (v{new[0]}..v{new[-1]})")
    if runs:
        parts.append(f"{runs} scoring run(s)")
    if summary.fills_accepted:
        parts.append(f"{summary.fills_accepted} fill(s) accepted")
    if exports:
        parts.append(f"{exports} export(s)")
    summary.text = "Since last time: " + (", ".join(parts) if parts else "nothing changed") + "."
    return summary


def since_last_visit(ws: Workspace, mark: bool = True) -> str | None:
    """The "since last time" line for a conversation opening on this workspace (the chat app on resume,
    `goalcover chat` on start): None on the first visit or when nothing changed. With `mark`, now becomes
    the last visit (meta LAST_SEEN_KEY)."""
    last = ws.store.get_meta(LAST_SEEN_KEY)
    if mark:
        ws.store.set_meta(LAST_SEEN_KEY, visit_marker(ws))
    if not last:
        return None
    found = since(ws, last)
    if not (found.versions or found.runs or found.fills_accepted or found.exports):
        return None
    return found.text


def _mtime_utc(path) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
