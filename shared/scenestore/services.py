"""The process's collaborators in one object: settings, the S3 and MongoDB clients, the bucket, the db.

Handlers call ``get_services()``: built once per process (a warm Lambda reuses it); tests and the local
stack install their own with ``use_services`` so every function talks to the servers they started.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from scenestore.settings import Settings, get_settings
from scenestore.storage import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pymongo import MongoClient
    from pymongo.database import Database


class Services:
    """Settings plus the S3 and MongoDB clients, each built on first use unless one is handed in.

    Building a client costs time even when it is never used: a ``MongoClient`` starts monitor threads and
    tears them down at exit, which made ``scenestore clear-bucket`` (S3 only) pay for a database it never
    touches. So a client is created the first time a caller asks for it, once (under a lock: the local
    server and the deletion pool share one ``Services`` across threads), and a test passes its own.
    """

    def __init__(
        self,
        settings: Settings,
        s3: S3Client | None = None,
        mongo: MongoClient[dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self._s3 = s3
        self._mongo = mongo
        self._build_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        return cls(settings=settings)

    @property
    def s3(self) -> S3Client:
        return self._s3 if self._s3 is not None else self._build("_s3")

    @property
    def mongo(self) -> MongoClient[dict[str, Any]]:
        return self._mongo if self._mongo is not None else self._build("_mongo")

    def _build(self, attribute: Literal["_s3", "_mongo"]) -> Any:
        """Build the client kept in ``attribute``, unless another thread did while this one waited for the lock
        (two threads asking at once would otherwise both build one, and one would be left open)."""
        with self._build_lock:
            if getattr(self, attribute) is None:
                from scenestore import clients

                make = clients.make_s3_client if attribute == "_s3" else clients.make_mongo_client
                setattr(self, attribute, make(self.settings))
            return getattr(self, attribute)

    @property
    def built(self) -> frozenset[str]:
        """Which clients exist so far (``"s3"``, ``"mongo"``): what a command really used."""
        return frozenset(name for name, client in (("s3", self._s3), ("mongo", self._mongo)) if client is not None)

    def replace(
        self,
        *,
        settings: Settings | None = None,
        s3: S3Client | None = None,
        mongo: MongoClient[dict[str, Any]] | None = None,
    ) -> Services:
        """A copy with some parts swapped (a fault-injecting S3 client, other settings); the rest is shared."""
        return Services(settings=settings or self.settings, s3=s3 or self._s3, mongo=mongo or self._mongo)

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
