"""A real, unchanged Uppy 6 (@uppy/core + @uppy/aws-s3 6.x from npm) uploads through our routes in Chromium.

GIVEN the recipe of docs/frontend.md (clients/js/uppy/recipe.js: Uppy 6's ``signRequest`` mapped onto the JS
client, single PUTs below the threshold, multipart above it) bundled with esbuild and served from another origin
than the API (as a real frontend is)
WHEN Uppy uploads a PNG and a WAV to a scene, and a file whose name contradicts its type
THEN both real files are in the bucket byte for byte and recorded on the scene's media and audio slots, Uppy
reported progress, and the bad file fails with the API's ``invalid_filename`` code while the others go through.
WHEN Uppy uploads a three-part video (5 MiB parts), once straight and once with a part's connection dropped
THEN the bucket holds the bytes, the scene records the key, no multipart upload is left open, and after the drop
Uppy's retry resumes: it sends only the parts the bucket does not hold.
"""

from __future__ import annotations

import base64
import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from scenestore.services import Services
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER, png_bytes, wav_bytes
from scenestore_cli.local.servers import free_port

from tests.support.browser import (
    CLIENT_DIR,
    SMALL_PART_SIZE,
    DemoApi,
    artifact_path,
    chromium_context,
    multipart_uploads,
    patterned_bytes,
    require_chromium,
    require_node,
    require_npm_packages,
    running_api,
)

pytestmark = pytest.mark.browser

