"""``scenestore verify``: compare what the documents reference with what the bucket holds.

Both sides are read as sorted streams and merged, so memory stays flat whatever the sizes: the bucket
listing comes in key order, and each reference field is read in key order from its index (one field at a
time, merged in code). Reported:

- ``missing``: referenced keys with no object (the only finding that fails the check: ``ok`` is false);
- ``legacy_referenced``: references still holding a legacy key (what a migration has left to do);
- ``orphaned``: objects under ``users/{u}/projects/{p}/`` where project ``p`` of user ``u`` does not exist;
- ``unreferenced``: objects no document references (left-overs, or uploads never completed);
- ``orphan_scenes``: scene documents whose project no longer exists (the app may keep them a while after a
  project is deleted). They are reported apart and never fail the check: their references are counted as
  ``orphan_scene_references`` (``orphan_scene_missing`` of them without an object), not as ``missing`` or
  ``legacy_referenced``, and an object they point at is not ``unreferenced``.

``verify_storage`` returns plain JSON (counts plus the first keys of each kind) for a state machine's Choice.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from scenestore.common import chunked, get_path
from scenestore.db import IN_BATCH, PROJECTS, REFERENCE_FIELDS, SCENES, id_candidates, project_owner
from scenestore.keys import is_legacy_key, owner_of

if TYPE_CHECKING:
    from scenestore.services import Services
    from scenestore.storage import ObjectStore

SAMPLE: Final = 20


def _referenced(services: Services, orphan_projects: set[str]) -> Iterator[tuple[str, bool]]:
    """Every referenced key in sorted order (duplicates kept), one index-backed stream per field, each with
    whether it comes from a scene whose project is gone (``orphan_projects``, see :func:`_orphan_scenes`)."""
    streams = []
    for collection, fields in REFERENCE_FIELDS.items():
        scenes = collection == SCENES
        for field in fields:
            projection = {field: 1, "_id": 0, **({"project_id": 1} if scenes else {})}
            cursor = services.db[collection].find({field: {"$gte": ""}}, projection).sort(field, 1).batch_size(1000)
            streams.append(_values(cursor, field, orphan_projects if scenes else None))
    return heapq.merge(*streams)


def _values(cursor: Any, field: str, orphan_projects: set[str] | None) -> Iterator[tuple[str, bool]]:
    for doc in cursor:
        value = get_path(doc, field)
        if isinstance(value, str):
            yield value, orphan_projects is not None and _project_ref(doc.get("project_id")) in orphan_projects


def _project_ref(value: Any) -> str:
    """A scene's ``project_id`` as the text a project's ``_id`` is matched by (``""`` when it has none)."""
    return "" if value is None else str(value)


def _orphan_scenes(services: Services) -> tuple[set[str], int, list[str]]:
    """The ``project_id`` values of scenes whose project does not exist, how many scenes hold them, and the first
    of those scenes' ids.

    The scenes are read in ``project_id`` order from its index (projection only), so equal values are adjacent
    and memory holds one value at a time plus the orphans; the projects are looked up a batch at a time.
    """
    orphans: set[str] = set()
    scenes = 0

    def check(batch: dict[str, int]) -> None:
        nonlocal scenes
        ids = [candidate for value in batch if value for candidate in id_candidates(value)]
        found = {str(doc["_id"]) for doc in services.db[PROJECTS].find({"_id": {"$in": ids}}, {"_id": 1})}
        for value, count in batch.items():
            if value not in found:
                orphans.add(value)
                scenes += count

    batch: dict[str, int] = {}
    cursor = services.db[SCENES].find({}, {"project_id": 1, "_id": 0}).sort("project_id", 1).batch_size(1000)
    for doc in cursor:
        value = _project_ref(doc.get("project_id"))
        if value not in batch and len(batch) >= IN_BATCH:
            check(batch)
            batch = {}
        batch[value] = batch.get(value, 0) + 1
    if batch:
        check(batch)
    sample: list[str] = []
    if orphans:
        first = sorted(orphans)[:IN_BATCH]
        raw: list[Any] = [None, "", *(candidate for value in first if value for candidate in id_candidates(value))]
        for doc in services.db[SCENES].find({"project_id": {"$in": raw}}, {"_id": 1}).limit(SAMPLE):
            sample.append(str(doc["_id"]))
    return orphans, scenes, sample


def _objects(store: ObjectStore) -> Iterator[tuple[str, int]]:
    for page in store.iter_pages(""):
        for info in page:
            yield info.key, info.size


class _Finding:
    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.sample: list[str] = []

    def add(self, key: str, size: int = 0) -> None:
        self.count += 1
        self.bytes += size
        if len(self.sample) < SAMPLE:
            self.sample.append(key)


def verify_storage(services: Services | None = None) -> dict[str, Any]:
    """Audit the bucket against the documents; ``{"ok": bool, "missing": n, ...}`` (see the module doc)."""
    if services is None:
        from scenestore.services import get_services

        services = get_services()
    missing, legacy, unreferenced, orphaned = _Finding(), _Finding(), _Finding(), _Finding()
    # References held by scenes whose project is gone: all of them, and those without an object.
    orphan_refs, orphan_missing = _Finding(), _Finding()
    references = objects = total_bytes = 0
    owners: dict[tuple[str, str], _Finding] = {}
    orphan_projects, orphan_scenes, orphan_scene_ids = _orphan_scenes(services)

    def referenced(ref: str, orphan: bool, exists: bool) -> None:
        nonlocal references
        if orphan:
            orphan_refs.add(ref)
            if not exists:
                orphan_missing.add(ref)
            return
        references += 1
        if not exists:
            missing.add(ref)
        if is_legacy_key(ref):
            legacy.add(ref)

    refs = _referenced(services, orphan_projects)
    ref = next(refs, None)
    for key, size in _objects(services.store):
        objects += 1
        total_bytes += size
        while ref is not None and ref[0] < key:
            referenced(*ref, exists=False)
            ref = next(refs, None)
        found = False
        while ref is not None and ref[0] == key:
            found = True
            referenced(*ref, exists=True)
            ref = next(refs, None)
        if not found:
            unreferenced.add(key, size)
        owner = owner_of(key)
        if owner is not None:
            owners.setdefault(owner, _Finding()).add(key, size)
    while ref is not None:
        referenced(*ref, exists=False)
        ref = next(refs, None)
    for finding in _missing_projects(services, owners).values():
        orphaned.count += finding.count
        orphaned.bytes += finding.bytes
        orphaned.sample.extend(finding.sample[: SAMPLE - len(orphaned.sample)])
    return {
        "ok": missing.count == 0,
        "clean": missing.count == 0 and legacy.count == 0,
        "objects": objects,
        "bytes": total_bytes,
        "references": references,
        "missing": missing.count,
        "missing_keys": missing.sample,
        "legacy_referenced": legacy.count,
        "legacy_keys": legacy.sample,
        "orphaned": orphaned.count,
        "orphaned_bytes": orphaned.bytes,
        "orphaned_keys": orphaned.sample,
        "unreferenced": unreferenced.count,
        "unreferenced_bytes": unreferenced.bytes,
        "unreferenced_keys": unreferenced.sample,
        "orphan_scenes": orphan_scenes,
        "orphan_scene_ids": orphan_scene_ids,
        "orphan_scene_references": orphan_refs.count,
        "orphan_scene_missing": orphan_missing.count,
        "orphan_scene_keys": orphan_refs.sample,
    }


def _missing_projects(services: Services, owners: dict[tuple[str, str], _Finding]) -> dict[tuple[str, str], _Finding]:
    """The (user, project) prefixes whose project does not exist or belongs to another user."""
    found: dict[str, str] = {}
    for batch in chunked(sorted({project for _, project in owners}), IN_BATCH):
        ids = [candidate for value in batch for candidate in id_candidates(value)]
        for doc in services.db[PROJECTS].find({"_id": {"$in": ids}}, {"user_id": 1}):
            found[str(doc["_id"])] = project_owner(doc)
    return {pair: keys for pair, keys in owners.items() if found.get(pair[1]) != pair[0]}


def count_legacy_references(services: Services) -> int:
    """How many references hold a legacy key (index-backed ranges: below ``users/`` and above its range)."""
    total = 0
    for collection, fields in REFERENCE_FIELDS.items():
        for field in fields:
            col = services.db[collection]
            total += col.count_documents({field: {"$gte": "", "$lt": "users/"}})
            total += col.count_documents({field: {"$gte": "users0"}})
    return total
