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
import chainlit.auth.jwt
import chainlit.config
import chainlit.server

from goalcover.tools.core.messages import internal_error
from goalcover.tools.core.settings import load_settings
from goalcover.ui import history, login_guard, runs, webauth
from goalcover.ui.webchat import WebChat

SETTINGS = load_settings()
WORKSPACE = Path(SETTINGS.workspace).expanduser().resolve()
webauth.ensure_auth_secret(WORKSPACE)
# Login tokens are signed with a key bound to the current users and passwords (a change ends earlier
# logins) and last GOALCOVER_UI_LOGIN_HOURS: Chainlit reads both through these two names on every use.
chainlit.auth.jwt.get_jwt_secret = lambda: webauth.token_secret(WORKSPACE)
chainlit.config.config.project.user_session_timeout = int(SETTINGS.ui_login_hours * 3600)

# With a login, Chainlit's data layer keeps each user's conversations and lists them (ui/history.py);
# without one there is no user to list them for, and the workspace's one conversation is shared.
KEPT = webauth.login_required(WORKSPACE)
if KEPT:
    # Chainlit checks the login on connect and on HTTP calls; an open page's socket events are checked too.
    login_guard.guard_events(chainlit.server.sio)

    @cl.password_auth_callback
    def login(username: str, password: str) -> cl.User | None:
        name = webauth.check(username, password, WORKSPACE)
        return None if name is None else cl.User(identifier=name, metadata={"provider": "credentials"})

    @cl.data_layer
    def conversations():
        """Chainlit's SQLAlchemyDataLayer on WORKSPACE/conversations/chat.sqlite (ui/history.py)."""
        return history.data_layer(WORKSPACE, lambda name: webauth.workspace_for(WORKSPACE, name))

    history.add_file_route(WORKSPACE)

    @cl.on_chat_resume
    async def resume(thread: dict) -> None:
        """Chainlit's reopening of a kept conversation: its LangGraph thread is the Chainlit thread; the
        page shows the saved messages, then the buttons that apply now (after Chainlit sends the history)."""
        name = cl.context.session.user.identifier
        web = WebChat(webauth.workspace_for(WORKSPACE, name), user_name=name, typed_paths=webauth.typed_paths_allowed(),
                      conversation=str(thread["id"]))
        cl.user_session.set("chat", web)
        background(lambda: history.reopen(web, thread))


def chat() -> WebChat:
    """This browser session's WebChat."""
    return cl.user_session.get("chat")


@cl.on_chat_start
async def start() -> None:
    """Chainlit's chat start: a WebChat on the user's workspace (per user when logins are on), resuming where it stands."""
    user = cl.context.session.user
    name = user.identifier if user else None
    web = WebChat(webauth.workspace_for(WORKSPACE, name), user_name=name or "You", typed_paths=webauth.typed_paths_allowed(),
                  conversation=cl.context.session.thread_id if KEPT else None, shared=user is None)
    cl.user_session.set("chat", web)
    await web.start()
    if runs.live(web.root) is not None:  # work started before a reload or in another window: watch it here
        # A page that has not been used yet hides the stop button: tell it the chat has begun.
        await begin("Watching a run")
        background(web.busy)


@cl.on_message
async def message(msg: cl.Message) -> None:
    """Chainlit's message handler: the user's text or upload goes to the WebChat."""
    if not msg.content.strip():
        # The UI takes a first message without text (a bare upload) for "not started yet" and then never
        # shows the stop button; tell it the chat has begun.
        await begin("upload")
    await chat().handle(msg)


async def begin(interaction: str) -> None:
    """Tell the page the chat has begun (it shows the stop button only then); with conversations kept, this
    is Chainlit's own start of the thread (saved under the user, listed), so a reload can reopen it."""
    session = cl.context.session
    if KEPT and not session.has_first_interaction:
        session.has_first_interaction = True
        await cl.context.emitter.init_thread(interaction)
    else:
        await cl.context.emitter.emit("first_interaction", {"interaction": interaction, "thread_id": session.thread_id})


@cl.on_chat_end
async def end() -> None:
    """Chainlit's chat end: on "New chat" the running work stops (what it paid for is kept); the WebChat leaves."""
    if (web := chat()) is not None:
        if cl.context.session.to_clear and (task := cl.context.session.current_task) is not None and not task.done():
            task.cancel()  # "New chat": the work of the conversation left behind stops, keeping what it paid for
        web.leave(new_chat=cl.context.session.to_clear)


# --- buttons ---------------------------------------------------------------------------------------
# Chainlit runs an action callback inside the HTTP request of the click; the work runs as the session's
# current task instead, so the click returns at once and the stop button cancels the work.

def background(work: Callable[[], Awaitable[None]]) -> None:
    """Run a button's `work` as the session's current task, so the click returns at once and the stop button cancels it; a bug is shown as one Internal error line."""
    async def run() -> None:
        await cl.context.emitter.task_start()
        try:
            await work()
        except asyncio.CancelledError:  # the stop button, before the work could report it
            pass
        except Exception as exc:  # a bug: say so in the chat instead of failing silently
            logging.getLogger("goalcover.ui").exception("button failed")
            await cl.ErrorMessage(content=internal_error(exc), author="GoalCover").send()
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
    """Button: propose subgoals for the goal text in the payload."""
    await web.actions.propose(str(p.get("goal", "")))


