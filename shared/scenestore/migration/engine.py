"""``migrate_batch``: one invocation of the migrate-batch contract, used by the Lambda handler and the CLI.

It takes the shard's lease, reads on from the shard's recorded cursor, and runs batches until the shard is
done or the deadline is near, recording each finished batch (cursor + counts, fenced on the lease) before
starting the next. The recorded cursor wins over the one in the input (a retried invocation with an old
cursor does not redo work; one with a cursor ahead cannot skip any), and the input cursor only seeds a new
shard. A dry run records nothing at all: it reads from the input cursor and reports what would happen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from scenestore.budget import Deadline
from scenestore.concurrency import AdaptiveLimit
from scenestore.db import PROJECTS
from scenestore.migration import journal, runs
from scenestore.migration.batch import BatchContext, BatchProcessor, Hook
from scenestore.migration.config import MigrationConfig
from scenestore.migration.inventory import ListedSources, SourceIndex, StoredIndex
from scenestore.migration.models import BatchRequest, BatchResult, Position
from scenestore.migration.pacing import S3Pacer, process_limit
from scenestore.migration.pipeline import Behind, Halted
from scenestore.migration.scan import ShardReader

if TYPE_CHECKING:
    from pymongo.database import Database

    from scenestore.migration.shards import Shard
    from scenestore.services import Services

ProgressCallback = Callable[[BatchResult], None]


@dataclass
class EngineOptions:
    """Collaborators shared by the shards of one process; each defaults to a fresh one per invocation."""

    config: MigrationConfig = field(default_factory=MigrationConfig.from_env)
    owner: str = field(default_factory=runs.new_owner)
    pool: Executor | None = None
    #: S3 requests in flight, adapted to the store (default: the process's, kept across invocations).
    limit: AdaptiveLimit | None = None
    heartbeat: runs.Heartbeat | None = None
    sources: SourceIndex | None = None
    hooks: Hook | None = None
    on_progress: ProgressCallback | None = None
    on_wait: Callable[[str], None] | None = None


class _Pace:
    """How long a batch takes (slowest seen), so no batch is started that would overrun the deadline."""

    def __init__(self) -> None:
        self.slowest = 0.0

    def record(self, seconds: float) -> None:
        self.slowest = max(self.slowest, seconds)

    def room_for_one(self, deadline: Deadline) -> bool:
        return deadline.remaining() > self.slowest * 1.5


def migrate_batch(
    request: BatchRequest,
    *,
    services: Services | None = None,
    deadline: Deadline | None = None,
    options: EngineOptions | None = None,
) -> BatchResult:
    if services is None:
        from scenestore.services import get_services

        services = get_services()
    deadline = deadline or Deadline.never()
    options = options or EngineOptions()
    with ExitStack() as stack:
        if options.limit is None:
            options.limit = process_limit(services.settings, services.s3, initial=options.config.workers)
        if options.pool is None:
            pool = ThreadPoolExecutor(options.limit.ceiling, thread_name_prefix="migrate")
            options.pool = stack.enter_context(pool)
        if request.dry_run:
            return _loop(request, services, deadline, options, request.cursor, options.sources, _DryRun())
        if options.heartbeat is None:
            beat = runs.Heartbeat(
                services.db, options.owner, options.config.lease_ttl, options.config.heartbeat_interval
            )
            options.heartbeat = beat.start()
            stack.callback(beat.stop)
        return _run(request, services, deadline, options)
    raise AssertionError("unreachable")  # pragma: no cover


def _run(request: BatchRequest, services: Services, deadline: Deadline, options: EngineOptions) -> BatchResult:
    db = services.db
    shard = request.the_shard
    run_id = request.run_id
    config = options.config
    assert options.heartbeat is not None and options.pool is not None
    doc = runs.ensure_run(db, run_id, batch_size=request.batch_size)
    runs.require_forward(doc)
    runs.register_shard(db, run_id, shard)

    def shard_done() -> bool:
        return bool(runs.shard_state(runs.get_run(db, run_id), shard).get("done"))

    state = runs.shard_state(runs.get_run(db, run_id), shard)
    if state.get("done"):
        return BatchResult(run_id=run_id, cursor=state.get("cursor"), done=True)
    wait_until = math.inf if math.isinf(deadline.at) else deadline.at
    if not runs.acquire(
        db, run_id, shard.id, options.owner, config.lease_ttl,
        wait_until=wait_until, on_wait=options.on_wait, stop_waiting=shard_done,
    ):  # fmt: skip
        state = runs.shard_state(runs.get_run(db, run_id), shard)
        return BatchResult(run_id=run_id, cursor=state.get("cursor"), done=bool(state.get("done")))
    options.heartbeat.hold(run_id, shard.id)
    release = True
    try:
        state = runs.shard_state(runs.get_run(db, run_id), shard)
        if state.get("done"):  # finished by the owner we waited for
            return BatchResult(run_id=run_id, cursor=state.get("cursor"), done=True)
        return _batches(request, services, deadline, options)
    except runs.LeaseLost:
        release = False
        raise
    except BaseException as exc:
        # A crash-like stop (SystemExit, a test's simulated kill) keeps the lease, as a killed process would.
        release = isinstance(exc, Exception | KeyboardInterrupt)
        raise
    finally:
        options.heartbeat.drop(run_id, shard.id)
        if release:
            runs.release(db, run_id, shard.id, options.owner)


class _Ledger(Protocol):
    """Where a loop's batches are recorded: nowhere (dry run), or the run document fenced on the lease."""

    def check(self) -> None:
        """Stop (raise) before a batch when the work may no longer go on."""

    def prepare(self, ctx: BatchContext, phase: str, docs: list[dict[str, Any]]) -> BatchProcessor:
        """Run a batch's first half (plan .. verify) with what this ledger knows of earlier attempts."""

    def commit(self, result: BatchResult) -> None:
        """Record a finished batch (or the end of a phase: no documents) before the next one is recorded."""

    def after_batch(self) -> None:
        """Between two batches (a throttling pause)."""

    def close(self, total: BatchResult) -> None:
        """After the loop."""


