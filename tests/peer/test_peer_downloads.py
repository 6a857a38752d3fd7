"""Downloads against a server that checks signatures: ``GET /files`` and the ``/storage/{key}`` redirect hand
out presigned GETs that return the very bytes, for layout and legacy keys; a tampered URL is refused."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests
from scenestore.services import Services
from scenestore.tokens import issue_media_token

from tests.support.presign import ALICE, SAMPLES, Api, add_scene

pytestmark = [pytest.mark.s3_peer, pytest.mark.filterwarnings("ignore:The HMAC key")]


def encode_uri_component(key: str) -> str:
    return quote(key, safe="-_.!~*'()")


def test_a_files_url_downloads_the_uploaded_bytes(api: Api, project: str) -> None:
    done = api.upload(project, "audio", scene_id="s1")
    response = api.get("/files", params={"key": done["key"]})
    assert response.status_code == 200
    download = requests.get(response.json()["url"], timeout=30)
    assert download.status_code == 200
    assert download.content == SAMPLES["audio"][2]


def test_a_tampered_download_url_is_refused(api: Api, services: Services, project: str) -> None:
    done = api.upload(project, "image", scene_id="s1")
    other = done["key"].replace("photo.png", "other.png")
    services.store.put_bytes(other, b"someone else's", content_type="image/png")
    url = api.get("/files", params={"key": done["key"]}).json()["url"]
    response = requests.get(url.replace(done["key"], other), timeout=30)
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_the_storage_redirect_with_a_media_token_leads_to_the_bytes(api: Api, services: Services, project: str) -> None:
    done = api.upload(project, "output")
    token = issue_media_token(services.settings, ALICE)
    redirect = api.get(f"/storage/{encode_uri_component(done['key'])}", user=None, params={"access_token": token})
    assert redirect.status_code == 302, redirect.text
    media = requests.get(redirect.headers["Location"], timeout=30)
    assert media.status_code == 200
    assert media.content == SAMPLES["output"][2]


def test_the_storage_redirect_serves_a_legacy_key_the_callers_scene_references(
    api: Api, services: Services, project: str
) -> None:
    services.store.put_bytes("media/legacy.jpg", b"legacy bytes", content_type="image/jpeg")
    add_scene(services, "s2", project, media={"storageKey": "media/legacy.jpg", "type": "image"})
    redirect = api.get(f"/storage/{encode_uri_component('media/legacy.jpg')}")
    assert redirect.status_code == 302, redirect.text
    assert requests.get(redirect.headers["Location"], timeout=30).content == b"legacy bytes"
