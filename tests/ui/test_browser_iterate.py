"""The chat app in real Chromium: the coverage timeline, "What changed?" and the "since last time" summary on a
workspace whose gap was filled from a pool (prepared with the engine, judged by the fake's keyword judge)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from goalcover.testing import FakeOpenAI
from goalcover.tools.judge import scoring
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.fill.gaps import find_gaps
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.fill.pool import add_to_pool, fill_from_pool
from goalcover.tools.fill.synthesis import review
from goalcover.tools.history.versions import since_last_visit
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.tools.judge.test_scoring import GOAL_FILE, open_ws
from tests.tools.history.test_versions import LINES, S1, _text, write
from tests.ui.conftest import serve, shot
from tests.ui.test_browser import click, expect_text, pages  # noqa: F401  (pages is a fixture)

pytestmark = pytest.mark.timeout(480)


def test_timeline_and_what_changed_after_a_fill_from_the_pool(pages, tmp_path):  # noqa: F811
    head = LINES[:60]
    data = write(tmp_path / "data.jsonl", [ln for ln in head if not S1.search(_text(ln))])
    pool = write(tmp_path / "pool.jsonl", [ln for ln in head if S1.search(_text(ln))])
    with FakeOpenAI(rules=[keyword_judge(CONTRACT_PATTERNS)]) as fake:

        def prepare() -> tuple[str, int]:
            with open_ws(tmp_path / "ws", fake) as ws:
                ingest_file(ws, data)
                save_goal(ws, load_goal_file(GOAL_FILE))
                asyncio.run(scoring.score(ws))
                since_last_visit(ws)  # a conversation saw the workspace here
                add_to_pool(ws, pool)
                gap = next(g for g in asyncio.run(find_gaps(ws)) if g.subgoal_id == "S1")
                kept = asyncio.run(fill_from_pool(ws, gap.id, 50)).kept
                review(ws, accept=["all"])
                return gap.id, kept

        # Playwright's sync API holds this thread's event loop: the engine runs its own in a worker thread.
        with ThreadPoolExecutor(1) as worker:
            gap_id, kept = worker.submit(prepare).result()
        with serve(tmp_path / "ws", fake) as url:
            page = pages()
            page.goto(url)
            expect_text(page, f"Since last time: 1 new dataset version(s) (v2..v2), 1 scoring run(s), {kept} fill(s) accepted.", 60_000)
            click(page, "What changed?")
            expect_text(page, "What changed: v1 → v2", 30_000)
            chart = page.locator(".js-plotly-plot", has_text="What changed")
            chart.last.wait_for(state="visible", timeout=30_000)
            expect_text(page, f"Gaps closed: {gap_id} (S1)")
            shot(page, "iterate-what-changed")
            click(page, "Coverage over time")
            timeline = page.locator(".js-plotly-plot", has_text="Coverage over time")
            timeline.last.wait_for(state="visible", timeout=30_000)
            assert timeline.last.locator(".scatterlayer .trace").count() == 5  # one line per subgoal
            shot(page, "iterate-timeline")
