"""Point document fields at new keys only where they still hold the old ones: one bulk write, then a read-back.

Migration (old key -> layout key) and rollback (layout key -> old key) both change references while the app
keeps writing. Each change is filtered on the field still holding the key we expect, so an app write made
meanwhile wins and is never overwritten. The changes of one document (a scene's media and audio) go as one
update; when some updates match nothing, the documents are read back once to tell which changes landed,
which the app overtook, and which only failed because their document's other field had changed: those are
retried one field at a time, so an app write to one field does not hold back the other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scenestore.common import get_path

if TYPE_CHECKING:
    from pymongo.collection import Collection


@dataclass(frozen=True, slots=True)
class FieldSwap:
    """Set ``field`` of document ``doc_id`` to ``replacement``, only while it holds ``expected``."""

    doc_id: Any
    field: str
    expected: str
    replacement: str


def swap_fields(collection: Collection[dict[str, Any]], swaps: Sequence[FieldSwap]) -> list[bool]:
    """Apply ``swaps`` conditionally; ``result[i]`` tells whether field ``i`` now holds its replacement.

    ``False`` means the field holds something else (the app changed it, or its document is gone): left as is.
    """
    landed = [False] * len(swaps)
    pending = list(range(len(swaps)))
    combine = True
    while pending:
        groups = _groups(swaps, pending, combine=combine)
        if _write(collection, swaps, groups) == len(groups):
            for index in pending:
                landed[index] = True
            break
        values = _read_back(collection, [swaps[i] for i in pending])
        retry: list[int] = []
        for index in pending:
            swap = swaps[index]
            value = values.get((repr(swap.doc_id), swap.field))
            if value == swap.replacement:
                landed[index] = True
            elif value == swap.expected and combine:
                retry.append(index)
        pending, combine = retry, False
    return landed


def _groups(swaps: Sequence[FieldSwap], pending: list[int], *, combine: bool) -> list[list[int]]:
    if not combine:
        return [[index] for index in pending]
    by_doc: dict[str, list[int]] = defaultdict(list)
    for index in pending:
        by_doc[repr(swaps[index].doc_id)].append(index)
    return list(by_doc.values())


def _write(collection: Collection[dict[str, Any]], swaps: Sequence[FieldSwap], groups: list[list[int]]) -> int:
    """One ``bulk_write`` of one conditional update per group; returns how many matched."""
    from pymongo import UpdateOne

    ops = []
    for group in groups:
        condition: dict[str, Any] = {"_id": swaps[group[0]].doc_id}
        changes: dict[str, Any] = {}
        for index in group:
            condition[swaps[index].field] = swaps[index].expected
            changes[swaps[index].field] = swaps[index].replacement
        ops.append(UpdateOne(condition, {"$set": changes}))
    return collection.bulk_write(ops, ordered=False).matched_count


def _read_back(collection: Collection[dict[str, Any]], swaps: list[FieldSwap]) -> dict[tuple[str, str], Any]:
    """The current value of every swapped field, by ``(repr(_id), field)``."""
    fields = dict.fromkeys((s.field for s in swaps), 1)
    ids = list({repr(s.doc_id): s.doc_id for s in swaps}.values())
    docs = {repr(d["_id"]): d for d in collection.find({"_id": {"$in": ids}}, fields)}
    return {(repr(s.doc_id), s.field): get_path(docs.get(repr(s.doc_id)), s.field) for s in swaps}
