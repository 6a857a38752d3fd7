"""Cleanup's S3 requests share one in-flight limit per invocation (issue 12, contract section 5).

The local S3 server is never slow, so the slowness that lets requests pile up is injected by wrapping the real
client (``tests.support.s3faults.FaultyS3``: delays only, every call still reaches the server).
"""

from __future__ import annotations

from scenestore.cleanup import delete_target
from scenestore.events import DeletionRequest
from scenestore.services import Services

from tests.support.s3faults import FaultyS3, with_s3
from tests.support.seed import add_scene, image, keys_in, put_objects

REQUEST = DeletionRequest(target="project", user_id="u", project_id="p")


def seed(services: Services, scenes: int) -> list[str]:
    legacy = [f"media/legacy-{i:03d}.jpg" for i in range(scenes)]
    put_objects(services, [image("u", "p", f"s{i}") for i in range(scenes)] + legacy)
    for i, key in enumerate(legacy):
        add_scene(services, f"s{i}", "p", media=key)
    return legacy


def test_heads_and_deletes_stay_within_a_fixed_limit(services: Services) -> None:
    """GIVEN 40 legacy keys and HEADs that take 20 ms WHEN the project is deleted with ``workers=3`` THEN never
    more than 3 HEADs are in flight, they do overlap, and everything is deleted."""
    seed(services, 40)
    faulty = FaultyS3(services.s3)
    faulty.delay("head_object", 0.02)

    result = delete_target(REQUEST, services=with_s3(services, faulty), workers=3).to_dict()

    assert (result["deleted_count"], result["failed_count"], result["complete"]) == (80, 0, True)
    assert 2 <= faulty.max_active["head_object"] <= 3
    assert keys_in(services) == set()


def test_the_default_limit_is_adaptive_and_starts_at_eight(services: Services) -> None:
    """Without ``workers`` the invocation's limit is adaptive and starts at ``S3_CONCURRENCY`` (8): 40 HEADs of
    50 ms each run at least 8 at a time."""
    seed(services, 40)
    faulty = FaultyS3(services.s3)
    faulty.delay("head_object", 0.05)

    result = delete_target(REQUEST, services=with_s3(services, faulty)).to_dict()

    assert (result["deleted_count"], result["failed_count"]) == (80, 0)
    assert faulty.max_active["head_object"] >= 8
    assert keys_in(services) == set()
