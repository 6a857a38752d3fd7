"""Storage usage: objects and bytes per user and project, legacy keys counted apart.

The bucket is listed once, page by page (memory grows with the number of users and projects, not objects).
Layout keys are attributed to ``users/{u}/projects/{p}/`` by their key alone; keys under ``users/{u}/`` that
are not under a project are the user's ``other``; keys outside ``users/`` are legacy and counted apart,
because a legacy key carries no owner. With a user given, only that user's prefix is listed, and its legacy
figure is the legacy objects that user's documents still reference (found one indexed field at a time,
then HEADed), since only the documents know whose a legacy key is. Keys under ``users/`` are also counted
as ``layout`` and by kind (``image``, ``video``, ``audio``, ``output``; ``other`` for a key that is not a
canonical layout key), which is what the HTML report draws.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from scenestore.clients import S3_CONCURRENCY
from scenestore.db import IN_BATCH, PROJECTS, REFERENCE_FIELDS, SCENES, chunks, document_keys
from scenestore.errors import InvalidKey
from scenestore.keys import ALL_KINDS, ROOT, is_legacy_key, owner_of, parse_key, user_prefix, validate_id
from scenestore.services import Services

ProgressCallback = Callable[[int, int], None]
#: The kind of a key under ``users/`` that is not a canonical layout key (a user's avatar, a stray upload).
OTHER_KIND = "other"


@dataclass(slots=True)
class Tally:
    objects: int = 0
    bytes: int = 0

    def add(self, size: int, count: int = 1) -> None:
        self.objects += count
        self.bytes += size

    def to_dict(self) -> dict[str, int]:
        return {"objects": self.objects, "bytes": self.bytes}


def storage_usage(
    services: Services, *, user_id: str | None = None, on_progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """The usage report (module doc); ``on_progress(objects, bytes)`` after each listed page."""
    if user_id is not None:
        validate_id(user_id, "user_id")
    projects: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    other: dict[str, Tally] = defaultdict(Tally)
    legacy = Tally()
    layout = Tally()
    kinds: dict[str, Tally] = {kind: Tally() for kind in (*ALL_KINDS, OTHER_KIND)}
    total = Tally()
    prefix = user_prefix(user_id) if user_id is not None else ""
    for page in services.store.iter_pages(prefix):
        for obj in page:
            total.add(obj.size)
            if is_legacy_key(obj.key):
                legacy.add(obj.size)
                continue
            layout.add(obj.size)
            kinds[_kind(obj.key)].add(obj.size)
            owner = owner_of(obj.key)
            if owner is not None:
                projects[owner[0]][owner[1]].add(obj.size)
            else:
                other[_user_part(obj.key)].add(obj.size)
        if on_progress:
            on_progress(len(page), sum(o.size for o in page))

    users = []
    for uid in sorted(set(projects) | set(other)):
        per_project = [{"project_id": pid, **t.to_dict()} for pid, t in sorted(projects[uid].items())]
        user_total = Tally()
        for tally in [*projects[uid].values(), other[uid]]:
            user_total.add(tally.bytes, tally.objects)
        users.append({"user_id": uid, **user_total.to_dict(), "projects": per_project, "other": other[uid].to_dict()})

    report: dict[str, Any] = {"bucket": services.settings.bucket, "user_id": user_id, "users": users}
    if user_id is None:
        report["legacy"] = {**legacy.to_dict(), "scope": "bucket"}
    else:
        report["legacy"] = {**referenced_legacy(services, user_id), "scope": "referenced by the user's documents"}
    report["layout"] = layout.to_dict()
    report["kinds"] = {kind: tally.to_dict() for kind, tally in kinds.items()}
    report["total"] = total.to_dict()
    return report


def referenced_legacy(services: Services, user_id: str) -> dict[str, int]:
    """Legacy objects that ``user_id``'s projects and scenes reference: existing ones, their bytes, missing ones."""
    db = services.db
    # Projects without user_id belong to "default"; {"user_id": None} matches both missing and null.
    owner_filter: dict[str, Any] = (
        {"user_id": {"$in": [user_id, None, ""]}} if user_id == "default" else {"user_id": user_id}
    )
    project_ids: list[str] = []
    keys: set[str] = set()
    for doc in db[PROJECTS].find(owner_filter, {field: 1 for field in REFERENCE_FIELDS[PROJECTS]}):
        project_ids.append(str(doc["_id"]))
        keys.update(document_keys(doc, PROJECTS))
    for batch in chunks(project_ids, IN_BATCH):
        for doc in db[SCENES].find({"project_id": {"$in": batch}}, {field: 1 for field in REFERENCE_FIELDS[SCENES]}):
            keys.update(document_keys(doc, SCENES))
    legacy = sorted(key for key in keys if key and is_legacy_key(key))
    found = Tally()
    missing = 0
    store = services.store
    with ThreadPoolExecutor(max_workers=S3_CONCURRENCY) as pool:
        for info in pool.map(store.head, legacy):
            if info is None:
                missing += 1
            else:
                found.add(info.size)
    return {**found.to_dict(), "missing": missing}


def _kind(key: str) -> str:
    """The kind of a key under ``users/``: the layout's own, or ``other`` when it is not a canonical layout key."""
    try:
        return parse_key(key).kind
    except InvalidKey:
        return OTHER_KIND


def _user_part(key: str) -> str:
    """``users/{u}/...`` -> ``u`` (as listed, even if it is not a valid id: usage reports what is there)."""
    return key[len(ROOT) :].split("/", 1)[0]
