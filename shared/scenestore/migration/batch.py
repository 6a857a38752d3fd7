"""One batch of documents through the move pipeline, stage by stage for the whole batch.

Stages (each a few round trips for the batch, never one per object where a batch will do):

1. **plan** — the documents' key fields, their projects (one ``$in``), this run's journal entries for them
   (one ``$in``: what a crashed attempt already did), source sizes (inventory, else a listing, else HEAD), one
   listing of the batch's target keys, and a free target name per move (same bytes: reuse; different: ``name-2.jpg``).
2. **intent** — journal entries for every move, written before any copy or update (``insert_many``).
3. **copy** — server-side copies on the shared thread pool; none is started after the deadline.
4. **verify** — size and ETag of every new object against its source (ETags compared when both are MD5s).
5. **update** — one ``bulk_write`` per collection, each update filtered on the field still holding the old
   key, so an app write made meanwhile wins; a short read-back tells applied from overtaken.
6. **delete** — old keys no document references any more (``find_references``), in ``DeleteObjects`` batches;
   copies we made for moves the app overtook are removed again if nothing references them.
7. **journal** — entries marked applied / conflict / failed (a few ``update_many``).

Each stage calls ``hooks(stage, info)`` when it is done, so tests can stop the process at every boundary.
If the deadline passes during the copies, the batch stops cleanly: the documents from the first unfinished
one onwards are not updated and not counted, and the cursor stays before them (see ``BatchOutcome``).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from scenestore.budget import Deadline
from scenestore.concurrency import AdaptiveLimit, is_throttle
from scenestore.db import PROJECTS
from scenestore.errors import ScenestoreError
from scenestore.migration import journal
from scenestore.migration.ids import encode_id
from scenestore.migration.inventory import SourceIndex
from scenestore.migration.models import MAX_LISTED_MOVES, BatchResult
from scenestore.migration.objects import ExistingObjects, KeyListing, copy_object, etag_is_md5, list_keys, same_bytes
from scenestore.migration.pacing import S3Pacer, Throttled
from scenestore.migration.pipeline import Halted
from scenestore.migration.references import Slot, index_projects, project_lookup_ids, project_slots, scene_slots
from scenestore.migration.states import CopyState, JournalState, MoveState, journal_state, transition
from scenestore.migration.swap import FieldSwap, swap_fields
from scenestore.storage import ObjectInfo, ObjectStore, error_code
from scenestore.unreferenced import delete_unreferenced

if TYPE_CHECKING:
    from pymongo.database import Database

Hook = Callable[[str, dict[str, Any]], None]

#: Distinct names tried for one move before giving up (``name.jpg``, ``name-2.jpg``, ... ``name-50.jpg``).
MAX_NAME_ATTEMPTS: Final = 50


@dataclass
class BatchContext:
    store: ObjectStore
    db: Database[dict[str, Any]]
    run_id: str
    dry_run: bool
    pool: Executor
    sources: SourceIndex
    deadline: Deadline = field(default_factory=Deadline.never)
    hooks: Hook | None = None
    #: False when no earlier attempt can have journalled anything for this batch (see engine: ``dirty_until``).
    load_journal: bool = True
    #: Called once before the first intent of the batch is written (the engine records ``dirty_until``).
    before_intents: Callable[[], None] | None = None
    #: Set when the other half of the engine's pipeline failed: stop at the next stage boundary.
    halt: threading.Event | None = None
    #: Every S3 request of the batch goes through it (adaptive in-flight limit, throttling waited out).
    pacer: S3Pacer | None = None

    def __post_init__(self) -> None:
        if self.pacer is None:
            self.pacer = S3Pacer(self.store, AdaptiveLimit(), self.deadline)

    @property
    def s3(self) -> S3Pacer:
        assert self.pacer is not None
        return self.pacer

    def halted(self) -> bool:
        return self.halt is not None and self.halt.is_set()

    def hook(self, stage: str, **info: Any) -> None:
        if self.halted():
            raise Halted(f"stopped after {stage}: the other batch in flight failed")
        if self.hooks is not None:
            self.hooks(stage, info)


@dataclass(eq=False)
class Move:
    """One document field moving from ``old_key`` to ``new_key``."""

    slot: Slot
    index: int  # position of its document in the batch
    old_key: str
    entry: dict[str, Any] | None  # this run's journal entry from an earlier attempt, if any
    jid: str = ""
    source: ObjectInfo | None = None
    source_fresh: bool = False
    new_key: str | None = None
    created: bool = False
    copy: CopyJob | None = None
    state: MoveState = MoveState.PLANNED
    code: str = ""

    #: The state of its journal entry as this batch knows it (``None``: no entry written yet).
    logged: JournalState | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.logged = journal_state(self.entry.get("state")) if self.entry is not None else None

    def to(self, state: MoveState) -> None:
        self.state = transition(self.state, state)

    def intent_written(self) -> None:
        self.logged = JournalState.INTENT if self.logged is None else transition(self.logged, JournalState.INTENT)

    def outcome(self, state: JournalState, **fields: Any) -> journal.Outcome:
        assert self.logged is not None, "an outcome is recorded only for a journalled move"
        return journal.Outcome(self.jid, transition(self.logged, state), fields)


@dataclass(eq=False)
class CopyJob:
    source: ObjectInfo
    target: str
    etag: str | None = None
    state: CopyState = CopyState.PLANNED
    code: str = ""
    message: str = ""

    def to(self, state: CopyState, code: str = "", message: str = "") -> None:
        self.state = transition(self.state, state)
        self.code, self.message = code, message


@dataclass
class BatchOutcome:
    result: BatchResult
    #: Documents finished, as a prefix of the batch: the cursor may move past exactly these.
    completed: int


@dataclass
class _Report:
    index: int
    code: str
    message: str
    context: dict[str, Any]


class BatchProcessor:
    def __init__(self, ctx: BatchContext, phase: str, docs: list[dict[str, Any]]) -> None:
        self.ctx = ctx
        self.phase = phase
        self.docs = docs
        self.moves: list[Move] = []
        self.reports: list[_Report] = []
        self.recovered: list[dict[str, Any]] = []  # intents whose update landed before a crash
        self.pending_old: list[dict[str, Any]] = []  # applied entries whose old object may still need deleting
        self.overtaken: list[dict[str, Any]] = []  # intents whose document the app changed before the update
        self.jobs: list[CopyJob] = []

    # -- driver -------------------------------------------------------------------------------------------
    def run(self) -> BatchOutcome:
        """The whole batch; the engine calls the two halves itself to overlap them with other batches."""
        self.prepare()
        return self.conclude()

    def prepare(self) -> None:
        """Stages 1-4: everything up to verified copies; touches no document the app reads."""
        self.plan()
        if self.ctx.dry_run:
            return
        self.write_intents()
        self.run_copies()
        self.verify()

    def conclude(self) -> BatchOutcome:
        """Stages 5-7: point the documents at the verified copies, delete what is unreferenced, journal it."""
        if not self.ctx.dry_run:
            self.update_documents()
            self.delete_unreferenced()
            self.write_marks()
        return self.finish()

    def report(self, index: int, code: str, message: str, slot: Slot | None = None, key: str | None = None) -> None:
        context: dict[str, Any] = {}
        if slot is not None:
            context = {"collection": slot.collection, "id": slot.doc_id, "field": slot.field}
        if key is not None:
            context["key"] = key
        self.reports.append(_Report(index, code, message, context))

    # -- 1. plan ------------------------------------------------------------------------------------------
    def slots(self) -> list[list[Slot]]:
        if self.phase == PROJECTS:
            return [project_slots(doc) for doc in self.docs]
        ids = project_lookup_ids(self.docs)
        projects = list(self.ctx.db[PROJECTS].find({"_id": {"$in": ids}}, {"user_id": 1})) if ids else []
        by_id = index_projects(projects)
        return [scene_slots(scene, by_id.get(str(scene.get("project_id", "")))) for scene in self.docs]

    def plan(self) -> None:
        per_doc = self.slots()
        entries: dict[str, dict[str, Any]] = {}
        if not self.ctx.dry_run and self.ctx.load_journal:
            ids = [journal.entry_id(self.ctx.run_id, s.collection, s.doc_id, s.field) for ss in per_doc for s in ss]
            entries = journal.load(self.ctx.db, ids)
        for index, slots in enumerate(per_doc):
            for slot in slots:
                jid = journal.entry_id(self.ctx.run_id, slot.collection, slot.doc_id, slot.field)
                self._classify(index, slot, jid, entries.get(jid))
        self._targets_and_sources()
        self.ctx.hook("planned", moves=len(self.moves))

    def _classify(self, index: int, slot: Slot, jid: str, entry: dict[str, Any] | None) -> None:
        state = journal_state(entry.get("state")) if entry else None
        if entry is not None and state == JournalState.INTENT:
            if slot.value == entry["old_key"]:
                self.moves.append(Move(slot, index, entry["old_key"], entry, jid))
            elif slot.value == entry["new_key"]:
                self.recovered.append(entry)
            else:
                self.overtaken.append(entry)
                self.report(index, "changed_by_app", "the document changed before it could be updated", slot)
            return
        if entry is not None and state == JournalState.APPLIED:
            self.pending_old.append(entry)  # its old object may not have been deleted before a crash
            return
        if not slot.is_legacy:
            return
        assert slot.value is not None
        if slot.user_id is None:
            message = f"project {slot.project_id!r} of this scene does not exist; left untouched"
            self.report(index, "orphan_scene", message, slot, slot.value)
            return
        self.moves.append(Move(slot, index, slot.value, entry, jid))

    def _targets_and_sources(self) -> None:
        live: list[Move] = []
        for move in self.moves:
            try:
                move.new_key = move.slot.target(move.old_key)
            except ScenestoreError as exc:
                self._fail(move, exc.code, exc.message)
                continue
            live.append(move)
        keys = [m.old_key for m in live]
        known = self.ctx.sources.lookup(keys)
        fresh = self.ctx.s3.head_many([k for k in keys if k not in known], self.ctx.pool)
        for move in live:
            if move.old_key in known:
                move.source = known[move.old_key]
            else:
                move.source, move.source_fresh = fresh.get(move.old_key), True
            if move.source is None:
                self._skip_missing(move)
        live = [m for m in live if m.state == MoveState.PLANNED]
        existing = ExistingObjects(self.ctx.s3.head, self._list_targets(live))
        claimed: dict[str, Move] = {}
        for move in live:
            self._choose_target(move, existing, claimed)

    def _list_targets(self, live: list[Move]) -> KeyListing:
        """What already exists where the batch's moves will land: their first-choice names (and a crashed
        attempt's choice) from one listing, in key order. Consecutive scenes of a project lie side by side
        in the layout, so a batch usually costs one short LIST; a distinct name (``-2``) is HEADed."""
        wanted = [m.new_key for m in live if m.new_key]
        wanted += [m.entry["new_key"] for m in live if m.entry and m.entry.get("new_key")]
        return list_keys(self.ctx.store, wanted, self.ctx.s3.run)

    def _skip_missing(self, move: Move) -> None:
        move.to(MoveState.SKIPPED)
        move.code = "source_missing"
        self.report(
            move.index, "source_missing", "the legacy object does not exist; left untouched", move.slot, move.old_key
        )

    def _fail(self, move: Move, code: str, message: str) -> None:
        move.to(MoveState.FAILED)
        move.code = code
        self.report(move.index, code, message, move.slot, move.old_key)

    def _choose_target(self, move: Move, existing: ExistingObjects, claimed: dict[str, Move]) -> None:
        """Pick the first name that is free, or already holds the source's bytes; never one with other bytes."""
        assert move.source is not None
        entry = move.entry if move.entry and journal_state(move.entry.get("state")) == JournalState.INTENT else None
        ours = entry["new_key"] if entry and entry.get("created") else None
        for key in _candidates(move, entry):
            other = claimed.get(key)
            if other is not None:
                if other.old_key == move.old_key:  # same bytes, same name: share the one copy
                    move.new_key, move.copy, move.created = key, other.copy, False
                    if other.copy is None:
                        move.to(MoveState.VERIFIED)
                    return
                continue
            found = existing.get(key)
            if found is None:
                move.new_key, move.created = key, True
                move.copy = CopyJob(move.source, key)
                self.jobs.append(move.copy)
                claimed[key] = move
                return
            verdict = same_bytes(found, move.source)
            if verdict and not move.source_fresh:
                move.source, move.source_fresh = self.ctx.s3.head(move.old_key), True  # reuse: trust only a HEAD
                if move.source is None:
                    self._skip_missing(move)
                    return
                verdict = same_bytes(found, move.source)
            if verdict or (verdict is None and key == ours):
                move.new_key, move.created = key, key == ours
                move.to(MoveState.VERIFIED)
                claimed[key] = move
                return
        self._fail(move, "no_free_name", f"no free target name after {MAX_NAME_ATTEMPTS} attempts")

    # -- 2. intent ----------------------------------------------------------------------------------------
    def live(self) -> list[Move]:
        return [m for m in self.moves if m.state in (MoveState.PLANNED, MoveState.VERIFIED)]

    def write_intents(self) -> None:
        if self.ctx.before_intents is not None:
            self.ctx.before_intents()
        fresh: list[dict[str, Any]] = []
        rewritten: list[dict[str, Any]] = []
        live = self.live()
        for move in live:
            assert move.source is not None
            doc = {
                "_id": move.jid,
                "run_id": self.ctx.run_id,
                "collection": move.slot.collection,
                "doc_id": move.slot.doc_id,
                "field": move.slot.field,
                "old_key": move.old_key,
                "new_key": move.new_key,
                "created": move.created,
                "size": move.source.size,
            }
            if move.entry is None:
                fresh.append(doc)
            else:
                rewritten.append({**doc, "created_at": move.entry.get("created_at")})
        journal.insert_intents(self.ctx.db, fresh)
        journal.write_intents(self.ctx.db, rewritten)
        for move in live:
            move.intent_written()
        self.ctx.hook("intent", count=len(fresh) + len(rewritten))

    # -- 3. copy --------------------------------------------------------------------------------------------
    def run_copies(self) -> None:
        wanted = {id(m.copy) for m in self.moves if m.copy is not None and m.state == MoveState.PLANNED}
        jobs = [job for job in self.jobs if id(job) in wanted]
        futures: list[tuple[CopyJob, Future[None]]] = [(job, self.ctx.pool.submit(self._copy, job)) for job in jobs]
        for _job, future in futures:
            future.result()
        self.ctx.hook("copied", count=len(jobs))
        deferred = {m.index for m in self.moves if m.copy is not None and m.copy.state == CopyState.DEFERRED}
        if deferred:  # stop at the first unfinished document; later ones are redone next time as a whole
            first = min(deferred)
            for move in self.moves:
                if move.index >= first and move.state in (MoveState.PLANNED, MoveState.VERIFIED):
                    move.to(MoveState.DEFERRED)

    def _copy(self, job: CopyJob) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self.ctx.deadline.expired() or self.ctx.halted():
            job.to(CopyState.DEFERRED)
            return
        try:
            job.etag = self.ctx.s3.run(lambda: copy_object(self.ctx.store, job.source.key, job.target, job.source.size))
        except Throttled:  # waited out as long as it may: the next invocation goes on from this document
            job.to(CopyState.DEFERRED)
            return
        except ClientError as exc:
            code = error_code(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                job.to(CopyState.FAILED, "source_missing")
                return
            fresh = self.ctx.s3.head(job.source.key)  # a stale inventory size may have picked the wrong copy
            if fresh is not None and fresh.size != job.source.size:
                job.source = fresh
                self._copy(job)
                return
            job.to(CopyState.FAILED, "copy_failed", f"{code or 'error'}: {exc}")
            return
        except BotoCoreError as exc:
            job.to(CopyState.FAILED, "copy_failed", str(exc))
            return
        job.to(CopyState.COPIED)
        self.ctx.hook("copied_one", source=job.source.key, target=job.target)

    # -- 4. verify ------------------------------------------------------------------------------------------
    def verify(self) -> None:
        copied = [job for job in self.jobs if job.state == CopyState.COPIED]
        unsure = {id(job) for job in copied if not _etag_proves(job)}
        targets = self.ctx.s3.head_many([job.target for job in copied if id(job) in unsure], self.ctx.pool)
        recheck: list[CopyJob] = []
        for job in copied:
            if id(job) in unsure:
                found = targets.get(job.target)
                ok = found is not None and same_bytes(found, job.source) is not False
                if found is not None and found.etag:
                    job.etag = found.etag
            else:
                ok = True
            if ok:
                job.to(CopyState.VERIFIED)
            else:
                recheck.append(job)
        if recheck:  # the inventory may be older than the object: compare against a fresh HEAD once
            sources = self.ctx.s3.head_many([job.source.key for job in recheck], self.ctx.pool)
            targets = self.ctx.s3.head_many([job.target for job in recheck], self.ctx.pool)
            for job in recheck:
                source, target = sources.get(job.source.key), targets.get(job.target)
                if source is not None and target is not None and same_bytes(source, target) is not False:
                    job.source = source
                    job.to(CopyState.VERIFIED)
                else:
                    message = "the copy does not match its source (size or ETag); the document was not changed"
                    job.to(CopyState.FAILED, "verify_failed", message)
        for move in self.moves:
            if move.state != MoveState.PLANNED or move.copy is None:
                continue
            job = move.copy
            if job.state == CopyState.VERIFIED:
                move.source = job.source
                move.to(MoveState.VERIFIED)
            elif job.state == CopyState.FAILED and job.code == "source_missing":
                self._skip_missing(move)
            elif job.state == CopyState.FAILED:
                self._fail(move, job.code, job.message or job.code)
        self.ctx.hook("verified", count=len(copied))

    # -- 5. update ------------------------------------------------------------------------------------------
    def update_documents(self) -> None:
        ready = [m for m in self.moves if m.state == MoveState.VERIFIED]
        by_collection: dict[str, list[Move]] = defaultdict(list)
        for move in ready:
            by_collection[move.slot.collection].append(move)
        for collection, moves in by_collection.items():
            swaps = [FieldSwap(m.slot.doc_id, m.slot.field, m.old_key, m.new_key or "") for m in moves]
            for move, landed in zip(moves, swap_fields(self.ctx.db[collection], swaps), strict=True):
                if landed:
                    move.to(MoveState.APPLIED)
                else:
                    move.to(MoveState.CONFLICT)
                    message = "the document changed before it could be updated"
                    self.report(move.index, "changed_by_app", message, move.slot)
        self.ctx.hook("updated", count=sum(1 for m in ready if m.state == MoveState.APPLIED))

    # -- 6. delete ------------------------------------------------------------------------------------------
    def delete_unreferenced(self) -> set[str]:
        """Delete old objects nothing references any more; remove our copies for moves the app overtook."""
        done = (MoveState.APPLIED, MoveState.CONFLICT)
        candidates = {m.old_key for m in self.moves if m.state in done}
        candidates |= {e["old_key"] for e in self.recovered + self.pending_old + self.overtaken}
        strays: dict[str, CopyJob | None] = {
            m.new_key: m.copy
            for m in self.moves
            if m.state == MoveState.CONFLICT and m.created and m.new_key and m.copy
        }
        strays.update({e["new_key"]: None for e in self.overtaken if e.get("created")})

        def select(free: list[str]) -> list[ObjectInfo]:
            olds = [ObjectInfo(key, 0, "") for key in sorted(k for k in free if k in candidates)]
            ours = self._still_ours([k for k in free if k in strays and k not in candidates], strays)
            return olds + [ObjectInfo(key, 0, "") for key in ours]

        deleted, errors = self._delete([*candidates, *strays], select)
        for err in errors:
            message = f"{err.get('code')}: {err.get('message')}"
            self.reports.append(_Report(-1, "delete_failed", message, {"key": err["key"]}))
        self.ctx.hook("deleted", count=len(deleted))
        return deleted

    def _delete(
        self, keys: list[str], select: Callable[[list[str]], list[ObjectInfo]]
    ) -> tuple[set[str], list[dict[str, str]]]:
        """``delete_unreferenced`` in slots of the in-flight limit; keys the store throttled are tried again
        (references checked again too) after a pause, for as long as the pacer's patience lasts."""
        store, deleted = self.ctx.store, set[str]()
        waited = 0.0
        for attempt in range(10_000):
            outcome = delete_unreferenced(
                self.ctx.db, store.client, store.bucket, keys, select=select, send=self.ctx.s3.run
            )
            deleted.update(outcome.deleted)
            throttled = [err for err in outcome.errors if is_throttle(None, err.get("code"))]
            if not throttled:
                return deleted, outcome.errors
            try:
                waited += self.ctx.s3.back_off(attempt, waited)
            except Throttled:
                return deleted, outcome.errors
            keys = [err["key"] for err in throttled]
        raise AssertionError("unreachable")  # pragma: no cover

    def _still_ours(self, keys: list[str], jobs: dict[str, CopyJob | None]) -> list[str]:
        """Of our unreferenced copies, those still holding the bytes we copied (never someone's new upload)."""
        found = self.ctx.s3.head_many(keys, self.ctx.pool)
        ours = []
        for key in keys:
            info, job = found.get(key), jobs.get(key)
            expected = job.etag if job is not None else None
            if info is not None and (expected is None or not etag_is_md5(expected) or info.etag == expected):
                ours.append(key)
        return ours

    # -- 7. journal -----------------------------------------------------------------------------------------
    def write_marks(self) -> None:
        """Every outcome of the batch in one journal write (applied, conflict, failed with its code)."""
        outcomes: list[journal.Outcome] = []
        for move in self.moves:
            if move.state == MoveState.APPLIED:
                outcomes.append(move.outcome(JournalState.APPLIED))
            elif move.state == MoveState.CONFLICT:
                outcomes.append(move.outcome(JournalState.CONFLICT))
            elif move.state in (MoveState.FAILED, MoveState.SKIPPED) and move.logged is not None:
                outcomes.append(move.outcome(JournalState.FAILED, code=move.code or MoveState.FAILED.value))
        for entry in self.recovered:
            outcomes.append(journal.Outcome(entry["_id"], transition(JournalState.INTENT, JournalState.APPLIED)))
        for entry in self.overtaken:
            outcomes.append(journal.Outcome(entry["_id"], transition(JournalState.INTENT, JournalState.CONFLICT)))
        journal.record(self.ctx.db, outcomes)
        self.ctx.hook("journaled", applied=sum(1 for o in outcomes if o.state == JournalState.APPLIED))

    # -- result ---------------------------------------------------------------------------------------------
    def completed(self) -> int:
        """How many documents, as a prefix of the batch, this batch finishes (known once copies are done)."""
        deferred = [m.index for m in self.moves if m.state == MoveState.DEFERRED]
        return min(deferred) if deferred else len(self.docs)

    def finish(self) -> BatchOutcome:
        completed = self.completed()
        result = BatchResult(run_id=self.ctx.run_id)
        result.scanned = completed
        for report in self.reports:
            if report.index < completed:
                result.report(report.code, report.message, **report.context)
        would = (MoveState.PLANNED, MoveState.VERIFIED) if self.ctx.dry_run else (MoveState.APPLIED,)
        moved = [m for m in self.moves if m.state in would and m.index < completed]
        result.migrated = len(moved) + len(self.recovered)
        if self.ctx.dry_run:
            result.moves = [_listed(move) for move in moved[:MAX_LISTED_MOVES]]
        copies = {id(m.copy): m.copy for m in moved if m.copy is not None and m.created}
        result.bytes_copied = sum(job.source.size for job in copies.values())
        result.bytes_copied += sum(int(e.get("size") or 0) for e in self.recovered if e.get("created"))
        return BatchOutcome(result=result, completed=completed)


def _listed(move: Move) -> dict[str, Any]:
    """A move as a dry run lists it."""
    slot = move.slot
    return {
        "collection": slot.collection,
        "id": encode_id(slot.doc_id),
        "field": slot.field,
        "from": move.old_key,
        "to": move.new_key,
    }


def _candidates(move: Move, entry: dict[str, Any] | None) -> Iterator[str]:
    """Target names in order of preference, built lazily: a crashed attempt's choice first, then the
    layout name, then ``name-2.jpg``, ``name-3.jpg``..."""
    seen: set[str] = set()
    if entry is not None:
        seen.add(entry["new_key"])
        yield entry["new_key"]
    assert move.new_key is not None
    for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
        key = move.new_key if attempt == 1 else move.slot.target(move.old_key, attempt)
        if key not in seen:
            seen.add(key)
            yield key


def _etag_proves(job: CopyJob) -> bool:
    """A single-part copy whose new ETag equals the source's MD5 has the source's bytes, hence its size."""
    return etag_is_md5(job.etag) and etag_is_md5(job.source.etag) and job.etag == job.source.etag.strip('"')
