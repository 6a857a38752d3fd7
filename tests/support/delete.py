"""Helpers for the deletion tests: seed objects and documents, list what is left, inject S3 faults."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scenestore.keys import output_key, scene_key
from scenestore.services import Services


def put_objects(services: Services, keys: Iterable[str], body: bytes = b"0123456789") -> int:
    """PUT every key (concurrently: the local S3 server does about 250 PUTs/s); returns bytes written."""
    keys = list(keys)
    client, bucket = services.s3, services.settings.bucket
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=body), keys))
    return len(keys) * len(body)


def keys_in(services: Services, prefix: str = "") -> set[str]:
    return {obj.key for obj in services.store.iter_objects(prefix)}


def image(user: str, project: str, scene: str, name: str = "a.png") -> str:
    return scene_key(user, project, scene, "image", name)


def audio(user: str, project: str, scene: str, name: str = "a.mp3") -> str:
    return scene_key(user, project, scene, "audio", name)


def output(user: str, project: str, name: str = "final.mp4") -> str:
    return output_key(user, project, name)


def project_doc(project_id: Any, user_id: str | None, output_key_: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": project_id, "title": f"project {project_id}"}
    if user_id is not None:
        doc["user_id"] = user_id
    if output_key_ is not None:
        doc["output"] = {"storageKey": output_key_, "contentType": "video/mp4", "size": 10}
    return doc


def scene_doc(scene_id: Any, project_id: str, media: str | None = None, audio_key: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": scene_id, "project_id": project_id}
    if media is not None:
        doc["media"] = {"storageKey": media, "type": "image", "contentType": "image/png", "size": 10}
    if audio_key is not None:
        doc["audio"] = {"storageKey": audio_key, "contentType": "audio/mpeg", "size": 10}
    return doc


class FaultyS3:
    """Wraps the real S3 client and injects the two faults the local S3 server cannot produce.

    ``fail_keys``: keys that every ``DeleteObjects`` reports as failed (``AccessDenied``), as S3 does per key.
    ``throttle``: how many ``DeleteObjects`` calls answer ``SlowDown`` before the real server is called.
    Everything else goes to the real client unchanged.
    """

    def __init__(self, real: Any, *, fail_keys: Iterable[str] = (), throttle: int = 0) -> None:
        self._real = real
        self.fail_keys = set(fail_keys)
        self.throttle_left = throttle
        self.delete_calls = 0
        self.throttled = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def delete_objects(self, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        with self._lock:
            self.delete_calls += 1
            if self.throttle_left > 0:
                self.throttle_left -= 1
                self.throttled += 1
                raise ClientError(
                    {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "DeleteObjects"
                )
        objects = kwargs["Delete"]["Objects"]
        failing = [o["Key"] for o in objects if o["Key"] in self.fail_keys]
        passing = [o for o in objects if o["Key"] not in self.fail_keys]
        response: dict[str, Any] = {}
        if passing:
            response = self._real.delete_objects(**{**kwargs, "Delete": {**kwargs["Delete"], "Objects": passing}})
        errors = list(response.get("Errors", []))
        errors += [{"Key": key, "Code": "AccessDenied", "Message": "Access Denied"} for key in failing]
        return {**response, "Errors": errors} if errors else response


def with_s3(services: Services, s3: Any) -> Services:
    return services.replace(s3=s3)


def atlas_event(name: str, services: Services, **detail_overrides: Any) -> dict[str, Any]:
    """A sample Atlas event from ``tests/events/`` aimed at this test's database (``ns.db``)."""
    import copy

    from tests.support.events import load_event

    event = copy.deepcopy(load_event(name))
    event["detail"]["ns"]["db"] = services.settings.mongodb_db
    event["detail"].update(detail_overrides)
    return event
