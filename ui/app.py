"""The Chainlit chat app. `goalcover ui` (ui/serve.py) serves it; `chainlit run ui/app.py` does too.

Handlers stay thin, in the Chainlit cookbook's way: a message is awaited by the browser session's
`WebChat` (ui/webchat.py), which iterates the agent graph's `astream` and renders it; each button runs its
step through the engine (ui/actions.py). Chainlit's stop button cancels the task doing the work. The
workspace comes from GOALCOVER_WORKSPACE; with GOALCOVER_UI_PASSWORD (or GOALCOVER_UI_USERS) set, users
log in and each works in a workspace of their own (ui/webauth.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import chainlit as cl

from goalcover.tools.settings import load_settings
from goalcover.ui import runs, webauth
from goalcover.ui.webchat import WebChat

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
    if runs.live(web.root) is not None:  # work started before a reload or in another window: watch it here
        # A page that has not been used yet hides the stop button: tell it the chat has begun.
        await cl.context.emitter.emit("first_interaction", {"interaction": "watch", "thread_id": cl.context.session.thread_id})
        background(web.busy)


@cl.on_message
async def message(msg: cl.Message) -> None:
    if not msg.content.strip():
        # The UI takes a first message without text (a bare upload) for "not started yet" and then never
        # shows the stop button; tell it the chat has begun.
        await cl.context.emitter.emit("first_interaction", {"interaction": "upload", "thread_id": cl.context.session.thread_id})
    await chat().handle(msg)


@cl.on_chat_end
async def end() -> None:
    if (web := chat()) is not None:
        if cl.context.session.to_clear and (task := cl.context.session.current_task) is not None and not task.done():
            task.cancel()  # "New chat": the work of the conversation left behind stops, keeping what it paid for
        web.leave(new_chat=cl.context.session.to_clear)


# --- buttons ---------------------------------------------------------------------------------------
# Chainlit runs an action callback inside the HTTP request of the click; the work runs as the session's
# current task instead, so the click returns at once and the stop button cancels the work.

def background(work: Callable[[], Awaitable[None]]) -> None:
    async def run() -> None:
        await cl.context.emitter.task_start()
        try:
            await work()
        except asyncio.CancelledError:  # the stop button, before the work could report it
            pass
        except Exception as exc:  # a bug: say so in the chat instead of failing silently
            logging.getLogger("goalcover.ui").exception("button failed")
            await cl.ErrorMessage(content=f"Internal error: {type(exc).__name__}: {exc}", author="GoalCover").send()
        finally:
            await cl.context.emitter.task_end()

    cl.context.session.current_task = asyncio.create_task(run())


def button(*names: str, keep: bool = False):
    """Register `fn(web, payload)` as the callback of the buttons `names`: the buttons of the clicked
    message go away (unless `keep`), then the work runs alone, as the session's task."""

    def register(fn: Callable[[WebChat, dict], Awaitable[None]]):
        async def callback(clicked: cl.Action) -> None:
            web = chat()
            if not keep:
                await web.out.disarm(clicked.payload.get("message"))
            background(lambda: web.exclusive(fn, web, clicked.payload))

        for name in names:
            cl.action_callback(name)(callback)
        return fn

    return register


@cl.action_callback("stop_run")
async def on_stop_run(clicked: cl.Action) -> None:
    """The "Stop" button of a run watched from this tab (ui/runs.py): it stops the workspace's run."""
    web = chat()
    await web.out.disarm(clicked.payload.get("message"))
    if (run := runs.live(web.root)) is not None:
        run.stop()


@button("propose")
async def on_propose(web: WebChat, p: dict) -> None:
    await web.actions.propose(str(p.get("goal", "")))


@button("approve_goal")
async def on_approve(web: WebChat, p: dict) -> None:
    await web.actions.approve_goal()


@button("score")
async def on_score(web: WebChat, p: dict) -> None:
    await web.actions.score()


@button("score_run")
async def on_score_run(web: WebChat, p: dict) -> None:
    await web.actions.score_run()


@button("coverage", keep=True)
async def on_coverage(web: WebChat, p: dict) -> None:
    await web.actions.coverage()


@button("report", keep=True)
async def on_report(web: WebChat, p: dict) -> None:
    await web.actions.report()


@button("check_judge")
async def on_check_judge(web: WebChat, p: dict) -> None:
    await web.actions.check_judge()


@button("judge_label")
async def on_judge_label(web: WebChat, p: dict) -> None:
    await web.actions.judge_label(p)


@button("judge_check_done")
async def on_judge_check_done(web: WebChat, p: dict) -> None:
    await web.actions.judge_check_done()


@button("judge_apply")
async def on_judge_apply(web: WebChat, p: dict) -> None:
    await web.actions.judge_apply(str(p.get("subgoal_id", "")))


@button("find_gaps")
async def on_find_gaps(web: WebChat, p: dict) -> None:
    await web.actions.find_gaps()


@button("gaps_run")
async def on_gaps_run(web: WebChat, p: dict) -> None:
    await web.actions.gaps_run()


@button("why", keep=True)
async def on_why(web: WebChat, p: dict) -> None:
    await web.actions.why(str(p.get("subgoal_id", "")))


@button("show_sample", keep=True)
async def on_show_sample(web: WebChat, p: dict) -> None:
    await web.actions.show_sample([str(i) for i in p.get("ids", [])])


@button("fill", keep=True)
async def on_fill(web: WebChat, p: dict) -> None:
    await web.actions.fill(str(p.get("gap_id", "")), str(p.get("gap_label", "")))


@button("fill_run")
async def on_fill_run(web: WebChat, p: dict) -> None:
    await web.actions.fill_run(str(p.get("gap_id", "")), int(p.get("n", 10)))


@button("review_list")
async def on_review_list(web: WebChat, p: dict) -> None:
    await web.actions.review_list()


@button("review")
async def on_review(web: WebChat, p: dict) -> None:
    await web.actions.review([str(i) for i in p.get("ids", [])], bool(p.get("accept")))


@button("export", keep=True)
async def on_export(web: WebChat, p: dict) -> None:
    await web.actions.export()


@button("dismiss")
async def on_dismiss(web: WebChat, p: dict) -> None:
    from goalcover.ui import views

    await web.out.send("Not run: nothing was spent.", await views.next_actions(web.ws))


@button("answer")
async def on_answer(web: WebChat, p: dict) -> None:
    await web.answer(bool(p.get("approve")))


@button("ingest_mode")
async def on_ingest_mode(web: WebChat, p: dict) -> None:
    await web.ingest_offered(str(p.get("path", "")), str(p.get("mode", "")))
