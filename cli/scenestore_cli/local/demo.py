"""Demo data for ``scenestore serve --demo``: one user, legacy and layout keys, real small media bytes."""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib
from typing import Any

from scenestore.keys import output_key, scene_key
from scenestore.services import Services

DEMO_USER = "demo-user"
DEMO_PROJECT = "demo-project"
LEGACY_PROJECT = "legacy-project"


def png_bytes(width: int = 32, height: int = 32, seed: int = 0) -> bytes:
    """A small valid RGB PNG (a gradient), made without an imaging library."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows += bytes(((x * 8 + seed) % 256, (y * 8) % 256, (seed * 40) % 256))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")
    )


def wav_bytes(seconds: float = 0.5, freq: float = 440.0, rate: int = 8000) -> bytes:
    """A short mono sine tone as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(int(seconds * rate))
        )
        out.writeframes(frames)
    return buf.getvalue()


def seed_demo(services: Services) -> dict[str, Any]:
    """Idempotent: re-running replaces the demo documents and objects with the same content."""
    store, db = services.store, services.db
    objects = {
        "media/sunset.png": (png_bytes(seed=1), "image/png"),
        "narration-1.wav": (wav_bytes(freq=330), "audio/wav"),
        "abc123.png": (png_bytes(seed=2), "image/png"),
        scene_key(DEMO_USER, DEMO_PROJECT, "scene-1", "image", "forest.png"): (
            png_bytes(seed=3),
            "image/png",
        ),
        scene_key(DEMO_USER, DEMO_PROJECT, "scene-1", "audio", "intro.wav"): (
            wav_bytes(freq=523),
            "audio/wav",
        ),
    }
    for key, (body, content_type) in objects.items():
        store.put_bytes(key, body, content_type=content_type)

    def media(key: str, kind: str | None = None) -> dict[str, Any]:
        body, content_type = objects[key]
        slot: dict[str, Any] = {"storageKey": key, "contentType": content_type, "size": len(body)}
        if kind:
            slot["type"] = kind
        return slot

    projects: list[dict[str, Any]] = [
        {"_id": DEMO_PROJECT, "user_id": DEMO_USER, "title": "Demo project (new layout)"},
        {"_id": LEGACY_PROJECT, "user_id": DEMO_USER, "title": "Legacy project (flat keys)"},
    ]
    scenes: list[dict[str, Any]] = [
        {
            "_id": "scene-1",
            "project_id": DEMO_PROJECT,
            "order": 1,
            "media": media(scene_key(DEMO_USER, DEMO_PROJECT, "scene-1", "image", "forest.png"), "image"),
            "audio": media(scene_key(DEMO_USER, DEMO_PROJECT, "scene-1", "audio", "intro.wav")),
        },
        {"_id": "scene-2", "project_id": DEMO_PROJECT, "order": 2},
        {
            "_id": "legacy-scene-1",
            "project_id": LEGACY_PROJECT,
            "order": 1,
            "media": media("media/sunset.png", "image"),
            "audio": media("narration-1.wav"),
        },
        {
            "_id": "legacy-scene-2",
            "project_id": LEGACY_PROJECT,
            "order": 2,
            "media": media("abc123.png", "image"),
        },
    ]
    for doc in projects:
        db.projects.replace_one({"_id": doc["_id"]}, doc, upsert=True)
    for doc in scenes:
        db.scenes.replace_one({"_id": doc["_id"]}, doc, upsert=True)
    return {
        "user_id": DEMO_USER,
        "projects": [p["_id"] for p in projects],
        "objects": len(objects),
        "example_output_key": output_key(DEMO_USER, DEMO_PROJECT, "final.mp4"),
    }
