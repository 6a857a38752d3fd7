"""The local server around the presign app (cli/scenestore_cli/local/api.py), over real HTTP, no browser.

It serves the demo page and the JS client, answers the dev routes the page needs, passes everything else to the
Chalice app unchanged, and answers unknown paths with the contract's JSON 404.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from scenestore.services import Services
from scenestore.tokens import MEDIA_TOKEN_TTL, is_media_token, verify_token
from scenestore_cli.local.api import ApiServer, load_presign_app
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER, seed_demo
from scenestore_cli.local.servers import free_port

from tests.support.browser import CLIENT_DIR, DemoApi, running_api


def call(
    url: str, method: str = "GET", token: str | None = None, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, method=method, headers=headers, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def api(services: Services) -> Any:
    with running_api(services) as running:
        yield running


def test_page_and_client_module_are_served(api: DemoApi) -> None:
    status, headers, body = call(api.url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script type="module" src="/static/demo.js">' in body
    status, headers, body = call(api.url + "/static/scenestore.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert body == (CLIENT_DIR / "scenestore.js").read_bytes()
    status, _, body = call(api.url + "/static/scenestore.d.ts")
    assert status == 200 and body == (CLIENT_DIR / "scenestore.d.ts").read_bytes()
    assert call(api.url + "/static/demo.css")[0] == 200


@pytest.mark.parametrize("path", ["/static/..%2Fapi.py", "/static/.env", "/static/%2e%2e/api.py", "/static/nope.js"])
def test_nothing_outside_the_page_folder_is_served(api: DemoApi, path: str) -> None:
    status, _, body = call(api.url + path)
    assert status == 404
    assert json.loads(body)["error"] == "not_found"


def test_unknown_routes_get_the_contracts_json_404_and_app_routes_still_work(api: DemoApi) -> None:
    status, _, body = call(api.url + "/no/such/route", token=api.token)
    assert status == 404 and json.loads(body)["error"] == "not_found"
    status, _, body = call(api.url + "/health")
    assert status == 200 and json.loads(body) == {"s3": "ok", "mongodb": "ok"}
    status, _, body = call(f"{api.url}/projects/{DEMO_PROJECT}/files", token=api.token)
    assert status == 200 and json.loads(body)["files"]


def test_dev_token_is_for_the_demo_user(api: DemoApi) -> None:
    status, _, body = call(api.url + "/dev/token")
    assert status == 200
    token = json.loads(body)["token"]
    assert verify_token(api.services.settings, token)["sub"] == DEMO_USER


def test_dev_media_token_is_short_lived_and_for_the_caller(api: DemoApi) -> None:
    assert call(api.url + "/dev/media-token")[0] == 401
    status, _, body = call(api.url + "/dev/media-token", token=api.token)
    assert status == 200
    claims = verify_token(api.services.settings, json.loads(body)["token"])
    assert claims["sub"] == DEMO_USER and is_media_token(claims)
    assert claims["exp"] - claims["iat"] == MEDIA_TOKEN_TTL


def test_dev_projects_need_a_token_and_show_only_the_callers(api: DemoApi) -> None:
    status, _, body = call(api.url + "/dev/projects")
    assert status == 401 and json.loads(body)["error"] == "unauthorized"
    status, _, body = call(api.url + "/dev/projects", token=api.token_for("someone-else"))
    assert status == 200 and json.loads(body) == {"projects": []}
    projects = json.loads(call(api.url + "/dev/projects", token=api.token)[2])["projects"]
    assert [p["id"] for p in projects] == ["demo-project", "legacy-project"]
    legacy = projects[1]["scenes"][0]
    assert legacy["id"] == "legacy-scene-1" and legacy["media"]["storageKey"] == "media/sunset.png"


def test_dev_scene_create_and_delete_respect_ownership(api: DemoApi) -> None:
    scenes = f"{api.url}/dev/projects/{DEMO_PROJECT}/scenes"
    status, _, body = call(scenes, "POST", api.token, {"scene_id": "scene-new"})
    assert status == 201 and json.loads(body)["order"] == 3
    assert api.services.db.scenes.find_one({"_id": "scene-new"})["project_id"] == DEMO_PROJECT
    assert call(scenes, "POST", api.token, {"scene_id": "scene-new"})[0] == 409  # taken: one generic conflict
    assert call(scenes, "POST", api.token, {"scene_id": "../x"})[0] == 400

    other = api.token_for("someone-else")
    status, _, body = call(f"{scenes}/scene-new", "DELETE", other)
    assert status == 404 and json.loads(body)["error"] == "not_found"
    assert call(f"{api.url}/dev/projects/legacy-project/scenes/scene-1", "DELETE", api.token)[0] == 404
    assert api.services.db.scenes.count_documents({"_id": {"$in": ["scene-new", "scene-1"]}}) == 2

    status, _, body = call(f"{scenes}/scene-new", "DELETE", api.token)
    assert status == 200 and json.loads(body)["deleted"] == 1
    assert api.services.db.scenes.find_one({"_id": "scene-new"}) is None


def test_dev_routes_can_be_switched_off(services: Services) -> None:
    seed_demo(services)
    server = ApiServer(load_presign_app(), free_port(), dev_routes=False).start()
    try:
        status, _, body = call(server.url + "/dev/token")
        assert status == 404 and json.loads(body)["error"] == "not_found"
        assert call(server.url + "/")[0] == 200
    finally:
        server.stop()


def test_request_log_never_shows_the_access_token(api: DemoApi, capfd: pytest.CaptureFixture[str]) -> None:
    secret = json.loads(call(api.url + "/media-token", "POST", token=api.token)[2])["token"]
    status, _, _ = call(f"{api.url}/storage/media%2Fsunset.png?access_token={secret}")
    assert status == 200  # urllib followed the 302 to the object
    status, _, _ = call(f"{api.url}/no/such/route?access_token={secret}")
    assert status == 404
    err = capfd.readouterr().err
    assert "/no/such/route?access_token=<redacted>" in err
    assert secret not in err
