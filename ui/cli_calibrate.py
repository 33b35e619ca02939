"""CLI command `calibrate`: the user spot-checks the judge, and sees how far its scores agree."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from goalcover.ui.cli_output import err, open_workspace, out, print_json
from goalcover.ui.common import JsonOpt, WorkspaceOpt, handle_errors
from goalcover.ui.inert import inert

PROMPT = "agree [a] · your score [1-5] · more [m] · skip [s] · quit [q]"


def _ask(item, index: int, total: int, out=out) -> int | None | str:
    """Show one judgment on `out` and read the verdict: an int (the user's score), None (agree), "skip"
    or "quit"."""
    out.rule(f"{index}/{total} · {item.subgoal_id} {item.subgoal_title}", style="dim")
    out.print(f"[bold]sample[/] {inert(item.sample_id)}", highlight=False)
    out.print(inert(item.folded(), markup=False), highlight=False, markup=False)
    out.print(f"[bold]subgoal[/] {item.subgoal_id} {inert(item.subgoal_title)}: {inert(item.subgoal_description)}", highlight=False)
    weighted = f" (weighted {item.weighted_score:.2f})" if item.weighted_score is not None else ""
    out.print(f"[bold]judge[/] {item.score}/5{weighted} — {inert(item.explanation)}", highlight=False)
    while True:
        answer = typer.prompt(PROMPT, default="a", show_default=False, err=out is err).strip().lower()
        if answer in ("a", "agree", "y"):
            return None
        if answer in ("1", "2", "3", "4", "5"):
            return int(answer)
        if answer in ("s", "skip"):
            return "skip"
        if answer in ("q", "quit"):
            return "quit"
        if answer in ("m", "more"):
            out.print(inert(item.text, markup=False), highlight=False, markup=False)
            continue
        err.print(f"{answer!r}? {PROMPT}", highlight=False, markup=False)


@handle_errors
def calibrate(
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="How many judgments to check.")] = 20,
    subgoal: Annotated[Optional[str], typer.Option("--subgoal", help="Check only this subgoal (e.g. S3).", show_default=False)] = None,
    apply: Annotated[Optional[str], typer.Option("--apply", help="Give this subgoal your labels as scored examples in the judge's prompt (then `goalcover score` re-scores it only).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Spot-check the judge: agree with its score or give your own, then see how far the two agree.

    Shows judgments you have not labelled yet, spread over the subgoals and over the scores 1-5: the sample
    (long ones folded; `m` shows all), the subgoal, the judge's score and explanation. Your labels are kept
    in the workspace; agreement per subgoal (exact, within 1, quadratic-weighted Cohen's κ with a bootstrap
    interval) is printed here and shown by `goalcover report`, which flags subgoals that agree poorly.
    With --json the answers are read from stdin, one per line, and the agreement is printed as JSON.
    With --apply S3, S3's labels become scored examples in the judge's prompt for S3 (the disagreements
    first, up to 4); S3's cache key changes, so the next `goalcover score` re-scores S3 only.
    """
    from goalcover.tools.judge.calibration import agreement_now, apply_labels, save_label, to_review

    if apply:
        with open_workspace(workspace) as ws:
            old, new = apply_labels(ws, apply)
        if as_json:
            print_json({"subgoal_id": new.id, "anchors": len(new.anchors), "old_hash": old.hash, "new_hash": new.hash})
            return
        out.print(f"{new.id} now shows the judge {len(new.anchors)} of your scored samples as examples; "
                  f"`goalcover score` re-scores {new.id} only (the other subgoals' scores stay).", highlight=False)
        return
    with open_workspace(workspace) as ws:
        items = to_review(ws, n, subgoal)
        if not items:
            err.print("every judgment in reach is labelled already", highlight=False)
        labelled = skipped = 0
        for index, item in enumerate(items, 1):
            verdict = _ask(item, index, len(items), err if as_json else out)  # --json: stdout holds only the JSON
            if verdict == "quit":
                break
            if verdict == "skip":
                skipped += 1
                continue
            save_label(ws, item, verdict)  # type: ignore[arg-type]
            labelled += 1
        found = agreement_now(ws)
    if as_json:
        print_json({"labelled": labelled, "skipped": skipped, "agreement": {k: v.model_dump() for k, v in found.items()}})
        return
    out.print(f"\n{labelled} labelled, {skipped} skipped.", highlight=False)
    for sid, a in found.items():
        kappa = "—" if a.kappa is None else f"{a.kappa:.2f}" + (
            f" ({a.kappa_ci_low:.2f}–{a.kappa_ci_high:.2f})" if a.kappa_ci_low is not None else "")
        flag = "  ⚠ poor: its scores disagree with your checks" if a.poor else ""
        out.print(f"{sid}: {a.labels} labels · {a.exact:.0%} exact · {a.within_1:.0%} within 1 · κ {kappa}{flag}",
                  highlight=False)
