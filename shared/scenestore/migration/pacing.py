"""The migration's S3 requests under the adaptive in-flight limit, waited out while the store says slow down.

At a remote store's distance the number of requests in flight, not the CPU, sets the pace; and the right
number is not known in advance (R2 and S3 publish per-prefix and per-bucket rate limits, a shared bucket
has other users). So every copy, HEAD and delete of a migration takes a slot of one
:class:`~scenestore.concurrency.AdaptiveLimit` per process (shared by its shards): the limit grows while
throughput grows and halves on ``SlowDown``/``503``, up to ``SCENESTORE_S3_MAX_IN_FLIGHT`` (and never past
the S3 client's connection pool, or connections would be opened and thrown away).

A throttled answer is not a failure of the move: it halves the limit and the request is tried again after
an exponential, jittered pause, for up to :data:`PATIENCE` seconds of throttling in a row or until the
deadline is near. Only then does :class:`Throttled` say so: a copy is then deferred (its batch stops before
that document and the next invocation goes on from there), never counted as failed.
"""

from __future__ import annotations

import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Final, TypeVar

from scenestore.budget import Deadline
from scenestore.concurrency import AdaptiveLimit, is_throttle, limit_for
from scenestore.errors import ScenestoreError
from scenestore.storage import ObjectInfo, ObjectStore, error_code

if TYPE_CHECKING:
    from scenestore.settings import Settings

T = TypeVar("T")

#: Seconds of throttling in a row after which a request gives up (a storm that long is an outage).
PATIENCE: Final = 120.0
#: First pause after a throttled answer; doubles per attempt up to ``MAX_BACKOFF``.
BASE_BACKOFF: Final = 0.1
MAX_BACKOFF: Final = 5.0


class Throttled(ScenestoreError):
    """The store kept answering "slow down" for longer than the migration waits (or than its deadline)."""

    code = "throttled"


def is_throttled(exc: BaseException) -> bool:
    """A botocore error, or one of ours caused by it, that means "slow down"."""
    for error in (exc, exc.__cause__):
        if error is None:
            continue
        response = getattr(error, "response", None)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
        if is_throttle(status, error_code(error) or None):
            return True
    return False


def new_limit(settings: Settings, client: object, *, initial: int) -> AdaptiveLimit:
    """One limit per process: starts at ``initial``, ceiling from the settings and the client's pool."""
    return limit_for(client, initial=initial, ceiling=settings.s3_max_in_flight)


_PROCESS_LIMITS: weakref.WeakKeyDictionary[Any, AdaptiveLimit] = weakref.WeakKeyDictionary()
_PROCESS_LIMITS_LOCK = threading.Lock()


def process_limit(settings: Settings, client: object, *, initial: int) -> AdaptiveLimit:
    """The limit of ``client``'s process, kept across calls: a warm Lambda's next invocation starts from
    what the last one learnt instead of from ``initial`` again (a state-machine loop of short invocations
    would otherwise never grow past the first few windows)."""
    with _PROCESS_LIMITS_LOCK:
        try:
            limit = _PROCESS_LIMITS.get(client)
        except TypeError:  # a client that cannot be a weak key (a test's wrapper): one limit per call
            return new_limit(settings, client, initial=initial)
        if limit is None:
            limit = _PROCESS_LIMITS[client] = new_limit(settings, client, initial=initial)
        return limit


class S3Pacer:
    """Runs S3 requests in slots of ``limit``; see the module doc."""

    def __init__(self, store: ObjectStore, limit: AdaptiveLimit, deadline: Deadline | None = None) -> None:
        self.store = store
        self.limit = limit
        self.deadline = deadline or Deadline.never()

    def run(self, request: Callable[[], T]) -> T:
        """``request()`` in a slot; retried while throttled (see the module doc), else its error propagates."""
        waited = 0.0
        for attempt in range(10_000):
            with self.limit.slot():
                try:
                    return request()
                except Exception as exc:
                    if not is_throttled(exc):
                        raise
                    cause = exc
            waited += self.back_off(attempt, waited, cause)
        raise AssertionError("unreachable")  # pragma: no cover

    def back_off(self, attempt: int, waited: float, cause: BaseException | None = None) -> float:
        """After a throttled answer: halve the limit and pause; raises :class:`Throttled` when out of patience."""
        self.limit.throttled()
        delay = min(MAX_BACKOFF, BASE_BACKOFF * 2**attempt) * random.uniform(0.5, 1.0)
        if waited + delay > PATIENCE or self.deadline.remaining() < delay:
            raise Throttled(f"the store kept throttling for {waited:.1f}s: {cause}") from cause
        time.sleep(delay)
        return delay

    def head(self, key: str) -> ObjectInfo | None:
        return self.run(lambda: self.store.head(key))

    def head_many(self, keys: Iterable[str], pool: Executor) -> dict[str, ObjectInfo | None]:
        unique = list(dict.fromkeys(keys))
        return dict(zip(unique, pool.map(self.head, unique), strict=True))
