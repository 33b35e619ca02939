"""One agent turn in the chat: the events of `Session.send` / `Session.answer` (the graph's `astream`)
rendered as they arrive — the streamed reply, a step per tool call with its inputs and outputs, a live
progress line, approval buttons, and the views a finished tool calls for (the draft, charts, gaps,
samples to review, downloads).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import chainlit as cl
from chainlit.utils import utc_now

from goalcover.agent.session import Approval, Progress, Reply, Text, ToolStep
from goalcover.tools.core.errors import GoalCoverError
from goalcover.tools.core import plans
from goalcover.ui import render, runs, views
from goalcover.ui.output import ProgressLine, action, tool_step

if TYPE_CHECKING:
    from goalcover.ui.webchat import WebChat


# The agent's paid tools, as a watching tab names the run ("Scoring is running in this workspace").
RUN_BY_TOOL = {"run_scoring": "scoring", "estimate_scoring": "the scoring estimate", "find_gaps": "gap finding",
               "synthesize_samples": "synthesis", "fill_from_pool": "filling from the pool", "verify_fill": "the fill check"}


class TurnView:
    """How one turn's events show."""

    def __init__(self, chat: "WebChat") -> None:
        self.chat = chat
        self.out = chat.out
        self.streaming: cl.Message | None = None
        self.streamed = ""  # the raw text streamed into `streaming` (shown through render.stream_markdown)
        self.steps: list[tuple[str, cl.Step]] = []
        self.progress: ProgressLine | None = None
        self.last_tool = ""
        self.tools_done: list[str] = []
        self.asked = False  # the turn ended on an approval the user is to answer
        self.deferred: list = []  # views shown once the agent's reply is complete

    async def show(self, event) -> None:
        """Show one agent event in the chat: streamed text, a tool step, progress or an approval."""
        if isinstance(event, Text):
            if self.streaming is None:
                self.streaming = cl.Message(content="")
            await self.streaming.stream_token(render.stream_markdown(self.streamed, event.text))
            self.streamed += event.text
        elif isinstance(event, Reply):
            await self.reply(event.text)
        elif isinstance(event, ToolStep):
            await self.tool(event)
        elif isinstance(event, Progress):
            if self.progress is not None and self.progress.tool != event.tool:
                await self.progress.end()
                self.progress = None
            if self.progress is None:
                role = "judge" if event.tool == "run_scoring" else "synth" if event.tool == "synthesize_samples" else "agent"
                self.progress = ProgressLine(event.tool, plans.priced(self.chat.ws.settings.model_for(role, need_key=False)))
            self.progress.push(event.done, event.total, **event.fields)
        elif isinstance(event, Approval):
            self.asked = True
            await approval(self.chat, event)

    async def reply(self, text: str) -> None:
        """Send `text` as the agent's reply (completing the streamed message, if one is open), as Markdown
        that fetches and links nothing (render.reply_markdown); tabs watching this run show it when the run
        ends (ui/runs.py)."""
        shown = render.reply_markdown(text)
        runs.replied(shown)
        if self.streaming is not None:
            self.streaming.content = shown
            await self.streaming.send()
            self.streaming, self.streamed = None, ""
        else:
            await cl.Message(content=shown).send()

    async def end_progress(self, stopped: bool = False) -> None:
        """Close the progress line, if any (as stopped when `stopped`)."""
        if self.progress is not None:
            await self.progress.end(stopped)
            self.progress = None

    async def tool(self, event: ToolStep) -> None:
        """Show a tool step: its start, then its result (with the views some tools add)."""
        if event.status == "start":
            if self.streaming is not None:  # text before a tool call is a reply of its own
                await self.reply(self.streamed)
            if event.name in RUN_BY_TOOL:
                runs.doing(RUN_BY_TOOL[event.name])
            step = tool_step(event.name, event.args)
            await step.send()
            self.steps.append((event.name, step))
            self.last_tool = event.name
            return
        await self.end_progress()
        found = next((i for i in range(len(self.steps) - 1, -1, -1) if self.steps[i][0] == event.name), None)
        step = tool_step(event.name, event.args) if found is None else self.steps.pop(found)[1]
        step.end = utc_now()
        step.is_error = event.status == "error"
        step.output = render.step_output(event.summary, event.display)
        if event.status == "done" and event.name == "show_samples":
            step.output = event.summary + "\n\n" + await views.samples_markdown(self.chat.ws, list(event.args.get("ids", [])))
        await (step.send() if found is None else step.update())
        if event.status == "done":
            self.tools_done.append(event.name)
            await self.after(event)

    async def after(self, event: ToolStep) -> None:
        """What a finished tool adds to the chat beyond its step."""
        chat, ws, args = self.chat, self.chat.ws, event.args
        if event.name in ("propose_subgoals", "edit_subgoals"):
            await chat.show_draft(event.display)
        elif event.name == "approve_goal" and event.display:
            await chat.draft_done()
            await views.draft_view(self.out, event.display, approved=True)
        elif event.name == "discard_draft":
            await chat.draft_done()
        elif event.name in ("run_scoring", "coverage"):
            await views.coverage_view(self.out, ws)
        elif event.name == "review_synthetic" and (args.get("accept") or args.get("reject")):
            await views.coverage_view(self.out, ws)
        elif event.name == "find_gaps":
            await views.gaps_view(self.out, ws, args.get("subgoal_id"))
        elif event.name == "why_weak":  # the facts go beside the agent's answer, after it
            self.deferred.append(lambda: self.why_facts(str(args.get("subgoal_id", ""))))
        elif event.name == "synthesize_samples":
            await views.synthetic_view(self.out, ws, args.get("gap_id"))
        elif event.name == "export_dataset":
            path = ws.exports_dir / str(args.get("filename", ""))
            if path.is_file():
                elements = [cl.File(name=path.name, path=str(path), display="inline")]
                from goalcover.tools.data.export import manifest_path_for

                manifest = manifest_path_for(path)
                manifest = manifest if manifest.is_file() else None
                if manifest is not None:
                    elements.append(cl.File(name=manifest.name, path=str(manifest), display="inline"))
                await self.out.send(f"{event.summary}. Download:", elements=elements)

    async def finish(self, error: BaseException | None, stopped: bool = False) -> None:
        """The end of a turn: close what is still open, say how it ended, offer the next steps."""
        if self.streaming is not None:
            await self.reply(self.streamed + (" …" if error or stopped else ""))
        await self.end_progress(stopped=stopped)
        open_tools = [name for name, _ in self.steps]
        for _, step in self.steps:
            step.end = utc_now()
            step.is_error = True
            step.output = "stopped" if stopped else f"not finished: {error}"
            await step.update()
        self.steps = []
        if stopped:
            runs.mark_stopped()
            tool = open_tools[-1] if open_tools else self.last_tool
            if tool == "run_scoring":
                await self.chat.actions.scoring_stopped()
            else:
                await self.out.send("Stopped. The conversation is kept: ask again to go on.", await views.next_actions(self.chat.ws))
            return
        if isinstance(error, GoalCoverError):
            await self.out.error(str(error))
        elif error is not None:
            await self.chat.internal_error(error)
        for show in self.deferred:
            await show()

    async def why_facts(self, subgoal_id: str) -> None:
        """Show why a subgoal is weak from the computed facts only (no model call)."""
        from goalcover.tools.fill.why import why

        answer = await why(self.chat.ws, subgoal_id, prose=False)  # the facts only: no model call
        await views.why_view(self.out, self.chat.ws, answer.subgoal_id, "The facts behind the answer above:", answer.facts)


async def approval(chat: "WebChat", event: Approval) -> None:
    """The agent waits for a yes before a paid step: its plan and cost, and two buttons."""
    role = "judge" if event.tool == "run_scoring" else "synth"
    priced = plans.priced(chat.ws.settings.model_for(role, need_key=False))
    await chat.out.send(
        render.approval_markdown(event.tool, event.question, event.plan, priced=priced),
        [action("answer", "Run it", approve=True), action("answer", "Don't run", approve=False)],
    )
