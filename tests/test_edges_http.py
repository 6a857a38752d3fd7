"""Token rules and local-server edges over real HTTP (issue 13, contract section 4 "Additions (turn 2)").

- ``POST /media-token`` mints media tokens with the service's own key; ``?access_token=`` takes only those
  (scope media, lifetime at most 15 minutes); a media token is refused everywhere else, ``/dev/*`` included;
- dev routes answer only to a loopback ``Host`` (DNS-rebinding guard);
- each request is logged once, without another invocation's log keys, and ``access_token`` is redacted however
  its name is percent-encoded;
- legacy keys with empty segments or a leading ``/`` are readable by the documents' owner; dot segments are not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import jwt
import pytest
import requests
from scenestore.observability import logger
from scenestore.services import Services
from scenestore.tokens import MEDIA_KEY_ID, issue_media_token, issue_token
from scenestore_cli.local.api import ApiServer

from tests.support.presign import ALICE, BOB, Api
from tests.support.seed import add_project, add_scene, put_objects

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

IMAGE = b"\x89PNG-pretend"


@pytest.fixture
def alice_media(services: Services, api: Api) -> str:
    """alice's project p1 with scene s1 showing legacy image ``legacy/a.png``; returns that key."""
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1", media="legacy/a.png")
    put_objects(services, ["legacy/a.png"], IMAGE)
    return "legacy/a.png"


def _encoded(key: str) -> str:
    """As ``encodeURIComponent``, plus dots (so that no client-side URL normalisation drops a ``..``)."""
    return requests.utils.quote(key, safe="").replace(".", "%2E")


def storage(api: Api, key: str, token: str | None = None, **headers: str) -> requests.Response:
    query = {"access_token": token} if token is not None else None
    return requests.get(
        f"{api.base_url}/storage/{_encoded(key)}",
        params=query,
        headers=headers,
        allow_redirects=False,
        timeout=30,
    )


# -- POST /media-token and the query-token rules ---------------------------------------------------


def test_media_token_route_mints_a_short_media_token_that_opens_storage_urls(
    services: Services, api: Api, alice_media: str
) -> None:
    reply = api.post("/media-token")
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert sorted(body) == ["expires_at", "token"]
    token = body["token"]
    assert jwt.get_unverified_header(token)["kid"] == MEDIA_KEY_ID
    claims = jwt.decode(token, services.settings.media_token_secret, algorithms=["HS256"])
    assert (claims["sub"], claims["scope"]) == (ALICE, "media")
    assert claims["exp"] - claims["iat"] == services.settings.media_token_ttl <= 900
    assert body["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))

    redirect = storage(api, alice_media, token)
    assert redirect.status_code == 302
    assert requests.get(redirect.headers["Location"], timeout=30).content == IMAGE


def test_a_full_api_token_in_the_url_is_refused(api: Api, alice_media: str) -> None:
    reply = storage(api, alice_media, api.token(ALICE))
    assert reply.status_code == 401
    assert reply.json()["error"] == "unauthorized"
    # the same token in the header is what it is for
    assert storage(api, alice_media, Authorization=f"Bearer {api.token(ALICE)}").status_code == 302


def test_a_media_token_living_longer_than_15_minutes_is_refused(services: Services, api: Api, alice_media: str) -> None:
    now = int(time.time())
    settings = services.settings
    long_lived = jwt.encode(
        {"sub": ALICE, "iat": now, "exp": now + 901, "scope": "media"},
        settings.media_token_secret,
        algorithm="HS256",
        headers={"kid": MEDIA_KEY_ID},
    )
    assert storage(api, alice_media, long_lived).status_code == 401
    assert storage(api, alice_media, issue_media_token(settings, ALICE, ttl=900)).status_code == 302


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/media-token"),
        ("GET", "/files?key=legacy/a.png"),
        ("GET", "/projects/p1/files"),
        ("POST", "/projects/p1/uploads"),
        ("GET", "/dev/projects"),
        ("GET", "/dev/media-token"),
        ("POST", "/dev/projects/p1/scenes"),
        ("DELETE", "/dev/projects/p1/scenes/s1"),
    ],
)
def test_a_media_token_is_refused_on_every_other_route(
    services: Services, api: Api, alice_media: str, method: str, path: str
) -> None:
    media = issue_media_token(services.settings, ALICE)
    in_header = requests.request(
        method, api.base_url + path, headers={"Authorization": f"Bearer {media}"}, json={}, timeout=30
    )
    assert in_header.status_code == 401, in_header.text
    sep = "&" if "?" in path else "?"
    in_query = requests.request(method, f"{api.base_url}{path}{sep}access_token={media}", json={}, timeout=30)
    assert in_query.status_code == 401, in_query.text
    assert services.db.scenes.count_documents({}) == 1  # nothing created, nothing deleted


