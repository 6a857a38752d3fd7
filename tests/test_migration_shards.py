"""Shards: ranges over a mixed-type ``_id`` space cover every document exactly once, and migrate concurrently."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from scenestore.db import SCENES
from scenestore.migration import BatchResult, plan_shards
from scenestore.migration.ids import decode_id, encode_id, sort_key
from scenestore.migration.models import Position
from scenestore.migration.runs import RUNS
from scenestore.migration.scan import ShardReader
from scenestore.migration.shards import Shard, check_coverage, plan
from scenestore.services import Services

from tests.support.migration import assert_converged, run_to_end
from tests.support.seed import Seeder

MIXED_IDS: list[Any] = [
    *(ObjectId() for _ in range(17)),
    "",
    "a",
    "a0",
    "scene-1",
    "scene-10",
    "scene-2",
    "Z",
    "\u00e9t\u00e9",
    0,
    -5,
    7,
    2.5,
]


def _read_all(services: Services, shard: Shard) -> list[Any]:
    reader = ShardReader(services.db, shard, Position(SCENES))
    found: list[Any] = []
    while batch := reader.take(4):
        found.extend(doc["_id"] for doc in batch)
    return found


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 40])
def test_planned_shards_cover_every_id_exactly_once(services: Services, k: int) -> None:
    services.db[SCENES].insert_many([{"_id": value, "project_id": "p"} for value in MIXED_IDS])

    shards = [Shard.from_dict(s) for s in plan_shards(services.db, k)]

    assert check_coverage(shards)
    assert len(shards) == min(k, len(MIXED_IDS))
    read = [value for shard in shards for value in _read_all(services, shard)]
    assert sorted(map(repr, read)) == sorted(map(repr, MIXED_IDS))  # each exactly once
    assert read == sorted(MIXED_IDS, key=sort_key)  # and in _id order across shards
    for value in MIXED_IDS:
        assert sum(shard.contains(value) for shard in shards) == 1


def test_plan_counts_ids_of_unsupported_types(services: Services) -> None:
    services.db[SCENES].insert_many([{"_id": "a"}, {"_id": {"compound": 1}}, {"_id": ObjectId()}])
    shard_plan = plan(services.db, 2)
    assert shard_plan.scenes == 2 and shard_plan.unsupported_ids == 1


def test_an_empty_collection_is_one_whole_shard(services: Services) -> None:
    assert plan_shards(services.db, 4) == [{"gte": None, "lt": None}]


ids = st.one_of(
    st.text(max_size=6),
    st.integers(min_value=-1000, max_value=1000),
    st.binary(min_size=12, max_size=12).map(ObjectId),
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(ids, min_size=1, max_size=30), cuts=st.lists(ids, max_size=6))
def test_any_boundaries_tile_the_space(values: list[Any], cuts: list[Any]) -> None:
    """Pure property: whatever the cut points, consecutive ranges put each value in exactly one shard."""
    edges = sorted({encode_id(c): c for c in cuts}.values(), key=sort_key)
    bounds: list[str | None] = [None, *(encode_id(e) for e in edges), None]
    shards = [Shard(gte=bounds[i], lt=bounds[i + 1]) for i in range(len(bounds) - 1)]
    assert check_coverage(shards)
    for value in values:
        assert sum(shard.contains(value) for shard in shards) == 1
        assert decode_id(encode_id(value)) == value


def test_shards_migrate_concurrently_and_the_run_is_done_only_when_all_are(services: Services) -> None:
    """Like the state machine's Map: one loop per shard, concurrently, same run."""
    seed = Seeder(services)
    projects = [seed.project(), seed.project("p-string")]
    for i in range(30):
        key = f"legacy/{i}.jpg"
        seed.put(key)
        seed.scene(projects[i % 2], f"scene-{i:02}" if i % 3 else None, media=key)
    shards = [Shard.from_dict(s) for s in plan_shards(services.db, 3)]
    results: dict[str, BatchResult] = {}
    statuses: list[str] = []

    def loop(shard: Shard) -> None:
        results[shard.id] = run_to_end(services, batch_size=4, shard=shard)
        statuses.append(services.db[RUNS].find_one({"_id": "run-1"})["status"])

    threads = [threading.Thread(target=loop, args=(shard,)) for shard in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert len(results) == 3
    assert sum(r.migrated for r in results.values()) == 30
    assert sum(r.scanned for r in results.values()) == 32  # 30 scenes + 2 projects, each read by one shard
    run = services.db[RUNS].find_one({"_id": "run-1"})
    assert run["status"] == "done" and len(run["shards"]) == 3
    assert statuses.count("done") >= 1 and statuses[-1] == "done"
    assert_converged(services, seed)
