"""Single presigned PUTs against a server that checks signatures: the right request is stored, and a changed
type, length, key or expiry is refused with 403 ``SignatureDoesNotMatch``, as S3 and R2 refuse it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from scenestore.services import Services

from tests.support.presign import SAMPLES, Api, put_presigned

pytestmark = [pytest.mark.s3_peer, pytest.mark.filterwarnings("ignore:The HMAC key")]


def presigned(api: Api, project: str, kind: str = "image") -> tuple[dict[str, Any], bytes]:
    scene = None if kind == "output" else "s1"
    response = api.presign(project, kind, scene_id=scene)
    assert response.status_code == 201, response.text
    return response.json(), SAMPLES[kind][2]


def assert_signature_refused(response: requests.Response) -> None:
    assert response.status_code == 403, response.text
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("kind", ["image", "video", "audio", "output"])
def test_a_presigned_put_of_every_kind_is_accepted_and_completes(
    api: Api, services: Services, project: str, kind: str
) -> None:
    scene = None if kind == "output" else "s1"
    done = api.upload(project, kind, scene_id=scene)
    assert done["size"] == len(SAMPLES[kind][2])
    assert services.store.get_bytes(done["key"]) == SAMPLES[kind][2]


def test_a_changed_content_type_is_refused(api: Api, services: Services, project: str) -> None:
    body, data = presigned(api, project)
    response = requests.put(
        body["url"], data=data, headers={**body["headers"], "Content-Type": "image/jpeg"}, timeout=30
    )
    assert_signature_refused(response)
    assert services.store.head(body["key"]) is None


@pytest.mark.parametrize("delta", [1, -1], ids=["longer", "shorter"])
def test_a_changed_length_is_refused(api: Api, services: Services, project: str, delta: int) -> None:
    body, data = presigned(api, project)
    changed = data + b"\0" if delta > 0 else data[:-1]
    response = put_presigned(body, changed)  # the HTTP client sends the body's real Content-Length, as a browser
    assert_signature_refused(response)
    assert services.store.head(body["key"]) is None


def test_a_changed_key_is_refused(api: Api, services: Services, project: str) -> None:
    body, data = presigned(api, project)
    other = body["key"].replace("/s1/", "/s2/")
    response = requests.put(body["url"].replace(body["key"], other), data=data, headers=body["headers"], timeout=30)
    assert_signature_refused(response)
    assert services.store.head(other) is None


def test_a_lengthened_expiry_is_refused(api: Api, project: str) -> None:
    body, data = presigned(api, project)
    response = requests.put(
        with_query(body["url"], **{"X-Amz-Expires": "604800"}), data=data, headers=body["headers"], timeout=30
    )
    assert_signature_refused(response)


def test_the_same_url_with_the_right_request_is_accepted_after_refusals(
    api: Api, services: Services, project: str
) -> None:
    body, data = presigned(api, project)
    assert put_presigned(body, data + b"x").status_code == 403
    assert put_presigned(body, data).status_code == 200
    assert services.store.get_bytes(body["key"]) == data
    assert api.complete(project, body["key"]).status_code == 200


def test_the_bucket_cors_rule_lets_a_browser_put_and_read_the_etag(api: Api, project: str, peer_origin: str) -> None:
    body, _data = presigned(api, project)
    preflight = requests.options(
        body["url"],
        headers={
            "Origin": peer_origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=30,
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", peer_origin)
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    put = requests.put(body["url"], data=_data, headers={**body["headers"], "Origin": peer_origin}, timeout=30)
    assert put.status_code == 200
    assert "ETag" in put.headers.get("Access-Control-Expose-Headers", "")
