"""Headers nobody signed, against a server that checks signatures (contract section 4, additions).

A presigned PUT's signature covers the headers it names (``Content-Type``, ``Content-Length``), not the others a
client adds: here, as on S3 and R2, a PUT with ``Content-Disposition``, ``Content-Encoding`` and ``Cache-Control``
added is accepted and stored. ``uploads/complete`` then refuses it (400, naming them) and deletes the object.
Presigned GETs carry ``response-cache-control=private`` inside their signature: the store answers
``Cache-Control: private``, and a URL edited to ask for ``public`` is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest
import requests
from scenestore.services import Services

from tests.support.presign import SAMPLES, Api

pytestmark = [pytest.mark.s3_peer, pytest.mark.filterwarnings("ignore:The HMAC key")]

SPOOFED = {
    "Content-Disposition": 'attachment; filename="invoice.html"',
    "Content-Encoding": "gzip",
    "Cache-Control": "public, max-age=31536000",
}


def presigned_image(api: Api, project: str) -> tuple[dict[str, Any], bytes]:
    response = api.presign(project, "image", scene_id="s1")
    assert response.status_code == 201, response.text
    return response.json(), SAMPLES["image"][2]


def test_unsigned_headers_pass_the_signature_then_complete_refuses_and_deletes(
    api: Api, services: Services, project: str
) -> None:
    body, data = presigned_image(api, project)
    put = requests.put(body["url"], data=data, headers={**body["headers"], **SPOOFED}, timeout=30)
    assert put.status_code == 200, put.text  # what the signature does not name, it does not refuse
    stored = services.store.head(body["key"])
    assert stored is not None and set(SPOOFED) <= set(stored.served_headers)

    response = api.complete(project, body["key"])
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    for header in SPOOFED:
        assert header in response.json()["message"]
    assert services.store.head(body["key"]) is None
    assert "media" not in services.db.scenes.find_one({"_id": "s1"})


def test_user_metadata_added_to_a_presigned_put_never_ends_in_a_recorded_object(
    api: Api, services: Services, project: str
) -> None:
    """Either the store refuses the unsigned ``x-amz-meta-*`` header (LocalStack does, 403, as S3 does), or it
    stores it and complete refuses it (moto does: ``tests/test_upload_headers.py``)."""
    body, data = presigned_image(api, project)
    put = requests.put(body["url"], data=data, headers={**body["headers"], "x-amz-meta-owner": "mallory"}, timeout=30)
    if put.status_code == 200:
        response = api.complete(project, body["key"])
        assert response.status_code == 400, response.text
        assert "x-amz-meta-owner" in response.json()["message"]
    else:
        assert put.status_code == 403, put.text
    assert services.store.head(body["key"]) is None


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_presigned_gets_answer_private_and_the_override_is_signed(api: Api, project: str) -> None:
    done = api.upload(project, "image", scene_id="s1")
    url = api.get("/files", params={"key": done["key"]}).json()["url"]
    download = requests.get(url, timeout=30)
    assert download.status_code == 200 and download.content == SAMPLES["image"][2]
    assert download.headers["Cache-Control"] == "private"

    redirect = api.get(f"/storage/{quote(done['key'], safe='')}")
    assert redirect.status_code == 302, redirect.text
    assert requests.get(redirect.headers["Location"], timeout=30).headers["Cache-Control"] == "private"

    edited = requests.get(with_query(url, **{"response-cache-control": "public"}), timeout=30)
    assert edited.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in edited.text
