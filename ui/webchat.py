"""One browser session's conversation: its workspace, the agent session, and how their events show.

The handlers in ui/app.py hand everything to a `WebChat`. Blocking work — an agent turn (LangGraph, the
engine's model calls) or an ingest — runs in a worker thread, one at a time; its events come back to the
event loop through a queue and are rendered as they arrive: streamed replies, a step per tool call with its
inputs and outputs, a live progress line, approval buttons, charts, samples and downloads. The stop button
interrupts the worker (see ui/stopping.py); the conversation itself lives in the workspace's checkpoints,
so reopening the page replays it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.utils import utc_now

from goalcover.agent.session import Approval, Progress, Reply, Session, Text, ToolStep
from goalcover.tools.errors import BadInput, GoalCoverError
from goalcover.tools.workspace import Workspace
from goalcover.ui import render
from goalcover.ui.stopping import Stopper, StopRequested

log = logging.getLogger("goalcover.ui")

HISTORY_SHOWN = 80  # messages replayed when a conversation is reopened
PROGRESS_EVERY_S = 0.25  # at most this often a progress line is redrawn
FILL_N = 10  # synthetic samples asked for by the "Fill" button
DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
SAY = {  # what a button says to the agent, shown in the chat as the user's message
    "approve_goal": "I approve these subgoals.",
    "score": "Score the dataset.",
    "find_gaps": "Which gaps do the weak subgoals have?",
    "resume_scoring": "Continue scoring the dataset where it stopped.",
}


class StoppableSession(Session):
    """The agent session with the stopper in its run config, so the stop button reaches the graph's
    worker threads."""

    def __init__(self, ws: Workspace, thread_id: str | None, stopper: Stopper) -> None:
        self.stopper = stopper
        super().__init__(ws, thread_id)

    @property
    def run_config(self) -> dict:
        return {**super().run_config, "callbacks": [self.stopper]}


class Worker:
    """One daemon thread that runs a chat's work, one piece after the other (a daemon, so that stopping the
    server never waits for a long run: what it did is committed as it goes)."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="goalcover-work", daemon=True).start()

    def submit(self, job: Callable[[], None]) -> None:
        self.jobs.put(job)

    def close(self) -> None:
        self.jobs.put(None)

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            job()


@dataclass
class _Done:
    error: BaseException | None = None


# The one piece of state shared by the browser sessions of this server: which conversations have a turn
# running (a reloaded page is a new session on the same conversation, while the old one may still be working).
_running: set[tuple[Path, str]] = set()


def action(name: str, label: str, **payload: Any) -> cl.Action:
    return cl.Action(name=name, label=label, payload=payload)


def tool_step(name: str, args: Any) -> cl.Step:
    """A step for one tool call, placed like the messages around it (inside the current run, if any)."""
    parent = cl.context.current_step
    step = cl.Step(name=name, type="tool", show_input="json", parent_id=parent.id if parent else None)
    step.input = args
    step.start = utc_now()
    return step


