"""Multipart uploads against a server that checks signatures: each part's URL is good for exactly that upload,
that part number and that length; the whole flow (with a resume and an abort) goes through byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from scenestore.services import Services, use_services

from tests.support import multipart as mp
from tests.support.multipart import MiB, video_bytes
from tests.support.presign import ALICE, Api, add_project, add_scene

pytestmark = [pytest.mark.s3_peer, pytest.mark.filterwarnings("ignore:The HMAC key")]

PART = 5 * MiB
SIZE = 2 * PART + 333


@pytest.fixture
def project(services: Services) -> Iterator[str]:
    small = Services(services.settings.with_overrides(multipart_part_size=PART), services.s3, services.mongo)
    add_project(small, "p1", ALICE)
    add_scene(small, "s1", "p1")
    with use_services(small):
        yield "p1"


def signed_part(api: Api, project: str, created: dict[str, Any], number: int) -> dict[str, Any]:
    response = mp.sign(api, project, created["upload_id"], created["key"], number)
    assert response.status_code == 200, response.text
    return dict(response.json())


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def assert_signature_refused(response: requests.Response) -> None:
    assert response.status_code == 403, response.text
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_a_three_part_upload_goes_through_byte_for_byte(api: Api, services: Services, project: str) -> None:
    data = video_bytes(SIZE)
    result = mp.upload(api, project, data)
    assert result["created"]["part_count"] == 3
    assert result["completed"]["size"] == SIZE
    assert services.store.get_bytes(result["created"]["key"]) == data
    download = api.get("/files", params={"key": result["created"]["key"]})
    assert requests.get(download.json()["url"], timeout=60).content == data


@pytest.mark.parametrize("delta", [1, -1], ids=["longer", "shorter"])
def test_a_part_of_another_length_is_refused(api: Api, project: str, delta: int) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    part = mp.chunk(data, PART, 1)
    response = mp.put_part(signed_part(api, project, created, 1), part + b"\0" if delta > 0 else part[:-1])
    assert_signature_refused(response)
    assert mp.list_parts(api, project, created["upload_id"], created["key"]).json() == {"parts": []}


def test_a_last_part_longer_than_the_declared_rest_is_refused(api: Api, project: str) -> None:
    """Without this the parts could add up to more than the declared size (and past the kind's limit)."""
    created = mp.create(api, project, SIZE).json()
    response = mp.put_part(signed_part(api, project, created, 3), video_bytes(PART))
    assert_signature_refused(response)


def test_a_part_url_used_for_another_part_number_is_refused(api: Api, project: str) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    signed = signed_part(api, project, created, 1)
    response = requests.put(with_query(signed["url"], partNumber="2"), data=mp.chunk(data, PART, 2), timeout=60)
    assert_signature_refused(response)


def test_a_part_url_used_for_another_upload_is_refused(api: Api, project: str) -> None:
    data = video_bytes(SIZE)
    first = mp.create(api, project, SIZE).json()
    second = mp.create(api, project, SIZE).json()
    signed = signed_part(api, project, first, 1)
    response = requests.put(
        with_query(signed["url"], uploadId=second["upload_id"]), data=mp.chunk(data, PART, 1), timeout=60
    )
    assert_signature_refused(response)


def test_a_part_url_used_for_another_key_is_refused(api: Api, project: str) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    signed = signed_part(api, project, created, 1)
    url = signed["url"].replace("/big.mp4", "/other.mp4")
    response = requests.put(url, data=mp.chunk(data, PART, 1), headers=signed["headers"], timeout=60)
    assert_signature_refused(response)


def test_a_resumed_upload_sends_only_the_rest(api: Api, services: Services, project: str) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    mp.send_parts(api, project, created, data, [1, 3])
    listed = mp.list_parts(api, project, created["upload_id"], created["key"]).json()["parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, PART), (3, 333)]
    rest = mp.send_parts(api, project, created, data, [2])
    parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed] + rest
    done = mp.complete(api, project, created["upload_id"], created["key"], parts)
    assert done.status_code == 200, done.text
    assert services.store.get_bytes(created["key"]) == data


def test_abort_leaves_no_upload_behind(api: Api, services: Services, project: str) -> None:
    data = video_bytes(SIZE)
    created = mp.create(api, project, SIZE).json()
    mp.send_parts(api, project, created, data, [1])
    assert services.store.multipart_upload_ids(created["key"]) == [created["upload_id"]]
    assert mp.abort(api, project, created["upload_id"], created["key"]).status_code == 204
    assert services.store.multipart_upload_ids(created["key"]) == []
    assert services.store.head(created["key"]) is None


def test_complete_replaces_the_previous_object_and_deletes_it(api: Api, services: Services, project: str) -> None:
    old = api.upload(project, "video", scene_id="s1")
    result = mp.upload(api, project, video_bytes(PART + 1))["completed"]
    assert (result["replaced"], result["deleted_previous"]) == (True, True)
    assert services.store.head(old["key"]) is None


def test_the_lifecycle_rule_is_set_on_the_peer_bucket(services: Services) -> None:
    assert services.store.abort_multipart_days() == services.settings.multipart_abort_days
