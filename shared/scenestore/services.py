"""The process's collaborators in one object: settings, the S3 and MongoDB clients, the bucket, the db.

Handlers call ``get_services()``: built once per process (a warm Lambda reuses it); tests and the local
stack install their own with ``use_services`` so every function talks to the servers they started.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scenestore.settings import Settings, get_settings
from scenestore.storage import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pymongo import MongoClient
    from pymongo.database import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    s3: S3Client
    mongo: MongoClient[dict[str, Any]]

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        from scenestore.clients import make_mongo_client, make_s3_client

        return cls(settings=settings, s3=make_s3_client(settings), mongo=make_mongo_client(settings))

    @property
    def store(self) -> ObjectStore:
        return ObjectStore(self.s3, self.settings.bucket)

    @property
    def db(self) -> Database[dict[str, Any]]:
        return self.mongo[self.settings.mongodb_db]


_lock = threading.Lock()
_current: Services | None = None


def get_services() -> Services:
    """The process's services, created on first use from the environment."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Services.from_settings(get_settings())
    return _current


def set_services(services: Services | None) -> None:
    """Install (or with ``None`` forget) the process's services; the local stack and tests use this."""
    global _current
    with _lock:
        _current = services


@contextmanager
def use_services(services: Services) -> Iterator[Services]:
    global _current
    previous = _current
    set_services(services)
    try:
        yield services
    finally:
        set_services(previous)
