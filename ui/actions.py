"""The buttons: each step of the journey — goal, approve, score, coverage, gaps, why, fill, review,
export — done directly with the engine functions the agent's tools call, so the whole journey works even
when the model never calls a tool. Paid steps (scoring, gap labelling, synthesis) show their plan and cost
first and run only on "Run it". Stopping is cancelling the task (Chainlit's stop button): the engine keeps
what was paid for, and the view says what is left.

Every method runs as its own task (ui/app.py) and holds the chat's lock, one piece of work at a time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from goalcover.tools.core import plans
from goalcover.tools.core.errors import BadInput, GoalCoverError
from goalcover.ui import views
from goalcover.ui.output import ProgressLine, action
from goalcover.ui.views import call

if TYPE_CHECKING:
    from goalcover.tools.judge.judge_ref import JudgeRef
    from goalcover.ui.webchat import WebChat

FILL_N = 10  # synthetic samples asked for by the "Fill" button


def _not_now() -> Any:
    return action("dismiss", "Not now")


class Actions:
    """What each button does, for one chat."""

    def __init__(self, chat: "WebChat") -> None:
        self.chat = chat

    @property
    def ws(self):
        """The chat's workspace."""
        return self.chat.ws

    @property
    def out(self):
        """The chat's output (messages, buttons, progress lines)."""
        return self.chat.out

    @property
    def judge(self) -> JudgeRef:
        """The judge the buttons score with: resolved from the settings (GOALCOVER_JUDGE_MODE, the judge
        model) by JudgeRef.resolve, as the CLI and the agent resolve it."""
        from goalcover.tools.judge.judge_ref import JudgeRef

        return JudgeRef.resolve(self.ws.settings)

    async def say(self, text: str) -> None:
        """Show `text` as the user's own message (what the clicked button asked for)."""
        await self.out.user(text, self.chat.user_name)

    # --- the goal -------------------------------------------------------------------------------------
    async def propose(self, goal: str) -> None:
        """Split the goal into subgoals (the engine's proposal, as the agent's propose_subgoals)."""
        from goalcover.tools.core.goal import propose_subgoals

        await self.say(f"My goal: {goal}")
        line = ProgressLine("propose_subgoals")
        line.push(stage="drafting subgoals, then checking them for overlaps and vague wording")
        proposal = await line.around(propose_subgoals(self.ws, goal))
        draft = [s.model_dump() for s in proposal.goal.subgoals]
        await self.chat.set_draft(draft, proposal.goal.text)
        await views.draft_view(self.out, [f"{s['id']}. {s['title']} — {s['description']}" for s in draft])

    async def approve_goal(self) -> None:
        """Save the draft (the one the agent or the Propose button made) as the workspace's goal."""
        from goalcover.tools.core.goal import save_goal
        from goalcover.tools.core.shapes import Goal, Subgoal

        draft, text = await self.chat.current_draft()
        if not draft:
            await self.out.send("There is no draft to approve: the goal is already saved.", await views.next_actions(self.ws))
            return
        await self.say("I approve these subgoals.")
        goal = Goal(text=text or "", subgoals=[Subgoal.model_validate(s) for s in draft])
        await call(save_goal, self.ws, goal)
        await self.chat.set_draft(None, goal.text, approved=[s.model_dump() for s in goal.subgoals])
        await views.draft_view(self.out, [f"{s.id}. {s.title} — {s.description}" for s in goal.subgoals], approved=True)
        await views.next_steps(self.out, self.ws, "Next, score the dataset against them: you see the plan and its cost first.")

    # --- scoring --------------------------------------------------------------------------------------
    async def score(self) -> None:
        """The scoring plan and its cost; scoring itself starts on "Run it"."""
        plan = await asyncio.to_thread(plans.scoring_plan, self.ws, self.judge)
        if plan.free:
            await views.coverage_view(self.out, self.ws, "Every pair is scored already: nothing to pay for.")
            return
        await self.out.send(plan.markdown("Run it? Stopping keeps every judgment that arrived; running again pays only for the rest."),
                            [action("score_run", "Run it"), _not_now()])

    async def score_run(self) -> None:
        """Button "Run scoring": score the pairs not scored yet (after approval), with a progress line; then the coverage."""
        from goalcover.tools.judge import scoring

        await self.say("Run the scoring.")
        line = ProgressLine("run_scoring", plans.priced(self.ws.settings.model_for("judge", need_key=False)))
        try:
            result = await scoring.score(self.ws, self.judge, progress=line.push)
            line.push(stage="indexing scores")
            await call(scoring.index_scores, self.ws)
        except asyncio.CancelledError:
            await line.end(stopped=True)
            await self.scoring_stopped()
            return
        except BaseException:
            await line.end(failed=True)
            raise
        await line.end()
        await views.coverage_view(
            self.out, self.ws, f"Scoring finished: {result.new} new judgments, {result.failed} failed, {result.calls} calls."
        )

    async def scoring_stopped(self) -> None:
        """After a stop: how many samples are scored, and coverage estimated over them (with its Resume)."""
        from goalcover.tools.measure.coverage import coverage

        try:
            report = await call(coverage, self.ws)
        except GoalCoverError:
            await self.out.send("Scoring stopped.", await views.next_actions(self.ws))
            return
        scored = report.estimate.samples if report.estimate is not None else report.samples
        await views.coverage_view(
            self.out, self.ws,
            f"**Scoring stopped.** {scored:,} of {report.samples:,} samples are scored and saved. Resuming scores only "
            "the rest: nothing already scored is paid again. Until then the figures below are estimates over the "
            "scored samples.",
        )

    async def coverage(self) -> None:
        """Button "Coverage": the coverage table of the stored judgments."""
        await views.coverage_view(self.out, self.ws)

    async def report(self) -> None:
        """Button "Report": the coverage report as a downloadable HTML file."""
        import chainlit as cl

        from goalcover.tools.measure.coverage import coverage
        from goalcover.tools.measure.report import render as render_report

        report = await call(coverage, self.ws)
        if not report.judge:
            await self.out.send("There are no scores yet: score the dataset first.", await views.next_actions(self.ws))
            return
        path = self.ws.reports_dir / "coverage-report.html"
        html = await asyncio.to_thread(render_report, report, "html")
        from goalcover.tools.core.files import write_atomic  # never through a symlink planted at the name

        await asyncio.to_thread(write_atomic, path, html)
        await self.out.send("The coverage report (one HTML file, charts included, opens offline):",
                            elements=[cl.File(name=path.name, path=str(path), display="inline")])

    # --- checking the judge ---------------------------------------------------------------------------
    async def check_judge(self) -> None:
        """Button "Check the judge": samples to score yourself, to measure the judge's agreement."""
        await self.say("Let me check the judge.")
        await views.judge_check_view(self.out, self.ws)

    async def judge_label(self, payload: dict) -> None:
        """Store the user's verdict on the pair the button carried, then show the next one."""
        from goalcover.tools.judge.calibration import save_label

        pair = {k: payload[k] for k in ("sample_hash", "subgoal_hash", "sample_id", "subgoal_id", "score")}
        user = payload.get("user_score")
        await asyncio.to_thread(save_label, self.ws, pair, None if user is None else int(user))
        said = f"agree ({pair['score']})" if user is None else f"my score: {user}"
        await views.judge_check_view(self.out, self.ws, f"{pair['subgoal_id']} × `{pair['sample_id']}`: {said}. Next:")

    async def judge_check_done(self) -> None:
        """After the user's spot-checks: the agreement per subgoal, and for poorly agreeing ones a button to teach the judge."""
        from goalcover.tools.judge.calibration import agreement_now

        found = await asyncio.to_thread(agreement_now, self.ws)
        text = views.agreement_markdown(found) or "No labels yet."
        poor = [sid for sid, a in found.items() if a.poor and sid != "overall"]
        teach = [action("judge_apply", f"Teach the judge {sid} with my scores",
                        "your scored samples become examples in its prompt; then only that subgoal is re-scored", subgoal_id=sid)
                 for sid in poor]
        await self.out.send(text + "\n\nThe coverage report shows these figures and flags subgoals that agree poorly.",
                            teach + await views.next_actions(self.ws))

    async def judge_apply(self, subgoal_id: str) -> None:
        """The user's labels of one subgoal become its rubric anchors; then the scoring plan (that subgoal only)."""
        from goalcover.tools.judge.calibration import apply_labels

        await self.say(f"Use my scores as examples for {subgoal_id}.")
        _, new = await asyncio.to_thread(apply_labels, self.ws, subgoal_id)
        await self.out.send(f"{new.id} now shows the judge {len(new.anchors)} of your scored samples as examples. "
                            f"Re-scoring it leaves the other subgoals' scores as they are:")
        await self.score()

    # --- gaps and why ---------------------------------------------------------------------------------
    async def find_gaps(self) -> None:
        """The gap-labelling plan; clustering and labels run on "Run it"."""
        from goalcover.tools.measure.coverage import coverage

        report = await call(coverage, self.ws)
        weak = [s.id for s in report.subgoals if s.weak]
        if not weak:
            await self.out.send("No subgoal is weak, so there are no gaps to find.", await views.next_actions(self.ws, skip=("find_gaps",)))
            return
        plan = await asyncio.to_thread(plans.gaps_plan, self.ws)
        await self.out.send(plan.markdown(), [action("gaps_run", "Run it"), _not_now()])

    async def gaps_run(self) -> None:
        """Button "Find gaps" after approval: cluster and name the gaps of the weak subgoals, with a progress line."""
        from goalcover.tools.fill.gaps import find_gaps

        await self.say("Find the gaps of the weak subgoals.")
        line = ProgressLine("find_gaps")
        line.push(stage="clustering the judge's explanations and naming each gap")
        await line.around(find_gaps(self.ws))
        await views.gaps_view(self.out, self.ws)

    async def why(self, subgoal_id: str) -> None:
        """Why a subgoal is weak: the engine's grounded answer (read-only), with its facts beside it."""
        from goalcover.tools.fill.why import why

        answer = await why(self.ws, subgoal_id)
        await self.say(f"Why is {subgoal_id} weak?" if answer.facts.coverage.weak else f"How is {subgoal_id} covered?")
        await views.why_view(self.out, self.ws, answer.subgoal_id, answer.answer, answer.facts)

    async def show_sample(self, ids: list[str]) -> None:
        """Show the samples `ids` in full."""
        await views.sample_view(self.out, self.ws, ids)

    # --- synthesis, review, export --------------------------------------------------------------------
    async def fill(self, gap_id: str, label: str, n: int = FILL_N) -> None:
        """The synthesis plan for a gap, if it is still the gap the button showed."""
        from goalcover.tools.fill.gaps import stored_gaps

        gap = next((g for g in await call(stored_gaps, self.ws) if g.id == gap_id), None)
        if gap is None or (label and gap.label != label):
            await self.out.send("The gaps were found again since that button was shown. Here they are now:")
            await views.gaps_view(self.out, self.ws)
            return
        plan = await asyncio.to_thread(plans.synthesis_plan, self.ws, gap.id, n)
        await self.out.send(plan.markdown("Run it? New samples wait for your review before they count."),
                            [action("fill_run", "Run it", gap_id=gap.id, n=n), _not_now()])

    async def fill_run(self, gap_id: str, n: int) -> None:
        """Synthesize `n` samples for gap `gap_id` after approval, with a progress line; then the review list."""
        from goalcover.tools.fill.synthesis import synthesize

        await self.say(f"Fill gap {gap_id} with {n} synthetic samples.")
        line = ProgressLine("synthesize_samples")
        line.push(stage=f"generating {n} candidates, then judging them")
        result = await line.around(synthesize(self.ws, gap_id, n))
        await self.out.send(f"Generated {result.generated}: {result.kept} kept for review, {result.duplicates} duplicates, "
                            f"{result.rejected_by_judge} rejected by the judge.")
        await views.synthetic_view(self.out, self.ws, gap_id)

    async def review_list(self) -> None:
        """The synthetic samples with their review state."""
        await views.synthetic_view(self.out, self.ws)

    async def review(self, ids: list[str], accept: bool) -> None:
        """Accept (or reject) the synthetic samples `ids`; a BadInput is shown as an error."""
        from goalcover.tools.fill.synthesis import review

        try:
            items = await call(review, self.ws, ids if accept else [], [] if accept else ids)
        except BadInput as exc:
            await self.out.error(str(exc))
            return
        counts = {state: sum(i.state == state for i in items) for state in ("proposed", "accepted", "rejected")}
        verb = "Accepted" if accept else "Rejected"
        shown = ", ".join(ids) if ids != ["all"] else "all proposed samples"
        text = (f"{verb} {shown}. Synthetic samples: **{counts['accepted']} accepted**, {counts['rejected']} rejected, "
                f"{counts['proposed']} waiting for review.")
        if counts["proposed"]:  # a count, not the whole report again: the cards above still have their buttons
            await self.out.send(text)
        else:
            await self.out.send(text + " Coverage with the accepted samples is in **Show coverage**.",
                                await views.next_actions(self.ws, skip=("review_list",)))
        if accept:
            from goalcover.ui.iterate_views import verify_view

            await verify_view(self.out, self.ws)  # did the fills close their gap, any regression?

    async def export(self) -> None:
        """The export the agent's export_dataset tool writes, by the same engine function."""
        from goalcover.tools.data.exports_folder import export_to_workspace

        result = await call(export_to_workspace, self.ws)
        await views.export_view(self.out, self.ws, result)
