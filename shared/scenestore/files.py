"""Reading files: presigned downloads for allowed keys, and a project's file listing.

The listing is the project's objects under ``users/{u}/projects/{p}/`` in key order, followed by the legacy
objects its documents still reference (they are the project's files until migrated, contract section 1),
1000 a page. ``total_bytes`` is the whole project's, the same on every page: the objects are walked
once per request (one LIST per 1000 objects plus one HEAD per legacy key), while only the requested page is
kept in memory.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from scenestore.clients import S3_CONCURRENCY
from scenestore.db import SCENES
from scenestore.errors import InvalidRequest
from scenestore.keys import OUTPUT_KIND, is_legacy_key, project_prefix
from scenestore.tenancy import MAX_KEY_BYTES, require_key_access, require_project

if TYPE_CHECKING:
    from scenestore.services import Services
    from scenestore.storage import ObjectInfo

PAGE_SIZE: Final = 1000
_LAYOUT: Final = "layout"
_LEGACY: Final = "legacy"


def presign_download(services: Services, user_id: str, key: object) -> dict[str, Any]:
    """``{"key", "url", "expires_at"}`` for a key the caller may read (``tenancy.require_key_access``)."""
    key = require_key_access(services.db, user_id, key)
    presigned = services.store.presign_get(key, expires_in=services.settings.download_ttl).to_dict()
    return {"key": key, "url": presigned["url"], "expires_at": presigned["expires_at"]}


@dataclass(frozen=True, slots=True)
class FileEntry:
    key: str
    size: int
    last_modified: datetime | None
    kind: str | None
    scene_id: str | None
    legacy: bool

    def to_dict(self) -> dict[str, Any]:
        modified = self.last_modified.isoformat().replace("+00:00", "Z") if self.last_modified else None
        return {
            "key": self.key,
            "size": self.size,
            "last_modified": modified,
            "kind": self.kind,
            "scene_id": self.scene_id,
            "legacy": self.legacy,
        }


def list_project_files(
    services: Services, user_id: str, project_id: str, cursor: str | None, *, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """``{"files", "total_bytes", "cursor"}``; ``cursor`` is ``None`` on the last page."""
    project = require_project(services.db, user_id, project_id)
    phase, after = decode_cursor(cursor)
    page: list[FileEntry] = []
    has_more = False
    total = 0
    for entry_phase, entry in _all_entries(services, user_id, project_id, project):
        total += entry.size
        if (entry_phase, entry.key) <= (phase, after):
            continue
        if len(page) < page_size:
            page.append(entry)
        else:
            has_more = True
    next_cursor = None
    if has_more and page:
        last = page[-1]
        next_cursor = encode_cursor(_LEGACY if last.legacy else _LAYOUT, last.key)
    return {"files": [e.to_dict() for e in page], "total_bytes": total, "cursor": next_cursor}


def _all_entries(
    services: Services, user_id: str, project_id: str, project: dict[str, Any]
) -> Iterator[tuple[str, FileEntry]]:
    """Layout objects (phase ``layout``, S3 key order), then referenced legacy objects (``legacy``)."""
    for info in services.store.iter_objects(project_prefix(user_id, project_id)):
        kind, scene_id = _describe(info.key)
        yield _LAYOUT, FileEntry(info.key, info.size, info.last_modified, kind, scene_id, legacy=False)
    for entry in _legacy_entries(services, project_id, project):
        yield _LEGACY, entry


def _describe(key: str) -> tuple[str | None, str | None]:
    """``(kind, scene_id)`` of a key under a project prefix; ``(None, None)`` for anything unexpected."""
    parts = key.split("/")
    if len(parts) == 6 and parts[4] == OUTPUT_KIND:
        return OUTPUT_KIND, None
    if len(parts) == 8 and parts[4] == "scenes":
        return parts[6], parts[5]
    return None, None


def _legacy_entries(services: Services, project_id: str, project: dict[str, Any]) -> list[FileEntry]:
    """Legacy keys the project's documents reference, HEADed concurrently; missing objects are skipped."""
    wanted: dict[str, tuple[str, str | None]] = {}
    output = project.get("output")
    if isinstance(output, dict) and isinstance(output.get("storageKey"), str):
        wanted.setdefault(output["storageKey"], (OUTPUT_KIND, None))
    for scene in services.db[SCENES].find({"project_id": project_id}, {"media": 1, "audio": 1}):
        for field in ("media", "audio"):
            slot = scene.get(field)
            if isinstance(slot, dict) and isinstance(slot.get("storageKey"), str):
                kind = "audio" if field == "audio" else str(slot.get("type") or "image")
                wanted.setdefault(slot["storageKey"], (kind, str(scene["_id"])))
    legacy = sorted(key for key in wanted if is_legacy_key(key))
    if not legacy:
        return []
    with ThreadPoolExecutor(max_workers=min(S3_CONCURRENCY, len(legacy))) as pool:
        infos: list[ObjectInfo | None] = list(pool.map(services.store.head, legacy))
    return [
        FileEntry(info.key, info.size, info.last_modified, *wanted[info.key], legacy=True)
        for info in infos
        if info is not None
    ]


# -- cursors: opaque to clients, validated like any other input ----------------------------------------------
def encode_cursor(phase: str, key: str) -> str:
    raw = json.dumps({"p": phase, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[str, str]:
    """``(phase, last key)``; no cursor is the start (phase ``""`` sorts before both phases)."""
    if cursor is None or cursor == "":
        return "", ""
    try:
        if len(cursor) > 2 * MAX_KEY_BYTES:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        phase, key = data["p"], data["k"]
        if phase not in (_LAYOUT, _LEGACY) or not isinstance(key, str) or not key:
            raise ValueError("bad fields")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeError):
        raise InvalidRequest("cursor is not one this API returned") from None
    return phase, key
