"""Chromium against a store that checks CORS: the JS client on one origin, LocalStack's S3 on another.

GIVEN the demo page and the JS client served by the local API (origin A), uploads going straight to LocalStack's S3
(origin B, signatures and CORS checked), and the bucket's CORS rule exactly as docs/deploy.md gives it, for A
WHEN the client uploads a small file (one presigned PUT) and an 11 MiB video (three 5 MiB parts)
THEN both complete, the bytes in the bucket are the file's, and the video reads back through ``/storage/{key}``.
WHEN the rule lacks ``ExposeHeaders: ETag``
THEN the upload in parts fails with ``cors_etag_hidden``, an error naming the bucket's CORS rule (not a network
error), the page shows the parts' final state (none left "sending", the bar reset), no Resume, and the bucket holds
no multipart upload.
WHEN the rule allows another origin only (the preflight of every PUT fails)
THEN a small file and a video both fail at once with ``cors_refused`` naming this page's origin (no retries, no
"connection lost", no Resume), and the multipart upload the page started is aborted: ListMultipartUploads is empty.

Each test sets its own bucket's rule (``bucket_of_its_own``), so it runs against LocalStack, never against an
existing bucket.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenestore.services import Services
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER, png_bytes

from tests.support.browser import (
    REPO,
    SMALL_PART_SIZE,
    TIMEOUT_MS,
    DemoApi,
    artifact_path,
    chromium_context,
    multipart_uploads,
    open_demo,
    patterned_bytes,
    require_chromium,
    running_api,
)

pytestmark = [pytest.mark.s3_peer, pytest.mark.browser]

SCENE = "scene-2"
#: Three parts: 5 MiB, 5 MiB and the rest; above the demo page's 8 MiB threshold.
VIDEO_SIZE = 2 * SMALL_PART_SIZE + 1_500_000
VIDEO_KEY = f"users/{DEMO_USER}/projects/{DEMO_PROJECT}/scenes/{SCENE}/video/long-take.mp4"
#: In scene-1: the video takes scene-2's media slot (and would replace an image there).
IMAGE_KEY = f"users/{DEMO_USER}/projects/{DEMO_PROJECT}/scenes/scene-1/image/small.png"
#: The origin docs/deploy.md's rule names, replaced by the page's own.
DOC_ORIGIN = "https://app.example.com"


def deploy_md_cors_rule() -> dict[str, Any]:
    """The CORS configuration of docs/deploy.md (its ``cors.json``), as an operator pastes it."""
    text = (REPO / "docs" / "deploy.md").read_text()
    found = re.search(r"cat > cors\.json <<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert found, "docs/deploy.md no longer shows cors.json"
    rule: dict[str, Any] = json.loads(found.group(1))
    assert rule["CORSRules"][0]["AllowedOrigins"] == [DOC_ORIGIN], rule
    return rule


def set_cors(services: Services, rule: dict[str, Any]) -> None:
    services.s3.put_bucket_cors(Bucket=services.settings.bucket, CORSConfiguration=rule)  # type: ignore[arg-type]


def for_origin(rule: dict[str, Any], origin: str) -> dict[str, Any]:
    changed = json.loads(json.dumps(rule))
    changed["CORSRules"][0]["AllowedOrigins"] = [origin]
    return changed


@pytest.fixture
def peer_demo(bucket_of_its_own: Services) -> Iterator[tuple[DemoApi, Any]]:
    """The demo page's API over a LocalStack bucket (5 MiB parts) and a Chromium context: ``(api, context)``."""
    chromium = require_chromium()
    with running_api(bucket_of_its_own, part_size=SMALL_PART_SIZE) as api, chromium_context(chromium) as context:
        yield api, context


def upload_through_page(page: Any, path: Path) -> None:
    page.select_option("#project", DEMO_PROJECT)
    page.select_option("#scene", SCENE)
    page.set_input_files("#file", str(path))
    page.click("#upload")
    page.wait_for_function("['done', 'failed', 'interrupted'].includes(document.body.dataset.upload)", timeout=30_000)
    page.wait_for_function("document.body.dataset.busy === 'no'", timeout=TIMEOUT_MS)


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "long take.mp4"
    path.write_bytes(patterned_bytes(VIDEO_SIZE))
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "small.png"
    path.write_bytes(png_bytes(40, 30, seed=5))
    return path


#: The client in the page uploads both files, then reads the video back through /storage/{key} (a 302 to a
#: presigned GET on the other origin) and hashes what it read.
UPLOAD_AND_READ_BACK_JS = """async ({ image, videoSize }) => {
  const { client } = window.scenestoreDemo;
  const small = new File([Uint8Array.from(image)], "small.png", { type: "image/png" });
  const imageKey = await client.upload(small, { projectId: "demo-project", sceneId: "scene-1" });
  const big = new File([window.patternedBytes(videoSize)], "long take.mp4", { type: "video/mp4" });
  const parts = [];
  const videoKey = await client.upload(big, {
    projectId: "demo-project", sceneId: "scene-2", onPart: ({ partNumber, state }) => parts.push([partNumber, state]),
  });
  const response = await fetch(await client.storageUrl(videoKey));
  const body = await response.arrayBuffer();
  const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", body))];
  return { imageKey, videoKey, parts, status: response.status, url: response.url, size: body.byteLength,
           sha256: digest.map((b) => b.toString(16).padStart(2, "0")).join("") };
}"""


