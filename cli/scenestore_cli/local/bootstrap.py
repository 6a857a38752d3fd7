"""Prepare a bucket and a database for scenestore: what ``serve`` and the tests do before first use."""

from __future__ import annotations

from typing import Any

from scenestore import multipart
from scenestore.db import enable_pre_images, ensure_indexes
from scenestore.services import Services


def prepare(services: Services, *, pre_images: bool = True) -> dict[str, Any]:
    """Create the bucket with its CORS rule and the lifecycle rule that aborts incomplete multipart uploads,
    the indexes (the multipart records' TTL index too), and (local stack) change-stream pre-images."""
    services.store.ensure_bucket(
        cors_origins=services.settings.cors_origins, multipart_abort_days=services.settings.multipart_abort_days
    )
    indexes = [*ensure_indexes(services.db), *multipart.ensure_indexes(services.db)]
    if pre_images:
        enable_pre_images(services.db)
    return {"bucket": services.settings.bucket, "indexes": indexes}
