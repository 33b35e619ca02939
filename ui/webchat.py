"""One browser session's chat: its workspace, the agent session, uploads, and one piece of work at a time.

The handlers in ui/app.py call a `WebChat`. An agent turn iterates the agent's async event stream (the
graph's `astream`) on the event loop and renders it (ui/turn.py); buttons act through the engine directly
(ui/actions.py). Stopping is Chainlit's: the stop button cancels the task doing the work, and the engine
keeps what was paid for. Reopening the page replays the conversation and then shows where the workspace
stands now, recomputed from it (ui/views.py `status_view`), with its charts and next steps.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import chainlit as cl
from chainlit.utils import utc_now

from goalcover.tools.core.messages import internal_error
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.core.errors import BadInput, ConfigError, GoalCoverError
from goalcover.ui import render, runs, views
from goalcover.ui.actions import Actions
from goalcover.ui.output import Out, ProgressLine, action, tool_step
from goalcover.ui.turn import TurnView, approval
from goalcover.ui.uploads import DATASET_SUFFIXES, goal_words, ingest_message, safe_file_name, typed_path  # noqa: F401 - re-exported

log = logging.getLogger("goalcover.ui")

HISTORY_SHOWN = 80  # messages replayed when a conversation is reopened

# The one piece of state shared by the browser sessions of this server: one lock per workspace, so a
# reloaded page (a new session, while the old one may still be scoring) or a second window never runs a
# second piece of work on the same workspace — two scoring runs would pay twice.
_locks: dict[Path, asyncio.Lock] = {}
BUSY = ("Still working on an earlier request in this workspace: wait for it to finish, or press the stop button.")
AGENT_RUN = "the agent's work"  # an agent turn's run, until it starts a paid tool (ui/turn.py RUN_BY_TOOL)
RUN_NAMES = {"on_score_run": "scoring", "on_gaps_run": "gap finding", "on_fill_run": "synthesis", "on_propose": "proposing subgoals",
             "on_answer": AGENT_RUN}


NO_MODEL = ("**No language model is set up yet**, so the chat, subgoals and scoring wait for one. Either:\n"
            "- **a hosted model**: start the app with `GOALCOVER_MODEL` (e.g. `gpt-4o-mini`) and `OPENAI_API_KEY` set "
            "(and `OPENAI_BASE_URL` for another provider), or\n"
            "- **the local model**, one command: `goalcover local serve --model MODEL.gguf`, then set the one line it prints.\n\n"
            "Then reload this page. Uploading a dataset works now.")
SHARED = ("Without a login, **everyone who opens this page shares this one conversation** and workspace. For "
          "conversations of your own, listed in the sidebar, start the app with a login (GOALCOVER_UI_PASSWORD, "
          "or `goalcover ui users add NAME`).")
NO_MODEL_AGAIN = "No language model is set up yet (see the first message: a hosted model, or `goalcover local serve`); then reload."


def has_model(ws: Workspace) -> bool:
    """Whether any model is configured for the agent role (the judge and synthesis fall back to the same)."""
    try:
        ws.settings.model_for("agent")
    except GoalCoverError:
        return False
    return True


class IngestStopped(Exception):
    """The stop button, seen by the ingest's progress callback in its worker thread."""


