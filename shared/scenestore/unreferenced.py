"""Delete the objects that no document references any more, in ``DeleteObjects`` chunks of 1000.

Migration (old keys after their documents moved on, copies the app overtook), rollback (new keys once the
documents point back) and cleanup (legacy keys of deleted documents) all end the same way: ask MongoDB who
still references each key (``find_references``: ``$in`` batches, one field at a time), keep every key that
someone still needs, and delete the rest. Doing that in one place means one answer to "is this object
still needed?" everywhere: a key referenced by any document is never deleted, except by the documents the
caller names as going away with it (``disregard``: a project's scenes deleted with their project).

``select`` turns the free keys into the objects to delete, for callers that must look first: cleanup HEADs
them (only objects that exist are counted, with their sizes), migration checks that a stray copy still holds
the bytes it copied. Without it, every free key is deleted (a missing key is not an error for S3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from scenestore.common import chunked
from scenestore.db import find_references
from scenestore.prefix_delete import MAX_BATCH, ProgressCallback, delete_keys
from scenestore.storage import ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pymongo.database import Database

T = TypeVar("T")


class Send(Protocol):
    """Sends one request (``request()``) the caller's way: in a slot of a concurrency limit, with retries..."""

    def __call__(self, request: Callable[[], T], /) -> T: ...


#: ``(collection, _id, field)`` of one document field that holds a key (as ``find_references`` gives it).
Reference = tuple[str, Any, str]


@dataclass(slots=True)
class UnreferencedDeletion:
    """What happened to the keys asked about; ``errors`` has one entry per key that could not be deleted
    (as many as the keys given at most: callers cap what they report)."""

    kept: int = 0  # still referenced by a document that stays
    deleted: list[str] = field(default_factory=list)
    deleted_bytes: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)


def delete_unreferenced(
    db: Database[dict[str, Any]],
    client: S3Client,
    bucket: str,
    keys: Iterable[str],
    *,
    disregard: Callable[[Reference], bool] | None = None,
    select: Callable[[list[str]], Sequence[ObjectInfo]] | None = None,
    on_progress: ProgressCallback | None = None,
    dry_run: bool = False,
    send: Send | None = None,
) -> UnreferencedDeletion:
    """Delete those of ``keys`` that no document references (ignoring references ``disregard`` accepts).

    ``dry_run`` checks and selects the same way and reports the selected objects as ``deleted``, deleting none.
    ``send`` runs each ``DeleteObjects`` (the migration's: in a slot of its adaptive in-flight limit).
    """
    unique = list(dict.fromkeys(keys))
    outcome = UnreferencedDeletion()
    if not unique:
        return outcome
    references = find_references(db, unique)
    free = [key for key in unique if not _still_needed(references.get(key, ()), disregard)]
    outcome.kept = len(unique) - len(free)
    objects = select(free) if select is not None else [ObjectInfo(key, 0, "") for key in free]
    for chunk in chunked(objects, MAX_BATCH):
        if dry_run:
            outcome.deleted.extend(obj.key for obj in chunk)
            outcome.deleted_bytes += sum(obj.size for obj in chunk)
            if on_progress is not None:
                on_progress(len(chunk), sum(obj.size for obj in chunk))
            continue
        request = partial(delete_keys, client, bucket, chunk)
        batch = send(request) if send is not None else request()
        failed = {error["key"] for error in batch.errors}
        outcome.deleted.extend(obj.key for obj in chunk if obj.key not in failed)
        outcome.deleted_bytes += batch.deleted_bytes
        outcome.errors.extend(batch.errors)
        if on_progress is not None:
            on_progress(batch.deleted, batch.deleted_bytes)
    return outcome


def _still_needed(references: Iterable[Reference], disregard: Callable[[Reference], bool] | None) -> bool:
    return any(disregard is None or not disregard(reference) for reference in references)
