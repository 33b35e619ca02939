"""The Chainlit chat app. `goalcover ui` (ui/serve.py) serves it; `chainlit run ui/app.py` does too.

Handlers stay thin, in the Chainlit cookbook's way: each hands the user's message, upload or click to the
browser session's `WebChat` (ui/webchat.py), which runs the agent or the engine and renders what comes
back. The workspace comes from GOALCOVER_WORKSPACE; with GOALCOVER_UI_PASSWORD (or GOALCOVER_UI_USERS) set,
users log in and each works in a workspace of their own (ui/webauth.py).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import chainlit as cl

from goalcover.tools.settings import load_settings
from goalcover.ui import webauth
from goalcover.ui.webchat import SAY, WebChat

WORKSPACE = Path(load_settings().workspace).expanduser().resolve()
webauth.ensure_auth_secret(WORKSPACE)

if webauth.login_required():

    @cl.password_auth_callback
    def login(username: str, password: str) -> cl.User | None:
        name = webauth.check(username, password)
        return None if name is None else cl.User(identifier=name, metadata={"provider": "credentials"})


def chat() -> WebChat:
    return cl.user_session.get("chat")


@cl.on_chat_start
async def start() -> None:
    user = cl.context.session.user
    name = user.identifier if user else None
    web = WebChat(webauth.workspace_for(WORKSPACE, name), user_name=name or "You", typed_paths=not webauth.login_required())
    cl.user_session.set("chat", web)
    await web.start()


@cl.on_message
async def message(msg: cl.Message) -> None:
    if not msg.content.strip():
        # The UI takes a first message without text (a bare upload) for "not started yet" and then never
        # shows the stop button; tell it the chat has begun.
        await cl.context.emitter.emit("first_interaction", {"interaction": "upload", "thread_id": cl.context.session.thread_id})
    await chat().handle(msg)


@cl.on_stop
async def stop() -> None:
    if (web := chat()) is not None:
        web.stop()


@cl.on_chat_end
async def end() -> None:
    if (web := chat()) is not None:
        web.leave(new_chat=cl.context.session.to_clear)


# --- buttons: each runs as a task of its own, so the stop button works and the click returns at once ---

def background(work) -> None:
    async def run() -> None:
        await cl.context.emitter.task_start()
        try:
            await work
        except asyncio.CancelledError:  # the stop button, while waiting for the work to begin
            pass
        except Exception as exc:  # a bug: say so in the chat instead of failing silently
            logging.getLogger("goalcover.ui").exception("button failed")
            await cl.ErrorMessage(content=f"Internal error: {type(exc).__name__}: {exc}", author="GoalCover").send()
        finally:
            await cl.context.emitter.task_end()

    cl.context.session.current_task = asyncio.create_task(run())


async def clicked(action: cl.Action) -> WebChat:
    web = chat()
    await web.disarm(action.payload.get("message"))
    return web


@cl.action_callback("answer")
async def on_answer(action: cl.Action) -> None:
    web = await clicked(action)
    background(web.answer(bool(action.payload.get("approve"))))


@cl.action_callback("approve_goal")
@cl.action_callback("score")
@cl.action_callback("find_gaps")
@cl.action_callback("resume_scoring")
async def on_say(action: cl.Action) -> None:
    web = await clicked(action)
    background(web.say(SAY[action.name]))


@cl.action_callback("fill_gap")
async def on_fill(action: cl.Action) -> None:
    background(chat().fill(str(action.payload.get("gap_id", "")), str(action.payload.get("gap_label", ""))))


@cl.action_callback("review")
async def on_review(action: cl.Action) -> None:
    web = await clicked(action)
    background(web.review(list(action.payload.get("ids", [])), bool(action.payload.get("accept"))))


@cl.action_callback("export")
async def on_export(action: cl.Action) -> None:
    background(chat().export())


@cl.action_callback("report")
async def on_report(action: cl.Action) -> None:
    background(chat().report())


@cl.action_callback("ingest_mode")
async def on_ingest_mode(action: cl.Action) -> None:
    web = await clicked(action)
    background(web.ingest_offered(str(action.payload.get("path", "")), str(action.payload.get("mode", ""))))
