"""A large video through the demo page in Chromium: parts with progress, a simulated drop and a resume, an abort.

GIVEN the demo page over the local API with 5 MiB parts (so a 11-16 MiB video has three), uploads slowed down by
DevTools network emulation so a person (the test) can act mid-way
WHEN a video goes up in parts, the page's "Simulate a drop" cuts its connections to the bucket, then "Resume"
THEN the page shows the parts (a legend says what each colour means), stops with "interrupted" after writing one
log line for the whole drop (not one per part's retry), and the resume sends only the parts the bucket does not
hold: the bucket ends with the exact bytes, the scene records the key, no multipart upload is left open.
WHEN an upload in parts is aborted
THEN the progress bar and text are reset, nothing is recorded, and the bucket holds no multipart upload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from scenestore.services import Services
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER

from tests.support.browser import (
    SMALL_PART_SIZE,
    TIMEOUT_MS,
    artifact_path,
    chromium_context,
    multipart_uploads,
    open_demo,
    patterned_bytes,
    require_chromium,
    running_api,
    throttle_uploads,
)

pytestmark = pytest.mark.browser

SCENE = "scene-2"
#: Three parts: 5 MiB, 5 MiB and the rest.
VIDEO_SIZE = 2 * SMALL_PART_SIZE + 1_500_000
VIDEO_KEY = f"users/{DEMO_USER}/projects/{DEMO_PROJECT}/scenes/{SCENE}/video/long-take.mp4"
#: Slow enough that the three parts are in flight for seconds, fast enough for a short test.
UPLOAD_RATE = 3 * 1024 * 1024


def part_puts(page: Any) -> list[int]:
    """The part numbers of the UploadPart PUTs the page sends from now on (bucket URLs carry ``partNumber``)."""
    sent: list[int] = []

    def record(request: Any) -> None:
        numbers = parse_qs(urlsplit(request.url).query).get("partNumber")
        if numbers and request.method == "PUT":
            sent.append(int(numbers[0]))

    page.on("request", record)
    return sent


def parts_in_state(page: Any, *states: str) -> list[int]:
    selector = ", ".join(f'#parts [data-state="{state}"]' for state in states)
    return page.eval_on_selector_all(selector, "items => items.map((li) => Number(li.dataset.part))")


def start_video_upload(context: Any, page: Any, video: Path) -> None:
    throttle_uploads(context, page, UPLOAD_RATE)
    page.select_option("#project", DEMO_PROJECT)
    page.select_option("#scene", SCENE)
    page.set_input_files("#file", str(video))
    page.click("#upload")
    page.wait_for_selector("#parts-box:not([hidden])", timeout=TIMEOUT_MS)


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "long take.mp4"
    path.write_bytes(patterned_bytes(VIDEO_SIZE))
    return path


def log_lines(page: Any) -> list[str]:
    return page.eval_on_selector_all("#log li", "items => items.map((li) => li.textContent)")


#: Each part's background colour beside its legend swatch's: ``[[state, part colour, swatch colour | null]]``.
_COLOURS_JS = """() => [...document.querySelectorAll('#parts li')].map((li) => {
  const state = li.dataset.state === 'held' ? 'done' : li.dataset.state;
  const swatch = document.querySelector(`#parts-legend .swatch[data-state="${state}"]`);
  return [li.dataset.state, getComputedStyle(li).backgroundColor, swatch && getComputedStyle(swatch).backgroundColor];
})"""


def assert_legend_explains_the_parts(page: Any) -> None:
    """Every colour in the grid has its entry in the visible legend, in the same colour, with words."""
    assert page.is_visible("#parts-legend")
    for state, colour, swatch in page.evaluate(_COLOURS_JS):
        assert swatch == colour, f"part state {state}: colour {colour}, legend {swatch}"
    labels = page.eval_on_selector_all("#parts-legend li", "items => items.map((li) => li.textContent.trim())")
    assert all(labels) and len(set(labels)) == len(labels), labels
    swatches = page.eval_on_selector_all(
        "#parts-legend .swatch", "items => items.map((s) => getComputedStyle(s).backgroundColor)"
    )
    assert len(set(swatches)) == len(swatches), f"two meanings share a colour: {swatches}"


def test_a_large_video_goes_up_in_parts_and_resumes_after_a_simulated_drop(services: Services, video: Path) -> None:
    chromium = require_chromium()
    with running_api(services, part_size=SMALL_PART_SIZE) as api, chromium_context(chromium) as context:
        page = open_demo(context, api.url)
        start_video_upload(context, page, video)
        assert page.eval_on_selector_all("#parts li", "items => items.length") == 3
        page.wait_for_selector('#parts [data-state="done"]', timeout=TIMEOUT_MS)
        assert_legend_explains_the_parts(page)
        lines_before = log_lines(page)
        page.click("#drop")
        page.wait_for_function("document.body.dataset.upload === 'interrupted'", timeout=TIMEOUT_MS)
        held = parts_in_state(page, "done")
        assert "interrupted" in page.inner_text("#progress-text")
        assert page.is_visible("#resume")
        # One drop, one log line: the drop, every part's retries and the ending, collapsed.
        lines = log_lines(page)
        assert len(lines) == len(lines_before) + 1, lines
        assert lines[0].startswith("simulated drop"), lines[0]
        assert "retries of part" in lines[0] and "“Resume” sends the parts" in lines[0], lines[0]
        assert_legend_explains_the_parts(page)
        assert parts_in_state(page, "lost"), "the parts cut by the drop are shown as lost"
        assert services.db.scenes.find_one({"_id": SCENE}).get("media", {}).get("storageKey") != VIDEO_KEY
        page.screenshot(path=str(artifact_path("browser-demo-multipart-interrupted.png")), full_page=True)

        sent_after_resume = part_puts(page)
        page.click("#resume")
        page.wait_for_function("document.body.dataset.upload === 'done'", timeout=30_000)
        resumed_states = parts_in_state(page, "held")
        row = page.wait_for_selector(f'#files tr[data-key="{VIDEO_KEY}"]', timeout=TIMEOUT_MS)
        assert row.get_attribute("data-size") == str(VIDEO_SIZE)
        assert page.eval_on_selector("#progress", "p => p.value") == 1
        page.screenshot(path=str(artifact_path("browser-demo-multipart-resumed.png")), full_page=True)
        assert page.page_errors == []

    assert 1 <= len(held) < 3, f"the drop came after parts {held}: expected some but not all in the bucket"
    assert sorted(resumed_states) == sorted(held), "the resume showed the parts the bucket held"
    assert sorted(set(sent_after_resume)) == sorted({1, 2, 3} - set(held)), (held, sent_after_resume)
    assert services.store.get_bytes(VIDEO_KEY) == patterned_bytes(VIDEO_SIZE)
    media = services.db.scenes.find_one({"_id": SCENE})["media"]
    assert media["storageKey"] == VIDEO_KEY and media["type"] == "video" and media["size"] == VIDEO_SIZE
    assert multipart_uploads(services) == [], "a finished upload left a multipart upload open"


def test_aborting_an_upload_in_parts_resets_progress_and_leaves_no_upload(services: Services, video: Path) -> None:
    chromium = require_chromium()
    with running_api(services, part_size=SMALL_PART_SIZE) as api, chromium_context(chromium) as context:
        page = open_demo(context, api.url)
        start_video_upload(context, page, video)
        page.wait_for_function("document.querySelector('#progress').value > 0.1", timeout=TIMEOUT_MS)
        assert " of " in page.inner_text("#progress-text")
        page.click("#abort")
        page.wait_for_function("document.body.dataset.upload === 'aborted'", timeout=TIMEOUT_MS)
        page.wait_for_function("document.body.dataset.busy === 'no'", timeout=TIMEOUT_MS)
        progress = page.eval_on_selector("#progress", "p => p.value")
        text = page.inner_text("#progress-text")
        assert page.is_hidden("#parts-box") and page.is_hidden("#resume")
        assert page.query_selector(f'#files tr[data-key="{VIDEO_KEY}"]') is None
        assert page.page_errors == []

    assert progress == 0, "the progress bar still shows the aborted upload"
    assert " of " not in text and "MiB" not in text, f"the progress text still shows the old figures: {text!r}"
    assert multipart_uploads(services) == [], "an aborted upload left its parts in the bucket"
    assert not services.store.exists(VIDEO_KEY)
    assert services.db.scenes.find_one({"_id": SCENE}).get("media", {}).get("storageKey") != VIDEO_KEY
