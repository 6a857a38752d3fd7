"""The two helpers migration, rollback and cleanup share, against the real servers:

- ``swap_fields``: a field changes only while it still holds the expected key; an app write wins, and an
  app write to one field of a document does not hold back its other field;
- ``delete_unreferenced``: a key any remaining document references is never deleted; the rest go in
  ``DeleteObjects`` chunks of at most 1000 keys.
"""

from __future__ import annotations

from typing import Any

from scenestore.clients import make_mongo_client
from scenestore.db import PROJECTS, SCENES
from scenestore.migration.swap import FieldSwap, swap_fields
from scenestore.services import Services
from scenestore.unreferenced import delete_unreferenced

from tests.support.migration import CommandNames
from tests.support.s3faults import FaultyS3
from tests.support.seed import keys_in, put_objects

MEDIA, AUDIO = "media.storageKey", "audio.storageKey"


def _scene(services: Services, sid: str, media: str, audio: str | None = None) -> None:
    doc: dict[str, Any] = {"_id": sid, "project_id": "p1", "media": {"storageKey": media}}
    if audio is not None:
        doc["audio"] = {"storageKey": audio}
    services.db[SCENES].insert_one(doc)


def _field(services: Services, sid: str, field: str) -> Any:
    doc = services.db[SCENES].find_one({"_id": sid}) or {}
    part, sub = field.split(".")
    return (doc.get(part) or {}).get(sub)


def test_swap_changes_only_fields_that_still_hold_the_expected_key(services: Services) -> None:
    _scene(services, "s1", "old/1.jpg", "old/1.mp3")
    _scene(services, "s2", "app/newer.jpg")  # the app changed it already
    swaps = [
        FieldSwap("s1", MEDIA, "old/1.jpg", "new/1.jpg"),
        FieldSwap("s1", AUDIO, "old/1.mp3", "new/1.mp3"),
        FieldSwap("s2", MEDIA, "old/2.jpg", "new/2.jpg"),
        FieldSwap("gone", MEDIA, "old/3.jpg", "new/3.jpg"),
    ]

    assert swap_fields(services.db[SCENES], swaps) == [True, True, False, False]
    assert (_field(services, "s1", MEDIA), _field(services, "s1", AUDIO)) == ("new/1.jpg", "new/1.mp3")
    assert _field(services, "s2", MEDIA) == "app/newer.jpg"


def test_an_app_write_to_one_field_does_not_hold_back_the_other(services: Services) -> None:
    """The two fields of a scene go as one update; that update misses, so each is retried on its own."""
    _scene(services, "s1", "app/changed.jpg", "old/1.mp3")
    swaps = [FieldSwap("s1", MEDIA, "old/1.jpg", "new/1.jpg"), FieldSwap("s1", AUDIO, "old/1.mp3", "new/1.mp3")]

    assert swap_fields(services.db[SCENES], swaps) == [False, True]
    assert (_field(services, "s1", MEDIA), _field(services, "s1", AUDIO)) == ("app/changed.jpg", "new/1.mp3")


def test_swaps_that_all_land_take_one_round_trip(services: Services) -> None:
    for i in range(50):
        _scene(services, f"s{i}", f"old/{i}.jpg", f"old/{i}.mp3")
    listener = CommandNames()
    client = make_mongo_client(services.settings, event_listeners=[listener])
    try:
        collection = client[services.settings.mongodb_db][SCENES]
        swaps = [
            FieldSwap(f"s{i}", f, f"old/{i}.{e}", f"new/{i}.{e}")
            for i in range(50)
            for f, e in ((MEDIA, "jpg"), (AUDIO, "mp3"))
        ]
        listener.names.clear()
        assert all(swap_fields(collection, swaps))
        assert listener.names == ["update"]  # one bulk write, no read-back
    finally:
        client.close()


def test_delete_unreferenced_keeps_every_key_a_document_still_references(services: Services) -> None:
    put_objects(services, ["legacy/a.jpg", "legacy/b.jpg", "legacy/c.jpg", "legacy/d.jpg"])
    _scene(services, "s1", "legacy/a.jpg")
    services.db[PROJECTS].insert_one({"_id": "p1", "output": {"storageKey": "legacy/b.jpg"}})
    _scene(services, "s2", "legacy/c.jpg")  # referenced only by a document going away with the caller's

    outcome = delete_unreferenced(
        services.db,
        services.s3,
        services.settings.bucket,
        ["legacy/a.jpg", "legacy/b.jpg", "legacy/c.jpg", "legacy/d.jpg", "legacy/d.jpg"],
        disregard=lambda ref: ref[:2] == (SCENES, "s2"),
    )

    assert sorted(outcome.deleted) == ["legacy/c.jpg", "legacy/d.jpg"] and outcome.kept == 2
    assert keys_in(services) == {"legacy/a.jpg", "legacy/b.jpg"}


def test_delete_unreferenced_sends_chunks_of_at_most_1000_keys(services: Services) -> None:
    """The wrapper (``FaultyS3``, no fault configured) only counts the DeleteObjects requests that reach the server."""
    keys = [f"legacy/{i:05d}.bin" for i in range(1150)]
    put_objects(services, keys)
    client = FaultyS3(services.s3)

    outcome = delete_unreferenced(services.db, client, services.settings.bucket, keys)

    assert len(outcome.deleted) == 1150 and not outcome.errors
    assert sorted(client.batch_sizes) == [150, 1000]
    assert keys_in(services) == set()


def test_delete_unreferenced_reports_keys_the_store_refused(services: Services) -> None:
    """Fault injection: moto never fails a key of a DeleteObjects, the wrapper does for one key."""
    put_objects(services, ["legacy/ok.jpg", "legacy/stuck.jpg"])
    client = FaultyS3(services.s3)
    client.fail_keys({"legacy/stuck.jpg"}, "AccessDenied")

    outcome = delete_unreferenced(services.db, client, services.settings.bucket, ["legacy/ok.jpg", "legacy/stuck.jpg"])

    assert outcome.deleted == ["legacy/ok.jpg"]
    assert [e["key"] for e in outcome.errors] == ["legacy/stuck.jpg"]
    assert keys_in(services) == {"legacy/stuck.jpg"}
