"""The chat app's "Check the judge" buttons, driven through ui/actions.py with a recording stand-in for
the chat's output (the browser tests cover rendering): each click stores a label and shows the next
judgment, stratified by subgoal; "Done checking" shows the agreement."""

from __future__ import annotations

import asyncio

from goalcover.tools.judge import scoring
from goalcover.ui.actions import Actions
from tests.tools.judge.test_scoring import contracts, ws  # noqa: F401 (fixtures)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []

    async def send(self, content, actions=None, elements=None):
        self.sent.append((content, actions or []))

    async def user(self, text, name):
        self.sent.append((f"[{name}] {text}", []))


class Chat:
    def __init__(self, ws) -> None:
        self.ws, self.out, self.user_name = ws, Recorder(), "You"
        self.actions = Actions(self)


def test_check_the_judge_with_buttons_stores_labels_and_shows_agreement(ws):
    asyncio.run(scoring.score(ws, "batched"))
    chat = Chat(ws)
    asyncio.run(chat.actions.check_judge())
    seen = []
    for click in range(5):
        text, acts = chat.out.sent[-1]
        assert "The judge scored it" in text and "```" in text
        buttons = {a.label: a for a in acts}
        assert set(buttons) >= {"1", "2", "3", "4", "5", "Done checking"}
        agree = next(a for a in acts if a.label.startswith("Agree"))
        seen.append(agree.payload["subgoal_id"])
        # agree twice, then disagree by giving the other end of the scale
        chosen = agree if click < 2 else buttons[str(6 - agree.payload["score"])]
        asyncio.run(chat.actions.judge_label(chosen.payload))
    assert sorted(seen) == ["S1", "S2", "S3", "S4", "S5"]  # one per subgoal before any subgoal twice
    labels = ws.store.labels()
    assert len(labels) == 5
    assert [l["user_score"] == l["judge_score"] for l in labels] == [True, True, False, False, False]
    asyncio.run(chat.actions.judge_check_done())
    text, acts = chat.out.sent[-1]
    assert "Agreement with your checks" in text and "overall: 40% · " in text and "on 5 labels" in text
    assert any(a.name == "check_judge" for a in acts)


def test_a_poorly_agreeing_subgoal_gets_a_button_that_teaches_the_judge_and_rescores_it_only(ws):
    from goalcover.tools.judge.calibration import save_label, to_review

    asyncio.run(scoring.score(ws, "batched"))
    for item in to_review(ws, n=6, subgoal="S2"):
        save_label(ws, item, 6 - item.score)
    chat = Chat(ws)
    asyncio.run(chat.actions.judge_check_done())
    text, acts = chat.out.sent[-1]
    (teach,) = [a for a in acts if a.name == "judge_apply"]
    assert teach.payload == {"subgoal_id": "S2"} and "S2's scores disagree" in text
    asyncio.run(chat.actions.judge_apply("S2"))
    text, acts = chat.out.sent[-1]
    assert f"Score {ws.store.count_contents()} sample × subgoal pairs" in text  # S2 only
    assert any(a.name == "score_run" for a in acts)
