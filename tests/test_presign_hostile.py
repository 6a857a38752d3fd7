"""Hostile inputs: each gets its exact 4xx and the contract's JSON error, never a 500 or a stack trace.

The same table runs over real HTTP (the local server ``scenestore serve`` uses) and in-process through
``chalice.test.Client``, because the two transports encode paths, queries and bodies differently.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from chalice.test import Client
from cryptography.hazmat.primitives.asymmetric import rsa
from scenestore.services import Services
from scenestore.settings import MiB
from scenestore.tokens import issue_media_token, issue_token
from scenestore_cli.local.api import ApiServer, load_presign_app

from tests.support.presign import ALICE, Api
from tests.support.seed import add_project, add_scene

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

VALID = {"kind": "image", "scene_id": "s1", "filename": "photo.png", "content_type": "image/png", "size": 1000}
UPLOADS = "/projects/p1/uploads"


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    code: str
    method: str = "POST"
    path: str = UPLOADS
    body: Any = None
    """A dict/list is sent as JSON, bytes as they are, ``None`` as no body."""
    headers: dict[str, str] = field(default_factory=dict)
    token: str | Callable[[Services], str | None] | None = "alice"
    """``"alice"``: a valid token for alice; a callable builds a special one; ``None``: no Authorization."""


def upload(**changes: Any) -> dict[str, Any]:
    body = {**VALID, **changes}
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()


def _raw_token(claims: dict[str, Any], key: Any = "dev", algorithm: str = "HS256", **kw: Any) -> Callable[..., str]:
    def make(services: Services) -> str:
        secret = services.settings.jwt_secret if key == "dev" else key
        return jwt.encode(claims, secret, algorithm=algorithm, **kw)

    return make


def _now() -> int:
    return int(time.time())


def _alg_none(services: Services) -> str:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    claims = {"sub": ALICE, "exp": _now() + 600}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}."


def _rs256(services: Services) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({"sub": ALICE, "exp": _now() + 600}, key, algorithm="RS256")


CASES: list[Case] = [
    # -- ids: validated, never rewritten; operator objects never reach MongoDB ------------------------------
    Case("scene_id traversal", 400, "invalid_id", body=upload(scene_id="../s1")),
    Case("scene_id with a slash", 400, "invalid_id", body=upload(scene_id="s1/../../bob")),
    Case("scene_id operator injection", 400, "invalid_id", body=upload(scene_id={"$ne": None})),
    Case("scene_id of the wrong JSON type", 400, "invalid_id", body=upload(scene_id=123)),
    Case("scene_id starting with a dot", 400, "invalid_id", body=upload(scene_id=".hidden")),
    Case("project_id traversal, encoded", 400, "invalid_id", path="/projects/..%2Fpb/uploads", body=upload()),
    Case("project_id with NUL", 400, "invalid_id", path="/projects/p1%00/uploads", body=upload()),
    Case("project_id overlong", 400, "invalid_id", path=f"/projects/{'p' * 129}/uploads", body=upload()),
    Case("project_id with RTL override", 400, "invalid_id", path="/projects/p1%E2%80%AE/uploads", body=upload()),
    Case("project_id not UTF-8", 400, "invalid_request", path="/projects/%FF%FE/uploads", body=upload()),
    # -- filenames: sanitized, then an extension must agree with the type --------------------------------------
    Case("filename that is only a path", 400, "invalid_filename", body=upload(filename="../../")),
    Case("filename RTL override hiding .exe", 400, "invalid_filename", body=upload(filename="photo\u202egnp.exe")),
    Case("filename with NUL before .exe", 400, "invalid_filename", body=upload(filename="photo.png\x00.exe")),
    Case("filename extension contradicts type", 400, "invalid_filename", body=upload(filename="photo.jpg")),
    Case("filename without extension", 400, "invalid_filename", body=upload(filename="photo")),
    Case("filename of the wrong JSON type", 400, "invalid_request", body=upload(filename=["a.png"])),
    Case("filename missing", 400, "invalid_request", body=upload(filename=_DROP)),
    # -- sizes and types ------------------------------------------------------------------------------------------
    Case("negative size", 400, "invalid_request", body=upload(size=-1)),
    Case("zero size", 400, "invalid_request", body=upload(size=0)),
    Case("float size", 400, "invalid_request", body=upload(size=10.5)),
    Case("integral float size", 400, "invalid_request", body=upload(size=1000.0)),
    Case("size as a string", 400, "invalid_request", body=upload(size="1000")),
    Case("size as a boolean", 400, "invalid_request", body=upload(size=True)),
    Case("huge size", 413, "too_large", body=upload(size=10**30)),
    Case("size one byte over the limit", 413, "too_large", body=upload(size=20 * MiB + 1)),
    Case(
        "size 1e400 (infinity)",
        400,
        "invalid_request",
        body=json.dumps(upload(size=1)).replace("1}", "1e400}").encode(),
    ),
    Case("size NaN", 400, "invalid_request", body=json.dumps(upload(size=1)).replace("1}", "NaN}").encode()),
    Case("content_type not allowed", 415, "unsupported_type", body=upload(content_type="text/html")),
    Case("content_type of another kind", 415, "unsupported_type", body=upload(content_type="video/mp4")),
    Case("content_type with parameters", 415, "unsupported_type", body=upload(content_type="image/png; x=1")),
    Case("content_type overlong", 415, "unsupported_type", body=upload(content_type="image/" + "p" * 5000)),
    Case("content_type with CRLF", 415, "unsupported_type", body=upload(content_type="image/png\r\nX-Evil: 1")),
    Case("unknown kind", 400, "invalid_request", body=upload(kind="document")),
    Case("kind a lone surrogate", 400, "invalid_request", body=upload(kind="\ud800")),
    Case("content_type with non-ASCII", 415, "unsupported_type", body=upload(content_type="image/p\u00f1g")),
    Case("scene_id a lone surrogate", 400, "invalid_id", body=upload(scene_id="\udfff")),
    Case("project_id Unicode", 400, "invalid_id", path="/projects/%C3%A9t%C3%A9/uploads", body=upload()),
    Case(
        "complete: key with a lone surrogate",
        400,
        "invalid_request",
        path=UPLOADS + "/complete",
        body={"key": "users/alice/projects/p1/output/\ud800.mp4"},
    ),
    Case("kind as an object", 400, "invalid_request", body=upload(kind={"$gt": ""})),
    Case("output with a scene", 400, "invalid_request", body=upload(kind="output", content_type="video/mp4")),
    Case("scene kind without a scene", 400, "invalid_request", body=upload(scene_id=_DROP)),
    # -- bodies ------------------------------------------------------------------------------------------------
    Case("body not JSON", 400, "invalid_request", body=b"kind=image&size=1"),
    Case("body a JSON array", 400, "invalid_request", body=[VALID]),
    Case("body a JSON string", 400, "invalid_request", body=b'"hello"'),
    Case("body empty", 400, "invalid_request", body=b""),
    Case("body not UTF-8", 400, "invalid_request", body=b"\xff\xfe{}"),
    Case("body nested 7000 deep", 400, "invalid_request", body=b"[" * 7000 + b"]" * 7000),
    Case("body over 16 KiB", 413, "too_large", body=upload(filename="a" * 20000 + ".png")),
    Case("body with a 5000-digit number", 400, "invalid_request", body=b'{"size": ' + b"9" * 5000 + b"}"),
    # -- keys ----------------------------------------------------------------------------------------------------
    Case(
        "complete: key operator injection",
        400,
        "invalid_request",
        path=UPLOADS + "/complete",
        body={"key": {"$ne": None}},
    ),
    Case(
        "complete: key with dot segments",
        400,
        "invalid_request",
        path=UPLOADS + "/complete",
        body={"key": "users/alice/projects/p1/../../../bob/projects/pb/output/final.mp4"},
    ),
    Case("complete: legacy key", 400, "invalid_request", path=UPLOADS + "/complete", body={"key": "abc.png"}),
    Case("complete: key missing", 400, "invalid_request", path=UPLOADS + "/complete", body={}),
    Case("files: absolute path", 404, "not_found", method="GET", path="/files?key=%2Fetc%2Fpasswd"),
    Case("files: traversal", 400, "invalid_request", method="GET", path="/files?key=..%2F..%2Fetc%2Fpasswd"),
    Case("files: NUL in key", 400, "invalid_request", method="GET", path="/files?key=abc%00.png"),
    Case("files: RTL override in key", 400, "invalid_request", method="GET", path="/files?key=a%E2%80%AEgnp.exe"),
    Case("files: key over 1024 bytes", 400, "invalid_request", method="GET", path="/files?key=" + "a" * 1100),
    Case("files: key missing", 400, "invalid_request", method="GET", path="/files"),
    Case("files: key repeated", 400, "invalid_request", method="GET", path="/files?key=a.png&key=b.png"),
    Case("storage: absolute path", 404, "not_found", method="GET", path="/storage/%2Fetc%2Fpasswd"),
    Case("storage: traversal", 400, "invalid_request", method="GET", path="/storage/..%2F..%2Fetc%2Fpasswd"),
    Case("storage: not UTF-8", 400, "invalid_request", method="GET", path="/storage/%FF.png"),
    Case("listing: forged cursor", 400, "invalid_request", method="GET", path="/projects/p1/files?cursor=%7B%7D"),
    # -- tokens: every kind of bad token is 401 ---------------------------------------------------------------------
    Case("token missing", 401, "unauthorized", body=upload(), token=None),
    Case("token: not Bearer", 401, "unauthorized", body=upload(), token=None, headers={"Authorization": "Basic YTpi"}),
    Case(
        "token: Bearer without token",
        401,
        "unauthorized",
        body=upload(),
        token=None,
        headers={"Authorization": "Bearer "},
    ),
    Case("token malformed", 401, "unauthorized", body=upload(), token=lambda s: "not.a.jwt"),
    Case("token expired", 401, "unauthorized", body=upload(), token=_raw_token({"sub": ALICE, "exp": _now() - 3600})),
    Case(
        "token wrong signature",
        401,
        "unauthorized",
        body=upload(),
        token=_raw_token({"sub": ALICE, "exp": _now() + 600}, key="another-secret-of-enough-length-1234"),
    ),
    Case("token alg none", 401, "unauthorized", body=upload(), token=_alg_none),
    Case("token RS256 where HS256 is expected", 401, "unauthorized", body=upload(), token=_rs256),
    Case("token without sub", 401, "unauthorized", body=upload(), token=_raw_token({"exp": _now() + 600})),
    Case("token without exp", 401, "unauthorized", body=upload(), token=_raw_token({"sub": ALICE})),
    Case(
        "token with a traversal sub",
        401,
        "unauthorized",
        body=upload(),
        token=_raw_token({"sub": "../bob", "exp": _now() + 600}),
    ),
    Case(
        "token with a numeric sub",
        401,
        "unauthorized",
        body=upload(),
        token=_raw_token({"sub": 42, "exp": _now() + 600}),
    ),
    Case(
        "token in the query of a header-only route",
        401,
        "unauthorized",
        method="GET",
        token=None,
        path="/projects/p1/files?access_token={alice}",
    ),
    Case(
        "media token on an upload route",
        401,
        "unauthorized",
        body=upload(),
        token=lambda s: issue_media_token(s.settings, ALICE),
    ),
    Case(
        "storage: expired token in the query",
        401,
        "unauthorized",
        method="GET",
        token=None,
        path="/storage/abc.png?access_token={expired}",
    ),
]


def _ids() -> list[str]:
    return [case.name for case in CASES]


@dataclass
class Sent:
    status: int
    body: bytes
    content_type: str


def _prepare(case: Case, services: Services) -> tuple[str, dict[str, str], bytes]:
    headers = dict(case.headers)
    if case.token == "alice":
        headers["Authorization"] = f"Bearer {issue_token(services.settings, ALICE)}"
    elif callable(case.token):
        token = case.token(services)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
    path = case.path.replace("{alice}", issue_token(services.settings, ALICE)).replace(
        "{expired}", jwt.encode({"sub": ALICE, "exp": _now() - 3600}, services.settings.jwt_secret)
    )
    if isinstance(case.body, bytes):
        body = case.body
    elif case.body is None:
        body = b""
    else:
        body = json.dumps(case.body).encode()
        headers.setdefault("Content-Type", "application/json")
    return path, headers, body


@pytest.fixture
def hostile_world(services: Services) -> Iterator[Services]:
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    add_project(services, "pb", "bob")
    yield services
    assert services.store.client.list_objects_v2(Bucket=services.settings.bucket).get("KeyCount") == 0
    assert services.db.scenes.find_one({"_id": "s1"}) == {"_id": "s1", "project_id": "p1"}


def _check(case: Case, sent: Sent) -> None:
    assert sent.status == case.status, (case.name, sent.status, sent.body[:300])
    assert sent.content_type.startswith("application/json"), case.name
    payload = json.loads(sent.body)
    assert set(payload) == {"error", "message"}, case.name
    assert payload["error"] == case.code, (case.name, payload)
    assert "Traceback" not in sent.body.decode("utf-8", "replace")


@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_hostile_input_over_http(hostile_world: Services, api_server: ApiServer, case: Case) -> None:
    import http.client

    path, headers, body = _prepare(case, hostile_world)
    connection = http.client.HTTPConnection(api_server.host, api_server.port, timeout=30)
    try:
        # http.client sends the path byte for byte (requests/urllib3 would normalise some of these URLs).
        connection.request(case.method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        sent = Sent(response.status, response.read(), response.getheader("Content-Type") or "")
    finally:
        connection.close()
    _check(case, sent)


@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_hostile_input_in_process(hostile_world: Services, case: Case) -> None:
    path, headers, body = _prepare(case, hostile_world)
    with Client(load_presign_app()) as client:
        response = client.http.request(case.method, path, headers=headers, body=body)
    _check(case, Sent(response.status_code, response.body, response.headers.get("Content-Type", "application/json")))


def test_filename_traversal_is_neutralised_into_the_callers_prefix(api: Api, services: Services) -> None:
    """Path components in a filename are dropped (contract section 1), not rejected: the key stays inside the
    scene's prefix whatever the client sent."""
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    for name, stored in [
        ("../../../../bob/projects/pb/output/x.png", "x.png"),
        ("/etc/passwd.png", "passwd.png"),
        ("C:\\Users\\me\\Desktop\\ünïcødé photo.png", "-n-c-d-photo.png"),
        ("." * 50 + "hidden.png", "hidden.png"),
        ("a" * 500 + ".PNG", "a" * 116 + ".png"),
    ]:
        response = api.presign("p1", "image", scene_id="s1", filename=name)
        assert response.status_code == 201, (name, response.text)
        assert response.json()["key"] == f"users/alice/projects/p1/scenes/s1/image/{stored}", name
