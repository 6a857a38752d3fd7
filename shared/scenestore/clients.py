"""boto3 and pymongo clients, built from settings and passed in everywhere else.

``scenestore.services.Services`` holds the process's clients (built on first use, reused by warm Lambda
invocations); these factories only say how a client is configured.

The S3 client is configured for Cloudflare R2 as much as for moto: SigV4, path-style addressing, region
``auto`` accepted, and the newer default checksums limited to ``when_required`` (R2 rejects some of them).
Retries use botocore's ``standard`` mode (exponential backoff with jitter, throttling codes included).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from scenestore.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pymongo import MongoClient

#: Worker threads used for concurrent S3 work on this 2-core class of machine; the pool leaves headroom.
S3_CONCURRENCY: Final = 8
#: The smallest connection pool: fixed-size thread pools (``S3_CONCURRENCY`` workers) never wait for a connection.
S3_POOL_SIZE: Final = 32
#: Connections beyond the in-flight ceiling: a prefix delete's listers (``prefix_delete.LISTERS`` key ranges
#: side by side, and the tree read beside the first page) and a HEAD beside the adaptive requests.
POOL_HEADROOM: Final = 6


def s3_pool_size(settings: Settings) -> int:
    """Connections the S3 client keeps: enough for ``SCENESTORE_S3_MAX_IN_FLIGHT`` requests plus the listers.

    The adaptive limits grow up to that ceiling; a smaller pool would make the extra requests wait for a
    connection (or open and discard one each time), which reads as latency and defeats the controller.
    """
    return max(S3_POOL_SIZE, settings.s3_max_in_flight + POOL_HEADROOM)


def make_s3_client(settings: Settings, *, max_pool_connections: int | None = None, **overrides: Any) -> S3Client:
    """The configured client; the pool is ``s3_pool_size(settings)`` unless a caller sizes its own, and any
    ``Config`` option in ``overrides`` replaces the default one."""
    import boto3
    import botocore.session
    from botocore.config import Config

    options: dict[str, Any] = {
        "region_name": settings.s3_region,
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path"},
        "retries": {"mode": "standard", "max_attempts": 8},
        "max_pool_connections": max_pool_connections or s3_pool_size(settings),
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "connect_timeout": 5,
        "read_timeout": 60,
        "tcp_keepalive": True,
    }
    config = Config(**{**options, **overrides})  # an override replaces a default (preflight's shorter timeouts)
    core = botocore.session.Session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
    session = boto3.session.Session(
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        aws_session_token=settings.aws_session_token,
        region_name=settings.s3_region,
        botocore_session=core,
    )
    return session.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, with S3's ISO 8601 dates (``2026-12-02T15:04:05.000Z``) read by
    ``datetime.fromisoformat`` instead of dateutil.

    botocore parses every date of every response with dateutil: about 50 µs each, a tenth of the client CPU
    of a ``CopyObject`` and most of a listing page's parse (1,000 ``LastModified``). On Lambda, where CPU is
    scarce, that is time the function pays for dates it rarely reads. Anything else (HTTP-date headers,
    epoch numbers) goes to botocore's own parser, so the result is the same instant either way.
    """
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and value[10] == "T":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    from botocore.utils import parse_timestamp as botocore_parse_timestamp

    return botocore_parse_timestamp(value)


def make_mongo_client(settings: Settings, **kwargs: Any) -> MongoClient[dict[str, Any]]:
    from pymongo import MongoClient

    options: dict[str, Any] = {
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
        "tz_aware": True,
        "appname": "scenestore",
    }
    options.update(kwargs)
    return MongoClient(settings.mongodb_uri, **options)
