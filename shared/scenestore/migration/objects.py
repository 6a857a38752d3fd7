"""The S3 side of a move: copy (server-side, with the new ETag), metadata look-ups, byte comparison.

Nothing here reads an object's body: a copy is ``CopyObject`` (or s3transfer's ``UploadPartCopy`` parts
above 5 GiB), so no byte of a user's file passes through this machine or its disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from scenestore.storage import LIST_PAGE, MAX_SINGLE_COPY, ObjectInfo, ObjectStore
from scenestore.unreferenced import Send


def etag_is_md5(etag: str | None) -> bool:
    """Single-part ETags are the MD5 of the bytes; multipart ones (``...-N``) depend on the part layout."""
    return bool(etag) and "-" not in str(etag)


def same_bytes(a: ObjectInfo, b: ObjectInfo) -> bool | None:
    """``True``/``False`` when size and ETags decide it; ``None`` when sizes agree but ETags are not comparable."""
    if a.size != b.size:
        return False
    if etag_is_md5(a.etag) and etag_is_md5(b.etag):
        return a.etag.strip('"') == b.etag.strip('"')
    return None


def copy_object(store: ObjectStore, source: str, target: str, size: int) -> str | None:
    """Server-side copy; returns the new object's ETag from a single ``CopyObject`` (``None`` for a managed copy)."""
    if size <= MAX_SINGLE_COPY:
        response = store.client.copy_object(
            Bucket=store.bucket,
            Key=target,
            CopySource={"Bucket": store.bucket, "Key": source},  # type: ignore[typeddict-item]
        )
        return str(response.get("CopyObjectResult", {}).get("ETag", "")).strip('"') or None
    store.copy(source, target, size=size)
    return None


def head_many(store: ObjectStore, keys: Iterable[str], pool: Executor) -> dict[str, ObjectInfo | None]:
    unique = list(dict.fromkeys(keys))
    return dict(zip(unique, pool.map(store.head, unique), strict=True))


#: A listing page that settles fewer of the wanted keys than this (twice) is not worth its parse: the rest
#: is left to HEADs, which run concurrently.
MIN_SETTLED_PER_PAGE: Final = 4
MIN_PAGE: Final = 50


@dataclass
class KeyListing:
    """What a listing learnt about some keys: the ones that exist, and every key it settled (existing or not)."""

    found: dict[str, ObjectInfo] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)
    requests: int = 0


def list_keys(store: ObjectStore, keys: Iterable[str], run: Send | None = None) -> KeyListing:
    """Learn which of ``keys`` exist with ``ListObjectsV2`` pages instead of a HEAD each.

    The keys, sorted, are read from just before the first one; a page settles every key up to its last entry
    (found, or not there; all of them when it is the last page), and the next request starts just before the
    first key still unsettled. Keys that lie close together in key order (one import's sources, one batch's
    targets: consecutive scenes of a project) cost one request for many; the page size follows the density
    seen so far. Keys too scattered for that (two pages in a row that settle almost nothing) are left
    unsettled, for the caller to HEAD concurrently. ``run`` sends each request (the migration's pacer).
    """
    pending = sorted(set(keys))
    listing = KeyListing()
    index, thin_pages = 0, 0
    size = min(LIST_PAGE, max(MIN_PAGE, 2 * len(pending)))
    while index < len(pending) and thin_pages < 2:
        request = partial(_page, store, pending[index], size)
        page, truncated = run(request) if run is not None else request()
        listing.requests += 1
        listed = {info.key: info for info in page}
        last = page[-1].key if page else None
        settled = 0
        while index < len(pending) and (not truncated or (last is not None and pending[index] <= last)):
            key = pending[index]
            listing.settled.add(key)
            if key in listed:
                listing.found[key] = listed[key]
            index, settled = index + 1, settled + 1
        thin_pages = thin_pages + 1 if settled < MIN_SETTLED_PER_PAGE else 0
        density = settled / max(1, len(page))
        size = min(LIST_PAGE, max(MIN_PAGE, int((len(pending) - index) / max(density, 0.001) * 1.2)))
    return listing


def _page(store: ObjectStore, first: str, size: int) -> tuple[list[ObjectInfo], bool]:
    """One ``ListObjectsV2`` page of keys from ``first`` on (``StartAfter`` a prefix of it, which sorts before)."""
    kwargs: dict[str, Any] = {"Bucket": store.bucket, "MaxKeys": size}
    if first[:-1]:
        kwargs["StartAfter"] = first[:-1]
    response = store.client.list_objects_v2(**kwargs)
    page = [
        ObjectInfo(key=item["Key"], size=int(item.get("Size", 0)), etag=str(item.get("ETag", "")).strip('"'))
        for item in response.get("Contents", [])
    ]
    return page, bool(response.get("IsTruncated"))


class ExistingObjects:
    """What exists at some keys, from one listing taken just before copying; other keys are asked with a HEAD."""

    def __init__(self, head: Callable[[str], ObjectInfo | None], listing: KeyListing) -> None:
        self.head = head
        self.listing = listing
        self._heads: dict[str, ObjectInfo | None] = {}

    def get(self, key: str) -> ObjectInfo | None:
        if key in self.listing.settled:
            return self.listing.found.get(key)
        if key not in self._heads:
            self._heads[key] = self.head(key)
        return self._heads[key]
