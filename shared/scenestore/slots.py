"""Where an uploaded key is recorded, and how it is swapped in without losing a concurrent writer's key.

A slot is one field of one document: ``scene.media`` (with ``type`` image/video), ``scene.audio`` or
``project.output`` (contract section 4). Swapping is compare-and-set on the field's current
``storageKey``: the update only applies if the slot still holds the key we read, else we read again. Two
concurrent completes therefore serialise: the final slot holds exactly one of the keys, and whichever swap
came second saw (and so can clean up) the key it replaced, so no object is left orphaned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from scenestore.db import PROJECTS, SCENES
from scenestore.errors import Conflict, NotFound
from scenestore.keys import OUTPUT_KIND

if TYPE_CHECKING:
    from pymongo.database import Database

#: Compare-and-set attempts before giving up; each retry means another writer changed the slot meanwhile.
MAX_ATTEMPTS: Final = 16


@dataclass(frozen=True, slots=True)
class Slot:
    collection: str
    doc_id: Any
    field: str

    @property
    def name(self) -> str:
        """``scene.media``, ``scene.audio`` or ``project.output``: what the API reports."""
        return f"{'scene' if self.collection == SCENES else 'project'}.{self.field}"


@dataclass(frozen=True, slots=True)
class SwapResult:
    previous_key: str | None
    """The key the slot held before (``None`` when it was empty or already held the new key)."""
    changed: bool
    """Whether the document was written at all (``False`` for an idempotent repeat)."""


def slot_for_kind(kind: str, doc_id: Any) -> Slot:
    """``doc_id`` is the stored ``_id`` of the scene (scene kinds) or of the project (output)."""
    if kind == OUTPUT_KIND:
        return Slot(PROJECTS, doc_id, "output")
    if kind == "audio":
        return Slot(SCENES, doc_id, "audio")
    return Slot(SCENES, doc_id, "media")


def slot_value(kind: str, key: str, content_type: str, size: int) -> dict[str, Any]:
    value: dict[str, Any] = {"storageKey": key}
    if kind in ("image", "video"):
        value["type"] = kind
    value["contentType"] = content_type
    value["size"] = size
    return value


def current_key(doc: dict[str, Any] | None, field: str) -> str | None:
    current = (doc or {}).get(field)
    key = current.get("storageKey") if isinstance(current, dict) else None
    return key if isinstance(key, str) else None


def swap(db: Database[dict[str, Any]], slot: Slot, value: dict[str, Any]) -> SwapResult:
    """Record ``value`` (``{"storageKey", ...}``) in ``slot`` with compare-and-set; see the module doc.

    Sub-fields are set one by one when the slot already is an object, so fields the app keeps next to
    ``storageKey`` survive; an empty or null slot gets the whole object.
    """
    collection = db[slot.collection]
    new_key = value["storageKey"]
    for _attempt in range(MAX_ATTEMPTS):
        doc = collection.find_one({"_id": slot.doc_id}, {slot.field: 1})
        if doc is None:
            raise NotFound(f"{slot.name.split('.')[0]} not found")
        current = doc.get(slot.field)
        previous = current_key(doc, slot.field)
        if isinstance(current, dict):
            if previous == new_key and all(current.get(k) == v for k, v in value.items()):
                return SwapResult(previous_key=None, changed=False)
            condition: dict[str, Any] = {"_id": slot.doc_id, f"{slot.field}.storageKey": previous}
            update: dict[str, Any] = {"$set": {f"{slot.field}.{k}": v for k, v in value.items()}}
        else:
            condition = {"_id": slot.doc_id, slot.field: current}
            update = {"$set": {slot.field: value}}
        if collection.update_one(condition, update).matched_count == 1:
            return SwapResult(previous_key=None if previous == new_key else previous, changed=True)
    raise Conflict(f"{slot.name} kept changing under concurrent writers")
