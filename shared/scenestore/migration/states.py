"""Every state a move passes through, and the only transitions allowed between them, declared once.

Three small machines (contract section 6):

- :class:`MoveState` — one document field within a batch: planned, then verified (its target holds the
  source's bytes), then applied (the document points at the target) or conflict (the app changed the field
  first); or skipped (``source_missing``), failed, or deferred (the deadline came before its copy).
- :class:`CopyState` — one server-side copy within a batch: planned, copied, then verified or failed.
- :class:`JournalState` — a move's entry in ``scenestore_migration_journal``: ``intent`` before anything is
  touched, then its outcome; rollback ends every entry at ``rolled_back``. Retrying a failed or overtaken
  move of the same run writes a fresh ``intent`` over it.

The enums are ``str`` enums with the values already stored in MongoDB, so existing journals stay readable and
a value read back compares equal to its member. :func:`transition` refuses anything :data:`TRANSITIONS` does
not list: a bug that would, say, apply a move that was never verified fails loudly instead of updating a
document to point at a copy nobody checked.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, TypeVar

from scenestore.errors import ScenestoreError


class MoveState(StrEnum):
    PLANNED = "planned"
    VERIFIED = "verified"
    DEFERRED = "deferred"
    APPLIED = "applied"
    CONFLICT = "conflict"
    FAILED = "failed"
    SKIPPED = "skipped"


class CopyState(StrEnum):
    PLANNED = "planned"
    COPIED = "copied"
    VERIFIED = "verified"
    DEFERRED = "deferred"
    FAILED = "failed"


class JournalState(StrEnum):
    INTENT = "intent"
    APPLIED = "applied"
    CONFLICT = "conflict"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


AnyState = MoveState | CopyState | JournalState
S = TypeVar("S", MoveState, CopyState, JournalState)

_M, _C, _J = MoveState, CopyState, JournalState

#: For each machine, state -> the states it may move to (an empty set: terminal). One table per machine:
#: ``str`` enums of different machines with the same value are equal, so they cannot share one dict.
TRANSITIONS: Final[dict[type[AnyState], dict[Any, frozenset[Any]]]] = {
    MoveState: {
        _M.PLANNED: frozenset({_M.VERIFIED, _M.DEFERRED, _M.FAILED, _M.SKIPPED}),
        _M.VERIFIED: frozenset({_M.APPLIED, _M.CONFLICT, _M.DEFERRED}),
        _M.DEFERRED: frozenset(),
        _M.APPLIED: frozenset(),
        _M.CONFLICT: frozenset(),
        _M.FAILED: frozenset(),
        _M.SKIPPED: frozenset(),
    },
    CopyState: {
        _C.PLANNED: frozenset({_C.COPIED, _C.DEFERRED, _C.FAILED}),
        _C.COPIED: frozenset({_C.VERIFIED, _C.FAILED}),
        _C.VERIFIED: frozenset(),
        _C.DEFERRED: frozenset(),
        _C.FAILED: frozenset(),
    },
    JournalState: {
        # an intent is rewritten when a retried move of the same run is re-targeted
        _J.INTENT: frozenset(JournalState),
        _J.APPLIED: frozenset({_J.ROLLED_BACK}),
        # an overtaken or failed move is tried again when its field holds a legacy key once more; one that
        # fails before its new intent is written records its failure over the old outcome
        _J.CONFLICT: frozenset({_J.INTENT, _J.FAILED, _J.ROLLED_BACK}),
        _J.FAILED: frozenset({_J.INTENT, _J.FAILED, _J.ROLLED_BACK}),
        _J.ROLLED_BACK: frozenset(),
    },
}


class IllegalTransition(ScenestoreError):
    """A move was asked to go from one state to another that :data:`TRANSITIONS` does not allow (a bug)."""

    code = "illegal_transition"


def transition(current: S, target: S) -> S:
    """``target`` when ``current -> target`` is allowed; raises :class:`IllegalTransition` otherwise."""
    if type(current) is not type(target) or target not in TRANSITIONS[type(current)][current]:
        raise IllegalTransition(f"{type(current).__name__}: {current.value} -> {target.value} is not allowed")
    return target


def journal_state(value: str | None) -> JournalState | None:
    """The state of a journal entry read from MongoDB (``None`` for no entry); an unknown value is refused."""
    if value is None:
        return None
    try:
        return JournalState(value)
    except ValueError:
        raise IllegalTransition(f"journal state {value!r} is not one this version knows") from None
