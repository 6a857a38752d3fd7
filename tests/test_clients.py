"""Clients (issue 3): the S3 client is configured for R2 (region auto, SigV4, when_required checksums,
standard/adaptive retries, a pool sized for our concurrency); both clients come from settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from scenestore.clients import POOL_HEADROOM, S3_CONCURRENCY, S3_POOL_SIZE, make_mongo_client, make_s3_client
from scenestore.prefix_delete import adaptive_limit
from scenestore.services import Services
from scenestore.settings import Settings

R2 = Settings(
    s3_endpoint_url="https://0123abcd.r2.cloudflarestorage.com",
    s3_region="auto",
    aws_access_key_id="r2-key",
    aws_secret_access_key="r2-secret",
)


def test_s3_client_config_fits_r2() -> None:
    client = make_s3_client(R2)
    config = client.meta.config
    assert client.meta.region_name == "auto"
    assert config.region_name == "auto"
    assert config.signature_version == "s3v4"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.retries["mode"] in ("standard", "adaptive")
    assert config.retries["total_max_attempts"] >= 3
    assert config.max_pool_connections == max(S3_POOL_SIZE, R2.s3_max_in_flight + POOL_HEADROOM)
    assert client.meta.endpoint_url == "https://0123abcd.r2.cloudflarestorage.com"
    credentials = client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("r2-key", "r2-secret")


@pytest.mark.parametrize("ceiling", [1, 8, 64, 200])
def test_pool_is_large_enough_for_the_concurrency_we_use(ceiling: int) -> None:
    """Requests in flight up to ``SCENESTORE_S3_MAX_IN_FLIGHT`` plus the listing thread never wait for a
    pooled connection, and neither do the fixed ``S3_CONCURRENCY`` worker pools."""
    settings = R2.with_overrides(s3_max_in_flight=ceiling)
    pool = make_s3_client(settings).meta.config.max_pool_connections
    assert pool >= S3_CONCURRENCY + 2
    assert adaptive_limit(ceiling=settings.s3_max_in_flight).ceiling <= pool - 1


def test_pool_size_can_be_overridden() -> None:
    assert make_s3_client(R2, max_pool_connections=4).meta.config.max_pool_connections == 4


def test_presigned_urls_use_sigv4_with_the_auto_region() -> None:
    url = make_s3_client(R2).generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "%2Fauto%2Fs3%2Faws4_request" in url
    assert url.startswith("https://0123abcd.r2.cloudflarestorage.com/b/k?")


@pytest.fixture
def own_client(services: Services) -> Any:
    """A client of our own (event hooks must not leak into the session's shared client)."""
    return make_s3_client(services.settings)


def test_no_checksum_headers_are_sent_when_not_required(services: Services, own_client: Any) -> None:
    """R2 rejects some of botocore's default flexible checksums: a plain PUT must carry none."""
    sent: list[dict[str, str]] = []
    own_client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append({k.lower(): v for k, v in request.headers.items()})
    )
    own_client.put_object(Bucket=services.settings.bucket, Key="a.bin", Body=b"hello")
    assert len(sent) == 1
    assert not [h for h in sent[0] if h.startswith("x-amz-checksum") or h == "x-amz-sdk-checksum-algorithm"]
    assert services.store.get_bytes("a.bin") == b"hello"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_throttling_is_retried(services: Services, own_client: Any) -> None:
    """Fault injection: the first two sends answer 503 SlowDown (moto never throttles); the third goes through."""
    attempts: list[int] = []

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) <= 2:
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            return AWSResponse(request.url, 503, {}, _Raw(body))
        return None

    own_client.meta.events.register("before-send.s3.HeadBucket", throttle)
    own_client.head_bucket(Bucket=services.settings.bucket)
    assert len(attempts) == 3


def test_mongo_client_from_settings(services: Services) -> None:
    client = make_mongo_client(services.settings)
    try:
        assert client.options.server_selection_timeout == 5
        assert client.codec_options.tz_aware is True
        assert client.admin.command("ping")["ok"] == 1
    finally:
        client.close()


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-02T15:04:05.000Z",
        "2026-12-02T15:04:05Z",
        "2026-12-02T15:04:05.123456+02:00",
        "Wed, 02 Dec 2026 15:04:05 GMT",  # an HTTP-date header: botocore's own parser
        "1796222709",  # epoch seconds
        "2026-12-02T15:04:05",  # no zone: botocore's own rule, not ours
    ],
)
def test_timestamps_parse_to_the_same_instant_as_botocore(value: str) -> None:
    from botocore.utils import parse_timestamp as botocore_parse
    from scenestore.clients import parse_timestamp

    ours, theirs = parse_timestamp(value), botocore_parse(value)
    assert ours == theirs and ours.utcoffset() == theirs.utcoffset()


def test_the_s3_client_reads_dates_with_the_fast_parser(services: Services) -> None:
    """Dates from a real listing and a HEAD are the instants a plain boto3 client reads (moto's server)."""
    import boto3
    from scenestore.clients import parse_timestamp

    client = make_s3_client(services.settings)
    bucket = services.settings.bucket
    client.put_object(Bucket=bucket, Key="dates/a.txt", Body=b"x")
    plain = boto3.client(
        "s3",
        endpoint_url=services.settings.s3_endpoint_url,
        region_name=services.settings.s3_region,
        aws_access_key_id=services.settings.aws_access_key_id,
        aws_secret_access_key=services.settings.aws_secret_access_key,
    )
    ours = client.list_objects_v2(Bucket=bucket, Prefix="dates/")["Contents"][0]["LastModified"]
    theirs = plain.list_objects_v2(Bucket=bucket, Prefix="dates/")["Contents"][0]["LastModified"]
    assert ours == theirs
    assert client.head_object(Bucket=bucket, Key="dates/a.txt")["LastModified"] == ours
    # The fast path ran: fromisoformat's UTC, where dateutil gives its own tzutc (the same instant).
    assert ours.tzinfo is UTC and theirs.tzinfo is not UTC
    factory = client._endpoint._response_parser_factory  # what parses every response of this client
    assert factory.create_parser("rest-xml")._timestamp_parser is parse_timestamp


def test_every_job_limit_stays_within_the_clients_pool() -> None:
    """The delete and migration limits come from one place: their ceiling is the setting, capped by the client's
    connection pool (more requests than connections would open and throw away connections)."""
    from scenestore.migration.pacing import new_limit

    small = make_s3_client(R2, max_pool_connections=5)
    assert new_limit(R2, small, initial=8).ceiling == 5
    assert adaptive_limit(client=small, ceiling=64).ceiling == 5
    assert new_limit(R2.with_overrides(s3_max_in_flight=3), small, initial=8).limit == 3
    roomy = make_s3_client(R2)
    assert new_limit(R2, roomy, initial=8).ceiling == R2.s3_max_in_flight
    assert adaptive_limit(4).ceiling == 4  # a number fixes it, whatever the pool
