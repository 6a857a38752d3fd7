"""Run documents and shard leases in ``scenestore_migrations``.

One document per run::

    {_id: run_id, status: running|done|rolling_back|rolled_back, batch_size, created_at, updated_at,
     finished_at, planned: [{gte, lt}] | null, totals: {scanned, migrated, ...}, errors: [first 100],
     shards: {<shard id>: {gte, lt, cursor, done, lease: {owner, expires_at}, scanned, migrated, ...}},
     inventory: {...}, rollback: {...}}

A shard's cursor moves only when a whole batch is finished, in the same fenced update that adds its counts:
the update matches only while this process still owns the shard's lease, so a process that lost its lease
(paused past the TTL, then woke up) cannot move a cursor that a successor already moved. Leases carry a
wall-clock expiry renewed by a heartbeat; clocks are assumed NTP-close (Lambda, EC2, laptops are).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from scenestore.common import MAX_REPORTED_ERRORS, get_path
from scenestore.errors import Conflict, InvalidRequest, NotFound
from scenestore.migration.models import COUNTERS, BatchResult
from scenestore.migration.shards import Shard, check_coverage

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

RUNS: Final = "scenestore_migrations"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
ROLLBACK_LEASE: Final = "rollback"

RUNNING: Final = "running"
DONE: Final = "done"
ROLLING_BACK: Final = "rolling_back"
ROLLED_BACK: Final = "rolled_back"


class LeaseHeld(Conflict):
    """Another live process holds the lease; wait for it to finish or lapse."""

    code = "lease_held"


class LeaseLost(Conflict):
    """This process no longer owns its lease (a successor took over): stop without recording anything."""

    code = "lease_lost"


def now() -> datetime:
    return datetime.now(UTC)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def new_run_id() -> str:
    return f"mig-{now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def runs(db: Database[dict[str, Any]]) -> Collection[dict[str, Any]]:
    return db[RUNS]


def _shard_entry(shard: Shard) -> dict[str, Any]:
    return {
        "gte": shard.gte,
        "lt": shard.lt,
        "cursor": None,
        "done": False,
        "dirty_until": None,
        "lease": {"owner": None, "expires_at": EPOCH},
        **dict.fromkeys(COUNTERS, 0),
    }


def ensure_run(
    db: Database[dict[str, Any]], run_id: str, *, batch_size: int, planned: list[Shard] | None = None
) -> dict[str, Any]:
    """Create the run document if it does not exist (idempotent), and return it."""
    stamp = now()
    insert: dict[str, Any] = {
        "status": RUNNING,
        "batch_size": batch_size,
        "created_at": stamp,
        "planned": [s.to_dict() for s in planned] if planned is not None else None,
        "shards": {s.id: _shard_entry(s) for s in planned or []},
        "totals": dict.fromkeys(COUNTERS, 0),
        "errors": [],
    }
    runs(db).update_one({"_id": run_id}, {"$setOnInsert": insert, "$set": {"updated_at": stamp}}, upsert=True)
    doc = runs(db).find_one({"_id": run_id})
    assert doc is not None
    return doc


def get_run(db: Database[dict[str, Any]], run_id: str) -> dict[str, Any]:
    doc = runs(db).find_one({"_id": run_id})
    if doc is None:
        raise NotFound(f"no migration run {run_id!r}")
    return doc


def find_unfinished(db: Database[dict[str, Any]]) -> dict[str, Any] | None:
    """The most recent run still ``running`` (a crashed or concurrent one), to take over instead of starting anew."""
    found = list(runs(db).find({"status": RUNNING}).sort("created_at", -1).limit(1))
    return found[0] if found else None


def require_forward(doc: dict[str, Any]) -> None:
    if doc.get("status") in (ROLLING_BACK, ROLLED_BACK):
        raise InvalidRequest(f"run {doc['_id']!r} was rolled back; start a new run instead of resuming it")


def register_shard(db: Database[dict[str, Any]], run_id: str, shard: Shard) -> None:
    """Add a shard to the run the first time it is invoked (state machines pass shards the run never planned)."""
    runs(db).update_one(
        {"_id": run_id, f"shards.{shard.id}": {"$exists": False}}, {"$set": {f"shards.{shard.id}": _shard_entry(shard)}}
    )


def shard_state(doc: dict[str, Any], shard: Shard) -> dict[str, Any]:
    return dict(doc.get("shards", {}).get(shard.id) or _shard_entry(shard))


# -- leases ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LeaseInfo:
    owner: str | None
    expires_at: datetime

    def remaining(self) -> float:
        return (self.expires_at - now()).total_seconds()


def lease_path(slot: str) -> str:
    return "rollback.lease" if slot == ROLLBACK_LEASE else f"shards.{slot}.lease"


def try_acquire(db: Database[dict[str, Any]], run_id: str, slot: str, owner: str, ttl: float) -> bool:
    """Take the lease when it is free or lapsed, or renew it when we already hold it."""
    path = lease_path(slot)
    stamp = now()
    lease = {"owner": owner, "expires_at": stamp + timedelta(seconds=ttl)}
    taken = runs(db).update_one({"_id": run_id, f"{path}.expires_at": {"$lt": stamp}}, {"$set": {path: lease}})
    if taken.modified_count:
        return True
    return renew(db, run_id, slot, owner, ttl)


def renew(db: Database[dict[str, Any]], run_id: str, slot: str, owner: str, ttl: float) -> bool:
    path = lease_path(slot)
    expires = now() + timedelta(seconds=ttl)
    result = runs(db).update_one({"_id": run_id, f"{path}.owner": owner}, {"$set": {f"{path}.expires_at": expires}})
    return bool(result.matched_count)


def release(db: Database[dict[str, Any]], run_id: str, slot: str, owner: str) -> None:
    path = lease_path(slot)
    runs(db).update_one({"_id": run_id, f"{path}.owner": owner}, {"$set": {path: {"owner": None, "expires_at": EPOCH}}})


def lease_info(db: Database[dict[str, Any]], run_id: str, slot: str) -> LeaseInfo:
    node = get_path(get_run(db, run_id), lease_path(slot)) or {}
    expires = node.get("expires_at") or EPOCH
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return LeaseInfo(owner=node.get("owner"), expires_at=expires)


def acquire(
    db: Database[dict[str, Any]],
    run_id: str,
    slot: str,
    owner: str,
    ttl: float,
    *,
    wait_until: float,
    on_wait: Callable[[str], None] | None = None,
    stop_waiting: Callable[[], bool] | None = None,
) -> bool:
    """Acquire, waiting (and saying so once) while another owner's lease is live, until ``wait_until``.

    Returns ``False`` when ``stop_waiting()`` turns true meanwhile (e.g. the other owner finished the shard);
    raises :class:`LeaseHeld` when the wait runs past ``wait_until`` (a monotonic time).
    """
    told = False
    while True:
        if try_acquire(db, run_id, slot, owner, ttl):
            return True
        if stop_waiting is not None and stop_waiting():
            return False
        info = lease_info(db, run_id, slot)
        if not told and on_wait is not None:
            on_wait(
                f"run {run_id} shard {slot} is held by {info.owner} (lease ends in {max(0.0, info.remaining()):.0f}s "
                "unless renewed); waiting for it to finish or lapse"
            )
            told = True
        delay = min(max(info.remaining(), 0.05), 1.0)
        if time.monotonic() + delay > wait_until:
            raise LeaseHeld(f"run {run_id} shard {slot} is being processed by {info.owner}; try again later")
        time.sleep(delay)


class Heartbeat:
    """Renews a set of leases from a daemon thread; a lease found taken over is remembered as lost."""

    def __init__(self, db: Database[dict[str, Any]], owner: str, ttl: float, interval: float) -> None:
        self.db = db
        self.owner = owner
        self.ttl = ttl
        self.interval = interval
        self._held: set[tuple[str, str]] = set()
        self._lost: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._loop, name="scenestore-lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def hold(self, run_id: str, slot: str) -> None:
        with self._lock:
            self._held.add((run_id, slot))
            self._lost.discard((run_id, slot))

    def drop(self, run_id: str, slot: str) -> None:
        with self._lock:
            self._held.discard((run_id, slot))

    def check(self, run_id: str, slot: str) -> None:
        with self._lock:
            if (run_id, slot) in self._lost:
                raise LeaseLost(f"run {run_id} shard {slot}: lease taken over by another process")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                held = list(self._held)
            for run_id, slot in held:
                try:
                    ok = renew(self.db, run_id, slot, self.owner, self.ttl)
                except Exception:  # a transient database error: try again next beat, the TTL has slack
                    continue
                if not ok:
                    with self._lock:
                        self._lost.add((run_id, slot))
                        self._held.discard((run_id, slot))


# -- progress ----------------------------------------------------------------------------------------------
def commit_batch(
    db: Database[dict[str, Any]],
    run_id: str,
    shard: Shard,
    owner: str,
    ttl: float,
    *,
    cursor: str | None,
    done: bool,
    result: BatchResult,
) -> None:
    """Record a finished batch: cursor, counts, first errors, lease renewal; fenced on owning the lease."""
    sid = shard.id
    stamp = now()
    update: dict[str, Any] = {
        "$set": {
            f"shards.{sid}.cursor": cursor,
            f"shards.{sid}.done": done,
            f"shards.{sid}.lease.expires_at": stamp + timedelta(seconds=ttl),
            f"shards.{sid}.updated_at": stamp,
            "updated_at": stamp,
        },
        "$inc": {
            **{f"shards.{sid}.{name}": value for name, value in result.counters().items()},
            **{f"totals.{name}": value for name, value in result.counters().items()},
        },
    }
    if result.errors:
        update["$push"] = {"errors": {"$each": result.errors, "$slice": MAX_REPORTED_ERRORS}}
    fenced = {"_id": run_id, f"shards.{sid}.lease.owner": owner, "status": RUNNING}
    if not runs(db).update_one(fenced, update).matched_count:
        raise LeaseLost(f"run {run_id} shard {sid}: lease lost or run no longer running; batch not recorded")


def mark_dirty(db: Database[dict[str, Any]], run_id: str, shard: Shard, owner: str, until: str) -> None:
    """Record, before journalling a batch, the last position it covers: journal entries past the cursor can
    only exist up to ``dirty_until``, so later batches need not look the journal up. Fenced on the lease."""
    fenced = {"_id": run_id, f"shards.{shard.id}.lease.owner": owner, "status": RUNNING}
    if not runs(db).update_one(fenced, {"$set": {f"shards.{shard.id}.dirty_until": until}}).matched_count:
        raise LeaseLost(f"run {run_id} shard {shard.id}: lease lost or run no longer running")


def finish_if_complete(db: Database[dict[str, Any]], run_id: str) -> bool:
    """Mark the run ``done`` once its shards tile the whole ``_id`` space and each is done."""
    doc = get_run(db, run_id)
    if doc.get("status") != RUNNING:
        return doc.get("status") == DONE
    entries = list(doc.get("shards", {}).values())
    if doc.get("planned"):
        planned_ids = {Shard.from_dict(s).id for s in doc["planned"]}
        entries = [e for sid, e in doc.get("shards", {}).items() if sid in planned_ids]
        if len(entries) != len(planned_ids):
            return False
    shards = [Shard(gte=e.get("gte"), lt=e.get("lt")) for e in entries]
    if not shards or not all(e.get("done") for e in entries) or not check_coverage(shards):
        return False
    stamp = now()
    runs(db).update_one(
        {"_id": run_id, "status": RUNNING}, {"$set": {"status": DONE, "finished_at": stamp, "updated_at": stamp}}
    )
    return True


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What an operator reads of a run: its status, totals and the first errors of every process and execution
    that worked on it (a state machine's per-shard results carry counts only: the errors are here)."""
    return {
        "run_id": doc["_id"],
        "status": doc.get("status"),
        "created_at": doc["created_at"].isoformat() if isinstance(doc.get("created_at"), datetime) else None,
        "totals": dict(doc.get("totals") or {}),
        "errors": list(doc.get("errors") or []),
    }


def latest(db: Database[dict[str, Any]]) -> dict[str, Any] | None:
    """The most recently created run's :func:`summary`, or ``None`` when no run was ever recorded."""
    found = list(runs(db).find({}, {"shards": 0, "planned": 0}).sort("created_at", -1).limit(1))
    return summary(found[0]) if found else None
