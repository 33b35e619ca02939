"""Structured edits of the draft subgoals are applied exactly, all or nothing, and renumbered."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from goalcover.agent.draft import EditOp, apply_edits
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.shapes import Subgoal

OPS = TypeAdapter(list[EditOp])


def draft(*titles: str) -> list[Subgoal]:
    return [Subgoal(id=f"S{n}", title=t, description=f"{t} described.", evidence=f"{t} shown") for n, t in enumerate(titles, 1)]


def titles(subgoals) -> list[str]:
    return [s.title for s in subgoals]


def apply(before, ops):
    return apply_edits(before, OPS.validate_python(ops))


def test_ids_refer_to_the_list_as_shown_and_the_result_is_renumbered():
    before = draft("A", "B", "C", "D", "E")
    after, changes = apply(
        before,
        [{"op": "merge", "ids": ["2", "s3"], "title": "B+C"}, {"op": "drop", "id": "S5"}, {"op": "add", "title": "F", "description": "F d."}],
    )
    assert titles(after) == ["A", "B+C", "D", "F"]
    assert [s.id for s in after] == ["S1", "S2", "S3", "S4"]
    assert after[1].description == "B described. C described." and after[1].evidence == "B shown; C shown"
    assert changes[-1] == "renumbered: S4→S3"


def test_split_edit_rename_and_insert_after():
    after, _ = apply(
        draft("A", "B", "C"),
        [
            {"op": "split", "id": "S1", "into": [{"title": "A1", "description": "a1"}, {"title": "A2", "description": "a2"}]},
            {"op": "edit", "id": "S3", "description": "C, concretely: cites the clause number."},
            {"op": "rename", "id": "S2", "title": "Bee"},
            {"op": "add", "title": "X", "description": "x", "after": "S2"},
        ],
    )
    assert titles(after) == ["A1", "A2", "Bee", "X", "C"]
    assert after[4].description == "C, concretely: cites the clause number." and after[4].evidence == "C shown"


def test_merge_keeps_the_place_of_the_first_id_named():
    after, _ = apply(draft("A", "B", "C", "D"), [{"op": "merge", "ids": ["S4", "S1"]}])
    assert titles(after) == ["B", "C", "D and A"]


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "drop", "id": "S9"}], "no subgoal S9; the draft has S1, S2, S3"),
        ([{"op": "drop", "id": "S2"}, {"op": "rename", "id": "S2", "title": "x"}], "S2 is already dropped"),
        ([{"op": "merge", "ids": ["S1", "S2"]}, {"op": "drop", "id": "S2"}], "S2 is already merged into S1"),
        ([{"op": "edit", "id": "S1"}], "changes nothing"),
        ([{"op": "drop", "id": "S1"}, {"op": "drop", "id": "S2"}, {"op": "drop", "id": "S3"}], "leave no subgoal"),
    ],
)
def test_a_bad_operation_rejects_the_whole_edit(ops, message):
    before = draft("A", "B", "C")
    with pytest.raises(BadInput, match=message):
        apply(before, ops)
    assert titles(before) == ["A", "B", "C"]  # the input list is never changed in place


def test_operations_are_typed():
    with pytest.raises(ValidationError):
        OPS.validate_python([{"op": "explode", "id": "S1"}])
    with pytest.raises(ValidationError):
        OPS.validate_python([{"op": "merge", "ids": ["S1"]}])  # a merge needs two
    with pytest.raises(ValidationError):
        OPS.validate_python([{"op": "drop", "id": "the last one"}])
