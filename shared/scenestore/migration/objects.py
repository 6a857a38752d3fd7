"""The S3 side of a move: copy (server-side, with the new ETag), metadata look-ups, byte comparison.

Nothing here reads an object's body: a copy is ``CopyObject`` (or s3transfer's ``UploadPartCopy`` parts
above 5 GiB), so no byte of a user's file passes through this machine or its disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor

from scenestore.storage import MAX_SINGLE_COPY, ObjectInfo, ObjectStore


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


def list_prefix(store: ObjectStore, prefix: str, max_pages: int) -> dict[str, ObjectInfo] | None:
    """Every object under ``prefix``, or ``None`` when there are more than ``max_pages`` pages of them."""
    found: dict[str, ObjectInfo] = {}
    for count, page in enumerate(store.iter_pages(prefix), start=1):
        if count > max_pages:
            return None
        found.update((info.key, info) for info in page)
    return found


class ExistingObjects:
    """What exists under some prefixes, from one listing per prefix taken just before copying.

    A key under no listed prefix (its prefix was too large to list in a few pages) is asked with a HEAD.
    """

    def __init__(
        self, head: Callable[[str], ObjectInfo | None], listings: dict[str, dict[str, ObjectInfo] | None]
    ) -> None:
        self.head = head
        self.listings = listings
        self._heads: dict[str, ObjectInfo | None] = {}

    def get(self, key: str) -> ObjectInfo | None:
        for prefix, listing in self.listings.items():
            if key.startswith(prefix) and listing is not None:
                return listing.get(key)
        if key not in self._heads:
            self._heads[key] = self.head(key)
        return self._heads[key]
