"""The ``s3_peer`` suite as the acceptance run of an existing bucket (a dev R2 bucket, docs/deploy.md): proven on
LocalStack. A bucket holding other objects (some at the very keys the tests use, one multipart upload in progress,
its own rules) is given to the suite through ``SCENESTORE_PEER_S3_*``; the suite passes against it, and afterwards the
bucket holds exactly the objects, uploads and rules it held before.

The run is a real ``pytest`` process, as ``make test-peer`` starts it, over the tests that delete prefixes, move
legacy keys, abort uploads and write through presigned URLs (the whole suite would take minutes more).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scenestore.storage import bucket_cors
from scenestore_cli.local import peer

from tests.conftest import unique_name
from tests.peer.conftest import configure_as_deploy_md

pytestmark = [pytest.mark.s3_peer]

REPO = Path(__file__).resolve().parents[2]
SELECTION = [
    "tests/peer/test_peer_deletion.py::test_delete_scene_removes_the_scene_prefix_and_nothing_else",
    "tests/peer/test_peer_migration.py::test_rollback_restores_the_before_state",
    "tests/peer/test_peer_multipart.py::test_abort_leaves_no_upload_behind",
    "tests/peer/test_peer_downloads.py::test_the_storage_redirect_serves_a_legacy_key_the_callers_scene_references",
    "tests/peer/test_peer_uploads.py::test_the_bucket_cors_rule_lets_a_browser_put_and_read_the_etag",
    "tests/peer/test_peer_preflight.py::test_a_bucket_configured_as_deploy_md_passes_every_s3_check",
]
#: Other people's objects, several at keys the selected tests write, list or delete themselves.
OTHER_OBJECTS = [
    "users/user-1/projects/p1/scenes/s1/image/a.png",
    "users/user-1/projects/p1/output/final.mp4",
    "users/alice/projects/p1/scenes/s1/image/photo.png",
    "m/1.jpg",
    "m/shared.jpg",
    "media/legacy.jpg",
    "scenestore-peer/another-run/t-1/kept.bin",
    "scenestore-preflight/another-run/kept.bin",
]


def bucket_state(s3: Any, bucket: str) -> dict[str, Any]:
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return {
        "objects": {o["Key"]: (o["ETag"], o["Size"]) for o in objects},
        "uploads": sorted((u["Key"], u["UploadId"]) for u in uploads),
        "cors": s3.get_bucket_cors(Bucket=bucket)["CORSRules"],
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
    }


def test_the_suite_against_an_existing_bucket_leaves_it_exactly_as_it_was(
    peer_target: peer.PeerTarget, peer_endpoint: str, peer_s3_client: Any
) -> None:
    if peer_target.existing_bucket:
        pytest.skip("this is the acceptance run itself: it proves the mechanism on a LocalStack bucket of its own")
    s3, bucket = peer_s3_client, unique_name("accept")
    s3.create_bucket(Bucket=bucket)
    configure_as_deploy_md(s3, bucket)
    s3.put_bucket_cors(  # the team's own rule beside the app's
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [*bucket_cors((peer.DEFAULT_ORIGIN,))["CORSRules"], _rule("https://x.example")]
        },
    )
    for number, key in enumerate(OTHER_OBJECTS):
        s3.put_object(Bucket=bucket, Key=key, Body=f"someone else's {number}".encode())
    s3.create_multipart_upload(Bucket=bucket, Key="users/user-1/projects/p1/scenes/s1/video/big.mp4")
    before = bucket_state(s3, bucket)

    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENESTORE_PEER_")}
    env.update(
        {
            peer.ENDPOINT_VAR: peer_endpoint,
            peer.BUCKET_VAR: bucket,
            peer.ACCESS_KEY_VAR: peer.ACCESS_KEY,
            peer.SECRET_KEY_VAR: peer.SECRET_KEY,
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "s3_peer", *SELECTION],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "passed" in summary and "skipped" not in summary and "error" not in summary, summary
    assert bucket_state(s3, bucket) == before


def _rule(origin: str) -> dict[str, Any]:
    return {"AllowedOrigins": [origin], "AllowedMethods": ["GET"], "MaxAgeSeconds": 60}


def test_a_confined_client_refuses_the_bucket_level_and_other_buckets(services: Any) -> None:
    from tests.peer.confined import ConfinementError

    bucket = services.settings.bucket
    for call in (
        lambda: services.s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=bucket_cors(("*",))),
        lambda: services.s3.delete_bucket_lifecycle(Bucket=bucket),
        lambda: services.s3.delete_bucket(Bucket=bucket),
        lambda: services.s3.put_object(Bucket="another-bucket", Key="k", Body=b"x"),
    ):
        with pytest.raises(ConfinementError):
            call()
    services.store.put_bytes("media/a.jpg", b"x")  # a legacy key, as the code names it ...
    assert [o.key for o in services.store.iter_objects("")] == ["media/a.jpg"]  # ... is all the test sees
