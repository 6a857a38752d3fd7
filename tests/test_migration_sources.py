"""The state machine's shards have no inventory: each batch lists its legacy sources instead of a HEAD each.

Against the real S3 server; ``FaultyS3`` (no fault configured) only counts the requests that reach it.
"""

from __future__ import annotations

from scenestore.migration import migrate_batch
from scenestore.migration.inventory import ListedSources
from scenestore.migration.objects import MIN_SETTLED_PER_PAGE
from scenestore.services import Services

from tests.support.migration import assert_converged, options, request
from tests.support.s3faults import FaultyS3, with_s3
from tests.support.seed import Seeder, put_objects


def test_a_shard_without_inventory_lists_its_sources_instead_of_heading_each(services: Services) -> None:
    """GIVEN 60 scenes whose legacy objects were written together, and one whose object is gone WHEN a shard
    runs as the state machine runs it (no inventory) THEN only the missing source is HEADed, and it is still
    reported ``source_missing`` and left untouched."""
    seed = Seeder(services)
    p = seed.project("p1")
    for i in range(60):
        seed.put(f"import/2021/{i:03}.jpg")
        seed.scene(p, f"s{i:03}", media=f"import/2021/{i:03}.jpg")
    seed.scene(p, "s999", media="import/2021/gone.jpg")
    counted = FaultyS3(services.s3)

    result = migrate_batch(request(batch_size=100), services=with_s3(services, counted), options=options())

    assert (result.migrated, result.skipped, result.failed) == (60, 1, 0)
    assert [e["code"] for e in result.errors] == ["source_missing"]
    assert counted.calls["head_object"] == 1  # the missing one, to be sure it is missing
    assert_converged(services, seed, allowed_legacy={"import/2021/gone.jpg"}, allowed_missing={"import/2021/gone.jpg"})


def test_dense_sources_take_one_listing_and_missing_ones_are_not_found(services: Services) -> None:
    keys = [f"legacy/{i:04}.png" for i in range(300)]
    put_objects(services, keys, body=b"12345")
    listed = ListedSources(services.store)

    found = listed.lookup([*keys[::2], "legacy/0007-missing.png"])

    assert set(found) == set(keys[::2])
    assert {info.size for info in found.values()} == {5} and all(info.etag for info in found.values())
    assert listed.requests == 1


def test_scattered_sources_give_up_listing_after_thin_pages(services: Services) -> None:
    """Sources far apart (each among many unrelated objects): two pages that settle almost nothing, then the
    rest is left to HEADs (the caller's, concurrent), so listing never costs much more than it saves."""
    filler = [f"bulk/{i:04}.bin" for i in range(600)]
    sources = [f"bulk/{i:04}.bin" for i in range(0, 600, 100)]
    put_objects(services, filler, body=b"x")
    listed = ListedSources(services.store)

    found = listed.lookup(sources)

    assert listed.requests == 2
    assert len(found) < len(sources) and set(found) <= set(sources)
    assert len(found) < 2 * MIN_SETTLED_PER_PAGE
