"""Per-key DeleteObjects failures and SlowDown throttling (contract section 5: retried, then reported).

The local S3 server never fails a key or throttles, so these tests wrap the real client in
``tests.support.s3faults.FaultyS3``, which injects only that fault and passes every other call through.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from scenestore.cleanup import DeletionIncomplete, delete_target
from scenestore.events import DeletionRequest
from scenestore.services import Services

from tests.support.s3faults import FaultyS3, with_s3
from tests.support.seed import add_scene, image, keys_in, put_objects

REQUEST = DeletionRequest(target="project", user_id="u", project_id="p")


def seed(services: Services) -> list[str]:
    keys = [image("u", "p", f"s{i}") for i in range(6)] + ["legacy.jpg"]
    put_objects(services, keys)
    add_scene(services, "s0", "p", media="legacy.jpg")
    return keys


def test_per_key_errors_are_retried_then_reported_and_the_rest_is_deleted(services: Services) -> None:
    """GIVEN S3 refusing one prefix key and one legacy key on every attempt WHEN the project is deleted
    THEN both are reported with S3's code, everything else is deleted, the answer asks for a recheck, the
    recheck fails with DeletionIncomplete naming both, and once the fault is gone the same recheck finishes."""
    keys = seed(services)
    stuck = {image("u", "p", "s3"), "legacy.jpg"}
    faulty = FaultyS3(services.s3)
    faulty.fail_keys(stuck, "AccessDenied")

    result = delete_target(REQUEST, services=with_s3(services, faulty)).to_dict()

    assert result["failed_count"] == 2
    assert {(e["key"], e["code"]) for e in result["errors"]} == {(k, "AccessDenied") for k in stuck}
    assert result["deleted_count"] == len(keys) - 2
    assert result["complete"] is False and result["continuation"], "keys were left: one more invocation rechecks"
    assert keys_in(services) == stuck
    assert faulty.calls["delete_objects"] >= 2 * 4  # each failing batch: first try + 3 retries

    recheck = replace(REQUEST, continuation=result["continuation"])
    with pytest.raises(DeletionIncomplete) as failed:
        delete_target(recheck, services=with_s3(services, faulty))
    assert failed.value.failed_count == 2
    assert sorted(e["key"] for e in json.loads(str(failed.value))["errors"]) == sorted(stuck)

    again = delete_target(recheck, services=services).to_dict()  # the cause fixed: the same input goes through
    assert (again["deleted_count"], again["failed_count"], again["complete"]) == (2, 0, True)
    assert "rechecked" in {w["code"] for w in again["warnings"]}
    assert keys_in(services) == set()


def test_slowdown_is_retried_until_it_passes(services: Services) -> None:
    keys = seed(services)
    faulty = FaultyS3(services.s3)
    storm = faulty.fail("delete_objects", "SlowDown", times=2)

    result = delete_target(REQUEST, services=with_s3(services, faulty)).to_dict()

    assert storm.injected == 2
    assert (result["deleted_count"], result["failed_count"], result["errors"]) == (len(keys), 0, [])
    assert keys_in(services) == set()


def test_persistent_slowdown_is_reported_per_key_not_raised(services: Services) -> None:
    keys = seed(services)
    faulty = FaultyS3(services.s3)
    faulty.fail("delete_objects", "SlowDown")  # never ends

    result = delete_target(REQUEST, services=with_s3(services, faulty)).to_dict()

    assert result["deleted_count"] == 0
    assert result["failed_count"] == len(keys)
    assert {e["code"] for e in result["errors"]} == {"SlowDown"}
    assert keys_in(services) == set(keys)  # nothing lost, nothing claimed


def test_a_key_refused_in_the_first_of_three_rounds_fails_the_deletion_at_the_end(services: Services) -> None:
    """GIVEN a project of three rounds' work or more (a legacy batch, then two pages) on a zero time budget, and S3
    refusing one legacy key (a fault the local store cannot produce) WHEN the handler is looped on its
    continuations THEN the later rounds carry the failure, and the invocation after the last round raises
    DeletionIncomplete naming that key once, with the exact count; rounds one to three deleted everything else."""
    from scenestore.cleanup import DELETE_MARGIN_SECONDS
    from scenestore.services import use_services

    from functions.delete_project.handler import lambda_handler as delete_project
    from tests.support.lambda_context import FakeLambdaContext

    prefix_keys = [image("u", "p", "s1", f"{i:04d}.png") for i in range(1500)]
    put_objects(services, [*prefix_keys, "legacy.jpg"])
    add_scene(services, "s1", "p", media="legacy.jpg")
    faulty = FaultyS3(services.s3)
    faulty.fail_keys({"legacy.jpg"}, "AccessDenied")
    event = {"user_id": "u", "project_id": "p"}
    results: list[dict[str, object]] = []
    current = dict(event)
    with use_services(with_s3(services, faulty)), pytest.raises(DeletionIncomplete) as failed:
        for _ in range(10):
            result = delete_project(current, FakeLambdaContext(remaining_ms=int(DELETE_MARGIN_SECONDS * 1000)))
            results.append(result)
            current = {**event, "continuation": result["continuation"]}

    assert len(results) >= 3 and [r["failed_count"] for r in results] == [1] + [0] * (len(results) - 1)
    assert all(r["complete"] is False for r in results)
    detail = json.loads(str(failed.value))
    assert (detail["failed_count"], [e["key"] for e in detail["errors"]]) == (1, ["legacy.jpg"])
    assert keys_in(services) == {"legacy.jpg"}


def test_the_failures_a_continuation_carries_are_exact_in_count_listed_once_and_bounded_in_size() -> None:
    """Keys near S3's 1,024-byte limit: the carried list stops at CARRIED_ERROR_BYTES (the deletion loop's state
    must stay under Step Functions' 256 KiB), the count stays exact, a key failing twice is listed once."""
    from scenestore.cleanup import CARRIED_ERROR_BYTES, Continuation, Failures
    from scenestore.events import MAX_CONTINUATION_LENGTH

    errors = [{"key": f"legacy/{i:04d}" + "k" * 1010, "code": "AccessDenied", "message": "m" * 500} for i in range(150)]
    failures = Failures().plus(150, errors).plus(1, errors[:1])  # the first key again: not a new failure

    assert failures.count == 150 and not failures.complete_list
    assert len({e["key"] for e in failures.errors}) == len(failures.errors) < 150
    assert len(json.dumps(list(failures.errors))) <= CARRIED_ERROR_BYTES
    token = Continuation("prefix", "users/u/projects/p/x", "project:p:", failures).encode()
    assert len(token) <= MAX_CONTINUATION_LENGTH
    assert Continuation.decode(token, "project:p:").failures == failures
