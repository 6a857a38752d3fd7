"""The app's MongoDB documents as scenestore sees them: collection names, indexes, reference look-ups.

Reference checks run one indexed field at a time with ``$in`` over a batch and merge in code: the local
MongoDB-wire server plans ``$or`` as a collection scan (contract section 2), and Atlas is happy either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from scenestore.common import get_path

if TYPE_CHECKING:
    from pymongo.database import Database

PROJECTS: Final = "projects"
SCENES: Final = "scenes"
DEFAULT_USER: Final = "default"

#: Every document field that may hold a storage key, by collection.
REFERENCE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    SCENES: ("media.storageKey", "audio.storageKey"),
    PROJECTS: ("output.storageKey",),
}

#: The indexes of contract section 2: (collection, field).
INDEXES: Final[tuple[tuple[str, str], ...]] = (
    (SCENES, "project_id"),
    (SCENES, "media.storageKey"),
    (SCENES, "audio.storageKey"),
    (PROJECTS, "user_id"),
    (PROJECTS, "output.storageKey"),
)

IN_BATCH: Final = 200


def ensure_indexes(db: Database[dict[str, Any]]) -> list[str]:
    """Create the contract's indexes; idempotent (same spec, same name: MongoDB does nothing)."""
    names = []
    for collection, field in INDEXES:
        names.append(f"{collection}.{db[collection].create_index(field)}")
    return names


def id_candidates(value: str) -> list[Any]:
    """The ``_id`` values a string id may be stored as: itself, and an ObjectId when it parses as one."""
    from bson import ObjectId

    candidates: list[Any] = [value]
    if ObjectId.is_valid(value):
        candidates.append(ObjectId(value))
    return candidates


def id_filter(value: str) -> dict[str, Any]:
    candidates = id_candidates(value)
    return {"_id": candidates[0]} if len(candidates) == 1 else {"_id": {"$in": candidates}}


def project_owner(project: dict[str, Any]) -> str:
    """A project without ``user_id`` belongs to user ``default`` (as in the seed)."""
    owner = project.get("user_id")
    return owner if isinstance(owner, str) and owner else DEFAULT_USER


def chunks(items: Iterable[str], size: int = IN_BATCH) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def find_references(
    db: Database[dict[str, Any]], keys: Iterable[str], *, session: Any = None
) -> dict[str, list[tuple[str, Any, str]]]:
    """Which documents point at each key: ``{key: [(collection, _id, field), ...]}`` (absent = none)."""
    found: dict[str, list[tuple[str, Any, str]]] = defaultdict(list)
    unique = list(dict.fromkeys(keys))
    for batch in chunks(unique):
        for collection, fields in REFERENCE_FIELDS.items():
            for field in fields:
                cursor = db[collection].find({field: {"$in": batch}}, {field: 1}, session=session)
                for doc in cursor:
                    value = get_path(doc, field)
                    if isinstance(value, str):
                        found[value].append((collection, doc["_id"], field))
    return dict(found)


def referenced_keys(db: Database[dict[str, Any]], keys: Iterable[str], *, session: Any = None) -> set[str]:
    return set(find_references(db, keys, session=session))


def document_keys(doc: dict[str, Any], collection: str) -> list[str]:
    """The storage keys a ``projects``/``scenes`` document references (its ``REFERENCE_FIELDS`` that hold a string)."""
    values = (get_path(doc, field) for field in REFERENCE_FIELDS[collection])
    return [value for value in values if isinstance(value, str) and value]


def enable_pre_images(db: Database[dict[str, Any]]) -> None:
    """Turn on change-stream pre-images for ``projects`` and ``scenes`` (creating them if absent).

    Deletion events need the deleted document (its ``user_id``); Atlas Triggers and the local event runner
    both read it from ``fullDocumentBeforeChange``.
    """
    existing = set(db.list_collection_names())
    for name in (PROJECTS, SCENES):
        if name not in existing:
            db.create_collection(name, changeStreamPreAndPostImages={"enabled": True})
        else:
            db.command("collMod", name, changeStreamPreAndPostImages={"enabled": True})
