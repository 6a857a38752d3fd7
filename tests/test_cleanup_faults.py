"""Per-key DeleteObjects failures and SlowDown throttling (contract section 5: retried, then reported).

The local S3 server never fails a key or throttles, so these tests wrap the real client in
``tests.support.s3faults.FaultyS3``, which injects only that fault and passes every other call through.
"""

from __future__ import annotations

from scenestore.cleanup import delete_target
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
    THEN both are reported with S3's code, everything else is deleted, and a later redelivery finishes."""
    keys = seed(services)
    stuck = {image("u", "p", "s3"), "legacy.jpg"}
    faulty = FaultyS3(services.s3)
    faulty.fail_keys(stuck, "AccessDenied")

    result = delete_target(REQUEST, services=with_s3(services, faulty)).to_dict()

    assert result["failed_count"] == 2
    assert {(e["key"], e["code"]) for e in result["errors"]} == {(k, "AccessDenied") for k in stuck}
    assert result["deleted_count"] == len(keys) - 2
    assert result["complete"] is True
    assert keys_in(services) == stuck
    assert faulty.calls["delete_objects"] >= 2 * 4  # each failing batch: first try + 3 retries

    again = delete_target(REQUEST, services=services).to_dict()
    assert (again["deleted_count"], again["failed_count"]) == (2, 0)
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
