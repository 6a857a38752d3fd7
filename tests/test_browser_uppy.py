"""A real, unchanged Uppy (@uppy/core + @uppy/aws-s3 from npm) uploads through our presign route in Chromium.

GIVEN the recipe of docs/frontend.md (clients/js/uppy/recipe.js: ``shouldUseMultipart: false``,
``getUploadParameters`` returning the presign response as it is, a complete call on ``upload-success``) bundled
with esbuild and served from another origin than the API (as a real frontend is)
WHEN Uppy uploads a PNG and a WAV to a scene, and a file whose name contradicts its type
THEN both real files are in the bucket byte for byte and recorded on the scene's media and audio slots, Uppy
reported progress, and the bad file fails with the API's ``invalid_filename`` code while the others go through.
"""

from __future__ import annotations

import base64
import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from scenestore.services import Services
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER, png_bytes, wav_bytes
from scenestore_cli.local.servers import free_port

from tests.support.browser import (
    CLIENT_DIR,
    artifact_path,
    chromium_context,
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


def test_uppy_uploads_through_the_presign_route(services: Services, uppy_site: str) -> None:
    chromium = require_chromium()
    image, audio = png_bytes(48, 32, seed=9), wav_bytes(seconds=0.3)
    with running_api(services) as api, chromium_context(chromium) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        query = f"api={api.url}&token={api.token}&project={DEMO_PROJECT}&scene={SCENE}"
        page.goto(f"{uppy_site}/index.html?{query}")
        page.wait_for_selector("body[data-ready=yes]", timeout=20_000)
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
