"""`goalcover chat`: the agent in the terminal.

Streams the agent's replies, shows each tool call as one compact step, draws progress bars for long
tools, and asks y/n before anything is paid for. Ctrl-C stops the running turn (scoring keeps what it
paid for) and, at the prompt, leaves. Reads lines from a pipe as well as from a terminal, so
`printf 'hello\\n/quit\\n' | goalcover chat` works (and tests drive it that way). Commands: /new (a new
conversation), /quit. The thread id is printed at the start and the end; `--thread ID` continues it later,
and without flags the workspace's last conversation continues.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from goalcover.tools.core.errors import BadInput, GoalCoverError
from goalcover.tools.core.messages import user_message
from goalcover.ui.common import WorkspaceOpt, exit_now, run_alone
from goalcover.ui.inert import inert

HELP = "Type your message. /new starts a new conversation, /quit leaves (the conversation is kept)."


class Terminal:
    """Input and output of one chat: a terminal, or a pipe whose lines are echoed so transcripts read well."""

    def __init__(self, console: Console, stdin: TextIO) -> None:
        self.console = console
        self.stdin = stdin
        self.interactive = stdin.isatty() and console.is_terminal

    def read(self, prompt: str) -> str | None:
        """One line typed at `prompt`, or None at end of input."""
        if self.interactive:
            try:
                return self.console.input(f"[bold cyan]{escape(prompt)}[/] ")
            except EOFError:
                return None
        line = self.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\n")
        self.console.print(f"{prompt} {line}", markup=False, highlight=False)
        return line

class Renderer:
    """Turns session events into terminal output."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.streamed = False
        self.bar: Progress | None = None
        self.task = None

    def show(self, event) -> None:
        """Print one agent event: streamed text, a reply, a tool step, progress or an approval."""
        from goalcover.agent.session import Approval, Progress as ProgressEvent, Reply, Text, ToolStep

        if isinstance(event, Text):
            self.console.print(inert(event.text, markup=False), end="", markup=False, highlight=False, soft_wrap=True)
            self.streamed = True
        elif isinstance(event, Reply):
            if not self.streamed:
                self.console.print(inert(event.text, markup=False), markup=False, highlight=False, soft_wrap=True)
            else:
                self.console.print()
            self.streamed = False
        elif isinstance(event, ToolStep):
            self.end_line()
            self.step(event)
        elif isinstance(event, ProgressEvent):
            self.progress(event)
        elif isinstance(event, Approval):
            self.end_line()

    def end_line(self) -> None:
        """End a streamed line of text, if one is open."""
        if self.streamed:
            self.console.print()
            self.streamed = False

    def step(self, step) -> None:
        """Print a tool step: its call (arguments cut short) when it starts, its summary when it ends."""
        if step.status == "start":
            args = json.dumps(step.args, ensure_ascii=False)
            if len(args) > 100:
                args = args[:97] + "…"
            self.console.print(f"[dim]→ {step.name} {inert(args)}[/]", highlight=False)
            return
        self.stop_bar()
        mark = "[green]✓[/]" if step.status == "done" else "[red]✗[/]"
        self.console.print(f"  {mark} [dim]{step.name}:[/] ", end="", highlight=False)
        self.console.print(inert(step.summary, markup=False), markup=False, highlight=False, soft_wrap=True)
        for line in step.display:
            self.console.print(f"    {inert(line, markup=False)}", markup=False, highlight=False, soft_wrap=True)

    def progress(self, event) -> None:
        """Show a tool's progress: a bar with counts, or a stage line when there are none."""
        if event.done is None or event.total is None:
            self.stop_bar()
            self.console.print(f"  [dim]… {event.tool}: {escape(str(event.fields.get('stage', 'working')))}[/]", highlight=False)
            return
        info = " · ".join(f"{k} {v}" for k, v in event.fields.items())
        short = " · ".join(  # what fits 80 columns beside the bar: the cost and the failures
            str(event.fields[k]) if k == "cost" else f"{event.fields[k]} {k}" for k in ("cost", "failed") if k in event.fields
        )
        if not self.console.is_terminal:
            if event.done == event.total:  # a pipe gets one line, not a redrawn bar
                self.console.print(f"  {event.tool}: {event.done}/{event.total} {info}", markup=False, highlight=False)
            return
        if self.bar is None:
            self.bar = Progress(
                TextColumn("  {task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
                console=self.console,
                transient=True,
                expand=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(event.tool, total=event.total, info="")
        self.bar.update(self.task, completed=event.done, total=event.total, info=short)

    def stop_bar(self) -> None:
        """Stop the progress bar, if one is shown."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def approval(self, approval) -> None:
        """The plan of a paid step as the engine wrote it (tools/core/plans.py), then the question."""
        plan = approval.plan or {}
        lines = [f"{what}: {value}" for what, value in plan.get("rows") or []]
        if plan.get("cost"):
            lines.append(f"estimated cost: {plan['cost']}")
        lines.append(approval.question)
        self.console.print(Panel(inert("\n".join(lines)), title=f"approve {approval.tool}?", expand=False), highlight=False)


class LineReader:
    """Reads the user's lines without blocking the event loop: each read runs in a daemon thread, so a
    Ctrl-C at the prompt ends the chat at once (the abandoned read dies with the process)."""

    def __init__(self, term: Terminal) -> None:
        self.term = term

    async def read(self, prompt: str) -> str | None:
        """One line typed at `prompt` without blocking the event loop, or None at end of input."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()

        def work() -> None:
            try:
                line = self.term.read(prompt)
            except (EOFError, KeyboardInterrupt, OSError):
                line = None
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(line))

        threading.Thread(target=work, name="goalcover-chat-input", daemon=True).start()
        return await done

    async def ask_yes(self, question: str) -> bool:
        """Ask a yes/no question; True only for y or yes."""
        answer = await self.read(f"{question} [y/N]")
        return (answer or "").strip().lower() in ("y", "yes")


class Interrupts:
    """Ctrl-C during a turn stops the turn (a second Ctrl-C stops it harder: paid calls in flight are
    abandoned); Ctrl-C at the prompt leaves the chat."""

    def __init__(self) -> None:
        self.turn: asyncio.Task | None = None
        self.main = asyncio.current_task()
        self.loop = asyncio.get_running_loop()

    def __enter__(self) -> "Interrupts":
        try:
            self.loop.add_signal_handler(signal.SIGINT, self.on_sigint)
        except (NotImplementedError, RuntimeError):  # not the main thread, or a platform without it
            pass
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass

    def on_sigint(self) -> None:
        """Ctrl-C: stop the running turn (the conversation is kept), else stop the chat."""
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()
        elif self.main is not None:
            self.main.cancel()


async def chat_loop(
    workspace: Path | None = None,
    thread: str | None = None,
    *,
    new: bool = False,
    stdin: TextIO | None = None,
    console: Console | None = None,
    model=None,
) -> str:
    """Chat until /quit, end of input or Ctrl-C at the prompt; returns the thread id (to continue later
    with `thread=`). Raises BadInput for --thread with --new, ConfigError when no model is configured."""
    from goalcover.agent.session import Approval, Session
    from goalcover.agent.threads import last_thread
    from goalcover.tools.core.workspace import Workspace

    if thread and new:
        raise BadInput("--thread and --new: give one or the other")
    console = console or Console()
    term = Terminal(console, stdin or sys.stdin)
    lines = LineReader(term)
    show = Renderer(console)
    with Workspace.open(workspace) as ws, Interrupts() as interrupts:
        chosen = thread or (None if new else last_thread(ws))
        async with await Session.open(ws, chosen, model=model) as session:
            history = await session.messages()
            verb = "continuing" if history else "new"
            console.print(f"[bold]goalcover chat[/] · {escape(str(ws.root))} · {verb} thread [bold]{session.thread_id}[/]", highlight=False)
            if history:
                console.print(f"[dim]{len(history)} messages so far; the last reply:[/]", highlight=False)
                last = next((m for m in reversed(history) if m.type == "ai" and m.text), None)
                if last is not None:
                    console.print(inert(last.text, markup=False), markup=False, highlight=False, soft_wrap=True)
            else:
                console.print(f"[dim]{escape(HELP)}[/]", highlight=False)

            async def consume(events) -> list[Approval]:
                pending: list[Approval] = []
                try:
                    async for event in events:
                        show.show(event)
                        if isinstance(event, Approval):
                            pending.append(event)
                finally:
                    show.stop_bar()
                    show.end_line()
                return pending

            async def turn(events) -> None:
                task = asyncio.create_task(consume(events))
                interrupts.turn = task
                try:
                    await asyncio.wait([task])
                finally:
                    interrupts.turn = None
                if task.cancelled():
                    console.print("[yellow](stopped; the conversation is kept)[/]")
                    return
                if isinstance(task.exception(), GoalCoverError):
                    console.print(f"[bold red]error:[/] {inert(user_message(task.exception()))}", highlight=False, soft_wrap=True)
                    return
                for approval in task.result()[:1]:  # one at a time: answering may raise the next
                    show.approval(approval)
                    await turn(session.answer(await lines.ask_yes("Run it?")))

            try:
                from goalcover.tools.history.versions import since_last_visit

                if summary := await asyncio.to_thread(since_last_visit, ws):  # new versions, runs, fills, exports
                    console.print(summary, markup=False, highlight=False)
                for approval in (await session.pending())[:1]:  # left open when the last process ended
                    show.approval(approval)
                    await turn(session.answer(await lines.ask_yes("Run it?")))
                while True:
                    line = await lines.read("you>")
                    if line is None or line.strip() in ("/quit", "/exit", "/q"):
                        break
                    text = line.strip()
                    if not text:
                        continue
                    if text == "/new":
                        console.print(f"new thread [bold]{session.new_thread()}[/]", highlight=False)
                        continue
                    if text in ("/help", "/?"):
                        console.print(HELP, highlight=False, markup=False)
                        continue
                    await turn(session.send(text))
            except asyncio.CancelledError:  # Ctrl-C at the prompt: leave, keeping the conversation
                console.print()
            console.print(f"[dim]thread {session.thread_id} · continue with: goalcover chat --thread {session.thread_id}[/]", highlight=False)
            return session.thread_id


def run_chat(
    workspace: Path | None = None,
    thread: str | None = None,
    *,
    new: bool = False,
    stdin: TextIO | None = None,
    console: Console | None = None,
) -> str:
    """The terminal chat's one sync edge: `chat_loop` under asyncio.run. A Ctrl-C before the chat has
    started (while the model is probed) ends it as an interrupt, not a traceback."""
    try:
        return asyncio.run(chat_loop(workspace, thread, new=new, stdin=stdin, console=console))
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None


def chat_command(
    thread: Annotated[
        Optional[str], typer.Option("--thread", help="Continue this conversation (its id is printed when a chat starts and ends).", show_default=False)
    ] = None,
    new: Annotated[bool, typer.Option("--new", help="Start a new conversation instead of continuing the workspace's last one.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Talk with the GoalCover agent in the terminal.

    Set your goal and refine its subgoals in plain words, score the dataset (you approve the cost first),
    and ask what the data covers and why a subgoal is weak. Answers come only from the workspace's data.
    Reads from a pipe too: `printf 'describe the dataset\\n' | goalcover chat`. Needs a model with tool
    calling (GOALCOVER_AGENT_MODEL or GOALCOVER_MODEL).
    """
    run_chat(workspace, thread, new=new)


def main() -> None:
    """`python -m goalcover.ui.chat`: the same command on its own, with the CLI's error handling."""
    try:
        run_alone(chat_command)
    except SystemExit as done:
        exit_now(done.code)


if __name__ == "__main__":
    main()
