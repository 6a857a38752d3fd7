"""Listing a large prefix as several key ranges side by side (issue 12), against the real moto server.

The ranges must partition the keys exactly whatever they are (so nothing is deleted twice or missed), the split
points must come from the prefix's own tree, and a run cut short by its deadline must still resume without
losing or double-reporting a key. Slowness and per-key failures are injected by wrapping the real client
(moto produces neither); each such test says so.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scenestore.budget import Deadline
from scenestore.key_ranges import KeyRange, candidate_points, choose_points, ranges_from
from scenestore.keys import scene_key
from scenestore.prefix_delete import KEY_RETRIES, DeleteReport, delete_prefix
from scenestore.services import Services

from tests.support.s3faults import Call, FaultyS3
from tests.support.seed import P1, keys_in, layout_keys, put_objects, varied

KEY = st.text(alphabet="ab/!.-~0", min_size=1, max_size=6)


@given(keys=st.sets(KEY, max_size=40), points=st.sets(KEY, max_size=5), after=st.none() | KEY)
def test_ranges_partition_any_keys_exactly(keys: set[str], points: set[str], after: str | None) -> None:
    """Every key after ``after`` is in exactly one range, whatever the keys and split points are."""
    ranges = ranges_from(after, sorted(p for p in points if after is None or p > after))
    for key in keys:
        holders = [r for r in ranges if r.holds(key)]
        assert len(holders) == (0 if after is not None and key <= after else 1)


def test_a_range_is_open_or_closed_on_each_side() -> None:
    middle = KeyRange("b", "d")
    assert [middle.holds(k) for k in ("b", "b0", "d", "d0")] == [False, True, True, False]
    assert KeyRange().holds("") and KeyRange(None, "d").holds("a") and not KeyRange("b").holds("a")


def _project_tree(scenes: int, per_scene: int = 10) -> list[str]:
    keys = [scene_key("u", "p1", f"s{i // per_scene:04d}", "image", f"{i:05d}.png") for i in range(scenes * per_scene)]
    return [*keys, f"{P1}output/final.mp4", f"{P1}output/draft.mp4"]


def test_split_points_come_from_the_tree_and_balance_it(services: Services) -> None:
    keys = _project_tree(60)
    put_objects(services, keys, varied)
    bucket = services.settings.bucket
    ordered = sorted(keys)
    after = ordered[99]
    candidates = candidate_points(services.s3, bucket, P1, after=after, parts=4)
    assert len(candidates) >= 4 * 2 and candidates == sorted(candidates)
    points = choose_points(candidates, 4)
    assert 1 <= len(points) <= 3
    assert points == sorted(set(points)) and all(p > after for p in points)
    ranges = ranges_from(after, points)
    sizes = [sum(1 for k in ordered if r.holds(k)) for r in ranges]
    assert sum(sizes) == len(ordered) - 100
    assert min(sizes) >= (len(ordered) - 100) // (4 * 2)  # one entry per scene: close to even


def test_a_flat_prefix_has_no_split_points(services: Services) -> None:
    put_objects(services, [f"media/{i:04d}.jpg" for i in range(30)])
    bucket = services.settings.bucket
    assert candidate_points(services.s3, bucket, "media/", after="media/0009.jpg", parts=4) == []
    assert candidate_points(services.s3, bucket, "media/", after=None, parts=1) == []
    assert choose_points([], 4) == [] and choose_points(["a", "b"], 1) == []


def _range_starts(client: FaultyS3) -> list[Call]:
    """Range listings that started somewhere other than the first page (StartAfter, no Delimiter)."""
    starts: list[Call] = []
    client.after(
        "list_objects_v2",
        lambda call: (
            starts.append(call)
            if "StartAfter" in call.kwargs and "Delimiter" not in call.kwargs and "ContinuationToken" not in call.kwargs
            else None
        ),
    )
    return starts


@pytest.mark.parametrize("split_early", [False, True])
def test_several_listers_delete_every_key_exactly_once(services: Services, split_early: bool) -> None:
    """Keys sitting exactly on and around split points (``s0150``, ``s0150!x``, ``s0150.png``) are deleted once,
    whether the tree is read after the first page or beside it."""
    keys = _project_tree(60)
    awkward = [f"{P1}scenes/s{n:04d}{tail}" for n in range(0, 60, 3) for tail in ("", "!x", ".png", "/")]
    total = put_objects(services, keys + awkward, varied)
    neighbours = layout_keys(5, "p10")
    put_objects(services, neighbours)
    client = FaultyS3(services.s3)  # no fault configured: counts calls only
    starts = _range_starts(client)
    report = delete_prefix(client, services.settings.bucket, P1, listers=3, split_early=split_early, page_size=100)  # type: ignore[arg-type]
    assert len(starts) >= 1  # the prefix was listed as more than one range
    assert (report.deleted_count, report.failed_count, report.total_bytes) == (len(keys) + len(awkward), 0, total)
    assert sum(client.batch_sizes) == len(keys) + len(awkward)  # no key was sent twice
    assert client.attempts.most_common(1)[0][1] == 1
    assert report.complete and report.continuation is None
    assert keys_in(services) == set(neighbours)


def test_one_lister_is_one_listing_in_key_order(services: Services) -> None:
    put_objects(services, _project_tree(30), varied)
    client = FaultyS3(services.s3)
    starts = _range_starts(client)
    report = delete_prefix(client, services.settings.bucket, P1, listers=1, page_size=50)  # type: ignore[arg-type]
    assert report.deleted_count == 302 and starts == []
    assert client.calls["list_objects_v2"] == 7  # 302 keys in pages of 50, and no tree listing
    assert keys_in(services, P1) == set()


def test_a_small_prefix_is_not_split(services: Services) -> None:
    """One page holds it all: no tree listing, no second range (a scene is one list and one delete)."""
    put_objects(services, _project_tree(20), varied)
    client = FaultyS3(services.s3)
    report = delete_prefix(client, services.settings.bucket, P1, listers=4)  # type: ignore[arg-type]
    assert report.deleted_count == 202
    assert client.calls["list_objects_v2"] == 1 and client.calls["delete_objects"] == 1


def test_a_deadline_across_ranges_resumes_and_reports_each_failure_once(services: Services) -> None:
    """Fault injection: deletes slowed by 40 ms so a 0.1 s budget stops mid-prefix while three ranges are
    listed, and some keys in every range fail on every attempt. Over the loop of continuations every key is
    deleted or reported failed exactly once, nothing at or before a continuation is left undone."""
    keys = _project_tree(90)
    sizes = {k: i % 17 for i, k in enumerate(keys)}
    put_objects(services, keys, varied)
    ordered = sorted(keys)
    stuck = set(ordered[5::97])
    client = FaultyS3(services.s3)
    client.delay("delete_objects", 0.04)
    client.fail_keys(stuck, "InternalError")
    total = DeleteReport()
    continuation: str | None = None
    reported: list[str] = []
    calls = 0
    while calls < 200:
        calls += 1
        report = delete_prefix(
            client,  # type: ignore[arg-type]
            services.settings.bucket,
            P1,
            deadline=Deadline.after(0.1),
            start_after=continuation,
            page_size=40,
            workers=2,
            listers=3,
            retry_backoff=0.001,
        )
        total.merge(report)
        reported += [e["key"] for e in report.errors]
        if report.complete:
            break
        assert report.continuation
        left = keys_in(services, P1) - stuck
        assert all(key > report.continuation for key in left)
        continuation = report.continuation
    assert calls >= 2
    assert sorted(reported) == sorted(stuck)  # each stuck key reported once, in one run
    assert (total.deleted_count, total.failed_count) == (len(keys) - len(stuck), len(stuck))
    assert total.total_bytes == sum(size for k, size in sizes.items() if k not in stuck)
    assert keys_in(services, P1) == stuck
    assert max(client.attempts[k] for k in stuck) >= KEY_RETRIES + 1


def test_pages_held_by_several_listers_stay_bounded(services: Services) -> None:
    """Fault injection (slowness only): with deletes at 30 ms the listers run ahead until the limit stops
    them; pages listed but not deleted never exceed what the in-flight limit and the listers can hold."""
    keys = _project_tree(60)
    put_objects(services, keys, varied)
    client = FaultyS3(services.s3)
    client.delay("delete_objects", 0.03)
    outstanding: list[int] = []
    listed = [0]

    def count(call: Call) -> None:
        if "Delimiter" not in call.kwargs:
            listed[0] += 1
            outstanding.append(listed[0] - client.completed["delete_objects"])

    client.after("list_objects_v2", count)
    workers, listers = 2, 3
    report: Any = delete_prefix(
        client,  # type: ignore[arg-type]
        services.settings.bucket,
        P1,
        page_size=10,
        workers=workers,
        listers=listers,
    )
    assert report.deleted_count == len(keys)
    # in flight (workers) + one page held by each lister + a page each lister may read past its range
    assert max(outstanding) <= workers + 2 * listers
    assert client.max_active["delete_objects"] == workers


def test_the_first_range_is_closed_past_what_it_claimed_while_the_tree_was_read() -> None:
    """The first range goes on listing while split points are read; closing it never gives a claimed key to a
    later range, and a page already fetched is cut at the new end when it is claimed."""
    from scenestore.prefix_delete import _Lister
    from scenestore.storage import ObjectInfo

    def page(*names: str) -> list[ObjectInfo]:
        return [ObjectInfo(n, 1, "") for n in names]

    pages = iter([page("a/1", "b/1"), page("c/1", "d/1", "e/1"), page("f/1")])
    first = _Lister(0, KeyRange(None), pages)
    assert first.next_page() == page("a/1", "b/1")  # claimed before the split points arrive
    points = first.close_at(["a", "b", "c", "d", "e"], parts=2)
    assert points and all(p > "b/1" for p in points)  # "a" and "b" lie in what it already claimed
    assert first.key_range.upto == points[0]
    claimed = first.next_page()
    assert claimed and all(o.key <= points[0] for o in claimed) and claimed[-1].key < "e/1"
    assert first.next_page() is None  # past its end it stops, without reading further
    later = ranges_from(points[0], points[1:])
    every = ["a/1", "b/1", "c/1", "d/1", "e/1", "f/1"]
    for key in every:
        owners = [KeyRange(None, points[0]), *later]
        assert sum(r.holds(key) for r in owners) == 1


def test_a_first_range_that_already_reached_the_end_is_not_split() -> None:
    from scenestore.prefix_delete import _Lister

    first = _Lister(0, KeyRange(None), iter(()))
    first.finish(complete=True)
    assert first.close_at(["a", "b"], parts=2) == []
    assert first.key_range.upto is None


def test_split_early_reads_the_tree_beside_the_first_page(services: Services) -> None:
    """Fault injection (slowness only): plain listings take 50 ms. With ``split_early`` the first tree listing
    is sent before the first page has come back; a small prefix then costs those few light listings, no more."""
    put_objects(services, _project_tree(30), varied)
    client = FaultyS3(services.s3)
    client.delay("list_objects_v2", 0.05)
    order: list[str] = []
    client.before("list_objects_v2", lambda call: order.append("tree" if "Delimiter" in call.kwargs else "page"))
    client.after(
        "list_objects_v2", lambda call: order.append("tree done" if "Delimiter" in call.kwargs else "page done")
    )
    report = delete_prefix(client, services.settings.bucket, P1, split_early=True, page_size=50)  # type: ignore[arg-type]
    assert report.deleted_count == 302
    assert order.index("tree") < order.index("page done")

    put_objects(services, _project_tree(3), varied)
    small = FaultyS3(services.s3)
    report = delete_prefix(small, services.settings.bucket, P1, split_early=True)  # type: ignore[arg-type]
    assert report.deleted_count == 32 and report.complete
    assert small.calls["delete_objects"] == 1
    # the page, and the tree it did not need: the prefix, then output/ and scenes/
    assert small.calls["list_objects_v2"] <= 1 + 1 + 2


def test_a_level_larger_than_one_delimiter_page_is_read_whole(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delimiter pages of 10 entries (the real page is 1,000): the split points still spread over all 60
    scenes, not just the first page's 10, so the ranges stay balanced."""
    import scenestore.key_ranges as key_ranges

    keys = _project_tree(60)
    put_objects(services, keys, varied)
    monkeypatch.setattr(key_ranges, "LIST_PAGE", 10)
    candidates = candidate_points(services.s3, services.settings.bucket, P1, after=None, parts=2)
    assert len(candidates) == 60  # one per scene: six delimiter pages of scenes/
    ranges = ranges_from(None, choose_points(candidates, 2))
    sizes = [sum(1 for k in keys if r.holds(k)) for r in ranges]
    assert len(sizes) == 2 and min(sizes) >= len(keys) // 3


