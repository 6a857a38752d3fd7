"""Driving the multipart routes over HTTP the way a browser (``@uppy/aws-s3``, the JS client) does.

Shared by the moto tests (``tests/test_multipart_*.py``) and the signature-checking peer's (``tests/peer``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from tests.support.presign import ALICE, Api

MiB = 1024 * 1024


def video_bytes(size: int, seed: int = 3) -> bytes:
    """``size`` bytes that start like an MP4 and never repeat at a part boundary (a misplaced part shows)."""
    head = b"\x00\x00\x00\x18ftypmp42"
    block = bytes((i * 31 + seed) % 251 for i in range(251))
    body = (block * (size // len(block) + 1))[: max(size - len(head), 0)]
    data = bytearray(head + body)[:size]
    for offset in range(0, size, MiB):  # a marker per MiB: parts swapped or shifted never compare equal
        marker = offset.to_bytes(8, "big")
        data[offset : offset + 8] = marker[: max(0, min(8, size - offset))]
    return bytes(data)


def multipart_path(project_id: str, upload_id: str = "", suffix: str = "") -> str:
    path = f"/projects/{project_id}/multipart"
    if upload_id:
        path += "/" + quote(upload_id, safe="")
    return path + suffix


def create(
    api: Api,
    project_id: str,
    size: int,
    *,
    kind: str = "video",
    scene_id: str | None = "s1",
    filename: str = "big.mp4",
    content_type: str = "video/mp4",
    user: str = ALICE,
    **overrides: Any,
) -> requests.Response:
    body: dict[str, Any] = {"kind": kind, "filename": filename, "content_type": content_type, "size": size}
    if scene_id is not None and kind != "output":
        body["scene_id"] = scene_id
    body.update(overrides)
    return api.post(multipart_path(project_id), body, user=user)


def sign(
    api: Api, project_id: str, upload_id: str, key: str, part_number: int | str, *, user: str = ALICE
) -> requests.Response:
    path = multipart_path(project_id, upload_id, f"/parts/{part_number}")
    return api.get(path, params={"key": key}, user=user)


def list_parts(api: Api, project_id: str, upload_id: str, key: str, *, user: str = ALICE) -> requests.Response:
    return api.get(multipart_path(project_id, upload_id), params={"key": key}, user=user)


def complete(
    api: Api, project_id: str, upload_id: str, key: str, parts: list[dict[str, Any]], *, user: str = ALICE
) -> requests.Response:
    body = {"key": key, "parts": parts}
    return api.post(multipart_path(project_id, upload_id, "/complete"), body, user=user)


def abort(api: Api, project_id: str, upload_id: str, key: str, *, user: str = ALICE) -> requests.Response:
    return api.request("DELETE", multipart_path(project_id, upload_id), params={"key": key}, user=user)


def put_part(signed: dict[str, Any], data: bytes) -> requests.Response:
    """PUT one part with exactly the signed headers, as a browser does (it sends Content-Length itself)."""
    return requests.put(signed["url"], data=data, headers=signed["headers"], timeout=60)


def chunk(data: bytes, part_size: int, part_number: int) -> bytes:
    return data[(part_number - 1) * part_size : part_number * part_size]


def send_parts(
    api: Api, project_id: str, created: dict[str, Any], data: bytes, numbers: list[int], *, user: str = ALICE
) -> list[dict[str, Any]]:
    """Sign and PUT the given parts; returns ``[{"PartNumber", "ETag"}]`` from the PUT responses' ETag."""
    sent = []
    for number in numbers:
        signed = sign(api, project_id, created["upload_id"], created["key"], number, user=user)
        assert signed.status_code == 200, signed.text
        put = put_part(signed.json(), chunk(data, created["part_size"], number))
        assert put.status_code == 200, put.text
        sent.append({"PartNumber": number, "ETag": put.headers["ETag"]})
    return sent


def upload(api: Api, project_id: str, data: bytes, *, user: str = ALICE, **create_args: Any) -> dict[str, Any]:
    """create -> every part -> complete; returns ``{"created": ..., "completed": ...}`` bodies."""
    created = create(api, project_id, len(data), user=user, **create_args)
    assert created.status_code == 201, created.text
    body = created.json()
    parts = send_parts(api, project_id, body, data, list(range(1, body["part_count"] + 1)), user=user)
    done = complete(api, project_id, body["upload_id"], body["key"], parts, user=user)
    assert done.status_code == 200, done.text
    return {"created": body, "completed": done.json()}
