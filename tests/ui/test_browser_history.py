"""Browser test of the kept conversations (issue 26 deliver 3): with a login, Chainlit's data layer
(SQLAlchemyDataLayer on WORKSPACE/conversations/chat.sqlite, ui/history.py) restores a reloaded
conversation with its messages, charts and the buttons that apply, and the sidebar lists an earlier
conversation that opens as it was. One app start; the fake endpoint answers in plain text, so each step
is a button; a small slice of the contracts set keeps it quick.
"""

from __future__ import annotations

import re
import sqlite3

from goalcover.testing import FakeOpenAI
from tests.conftest import SFT, head_lines
from tests.support.judges import CONTRACT_PATTERNS, topical_judge
from tests.ui.conftest import GOAL, serve, shot, subgoal_rules
from tests.ui.test_browser import start_scoring_with_buttons, LONG, click, expect_text, idle, pages, send  # noqa: F401 (fixture)

N = 24  # samples: the first records of contracts_alpaca.jsonl


def test_reload_restores_the_conversation_and_the_list_shows_an_earlier_one(browser, tmp_path):
    from playwright.sync_api import expect

    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", N)
    workspace = tmp_path / "ws"
    with FakeOpenAI(rules=[subgoal_rules, topical_judge(CONTRACT_PATTERNS)]) as fake, \
            serve(workspace, fake, GOALCOVER_UI_PASSWORD="open sesame") as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            page.goto(url)
            page.locator("#email").fill("alice")
            page.locator("#password").fill("open sesame")
            page.locator("button[type=submit]").click()
            expect_text(page, "Start by uploading your dataset", 30_000)
            assert "shares this one conversation" not in page.content()  # said only without a login

            # An earlier conversation: one message, then "New chat".
            send(page, "first conversation about termination clauses")
            expect_text(page, "first conversation about termination clauses")
            idle(page)
            page.wait_for_url(re.compile(r"/thread/[0-9a-f-]+$"), timeout=30_000)
            first = page.url
            page.locator("#header #new-chat-button").click()
            click(page, "Confirm")
            expect_text(page, "Start by uploading your dataset", 30_000)

            # The conversation to restore: upload, goal, subgoals, scoring with its charts.
            start_scoring_with_buttons(page, data, N)
            expect_text(page, "Scoring finished", LONG)
            idle(page)
            page.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=30_000)
            charts = page.locator(".js-plotly-plot").count()
            assert charts >= 2 and page.url != first

            # Reloaded: the saved conversation (messages, tables, charts from the stored files), then the
            # buttons that apply now; nothing is paid again.
            calls = len(fake.requests)
            page.reload()
            expect_text(page, "Reopened this conversation", 30_000)
            expect_text(page, f"My goal: {GOAL}")
            expect_text(page, "Subgoals (saved)")
            expect_text(page, f"{N} samples (alpaca, jsonl)")
            page.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=30_000)
            assert page.locator(".js-plotly-plot").count() == charts  # the charts come from the data layer
            expect(page.get_by_role("button", name="Export dataset", exact=True).last).to_be_visible()
            shot(page, "history-reloaded")
            expect(page.get_by_role("button", name="Score the dataset", exact=True)).to_have_count(0)
            idle(page)
            assert not [r for r in fake.requests[calls:] if r.schema_name == "judgment"]
            click(page, "Show coverage")  # a restored page's buttons work
            expect_text(page, "Coverage", 30_000)
            idle(page)
            page.reload()  # reloads do not pile up "Reopened" messages: each replaces the one before
            expect_text(page, "Show coverage", 30_000)
            idle(page)
            expect(page.get_by_text("Reopened this conversation")).to_have_count(1, timeout=20_000)

            # The conversation list shows the earlier conversation, and it opens as it was.
            page.locator("#header #sidebar-trigger-button").click()
            earlier = page.locator("#thread-history").get_by_text("first conversation about termination clauses")
            expect(earlier).to_be_visible(timeout=20_000)
            earlier.click()
            page.wait_for_url(first, timeout=30_000)
            expect_text(page, "first conversation about termination clauses", 30_000)
            assert "Subgoals (saved)" not in page.content()
            idle(page)
        except BaseException:
            shot(page, "failed-history")
            raise
        finally:
            context.close()
    with sqlite3.connect(workspace / "conversations" / "chat.sqlite") as db:
        threads = db.execute('SELECT count(*) FROM threads WHERE "userIdentifier" = ?', ("alice",)).fetchone()[0]
        plots = db.execute("SELECT count(*) FROM elements WHERE type = 'plotly'").fetchone()[0]
    assert threads == 2 and plots >= 2
    assert list((workspace / "conversations" / "files").rglob("*.mime"))


def test_without_a_login_the_welcome_says_the_conversation_is_shared(pages, tmp_path):
    """No login: no data layer (Chainlit lists conversations per user only), and the welcome says, once,
    that everyone who opens the page shares its one conversation."""
    from playwright.sync_api import expect

    with FakeOpenAI() as fake, serve(tmp_path / "ws", fake) as url:
        page = pages()
        page.goto(url)
        expect_text(page, "Start by uploading your dataset", 30_000)
        expect(page.get_by_text("shares this one conversation")).to_have_count(1)
        idle(page)
    assert not (tmp_path / "ws" / "conversations").exists()
