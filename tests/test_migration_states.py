"""The move state machines (``scenestore.migration.states``): legal paths pass, anything else is refused.

The engine changes every state through ``transition``, so these are the rules a batch runs by: a move is
applied only once verified, a copy is verified only once copied, a journal entry rolled back stays so.
"""

from __future__ import annotations

import pytest
from scenestore.migration.states import (
    CopyState,
    IllegalTransition,
    JournalState,
    MoveState,
    journal_state,
    transition,
)


@pytest.mark.parametrize(
    "path",
    [
        [MoveState.PLANNED, MoveState.VERIFIED, MoveState.APPLIED],
        [MoveState.PLANNED, MoveState.VERIFIED, MoveState.CONFLICT],
        [MoveState.PLANNED, MoveState.SKIPPED],
        [MoveState.PLANNED, MoveState.DEFERRED],
        [CopyState.PLANNED, CopyState.COPIED, CopyState.VERIFIED],
        [CopyState.PLANNED, CopyState.COPIED, CopyState.FAILED],
        [JournalState.INTENT, JournalState.APPLIED, JournalState.ROLLED_BACK],
        [JournalState.INTENT, JournalState.FAILED, JournalState.INTENT, JournalState.CONFLICT],
    ],
)
def test_the_paths_a_batch_takes_are_allowed(path: list[MoveState | CopyState | JournalState]) -> None:
    state = path[0]
    for step in path[1:]:
        state = transition(state, step)
    assert state is path[-1]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (MoveState.PLANNED, MoveState.APPLIED),  # a document is never pointed at an unverified copy
        (MoveState.APPLIED, MoveState.PLANNED),
        (MoveState.SKIPPED, MoveState.VERIFIED),
        (MoveState.DEFERRED, MoveState.APPLIED),
        (CopyState.PLANNED, CopyState.VERIFIED),  # verified without having been copied
        (CopyState.VERIFIED, CopyState.COPIED),
        (JournalState.APPLIED, JournalState.INTENT),  # an applied move is never redone by the same run
        (JournalState.APPLIED, JournalState.CONFLICT),
        (JournalState.ROLLED_BACK, JournalState.APPLIED),
    ],
)
def test_an_illegal_transition_raises(current: MoveState | CopyState | JournalState, target: object) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition(current, target)  # type: ignore[type-var]
    assert caught.value.code == "illegal_transition"
    assert current.value in caught.value.message and str(target) in caught.value.message


def test_states_of_different_machines_do_not_mix_although_their_values_match() -> None:
    """``MoveState.VERIFIED == CopyState.VERIFIED == "verified"`` as strings; the machines still differ."""
    with pytest.raises(IllegalTransition):
        transition(CopyState.COPIED, MoveState.VERIFIED)  # type: ignore[type-var]


def test_stored_journal_values_read_back_as_their_states() -> None:
    """Journals written before the enum hold plain strings: they read as the same states, and compare equal."""
    assert journal_state("intent") is JournalState.INTENT
    assert journal_state("rolled_back") is JournalState.ROLLED_BACK
    assert journal_state(None) is None
    assert JournalState.APPLIED == "applied"  # what a query like {"state": "applied"} matches
    with pytest.raises(IllegalTransition):
        journal_state("half-done")
