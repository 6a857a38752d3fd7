"""The stored object carries only what the service chose (contract section 4, additions).

A presigned PUT signs the headers it names (type, length); a client may add others, which the store keeps and
serves back on every GET: a spoofed download name (``Content-Disposition``), a body browsers decode differently
(``Content-Encoding``), private media cached publicly (``Cache-Control``). GIVEN an object stored with any of
``Cache-Control``, ``Content-Disposition``, ``Content-Encoding``, ``Content-Language``, ``Expires`` or user
metadata, WHEN its upload is completed (single PUT or multipart) THEN the answer is 400 ``invalid_request`` naming
the headers and the object is deleted (or, when a document already points at its key, rewritten without them),
the slot untouched. Presigned GETs, from ``/files`` and ``/storage/{key}``, answer with ``Cache-Control: private``.

moto stores whatever headers a presigned PUT carries, as S3 and R2 do; ``tests/peer`` repeats the single PUT
against a server that checks signatures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from scenestore.services import Services, use_services

from tests.support import multipart as mp
from tests.support.multipart import MiB, video_bytes
from tests.support.presign import ALICE, SAMPLES, Api
from tests.support.seed import add_project, add_scene

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

#: One unsigned header per row, as a client would add it to the presigned PUT.
UNSIGNED: dict[str, tuple[str, str]] = {
    "content-disposition": ("Content-Disposition", 'attachment; filename="invoice.html"'),
    "content-encoding": ("Content-Encoding", "gzip"),
    "content-language": ("Content-Language", "de"),
    "cache-control": ("Cache-Control", "public, max-age=31536000"),
    "expires": ("Expires", "Thu, 01 Jan 2037 00:00:00 GMT"),
    "user-metadata": ("x-amz-meta-owner", "mallory"),
}


@pytest.fixture
def project(services: Services) -> str:
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    return "p1"


def put_with(api: Api, project: str, extra: dict[str, str], *, data: bytes | None = None) -> dict[str, Any]:
    sample = SAMPLES["image"][2]
    data = sample if data is None else data
    presigned = api.presign(project, "image", scene_id="s1", size=len(data))
    assert presigned.status_code == 201, presigned.text
    body = presigned.json()
    put = requests.put(body["url"], data=data, headers={**body["headers"], **extra}, timeout=30)
    assert put.status_code == 200, put.text  # the store takes them: the signature does not cover them
    return dict(body)


@pytest.mark.parametrize("name", list(UNSIGNED))
def test_a_single_put_with_an_unsigned_header_is_refused_and_deleted(
    api: Api, services: Services, project: str, name: str
) -> None:
    header, value = UNSIGNED[name]
    body = put_with(api, project, {header: value})
    assert services.store.head(body["key"]).served_headers  # stored as sent

    response = api.complete(project, body["key"])
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error"] == "invalid_request"
    assert header in error["message"] and "deleted" in error["message"]
    assert services.store.head(body["key"]) is None
    assert "media" not in services.db.scenes.find_one({"_id": "s1"})  # the slot is left alone


def test_every_unsigned_header_is_named(api: Api, services: Services, project: str) -> None:
    body = put_with(api, project, dict(UNSIGNED.values()))
    message = api.complete(project, body["key"]).json()["message"]
    for header, _value in UNSIGNED.values():
        assert header in message, message
    assert services.store.head(body["key"]) is None


def test_the_same_upload_without_extra_headers_completes(api: Api, services: Services, project: str) -> None:
    body = put_with(api, project, {})
    response = api.complete(project, body["key"])
    assert response.status_code == 200, response.text
    assert services.store.head(body["key"]).served_headers == {}


def test_an_object_a_document_already_references_is_cleaned_not_deleted(
    api: Api, services: Services, project: str
) -> None:
    """The same file name again: the key is the one the slot holds, so the object is kept, minus the headers."""
    first = api.upload(project, "image", scene_id="s1")
    again = b"\x89PNG\r\n\x1a\n" + b"second upload" * 10
    body = put_with(api, project, {"Content-Disposition": "attachment; filename=x.html"}, data=again)
    assert body["key"] == first["key"]

    response = api.complete(project, body["key"])
    assert response.status_code == 400, response.text
    assert "removed" in response.json()["message"]
    info = services.store.head(body["key"])
    assert info is not None and info.served_headers == {} and info.content_type == "image/png"
    assert services.store.get_bytes(body["key"]) == again
    assert services.db.scenes.find_one({"_id": "s1"})["media"]["storageKey"] == body["key"]


# -- multipart --------------------------------------------------------------------------------------------------
@pytest.fixture
def header_on_create(services: Services) -> Iterator[dict[str, str]]:
    """Fault injection through botocore's own hook (the only stand-in here): whatever the dict holds is added to
    the service's ``CreateMultipartUpload``, as a store or a proxy that sets headers of its own would. A browser
    cannot do this (the service creates the upload), so this proves the check at complete, not a client's path."""
    added: dict[str, str] = {}

    def add_headers(params: dict[str, Any], **_kwargs: Any) -> None:
        params["headers"].update(added)

    events = services.s3.meta.events
    events.register("before-call.s3.CreateMultipartUpload", add_headers)
    try:
        yield added
    finally:
        events.unregister("before-call.s3.CreateMultipartUpload", add_headers)


@pytest.mark.parametrize("name", ["content-disposition", "cache-control", "user-metadata"])
def test_a_multipart_upload_with_an_unsigned_header_is_refused_and_deleted(
    api: Api, services: Services, project: str, header_on_create: dict[str, str], name: str
) -> None:
    header, value = UNSIGNED[name]
    header_on_create[header] = value
    data = video_bytes(MiB)
    with use_services(
        Services(services.settings.with_overrides(multipart_part_size=5 * MiB), services.s3, services.mongo)
    ):
        created = mp.create(api, project, len(data)).json()
        header_on_create.clear()
        parts = mp.send_parts(api, project, created, data, [1])
        response = mp.complete(api, project, created["upload_id"], created["key"], parts)
    assert response.status_code == 400, response.text
    assert header in response.json()["message"]
    assert services.store.head(created["key"]) is None
    assert "media" not in services.db.scenes.find_one({"_id": "s1"})


# -- downloads --------------------------------------------------------------------------------------------------
def test_presigned_gets_answer_cache_control_private(api: Api, services: Services, project: str) -> None:
    """Even for an object stored with ``Cache-Control: public`` (a legacy upload, or one put by other tools)."""
    key = "media/public.png"
    services.s3.put_object(
        Bucket=services.settings.bucket, Key=key, Body=b"\x89PNG", ContentType="image/png", CacheControl="public"
    )
    services.db.scenes.update_one({"_id": "s1"}, {"$set": {"media": {"storageKey": key, "type": "image"}}})

    url = api.get("/files", params={"key": key}).json()["url"]
    assert requests.get(url, timeout=30).headers["Cache-Control"] == "private"

    redirect = api.get(f"/storage/{quote(key, safe='')}")
    assert redirect.status_code == 302, redirect.text
    assert requests.get(redirect.headers["Location"], timeout=30).headers["Cache-Control"] == "private"