def test_each_split_point_sits_a_little_past_even() -> None:
    """Each range is a little larger than the next, so an earlier range tends to finish last (its read past
    its end then finds the next range already deleted)."""
    from scenestore.key_ranges import LATER_SHARE_LESS

    candidates = [f"c{i:03d}" for i in range(100)]
    assert choose_points(candidates, 2) == [candidates[int(100 * (0.5 + LATER_SHARE_LESS))]]
    four = choose_points(candidates, 4)
    assert four == sorted(four) and len(four) == 3
    assert all(candidates.index(p) > 100 * i // 4 for i, p in enumerate(four, start=1))


@pytest.mark.parametrize(("target", "tree_read"), [("project", True), ("scene", False)])
def test_delete_project_plans_its_split_early_and_a_scene_never(
    services: Services, target: str, tree_read: bool
) -> None:
    """A project's prefix has its tree read beside its first page (it is usually large); a scene's never."""
    from scenestore.cleanup import delete_target
    from scenestore.events import DeletionRequest

    from tests.support.s3faults import with_s3

    put_objects(services, _project_tree(2), varied)
    faulty = FaultyS3(services.s3)
    request = (
        DeletionRequest("project", "p1", "u") if target == "project" else DeletionRequest("scene", "p1", "u", "s0000")
    )
    result = delete_target(request, services=with_s3(services, faulty))
    assert result.report.deleted_count == (22 if target == "project" else 10)
    trees = faulty.calls["list_objects_v2"] - 1  # all but the one page
    assert (trees > 0) is tree_read
