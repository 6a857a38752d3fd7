"""The migrate-batch Lambda handler: the contract's input and output, validation, and the time budget."""

from __future__ import annotations

from typing import Any

import pytest
from scenestore.errors import InvalidRequest
from scenestore.migration import plan_shards
from scenestore.migration.config import LAMBDA_MARGIN
from scenestore.services import Services

from functions.migrate_batch.handler import lambda_handler
from tests.support.lambda_context import FakeLambdaContext
from tests.support.migration import assert_converged
from tests.support.seed import Seeder

OUTPUT_KEYS = {"run_id", "cursor", "done", "scanned", "migrated", "skipped", "failed", "bytes_copied", "errors"}


def test_the_output_is_exactly_the_contract(services: Services, lambda_context: FakeLambdaContext) -> None:
    seed = Seeder(services)
    seed.put("a.jpg")
    seed.scene(seed.project("p1"), "s1", media="a.jpg")

    out = lambda_handler({"run_id": "r1", "cursor": None, "batch_size": 100, "dry_run": False}, lambda_context)

    assert set(out) == OUTPUT_KEYS
    assert out == {
        "run_id": "r1",
        "cursor": "projects:str:p1",
        "done": True,
        "scanned": 2,
        "migrated": 1,
        "skipped": 0,
        "failed": 0,
        "bytes_copied": len(seed.expected[("scenes", repr("s1"), "media.storageKey")]),
        "errors": [],
    }


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({}, "run_id"),
        ({"run_id": "bad/id"}, "run_id"),
        ({"run_id": "r", "batch_size": 0}, "batch_size"),
        ({"run_id": "r", "batch_size": 1001}, "batch_size"),
        ({"run_id": "r", "batch_size": "lots"}, "batch_size"),
        ({"run_id": "r", "dry_run": "maybe"}, "dry_run"),
        ({"run_id": "r", "cursor": "somewhere"}, "cursor"),
        ({"run_id": "r", "cursor": "scenes:oid:nothex"}, "cursor"),
        ({"run_id": "r", "shard": {"gte": "str:b", "lt": "str:a"}}, "shard"),
        ({"run_id": "r", "shard": {"gte": "b"}}, "shard"),
        ({"run_id": "r", "shard": {"from": "str:a"}}, "shard"),
    ],
)
def test_invalid_input_is_a_clear_error(
    services: Services, lambda_context: FakeLambdaContext, event: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        lambda_handler(event, lambda_context)
    assert caught.value.code == "invalid_request"
    assert f"{field}" in caught.value.message and "invalid migrate-batch input" in caught.value.message


def test_a_state_machine_loop_over_planned_shards_feeding_outputs_back(services: Services) -> None:
    """Each invocation has barely any time left (the Lambda is about to time out), so it stops early with a
    cursor; feeding the output back as the next input (extra keys are ignored) finishes every shard."""
    seed = Seeder(services)
    p = seed.project("p1")
    for i in range(25):
        seed.put(f"k/{i}.jpg")
        seed.scene(p, f"s{i:02}", media=f"k/{i}.jpg")
    invocations = 0
    shards = plan_shards(services.db, 2)
    for shard in shards:
        event: dict[str, Any] = {"run_id": "sfn-1", "cursor": None, "batch_size": 5, "dry_run": False, "shard": shard}
        while True:
            # 250 ms past the margin: short enough that an invocation stops early, long enough that a loaded
            # machine still moves a batch in it (at 50 ms a busy worker could loop without progress)
            context = FakeLambdaContext(remaining_ms=int(LAMBDA_MARGIN * 1000) + 250)
            out = lambda_handler(event, context)
            invocations += 1
            assert invocations < 500, "no progress: every invocation stopped before moving anything"
            assert out["failed"] == 0
            if out["done"]:
                break
            event = {**out, "batch_size": 5, "dry_run": False, "shard": shard}
    assert invocations > len(shards)  # some invocation stopped early and was continued from its output
    assert_converged(services, seed)


def test_a_lambda_with_no_time_left_records_nothing_half_done(services: Services) -> None:
    seed = Seeder(services)
    seed.put("a.jpg")
    seed.scene(seed.project("p1"), "s1", media="a.jpg")

    out = lambda_handler({"run_id": "r1"}, FakeLambdaContext(remaining_ms=1000))

    assert (out["done"], out["cursor"], out["scanned"], out["migrated"]) == (False, None, 0, 0)
    assert services.db["scenes"].find_one({"_id": "s1"})["media"]["storageKey"] == "a.jpg"
