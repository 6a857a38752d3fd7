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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol

from scenestore.budget import Deadline
from scenestore.db import chunks
from scenestore.keys import ROOT, is_legacy_key
from scenestore.migration.journal import run_range
from scenestore.migration.runs import now, runs
from scenestore.storage import LIST_PAGE, ObjectInfo, ObjectStore

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


#: A listing page that resolves fewer of the batch's keys than this (twice) is not worth its parse: the rest
#: of the batch's sources are HEADed, concurrently, instead.
MIN_RESOLVED_PER_PAGE: Final = 4
MIN_PAGE: Final = 50


class ListedSources:
    """No inventory (the state machine's shards): each batch's sources are listed, not HEADed one by one.

    The batch's legacy keys, sorted, are read with ``ListObjectsV2`` from just before the first one; a page
    settles every key up to its last entry (found, or not there), and the next request starts just before the
    first key still unsettled, so keys written close together (uploads of one project, one import) cost one
    request for many. The page size follows the density seen so far. When pages settle only a few keys each
    (sources scattered over a big bucket) the rest is left to HEADs, which run concurrently: never much
    worse than no listing at all. Like any inventory it is a hint; see the module doc.
    """

    def __init__(self, store: ObjectStore, run: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        self.store = store
        self.run = run or (lambda request: request())
        self.requests = 0

    def lookup(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        pending = sorted(set(keys))
        found: dict[str, ObjectInfo] = {}
        index, thin_pages = 0, 0
        size = min(LIST_PAGE, max(MIN_PAGE, 2 * len(pending)))
        while index < len(pending) and thin_pages < 2:
            page, truncated = self.run(partial(self._page, pending[index], size))
            self.requests += 1
            listed = {info.key: info for info in page}
            last = page[-1].key if page else None
            settled = 0
            while index < len(pending) and (not truncated or (last is not None and pending[index] <= last)):
                if pending[index] in listed:
                    found[pending[index]] = listed[pending[index]]
                index, settled = index + 1, settled + 1
            thin_pages = thin_pages + 1 if settled < MIN_RESOLVED_PER_PAGE else 0
            density = settled / max(1, len(page))
            size = min(LIST_PAGE, max(MIN_PAGE, int((len(pending) - index) / max(density, 0.001) * 1.2)))
        return found

    def _page(self, first: str, size: int) -> tuple[list[ObjectInfo], bool]:
        """One ``ListObjectsV2`` page of keys from ``first`` on (``StartAfter`` a prefix of it, which sorts before)."""
        kwargs: dict[str, Any] = {"Bucket": self.store.bucket, "MaxKeys": size}
        if first[:-1]:
            kwargs["StartAfter"] = first[:-1]
        response = self.store.client.list_objects_v2(**kwargs)
        page = [
            ObjectInfo(key=item["Key"], size=int(item.get("Size", 0)), etag=str(item.get("ETag", "")).strip('"'))
            for item in response.get("Contents", [])
        ]
        return page, bool(response.get("IsTruncated"))


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
