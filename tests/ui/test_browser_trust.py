"""Browser tests of what makes the chat app trustworthy at a glance (issue 26): a scoring run survives a
reload (the new page shows its live progress and its stop works), a stopped run shows estimates over the
scored samples and calls nothing weak before its interval allows, "weak" always states its rule, and the
why answer's sample ids open their samples in place. The fake endpoint answers in plain text (no tool
calls), so every step is a button; a small slice of the contracts set keeps the test quick.
"""

from __future__ import annotations

import re
import shutil

from goalcover.testing import FakeOpenAI
from tests.conftest import SFT, head_lines
from tests.support.judges import CONTRACT_PATTERNS, topical_judge
from tests.ui.conftest import ROOT, Gate, judge_calls, serve, shot, subgoal_rules, synthesizer
from tests.ui.test_browser import start_scoring_with_buttons, stop_held_run, CONCURRENCY, LONG, UPDATE_SCREENSHOT, click, expect_text, idle, pages  # noqa: F401 (fixture)

N = 80  # samples: the first records of contracts_alpaca.jsonl
STOP_AFTER = 20
DOCS = ROOT / "docs" / "journey"


def keep(page, name: str) -> None:
    """A screenshot of the journey (test-artifacts/ui/), copied into docs/journey/ when missing or when
    GOALCOVER_UPDATE_SCREENSHOT=1 renews them (small PNGs, a viewport each)."""
    picture, target = shot(page, f"trust-{name}"), DOCS / f"{name}.png"
    if UPDATE_SCREENSHOT or not target.exists():
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, target)
    assert target.stat().st_size <= 300_000


def test_reload_during_scoring_reattaches_stop_gives_estimates_and_weak_says_why(pages, tmp_path):
    from playwright.sync_api import expect

    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", N)
    gate = Gate(topical_judge(CONTRACT_PATTERNS), STOP_AFTER)
    with FakeOpenAI(rules=[subgoal_rules, gate, synthesizer]) as fake, serve(tmp_path / "ws", fake) as url:
        page = pages()
        page.goto(url)
        expect_text(page, "Start by uploading your dataset", 30_000)
        start_scoring_with_buttons(page, data, N)
        expect_text(page, re.compile(rf"Scoring\W+{STOP_AFTER}/{N}"), LONG)

        # Reloaded mid-run: the new page shows the run's live progress, and its stop button stops it.
        page.reload()
        expect_text(page, "Scoring is running", 30_000)
        expect_text(page, re.compile(rf"Scoring\W+{STOP_AFTER}/{N}"), 30_000)
        keep(page, "1-reload-during-scoring")
        stop_held_run(page, gate, "Stop scoring")
        expect_text(page, "Scoring stopped.", 30_000)
        stopped = expect_text(page, re.compile(rf"of {N} samples are scored and saved")).inner_text()
        idle(page)
        assert STOP_AFTER <= judge_calls(fake) <= STOP_AFTER + CONCURRENCY
        scored = int(re.search(rf"([\d,]+) of {N} samples are scored", stopped).group(1))
        assert STOP_AFTER <= scored <= STOP_AFTER + CONCURRENCY

        # A stopped run: shares are estimates over the scored samples, and nothing is weak before its
        # interval says so (each offered "why" belongs to a subgoal with P(weak) of 95% or more).
        expect_text(page, f"{scored} of {N} samples scored")
        summary = expect_text(page, "a subgoal is weak when under 10% of samples support it").inner_text()
        keep(page, "2-stopped-estimates")
        offered = [b.inner_text() for b in page.get_by_role("button", name=re.compile(r"^Why is S\d weak\?$")).all()]
        for label in offered:
            sid = re.search(r"S\d", label).group(0)
            assert re.search(rf"{sid}: [^·]*P\(weak\) (9[5-9]|100)%", summary), (sid, summary)
        weak_line = re.search(r"Weak: ([^·]*)·", page.content()).group(1)
        assert weak_line.count("S") < 5  # the old share-over-all-samples made every subgoal weak here

        # Resumed to the end: exact figures, and each weak subgoal says which rule made it so.
        click(page, "Resume scoring")
        click(page, "Run it")
        expect_text(page, "Scoring finished:", LONG)
        idle(page)
        assert judge_calls(fake) == N  # nothing paid twice
        expect_text(page, re.compile(r"Weak — .*S4: .*under 10%|No subgoal is weak: a subgoal is weak when"))

        # Why: the rule first, and a sample id in the answer opens that sample beside the chat.
        why = page.get_by_role("button", name=re.compile(r"^(Why is S\d weak\?|Look at the lowest subgoal, S\d)$")).last
        why.click()
        expect_text(page, "Its share against the other subgoals", LONG)
        expect_text(page, re.compile(r"Weak because .*% of samples|Not weak: a subgoal is weak when"))
        link = page.locator("a", has_text=re.compile(r"^contracts-legalsum\d+$")).first
        sample_id = link.text_content().strip()  # inner_text follows the CSS capitals
        link.click()
        expect_text(page, re.compile(rf"{sample_id} \(line \d+\)"))
        idle(page)
        keep(page, "3-why-sample-opened")
        expect(page.get_by_role("button", name=re.compile(r"^Open contracts-legalsum")).first).to_have_count(0)
        assert fake.stats()["rule_errors"] == 0
