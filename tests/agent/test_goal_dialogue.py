"""Decomposition as a dialogue: propose (with self-critique), edit in plain words, approve and save."""

from __future__ import annotations

from goalcover.agent.session import ToolStep
from goalcover.testing import Reply, on, sequence
from goalcover.tools.core.goal import current_goal
from tests.agent.conftest import agent_turn, drain, reply_text, tool_payloads

GOAL = "A plain-English summarizer of terms-of-service clauses for consumers."
PROPOSAL = [
    ("Account termination", "Summarizes when the service may end an account."),
    ("Liability limits", "Explains limits of the company's liability."),
    ("Warranty disclaimers", "Explains what the service does not promise."),
    ("Personal data", "Summarizes what personal data is collected and shared."),
    ("Good writing", "Writes well."),
]


def subgoals(pairs):
    return {"subgoals": [{"title": t, "description": d, "evidence": f"a clause on {t.lower()}"} for t, d in pairs]}


async def test_propose_edit_in_plain_words_and_approve(fake_openai, session_factory, open_ws):
    fake_openai.rules += [
        on(lambda r: r.schema_name == "subgoals", Reply.json(subgoals(PROPOSAL[:4] + [("Good and clear writing", "Writes well and clearly.")]))),
        on(lambda r: r.schema_name == "subgoal_critique", Reply.json({"issues": ["S5 bundles two skills"], **subgoals(PROPOSAL)})),
        sequence(
            [
                Reply.tool_calls([{"name": "propose_subgoals", "arguments": {"goal": GOAL}}]),
                Reply.text("Here are 5 subgoals. Want changes?"),
                # "merge 2 and 3, S4 is too vague, drop the last, add one about citing the clause"
                Reply.tool_calls(
                    [
                        {
                            "name": "edit_subgoals",
                            "arguments": {
                                "edits": [
                                    {"op": "merge", "ids": ["S2", "S3"], "title": "Liability and warranties"},
                                    {"op": "edit", "id": "S4", "description": "Says which personal data is collected, shared and kept."},
                                    {"op": "drop", "id": "S5"},
                                    {"op": "add", "title": "Cites the clause", "description": "Points to the clause it summarizes."},
                                ]
                            },
                        }
                    ]
                ),
                Reply.text("Done: 4 subgoals now."),
                Reply.tool_calls([{"name": "edit_subgoals", "arguments": {"edits": [{"op": "rename", "id": "S1", "title": "Termination and suspension"}]}}]),
                Reply.text("Renamed."),
                Reply.tool_calls([{"name": "approve_goal", "arguments": {}}]),
                Reply.text("Saved."),
            ],
            when=agent_turn,
        ),
    ]
    ws = open_ws()
    session = await session_factory(ws)

    events = await drain(session.send(f"My goal: {GOAL}"))
    proposed = next(e for e in events if isinstance(e, ToolStep) and e.status == "done")
    assert proposed.display[4] == "S5. Good writing — Writes well."  # the critique's list, not the first draft
    assert reply_text(events) == "Here are 5 subgoals. Want changes?"
    critique = next(r for r in fake_openai.requests if r.schema_name == "subgoal_critique")
    assert "Good and clear writing" in critique.last_user  # the critique saw the first proposal
    shown = tool_payloads(fake_openai.requests[-1])[-1]
    assert shown["critique"] == ["S5 bundles two skills"] and len(shown["draft"]) == 5

    await drain(session.send("merge 2 and 3, S4 is too vague, drop the last, and add one about citing the clause"))
    edited = tool_payloads(fake_openai.requests[-1])[-1]
    assert [(s["id"], s["title"]) for s in edited["draft"]] == [
        ("S1", "Account termination"),
        ("S2", "Liability and warranties"),
        ("S3", "Personal data"),
        ("S4", "Cites the clause"),
    ]
    assert edited["draft"][2]["description"] == "Says which personal data is collected, shared and kept."
    assert "renumbered: S4→S3" in edited["changes"]
    # The next model call sees the draft as last shown in its system prompt too.
    assert "S4. Cites the clause" in fake_openai.requests[-1].system
    assert current_goal(ws, required=False) is None  # nothing is saved before approval

    await drain(session.send("call the first one termination and suspension"))
    events = await drain(session.send("looks good, approve it"))
    assert reply_text(events) == "Saved."
    goal = current_goal(ws)
    assert goal.text == GOAL
    assert [(s.id, s.title) for s in goal.subgoals] == [
        ("S1", "Termination and suspension"),
        ("S2", "Liability and warranties"),
        ("S3", "Personal data"),
        ("S4", "Cites the clause"),
    ]
    state = (await session.graph.aget_state(session.run_config)).values
    assert state["approved"] is True and state["draft"] is None and len(state["goal"]) == 4


async def test_editing_without_a_draft_edits_the_saved_goal_and_needs_approval_again(fake_openai, session_factory, open_ws):
    from goalcover.tools.core.goal import load_goal_file, save_goal
    from tests.agent.conftest import GOAL_FILE

    ws = open_ws()
    save_goal(ws, load_goal_file(GOAL_FILE))
    fake_openai.rules.append(
        sequence(
            [Reply.tool_calls([{"name": "edit_subgoals", "arguments": {"edits": [{"op": "drop", "id": "S5"}]}}]), Reply.text("Dropped.")],
            when=agent_turn,
        )
    )
    session = await session_factory(ws)
    await drain(session.send("drop disputes"))
    state = (await session.graph.aget_state(session.run_config)).values
    assert [s["id"] for s in state["draft"]] == ["S1", "S2", "S3", "S4"] and state["approved"] is False
    assert len(current_goal(ws).subgoals) == 5  # the saved goal waits for approval
