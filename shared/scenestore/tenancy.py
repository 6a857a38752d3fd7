"""Does this project, scene or key belong to this user? The answer for another user's thing is ``NotFound``.

Another tenant's resources are indistinguishable from missing ones: the same error, the same message, and
(because both paths run the same queries) about the same time. Ids reach MongoDB only after
``keys.validate_id``; every look-up is one indexed field (``_id``, ``scenes.project_id``,
``*.storageKey``), never ``$or``, as contract section 2 requires.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any, Final

from scenestore.db import PROJECTS, SCENES, chunks, id_candidates, id_filter, project_owner
from scenestore.errors import InvalidRequest, NotFound
from scenestore.keys import is_legacy_key, owner_of, validate_id

if TYPE_CHECKING:
    from pymongo.database import Database

#: S3 and R2 refuse keys longer than 1024 bytes of UTF-8.
MAX_KEY_BYTES: Final = 1024

#: Where each collection keeps keys, for the legacy-key check (all indexed, contract section 2).
_SCENE_KEY_FIELDS: Final = ("media.storageKey", "audio.storageKey")
_PROJECT_KEY_FIELDS: Final = ("output.storageKey",)

_PROJECT_NOT_FOUND: Final = "project not found"
_SCENE_NOT_FOUND: Final = "scene not found"
_KEY_NOT_FOUND: Final = "file not found"


def validate_object_key(key: object) -> str:
    """A key a client may ask for: 1-1024 UTF-8 bytes, no control or invisible formatting characters,
    no ``.`` or ``..`` segment.

    S3 itself would store such keys, but a URL holding them is rewritten by browsers and proxies (dot
    segments) or displays as something else (bidi overrides), so no key we hand out ever contains them.
    Empty segments (``media//a.jpg``) and a leading ``/`` are harmless: the app's old uploads have such keys,
    and they are ordinary legacy keys, readable by whoever's documents reference them (contract section 4).
    """
    if not isinstance(key, str) or not key:
        raise InvalidRequest("key must be a non-empty string")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidRequest(f"key must be at most {MAX_KEY_BYTES} bytes")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in key):
        raise InvalidRequest("key contains control or invisible characters")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise InvalidRequest("key has a '.' or '..' path segment")
    return key


def _same_id(stored: Any, given: str) -> bool:
    """The stored ``_id`` is exactly the id the client used (an ObjectId's canonical lower-case hex).

    Without this, ``ABC...`` would find the project stored as ObjectId ``abc...``, and objects uploaded under
    ``projects/ABC.../`` would escape the ``projects/abc.../`` prefix that deletion cleans.
    """
    return str(stored) == given


def find_project(db: Database[dict[str, Any]], user_id: str, project_id: str) -> dict[str, Any] | None:
    """The caller's project, or ``None`` when it is missing or someone else's."""
    validate_id(project_id, "project_id")
    for doc in db[PROJECTS].find(id_filter(project_id), {"user_id": 1, "output": 1}):
        if _same_id(doc["_id"], project_id) and project_owner(doc) == user_id:
            return doc
    return None


def require_project(db: Database[dict[str, Any]], user_id: str, project_id: str) -> dict[str, Any]:
    project = find_project(db, user_id, project_id)
    if project is None:
        raise NotFound(_PROJECT_NOT_FOUND)
    return project


def require_scene(db: Database[dict[str, Any]], user_id: str, project_id: str, scene_id: str) -> dict[str, Any]:
    """The scene, which must belong to the caller's project ``project_id`` (its ``project_id`` field)."""
    require_project(db, user_id, project_id)
    scene = find_scene_in(db, project_id, scene_id)
    if scene is None:
        raise NotFound(_SCENE_NOT_FOUND)
    return scene


def find_scene_in(db: Database[dict[str, Any]], project_id: str, scene_id: str) -> dict[str, Any] | None:
    """The scene ``scene_id`` of project ``project_id`` (whoever owns the project), or ``None``."""
    validate_id(scene_id, "scene_id")
    for doc in db[SCENES].find(id_filter(scene_id), {"project_id": 1, "media": 1, "audio": 1}):
        if _same_id(doc["_id"], scene_id) and str(doc.get("project_id")) == project_id:
            return doc
    return None


def require_key_access(db: Database[dict[str, Any]], user_id: str, key: object) -> str:
    """Allow ``key`` if it lies under one of the caller's existing projects, or is a legacy key that one
    of the caller's scenes or projects references (contract section 4); else ``NotFound``. Returns the key.
    """
    key = validate_object_key(key)
    if not is_legacy_key(key):
        owner = owner_of(key)
        if owner is None or owner[0] != user_id or find_project(db, user_id, owner[1]) is None:
            raise NotFound(_KEY_NOT_FOUND)
        return key
    if not legacy_key_referenced_by(db, user_id, key):
        raise NotFound(_KEY_NOT_FOUND)
    return key


def legacy_key_referenced_by(db: Database[dict[str, Any]], user_id: str, key: str) -> bool:
    """Whether one of ``user_id``'s projects, or a scene of one of them, points at ``key``.

    One indexed field per query: the referencing documents first, then their projects by ``_id``.
    """
    project_ids: set[str] = set()
    for field in _PROJECT_KEY_FIELDS:
        for doc in db[PROJECTS].find({field: key}, {"user_id": 1}):
            if project_owner(doc) == user_id:
                return True
    for field in _SCENE_KEY_FIELDS:
        for doc in db[SCENES].find({field: key}, {"project_id": 1}):
            value = doc.get("project_id")
            if isinstance(value, str):
                project_ids.add(value)
    return bool(project_ids) and any_project_owned_by(db, user_id, project_ids)


def any_project_owned_by(db: Database[dict[str, Any]], user_id: str, project_ids: set[str]) -> bool:
    """Batched ``$in`` on ``_id``: a stock image may be shared by thousands of scenes."""
    for batch in chunks(sorted(project_ids)):
        candidates: list[Any] = [candidate for project_id in batch for candidate in id_candidates(project_id)]
        for doc in db[PROJECTS].find({"_id": {"$in": candidates}}, {"user_id": 1}):
            if str(doc["_id"]) in project_ids and project_owner(doc) == user_id:
                return True
    return False
