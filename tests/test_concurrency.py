"""The adaptive in-flight limit (scenestore.concurrency): grows while throughput grows, halves on throttling."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from scenestore.clients import make_s3_client
from scenestore.concurrency import PROBE_AFTER, AdaptiveLimit, is_throttle, observe_throttling
from scenestore.services import Services


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_window(limit: AdaptiveLimit, clock: FakeClock, seconds: float) -> None:
    """Complete one window of ``limit.limit`` requests taking ``seconds`` in all."""
    n = limit.limit
    for _ in range(n):
        limit.acquire()
    clock.now += seconds
    for _ in range(n):
        limit.release()


def test_the_limit_grows_while_the_rate_grows_and_holds_when_it_stops() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(initial=4, ceiling=64, clock=clock)
    # Latency-bound: each window takes the same time whatever the limit, so the rate grows with it.
    for _ in range(5):
        run_window(limit, clock, 0.1)
    assert limit.limit > 4
    # CPU-bound from here: the rate is capped at what the current limit gives, whatever the limit.
    per_request = 0.1 / limit.limit
    run_window(limit, clock, limit.limit * per_request)  # the last growth is measured one window late
    held = limit.limit
    for _ in range(PROBE_AFTER - 1):
        run_window(limit, clock, limit.limit * per_request)
    assert limit.limit == held, "no growth while the rate is flat"
    run_window(limit, clock, limit.limit * per_request)
    assert limit.limit > held, "after PROBE_AFTER flat windows it probes one step up"


def test_the_ceiling_is_never_passed() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(initial=8, ceiling=12, clock=clock)
    for _ in range(20):
        run_window(limit, clock, 0.1)
    assert limit.limit == 12
    assert limit.peak == 12


def test_throttling_halves_the_limit_once_per_window_and_never_below_the_floor() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(initial=32, ceiling=64, floor=2, clock=clock)
    limit.throttled()
    limit.throttled()  # the same burst: one signal
    assert limit.limit == 16
    run_window(limit, clock, 0.1)  # closes the window; no growth in a throttled window
    assert limit.limit == 16
    for _ in range(10):
        limit.throttled()
        run_window(limit, clock, 0.1)
    assert limit.limit == 2
    assert limit.throttle_events == 12


def test_acquire_blocks_at_the_limit_until_a_slot_is_released() -> None:
    limit = AdaptiveLimit(initial=2, ceiling=2)
    limit.acquire()
    limit.acquire()
    entered = threading.Event()

    def third() -> None:
        limit.acquire()
        entered.set()

    thread = threading.Thread(target=third)
    thread.start()
    assert not entered.wait(0.1)
    limit.release()
    assert entered.wait(2)
    thread.join()
    assert limit.in_flight == 2


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        AdaptiveLimit(floor=0)
    with pytest.raises(ValueError):
        AdaptiveLimit(floor=5, ceiling=4)


def test_throttle_classification() -> None:
    assert is_throttle(503, None)
    assert is_throttle(429, None)
    assert is_throttle(400, "SlowDown")
    assert not is_throttle(404, "NoSuchKey")
    assert not is_throttle(200, None)


def test_a_throttled_answer_from_the_wire_halves_the_limit_even_when_botocore_retries_it(services: Services) -> None:
    """GIVEN a real client against the moto server, with the first two HTTP answers replaced by 503 SlowDown
    (a before-send hook: moto cannot be told to throttle; this is the injected fault)
    THEN botocore's standard retries still succeed, and the limit saw the throttling."""
    client = make_s3_client(services.settings)
    remaining = {"n": 2}

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        if remaining["n"] <= 0:
            return None
        remaining["n"] -= 1
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        raw = type("Raw", (), {"stream": lambda self, **_: iter([body])})()
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, raw)

    client.meta.events.register("before-send.s3.PutObject", throttle)
    limit = AdaptiveLimit(initial=16, ceiling=64)
    observe_throttling(client, limit)
    started = time.monotonic()
    client.put_object(Bucket=services.settings.bucket, Key="k", Body=b"x")
    assert time.monotonic() - started < 30
    assert limit.throttle_events == 2
    assert limit.limit == 8
    assert client.get_object(Bucket=services.settings.bucket, Key="k")["Body"].read() == b"x"
