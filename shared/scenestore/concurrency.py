"""How many S3 requests to keep in flight: sized for the store's distance and its rate limits, not for cores.

At R2's distance (tens of milliseconds a request) throughput is requests-in-flight divided by latency, so a
fixed pool sized for a 2-core machine leaves most of the bandwidth unused; against a local server the same
pool is already CPU-bound and more threads only add contention. Neither number can be known in advance, so
the limit is found while the job runs (AIMD, as TCP does it):

- **additive increase while it pays**: every window of completed requests, the measured rate is compared
  with the best one so far; if it grew, the limit grows by a step; once it stops growing the limit holds
  (and probes one step up again after a few flat windows, since conditions change);
- **multiplicative decrease on throttling**: a ``SlowDown``/``503``/``TooManyRequests`` answer halves the
  limit at once (at most once per window, so one burst of throttled replies counts as one signal);
- a **ceiling** (``SCENESTORE_S3_MAX_IN_FLIGHT``, default 64) keeps it under the store's published rate
  limits, and a floor of 1 keeps the job moving.

Throttling is observed with a botocore ``needs-retry`` hook on the client, so it is seen even when botocore's
own ``standard`` retry mode then retries the request successfully (the retry still means "slow down").
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

#: Error codes and HTTP statuses with which S3, R2 and moto say "too many requests".
THROTTLE_CODES: Final = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "RequestLimitExceeded", "ServiceUnavailable"}
)
THROTTLE_STATUSES: Final = frozenset({429, 503})
#: A window must see at least this much time for its rate to mean anything (timer resolution, bursts).
MIN_WINDOW_SECONDS: Final = 0.05
#: Growth must beat the best rate by this factor to count as growth (noise on a shared machine).
GROWTH_MARGIN: Final = 1.05
#: Flat windows after which the limit probes one step up again.
PROBE_AFTER: Final = 4


class AdaptiveLimit:
    """A counting gate whose size adapts: ``with limit.slot(): send_request()``; thread-safe.

    ``acquire``/``release`` are also exposed for producers that hand the request to a pool: acquire in the
    producer (so it blocks instead of queueing unbounded work), release in the worker when it is done.
    """

    def __init__(
        self, *, initial: int = 8, ceiling: int = 64, floor: int = 1, clock: Callable[[], float] = time.monotonic
    ):
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, got floor={floor} ceiling={ceiling}")
        self.floor = floor
        self.ceiling = ceiling
        self._limit = min(max(initial, floor), ceiling)
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._window_start = clock()
        self._window_done = 0
        self._best_rate = 0.0
        self._flat_windows = 0
        self._throttled_in_window = False
        self.throttle_events = 0
        self.peak = self._limit

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> None:
        with self._cond:
            while self._in_flight >= self._limit:
                self._cond.wait()
            self._in_flight += 1

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._window_done += 1
            self._maybe_grow()
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def throttled(self) -> None:
        """The store said "slow down": halve the limit (once per window) and forget the best rate."""
        with self._cond:
            self.throttle_events += 1
            if self._throttled_in_window:
                return
            self._throttled_in_window = True
            self._limit = max(self.floor, self._limit // 2)
            self._best_rate = 0.0
            self._flat_windows = 0
            self._cond.notify_all()

    def _maybe_grow(self) -> None:
        """Called with the lock held after each completion; closes a window of ``limit`` completions."""
        if self._window_done < self._limit:
            return
        now = self._clock()
        elapsed = now - self._window_start
        if elapsed < MIN_WINDOW_SECONDS:
            return
        rate = self._window_done / elapsed
        throttled = self._throttled_in_window
        self._window_start, self._window_done, self._throttled_in_window = now, 0, False
        if throttled:
            return
        if rate > self._best_rate * GROWTH_MARGIN:
            self._best_rate = rate
            self._flat_windows = 0
            self._grow()
        else:
            self._flat_windows += 1
            if self._flat_windows >= PROBE_AFTER:
                self._flat_windows = 0
                self._grow()

    def _grow(self) -> None:
        step = max(1, self._limit // 4)
        self._limit = min(self.ceiling, self._limit + step)
        self.peak = max(self.peak, self._limit)


def is_throttle(status: int | None, code: str | None) -> bool:
    return (status in THROTTLE_STATUSES) or (code in THROTTLE_CODES)


_OBSERVERS: weakref.WeakKeyDictionary[Any, weakref.WeakSet[AdaptiveLimit]] = weakref.WeakKeyDictionary()
_OBSERVERS_LOCK = threading.Lock()
_HOOK_ID: Final = "scenestore-adaptive-limit-throttle"


def limit_for(client: Any, *, initial: int, ceiling: int) -> AdaptiveLimit:
    """An adaptive limit for the requests of one job through ``client``: it starts at ``initial``, never
    passes ``ceiling`` nor the client's connection pool (more requests than connections would open and throw
    away connections), and hears of every throttled answer the client receives."""
    pool = getattr(getattr(getattr(client, "meta", None), "config", None), "max_pool_connections", None)
    if isinstance(pool, int):
        ceiling = min(ceiling, pool)
    ceiling = max(1, ceiling)
    limit = AdaptiveLimit(initial=min(max(1, initial), ceiling), ceiling=ceiling)
    if client is not None:
        observe_throttling(client, limit)
    return limit


def observe_throttling(client: Any, limit: AdaptiveLimit) -> None:
    """Tell ``limit`` about every throttled answer ``client`` receives (before botocore retries it).

    One hook per client, fanning out to every limit registered on it; limits are held weakly, so a job
    that ends takes its limit with it. A client without botocore events (a test double) is left alone.
    """
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:
        return
    with _OBSERVERS_LOCK:
        try:
            observers = _OBSERVERS.setdefault(client, weakref.WeakSet())
        except TypeError:  # not weak-referenceable: nothing to hang the registry on
            return
        observers.add(limit)
    events.register("needs-retry.s3", _make_hook(weakref.ref(client)), unique_id=_HOOK_ID)


def _make_hook(client_ref: weakref.ref[Any]) -> Callable[..., None]:
    def on_needs_retry(response: Any = None, **_: Any) -> None:
        if not response:
            return
        http, parsed = response
        status = getattr(http, "status_code", None)
        code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if not is_throttle(status, code):
            return
        client = client_ref()
        for limit in list(_OBSERVERS.get(client, ())) if client is not None else []:
            limit.throttled()

    return on_needs_retry
