"""Helpers for the migration tests: the datasets several of them seed (with ``tests.support.seed.Seeder``),
snapshot state, run the engine, check the invariants, and a listener for the commands a client sends."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pymongo import monitoring
from scenestore.db import PROJECTS, SCENES
from scenestore.keys import is_legacy_key
from scenestore.migration import BatchRequest, BatchResult, EngineOptions, migrate_batch, verify_storage
from scenestore.migration.config import MigrationConfig
from scenestore.migration.models import ShardRange
from scenestore.migration.shards import Shard
from scenestore.services import Services

from tests.support.seed import Seeder, bucket_contents, keys_in, references

#: Leases long enough not to lapse on a busy shared machine; tests that crash call ``expire_leases``.
TEST_CONFIG = MigrationConfig(lease_ttl=5.0, pause_ms=0.0, workers=4)


class SimulatedCrash(BaseException):
    """Raised by a hook to stop the engine dead, like a kill: not an ``Exception``, so nothing handles it."""


class CommandNames(monitoring.CommandListener):
    """The names of the commands a pymongo client starts, in order (those ``keep`` picks); give it to
    ``make_mongo_client(..., event_listeners=[listener])``."""

    def __init__(self, keep: Callable[[monitoring.CommandStartedEvent], bool] = lambda event: True) -> None:
        self.names: list[str] = []
        self._keep = keep

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self._keep(event):
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


def seed_one_project(services: Services, media: dict[str, str]) -> Seeder:
    """Project ``p1`` (user ``u1``) with a scene per (scene id, media key) of ``media``, each key put just
    before its scene."""
    seed = Seeder(services)
    p = seed.project("p1")
    for sid, key in media.items():
        seed.put(key)
        seed.scene(p, sid, media=key)
    return seed


def seed_alice_project(
    seed: Seeder,
    project: str,
    output: str,
    *,
    keys: Iterable[str] = (),
    second: bool = False,
    share_across: bool = False,
) -> Any:
    """The objects ``m/1.jpg``, ``a/1.mp3``, ``m/shared.jpg``, ``output`` and ``keys``; alice's ``project`` with
    ``output`` as its output, then (``second``) a project with no owner; scenes s1-s4 of alice's project: media
    and audio, two scenes on one shared object (``share_across``: s3 is in the second project instead), one on
    the project's output. Returns the second project's id (``None`` without one)."""
    for key in ("m/1.jpg", "a/1.mp3", "m/shared.jpg", output, *keys):
        seed.put(key)
    seed.project(project, user="alice", output=output)
    other = seed.project(user=None) if second or share_across else None
    seed.scene(project, "s1", media="m/1.jpg", audio="a/1.mp3")
    seed.scene(project, "s2", media="m/shared.jpg")
    seed.scene(other if share_across else project, "s3", media="m/shared.jpg")
    seed.scene(project, "s4", media=output, media_type="video")
    return other


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


def snapshot(services: Services) -> dict[str, Any]:
    """Bucket contents and the app's collections, for before/after comparisons."""
    return {
        "bucket": bucket_contents(services),
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
    leftovers = {key for key in keys_in(services) if is_legacy_key(key)} - still_referenced
    assert not (leftovers & seeder.legacy), f"legacy objects nothing needs were left: {sorted(leftovers)}"
    return report


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


def run_batch(
    services: Services,
    run_id: str = "run-1",
    *,
    batch_size: int = 100,
    shard: Shard | None = None,
    cursor: str | None = None,
    hooks: Any = None,
) -> BatchResult:
    """One invocation of migrate_batch, with the test config and ``hooks``."""
    return migrate_batch(
        request(run_id, batch_size=batch_size, shard=shard, cursor=cursor), services=services, options=options(hooks)
    )


def run_to_end(
    services: Services, run_id: str = "run-1", *, batch_size: int = 100, shard: Shard | None = None, hooks: Any = None
) -> BatchResult:
    """Invoke migrate_batch until the shard is done, as the state machine does; returns merged counts."""
    total = BatchResult(run_id=run_id)
    cursor: str | None = None
    for _ in range(10_000):
        result = run_batch(services, run_id, batch_size=batch_size, shard=shard, cursor=cursor, hooks=hooks)
        total.merge(result)
        cursor = result.cursor
        if result.done:
            return total
    raise AssertionError("migration did not finish")
