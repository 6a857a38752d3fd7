"""Deleting a prefix against the real moto server (issue 3, contract sections 1 and 5).

Exact prefix, thousands of objects, per-key failures retried then reported, throttling, the time budget
and its continuation, capped errors with exact counts, bounded pages in flight. Faults that moto cannot
produce (per-key DeleteObjects errors, throttling, slowness) are injected by wrapping the real client; each
such test says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from scenestore.budget import Deadline
from scenestore.errors import InvalidRequest
from scenestore.keys import scene_key, scene_prefix
from scenestore.prefix_delete import (
    KEY_RETRIES,
    LISTERS,
    MAX_REPORTED_ERRORS,
    DeleteReport,
    check_prefix,
    delete_prefix,
)
from scenestore.services import Services

from tests.support.s3faults import FaultyS3
from tests.support.seed import P1, keys_in, layout_keys, put_objects, varied


# -- prefix rules --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["", "users/u/projects/p1", "users/u", 3, None])
def test_an_empty_or_open_prefix_is_refused(services: Services, bad: Any) -> None:
    put_objects(services, ["users/u/projects/p1/x.png", "users/u/projects/p10/x.png", "legacy.jpg"], varied)
    with pytest.raises(InvalidRequest):
        delete_prefix(services.s3, services.settings.bucket, bad)
    with pytest.raises(InvalidRequest):
        check_prefix(bad)
    assert len(keys_in(services)) == 3


def test_the_empty_prefix_only_when_explicitly_allowed(services: Services) -> None:
    total = put_objects(services, ["a.jpg", "media/b.jpg", "users/u/projects/p/output/c.mp4"], varied)
    report = delete_prefix(services.s3, services.settings.bucket, "", allow_root=True)
    assert (report.deleted_count, report.total_bytes, report.complete) == (3, total, True)
    assert keys_in(services) == set()


def test_exactly_the_prefix_is_deleted(services: Services) -> None:
    """p1/ goes; p10/, p1x/, a 'p1' object without slash, other users and legacy keys stay."""
    doomed = [*layout_keys(30, "p1"), f"{P1}output/final.mp4", f"{P1}odd/deeper/file.bin"]
    neighbours = [
        *layout_keys(5, "p10"),
        *layout_keys(3, "p1x"),
        "users/u/projects/p1",
        "users/u/projects/p1.png",
        "users/other/projects/p1/scenes/s/image/a.png",
        "p1/legacy.png",
        "media/users/u/projects/p1/x.png",
    ]
    doomed_bytes = put_objects(services, doomed, varied)
    put_objects(services, neighbours, varied)
    report = delete_prefix(services.s3, services.settings.bucket, P1)
    assert report.to_dict() == {
        "deleted_count": len(doomed),
        "failed_count": 0,
        "total_bytes": doomed_bytes,
        "errors": [],
        "complete": True,
        "continuation": None,
    }
    assert sorted(keys_in(services)) == sorted(neighbours)


def test_a_scene_prefix_leaves_its_siblings(services: Services) -> None:
    keys = layout_keys(40)  # scenes s0000..s0003, ten keys each
    put_objects(services, [*keys, scene_key("u", "p1", "s00001", "image", "x.png")], varied)
    report = delete_prefix(services.s3, services.settings.bucket, scene_prefix("u", "p1", "s0001"))
    assert report.deleted_count == 10
    left = keys_in(services)
    assert not any(k.startswith(scene_prefix("u", "p1", "s0001")) for k in left)
    assert len(left) == 31


def test_keys_with_awkward_characters(services: Services) -> None:
    """Keys are listed URL-encoded and decoded again: spaces, +, %, &, <, quotes and non-ASCII survive."""
    keys = [
        f"{P1}odd/a b.png",
        f"{P1}odd/a+b.png",
        f"{P1}odd/100%.png",
        f"{P1}odd/%2F.png",
        f"{P1}odd/caf\u00e9.png",
        f"{P1}odd/a&b<c>.png",
        f"{P1}odd/quote\"'.png",
        f"{P1}odd/tab\there.png",
    ]
    total = put_objects(services, keys, lambda i: b"x" * (i + 1))
    put_objects(services, ["users/u/projects/p1 b/x.png"], varied)
    report = delete_prefix(services.s3, services.settings.bucket, P1)
    assert (report.deleted_count, report.failed_count, report.total_bytes) == (len(keys), 0, total)
    assert keys_in(services) == {"users/u/projects/p1 b/x.png"}


# -- volume ----------------------------------------------------------------------------------------------
def test_thousands_of_objects_in_batches_of_1000(services: Services) -> None:
    keys = layout_keys(2600)
    total = put_objects(services, keys, varied)
    put_objects(services, layout_keys(7, "p10"), varied)
    client = FaultyS3(services.s3)  # no fault configured: counts calls only
    report = delete_prefix(client, services.settings.bucket, P1)  # type: ignore[arg-type]
    assert (report.deleted_count, report.failed_count, report.total_bytes) == (2600, 0, total)
    assert report.complete and report.continuation is None and report.errors == []
    # Batches of at most 1000; past the first page the prefix is listed as LISTERS key ranges, each of
    # which may end in a short page.
    assert max(client.batch_sizes) == 1000 and sum(client.batch_sizes) == 2600
    assert len(client.batch_sizes) <= 3 + LISTERS - 1
    assert keys_in(services, P1) == set()
    assert len(keys_in(services)) == 7

    again = delete_prefix(services.s3, services.settings.bucket, P1)  # redelivery is harmless
    assert again.to_dict() == DeleteReport().to_dict()


def test_progress_callback_and_dry_run(services: Services) -> None:
    keys = layout_keys(120)
    total = put_objects(services, keys, varied)
    bucket = services.settings.bucket
    dry = delete_prefix(services.s3, bucket, P1, dry_run=True, page_size=50)
    assert (dry.deleted_count, dry.total_bytes) == (120, total)
    assert len(keys_in(services)) == 120
    seen: list[tuple[int, int]] = []
    report = delete_prefix(services.s3, bucket, P1, page_size=50, on_progress=lambda n, b: seen.append((n, b)))
    assert max(n for n, _ in seen) <= 50 and len(seen) <= 3 + LISTERS - 1
    assert (sum(n for n, _ in seen), sum(b for _, b in seen)) == (120, total)
    assert report.deleted_count == 120 and keys_in(services) == set()


def test_start_after_resumes_past_a_key(services: Services) -> None:
    keys = layout_keys(40)
    put_objects(services, keys, varied)
    report = delete_prefix(services.s3, services.settings.bucket, P1, start_after=keys[24])
    assert report.deleted_count == 15
    assert sorted(keys_in(services)) == keys[:25]


# -- failures ----------------------------------------------------------------------------------------
def test_per_key_failures_are_retried_then_reported(services: Services) -> None:
    """Fault injection: DeleteObjects reports InternalError for some keys, once or on every attempt."""
    keys = layout_keys(250)
    sizes = {k: i % 17 for i, k in enumerate(keys)}
    put_objects(services, keys, varied)
    flaky, stuck = set(keys[10:40]), {keys[3], keys[120], keys[249]}
    client = FaultyS3(services.s3)
    client.fail_keys(flaky, "InternalError", times=1)
    client.fail_keys(stuck, "InternalError")
    report = delete_prefix(client, services.settings.bucket, P1, page_size=100, retry_backoff=0.001)  # type: ignore[arg-type]
    assert report.failed_count == 3
    assert report.deleted_count == 247
    assert report.total_bytes == sum(size for k, size in sizes.items() if k not in stuck)
    assert sorted(e["key"] for e in report.errors) == sorted(stuck)
    for error in report.errors:
        assert error["code"] == "InternalError"
        assert error["message"] == "We encountered an internal error."
    for key in stuck:
        assert client.attempts[key] == KEY_RETRIES + 1
    for key in flaky:
        assert client.attempts[key] == 2
    assert keys_in(services) == stuck
    assert report.complete


def test_whole_request_throttling_is_retried(services: Services) -> None:
    """Fault injection: the first two DeleteObjects calls fail as a whole with SlowDown."""
    keys = layout_keys(60)
    total = put_objects(services, keys, varied)
    client = FaultyS3(services.s3)
    client.fail("delete_objects", "SlowDown", times=2)
    report = delete_prefix(client, services.settings.bucket, P1, retry_backoff=0.001)  # type: ignore[arg-type]
    assert (report.deleted_count, report.failed_count, report.total_bytes) == (60, 0, total)
    assert client.calls["delete_objects"] == 3
    assert keys_in(services) == set()


def test_throttling_that_never_ends_is_reported_per_key(services: Services) -> None:
    """Fault injection: every DeleteObjects call is throttled; every key is reported, none is lost."""
    keys = layout_keys(30)
    put_objects(services, keys, varied)
    client = FaultyS3(services.s3)
    client.fail("delete_objects", "SlowDown")  # never ends
    report = delete_prefix(client, services.settings.bucket, P1, retry_backoff=0.001)  # type: ignore[arg-type]
    assert (report.deleted_count, report.failed_count, report.total_bytes) == (0, 30, 0)
    assert {e["code"] for e in report.errors} == {"SlowDown"}
    assert sorted(e["key"] for e in report.errors) == keys
    assert client.calls["delete_objects"] == KEY_RETRIES + 1
    assert len(keys_in(services)) == 30


def test_errors_are_capped_but_counts_stay_exact(services: Services) -> None:
    """Fault injection: 150 keys fail on every attempt; the report lists 100 of them and counts 150."""
    keys = layout_keys(180)
    put_objects(services, keys, varied)
    stuck = set(keys[:150])
    client = FaultyS3(services.s3)
    client.fail_keys(stuck, "InternalError")
    report = delete_prefix(client, services.settings.bucket, P1, page_size=40, retry_backoff=0.001)  # type: ignore[arg-type]
    assert report.failed_count == 150
    assert len(report.errors) == MAX_REPORTED_ERRORS
    assert {e["key"] for e in report.errors} <= stuck
    assert report.deleted_count == 30
    assert len(keys_in(services)) == 150


def test_merge_keeps_counts_exact_past_the_cap() -> None:
    first = DeleteReport(deleted_count=5, total_bytes=50)
    first.add_errors([{"key": f"a{i}", "code": "X", "message": ""} for i in range(80)])
    second = DeleteReport(deleted_count=7, total_bytes=70, complete=False, continuation="k")
    second.add_errors([{"key": f"b{i}", "code": "X", "message": ""} for i in range(90)])
    second.failed_count += 10  # errors it could no longer list
    first.merge(second)
    assert (first.deleted_count, first.total_bytes, first.failed_count) == (12, 120, 180)
    assert len(first.errors) == MAX_REPORTED_ERRORS
    assert (first.complete, first.continuation) == (False, "k")


# -- time budget -------------------------------------------------------------------------------------
def test_a_time_budget_yields_a_continuation_that_finishes_the_job(services: Services) -> None:
    """Fault injection: each DeleteObjects is slowed by 50 ms so a 0.1 s budget stops mid-prefix
    (12 pages, 2 workers, at most 4 pages in flight: submitting the last page needs >= 0.2 s)."""
    keys = layout_keys(600)
    sizes = {k: i % 17 for i, k in enumerate(keys)}
    put_objects(services, keys, varied)
    put_objects(services, layout_keys(4, "p10"), varied)
    client = FaultyS3(services.s3)
    client.delay("delete_objects", 0.05)
    bucket = services.settings.bucket

    total = DeleteReport()
    continuation: str | None = None
    calls = 0
    while True:
        calls += 1
        report = delete_prefix(
            client,  # type: ignore[arg-type]
            bucket,
            P1,
            deadline=Deadline.after(0.1),
            start_after=continuation,
            page_size=50,
            workers=2,
        )
        total.merge(report)
        if report.complete:
            assert report.continuation is None
            break
        assert report.continuation
        assert report.deleted_count >= 1  # progress on every call
        left = keys_in(services, P1)
        assert all(key > report.continuation for key in left)  # nothing at or before it is left
        assert sum(sizes[k] for k in left) == sum(sizes.values()) - total.total_bytes
        continuation = report.continuation
        assert calls < 100
    assert calls >= 2
    assert (total.deleted_count, total.failed_count, total.total_bytes) == (600, 0, sum(sizes.values()))
    assert keys_in(services, P1) == set()
    assert len(keys_in(services)) == 4


def test_an_expired_budget_deletes_nothing_and_resumes_where_it_was(services: Services) -> None:
    """The caller decides about guaranteed progress (scenestore.cleanup wraps its deadline for that)."""
    keys = layout_keys(30)
    put_objects(services, keys, varied)
    bucket = services.settings.bucket
    report = delete_prefix(services.s3, bucket, P1, deadline=Deadline.after(0), start_after=keys[4])
    assert (report.deleted_count, report.complete, report.continuation) == (0, False, keys[4])
    assert sorted(keys_in(services)) == keys


# -- concurrency and memory ------------------------------------------------------------------------------
def test_pages_in_flight_are_bounded_and_overlap(services: Services) -> None:
    """Fault injection (slowness only): deletes take 30 ms, so listing runs ahead until the bound stops it.

    Memory is flat because at most ``2 * workers`` pages are listed but not yet deleted, however many
    objects the prefix holds; the deletes run concurrently with each other and with listing."""
    keys = layout_keys(400)
    put_objects(services, keys, varied)
    client = FaultyS3(services.s3)
    client.delay("delete_objects", 0.03)
    outstanding: list[int] = []  # after each page listed: pages listed but not yet deleted
    client.after("list_objects_v2", lambda call: outstanding.append(call.n - client.completed["delete_objects"]))
    workers = 2
    report = delete_prefix(client, services.settings.bucket, P1, page_size=10, workers=workers, listers=1)  # type: ignore[arg-type]
    assert report.deleted_count == 400
    assert client.calls["list_objects_v2"] >= 40
    assert 2 <= max(outstanding) <= 2 * workers
    assert client.max_active["delete_objects"] == workers


def test_other_callers_of_the_client_still_get_botocore_parsing(services: Services) -> None:
    """The lean-parse hooks act only inside delete_prefix; a normal listing still has dates and ETags."""
    put_objects(services, layout_keys(3) + layout_keys(2, "p2"), varied)
    delete_prefix(services.s3, services.settings.bucket, P1)
    listing = services.s3.list_objects_v2(Bucket=services.settings.bucket)
    assert [c["Key"] for c in listing["Contents"]] == layout_keys(2, "p2")
    assert isinstance(listing["Contents"][0]["LastModified"], datetime)
    assert listing["Contents"][0]["ETag"]
    deleted = services.s3.delete_objects(
        Bucket=services.settings.bucket, Delete={"Objects": [{"Key": k} for k in layout_keys(2, "p2")]}
    )
    assert len(deleted["Deleted"]) == 2


class _NoEvents:
    """A client wrapper without ``meta`` (as a hand-written fake might be): the lean parse cannot hook in."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def list_objects_v2(self, **kwargs: Any) -> Any:
        return self._real.list_objects_v2(**kwargs)

    def delete_objects(self, **kwargs: Any) -> Any:
        return self._real.delete_objects(**kwargs)


def test_without_the_hooks_botocore_parsing_gives_the_same_result(services: Services) -> None:
    keys = [f"{P1}odd/a b.png", f"{P1}odd/a+b.png", f"{P1}odd/100%.png", *layout_keys(20)]
    total = put_objects(services, keys, varied)
    report = delete_prefix(_NoEvents(services.s3), services.settings.bucket, P1, page_size=7)  # type: ignore[arg-type]
    assert (report.deleted_count, report.failed_count, report.total_bytes) == (len(keys), 0, total)
    assert keys_in(services) == set()
