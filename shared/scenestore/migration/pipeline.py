"""One batch's second half running behind the next batch's first half, and a shared stop between them.

At a remote store's distance a batch is mostly waiting: on the copies in its first half (plan, intents,
copies, verify: S3) and on the document updates, deletes and journal writes of its second half (MongoDB and
``DeleteObjects``). :class:`Behind` lets the engine start batch N+1's first half while batch N's second half
runs on one background thread, never more than one batch behind (memory holds at most two batches).

Every half is crash-safe on its own (the journal and ``dirty_until`` make any stopping point resumable), so
the overlap adds no new states. What it must not do is let one half go on after the other failed: a half
that raises sets :attr:`Behind.halt`, and the other half stops at its next stage boundary with
:class:`Halted` (the engine checks it in ``BatchContext.hook``); the first failure is what propagates. A
crash-like ``BaseException`` in either half thus stops the process about as dead as a kill would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class Halted(Exception):
    """The other half of the pipeline failed: stop here, its error is the one reported."""


class Behind(Generic[T]):
    """At most one function running behind the caller; its result (or error) is collected by :meth:`wait`."""

    def __init__(self, name: str = "migrate-behind") -> None:
        self.halt = threading.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: Future[T] | None = None

    def __enter__(self) -> Behind[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def submit(self, fn: Callable[[], T]) -> None:
        if self._pending is not None:
            raise RuntimeError("a batch is already running behind; wait for it first")
        self._pending = self._pool.submit(self._guarded, fn)

    def _guarded(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except BaseException:
            self.halt.set()
            raise

    def wait(self) -> T | None:
        """The running function's result (``None`` if none runs); re-raises its error."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def abandon(self) -> None:
        """The caller failed: stop the function at its next stage boundary and wait for it, dropping its
        result and its error (the caller's own error is the one to report)."""
        self.halt.set()
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            pending.result()
        except Halted:
            pass
        except BaseException as exc:  # the caller's error is reported; this one is logged beside it
            from scenestore.observability import logger

            logger.warning("the batch running behind failed too", extra={"error": repr(exc)})
