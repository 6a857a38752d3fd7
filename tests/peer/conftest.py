"""The ``s3_peer`` tests: the same flows as the rest of the suite, against LocalStack's S3 with presigned-signature
validation on (``scenestore_cli.local.peer``), and the suite's usual SecantusDB.

``services`` is overridden here: its bucket lives on the peer, so every helper and fixture built on it (the
presign ``api``, the seeders, the migration and deletion helpers) runs against a server that checks signatures.
``SCENESTORE_PEER_S3_ENDPOINT`` points the tests at a peer already running; otherwise one is started for the
session on a free port. When the peer could not be installed, every test here skips with the reason.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenestore.clients import make_s3_client
from scenestore.services import Services
from scenestore.settings import Settings
from scenestore_cli.local import peer
from scenestore_cli.local.servers import free_port
from scenestore_cli.local.stack import DevStack

from tests.conftest import fresh_services
from tests.support.presign import ALICE
from tests.support.seed import add_project, add_scene

#: LocalStack waits for open connections on SIGTERM; the suite's data is throwaway, so it is killed soon after.
STOP_TIMEOUT = 3.0


@pytest.fixture(scope="session")
def peer_endpoint() -> Iterator[str]:
    given = os.environ.get("SCENESTORE_PEER_S3_ENDPOINT")
    if given:
        yield given
        return
    reason = peer.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="scenestore-peer-") as tmp:
        port = free_port()
        server = peer.start_peer(port, Path(tmp), Path(tmp) / "logs")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="session")
def peer_settings(stack: DevStack, peer_endpoint: str) -> Settings:
    return stack.settings.with_overrides(
        s3_endpoint_url=peer_endpoint, aws_access_key_id=peer.ACCESS_KEY, aws_secret_access_key=peer.SECRET_KEY
    )


@pytest.fixture(scope="session")
def peer_s3_client(peer_settings: Settings) -> Iterator[Any]:
    client = make_s3_client(peer_settings)
    yield client
    client.close()  # an open keep-alive connection holds LocalStack's graceful shutdown for its full timeout


@pytest.fixture
def services(
    peer_settings: Settings, peer_s3_client: Any, mongo_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """A fresh bucket on the peer and a fresh database, installed as the process's services and environment."""
    yield from fresh_services(peer_settings, peer_s3_client, mongo_client, monkeypatch, "peer")


@pytest.fixture
def project(services: Services) -> str:
    """alice's project ``p1`` with one scene, ``s1``, on the peer (``test_peer_multipart`` has its own, with
    small parts)."""
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    return "p1"
