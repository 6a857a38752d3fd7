"""The JS client's own tests (``node --test clients/js/test/``) against the real local stack and API.

GIVEN the local S3 and MongoDB servers, the presign app served over HTTP on a free port, and the demo data
WHEN node runs the client's tests with the API's URL and tokens in its environment
THEN every test passes: uploads (presign -> PUT -> complete) land and are listed, storage URLs resolve legacy
and layout keys, API errors reach the caller with their code and status, other users see nothing, an abort
records nothing, and listings follow cursors across pages; files above the threshold go up in parts (5 MiB here),
a dropped part is retried, an interrupted upload resumes with only the missing parts, an abort deletes the
multipart upload, another user gets 404 on every multipart route, and storage URLs carry a media token from
``POST /media-token``, never the API token
AND afterwards the bucket holds no unfinished multipart upload (ListMultipartUploads is empty).
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scenestore.services import Services
from scenestore.tokens import issue_media_token
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER, png_bytes, wav_bytes

from tests.support.browser import (
    CLIENT_DIR,
    SMALL_PART_SIZE,
    multipart_uploads,
    require_node,
    require_npm_packages,
    running_api,
)

PAGED_PROJECT = "paged-project"
#: One more object than a listing page holds (1000), so the client has to follow a cursor.
PAGED_COUNT = 1001


def _seed_paged_project(services: Services) -> None:
    services.db.projects.replace_one({"_id": PAGED_PROJECT}, {"_id": PAGED_PROJECT, "user_id": DEMO_USER}, upsert=True)
    prefix = f"users/{DEMO_USER}/projects/{PAGED_PROJECT}/scenes/s1/image/"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: services.store.put_bytes(f"{prefix}f{i:05d}.png", b"p"), range(PAGED_COUNT)))


def _tap_summary(output: str) -> dict[str, int]:
    return {
        name: int(count) for name, count in re.findall(r"^# (tests|pass|fail|skipped|cancelled) (\d+)$", output, re.M)
    }


def test_node_client_tests_pass_against_the_local_api(services: Services, tmp_path: Path) -> None:
    node = require_node()
    (tmp_path / "sample.png").write_bytes(png_bytes(64, 48, seed=5))
    (tmp_path / "sample.wav").write_bytes(wav_bytes(seconds=0.4))
    _seed_paged_project(services)
    with running_api(services, part_size=SMALL_PART_SIZE) as api:
        env = dict(os.environ)
        env.update(
            SCENESTORE_API_URL=api.url,
            SCENESTORE_TOKEN=api.token,
            SCENESTORE_OTHER_TOKEN=api.token_for("someone-else"),
            SCENESTORE_MEDIA_TOKEN=issue_media_token(services.settings, DEMO_USER),
            SCENESTORE_FIXTURES=str(tmp_path),
            SCENESTORE_PAGED_PROJECT=PAGED_PROJECT,
            SCENESTORE_PAGED_COUNT=str(PAGED_COUNT),
            SCENESTORE_PART_SIZE=str(SMALL_PART_SIZE),
            NODE_NO_WARNINGS="1",
        )
        result = subprocess.run(
            [node, "--test", "--test-reporter=tap", "test/"],
            cwd=CLIENT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    output = result.stdout + result.stderr
    summary = _tap_summary(result.stdout)
    assert result.returncode == 0, f"node --test failed ({summary}):\n{output[-6000:]}"
    assert summary.get("fail") == 0 and summary.get("cancelled", 0) == 0, output[-3000:]
    assert summary.get("skipped") == 0, f"no client test may skip when the stack is up:\n{output[-3000:]}"
    assert summary.get("pass", 0) >= 28, summary
    assert multipart_uploads(services) == [], "a client test left a multipart upload open in the bucket"


def test_type_declarations_describe_the_client() -> None:
    """scenestore.d.ts compiles under ``tsc --strict`` with the frontend's uses, and rejects the misuses marked
    ``@ts-expect-error`` in clients/js/types-check/usage.ts (an unused expectation is itself an error)."""
    node = require_node()
    modules = require_npm_packages("typescript")
    result = subprocess.run(
        [node, str(modules / "typescript" / "bin" / "tsc"), "--noEmit", "--strict", "--target", "es2022",
         "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022,dom,dom.iterable",
         "types-check/usage.ts"],
        cwd=CLIENT_DIR, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_node_example_uploads_a_file_from_disk(services: Services, tmp_path: Path) -> None:
    """docs/frontend.md's Node example (clients/js/examples/upload.mjs, shown verbatim) runs as the docs say:
    a Blob from disk with the filename passed, progress at 0% and 100% only, the key and a download URL printed."""
    node = require_node()
    example = CLIENT_DIR / "examples" / "upload.mjs"
    assert example.read_text() in (CLIENT_DIR.parents[1] / "docs" / "frontend.md").read_text()
    shot = tmp_path / "Render Shot.PNG"
    shot.write_bytes(png_bytes(32, 24, seed=3))
    with running_api(services) as api:
        env = dict(os.environ, SCENESTORE_API_URL=api.url, SCENESTORE_TOKEN=api.token, NODE_NO_WARNINGS="1")
        result = subprocess.run(
            [node, str(example), DEMO_PROJECT, "scene-2", str(shot)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    key = f"users/{DEMO_USER}/projects/{DEMO_PROJECT}/scenes/scene-2/image/Render-Shot.png"
    assert lines[:3] == ["0%", "100%", key], lines
    assert lines[3].startswith("http") and "X-Amz-Signature" in lines[3]
    assert services.store.get_bytes(key) == shot.read_bytes()
