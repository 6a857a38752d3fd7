"""The demo page end to end in a real browser (Debian's Chromium driven by Playwright).

GIVEN ``scenestore serve --demo``'s parts in-process (the presign app with the demo page on a free port, the local
event runner, seeded demo data) and real media files (a PNG, a WAV, and a WebM the browser records itself)
WHEN a person signs in, uploads through the page's file inputs, replaces a file and deletes a scene
THEN the files are listed with their size and kind, previews load from their storage URLs (image decoded,
audio and video metadata read), the bucket holds exactly the uploaded bytes, a replaced object is deleted, a
legacy key previews like a layout key, and deleting the scene document makes its objects go.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from scenestore.services import Services
from scenestore.tokens import verify_media_token
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER, LEGACY_PROJECT, png_bytes, wav_bytes

from tests.support.browser import (
    TIMEOUT_MS,
    artifact_path,
    chromium_context,
    open_demo,
    record_webm,
    require_chromium,
    running_api,
    throttle_uploads,
    wait_until,
)
from tests.support.seed import keys_in

pytestmark = pytest.mark.browser

SCENE = "scene-2"


def scene_prefix(scene_id: str) -> str:
    return f"users/{DEMO_USER}/projects/{DEMO_PROJECT}/scenes/{scene_id}/"


def upload_through_input(page: Any, files: list[Path]) -> None:
    page.set_input_files("#file", [str(f) for f in files])
    page.click("#upload")
    page.wait_for_function("document.body.dataset.busy === 'no'", timeout=TIMEOUT_MS)


def row(page: Any, key: str) -> Any:
    return page.wait_for_selector(f'#files tr[data-key="{key}"]', timeout=TIMEOUT_MS)


#: Truthy once the media element matched by ``selector`` has loaded: the decoded width, or the metadata's value.
_LOADED_JS = """([selector, what]) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  if (what === "naturalWidth") return el.complete && el.naturalWidth;
  return el.readyState >= 1 && el[what];
}"""


def media_loaded(page: Any, selector: str, what: str) -> Any:
    """Wait until the element's ``what`` (naturalWidth, duration, videoWidth) is known, and return it."""
    return page.wait_for_function(_LOADED_JS, arg=[selector, what], timeout=TIMEOUT_MS).json_value()