SCENE = "scene-2"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Uppy + scenestore</title></head>
<body><h1>Uppy recipe test page</h1><script type="module" src="uppy-test.js"></script></body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def uppy_site(tmp_path: Path) -> Iterator[str]:
    """The bundled test page on its own origin (a free port): the API and the bucket see a cross-origin app."""
    node = require_node()
    modules = require_npm_packages("@uppy/core", "@uppy/aws-s3", "esbuild")
    site = tmp_path / "site"
    site.mkdir()
    bundle = subprocess.run(
        [node, str(modules / "esbuild" / "bin" / "esbuild"), "uppy/harness.js", "--bundle", "--format=esm",
         f"--outfile={site / 'uppy-test.js'}", "--log-level=warning"],
        cwd=CLIENT_DIR, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bundle.returncode == 0, f"esbuild failed:\n{bundle.stdout}\n{bundle.stderr}"
    (site / "index.html").write_text(PAGE)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(_QuietHandler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, name="uppy-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_readme_recipe_is_the_tested_recipe() -> None:
    """docs/frontend.md shows clients/js/uppy/recipe.js verbatim (from its imports on), so the two cannot drift."""
    recipe = (CLIENT_DIR / "uppy" / "recipe.js").read_text()
    code = recipe[recipe.index("import AwsS3") :]
    assert code in (CLIENT_DIR.parents[1] / "docs" / "frontend.md").read_text()


def _file(name: str, content_type: str, data: bytes) -> dict[str, str]:
    return {"name": name, "type": content_type, "base64": base64.b64encode(data).decode()}


def open_harness(context: Any, site: str, api: DemoApi, errors: list[str]) -> Any:
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    query = f"api={api.url}&token={api.token}&project={DEMO_PROJECT}&scene={SCENE}"
    page.goto(f"{site}/index.html?{query}")
    page.wait_for_selector("body[data-ready=yes]", timeout=20_000)
    return page


def test_uppy_uploads_through_the_presign_route(services: Services, uppy_site: str) -> None:
    chromium = require_chromium()
    image, audio = png_bytes(48, 32, seed=9), wav_bytes(seconds=0.3)
    errors: list[str] = []
    with running_api(services) as api, chromium_context(chromium) as context:
        page = open_harness(context, uppy_site, api, errors)
        result = page.evaluate(
            "files => window.uppyTest.upload(files)",
            [
                _file("uppy shot.png", "image/png", image),
                _file("uppy-voice.wav", "audio/wav", audio),
                _file("not-an-image.txt", "image/png", b"plain text"),
            ],
        )
        page.screenshot(path=str(artifact_path("browser-uppy.png")))

    prefix = f"users/{DEMO_USER}/projects/{DEMO_PROJECT}/scenes/{SCENE}/"
    image_key, audio_key = prefix + "image/uppy-shot.png", prefix + "audio/uppy-voice.wav"
    assert sorted(result["successful"]) == ["uppy shot.png", "uppy-voice.wav"], result
    assert result["failed"] == ["not-an-image.txt"], result
    assert "invalid_filename" in result["errors"]["not-an-image.txt"], result["errors"]
    assert result["recorded"]["uppy shot.png"]["key"] == image_key
    assert result["recorded"]["uppy-voice.wav"]["key"] == audio_key
    assert result["progress"]["uppy shot.png"][-1] == len(image), "Uppy saw the whole file go up"

    assert services.store.get_bytes(image_key) == image
    assert services.store.get_bytes(audio_key) == audio
    scene = services.db.scenes.find_one({"_id": SCENE})
    assert scene["media"]["storageKey"] == image_key and scene["media"]["type"] == "image"
    assert scene["audio"]["storageKey"] == audio_key
    assert errors == []


#: Three parts of 5 MiB, the last one short.
VIDEO_SIZE = 2 * SMALL_PART_SIZE + 1_234_567
VIDEO_KEY = f"users/{DEMO_USER}/projects/{DEMO_PROJECT}/scenes/{SCENE}/video/long-take.mp4"
UPLOAD_VIDEO_JS = """size => window.uppyTest.upload(
  [{ name: "long take.mp4", type: "video/mp4", size }], { multipartThreshold: 5 * 1024 * 1024 })"""


def part_number(url: str) -> int | None:
    """The ``partNumber`` of a presigned UploadPart URL, ``None`` for any other request."""
    values = parse_qs(urlsplit(url).query).get("partNumber")
    return int(values[0]) if values else None


@contextmanager
def multipart_harness(services: Services, site: str, event: str) -> Iterator[tuple[Any, list[int], list[str]]]:
    """The harness page on an API with 5 MiB parts: yields the page, the part number of every UploadPart PUT it
    makes (appended on ``event``: ``request`` or ``requestfinished``) and its errors."""
    chromium = require_chromium()
    errors: list[str] = []
    with running_api(services, part_size=SMALL_PART_SIZE) as api, chromium_context(chromium) as context:
        page = open_harness(context, site, api, errors)
        sent: list[int] = []

        def record(request: Any) -> None:
            number = part_number(request.url)
            if number is not None and request.method == "PUT":
                sent.append(number)

        page.on(event, record)
        yield page, sent, errors


def test_uppy_multipart_upload_lands_and_is_recorded(services: Services, uppy_site: str) -> None:
    with multipart_harness(services, uppy_site, "request") as (page, sent, errors):
        result = page.evaluate(UPLOAD_VIDEO_JS, VIDEO_SIZE)

    assert result["successful"] == ["long take.mp4"], result["errors"]
    assert sorted(sent) == [1, 2, 3], "one PUT per part, straight to the bucket"
    assert result["recorded"]["long take.mp4"]["key"] == VIDEO_KEY
    assert result["progress"]["long take.mp4"][-1] == VIDEO_SIZE
    assert services.store.get_bytes(VIDEO_KEY) == patterned_bytes(VIDEO_SIZE)
    media = services.db.scenes.find_one({"_id": SCENE})["media"]
    assert media["storageKey"] == VIDEO_KEY and media["type"] == "video" and media["size"] == VIDEO_SIZE
    assert multipart_uploads(services) == []
    assert errors == []


def test_uppy_resumes_a_multipart_upload_after_a_dropped_part(services: Services, uppy_site: str) -> None:
    """Fault injection (said so): Playwright resets every connection that carries part 2, as a dropped network
    would, until the test lifts it. Uppy's own retries fail, the file errors; retryAll lists the parts (our list
    route) and sends only what the bucket lacks."""
    with multipart_harness(services, uppy_site, "requestfinished") as (page, sent, _):

        def drop_part_two(route: Any) -> None:
            if part_number(route.request.url) == 2 and route.request.method == "PUT":
                route.abort("connectionreset")
            else:
                route.continue_()

        page.route(lambda url: part_number(url) is not None, drop_part_two)
        first = page.evaluate(UPLOAD_VIDEO_JS, VIDEO_SIZE)
        assert first["successful"] == [] and "long take.mp4" in first["errors"], first
        held_before = sorted(sent)
        page.unroute_all()
        sent.clear()
        second = page.evaluate("() => window.uppyTest.retryAll()")

    assert held_before == [1], f"only part 1 reached the bucket before the drop: {held_before}"
    assert sorted(sent) == [2, 3], f"the resume sent parts the bucket already held: {sent}"
    assert second["recorded"]["long take.mp4"]["key"] == VIDEO_KEY, second
    assert services.store.get_bytes(VIDEO_KEY) == patterned_bytes(VIDEO_SIZE)
    assert multipart_uploads(services) == []
