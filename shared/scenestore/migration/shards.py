"""Shards: contiguous ranges ``[gte, lt)`` over the whole ``_id`` space, processed independently.

A plan of K shards starts with ``gte=None`` and ends with ``lt=None``, and each shard's ``lt`` is the next
one's ``gte``, so every ``_id`` (including ones inserted later, at either end) falls in exactly one shard.
Boundaries are real ``_id`` values at evenly spaced positions of the sorted ``scenes`` collection, found per
type segment (see :mod:`scenestore.migration.ids`), so a mixed ObjectId/string space splits correctly: a
boundary may be a string, which puts every ObjectId (they sort after strings) in the later shards.
Projects are taken by the same ranges over their own ``_id``, so every project lands in exactly one shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from scenestore.db import SCENES
from scenestore.errors import InvalidRequest
from scenestore.migration.ids import CLASS_MIN, CLASSES, Bound, decode_id, encode_id, segment_filters, sort_key

if TYPE_CHECKING:
    from pymongo.database import Database

MAX_SHARDS: Final = 256
WHOLE: Final = "all"


@dataclass(frozen=True, slots=True)
class Shard:
    """``gte``/``lt`` are encoded ``_id`` values (``oid:...``, ``str:...``) or ``None`` for an open end."""

    gte: str | None = None
    lt: str | None = None

    def __post_init__(self) -> None:
        low = decode_id(self.gte) if self.gte is not None else None
        high = decode_id(self.lt) if self.lt is not None else None
        if low is not None and high is not None and sort_key(low) >= sort_key(high):
            raise InvalidRequest(f"shard bounds must satisfy gte < lt, got gte={self.gte!r} lt={self.lt!r}")

    @property
    def id(self) -> str:
        """Stable name of this range (the key of its progress in the run document)."""
        if self.gte is None and self.lt is None:
            return WHOLE
        digest = hashlib.sha1(f"{self.gte}|{self.lt}".encode()).hexdigest()
        return f"s{digest[:12]}"

    def to_dict(self) -> dict[str, str | None]:
        return {"gte": self.gte, "lt": self.lt}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Shard:
        if not data:
            return cls()
        return cls(gte=data.get("gte"), lt=data.get("lt"))

    def contains(self, value: Any) -> bool:
        key = sort_key(value)
        if self.gte is not None and key < sort_key(decode_id(self.gte)):
            return False
        return not (self.lt is not None and key >= sort_key(decode_id(self.lt)))

    def filters(self, after: Any = None) -> list[dict[str, Any]]:
        """The per-type ``_id`` filters of this shard, starting after ``after`` (exclusive) when given."""
        if after is not None:
            lower: Bound | None = Bound(after, inclusive=False)
        elif self.gte is not None:
            lower = Bound(decode_id(self.gte), inclusive=True)
        else:
            lower = None
        upper = decode_id(self.lt) if self.lt is not None else None
        return segment_filters(lower, upper)


def plan_shards(db: Database[dict[str, Any]], k: int) -> list[dict[str, str | None]]:
    """Split the ``_id`` space into at most ``k`` shards of about equal numbers of scenes.

    Returns ``[{"gte": ..., "lt": ...}, ...]`` in order; the deployed state machine maps migrate-batch over
    it. Fewer than ``k`` shards come back when there are fewer scenes than ``k``.
    """
    return [shard.to_dict() for shard in plan(db, k).shards]


@dataclass(frozen=True, slots=True)
class ShardPlan:
    shards: list[Shard]
    scenes: int
    unsupported_ids: int


def plan(db: Database[dict[str, Any]], k: int) -> ShardPlan:
    if not 1 <= k <= MAX_SHARDS:
        raise InvalidRequest(f"the number of shards must be between 1 and {MAX_SHARDS}")
    collection = db[SCENES]
    counts = [(cls, collection.count_documents({"_id": {"$gte": CLASS_MIN[cls]}})) for cls in CLASSES]
    total = sum(count for _, count in counts)
    unsupported = max(0, collection.count_documents({}) - total)
    boundaries: list[Any] = []
    parts = min(k, total)
    for index in range(1, parts):
        position = index * total // parts
        for cls, count in counts:
            if position < count:
                doc = next(
                    collection.find({"_id": {"$gte": CLASS_MIN[cls]}}, {"_id": 1})
                    .sort("_id", 1)
                    .skip(position)
                    .limit(1),
                    None,
                )
                if doc is not None:
                    boundaries.append(doc["_id"])
                break
            position -= count
    unique = sorted({encode_id(value): value for value in boundaries}.values(), key=sort_key)
    edges: list[str | None] = [None, *(encode_id(value) for value in unique), None]
    shards = [Shard(gte=edges[i], lt=edges[i + 1]) for i in range(len(edges) - 1)]
    return ShardPlan(shards=shards, scenes=total, unsupported_ids=unsupported)


def check_coverage(shards: list[Shard]) -> bool:
    """True when the shards tile the whole space: first open below, last open above, no gap, no overlap."""
    if not shards:
        return False
    ordered = sorted(shards, key=lambda s: (s.gte is not None, sort_key(decode_id(s.gte)) if s.gte else (0, 0)))
    if ordered[0].gte is not None or ordered[-1].lt is not None:
        return False
    return all(ordered[i].lt is not None and ordered[i].lt == ordered[i + 1].gte for i in range(len(ordered) - 1))