class WebChat:
    """The chat of one browser session on one workspace folder (the user's own, when users log in)."""

    def __init__(self, root: Path, user_name: str = "You", typed_paths: bool = True, conversation: str | None = None,
                 shared: bool = False) -> None:
        self.root = root
        self.conversation = conversation  # the LangGraph thread, when Chainlit keeps conversations (ui/history.py)
        self.shared = shared  # no login: everyone who opens the page shares the workspace's last conversation
        self.user_name = user_name
        self.typed_paths = typed_paths  # off when users log in: a typed path could read any file on the server
        self.ws: Workspace | None = None
        self.session = None  # the agent session, opened on first use
        self.agent_error: str | None = None
        self.no_model = False  # no model is configured at all: only ingest works until one is
        self.lock = _locks.setdefault(root, asyncio.Lock())  # one piece of work at a time, per workspace
        self.out = Out()
        self.actions = Actions(self)
        self.offered: set[str] = set()  # files the user was asked about (replace or add), the only ones a button may ingest
        self.draft: list[dict] | None = None  # subgoals proposed by the button, when there is no agent
        self.goal_text: str | None = None  # the goal in the user's words, for the "Propose subgoals" button

    # --- opening and closing ----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the workspace; replay its last conversation and show where it stands, or welcome."""
        self.ws = await asyncio.to_thread(Workspace.open, self.root)
        session = await self.agent(quiet=True)
        history = await session.messages() if session else []
        if history:
            await self.replay(history)
            draft, _ = await self.current_draft()
            await views.status_view(self.out, self.ws, draft)
            for pending in (await session.pending())[:1]:
                await approval(self, pending)
        else:
            await self.welcome()
        from goalcover.ui.iterate_views import since_view

        await since_view(self.out, self.ws)  # what changed since the last conversation here

    async def agent(self, quiet: bool = False):
        """The agent session (opened on first use: it checks once that the model can call tools)."""
        if self.session is None:
            from goalcover.agent.session import Session
            from goalcover.agent.threads import last_thread

            try:
                self.session = await Session.open(self.ws, self.conversation or last_thread(self.ws))
            except GoalCoverError as exc:
                first = self.agent_error is None
                self.agent_error = str(exc)
                self.no_model = not has_model(self.ws)
                if not quiet:
                    if self.no_model:  # the full way forward once, then one line
                        await self.out.error(NO_MODEL if first else NO_MODEL_AGAIN, markdown=True)
                    else:
                        await self.out.error(f"The agent is not available: {exc}")
                return None
        return self.session

    def leave(self, new_chat: bool) -> None:
        """The browser disconnected. After "New chat" the next visit starts a new conversation; otherwise
        nothing changes (Chainlit may restore this session on reconnect, and a reload continues it)."""
        if not new_chat or self.ws is None:
            return
        from goalcover.agent.threads import new_thread_id, remember_thread

        remember_thread(self.ws, new_thread_id())
        asyncio.ensure_future(self._close_when_idle())

    async def _close_when_idle(self) -> None:
        async with self.lock:
            if self.session is not None:
                await self.session.aclose()
            if self.ws is not None:
                await asyncio.to_thread(self.ws.close)
            self.session = self.ws = None

    # --- one piece of work at a time ------------------------------------------------------------------
    async def exclusive(self, work: Callable[..., Any], *args: Any) -> None:
        """Run `work(*args)` (a button's action) holding the lock, as the workspace's live run (ui/runs.py);
        engine errors become one clear message. While another tab's work runs, this tab watches it."""
        if self.lock.locked():
            await self.busy()
            return
        async with self.lock:
            with runs.running(self.root, RUN_NAMES.get(getattr(work, "__name__", ""), "work")):
                try:
                    await work(*args)
                except ConfigError as exc:  # no model configured: the way forward, once in full
                    self.no_model = self.no_model or not has_model(self.ws)
                    if self.no_model:
                        await self.out.error(NO_MODEL_AGAIN, markdown=True)
                    else:
                        await self.out.error(str(exc))
                except GoalCoverError as exc:  # bad input, a model that failed: say so, and the buttons go on
                    await self.out.send(f"**Failed:** {render.inert_markdown(exc)}", await views.next_actions(self.ws, goal_text=self.goal_text))
                except Exception as exc:  # a full disk, a database another process holds: one clear message
                    from goalcover.tools.core.failures import explain

                    if (clear := explain(exc)) is None:
                        raise
                    await self.out.error(str(clear))

    async def busy(self) -> None:
        """Something already runs on this workspace: watch it here (progress, stop), else say so."""
        run = runs.live(self.root)
        if run is None or run.task is asyncio.current_task():
            await self.out.send(BUSY)
            return
        await self.watch_run(run)

    async def watch_run(self, run: runs.LiveRun) -> None:
        """Show a run started in another tab (or before a reload): its progress, live, and Chainlit's stop
        button, which stops it; then, when it was an agent's turn that finished, the agent's last reply, and
        where the workspace stands."""
        shown: cl.Message | None = None

        async def draw(text: str) -> None:
            nonlocal shown
            if shown is None:
                shown = cl.Message(content=text)
                await shown.send()
            else:
                shown.content = text
                await shown.update()

        await self.out.send(f"**{run.what.capitalize()} is running** in this workspace (started in another window, or "
                            "before this page was reloaded). Its progress is below; stop it here if you want.",
                            [action("stop_run", f"Stop {run.what}", "what finished is kept; resuming pays only for the rest")])
        stopped = await runs.watch(run, draw)
        if shown is not None and stopped:
            shown.content = shown.content.removesuffix("…") + " · **stopped**"
            await shown.update()
        if run.reply and not stopped:  # an agent's turn: its answer, as the tab that started it showed it
            await self.out.send(run.reply)
        if stopped and run.what == "scoring":
            await self.actions.scoring_stopped()
        elif stopped:
            await self.out.send(f"{run.what.capitalize()} stopped; what it finished is kept.", await views.next_actions(self.ws))
        elif run.what == "scoring":
            await views.coverage_view(self.out, self.ws, "Scoring finished.")
        else:
            await views.next_steps(self.out, self.ws, f"{run.what.capitalize()} finished. What next?")

    # --- what the user types or uploads -----------------------------------------------------------
    async def handle(self, message: cl.Message) -> None:
        """Uploaded files are ingested, a typed file path too, and any text goes to the agent."""
        files = [e for e in message.elements if getattr(e, "path", None)]
        text = message.content.strip()
        if self.lock.locked():
            await self.busy()
            return
        # Typed work is the workspace's run too: a reload or another tab watches it (and can stop it).
        async with self.lock:
            with runs.running(self.root, "ingesting" if files else AGENT_RUN):
                for element in files:
                    await self.ingest_upload(element)
                path = None if files or not self.typed_paths else typed_path(text)
                if path is not None:
                    await self.ingest(path)
                elif text:
                    self.goal_text = goal_words(text)
                    await self.turn(lambda session: session.send(text))

    async def answer(self, approve: bool) -> None:
        """The answer to the approval the agent is waiting for."""
        session = await self.agent()
        if session is None:
            return
        if not await session.pending():
            await self.out.send("Nothing is waiting for an answer any more.", await views.next_actions(self.ws))
            return
        await self.out.user("Run it." if approve else "Don't run it.", self.user_name)
        await self.turn(lambda s: s.answer(approve))

    async def turn(self, start: Callable[[Any], AsyncIterator]) -> None:
        """One agent turn, rendered as its events arrive; without an agent, the buttons for what's next."""
        session = await self.agent()
        if session is None:
            if not self.no_model:  # the model exists but cannot drive the chat: the buttons do each step
                await views.next_steps(self.out, self.ws, "Without the agent, these buttons do each step:", goal_text=self.goal_text)
            return
        view = TurnView(self)
        try:
            async for event in start(session):
                await view.show(event)
        except asyncio.CancelledError:  # the stop button: the engine kept what was paid for
            await view.finish(None, stopped=True)
            return
        except Exception as exc:  # the model failed (or a bug): say so, and the buttons still go on
            await view.finish(exc)
            await views.next_steps(self.out, self.ws, "The buttons still work:", goal_text=self.goal_text)
            return
        await view.finish(None)
        if not view.tools_done and not view.asked:  # the model only talked: offer the steps it did not take
            draft, _ = await self.current_draft()
            await views.next_steps(self.out, self.ws, "Or do the next step yourself:", draft=draft, goal_text=self.goal_text)

    # --- the draft goal, shared with the agent's state ---------------------------------------------
    async def current_draft(self) -> tuple[list[dict] | None, str | None]:
        """The unsaved subgoals and the goal text: the agent's (it may have edited them), else the button's."""
        if self.session is not None:
            values = (await self.session.graph.aget_state(self.session.run_config)).values
            if values.get("draft"):
                return values["draft"], values.get("goal_text")
        return self.draft, self.goal_text

    async def set_draft(self, draft: list[dict] | None, goal_text: str | None, approved: list[dict] | None = None) -> None:
        """Remember a proposed draft (or its approval) here and in the agent's state, so that the user can
        go on in words ("merge S2 and S3") or with the buttons."""
        self.draft, self.goal_text = draft, goal_text
        if self.session is None:
            return
        state = await self.session.graph.aget_state(self.session.run_config)
        if state.next:  # the agent waits for an approval: its state is not ours to change now
            return
        update: dict[str, Any] = {"draft": draft, "goal_text": goal_text, "approved": approved is not None}
        if approved is not None:
            update["goal"] = approved
        await self.session.graph.aupdate_state(self.session.run_config, update, as_node="agent")

    async def show_draft(self, lines: list[str]) -> None:
        """The agent proposed or edited the draft: show it with its Approve button (the old one goes)."""
        for message_id in [m for m, msg in self.out.live.items() if any(a.name == "approve_goal" for a in msg.actions)]:
            await self.out.disarm(message_id)
        self.draft = None
        await views.draft_view(self.out, lines)

    async def draft_done(self) -> None:
        """The draft is settled: disarm its Approve buttons."""
        self.draft = None
        for message_id in [m for m, msg in self.out.live.items() if any(a.name == "approve_goal" for a in msg.actions)]:
            await self.out.disarm(message_id)

    # --- datasets ---------------------------------------------------------------------------------
    async def ingest_upload(self, element) -> None:
        """An upload lands in WORKSPACE/uploads/ under its own name (any script, its extension kept); a
        re-upload that fails to ingest puts the earlier file back."""
        name = element.name or Path(element.path).name
        size, cap = Path(element.path).stat().st_size, self.ws.settings.upload_max_mb
        if size > cap * 1e6:  # refused before it is copied or read (GOALCOVER_UPLOAD_MAX_MB)
            await self.out.error(f"{name} was not ingested: it is {size / 1e6:,.1f} MB, over this server's limit of "
                                 f"{cap:,g} MB for an upload (GOALCOVER_UPLOAD_MAX_MB). Ingest it with the CLI instead.")
            return
        folder = self.root / "uploads"
        folder.mkdir(exist_ok=True)
        target = folder / safe_file_name(name)
        previous = target.with_name(f".previous-{target.name}")
        had = target.is_file()
        if had:
            await asyncio.to_thread(shutil.copy2, target, previous)
        await asyncio.to_thread(shutil.copyfile, element.path, target)
        ok = await self.ingest(target)
        if had:
            if not ok:
                await asyncio.to_thread(previous.replace, target)
            previous.unlink(missing_ok=True)
        elif not ok and str(target) not in self.offered:
            target.unlink(missing_ok=True)

    async def ingest_offered(self, path: str, mode: str) -> None:
        """The answer to "replace or add?" for a file offered earlier."""
        if path not in self.offered:
            await self.out.send("That file is no longer offered: upload it again.")
            return
        self.offered.discard(path)
        await self.ingest(Path(path), mode)

    async def ingest(self, path: Path, mode: str | None = None) -> bool:
        """Validate and index a dataset file with progress; a file that is not the workspace's dataset asks
        first whether to replace it or add to it. True when it was ingested."""
        from goalcover.tools.data.ingest import ingest_file

        path = path.resolve()
        held = [s["path"] for s in await asyncio.to_thread(self.ws.store.sources)]
        if held and str(path) not in held and mode is None:
            names = render.inert_markdown(", ".join(Path(p).name for p in held))
            name = render.inert_markdown(path.name)
            self.offered.add(str(path))
            await self.out.send(
                f"The workspace already holds a dataset ({names}). Replace it with **{name}**, or add **{name}** to it (same shape)?",
                [action("ingest_mode", "Replace the dataset", path=str(path), mode="replace"),
                 action("ingest_mode", "Add to the dataset", path=str(path), mode="add")],
            )
            return False
        step = tool_step(f"ingest {path.name}", {"file": path.name, "bytes": path.stat().st_size, "mode": mode or "auto"})
        await step.send()
        line = ProgressLine("ingest")
        line.push(stage=f"reading and checking {path.name}")
        loop, stop = asyncio.get_running_loop(), threading.Event()

        def progress(done: int, total: int | None, **fields: Any) -> None:  # in the worker thread
            loop.call_soon_threadsafe(lambda: line.push(done, total, unit="records read"))
            if stop.is_set():
                raise IngestStopped()

        job = asyncio.ensure_future(asyncio.to_thread(ingest_file, self.ws, path, add=mode == "add", replace=mode == "replace", progress=progress))
        error: BaseException | None = None
        result = None
        try:
            result = await asyncio.shield(job)
        except asyncio.CancelledError:
            stop.set()  # the thread stops at its next progress report; the ingest is atomic
            error = IngestStopped()
            await asyncio.gather(job, return_exceptions=True)
        except Exception as exc:
            error = exc
        await line.end(stopped=isinstance(error, IngestStopped))
        step.end = utc_now()
        if error is None:
            step.output = (f"{result.samples} samples ({result.format}): {result.new} new, {result.changed} changed, "
                           f"{result.unchanged} unchanged, {result.embedded} embedded")
            await step.update()
            await self.out.send(ingest_message(result, path.name), await views.next_actions(self.ws, goal_text=None))
            return True
        reason = str(error).replace(str(path), path.name)  # the user knows the file by its name
        step.is_error, step.output = True, reason
        await step.update()
        if isinstance(error, IngestStopped):
            await self.out.send(f"Ingest of {render.inert_markdown(path.name)} stopped; the workspace is as it was. Upload it again to ingest it.")
        elif isinstance(error, BadInput):
            await self.out.error(f"{path.name} was not ingested: {reason}\n\nFix the file and upload it again.")
        else:
            await self.internal_error(error)
        return False

    # --- showing the conversation -----------------------------------------------------------------
    async def welcome(self) -> None:
        """A new conversation: what to do first, or — when the workspace already has a goal (the CLI, or an
        earlier conversation) — where it stands."""
        from goalcover.tools.data.ingest import describe
        from goalcover.tools.core.goal import current_goal

        info = await asyncio.to_thread(describe, self.ws)
        if info["samples"] and await asyncio.to_thread(current_goal, self.ws, False) is not None:
            if self.shared:
                await self.out.send(SHARED)
            await views.status_view(self.out, self.ws, None)
            return
        if info["samples"]:
            files = ", ".join(Path(s["path"]).name for s in info["sources"])
            text = (f"The workspace holds **{info['samples']} samples** ({info['format']}) from {files}. Tell me what the "
                    "model trained on it should learn, e.g. *a plain-English summarizer of terms-of-service clauses*.")
        else:
            text = ("**Start by uploading your dataset**: the paperclip below, or drag a file into the chat (JSONL, JSON, "
                    "CSV or Parquet). You can also type the path of a file on this machine. Then tell me what the model "
                    "trained on it should learn.")
        if self.agent_error and not has_model(self.ws):
            self.no_model = True
            text += "\n\n" + NO_MODEL
        elif self.agent_error:
            text += f"\n\nThe agent is not available: {self.agent_error} The buttons do each step without it."
        if self.shared:
            text += "\n\n" + SHARED
        await self.out.send(text, await views.next_actions(self.ws))

    async def replay(self, history: list) -> None:
        """The conversation so far, as it was: messages, and tool calls as steps with their results."""
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
                for tool_call in m.tool_calls:
                    step = tool_step(tool_call["name"], tool_call["args"])
                    step.output = render.tool_result_text(str(results.get(tool_call["id"], "(not run)")))
                    step.end = step.start
                    await step.send()
        await cl.Message(content="Continuing your last conversation. Ask on, or upload another file." + (f"\n\n{SHARED}" if self.shared else "")).send()

    async def internal_error(self, error: BaseException) -> None:
        """Log a bug with its traceback and show it as one Internal error line."""
        log.error("unexpected error", exc_info=error)
        await self.out.error(internal_error(error))
