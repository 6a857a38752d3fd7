"""Deleting a prefix with an adaptive number of requests in flight (issue 12, contract section 5).

The real moto server is never slow and never throttles, so the slowness and the ``SlowDown`` storm here are
injected by wrapping the real client (``tests.support.s3faults.FaultyS3``); everything else is the real server.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from scenestore.concurrency import AdaptiveLimit
from scenestore.prefix_delete import adaptive_limit, delete_prefix
from scenestore.services import Services
from scenestore.settings import get_settings

from tests.support.s3faults import FaultyS3
from tests.support.seed import P1, keys_in, layout_keys, put_objects, varied


def test_the_limit_grows_while_the_deletion_rate_grows(services: Services) -> None:
    """Injected slowness (moto is never slow): each DeleteObjects takes 60 ms, as from a distant store, so two
    in flight leave the listing waiting; the limit grows past its start, and never past its ceiling."""
    put_objects(services, layout_keys(600), varied)
    client = FaultyS3(services.s3)
    client.delay("delete_objects", 0.06)
    limit = AdaptiveLimit(initial=2, ceiling=12)
    report = delete_prefix(client, services.settings.bucket, P1, page_size=10, limit=limit)  # type: ignore[arg-type]
    assert (report.deleted_count, report.failed_count, report.complete) == (600, 0, True)
    assert limit.peak > 2
    assert 2 < client.max_active["delete_objects"] <= 12
    assert keys_in(services, P1) == set()


def test_a_slowdown_storm_slows_the_delete_down_then_it_finishes(services: Services) -> None:
    """Injected throttling (moto never throttles): the first DeleteObjects requests answer 503 SlowDown, at most
    twice per page. The limit halves, fewer requests are in flight while it lasts, and every object is gone."""
    put_objects(services, layout_keys(800), varied)
    client = FaultyS3(services.s3)
    refused: Counter[str] = Counter()

    def storm(kwargs: dict[str, Any]) -> bool:
        page = kwargs["Delete"]["Objects"][0]["Key"]
        if sum(refused.values()) >= 12 or refused[page] >= 2:
            return False
        refused[page] += 1
        return True

    client.fail("delete_objects", "SlowDown", when=storm)
    limit = AdaptiveLimit(initial=8, ceiling=8)
    limits_seen: list[int] = []
    client.before("delete_objects", lambda call: limits_seen.append(limit.limit))
    report = delete_prefix(
        client,  # type: ignore[arg-type]
        services.settings.bucket,
        P1,
        page_size=20,
        limit=limit,
        retry_backoff=0.01,
    )
    assert (report.deleted_count, report.failed_count, report.errors) == (800, 0, [])
    assert client.injected == 12
    assert limit.throttle_events >= 1
    assert min(limits_seen) < 8  # it slowed down ...
    assert keys_in(services, P1) == set()  # ... and finished


def test_a_storm_that_outlasts_the_retries_is_reported_not_lost(services: Services) -> None:
    """Injected throttling on every DeleteObjects of one page: its keys are reported as SlowDown failures with
    exact counts; the other pages are deleted; the limit went down to its floor and the run still ended."""
    keys = layout_keys(60)
    put_objects(services, keys, varied)
    client = FaultyS3(services.s3)
    doomed = set(keys[:20])
    client.fail("delete_objects", "SlowDown", when=lambda kw: kw["Delete"]["Objects"][0]["Key"] in doomed)
    limit = AdaptiveLimit(initial=4, ceiling=4)
    report = delete_prefix(client, services.settings.bucket, P1, page_size=20, limit=limit, retry_backoff=0.01)  # type: ignore[arg-type]
    assert (report.deleted_count, report.failed_count) == (40, 20)
    assert {e["code"] for e in report.errors} == {"SlowDown"}
    assert limit.throttle_events >= 4
    assert keys_in(services, P1) == doomed


def test_the_ceiling_is_the_configured_max_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENESTORE_S3_MAX_IN_FLIGHT", "5")
    get_settings.cache_clear()
    try:
        adaptive = adaptive_limit()
        assert (adaptive.ceiling, adaptive.limit) == (5, 5)  # the start (S3_CONCURRENCY) is capped by it too
    finally:
        get_settings.cache_clear()
    fixed = adaptive_limit(3)
    assert (fixed.limit, fixed.ceiling) == (3, 3)


def test_a_throttled_answer_seen_by_botocore_lowers_the_limit(services: Services) -> None:
    """Through botocore's own retry hook (the path a real R2 SlowDown takes): a 503 answer that botocore retries
    successfully still halves the limit. The 503 is made by botocore's ``before-send`` event, answering
    the first DeleteObjects attempt itself: moto cannot be made to answer 503."""
    from botocore.awsrequest import AWSResponse

    put_objects(services, layout_keys(30), varied)
    client = services.s3
    answered: list[int] = []

    class _Raw:
        def stream(self, **_: Any) -> Any:
            yield b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"

    def slow_down_once(request: Any, **_: Any) -> AWSResponse | None:
        if answered:
            return None
        answered.append(1)
        return AWSResponse(request.url, 503, {}, _Raw())

    client.meta.events.register_first("before-send.s3.DeleteObjects", slow_down_once, unique_id="test-slowdown-once")
    try:
        limit = AdaptiveLimit(initial=4, ceiling=4)
        report = delete_prefix(client, services.settings.bucket, P1, limit=limit)
    finally:
        client.meta.events.unregister("before-send.s3.DeleteObjects", unique_id="test-slowdown-once")
    assert (report.deleted_count, report.failed_count) == (30, 0)
    assert answered == [1]
    assert limit.throttle_events == 1 and limit.limit == 2
