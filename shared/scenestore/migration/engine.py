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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scenestore.budget import Deadline
from scenestore.migration import journal, runs
from scenestore.migration.batch import BatchContext, BatchProcessor, Hook
from scenestore.migration.config import MigrationConfig
from scenestore.migration.inventory import NoIndex, SourceIndex, StoredIndex
from scenestore.migration.models import BatchRequest, BatchResult, Position
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
        if options.pool is None:
            options.pool = stack.enter_context(ThreadPoolExecutor(options.config.workers, thread_name_prefix="migrate"))
        if request.dry_run:
            return _dry_run(request, services, deadline, options)
        if options.heartbeat is None:
            beat = runs.Heartbeat(
                services.db, options.owner, options.config.lease_ttl, options.config.heartbeat_interval
            )
            options.heartbeat = beat.start()
            stack.callback(beat.stop)
        return _run(request, services, deadline, options)
    raise AssertionError("unreachable")  # pragma: no cover


def _dry_run(request: BatchRequest, services: Services, deadline: Deadline, options: EngineOptions) -> BatchResult:
    assert options.pool is not None
    total = BatchResult(run_id=request.run_id, cursor=request.cursor)
    reader = ShardReader(services.db, request.the_shard, request.position)
    ctx = BatchContext(
        store=services.store,
        db=services.db,
        run_id=request.run_id,
        dry_run=True,
        pool=options.pool,
        sources=options.sources or NoIndex(),
        deadline=deadline,
    )
    pace = _Pace()
    while pace.room_for_one(deadline):
        started = time.monotonic()
        docs = reader.take(request.batch_size)
        if not docs:
            if reader.next_phase():
                total.cursor = Position(reader.phase).encode()
                continue
            total.done = True
            break
        outcome = BatchProcessor(ctx, reader.phase, docs).run()
        outcome.result.cursor = Position(reader.phase, docs[-1]["_id"]).encode()
        total.merge(outcome.result)
        if options.on_progress:
            options.on_progress(outcome.result)
        pace.record(time.monotonic() - started)
    return total


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


def _dirty_marker(
    db: Database[dict[str, Any]], run_id: str, shard: Shard, owner: str, dirty: list[Position | None], last: Position
) -> Callable[[], None]:
    """Before a batch's first intent: widen ``dirty_until`` to the batch's last document (never narrow it)."""

    def mark() -> None:
        if dirty[0] is None or last.order() > dirty[0].order():
            runs.mark_dirty(db, run_id, shard, owner, last.encode())
            dirty[0] = last

    return mark


def _batches(request: BatchRequest, services: Services, deadline: Deadline, options: EngineOptions) -> BatchResult:
    db = services.db
    shard = request.the_shard
    run_id = request.run_id
    config = options.config
    assert options.heartbeat is not None and options.pool is not None
    state = runs.shard_state(runs.get_run(db, run_id), shard)
    cursor = state.get("cursor") if state.get("cursor") is not None else request.cursor
    position = Position.decode(cursor)
    total = BatchResult(run_id=run_id, cursor=cursor)
    sources = options.sources
    if sources is None:
        stored = StoredIndex(db, run_id)
        sources = stored if stored.is_ready() else NoIndex()
    ctx = BatchContext(
        store=services.store,
        db=db,
        run_id=run_id,
        dry_run=False,
        pool=options.pool,
        sources=sources,
        deadline=deadline,
        hooks=options.hooks,
    )
    reader = ShardReader(db, shard, position)
    dirty = [Position.decode(state["dirty_until"]) if state.get("dirty_until") else None]
    pace = _Pace()
    while pace.room_for_one(deadline):
        options.heartbeat.check(run_id, shard.id)
        started = time.monotonic()
        docs = reader.take(request.batch_size)
        if not docs:
            moved = reader.next_phase()
            empty = BatchResult(run_id=run_id)
            cursor = Position(reader.phase).encode()
            runs.commit_batch(
                db, run_id, shard, options.owner, config.lease_ttl, cursor=cursor, done=not moved, result=empty
            )
            total.cursor, total.done = cursor, not moved
            if moved:
                continue
            break
        first, last = Position(reader.phase, docs[0]["_id"]), Position(reader.phase, docs[-1]["_id"])
        ctx.load_journal = dirty[0] is not None and first.order() <= dirty[0].order()
        ctx.before_intents = _dirty_marker(db, run_id, shard, options.owner, dirty, last)
        try:
            outcome = BatchProcessor(ctx, reader.phase, docs).run()
        except journal.DuplicateIntent:  # entries from an attempt dirty_until did not know of: plan with them
            ctx.load_journal = True
            outcome = BatchProcessor(ctx, reader.phase, docs).run()
        result = outcome.result
        finished = outcome.completed == len(docs)
        if outcome.completed:
            position = Position(reader.phase, docs[outcome.completed - 1]["_id"])
        done = finished and reader.phase == "projects" and not reader.has_more()
        result.cursor, result.done = position.encode(), done
        runs.commit_batch(
            db, run_id, shard, options.owner, config.lease_ttl, cursor=result.cursor, done=done, result=result
        )
        if options.hooks:
            options.hooks("committed", {"cursor": result.cursor})
        total.merge(result)
        if options.on_progress:
            options.on_progress(result)
        pace.record(time.monotonic() - started)
        if done or not finished:
            break
        if config.pause:
            time.sleep(config.pause)
    if total.done:
        runs.finish_if_complete(db, run_id)
    return total
