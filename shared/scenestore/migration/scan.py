"""Read a shard's documents in ``_id`` order, one phase (scenes, then projects) at a time.

One sorted cursor per type segment stays open for the whole invocation instead of one query per batch:
the local MongoDB-wire server runs ``_id`` ranges as a scan plus sort, so re-querying per batch would scan
the collection once per batch. A cursor that dies (idle timeout during a slow batch) is reopened after the
last document handed out. Only the fields a move needs are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from scenestore.db import PROJECTS, SCENES
from scenestore.migration.models import Position
from scenestore.migration.shards import Shard

if TYPE_CHECKING:
    from pymongo.database import Database

PROJECTIONS: Final[dict[str, dict[str, int]]] = {
    SCENES: {"project_id": 1, "media": 1, "audio": 1},
    PROJECTS: {"user_id": 1, "output": 1},
}
FETCH: Final = 1000


class ShardReader:
    def __init__(self, db: Database[dict[str, Any]], shard: Shard, position: Position) -> None:
        self.db = db
        self.shard = shard
        self.phase = position.phase
        self.after = position.after  # last document handed out
        self._peeked: list[dict[str, Any]] = []
        self._docs: Iterator[dict[str, Any]] | None = None

    def _open(self) -> Iterator[dict[str, Any]]:
        collection = self.db[self.phase]
        for condition in self.shard.filters(after=self.after):
            yield from collection.find(condition, PROJECTIONS[self.phase]).sort("_id", 1).batch_size(FETCH)

    def _next(self) -> dict[str, Any] | None:
        from pymongo.errors import CursorNotFound, OperationFailure

        if self._peeked:
            return self._peeked.pop()
        for attempt in range(3):
            if self._docs is None:
                self._docs = self._open()
            try:
                doc = next(self._docs, None)
            except (CursorNotFound, OperationFailure):
                self._docs = None
                if attempt == 2:
                    raise
                continue
            if doc is not None:
                self.after = doc["_id"]
            return doc
        return None

    def take(self, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` documents of the current phase (fewer only when the phase has no more)."""
        docs: list[dict[str, Any]] = []
        while len(docs) < count:
            doc = self._next()
            if doc is None:
                break
            docs.append(doc)
        return docs

    def has_more(self) -> bool:
        doc = self._next()
        if doc is None:
            return False
        self._peeked.append(doc)
        return True

    def next_phase(self) -> bool:
        """Switch from scenes to projects; False when already on projects (the shard is finished)."""
        if self.phase == PROJECTS:
            return False
        self.phase, self.after, self._docs, self._peeked = PROJECTS, None, None, []
        return True
