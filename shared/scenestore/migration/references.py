"""Which document fields hold storage keys, and where a legacy key moves to (contract section 6).

A scene's ``media.storageKey`` moves to ``.../scenes/{scene}/{media.type or image}/{basename}``, its
``audio.storageKey`` to ``.../scenes/{scene}/audio/{basename}``, a project's ``output.storageKey`` to
``.../output/{basename}``; the user is the project's ``user_id`` (``default`` when absent). The basename is
sanitized by the layout's filename rules. Ids that are not valid layout ids are reported, never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from scenestore.common import get_path
from scenestore.db import PROJECTS, SCENES, id_candidates, project_owner
from scenestore.keys import OUTPUT_KIND, SCENE_KINDS, build_key, is_legacy_key, split_extension

MEDIA: Final = "media.storageKey"
AUDIO: Final = "audio.storageKey"
OUTPUT: Final = "output.storageKey"
FIELDS: Final[dict[str, tuple[str, ...]]] = {SCENES: (MEDIA, AUDIO), PROJECTS: (OUTPUT,)}
DEFAULT_MEDIA_KIND: Final = "image"


@dataclass(frozen=True, slots=True)
class Slot:
    """One key-holding field of one document, with what its layout key is built from."""

    collection: str
    doc_id: Any
    field: str
    value: str | None
    user_id: str | None
    project_id: str
    scene_id: str | None
    kind: str

    @property
    def is_legacy(self) -> bool:
        return isinstance(self.value, str) and bool(self.value) and is_legacy_key(self.value)

    def target(self, old_key: str, attempt: int = 1) -> str:
        """The layout key for ``old_key``; ``attempt`` > 1 gives the distinct names ``name-2.jpg``, ``name-3.jpg``.

        Raises ``InvalidId`` / ``InvalidFilename`` / ``InvalidKey`` when the ids or the name cannot be laid out.
        """
        filename = old_key.rsplit("/", 1)[-1]
        if attempt > 1:
            from scenestore.keys import MAX_FILENAME_LENGTH, sanitize_filename

            stem, ext = split_extension(sanitize_filename(filename))
            suffix = f"-{attempt}"
            stem = stem[: max(1, MAX_FILENAME_LENGTH - len(ext) - len(suffix))]
            filename = f"{stem}{suffix}{ext}"
        assert self.user_id is not None
        scene = None if self.kind == OUTPUT_KIND else self.scene_id
        return build_key(self.user_id, self.project_id, self.kind, filename, scene)


def _value(doc: dict[str, Any], dotted: str) -> str | None:
    value = get_path(doc, dotted)
    return value if isinstance(value, str) else None


def media_kind(scene: dict[str, Any]) -> str:
    """``media.type`` when it names a scene kind, ``image`` when absent; anything else is returned as is
    (and then rejected by the layout, so the reference is reported instead of guessed)."""
    media = scene.get("media")
    kind = media.get("type") if isinstance(media, dict) else None
    if kind is None or kind == "":
        return DEFAULT_MEDIA_KIND
    return kind if kind in SCENE_KINDS else str(kind)


def scene_slots(scene: dict[str, Any], project: dict[str, Any] | None) -> list[Slot]:
    user = project_owner(project) if project is not None else None
    project_id = str(scene.get("project_id", ""))
    scene_id = str(scene["_id"])
    return [
        Slot(SCENES, scene["_id"], MEDIA, _value(scene, MEDIA), user, project_id, scene_id, media_kind(scene)),
        Slot(SCENES, scene["_id"], AUDIO, _value(scene, AUDIO), user, project_id, scene_id, "audio"),
    ]


def project_slots(project: dict[str, Any]) -> list[Slot]:
    return [
        Slot(
            PROJECTS,
            project["_id"],
            OUTPUT,
            _value(project, OUTPUT),
            project_owner(project),
            str(project["_id"]),
            None,
            OUTPUT_KIND,
        )
    ]


def index_projects(projects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Projects by the string a scene's ``project_id`` holds; an ObjectId ``_id`` wins over an equal string one."""
    found: dict[str, dict[str, Any]] = {}
    for project in sorted(projects, key=lambda p: isinstance(p["_id"], str)):
        found.setdefault(str(project["_id"]), project)
    return found


def project_lookup_ids(scenes: list[dict[str, Any]]) -> list[Any]:
    ids: list[Any] = []
    for scene in scenes:
        value = scene.get("project_id")
        if isinstance(value, str) and value:
            ids.extend(id_candidates(value))
    return list({repr(v): v for v in ids}.values())