def test_the_dev_routes_still_take_an_api_token(api: Api, alice_media: str) -> None:
    reply = api.get("/dev/projects")
    assert reply.status_code == 200
    assert [p["id"] for p in reply.json()["projects"]] == ["p1"]


# -- DNS-rebinding guard ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_dev_token_answers_a_loopback_host(api: Api, api_server: ApiServer, host: str) -> None:
    reply = requests.get(f"{api.base_url}/dev/token", headers={"Host": host.format(port=api_server.port)}, timeout=30)
    assert reply.status_code == 200
    assert reply.json()["token"]


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "evil.example", "localhost", "127.0.0.1", "127.0.0.1:1", "localhost.evil:{port}"]
)
def test_dev_routes_refuse_any_other_host(api: Api, api_server: ApiServer, host: str) -> None:
    headers = {"Host": host.format(port=api_server.port), "Authorization": f"Bearer {api.token(ALICE)}"}
    for path in ("/dev/token", "/dev/projects", "/dev/media-token"):
        reply = requests.get(f"{api.base_url}{path}", headers=headers, timeout=30)
        assert reply.status_code == 403, (path, reply.text)
        assert reply.json()["error"] == "forbidden"
        assert "token" not in reply.json()


# -- request logs ----------------------------------------------------------------------------------


def _lines(err: str, needle: str) -> list[str]:
    return [line for line in err.splitlines() if needle in line]


def test_each_request_is_logged_once(api: Api, logs: Callable[[], str]) -> None:
    assert api.get("/health", user=None).status_code == 200
    assert api.get("/projects/nope/files").status_code == 404
    assert api.get("/static/does-not-exist.js", user=None).status_code == 404
    err = logs()
    assert len(_lines(err, "/health")) == 1, err
    assert len(_lines(err, "/projects/")) == 1, err
    assert len(_lines(err, "does-not-exist.js")) == 1, err


def test_a_request_line_carries_no_key_of_an_earlier_deletion(
    services: Services, api: Api, logs: Callable[[], str]
) -> None:
    from scenestore_cli.local.event_runner import invoke_until_complete, load_handler

    add_project(services, "p1", BOB)
    invoke_until_complete(load_handler("scene"), {"user_id": BOB, "project_id": "p1", "scene_id": "gone-scene"})
    assert '"scene_id":"gone-scene"' in logs()  # the deletion's own line has its keys
    assert api.get("/health", user=None).status_code == 200
    (line,) = [json.loads(text) for text in _lines(logs(), '"route":"/health"')]
    assert not {"user_id", "scene_id", "project_id", "cold_start", "function_request_id"} & set(line)


def test_request_lines_of_one_user_do_not_leak_into_the_next(api: Api, logs: Callable[[], str]) -> None:
    logger.append_keys(scene_id="stale-scene", user_id="stale-user")  # what a deletion in this process leaves
    assert api.get("/health", user=None).status_code == 200
    (line,) = [json.loads(text) for text in _lines(logs(), '"route":"/health"')]
    assert "scene_id" not in line and "user_id" not in line


@pytest.mark.parametrize("name", ["access_token", "access%5Ftoken", "%61ccess_token", "access%5ftoken", "ACCESS_TOKEN"])
def test_access_tokens_never_reach_the_access_log(api: Api, logs: Callable[[], str], name: str) -> None:
    secret = "eyJsecret.value.here"
    for path in ("/no/such/route", "/static/nothing.js", "/dev/token"):
        requests.get(f"{api.base_url}{path}?a=1&{name}={secret}&b=2", timeout=30)
    err = logs()
    assert secret not in err
    assert err.count("<redacted>") == 3, err


# -- odd legacy keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["media//double.jpg", "/leading.jpg", "//both//.jpg/x"])
def test_legacy_keys_with_empty_segments_are_readable_by_their_owner(services: Services, api: Api, key: str) -> None:
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1", media=key)
    put_objects(services, [key], IMAGE)

    listed = api.get("/files", params={"key": key})
    assert listed.status_code == 200, listed.text
    assert listed.json()["key"] == key
    assert requests.get(listed.json()["url"], timeout=30).content == IMAGE

    redirect = storage(api, key, Authorization=f"Bearer {api.token(ALICE)}")
    assert redirect.status_code == 302, redirect.text
    assert requests.get(redirect.headers["Location"], timeout=30).content == IMAGE

    # still tenant-checked: bob's documents do not reference it
    assert api.get("/files", params={"key": key}, user=BOB).status_code == 404
    assert storage(api, key, Authorization=f"Bearer {issue_token(services.settings, BOB)}").status_code == 404


@pytest.mark.parametrize("key", ["media/../a.jpg", "./a.jpg", "media/./a.jpg", "a/..", ".."])
def test_dot_segments_stay_refused(services: Services, api: Api, key: str) -> None:
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1", media=key)
    reply = api.get("/files", params={"key": key})
    assert reply.status_code == 400
    assert storage(api, key, Authorization=f"Bearer {api.token(ALICE)}").status_code == 400
