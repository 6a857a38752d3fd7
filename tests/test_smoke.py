"""The local stack answers over real HTTP / wire protocol, and each test is isolated."""

from __future__ import annotations

from scenestore.health import check_health
from scenestore.services import Services


def test_health_reports_both_parts_ok(services: Services) -> None:
    assert check_health(services) == {"s3": "ok", "mongodb": "ok"}


def test_each_test_gets_a_fresh_bucket_and_database(services: Services) -> None:
    assert services.store.client.list_objects_v2(Bucket=services.settings.bucket).get("KeyCount") == 0
    assert services.db.scenes.count_documents({}) == 0
    services.store.put_bytes("legacy.jpg", b"x")
    assert services.store.head("legacy.jpg") is not None
