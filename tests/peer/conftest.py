"""The ``s3_peer`` tests: the same flows as the rest of the suite, against an S3 that checks presigned signatures,
and the suite's usual SecantusDB. By default that S3 is LocalStack's (``scenestore_cli.local.peer``), started for
the session; with ``SCENESTORE_PEER_S3_ENDPOINT_URL``, ``SCENESTORE_PEER_S3_BUCKET`` and the bucket's keys
(``SCENESTORE_PEER_AWS_ACCESS_KEY_ID`` / ``SCENESTORE_PEER_AWS_SECRET_ACCESS_KEY``, ``SCENESTORE_PEER_S3_REGION``)
it is any S3 endpoint and an existing bucket (a dev R2 bucket: the R2 acceptance run, docs/deploy.md).

Either way the tests share one bucket and never change it: each test's ``services`` holds an S3 client confined to
``scenestore-peer/<run>/<test>/`` (``tests.peer.confined``), so the code under test sees a bucket holding only what
the test put there, and every object and multipart upload under the run's prefix is removed at the end. The
bucket the suite creates on LocalStack gets the rules docs/deploy.md gives (its CORS rule for
``https://app.example.com`` and the lifecycle rule); an existing bucket keeps its own. Tests that need a bucket of
their own (misconfigured on purpose) use ``bucket_of_its_own``, on LocalStack only.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenestore import multipart
from scenestore.clients import make_s3_client
from scenestore.db import enable_pre_images, ensure_indexes
from scenestore.services import Services, set_services, use_services
from scenestore.settings import Settings, get_settings
from scenestore.storage import abort_multipart_rule, bucket_cors
from scenestore_cli.local import peer
from scenestore_cli.local.servers import StackError, free_port
from scenestore_cli.local.stack import DevStack

from tests.conftest import fresh_services, unique_name
from tests.peer.confined import confine
from tests.support.presign import ALICE
from tests.support.seed import add_project, add_scene

#: LocalStack waits for open connections on SIGTERM; the suite's data is throwaway, so it is killed soon after.
STOP_TIMEOUT = 3.0
#: The origin of docs/deploy.md's CORS rule (``tests/test_preflight.py`` holds the doc to ``bucket_cors`` of it).
DEPLOY_ORIGIN = peer.DEFAULT_ORIGIN
#: Where a run writes in the shared bucket: ``scenestore-peer/<random>/``, removed at the end of the session.
RUN_PREFIX_ROOT = "scenestore-peer/"


@pytest.fixture(scope="session")
def peer_target() -> peer.PeerTarget:
    try:
        return peer.target_from_env(os.environ)
    except StackError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def peer_origin(peer_target: peer.PeerTarget) -> str:
    """A browser origin the shared bucket's CORS rule allows (``SCENESTORE_PEER_CORS_ORIGIN`` for an existing one)."""
    return peer_target.origin


@pytest.fixture(scope="session")
def peer_endpoint(peer_target: peer.PeerTarget) -> Iterator[str]:
    if peer_target.endpoint:
        yield peer_target.endpoint
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
def peer_settings(stack: DevStack, peer_endpoint: str, peer_target: peer.PeerTarget) -> Settings:
    return stack.settings.with_overrides(
        s3_endpoint_url=peer_endpoint,
        s3_region=peer_target.region,
        aws_access_key_id=peer_target.access_key,
        aws_secret_access_key=peer_target.secret_key,
    )


@pytest.fixture(scope="session")
def peer_s3_client(peer_settings: Settings) -> Iterator[Any]:
    """An unconfined client (the shared bucket's set-up and cleanup, and ``bucket_of_its_own``)."""
    client = make_s3_client(peer_settings)
    yield client
    client.close()  # an open keep-alive connection holds LocalStack's graceful shutdown for its full timeout


def configure_as_deploy_md(client: Any, bucket: str) -> None:
    """docs/deploy.md section 1's two rules: CORS for the app's origin exposing ``ETag``, and the lifecycle rule."""
    client.put_bucket_cors(Bucket=bucket, CORSConfiguration=bucket_cors((DEPLOY_ORIGIN,)))
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [abort_multipart_rule(7)]}
    )


@pytest.fixture(scope="session")
def peer_bucket(peer_target: peer.PeerTarget, peer_s3_client: Any) -> Iterator[str]:
    """The bucket every confined test shares: the existing one given, or one created and configured here."""
    if peer_target.bucket:
        peer_s3_client.head_bucket(Bucket=peer_target.bucket)  # a wrong name or key fails here, once, plainly
        yield peer_target.bucket
        return
    name = unique_name("peer")
    peer_s3_client.create_bucket(Bucket=name)
    configure_as_deploy_md(peer_s3_client, name)
    yield name


@pytest.fixture(scope="session")
def run_prefix(peer_bucket: str, peer_s3_client: Any) -> Iterator[str]:
    prefix = f"{RUN_PREFIX_ROOT}{secrets.token_hex(6)}/"
    yield prefix
    remove_under(peer_s3_client, peer_bucket, prefix)


def remove_under(client: Any, bucket: str, prefix: str) -> None:
    """Abort every multipart upload and delete every object under ``prefix`` (never anything else)."""
    assert prefix.startswith(RUN_PREFIX_ROOT) and prefix.endswith("/")
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


@pytest.fixture
def services(
    peer_settings: Settings,
    peer_bucket: str,
    run_prefix: str,
    peer_s3_client: Any,
    mongo_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Services]:
    """The shared bucket through a client confined to this test's prefix, and a fresh database, installed as the
    process's services and environment. The prefix is emptied and the database dropped afterwards."""
    name = unique_name("peer")
    prefix = f"{run_prefix}{name}/"
    settings = peer_settings.with_overrides(bucket=peer_bucket, mongodb_db=name)
    client = confine(make_s3_client(settings), peer_bucket, prefix)
    svc = Services(settings=settings, s3=client, mongo=mongo_client)
    ensure_indexes(svc.db)
    multipart.ensure_indexes(svc.db)
    enable_pre_images(svc.db)
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        with use_services(svc):
            yield svc
    finally:
        get_settings.cache_clear()
        set_services(None)
        remove_under(peer_s3_client, peer_bucket, prefix)
        client.close()
        mongo_client.drop_database(name)


@pytest.fixture
def bucket_of_its_own(
    peer_target: peer.PeerTarget,
    peer_settings: Settings,
    peer_s3_client: Any,
    mongo_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Services]:
    """A fresh bucket on LocalStack (the local stack's set-up: CORS for ``*`` and the lifecycle rule) and a fresh
    database, unconfined: for tests that change a bucket's rules. Skipped against an existing bucket, which the
    suite never reconfigures."""
    if peer_target.existing_bucket:
        pytest.skip("changes a bucket's rules: runs against LocalStack only, never against an existing bucket")
    yield from fresh_services(peer_settings, peer_s3_client, mongo_client, monkeypatch, "peer")


@pytest.fixture
def project(services: Services) -> str:
    """alice's project ``p1`` with one scene, ``s1``, on the peer (``test_peer_multipart`` has its own, with
    small parts)."""
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    return "p1"