class WebChat:
    """The chat of one browser session on one workspace folder (the user's own, when users log in)."""

    def __init__(self, root: Path, user_name: str = "You", typed_paths: bool = True) -> None:
        self.root = root
        self.user_name = user_name
        self.typed_paths = typed_paths  # off when users log in: a typed path could read any file on the server
        self.ws: Workspace | None = None
        self.worker = Worker()  # one thread for the chat's life: the store opens a connection per thread
        self.session: StoppableSession | None = None
        self.stopper = Stopper()
        self.lock = asyncio.Lock()  # one piece of work at a time
        self.live: dict[str, cl.Message] = {}  # messages whose buttons still work, by message id
        self.offered: set[str] = set()  # files the user was asked about (replace or add), the only ones a button may ingest
        self.agent_error: str | None = None
        self.view = View(self)

    # --- opening and closing ----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the workspace and continue its last conversation, or welcome a new one."""
        self.ws = await asyncio.to_thread(Workspace.open, self.root)
        session = await self.agent(quiet=True)
        history = await asyncio.to_thread(session.messages) if session else []
        if history:
            await self.replay(history)
            for approval in (await asyncio.to_thread(session.pending))[:1]:
                await self.view.approval(approval)
        else:
            await self.welcome()

    async def agent(self, quiet: bool = False) -> StoppableSession | None:
        """The agent session (opened on first use: it checks once that the model can call tools)."""
        if self.session is None:
            from goalcover.agent.threads import last_thread

            try:
                self.session = await asyncio.to_thread(StoppableSession, self.ws, last_thread(self.ws), self.stopper)
            except GoalCoverError as exc:
                self.agent_error = str(exc)
                if not quiet:
                    await cl.ErrorMessage(content=f"The agent is not available: {exc}", author="GoalCover").send()
                return None
        return self.session

    def leave(self, new_chat: bool) -> None:
        """The browser disconnected. After "New chat" the next visit starts a new conversation and this
        one's work stops; otherwise nothing changes (Chainlit may restore this session on reconnect, and a
        reload continues the same conversation)."""
        if not new_chat or self.ws is None:
            return
        from goalcover.agent.threads import new_thread_id, remember_thread

        remember_thread(self.ws, new_thread_id())
        if self.lock.locked():
            self.stopper.stop()
        asyncio.ensure_future(self._close_when_idle())

    async def _close_when_idle(self) -> None:
        async with self.lock:
            for closable in (self.session, self.ws):
                if closable is not None:
                    await asyncio.to_thread(closable.close)
            self.session = self.ws = None
            self.worker.close()

    # --- what the user does -----------------------------------------------------------------------
    async def handle(self, message: cl.Message) -> None:
        """A message from the chat box: uploaded files are ingested, a typed file path too, and any text
        goes to the agent."""
        files = [e for e in message.elements if getattr(e, "path", None)]
        text = message.content.strip()
        async with self.lock:
            for element in files:
                await self.ingest_upload(element)
            path = None if files or not self.typed_paths else typed_path(text)
            if path is not None:
                await self.ingest(path)
            elif text:
                await self.turn(lambda session: session.send(text))

    async def say(self, text: str) -> None:
        """A button that speaks for the user: the text shows as their message, then the agent answers."""
        if await self.busy():
            return
        async with self.lock:
            await cl.Message(content=text, author=self.user_name, type="user_message").send()
            await self.turn(lambda session: session.send(text))

    async def fill(self, gap_id: str, label: str) -> None:
        """The "Fill" button of a gap: ask the agent for synthetic samples, if the gap is still the one shown
        (finding gaps again renumbers them)."""
        from goalcover.tools.gaps import stored_gaps

        gap = next((g for g in await asyncio.to_thread(stored_gaps, self.ws) if g.id == gap_id), None)
        if gap is None or gap.label != label:
            await cl.Message(content="The gaps were found again since that button was shown, and their numbers changed. Here they are now:").send()
            await self.gaps_view(None)
            return
        await self.say(f"Fill gap {gap.id} ({gap.label}) with {FILL_N} synthetic samples.")

    async def answer(self, approve: bool) -> None:
        """The answer to the approval the agent is waiting for."""
        if await self.busy():
            return
        async with self.lock:
            session = await self.agent()
            if session is None:
                return
            if not await asyncio.to_thread(session.pending):
                await cl.Message(content="Nothing is waiting for an answer any more.").send()
                return
            await cl.Message(content="Run it." if approve else "Don't run it.", author=self.user_name, type="user_message").send()
            await self.turn(lambda s: s.answer(approve))

    async def busy(self) -> bool:
        if self.lock.locked():
            await cl.Message(content="Still working on the last request: wait for it, or press stop.").send()
            return True
        return False

    def stop(self) -> None:
        self.stopper.stop()

    async def disarm(self, message_id: str | None) -> None:
        """Remove the buttons of a message once one of them was used."""
        message = self.live.pop(message_id or "", None)
        if message is not None:
            await message.remove_actions()

    async def send(self, content: str, actions: list[cl.Action] | None = None, elements: list | None = None) -> cl.Message:
        """A message with buttons (remembered until one is used) and elements (sent one by one, so charts
        keep their order: Chainlit sends a message's own elements all at once)."""
        message = cl.Message(content=content, actions=actions or [])
        for a in message.actions:
            a.payload["message"] = message.id
        await message.send()
        for element in elements or []:
            await element.send(for_id=message.id)
        if message.actions:
            self.live[message.id] = message
        return message

    # --- running work off the event loop ------------------------------------------------------------
    async def pump(self, work: Callable[[Callable[[Any], None]], None]) -> BaseException | None:
        """Run `work(put)` in a worker thread; render what it puts as it arrives. Returns its error.

        The stop button cancels the task awaiting here (Chainlit's way): the worker is told to stop and the
        rendering goes on until it has, so the chat shows where the work ended."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def run() -> None:
            try:
                work(put)
            except BaseException as exc:  # everything, StopRequested included, is reported to the loop
                put(_Done(exc))
            else:
                put(_Done())

        self.stopper.reset()
        self.worker.submit(run)
        while True:
            try:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=self.view.redraw_in())
                except asyncio.TimeoutError:  # a progress line held back by the rate limit is due
                    await self.view.redraw()
                    continue
                if isinstance(item, _Done):
                    return item.error
                await self.view.show(item)
            except asyncio.CancelledError:
                self.stopper.stop()
            except Exception as exc:  # a bug in showing one event: say so, and keep following the work
                await self.internal_error(exc)

    async def turn(self, start: Callable[[Session], Iterator]) -> None:
        """One agent turn: the user's message (or answer) in, events out, rendered live."""
        session = await self.agent()
        if session is None:
            return
        key = (self.root, session.thread_id)
        if key in _running:
            await cl.Message(content="This conversation is still working in another window (or before the page was "
                             "reloaded). Wait until it is done, then reload this page.").send()
            return

        def work(put: Callable[[Any], None]) -> None:
            for event in start(session):
                put(event)

        _running.add(key)
        try:
            error = await self.pump(work)
        finally:
            _running.discard(key)
        await self.view.finish(error)

    # --- datasets ---------------------------------------------------------------------------------
    async def ingest_upload(self, element) -> None:
        """An uploaded file lands in WORKSPACE/uploads/ under its own name, but only once it has been read
        without error: a broken re-upload never replaces the file the workspace was built from."""
        folder = self.root / "uploads"
        folder.mkdir(exist_ok=True)
        target = folder / safe_file_name(element.name or Path(element.path).name)
        await asyncio.to_thread(shutil.copyfile, element.path, incoming(target))
        await self.ingest(target)

    async def ingest_offered(self, path: str, mode: str) -> None:
        """The answer to "replace or add?" for a file offered earlier."""
        if await self.busy():
            return
        if path not in self.offered:
            await cl.Message(content="That file is no longer offered: upload it again.").send()
            return
        async with self.lock:
            self.offered.discard(path)
            await self.ingest(Path(path), mode)

    async def ingest(self, path: Path, mode: str | None = None) -> None:
        """Validate and index a dataset file, with progress; a file that is not the workspace's dataset
        asks first whether to replace it or add to it."""
        from goalcover.tools.dataset import ingest_file
        from goalcover.tools.ingest import read_samples

        path = path.resolve()
        arriving = incoming(path) if incoming(path).is_file() else None
        held = [s["path"] for s in self.ws.store.sources()]
        if held and str(path) not in held and mode is None:
            names = ", ".join(Path(p).name for p in held)
            self.offered.add(str(path))
            await self.send(
                f"The workspace already holds a dataset ({names}). Replace it with **{path.name}**, or add "
                f"**{path.name}** to it (same shape)?",
                [action("ingest_mode", "Replace the dataset", path=str(path), mode="replace"),
                 action("ingest_mode", "Add to the dataset", path=str(path), mode="add")],
            )
            return
        source = arriving or path
        step = tool_step(f"ingest {path.name}", {"file": path.name, "bytes": source.stat().st_size, "mode": mode or "auto"})
        await step.send()
        results: list = []

        def work(put: Callable[[Any], None]) -> None:
            put(Progress("ingest", fields={"stage": f"reading and checking {path.name}"}))
            if arriving is not None:
                settings = self.ws.settings
                read_samples(arriving, max_sample_chars=settings.max_sample_chars, warn_sample_chars=settings.warn_sample_chars)
                arriving.replace(path)

            def progress(done: int, total: int) -> None:
                put(Progress("ingest", done, total))
                self.stopper.check()

            results.append(ingest_file(self.ws, path, add=mode == "add", replace=mode == "replace", progress=progress))

        error = await self.pump(work)
        if arriving is not None:
            arriving.unlink(missing_ok=True)
        await self.view.end_progress(stopped=isinstance(error, StopRequested))
        step.end = utc_now()
        if error is None:
            result = results[0]
            step.output = (
                f"{result.samples} samples ({result.format}): {result.new} new, {result.changed} changed, "
                f"{result.unchanged} unchanged, {result.embedded} embedded"
            )
            await step.update()
            await self.send(ingest_message(result, path.name))
            return
        # The engine names the file by its full path on the server; the user knows it by its name.
        reason = str(error).replace(str(source), path.name).replace(str(path), path.name)
        step.is_error = True
        step.output = reason
        await step.update()
        if isinstance(error, StopRequested):
            await cl.Message(content=f"Ingest of {path.name} stopped. Upload it again to finish: what is indexed is kept.").send()
        elif isinstance(error, BadInput):
            await cl.ErrorMessage(content=f"{path.name} was not ingested: {reason}\n\nFix the file and upload it again.", author="GoalCover").send()
        else:
            await self.internal_error(error)

    # --- direct engine actions (free, no model call) ---------------------------------------------
    async def review(self, ids: list[str], accept: bool) -> None:
        from goalcover.tools.synthesis import review

        if await self.busy():
            return
        async with self.lock:
            try:
                items = await asyncio.to_thread(review, self.ws, ids if accept else [], [] if accept else ids)
            except BadInput as exc:
                await cl.ErrorMessage(content=str(exc), author="GoalCover").send()
                return
            counts = {state: sum(i.state == state for i in items) for state in ("proposed", "accepted", "rejected")}
            verb = "Accepted" if accept else "Rejected"
            shown = ", ".join(ids) if ids != ["all"] else "all proposed samples"
            await self.coverage_view(
                f"{verb} {shown}. Synthetic samples: {counts['accepted']} accepted, {counts['rejected']} rejected, "
                f"{counts['proposed']} waiting for review."
            )

    async def export(self) -> None:
        from goalcover.tools.export import export
        from goalcover.tools.synthesis import list_synthetic

        if await self.busy():
            return
        async with self.lock:
            sources = self.ws.store.sources()
            if not sources:
                await cl.ErrorMessage(content="There is no dataset to export yet: upload one first.", author="GoalCover").send()
                return
            source = Path(sources[0]["path"])
            target = self.ws.exports_dir / f"{source.stem}.goalcover{source.suffix}"
            with_synthetic = bool(list_synthetic(self.ws, state="accepted"))
            try:
                result = await asyncio.to_thread(export, self.ws, target, with_synthetic=with_synthetic, allowed_root=self.ws.exports_dir)
            except BadInput as exc:
                await cl.ErrorMessage(content=str(exc), author="GoalCover").send()
                return
            await self.send_export(result.path, result.manifest, result.written, result.synthetic, result.dropped)

    async def send_export(self, path: str, manifest: str | None, written: int, synthetic: int, dropped: int) -> None:
        files = [cl.File(name=Path(path).name, path=path, display="inline")]
        if manifest:
            files.append(cl.File(name="manifest.json", path=manifest, display="inline"))
        await self.send(
            f"Exported **{written}** samples ({synthetic} synthetic, {dropped} dropped) to `{path}`. Download:",
            elements=files,
        )

    async def report(self) -> None:
        from goalcover.tools.coverage import coverage
        from goalcover.tools.report import render as render_report

        report = await asyncio.to_thread(coverage, self.ws)
        if not report.judge:
            await cl.Message(content="There are no scores yet: score the dataset first.").send()
            return
        path = self.ws.reports_dir / "coverage-report.html"
        html = await asyncio.to_thread(render_report, report, "html")
        await asyncio.to_thread(path.write_text, html, "utf-8")
        await self.send("The coverage report (one HTML file, charts included, opens offline):",
                        elements=[cl.File(name=path.name, path=str(path), display="inline")])

    # --- views of the workspace -------------------------------------------------------------------
    async def coverage_view(self, intro: str = "") -> None:
        """Coverage per subgoal with its charts and what to do next."""
        from goalcover.tools.coverage import coverage
        from goalcover.tools.report import figures

        report = await asyncio.to_thread(coverage, self.ws)
        if not report.judge:
            if intro:
                await cl.Message(content=intro).send()
            return
        bars, heat = await asyncio.to_thread(figures, report)
        text = (intro + "\n\n" if intro else "") + render.coverage_markdown(report)
        await self.send(
            text,
            [action("find_gaps", "Find gaps"), action("report", "HTML report"), action("export", "Export dataset")],
            [cl.Plotly(name="coverage", figure=bars, display="inline", size="large"),
             cl.Plotly(name="scores", figure=heat, display="inline", size="large")],
        )

    async def gaps_view(self, subgoal_id: str | None) -> None:
        from goalcover.tools.gaps import stored_gaps

        gaps = [g for g in await asyncio.to_thread(stored_gaps, self.ws) if subgoal_id is None or g.subgoal_id == subgoal_id.upper()]
        if not gaps:
            await cl.Message(content=render.gaps_markdown(gaps)).send()
            return
        await self.send(
            render.gaps_markdown(gaps),
            [action("fill_gap", f"Fill {g.id}", gap_id=g.id, gap_label=g.label) for g in gaps],
            [cl.Plotly(name="gaps", figure=render.gap_figure(gaps), display="inline", size="large")],
        )

    async def synthetic_view(self, gap_id: str | None) -> None:
        """The synthetic samples waiting for review, readable, each with accept and reject buttons."""
        from goalcover.tools.synthesis import list_synthetic

        items = await asyncio.to_thread(list_synthetic, self.ws, gap_id.upper() if gap_id else None, "proposed")
        if not items:
            await cl.Message(content="No synthetic samples wait for review.").send()
            return
        for item in items:
            head = f"**{item.id}** · {item.gap_id} ({item.subgoal_id}) · judge score {item.judge_score}"
            why = f"\n\n> {item.judge_explanation}" if item.judge_explanation else ""
            await self.send(
                f"{head}{why}\n\n{render.sample_markdown(item.record, item.format, item.text)}",
                [action("review", "Accept", ids=[item.id], accept=True), action("review", "Reject", ids=[item.id], accept=False)],
            )
        await self.send(
            f"{len(items)} synthetic samples wait for your review.",
            [action("review", "Accept all", ids=["all"], accept=True), action("review", "Reject all", ids=["all"], accept=False)],
        )

    async def samples_markdown(self, ids: list[str]) -> str:
        samples = await asyncio.to_thread(self.ws.store.samples, ids)
        return "\n\n---\n\n".join(f"**{s.id}** (line {s.line})\n\n{render.sample_markdown(s.record, s.format, s.text)}" for s in samples)

    async def welcome(self) -> None:
        from goalcover.tools.dataset import describe

        info = await asyncio.to_thread(describe, self.ws)
        if info["samples"]:
            files = ", ".join(Path(s["path"]).name for s in info["sources"])
            text = (
                f"The workspace holds **{info['samples']} samples** ({info['format']}) from {files}. "
                "Tell me what the model trained on it should learn, e.g. *a plain-English summarizer of "
                "terms-of-service clauses*."
            )
        else:
            text = (
                "**Start by uploading your dataset**: the paperclip below, or drag a file into the chat "
                "(JSONL, JSON, CSV or Parquet). You can also type the path of a file on this machine. Then tell "
                "me what the model trained on it should learn."
            )
        if self.agent_error:
            text += f"\n\nThe agent is not available yet: {self.agent_error}"
        await cl.Message(content=text).send()

    async def replay(self, history: list) -> None:
        """Show the conversation so far: messages as they were, tool calls as steps with their results."""
        results = {m.tool_call_id: m.content for m in history if m.type == "tool"}
        shown = history[-HISTORY_SHOWN:]
        if len(shown) < len(history):
            await cl.Message(content=f"… {len(history) - len(shown)} earlier messages of this conversation are not shown.").send()
        for m in shown:
            if m.type == "human":
                await cl.Message(content=m.text, author=self.user_name, type="user_message").send()
            elif m.type == "ai":
                if m.text:
                    await cl.Message(content=m.text).send()
                for call in m.tool_calls:
                    step = tool_step(call["name"], call["args"])
                    step.output = render.tool_result_text(str(results.get(call["id"], "(not run)")))
                    step.end = step.start
                    await step.send()
        await cl.Message(content="Continuing your last conversation. Ask on, or upload another file.").send()

    async def internal_error(self, error: BaseException) -> None:
        log.error("unexpected error", exc_info=error)
        await cl.ErrorMessage(content=f"Internal error: {type(error).__name__}: {error}", author="GoalCover").send()


