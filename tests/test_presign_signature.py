"""The presigned PUT's signature covers the key, Content-Type, Content-Length and host (contract section 4).

moto does not verify signatures, so the check S3/R2 would do is redone here with botocore's own SigV4 code:
take the URL the API returned, rebuild the canonical request from what a client would send, sign it with the
bucket credentials, and compare. Same inputs give the URL's signature; any changed type, size, host or key
gives another one, which S3/R2 refuse with 403 SignatureDoesNotMatch.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from scenestore.services import Services

from tests.support.presign import ALICE, SAMPLES, Api
from tests.support.seed import add_project, add_scene

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")


def server_signature(
    services: Services, url: str, headers: dict[str, str], *, method: str = "PUT", secret: str | None = None
) -> str:
    """The signature S3 computes for a request to ``url`` carrying ``headers`` (SigV4 query auth)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.pop("X-Amz-Signature", None)
    signed = query["X-Amz-SignedHeaders"].split(";")
    lowered = {k.lower(): v for k, v in headers.items()}
    request_headers = {name: lowered[name] for name in signed if name != "host" and name in lowered}
    settings = services.settings
    credentials = Credentials(settings.aws_access_key_id, secret or settings.aws_secret_access_key)
    auth = S3SigV4QueryAuth(credentials, "s3", settings.s3_region, expires=int(query["X-Amz-Expires"]))
    request = AWSRequest(
        method=method,
        url=urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), "")),
        headers=request_headers,
    )
    request.context["timestamp"] = query["X-Amz-Date"]
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


def url_signature(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]


def with_netloc(url: str, netloc: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture
def presigned(api: Api, services: Services) -> dict[str, Any]:
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    response = api.presign("p1", "image", scene_id="s1")
    assert response.status_code == 201
    return dict(response.json())


def test_signed_headers_are_exactly_content_length_content_type_and_host(presigned: dict[str, Any]) -> None:
    query = dict(parse_qsl(urlsplit(presigned["url"]).query))
    assert query["X-Amz-SignedHeaders"] == "content-length;content-type;host"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert int(query["X-Amz-Expires"]) == 900


def test_the_returned_headers_reproduce_the_signature(services: Services, presigned: dict[str, Any]) -> None:
    assert server_signature(services, presigned["url"], presigned["headers"]) == url_signature(presigned["url"])


@pytest.mark.parametrize(
    ("change", "headers"),
    [
        ("another content type", {"Content-Type": "image/jpeg"}),
        ("another type of another kind", {"Content-Type": "text/html"}),
        ("one byte more", {"Content-Length": str(len(SAMPLES["image"][2]) + 1)}),
        ("one byte less", {"Content-Length": str(len(SAMPLES["image"][2]) - 1)}),
    ],
)
def test_changing_type_or_size_breaks_the_signature(
    services: Services, presigned: dict[str, Any], change: str, headers: dict[str, str]
) -> None:
    sent = {**presigned["headers"], **headers}
    assert server_signature(services, presigned["url"], sent) != url_signature(presigned["url"]), change


def test_another_host_or_key_breaks_the_signature(services: Services, presigned: dict[str, Any]) -> None:
    url = presigned["url"]
    host, _, port = urlsplit(url).netloc.partition(":")
    assert server_signature(services, with_netloc(url, f"{host}:{int(port) + 1}"), presigned["headers"]) != (
        url_signature(url)
    )
    other_key = url.replace("/photo.png?", "/other.png?")
    assert other_key != url
    assert server_signature(services, other_key, presigned["headers"]) != url_signature(url)


def test_the_check_itself_depends_on_the_secret(services: Services, presigned: dict[str, Any]) -> None:
    """Guards the guard: with a wrong secret the recomputed signature differs, so the equality above means
    something."""
    assert server_signature(services, presigned["url"], presigned["headers"], secret="wrong") != (
        url_signature(presigned["url"])
    )