class _DryRun:
    def check(self) -> None:
        return None

    def prepare(self, ctx: BatchContext, phase: str, docs: list[dict[str, Any]]) -> BatchProcessor:
        processor = BatchProcessor(ctx, phase, docs)
        processor.prepare()
        return processor

    def commit(self, result: BatchResult) -> None:
        return None

    def after_batch(self) -> None:
        return None

    def close(self, total: BatchResult) -> None:
        return None


@dataclass
class _Committed:
    """Progress recorded in ``scenestore_migrations``: the cursor moves past whole batches only, fenced on the
    shard's lease; ``dirty_until`` tells which batches an earlier attempt may have journalled."""

    db: Database[dict[str, Any]]
    run_id: str
    shard: Shard
    options: EngineOptions
    dirty: Position | None

    def check(self) -> None:
        assert self.options.heartbeat is not None
        self.options.heartbeat.check(self.run_id, self.shard.id)

    def prepare(self, ctx: BatchContext, phase: str, docs: list[dict[str, Any]]) -> BatchProcessor:
        first, last = Position(phase, docs[0]["_id"]), Position(phase, docs[-1]["_id"])
        loaded = self.dirty is not None and first.order() <= self.dirty.order()
        ctx = replace(ctx, load_journal=loaded, before_intents=lambda: self._mark_dirty(last))
        processor = BatchProcessor(ctx, phase, docs)
        try:
            processor.prepare()
        except journal.DuplicateIntent:  # entries from an attempt dirty_until did not know of: plan with them
            processor = BatchProcessor(replace(ctx, load_journal=True), phase, docs)
            processor.prepare()
        return processor

    def _mark_dirty(self, last: Position) -> None:
        """Before a batch's first intent: widen ``dirty_until`` to the batch's last document (never narrow it)."""
        if self.dirty is None or last.order() > self.dirty.order():
            runs.mark_dirty(self.db, self.run_id, self.shard, self.options.owner, last.encode())
            self.dirty = last

    def commit(self, result: BatchResult) -> None:
        runs.commit_batch(
            self.db,
            self.run_id,
            self.shard,
            self.options.owner,
            self.options.config.lease_ttl,
            cursor=result.cursor,
            done=result.done,
            result=result,
        )

    def after_batch(self) -> None:
        if self.options.config.pause:
            time.sleep(self.options.config.pause)

    def close(self, total: BatchResult) -> None:
        if total.done:
            runs.finish_if_complete(self.db, self.run_id)


