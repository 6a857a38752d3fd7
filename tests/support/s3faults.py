"""Helpers for tests that fill a bucket and inject S3 faults (prefix delete, compat adapter).

``FaultyClient`` wraps the real client; it injects only what moto cannot produce (per-key DeleteObjects
errors, whole-request throttling, slowness) and counts calls. Everything else reaches the real server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError
from scenestore.keys import project_prefix, scene_key
from scenestore.services import Services

P1 = project_prefix("u", "p1")


def seed(services: Services, keys: Iterable[str], size_of: Any = lambda i: i % 17) -> int:
    """Put the objects concurrently (16 threads); returns their total size."""
    client, bucket = services.s3, services.settings.bucket
    items = [(key, b"x" * size_of(i)) for i, key in enumerate(keys)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: client.put_object(Bucket=bucket, Key=item[0], Body=item[1]), items))
    return sum(len(body) for _, body in items)


def layout_keys(count: int, project: str = "p1") -> list[str]:
    return [scene_key("u", project, f"s{i // 10:04d}", "image", f"{i:05d}.png") for i in range(count)]


def remaining(services: Services, prefix: str = "") -> list[str]:
    return [obj.key for obj in services.store.iter_objects(prefix)]


class FaultyClient:
    """Fault injection around the real client: per-key errors, whole-request errors and slowness for
    ``delete_objects`` (moto never fails a key, never throttles), plus counters. Everything else passes
    through to the real client, so listing and the deletes that are let through hit the real server."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.lock = threading.Lock()
        self.fail_always: set[str] = set()
        self.fail_once: set[str] = set()
        self.throttle_calls = 0
        self.delay = 0.0
        self.attempts: dict[str, int] = {}
        self.delete_calls = 0
        self.batch_sizes: list[int] = []
        self.active = 0
        self.max_active = 0
        self.pages_listed = 0
        self.deletes_done = 0
        self.max_outstanding = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def list_objects_v2(self, **kwargs: Any) -> Any:
        response = self._real.list_objects_v2(**kwargs)
        with self.lock:
            self.pages_listed += 1
            self.max_outstanding = max(self.max_outstanding, self.pages_listed - self.deletes_done)
        return response

    def delete_objects(self, **kwargs: Any) -> Any:
        keys = [o["Key"] for o in kwargs["Delete"]["Objects"]]
        with self.lock:
            self.delete_calls += 1
            self.batch_sizes.append(len(keys))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            throttle = self.throttle_calls > 0
            if throttle:
                self.throttle_calls -= 1
            for key in keys:
                self.attempts[key] = self.attempts.get(key, 0) + 1
        try:
            if self.delay:
                time.sleep(self.delay)
            if throttle:
                raise ClientError(
                    {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "DeleteObjects"
                )
            with self.lock:
                failing = [k for k in keys if k in self.fail_always or (k in self.fail_once and self.attempts[k] == 1)]
            passing = [k for k in keys if k not in failing]
            response: dict[str, Any] = {"Errors": []}
            if passing:
                delete = {**kwargs["Delete"], "Objects": [{"Key": k} for k in passing]}
                response = dict(self._real.delete_objects(**{**kwargs, "Delete": delete}))
                response.setdefault("Errors", [])
            response["Errors"] = [
                *response["Errors"],
                *({"Key": k, "Code": "InternalError", "Message": "We encountered an internal error."} for k in failing),
            ]
            return response
        finally:
            with self.lock:
                self.active -= 1
                self.deletes_done += 1
