"""Health of the two dependencies, each probed with one cheap call."""

from __future__ import annotations

from scenestore.services import Services, get_services


def check_health(services: Services | None = None) -> dict[str, str]:
    services = services or get_services()
    status = {"s3": "ok", "mongodb": "ok"}
    try:
        services.s3.head_bucket(Bucket=services.settings.bucket)
    except Exception as exc:
        status["s3"] = f"down: {type(exc).__name__}"
    try:
        services.mongo.admin.command("ping")
    except Exception as exc:
        status["mongodb"] = f"down: {type(exc).__name__}"
    return status
