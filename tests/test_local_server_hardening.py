"""The local HTTP server (``scenestore serve``) against hostile requests, over real sockets.

- Anything JWT-shaped is redacted wherever it stands in a logged line: any parameter name (``token``,
  ``access+token``, ``access_token[]``), the path, percent-encoded dots, an error message quoting the request line.
- A ``Content-Length`` that is not one whole number is 400 with a JSON body, the connection closed, no traceback.
- The ``/dev`` scene-create route answers a taken scene id with one generic 409, whoever's scene holds it.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest
import requests
from scenestore.services import Services
from scenestore.tokens import issue_media_token
from scenestore_cli.local.api import ApiServer, redact_tokens

from tests.support.presign import ALICE, BOB, Api, seed_two_tenants

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")


def raw_request(server: ApiServer, data: bytes) -> bytes:
    """Send ``data`` as it is (requests would fix a bad header) and read until the server closes."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- tokens in the access log -----------------------------------------------------------------------------------
def test_redact_tokens_takes_every_jwt_shape_and_leaves_the_rest() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
    assert redact_tokens(f"GET /x?token={jwt_like}&b=2 HTTP/1.1") == "GET /x?token=<redacted>&b=2 HTTP/1.1"
    assert redact_tokens(f"/storage/{jwt_like}/a.png") == "/storage/<redacted>/a.png"
    encoded = jwt_like.replace(".", "%2E", 1).replace(".", "%2e")
    assert redact_tokens(f"?q={encoded}") == "?q=<redacted>"
    unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."  # alg none: an empty signature
    assert redact_tokens(unsigned) == "<redacted>"
    for harmless in ("/static/demo.js", "/projects/p1/files?cursor=eyJwIjoibGF5b3V0In0", "v1.2.3", "eyJ.x"):
        assert redact_tokens(harmless) == harmless


def test_no_token_reaches_the_log_whatever_carries_it(api: Api, logs: Callable[[], str]) -> None:
    bearer = api.token(ALICE)
    media = issue_media_token(api.services.settings, ALICE)
    base = api.base_url
    for token in (bearer, media):
        for target in (
            f"/no/such/route?token={token}",
            f"/no/such/route?access+token={token}",
            f"/no/such/route?access_token[]={token}",
            f"/no/such/route?a=1&x={token.replace('.', '%2E')}",
            f"/no/such/{token}/route",
            f"/static/{token}",
            f"/dev/projects?token={token}",
            f"/files?key=a.png&token={token}",  # an app route: its own line logs the route template only
            f"/storage/{token}?access_token={token}",
        ):
            requests.get(base + target, timeout=30)
    # a request line the server cannot parse is quoted in its error line
    raw_request(api_server_of(api), f"GET /x?token={bearer} HTTP/1.1 trailing\r\n\r\n".encode())
    err = logs()
    for token in (bearer, media):
        for part in token.split("."):
            assert part not in err, err
    assert err.count("<redacted>") == 2 * 7 + 1, err  # app routes log their route template, not the target
    assert "/no/such/route?token=<redacted>" in err  # what is not a token stays readable


def api_server_of(api: Api) -> ApiServer:
    host, port = api.base_url.removeprefix("http://").split(":")
    server = ApiServer.__new__(ApiServer)  # only host and port are read by raw_request
    server.host, server.port = host, int(port)
    return server


# -- Content-Length ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lengths",
    [["abc"], ["-1"], ["1e3"], ["0x10"], [" "], ["5", "6"], ["99999999999999999999"]],
    ids=["letters", "negative", "exponent", "hex", "blank", "two-values", "too-many-digits"],
)
@pytest.mark.parametrize("target", ["POST /projects/p1/uploads", "GET /health", "POST /dev/projects/p1/scenes"])
def test_a_content_length_that_is_not_one_whole_number_is_400(
    api: Api, logs: Callable[[], str], lengths: list[str], target: str
) -> None:
    server = api_server_of(api)
    headers = "".join(f"Content-Length: {value}\r\n" for value in lengths)
    request = f"{target} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n{headers}\r\n{{}}"
    started = time.monotonic()
    answer = raw_request(server, request.encode())  # returns once the server has closed the connection
    assert time.monotonic() - started < 5
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {"error": "invalid_request", "message": "Content-Length must be one whole number"}
    err = logs()
    assert "Traceback" not in err and "Exception" not in err, err
    assert requests.get(api.base_url + "/health", timeout=30).status_code == 200  # the server serves on


def test_a_whole_content_length_still_reaches_the_app(api: Api) -> None:
    server = api_server_of(api)
    body = b'{"key": "media/a.png"}'
    request = (
        f"POST /projects/p1/uploads/complete HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        f"Authorization: Bearer {api.token(ALICE)}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    head = raw_request(server, request).partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 400 ")  # the app's own answer: not an upload key
    assert b"Content-Type: application/json" in head


# -- /dev scene ids -----------------------------------------------------------------------------------------------
def test_a_taken_scene_id_is_one_generic_conflict_whoever_holds_it(api: Api, services: Services) -> None:
    seed_two_tenants(services)  # alice: pa/sa, bob: pb/sb
    create = f"{api.base_url}/dev/projects/pa/scenes"
    auth = {"Authorization": f"Bearer {api.token(ALICE)}"}
    bobs = requests.post(create, json={"scene_id": "sb"}, headers=auth, timeout=30)
    own = requests.post(create, json={"scene_id": "sa"}, headers=auth, timeout=30)
    assert bobs.status_code == own.status_code == 409, (bobs.text, own.text)
    assert bobs.json() == own.json()  # nothing tells bob's scene from alice's own
    assert bobs.json()["error"] == "conflict"
    assert "sb" not in bobs.text and "exist" not in bobs.text and BOB not in bobs.text
    assert services.db.scenes.find_one({"_id": "sb"}) == {"_id": "sb", "project_id": "pb"}

    fresh = requests.post(create, json={}, headers=auth, timeout=30)
    assert fresh.status_code == 201, fresh.text
    assert services.db.scenes.find_one({"_id": fresh.json()["id"]})["project_id"] == "pa"