def _batches(request: BatchRequest, services: Services, deadline: Deadline, options: EngineOptions) -> BatchResult:
    db = services.db
    shard = request.the_shard
    state = runs.shard_state(runs.get_run(db, request.run_id), shard)
    cursor = state.get("cursor") if state.get("cursor") is not None else request.cursor
    sources = options.sources
    if sources is None:
        stored = StoredIndex(db, request.run_id)
        sources = stored if stored.is_ready() else None
    dirty = Position.decode(state["dirty_until"]) if state.get("dirty_until") else None
    ledger = _Committed(db, request.run_id, shard, options, dirty)
    return _loop(request, services, deadline, options, cursor, sources, ledger)


def _loop(
    request: BatchRequest,
    services: Services,
    deadline: Deadline,
    options: EngineOptions,
    cursor: str | None,
    sources: SourceIndex | None,
    ledger: _Ledger,
) -> BatchResult:
    """Batches in ``_id`` order from ``cursor`` until the shard is done or the deadline is near.

    The one loop of both a dry run and a committed run; ``ledger`` is what differs between them. Batches are
    pipelined: batch N+1 is read, planned and copied while batch N's updates, deletes, journal outcomes and
    commit run behind it (:mod:`scenestore.migration.pipeline`); batches are still recorded strictly in
    order, so the cursor only ever moves past whole batches.
    """
    assert options.pool is not None
    dry_run = isinstance(ledger, _DryRun)
    total = BatchResult(run_id=request.run_id, cursor=cursor)
    reader = ShardReader(services.db, request.the_shard, Position.decode(cursor))
    assert options.limit is not None
    pacer = S3Pacer(services.store, options.limit, deadline)
    with Behind[BatchResult]() as behind:
        ctx = BatchContext(
            store=services.store,
            db=services.db,
            run_id=request.run_id,
            dry_run=dry_run,
            pool=options.pool,
            sources=sources if sources is not None else ListedSources(services.store, pacer.run),
            deadline=deadline,
            hooks=None if dry_run else options.hooks,
            halt=behind.halt,
            pacer=pacer,
        )
        try:
            _pipeline(request, options, ledger, ctx, reader, behind, total)
        except Halted:
            behind.wait()  # raises the failure that halted this half
            raise
        except BaseException:
            behind.abandon()
            raise
    ledger.close(total)
    return total


def _pipeline(
    request: BatchRequest,
    options: EngineOptions,
    ledger: _Ledger,
    ctx: BatchContext,
    reader: ShardReader,
    behind: Behind[BatchResult],
    total: BatchResult,
) -> None:
    position = Position.decode(total.cursor)
    pace = _Pace()

    def settle() -> None:
        """Wait for the batch running behind (it was a finished one) and count it."""
        result = behind.wait()
        if result is not None:
            total.merge(result)

    def conclude(processor: BatchProcessor, cursor: str, done: bool) -> BatchResult:
        result = processor.conclude().result
        result.cursor, result.done = cursor, done
        ledger.commit(result)
        ctx.hook("committed", cursor=result.cursor)
        if options.on_progress:
            options.on_progress(result)
        return result

    while pace.room_for_one(ctx.deadline):
        ledger.check()
        started = time.monotonic()
        docs = reader.take(request.batch_size)
        if not docs:
            settle()
            moved = reader.next_phase()
            marker = BatchResult(run_id=request.run_id, cursor=Position(reader.phase).encode(), done=not moved)
            ledger.commit(marker)
            total.cursor, total.done = marker.cursor, marker.done
            if moved:
                continue
            return
        processor = ledger.prepare(ctx, reader.phase, docs)  # overlaps the previous batch's second half
        settle()
        completed = processor.completed()
        finished = completed == len(docs)
        if completed:
            position = Position(reader.phase, docs[completed - 1]["_id"])
        done = finished and reader.phase == PROJECTS and not reader.has_more()
        behind.submit(partial(conclude, processor, position.encode(), done))
        pace.record(time.monotonic() - started)
        if done or not finished:
            settle()
            return
        ledger.after_batch()
    settle()
