"""What the chat app sends to the browser: messages with buttons, and a live progress line.

`Out` remembers which messages still have working buttons, so a used button disappears with its
siblings (clicking "Run it" twice would run twice). `ProgressLine` redraws one message from the engine's
progress info at most a few times a second, and the latest count is always drawn in the end.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import chainlit as cl
from chainlit.utils import utc_now

from goalcover.ui import render, runs

PROGRESS_EVERY_S = 0.25  # at most this often a progress line is redrawn


def action(name: str, label: str, tooltip: str = "", **payload: Any) -> cl.Action:
    """A button: `name` is the callback (ui/app.py), `payload` what it acts on."""
    return cl.Action(name=name, label=label, payload=payload, tooltip=tooltip)


class Out:
    """The chat's output: messages, their buttons, errors."""

    def __init__(self) -> None:
        self.live: dict[str, cl.Message] = {}  # messages whose buttons still work, by message id

    async def send(self, content: str, actions: list[cl.Action] | None = None, elements: list | None = None) -> cl.Message:
        """A message with buttons (remembered until one is used) and elements (sent one by one after it, so
        charts keep their order: Chainlit sends a message's own elements all at once)."""
        message = cl.Message(content=content, actions=actions or [])
        for a in message.actions:
            a.payload["message"] = message.id
        await message.send()
        for element in elements or []:
            await element.send(for_id=message.id)
        if message.actions:
            self.live[message.id] = message
        return message

    async def user(self, text: str, author: str) -> None:
        """What a button says for the user, shown as their message."""
        await cl.Message(content=text, author=author, type="user_message").send()

    async def error(self, text: str, markdown: bool = False) -> None:
        """Show `text` as an error message, as written: an error names what came from the data (a file's
        keys, a column, a line), so nothing in it is rendered as Markdown (no image fetched, no link).
        `markdown=True` is for the app's own fixed messages, shown formatted."""
        await cl.ErrorMessage(content=text if markdown else render.inert_markdown(text), author="GoalCover").send()

    async def disarm(self, message_id: str | None) -> None:
        """Remove the buttons of a message once one of them was used."""
        message = self.live.pop(message_id or "", None)
        if message is not None:
            await message.remove_actions()


def tool_step(name: str, args: Any) -> cl.Step:
    """A step for one tool call, placed like the messages around it (inside the current run, if any)."""
    parent = cl.context.current_step
    step = cl.Step(name=name, type="tool", show_input="json", parent_id=parent.id if parent else None)
    step.input = args
    step.start = utc_now()
    return step


class ProgressLine:
    """One message that shows a piece of work's progress; `push` is synchronous, so the engine's progress
    callback can call it directly, and drawing happens on the event loop. `priced=False` leaves out the
    engine's running cost (it would read $0.0000 for a model without a price)."""

    def __init__(self, tool: str, priced: bool = True) -> None:
        self.tool = tool
        self.priced = priced
        self.message: cl.Message | None = None
        self.pending: str | None = None  # the line to draw next
        self.counted = ""  # the last line with counts
        self.drawn_at = 0.0
        self.drawer: asyncio.Task | None = None

    def push(self, done: int | None = None, total: int | None = None, **fields: Any) -> None:
        """Record the latest progress (counts, stage, cost when priced) and schedule a redraw, at most every PROGRESS_EVERY_S."""
        if not self.priced:
            fields.pop("cost", None)
        if done is not None:
            self.counted = self.pending = render.progress_text(self.tool, done, total, fields)
        elif self.counted:  # a stage after the counting (indexing scores): keep the counts in view
            self.pending = f"{self.counted} · {fields.get('stage', 'working')}…"
        else:
            self.pending = render.progress_text(self.tool, None, None, fields)
        if self.drawer is None or self.drawer.done():
            self.drawer = asyncio.ensure_future(self._draw_soon())

    @staticmethod
    def _mirror(text: str) -> None:
        """Copy the line to the workspace's live run, for tabs that watch it (ui/runs.py)."""
        if (run := runs.current.get()) is not None:
            run.line = text

    async def _draw_soon(self) -> None:
        await asyncio.sleep(max(0.0, self.drawn_at + PROGRESS_EVERY_S - time.monotonic()))
        await self.draw()

    async def draw(self) -> None:
        """Draw the pending progress text now, if any."""
        if self.pending is None:
            return
        content, self.pending = self.pending, None
        self.drawn_at = time.monotonic()
        self._mirror(content)
        if self.message is None:
            self.message = cl.Message(content=content)
            await self.message.send()
        else:
            self.message.content = content
            await self.message.update()

    async def end(self, stopped: bool = False, failed: bool = False) -> None:
        """Draw what is pending, then leave the counts (marked when stopped or failed: never "done" then)."""
        if stopped:
            runs.mark_stopped()
        if self.drawer is not None:
            await asyncio.gather(self.drawer, return_exceptions=True)  # at most PROGRESS_EVERY_S
        await self.draw()
        if self.message is None:
            return
        if self.counted:
            final = self.counted.removesuffix("…") + (" · **stopped**" if stopped else " · **failed**" if failed else "")
        else:  # a stage line only ("drafting subgoals…"): say how it ended
            ended = "stopped" if stopped else "failed" if failed else "done"
            final = render.progress_text(self.tool, None, None, {"stage": ended}).removesuffix("…")
        self._mirror(final)
        if final != self.message.content:
            self.message.content = final
            await self.message.update()

    async def around(self, work):
        """Await `work` under this line: it ends as done, or as stopped when the task is cancelled."""
        try:
            result = await work
        except asyncio.CancelledError:
            await self.end(stopped=True)
            raise
        except BaseException:
            await self.end(failed=True)
            raise
        await self.end()
        return result