class View:
    """How one piece of work's events show: the streamed reply, open tool steps, the progress line."""

    def __init__(self, chat: WebChat) -> None:
        self.chat = chat
        self.streaming: cl.Message | None = None
        self.steps: list[tuple[ToolStep, cl.Step]] = []
        self.progress: cl.Message | None = None
        self.progress_tool = ""
        self.progress_last = (0.0, 0, 0)  # (time, done, total) of the last line drawn
        self.progress_origin: tuple[float, int] | None = None  # (time, done) of the first count, for the ETA
        self.held: Progress | None = None  # the latest progress event, not drawn yet
        self.counted = ""  # the last progress line with counts
        self.draft: cl.Message | None = None
        self.last_tool = ""

    async def show(self, event: Any) -> None:
        if isinstance(event, Text):
            if self.streaming is None:
                self.streaming = cl.Message(content="")
            await self.streaming.stream_token(event.text)
        elif isinstance(event, Reply):
            await self.reply(event.text)
        elif isinstance(event, ToolStep):
            await self.tool(event)
        elif isinstance(event, Progress):
            await self.progress_line(event)
        elif isinstance(event, Approval):
            await self.approval(event)

    async def reply(self, text: str) -> None:
        if self.streaming is not None:
            self.streaming.content = text
            await self.streaming.send()
            self.streaming = None
        else:
            await cl.Message(content=text).send()

    async def tool(self, event: ToolStep) -> None:
        if event.status == "start":
            if self.streaming is not None:  # text before a tool call is a reply of its own
                await self.reply(self.streaming.content)
            step = tool_step(event.name, event.args)
            await step.send()
            self.steps.append((event, step))
            self.last_tool = event.name
            return
        await self.end_progress()
        found = next((i for i in range(len(self.steps) - 1, -1, -1) if self.steps[i][1].name == event.name), None)
        if found is None:  # an error before the call started (unparsable arguments)
            step = tool_step(event.name, event.args)
        else:
            _, step = self.steps.pop(found)
        step.end = utc_now()
        step.is_error = event.status == "error"
        step.output = render.step_output(event.summary, event.display)
        if event.status == "done" and event.name == "show_samples":
            step.output = event.summary + "\n\n" + await self.chat.samples_markdown(list(event.args.get("ids", [])))
        await (step.send() if found is None else step.update())
        if event.status == "done":
            await self.after(event)

    async def after(self, event: ToolStep) -> None:
        """What a finished tool adds to the chat beyond its step: the draft to approve, charts, gaps to
        fill, samples to review, files to download."""
        chat, args = self.chat, event.args
        if event.name in ("propose_subgoals", "edit_subgoals"):
            if self.draft is not None:
                await chat.disarm(self.draft.id)
            self.draft = await chat.send(render.draft_markdown(event.display), [action("approve_goal", "Approve subgoals")])
        elif event.name == "approve_goal" and event.display:
            if self.draft is not None:
                await chat.disarm(self.draft.id)
                self.draft = None
            await chat.send(render.draft_markdown(event.display, approved=True), [action("score", "Score the dataset")])
        elif event.name == "discard_draft" and self.draft is not None:
            await chat.disarm(self.draft.id)
            self.draft = None
        elif event.name in ("run_scoring", "coverage"):
            await chat.coverage_view()
        elif event.name == "review_synthetic" and (args.get("accept") or args.get("reject")):
            await chat.coverage_view()
        elif event.name == "find_gaps":
            await chat.gaps_view(args.get("subgoal_id"))
        elif event.name == "synthesize_samples":
            await chat.synthetic_view(args.get("gap_id"))
        elif event.name == "export_dataset":
            path = chat.ws.exports_dir / str(args.get("filename", ""))
            if path.is_file():
                manifest = path.parent / "manifest.json"
                await chat.send(f"{event.summary}. Download:", elements=[
                    cl.File(name=path.name, path=str(path), display="inline"),
                    *([cl.File(name=manifest.name, path=str(manifest), display="inline")] if manifest.is_file() else []),
                ])

    def redraw_in(self) -> float | None:
        """Seconds until the held-back progress line is due, or None when none is held back."""
        if self.held is None:
            return None
        return max(0.0, self.progress_last[0] + PROGRESS_EVERY_S - time.monotonic())

    async def redraw(self) -> None:
        if self.held is not None:
            event, self.held = self.held, None
            await self.progress_line(event)

    async def progress_line(self, event: Progress) -> None:
        now = time.monotonic()
        if self.progress is not None and event.tool != self.progress_tool:
            await self.end_progress()
        if event.done is not None and self.progress_origin is None:
            self.progress_origin = (now, event.done)
        last_time, last_done, _ = self.progress_last
        final = event.done is not None and event.done == event.total
        if self.progress is not None and event.done is not None and not final and now - last_time < PROGRESS_EVERY_S:
            self.held = event  # drawn when due, so the line never lags behind the work for long
            return
        self.held = None
        eta = None
        if event.done is not None and event.total and self.progress_origin is not None:
            start, first = self.progress_origin
            if event.done > first and now > start:
                eta = (event.total - event.done) * (now - start) / (event.done - first)
        content = render.progress_text(event.tool, event.done, event.total, event.fields, eta)
        if event.done is None and self.progress is not None and self.progress_last[2]:
            # A stage after the counting (scoring's "indexing explanations"): keep the counts in view.
            content = f"{self.counted} · {event.fields.get('stage', 'working')}…"
        elif event.done is not None:
            self.counted = content
        self.progress_last = (now, event.done or self.progress_last[1], event.total or self.progress_last[2])
        if self.progress is None:
            self.progress_tool = event.tool
            self.progress = cl.Message(content=content)
            await self.progress.send()
        else:
            self.progress.content = content
            await self.progress.update()

    async def end_progress(self, stopped: bool = False) -> None:
        await self.redraw()
        if self.progress is not None and stopped:
            self.progress.content += " · **stopped**"
            await self.progress.update()
        elif self.progress is not None and self.counted and self.progress.content != self.counted:
            self.progress.content = self.counted  # the work is done: the counts, without the last stage
            await self.progress.update()
        self.progress = None
        self.progress_origin = None
        self.progress_last = (0.0, 0, 0)
        self.counted = ""

    async def approval(self, approval: Approval) -> None:
        await self.chat.send(
            render.approval_markdown(approval.tool, approval.question, approval.plan),
            [action("answer", "Run it", approve=True), action("answer", "Don't run", approve=False)],
        )

    async def finish(self, error: BaseException | None) -> None:
        """The end of a turn: close what is still open and say how it ended."""
        stopped = isinstance(error, StopRequested)
        if self.streaming is not None:
            await self.reply(self.streaming.content + (" …" if error else ""))
        await self.end_progress(stopped=stopped)
        open_tools = [event.name for event, _ in self.steps]
        for _, step in self.steps:
            step.end = utc_now()
            step.is_error = True
            step.output = "stopped" if stopped else f"not finished: {error}"
            await step.update()
        self.steps = []
        if error is None:
            return
        if stopped:
            await self.stopped(open_tools[-1] if open_tools else self.last_tool)
        elif isinstance(error, GoalCoverError):
            await cl.ErrorMessage(content=str(error), author="GoalCover").send()
        else:
            await self.chat.internal_error(error)

    async def stopped(self, tool: str) -> None:
        if tool == "run_scoring":
            from goalcover.tools import scoring

            try:
                plan, _, _ = await asyncio.to_thread(scoring.plan, self.chat.ws)
            except GoalCoverError:
                plan = None
            if plan is not None:
                await self.chat.send(
                    f"Scoring stopped. {plan.cached} of {plan.pairs} sample × subgoal pairs are scored and saved; "
                    f"{plan.to_score} are left. Resuming scores only those: nothing already scored is paid again.",
                    [action("resume_scoring", "Resume scoring")],
                )
                return
        await cl.Message(content="Stopped. The conversation is kept: ask again to go on.").send()


