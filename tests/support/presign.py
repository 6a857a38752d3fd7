"""Fixtures and helpers for the presign function's tests: the app over real HTTP, tokens, sample files.

``tests/conftest.py`` loads this module as a plugin, so its fixtures (``api_server``, ``api``) reach every
test module; documents are seeded with ``tests.support.seed``. The HTTP server is the very ``ApiServer``
that ``scenestore serve`` runs, on a free port, once per session; it reads the process's services on every
request, so each test's ``services`` fixture (fresh bucket and database) is what it talks to.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from scenestore.services import Services
from scenestore.tokens import issue_token
from scenestore_cli.local.api import ApiServer, load_presign_app
from scenestore_cli.local.demo import png_bytes, wav_bytes
from scenestore_cli.local.servers import free_port

from tests.support.seed import add_project, add_scene

ALICE = "alice"
BOB = "bob"

#: One small valid-looking file per kind: (kind, filename, content_type, bytes).
SAMPLES: dict[str, tuple[str, str, bytes]] = {
    "image": ("photo.png", "image/png", png_bytes(16, 16, seed=7)),
    "video": ("clip.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8),
    "audio": ("voice.wav", "audio/wav", wav_bytes(seconds=0.1)),
    "output": ("final.mp4", "video/mp4", b"\x00\x00\x00\x18ftypisom" + bytes(range(255, -1, -1)) * 16),
}


@pytest.fixture(scope="session")
def api_server() -> Iterator[ApiServer]:
    server = ApiServer(load_presign_app(), free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Api:
    """A tiny HTTP client for the presign API with per-user tokens."""

    base_url: str
    services: Services
    session: requests.Session

    def token(self, user_id: str, **kwargs: Any) -> str:
        return issue_token(self.services.settings, user_id, **kwargs)

    def auth(self, user_id: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"} if user_id else {}

    def request(
        self, method: str, path: str, *, user: str | None = ALICE, headers: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        merged = {**self.auth(user), **(headers or {})}
        return self.session.request(
            method, self.base_url + path, headers=merged, allow_redirects=False, timeout=30, **kw
        )

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        if body is not None and "data" not in kw:
            kw["json"] = body
        return self.request("POST", path, **kw)

    # -- the browser flow ---------------------------------------------------------------------------
    def presign(
        self, project_id: str, kind: str, *, scene_id: str | None = None, user: str = ALICE, **overrides: Any
    ) -> requests.Response:
        filename, content_type, data = SAMPLES[kind]
        body: dict[str, Any] = {"kind": kind, "filename": filename, "content_type": content_type, "size": len(data)}
        if scene_id is not None:
            body["scene_id"] = scene_id
        body.update(overrides)
        return self.post(f"/projects/{project_id}/uploads", body, user=user)

    def complete(self, project_id: str, key: str, *, user: str = ALICE) -> requests.Response:
        return self.post(f"/projects/{project_id}/uploads/complete", {"key": key}, user=user)

    def upload(
        self,
        project_id: str,
        kind: str,
        *,
        scene_id: str | None = None,
        user: str = ALICE,
        data: bytes | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """presign -> PUT with the returned headers -> complete; returns the complete response body."""
        sample_name, _content_type, sample = SAMPLES[kind]
        data = sample if data is None else data
        presigned = self.presign(
            project_id, kind, scene_id=scene_id, user=user, size=len(data), filename=filename or sample_name
        )
        assert presigned.status_code == 201, presigned.text
        put = put_presigned(presigned.json(), data)
        assert put.status_code == 200, put.text
        done = self.complete(project_id, presigned.json()["key"], user=user)
        assert done.status_code == 200, done.text
        return dict(done.json())


def put_presigned(presigned: dict[str, Any], data: bytes) -> requests.Response:
    """What a browser (or Uppy's AwsS3 plugin) does with the presign response: PUT, with exactly its headers."""
    return requests.request(presigned["method"], presigned["url"], data=data, headers=presigned["headers"], timeout=30)


@pytest.fixture
def api(services: Services, api_server: ApiServer) -> Iterator[Api]:
    with requests.Session() as session:
        yield Api(api_server.url, services, session)


def seed_two_tenants(services: Services) -> None:
    """alice owns project ``pa`` (scene ``sa``), bob owns ``pb`` (scene ``sb``)."""
    add_project(services, "pa", ALICE)
    add_scene(services, "sa", "pa")
    add_project(services, "pb", BOB)
    add_scene(services, "sb", "pb")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything logged from here on: the access lines (stderr) and the structured request lines (INFO; the
    test session runs at WARNING), whose handler is pointed at a buffer for the test."""
    from scenestore.observability import logger

    handler = logger.registered_handler
    level, stream = logger.log_level, handler.stream
    buffer = io.StringIO()
    logger.setLevel("INFO")
    handler.setStream(buffer)
    capfd.readouterr()

    def read() -> str:
        time.sleep(0.2)  # the server thread writes its access line after the reply
        return buffer.getvalue() + capfd.readouterr().err

    try:
        yield read
    finally:
        handler.setStream(stream)
        logger.setLevel(level)
