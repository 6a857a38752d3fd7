"""Prepare a bucket and a database for scenestore: what ``serve`` and the tests do before first use.

The bucket's CORS and lifecycle rules are set only on a bucket created here (the local S3 server's, or a missing
bucket on an external endpoint). A bucket that already exists (``serve --s3-endpoint`` against a team's dev R2
bucket) keeps its rules: they are checked, read-only, with ``scenestore preflight``'s checks, and what is missing is
reported with the command that fixes it.
"""

from __future__ import annotations

from typing import Any

from scenestore import multipart
from scenestore.db import enable_pre_images, ensure_indexes
from scenestore.services import Services
from scenestore.storage import is_missing


def prepare(services: Services, *, pre_images: bool = True, set_rules: bool = False) -> dict[str, Any]:
    """The bucket (created with its rules when missing; ``set_rules`` sets them on an existing one too, for tests
    that change a setting on their own bucket), the indexes (the multipart records' TTL index too), and (local
    stack) change-stream pre-images.

    ``bucket_created`` says whether the bucket was made here; ``bucket_rules`` lists the checks an existing
    bucket's rules did not pass (``{id, status, message, fix}``; empty when they are as the contract says).
    """
    existed = bucket_exists(services)
    if not existed or set_rules:
        services.store.ensure_bucket(
            cors_origins=services.settings.cors_origins, multipart_abort_days=services.settings.multipart_abort_days
        )
    rules = check_bucket_rules(services) if existed and not set_rules else []
    indexes = [*ensure_indexes(services.db), *multipart.ensure_indexes(services.db)]
    if pre_images:
        enable_pre_images(services.db)
    return {
        "bucket": services.settings.bucket,
        "bucket_created": not existed,
        "bucket_rules": rules,
        "indexes": indexes,
    }


def bucket_exists(services: Services) -> bool:
    from botocore.exceptions import ClientError

    try:
        services.s3.head_bucket(Bucket=services.settings.bucket)
    except ClientError as exc:
        if not is_missing(exc):
            raise
        return False
    return True


def check_bucket_rules(services: Services) -> list[dict[str, Any]]:
    """The existing bucket's CORS (a browser's real preflight per ``SCENESTORE_CORS_ORIGINS``, ``ETag`` exposed) and
    lifecycle rule, as preflight checks them, writing nothing; the checks that did not pass."""
    from scenestore_cli.preflight_checks import Run
    from scenestore_cli.preflight_checks.s3 import check_rules

    run = Run(
        settings=services.settings,
        s3=services.s3,
        store=services.store,
        db=services.db,
        origins=services.settings.cors_origins,
    )
    check_rules(run)
    return [check.to_dict() for check in run.checks if check.status != "ok"]


def bucket_rule_lines(rules: list[dict[str, Any]]) -> list[str]:
    """``serve``'s banner lines for an existing bucket whose rules are not the contract's (none when they are)."""
    if not rules:
        return []
    lines = ["  bucket rules         the bucket existed: its rules are left as they are; what they lack:"]
    for rule in rules:
        mark = "✗" if rule["status"] == "fail" else "⚠"
        lines.append(f"    {mark} {rule['message']}")
        if rule.get("fix"):
            lines.append(f"      fix: {rule['fix']}")
    return lines