# --- small helpers ---------------------------------------------------------------------------------

def incoming(target: Path) -> Path:
    """Where an upload waits until it has been read without error."""
    return target.with_name(f".incoming-{target.name}")


def safe_file_name(name: str) -> str:
    """An uploaded file's name, reduced to a safe file name in the uploads folder (never a path)."""
    base = Path(name).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "dataset"
    return cleaned[:120]


def typed_path(text: str) -> Path | None:
    """A file path typed as the whole message ("ingest" before it is allowed), if it names a file."""
    candidate = re.sub(r"^(ingest|upload|load)\s+", "", text.strip(), flags=re.IGNORECASE).strip().strip("'\"`")
    if not candidate or "\n" in candidate:
        return None
    path = Path(candidate).expanduser()
    if path.suffix.lower() in DATASET_SUFFIXES and path.is_file():
        return path
    return None


def ingest_message(result, name: str) -> str:
    lines = [
        f"**{name}**: {result.samples} samples ({result.format}, {result.file_type}) — {result.new} new, "
        f"{result.changed} changed, {result.unchanged} unchanged."
    ]
    if result.invalid:
        lines.append(f"{result.invalid} invalid records were skipped (see {result.rejected_report}).")
    if result.exact_duplicates:
        lines.append(f"{result.exact_duplicates} exact duplicates.")
    lines += [f"{w}" for w in result.warnings[:5]]
    lines.append(
        f"Lengths: median {result.chars.median:.0f} characters (max {result.chars.max:,}), about "
        f"{result.est_tokens.median:.0f} tokens. **Now tell me your goal**: what should a model trained on this data learn?"
    )
    return "\n\n".join(lines)
