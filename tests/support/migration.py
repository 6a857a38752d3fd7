"""Helpers for the migration tests: seed legacy data, snapshot state, run the engine, check the invariants."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from scenestore.db import PROJECTS, SCENES
from scenestore.keys import is_legacy_key
from scenestore.migration import BatchRequest, BatchResult, EngineOptions, migrate_batch, verify_storage
from scenestore.migration.config import MigrationConfig
from scenestore.migration.models import ShardRange
from scenestore.migration.shards import Shard
from scenestore.services import Services

#: Leases long enough not to lapse on a busy shared machine; tests that crash call ``expire_leases``.
TEST_CONFIG = MigrationConfig(lease_ttl=5.0, pause_ms=0.0, workers=4)
FIELDS = {SCENES: ("media.storageKey", "audio.storageKey"), PROJECTS: ("output.storageKey",)}


class SimulatedCrash(BaseException):
    """Raised by a hook to stop the engine dead, like a kill: not an ``Exception``, so nothing handles it."""


def expire_leases(services: Services) -> None:
    """Let time pass for a crashed run: its leases lapse now instead of after the TTL (tests of the lease
    itself wait for real instead)."""
    from scenestore.migration.runs import EPOCH, RUNS

    for doc in services.db[RUNS].find({}):
        for sid in doc.get("shards", {}):
            services.db[RUNS].update_one({"_id": doc["_id"]}, {"$set": {f"shards.{sid}.lease.expires_at": EPOCH}})
        if "rollback" in doc:
            services.db[RUNS].update_one({"_id": doc["_id"]}, {"$set": {"rollback.lease.expires_at": EPOCH}})


def crash_at(stage: str, nth: int = 1) -> Any:
    """A hook that crashes the ``nth`` time ``stage`` is reached (after that stage's work is done)."""
    seen = [0]

    def hook(name: str, info: dict[str, Any]) -> None:
        if name == stage:
            seen[0] += 1
            if seen[0] == nth:
                raise SimulatedCrash(f"crash after {stage} #{nth}")

    return hook


def body(label: str) -> bytes:
    return f"bytes of {label} ".encode() + hashlib.sha256(label.encode()).digest()


@dataclass
class Seeder:
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
        doc: dict[str, Any] = {"_id": pid, "name": f"project {pid}", **extra}
        if user is not None:
            doc["user_id"] = user
        if output is not None:
            doc["output"] = {"storageKey": output, "contentType": "video/mp4"}
        self.services.db[PROJECTS].insert_one(doc)
        self._expect(PROJECTS, pid, doc)
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
        doc: dict[str, Any] = {"_id": sid, "project_id": str(project), "order": 1, **extra}
        if media is not None:
            doc["media"] = {"storageKey": media, "contentType": "image/jpeg"}
            if media_type is not None:
                doc["media"]["type"] = media_type
        if audio is not None:
            doc["audio"] = {"storageKey": audio, "contentType": "audio/mpeg"}
        self.services.db[SCENES].insert_one(doc)
        self._expect(SCENES, sid, doc)
        return sid

    def _expect(self, collection: str, doc_id: Any, doc: dict[str, Any]) -> None:
        for name in FIELDS[collection]:
            key = _get(doc, name)
            if isinstance(key, str):
                data = self.services.store.get_bytes(key) if self.services.store.exists(key) else None
                if data is not None:
                    self.expected[(collection, repr(doc_id), name)] = data


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def references(services: Services) -> Iterator[tuple[str, Any, str, str]]:
    for collection, names in FIELDS.items():
        for doc in services.db[collection].find({}):
            for name in names:
                key = _get(doc, name)
                if isinstance(key, str):
                    yield collection, doc["_id"], name, key


def bucket(services: Services) -> dict[str, bytes]:
    keys = [info.key for page in services.store.iter_pages("") for info in page]
    return {key: services.store.get_bytes(key) for key in keys}


def snapshot(services: Services) -> dict[str, Any]:
    """Bucket contents and the app's collections, for before/after comparisons."""
    return {
        "bucket": bucket(services),
        SCENES: sorted(services.db[SCENES].find({}), key=repr),
        PROJECTS: sorted(services.db[PROJECTS].find({}), key=repr),
    }


def assert_references_intact(services: Services, seeder: Seeder) -> None:
    """Every reference that resolved when seeded still resolves, to the very same bytes."""
    for collection, doc_id, name, key in references(services):
        expected = seeder.expected.get((collection, repr(doc_id), name))
        if expected is None:
            continue
        assert services.store.exists(key), f"{collection} {doc_id} {name} -> {key} is missing"
        assert services.store.get_bytes(key) == expected, f"{collection} {doc_id} {name} -> {key} has other bytes"


def assert_converged(
    services: Services,
    seeder: Seeder,
    *,
    allowed_legacy: frozenset[str] | set[str] = frozenset(),
    allowed_missing: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Any]:
    """After a finished run: references intact, verify clean (but for keys already missing when seeded),
    no legacy object left that nothing needs."""
    assert_references_intact(services, seeder)
    report = verify_storage(services)
    assert set(report["missing_keys"]) <= set(allowed_missing), report
    assert report["ok"] == (not allowed_missing), report
    still_referenced = {key for _, _, _, key in references(services)}
    legacy_refs = {key for key in still_referenced if is_legacy_key(key)}
    assert legacy_refs <= allowed_legacy, f"legacy keys still referenced: {sorted(legacy_refs - allowed_legacy)}"
    leftovers = {key for key in bucket_keys(services) if is_legacy_key(key)} - still_referenced
    assert not (leftovers & seeder.legacy), f"legacy objects nothing needs were left: {sorted(leftovers)}"
    return report


def bucket_keys(services: Services) -> set[str]:
    return {info.key for page in services.store.iter_pages("") for info in page}


def request(
    run_id: str = "run-1",
    *,
    batch_size: int = 100,
    dry_run: bool = False,
    shard: Shard | None = None,
    cursor: str | None = None,
) -> BatchRequest:
    return BatchRequest(
        run_id=run_id,
        batch_size=batch_size,
        dry_run=dry_run,
        cursor=cursor,
        shard=ShardRange(gte=shard.gte, lt=shard.lt) if shard is not None and shard.id != "all" else None,
    )


def options(hooks: Any = None, **changes: Any) -> EngineOptions:
    return EngineOptions(config=changes.pop("config", TEST_CONFIG), hooks=hooks, **changes)


def run_to_end(
    services: Services, run_id: str = "run-1", *, batch_size: int = 100, shard: Shard | None = None, hooks: Any = None
) -> BatchResult:
    """Invoke migrate_batch until the shard is done, as the state machine does; returns merged counts."""
    total = BatchResult(run_id=run_id)
    cursor: str | None = None
    for _ in range(10_000):
        result = migrate_batch(
            request(run_id, batch_size=batch_size, shard=shard, cursor=cursor),
            services=services,
            options=options(hooks),
        )
        total.merge(result)
        cursor = result.cursor
        if result.done:
            return total
    raise AssertionError("migration did not finish")
