"""``BatchResult``'s counts are named once (``COUNTERS``): merging sums each of them and reports each of them."""

from __future__ import annotations

from dataclasses import fields

from scenestore.migration.models import COUNTERS, BatchResult


def test_counters_are_exactly_the_int_fields_of_a_result() -> None:
    counted = {f.name for f in fields(BatchResult) if f.type in ("int", int)}
    assert set(COUNTERS) == counted


def test_merge_sums_every_counter_and_takes_the_later_position() -> None:
    total = BatchResult(run_id="r", scanned=1, migrated=2, skipped=3, failed=4, bytes_copied=5)
    later = BatchResult(run_id="r", cursor="scenes:x", done=True, **dict.fromkeys(COUNTERS, 10))
    later.report("copy_failed", "boom")
    total.merge(later)
    assert total.counters() == {"scanned": 11, "migrated": 12, "skipped": 13, "failed": 15, "bytes_copied": 15}
    assert (total.cursor, total.done, len(total.errors)) == ("scenes:x", True, 1)
    assert total.to_dict()["failed"] == 15