def test_the_deploy_md_rule_lets_a_browser_upload_in_one_put_and_in_parts(
    peer_demo: tuple[DemoApi, Any], image: Path
) -> None:
    api, context = peer_demo
    services = api.services
    store_origin = services.settings.s3_endpoint_url
    assert store_origin and store_origin.rstrip("/") != api.url, "the bucket must be on another origin than the page"
    set_cors(services, for_origin(deploy_md_cors_rule(), api.url))
    page = open_demo(context, api.url)
    result = page.evaluate(UPLOAD_AND_READ_BACK_JS, {"image": list(image.read_bytes()), "videoSize": VIDEO_SIZE})
    page.screenshot(path=str(artifact_path("browser-peer-cors-ok.png")), full_page=True)

    assert result["imageKey"] == IMAGE_KEY and result["videoKey"] == VIDEO_KEY, result
    assert sorted(n for n, state in result["parts"] if state == "done") == [1, 2, 3], result["parts"]
    assert services.store.get_bytes(IMAGE_KEY) == image.read_bytes()
    assert services.store.get_bytes(VIDEO_KEY) == patterned_bytes(VIDEO_SIZE)
    assert result["status"] == 200 and result["url"].startswith(store_origin), result["url"]
    assert result["size"] == VIDEO_SIZE
    assert result["sha256"] == hashlib.sha256(patterned_bytes(VIDEO_SIZE)).hexdigest(), "read back other bytes"
    assert multipart_uploads(services) == []
    assert page.page_errors == []


def test_a_rule_without_exposed_etag_fails_naming_the_cors_rule_and_leaves_no_upload(
    peer_demo: tuple[DemoApi, Any], video: Path
) -> None:
    api, context = peer_demo
    rule = for_origin(deploy_md_cors_rule(), api.url)
    del rule["CORSRules"][0]["ExposeHeaders"]
    set_cors(api.services, rule)
    page = open_demo(context, api.url)
    upload_through_page(page, video)
    page.screenshot(path=str(artifact_path("browser-peer-cors-no-etag.png")), full_page=True)

    assert page.evaluate("document.body.dataset.upload") == "failed"
    error = page.inner_text("#error")
    assert error.startswith("cors_etag_hidden: the bucket's CORS rule does not expose the ETag header"), error
    assert "network" not in error
    states = page.eval_on_selector_all("#parts li", "items => items.map((li) => li.dataset.state)")
    assert len(states) == 3 and "failed" in states, states
    assert set(states) <= {"failed", "discarded"}, f"the grid is not in its final state: {states}"
    assert page.eval_on_selector("#progress", "p => p.value") == 0, "the bar stayed where the upload stopped"
    assert "upload failed" in page.inner_text("#progress-text")
    assert page.is_hidden("#resume")
    assert multipart_uploads(api.services) == [], "the refused upload was left open in the bucket"
    assert page.page_errors == []


def test_a_rule_for_another_origin_only_is_reported_as_a_cors_refusal(
    peer_demo: tuple[DemoApi, Any], image: Path, video: Path
) -> None:
    api, context = peer_demo
    set_cors(api.services, deploy_md_cors_rule())  # for https://app.example.com only
    page = open_demo(context, api.url)
    refusal = f"cors_refused: the bucket's CORS rule does not allow this page's origin ({api.url})"

    upload_through_page(page, image)
    assert page.evaluate("document.body.dataset.upload") == "failed"
    assert page.inner_text("#error").startswith(refusal), page.inner_text("#error")
    assert api.services.store.head(IMAGE_KEY.replace("scene-1", SCENE)) is None

    upload_through_page(page, video)
    page.screenshot(path=str(artifact_path("browser-peer-cors-refused.png")), full_page=True)
    assert page.evaluate("document.body.dataset.upload") == "failed", page.inner_text("#log")
    assert page.inner_text("#error").startswith(refusal), page.inner_text("#error")
    log = page.inner_text("#log")
    assert "retr" not in log and "connection lost" not in log and "network_error" not in log, log
    assert page.is_hidden("#resume"), "a CORS refusal offered a Resume that can only fail again"
    states = page.eval_on_selector_all("#parts li", "items => items.map((li) => li.dataset.state)")
    assert set(states) <= {"failed", "discarded"}, states
    assert multipart_uploads(api.services) == [], "the multipart upload the page started was left open"
    assert api.services.store.head(VIDEO_KEY) is None
    assert page.page_errors == []
