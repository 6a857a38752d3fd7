"""Sizes and ETags of the legacy objects, listed 1,000 per request instead of one HEAD per object.

A move must know its source's size (to choose single or multipart copy, and to verify the copy). Asking
each object costs a request as expensive as the copy itself, so a run first lists the legacy part of the
bucket (every key outside ``users/``: the ranges before ``users/`` and after ``users/\\U0010ffff``) into
memory (``scenestore migrate``: one process, up to a million objects, about 150 MB) or into
``scenestore_migration_inventory`` (bigger buckets, or shared by Lambda invocations). It is a hint, never
trusted alone: a key it lacks is HEADed, a copy of
a key it lists but that is gone fails as ``source_missing``, and a copy that does not match it is checked
against a fresh HEAD before anything is decided. Dry runs keep it in memory (they write nothing).
Without any inventory (the state machine's shards) each batch's sources are listed in key order instead
(:class:`ListedSources`), falling back to a HEAD per source when they are too scattered for that to pay.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from scenestore.budget import Deadline
from scenestore.db import chunks
from scenestore.keys import ROOT, is_legacy_key
from scenestore.migration.journal import run_range
from scenestore.migration.objects import list_keys
from scenestore.migration.runs import now, runs
from scenestore.storage import ObjectInfo, ObjectStore
from scenestore.unreferenced import Send

if TYPE_CHECKING:
    from pymongo.database import Database

INVENTORY: Final = "scenestore_migration_inventory"
#: Above this many legacy objects the in-memory inventory gives way to the stored one.
MEMORY_LIMIT: Final = 1_000_000
#: The last key that can start with ``users/`` once S3's 1024-byte limit is ignored: the second range starts after it.
AFTER_LAYOUT: Final = ROOT + "\U0010ffff"
READY: Final = "ready"


class SourceIndex(Protocol):
    def lookup(self, keys: Sequence[str]) -> dict[str, ObjectInfo]: ...


class NoIndex:
    """No inventory: every source is HEADed."""

    def lookup(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        return {}


@dataclass(frozen=True, slots=True)
class ListingPosition:
    part: int = 0  # 0: keys before "users/", 1: keys after the users/ range
    after: str | None = None


def iter_legacy_pages(
    store: ObjectStore, start: ListingPosition | None = None
) -> Iterator[tuple[list[ObjectInfo], ListingPosition]]:
    """Pages of legacy objects in key order, each with the position to resume after it."""
    position = start or ListingPosition()
    if position.part == 0:
        for page in store.iter_pages("", start_after=position.after):
            legacy = [info for info in page if info.key < ROOT]  # the rest of the page comes in part 1
            last = page[-1].key
            if legacy:
                yield legacy, ListingPosition(0, last)
            if last >= ROOT:
                break
        position = ListingPosition(1, None)
    for page in store.iter_pages("", start_after=position.after or AFTER_LAYOUT):
        legacy = [info for info in page if is_legacy_key(info.key)]
        if legacy:
            yield legacy, ListingPosition(1, page[-1].key)


class ListedSources:
    """No inventory (the state machine's shards): each batch's sources are listed, not HEADed one by one
    (:func:`~scenestore.migration.objects.list_keys`: keys written close together cost one request for many;
    scattered ones fall back to concurrent HEADs). Like any inventory it is a hint; see the module doc."""

    def __init__(self, store: ObjectStore, run: Send | None = None) -> None:
        self.store = store
        self.run = run
        self.requests = 0

    def lookup(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        listing = list_keys(self.store, keys, self.run)
        self.requests += listing.requests
        return listing.found


class MemoryIndex:
    def __init__(self, objects: dict[str, tuple[int, str]]) -> None:
        self.objects = objects

    @classmethod
    def build(cls, store: ObjectStore, limit: int | None = None) -> MemoryIndex | None:
        """List the legacy objects into memory; ``None`` when there are more than ``limit``."""
        objects: dict[str, tuple[int, str]] = {}
        for page, _ in iter_legacy_pages(store):
            objects.update((info.key, (info.size, info.etag)) for info in page)
            if limit is not None and len(objects) > limit:
                return None
        return cls(objects)

    def lookup(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        found = {}
        for key in keys:
            entry = self.objects.get(key)
            if entry is not None:
                found[key] = ObjectInfo(key=key, size=entry[0], etag=entry[1])
        return found


class StoredIndex:
    """The inventory of one run in MongoDB (``_id`` = ``<run>|<key>``, so runs never share entries)."""

    def __init__(self, db: Database[dict[str, Any]], run_id: str) -> None:
        self.db = db
        self.run_id = run_id

    def lookup(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        found: dict[str, ObjectInfo] = {}
        prefix = f"{self.run_id}|"
        for batch in chunks([prefix + key for key in dict.fromkeys(keys)], 500):
            for doc in self.db[INVENTORY].find({"_id": {"$in": batch}}):
                key = doc["_id"][len(prefix) :]
                found[key] = ObjectInfo(key=key, size=int(doc["size"]), etag=str(doc.get("etag") or ""))
        return found

    def is_ready(self) -> bool:
        doc = runs(self.db).find_one({"_id": self.run_id}, {"inventory": 1}) or {}
        return (doc.get("inventory") or {}).get("state") == READY

    def build(self, store: ObjectStore, deadline: Deadline | None = None) -> bool:
        """List the legacy objects into the inventory, resuming where a previous call stopped; True when complete."""
        from pymongo.errors import BulkWriteError

        deadline = deadline or Deadline.never()
        state = (runs(self.db).find_one({"_id": self.run_id}, {"inventory": 1}) or {}).get("inventory") or {}
        if state.get("state") == READY:
            return True
        start = ListingPosition(int(state.get("part", 0)), state.get("after"))
        count = int(state.get("count", 0))
        for page, position in iter_legacy_pages(store, start):
            docs = [
                {"_id": f"{self.run_id}|{o.key}", "run_id": self.run_id, "size": o.size, "etag": o.etag} for o in page
            ]
            try:
                self.db[INVENTORY].insert_many(docs, ordered=False)
            except BulkWriteError as exc:  # entries from an interrupted earlier call: already there, fine
                if any(err.get("code") != 11000 for err in exc.details.get("writeErrors", [])):
                    raise
            count += len(page)
            runs(self.db).update_one(
                {"_id": self.run_id},
                {
                    "$set": {
                        "inventory": {
                            "state": "building",
                            "part": position.part,
                            "after": position.after,
                            "count": count,
                        }
                    }
                },
            )
            if deadline.expired():
                return False
        runs(self.db).update_one(
            {"_id": self.run_id}, {"$set": {"inventory": {"state": READY, "count": count, "listed_at": now()}}}
        )
        return True

    def drop(self) -> None:
        self.db[INVENTORY].delete_many(run_range(self.run_id))