def test_demo_page_upload_preview_replace_and_delete(services: Services, tmp_path: Path) -> None:
    chromium = require_chromium()
    image = tmp_path / "sample.png"
    image.write_bytes(png_bytes(80, 60, seed=7))
    audio = tmp_path / "voice.wav"
    audio.write_bytes(wav_bytes(seconds=0.6))
    replacement = tmp_path / "better shot.png"
    replacement.write_bytes(png_bytes(40, 30, seed=11))

    with running_api(services, events=True) as api, chromium_context(chromium) as context:
        page = open_demo(context, api.url)
        video_bytes = record_webm(page)
        if video_bytes is None:
            pytest.skip("this Chromium build cannot record WebM (MediaRecorder), so there is no video to upload")
        video = tmp_path / "clip.webm"
        video.write_bytes(video_bytes)

        # -- image + audio into scene-2 through the file input, with the progress bar --------------------
        page.select_option("#project", DEMO_PROJECT)
        page.select_option("#scene", SCENE)
        upload_through_input(page, [image, audio])
        image_key = scene_prefix(SCENE) + "image/sample.png"
        audio_key = scene_prefix(SCENE) + "audio/voice.wav"
        assert page.eval_on_selector("#progress", "p => p.value") == 1
        for key, source, kind in ((image_key, image, "image"), (audio_key, audio, "audio")):
            listed = row(page, key)
            assert listed.get_attribute("data-size") == str(source.stat().st_size)
            assert listed.get_attribute("data-kind") == kind
            assert services.store.get_bytes(key) == source.read_bytes(), f"bucket bytes of {key} differ"

        # -- the video goes to a new scene (image and video share a scene's media slot) ------------------
        page.click("#new-scene")
        page.wait_for_function(f"document.querySelector('#scene').value !== '{SCENE}'", timeout=TIMEOUT_MS)
        video_scene = page.eval_on_selector("#scene", "s => s.value")
        upload_through_input(page, [video])
        video_key = scene_prefix(video_scene) + "video/clip.webm"
        assert row(page, video_key).get_attribute("data-kind") == "video"
        assert services.store.get_bytes(video_key) == video_bytes

        # -- previews load through /storage/{key}?access_token=... --------------------------------------
        assert media_loaded(page, f'#files img[data-key="{image_key}"]', "naturalWidth") == 80
        assert media_loaded(page, f'#files audio[data-key="{audio_key}"]', "duration") == pytest.approx(0.6, abs=0.05)
        assert media_loaded(page, f'#files video[data-key="{video_key}"]', "videoWidth") == 64
        src = page.eval_on_selector(f'#files img[data-key="{image_key}"]', "i => i.src")
        assert "/storage/users%2F" in src
        media_token = parse_qs(urlsplit(src).query)["access_token"][0]
        claims = verify_media_token(services.settings, media_token)
        assert claims["sub"] == DEMO_USER, "previews use the short-lived media token of POST /media-token"
        assert claims["exp"] - time.time() <= services.settings.media_token_ttl + 5
        assert api.token not in src
        page.screenshot(path=str(artifact_path("browser-demo-uploaded.png")), full_page=True)

        # -- replace scene-2's image through the slot's Replace button ----------------------------------
        page.select_option("#scene", SCENE)
        page.wait_for_selector(f'[data-slot=media] img[data-key="{image_key}"]', timeout=TIMEOUT_MS)
        with page.expect_file_chooser() as chooser:
            page.click("[data-slot=media] button[data-replace]")
        chooser.value.set_files(str(replacement))
        new_image_key = scene_prefix(SCENE) + "image/better-shot.png"
        row(page, new_image_key)
        page.wait_for_function("document.body.dataset.busy === 'no'", timeout=TIMEOUT_MS)
        assert "deleted the previous object" in page.inner_text("#log")
        assert services.store.get_bytes(new_image_key) == replacement.read_bytes()
        assert not services.store.exists(image_key), "the replaced image is still in the bucket"
        assert page.query_selector(f'#files tr[data-key="{image_key}"]') is None

        # -- a legacy key previews like a layout key ------------------------------------------------------
        page.select_option("#project", LEGACY_PROJECT)
        page.select_option("#scene", "legacy-scene-1")
        assert media_loaded(page, '[data-slot=media] img[data-key="media/sunset.png"]', "naturalWidth") == 32

        # -- delete scene-2: the page deletes the document, the event runner the objects -----------------
        page.select_option("#project", DEMO_PROJECT)
        page.select_option("#scene", SCENE)
        assert keys_in(services, scene_prefix(SCENE)) == {new_image_key, audio_key}
        page.once("dialog", lambda dialog: dialog.accept())  # "Delete scene ...?" (see test_browser_demo_page)
        page.click("#delete-scene")
        page.wait_for_function("['done', 'timeout'].includes(document.body.dataset.cleanup)", timeout=70_000)
        assert page.evaluate("document.body.dataset.cleanup") == "done", page.inner_text("#log")
        wait_until(lambda: not keys_in(services, scene_prefix(SCENE)), timeout=10, what="scene-2's objects to go")
        assert services.db.scenes.find_one({"_id": SCENE}) is None
        assert keys_in(services, scene_prefix(video_scene)) == {video_key}, "another scene's objects were touched"
        assert page.query_selector(f'#files tr[data-key="{audio_key}"]') is None
        page.screenshot(path=str(artifact_path("browser-demo-after-delete.png")), full_page=True)
        assert page.page_errors == []


def test_browser_upload_reports_progress_and_aborts_with_xhr(services: Services) -> None:
    """The client's XMLHttpRequest path in Chromium: upload progress events, then an abort mid-way."""
    chromium = require_chromium()
    with running_api(services) as api, chromium_context(chromium) as context:
        page = open_demo(context, api.url)
        throttle_uploads(context, page, 4 * 1024 * 1024)
        result = page.evaluate(
            """async () => {
              const { client } = window.scenestoreDemo;
              const size = 6 * 1024 * 1024;
              const file = new File([new Uint8Array(size)], "big.mp4", { type: "video/mp4" });
              const events = [];
              const onProgress = (p) => events.push(p.loaded);
              await client.upload(file, { projectId: "demo-project", sceneId: "scene-2", onProgress });
              const controller = new AbortController();
              let error = null;
              const abortedAt = [];
              try {
                await client.upload(new File([new Uint8Array(size)], "aborted.mp4", { type: "video/mp4" }), {
                  projectId: "demo-project", sceneId: "scene-2", signal: controller.signal,
                  onProgress: (p) => {
                    abortedAt.push(p.loaded);
                    if (p.loaded > 0 && p.loaded < size) controller.abort();
                  },
                });
              } catch (e) { error = `${e.name}: ${e.message}`; }
              return { events, size, error, abortedAt };
            }"""
        )
    events = result["events"]
    assert events[0] == 0 and events[-1] == result["size"], result
    assert events == sorted(events), "progress never goes backwards"
    assert any(0 < loaded < result["size"] for loaded in events), f"no intermediate progress event: {events}"
    prefix = scene_prefix(SCENE)
    assert services.store.exists(prefix + "video/big.mp4")
    if result["error"] is None:
        pytest.fail(f"the second upload finished before any intermediate progress event could abort it: {result}")
    assert result["error"].startswith("AbortError"), result
    assert not services.store.exists(prefix + "video/aborted.mp4"), f"an aborted upload left an object: {result}"
    media = services.db.scenes.find_one({"_id": SCENE})["media"]
    assert media["storageKey"] == prefix + "video/big.mp4", "an aborted upload was recorded"
