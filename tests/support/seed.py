"""The one way tests seed data: objects in the bucket, project and scene documents, in one shape.

- keys: ``image``/``audio``/``output`` (layout keys), ``layout_keys`` (many scenes of one project), ``P1``;
- objects: ``put_objects`` (concurrent PUTs), ``keys_in`` (what the bucket holds), ``bucket_contents``;
- documents: ``project_doc``/``scene_doc`` build them, ``add_project``/``add_scene`` insert them;
- ``Seeder`` does the same while remembering what every reference resolved to, for the migration invariants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from scenestore.common import get_path
from scenestore.db import PROJECTS, SCENES
from scenestore.keys import is_legacy_key, output_key, project_prefix, scene_key
from scenestore.services import Services

#: The default object body: 10 bytes.
BODY = b"0123456789"
#: Reference fields per collection.
FIELDS = {SCENES: ("media.storageKey", "audio.storageKey"), PROJECTS: ("output.storageKey",)}
P1 = project_prefix("u", "p1")


# -- keys -----------------------------------------------------------------------------------------------
def image(user: str, project: str, scene: str, name: str = "a.png") -> str:
    return scene_key(user, project, scene, "image", name)


def audio(user: str, project: str, scene: str, name: str = "a.mp3") -> str:
    return scene_key(user, project, scene, "audio", name)


def output(user: str, project: str, name: str = "final.mp4") -> str:
    return output_key(user, project, name)


def layout_keys(count: int, project: str = "p1", user: str = "u") -> list[str]:
    """``count`` image keys of ``project``, ten per scene, in key order."""
    return [scene_key(user, project, f"s{i // 10:04d}", "image", f"{i:05d}.png") for i in range(count)]


# -- objects ------------------------------------------------------------------------------------------------
def varied(i: int) -> bytes:
    """A body of ``i % 17`` bytes, for tests that add sizes up."""
    return b"x" * (i % 17)


def put_objects(services: Services, keys: Iterable[str], body: bytes | Callable[[int], bytes] = BODY) -> int:
    """PUT every key (16 at a time: the local S3 server does a few hundred PUTs/s); ``body`` is the bytes or
    a function of the key's index. Returns the bytes written."""
    client, bucket = services.s3, services.settings.bucket
    items = [(key, body(i) if callable(body) else body) for i, key in enumerate(keys)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=bucket, Key=item[0], Body=item[1]), items))
    return sum(len(data) for _, data in items)


def keys_in(services: Services, prefix: str = "") -> set[str]:
    return {obj.key for obj in services.store.iter_objects(prefix)}


def bucket_contents(services: Services) -> dict[str, bytes]:
    return {key: services.store.get_bytes(key) for key in sorted(keys_in(services))}


# -- documents ----------------------------------------------------------------------------------------------
def _reference(value: str | dict[str, Any] | None, **shape: Any) -> dict[str, Any] | None:
    """A reference sub-document: a storage key gets ``shape`` (content type...), a dict is used as given."""
    if isinstance(value, str):
        return {"storageKey": value, **_without_none(**shape)}
    return value


def _without_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def project_doc(
    project_id: Any, user_id: str | None, output: str | dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """A project; ``output`` is the output's storage key (or a whole sub-document); ``user_id=None`` leaves
    the owner out."""
    output = _reference(output, contentType="video/mp4")
    return {"_id": project_id, **_without_none(user_id=user_id, output=output), **fields}


def scene_doc(
    scene_id: Any,
    project_id: Any,
    media: str | dict[str, Any] | None = None,
    audio: str | dict[str, Any] | None = None,
    media_type: str | None = "image",
    **fields: Any,
) -> dict[str, Any]:
    """A scene; ``media``/``audio`` are storage keys (or whole sub-documents, used as given)."""
    media = _reference(media, contentType="image/jpeg", type=media_type)
    audio = _reference(audio, contentType="audio/mpeg")
    return {"_id": scene_id, "project_id": project_id, **_without_none(media=media, audio=audio), **fields}


def add_project(services: Services, project_id: Any, user_id: str | None, **kwargs: Any) -> dict[str, Any]:
    doc = project_doc(project_id, user_id, **kwargs)
    services.db[PROJECTS].insert_one(doc)
    return doc


def add_scene(services: Services, scene_id: Any, project_id: Any, **kwargs: Any) -> dict[str, Any]:
    doc = scene_doc(scene_id, project_id, **kwargs)
    services.db[SCENES].insert_one(doc)
    return doc


def references(services: Services) -> Iterable[tuple[str, Any, str, str]]:
    """(collection, _id, field, key) for every reference the app's documents hold."""
    for collection, names in FIELDS.items():
        for doc in services.db[collection].find({}):
            for name in names:
                key = get_path(doc, name)
                if isinstance(key, str):
                    yield collection, doc["_id"], name, key


# -- seeding that remembers -----------------------------------------------------------------------------------
def body(label: str) -> bytes:
    """Bytes unique to ``label``."""
    return f"bytes of {label} ".encode() + hashlib.sha256(label.encode()).digest()


@dataclass
class Seeder:
    """Seeds like the functions above, and records what each reference resolved to when it was seeded."""

    services: Services
    #: (collection, _id repr, field) -> the bytes that reference resolved to when seeded
    expected: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    legacy: set[str] = field(default_factory=set)

    def put(self, key: str, data: bytes | None = None) -> bytes:
        data = body(key) if data is None else data
        self.services.store.put_bytes(key, data, content_type="application/octet-stream")
        if is_legacy_key(key):
            self.legacy.add(key)
        return data

    def project(self, pid: Any = None, user: str | None = "u1", output: str | None = None, **extra: Any) -> Any:
        pid = ObjectId() if pid is None else pid
        self._expect(PROJECTS, pid, add_project(self.services, pid, user, output=output, **extra))
        return pid

    def scene(
        self,
        project: Any,
        sid: Any = None,
        media: str | None = None,
        audio: str | None = None,
        media_type: str | None = "image",
        **extra: Any,
    ) -> Any:
        sid = ObjectId() if sid is None else sid
        doc = add_scene(self.services, sid, str(project), media=media, audio=audio, media_type=media_type, **extra)
        self._expect(SCENES, sid, doc)
        return sid

    def _expect(self, collection: str, doc_id: Any, doc: dict[str, Any]) -> None:
        store = self.services.store
        for name in FIELDS[collection]:
            key = get_path(doc, name)
            if isinstance(key, str) and store.exists(key):
                self.expected[(collection, repr(doc_id), name)] = store.get_bytes(key)
