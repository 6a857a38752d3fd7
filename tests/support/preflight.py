"""Running ``scenestore preflight`` in tests: in-process (a :class:`Run` on the test's services, fast) or as the
real command, and what a run may have left behind (nothing, ever)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from scenestore.services import Services
from scenestore_cli.preflight import execute
from scenestore_cli.preflight_checks import COLLECTION_PREFIX, S3_PREFIX, Check, Run

SCENESTORE = str(Path(sys.executable).parent / "scenestore")
APP_ORIGIN = "https://app.example.com"
#: Keys a deployed presign function accepts (32 bytes and more, no published default).
DEPLOYABLE_KEYS = {
    "SCENESTORE_JWT_SECRET": "preflight-test-jwt-secret-0123456789abcdef",
    "SCENESTORE_MEDIA_TOKEN_SECRET": "preflight-test-media-secret-0123456789abcdef",
}


def new_run(services: Services, *origins: str, s3: Any = None) -> Run:
    client = s3 or services.s3
    from scenestore.storage import ObjectStore

    return Run(
        settings=services.settings,
        s3=client,
        store=ObjectStore(client, services.settings.bucket),
        db=services.db,
        origins=origins or (APP_ORIGIN,),
    )


def run_all(run: Run) -> dict[str, Any]:
    """Every check and the cleanup, as the command runs them."""
    return execute(run)


def by_id(run: Run) -> dict[str, Check]:
    return {check.id: check for check in run.checks}


def statuses(run: Run, prefix: str = "") -> dict[str, str]:
    return {check.id: check.status for check in run.checks if check.id.startswith(prefix)}


def left_behind(services: Services) -> dict[str, list[str]]:
    """Objects and multipart uploads under ``scenestore-preflight/``, and scratch collections, in this test's
    bucket and database."""
    bucket = services.settings.bucket
    objects = services.s3.list_objects_v2(Bucket=bucket, Prefix=S3_PREFIX).get("Contents", [])
    uploads = services.s3.list_multipart_uploads(Bucket=bucket, Prefix=S3_PREFIX).get("Uploads", [])
    collections = [name for name in services.db.list_collection_names() if name.startswith(COLLECTION_PREFIX)]
    return {
        "objects": [o["Key"] for o in objects],
        "uploads": [u["Key"] for u in uploads],
        "collections": collections,
    }


NOTHING_LEFT: dict[str, list[str]] = {"objects": [], "uploads": [], "collections": []}


def run_cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCENESTORE, "preflight", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def cli_json(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = run_cli(env, "--json", *args)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)