@button("approve_goal")
async def on_approve(web: WebChat, p: dict) -> None:
    """Button: save the draft subgoals as the goal."""
    await web.actions.approve_goal()


@button("score")
async def on_score(web: WebChat, p: dict) -> None:
    """Button: the scoring plan, for approval."""
    await web.actions.score()


@button("score_run")
async def on_score_run(web: WebChat, p: dict) -> None:
    """Button: run the approved scoring."""
    await web.actions.score_run()


@button("coverage", keep=True)
async def on_coverage(web: WebChat, p: dict) -> None:
    """Button: the coverage table."""
    await web.actions.coverage()


@button("report", keep=True)
async def on_report(web: WebChat, p: dict) -> None:
    """Button: the HTML report."""
    await web.actions.report()


@button("check_judge")
async def on_check_judge(web: WebChat, p: dict) -> None:
    """Button: start the judge check (spot-checks)."""
    await web.actions.check_judge()


@button("judge_label")
async def on_judge_label(web: WebChat, p: dict) -> None:
    """Button: the user's score for one spot-checked sample."""
    await web.actions.judge_label(p)


@button("judge_check_done")
async def on_judge_check_done(web: WebChat, p: dict) -> None:
    """Button: finish the judge check and show the agreement."""
    await web.actions.judge_check_done()


@button("judge_apply")
async def on_judge_apply(web: WebChat, p: dict) -> None:
    """Button: teach the judge one subgoal with the user's scores, then re-score it."""
    await web.actions.judge_apply(str(p.get("subgoal_id", "")))


@button("find_gaps")
async def on_find_gaps(web: WebChat, p: dict) -> None:
    """Button: the gap analysis plan, for approval."""
    await web.actions.find_gaps()


@button("gaps_run")
async def on_gaps_run(web: WebChat, p: dict) -> None:
    """Button: run the approved gap analysis."""
    await web.actions.gaps_run()


@button("why", keep=True)
async def on_why(web: WebChat, p: dict) -> None:
    """Button: why the subgoal in the payload is weak."""
    await web.actions.why(str(p.get("subgoal_id", "")))


@button("show_sample", keep=True)
async def on_show_sample(web: WebChat, p: dict) -> None:
    """Button: show the samples in the payload."""
    await web.actions.show_sample([str(i) for i in p.get("ids", [])])


@button("fill", keep=True)
async def on_fill(web: WebChat, p: dict) -> None:
    """Button: the synthesis plan for one gap, for approval."""
    await web.actions.fill(str(p.get("gap_id", "")), str(p.get("gap_label", "")))


@button("fill_run")
async def on_fill_run(web: WebChat, p: dict) -> None:
    """Button: synthesize the approved number of samples for one gap."""
    await web.actions.fill_run(str(p.get("gap_id", "")), int(p.get("n", 10)))


@button("review_list")
async def on_review_list(web: WebChat, p: dict) -> None:
    """Button: the synthetic samples to review."""
    await web.actions.review_list()


@button("review")
async def on_review(web: WebChat, p: dict) -> None:
    """Button: accept or reject the synthetic samples in the payload."""
    await web.actions.review([str(i) for i in p.get("ids", [])], bool(p.get("accept")))


@button("export", keep=True)
async def on_export(web: WebChat, p: dict) -> None:
    """Button: export the filtered and augmented dataset."""
    await web.actions.export()


@button("timeline", keep=True)
async def on_timeline(web: WebChat, p: dict) -> None:
    """Button: the coverage-over-time chart (share per subgoal over dataset versions)."""
    from goalcover.ui import iterate_views

    await iterate_views.timeline_view(web.out, web.ws)


@button("what_changed", keep=True)
async def on_what_changed(web: WebChat, p: dict) -> None:
    """Button: the capability diff of the previous dataset version against the current one, with its chart."""
    from goalcover.ui import iterate_views

    await iterate_views.what_changed_view(web.out, web.ws)


@button("pool_fill", keep=True)
async def on_pool_fill(web: WebChat, p: dict) -> None:
    """Button: the plan (pool candidates, calls, cost) of filling a gap from the pool; nothing is paid yet."""
    from goalcover.ui import iterate_views

    await iterate_views.pool_fill_plan_view(web.out, web.ws, str(p.get("gap_id", "")))


@button("pool_fill_run")
async def on_pool_fill_run(web: WebChat, p: dict) -> None:
    """Button: run the pool fill for the gap in the payload and show its candidates for review."""
    from goalcover.ui import iterate_views

    await web.actions.say(f"Fill gap {p.get('gap_id')} from the pool.")
    await iterate_views.pool_fill_run(web.out, web.ws, str(p.get("gap_id", "")), int(p.get("n", iterate_views.POOL_FILL_N)))


@button("dismiss")
async def on_dismiss(web: WebChat, p: dict) -> None:
    """Button: decline a plan; nothing runs, the next steps are offered."""
    from goalcover.ui import views

    await web.out.send("Not run: nothing was spent.", await views.next_actions(web.ws))


@button("answer")
async def on_answer(web: WebChat, p: dict) -> None:
    """Button: approve or decline the agent's pending paid step."""
    await web.answer(bool(p.get("approve")))


@button("ingest_mode")
async def on_ingest_mode(web: WebChat, p: dict) -> None:
    """Button: how to ingest an uploaded file into a workspace that holds another (add or replace)."""
    await web.ingest_offered(str(p.get("path", "")), str(p.get("mode", "")))
