"""A run belongs to the workspace (ui/runs.py): another tab watches it and its stop stops the run; the
buttons score in the mode from settings (ui/actions.py), as the CLI and the agent do."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from goalcover.ui import runs
from goalcover.tools.core.settings import load_settings
from goalcover.tools.judge.judge_ref import JudgeRef
from goalcover.ui.actions import Actions


def test_a_watching_tab_sees_the_progress_and_its_stop_stops_the_run(tmp_path):
    root = Path(tmp_path)

    async def scenario():
        started = asyncio.Event()

        async def work():
            runs.start(root, "scoring").line = "Scoring 3/10"
            started.set()
            await asyncio.sleep(30)

        task = asyncio.create_task(work())
        await started.wait()
        run = runs.live(root)
        drawn: list[str] = []

        async def draw(text):
            drawn.append(text)

        watcher = asyncio.create_task(runs.watch(run, draw))
        await asyncio.sleep(0.1)
        watcher.cancel()  # the stop button of the watching tab
        stopped = await watcher
        return stopped, drawn, task

    stopped, drawn, task = asyncio.run(scenario())
    assert stopped and drawn == ["Scoring 3/10"] and task.cancelled()
    assert runs.live(root) is None


def test_buttons_score_in_the_mode_from_settings():
    ws = SimpleNamespace(settings=load_settings(judge_mode="pair", judge_model="m"))
    assert Actions(SimpleNamespace(ws=ws)).judge == JudgeRef.resolve(ws.settings, "pair")
    assert Actions(SimpleNamespace(ws=ws)).judge.mode == "pair"


def test_a_run_stopped_in_its_own_tab_reads_stopped_in_a_watching_tab(tmp_path):
    """An agent's turn names the paid tool it runs, and its own stop button (which cancels the task, not
    `LiveRun.stop`) still tells watchers it was stopped, not finished."""
    root = Path(tmp_path)

    async def scenario():
        started = asyncio.Event()

        async def turn():
            with runs.running(root, "the agent's work"):
                runs.doing("scoring")
                started.set()
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:  # the turn handles its stop, as ui/turn.py does
                    runs.mark_stopped()

        task = asyncio.create_task(turn())
        await started.wait()
        run = runs.live(root)
        what = run.what

        async def draw(text):
            pass

        watcher = asyncio.create_task(runs.watch(run, draw))
        await asyncio.sleep(0.1)
        task.cancel()  # the stop button of the tab that started it
        return what, await watcher

    what, stopped = asyncio.run(scenario())
    assert what == "scoring" and stopped
    assert runs.live(root) is None


def test_a_watching_tab_shows_the_agents_answer_when_its_turn_finishes(tmp_path, monkeypatch):
    """An agent's turn watched from another tab (or after a reload): when it ends, the watching tab shows the
    reply the turn's own tab showed, then the next steps; a stopped turn shows no reply."""
    from goalcover.ui import webchat
    from goalcover.ui.webchat import WebChat

    shown: list[str] = []

    class Out:
        async def send(self, content, actions=None, elements=None):
            shown.append(content)

    async def next_steps(out, ws, text):
        shown.append(text)

    monkeypatch.setattr(webchat.views, "next_steps", next_steps)
    monkeypatch.setattr(webchat.views, "next_actions", lambda ws: asyncio.sleep(0, []))

    def watched(stop: bool) -> list[str]:
        shown.clear()
        root = Path(tmp_path) / ("stopped" if stop else "finished")
        chat = WebChat(root)
        chat.out, chat.ws = Out(), None

        async def scenario():
            started, go_on = asyncio.Event(), asyncio.Event()

            async def turn():
                with runs.running(root, "the agent's work"):
                    started.set()
                    await go_on.wait()
                    runs.replied("S3 is weak: 4 of 40 samples support it (ids: s1, s7, s9, s12).")
                    if stop:
                        runs.mark_stopped()

            task = asyncio.create_task(turn())
            await started.wait()
            watcher = asyncio.create_task(chat.watch_run(runs.live(root)))
            await asyncio.sleep(0.05)
            go_on.set()
            await task
            await watcher

        asyncio.run(scenario())
        return shown[1:]  # after the "is running" notice

    assert watched(stop=False) == ["S3 is weak: 4 of 40 samples support it (ids: s1, s7, s9, s12).",
                                   "The agent's work finished. What next?"]
    assert watched(stop=True) == ["The agent's work stopped; what it finished is kept."]
