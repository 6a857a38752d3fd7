"""The demo page's rough edges (issue 13's list), each in Chromium against the local API.

GIVEN the demo page served by the local API over seeded demo data
WHEN a person pastes a garbage token, a wrongly signed token, or the token of a user with no projects; opens the
page 390 px wide; deletes a scene; looks for the page's source; signs in; uploads a .txt file
THEN a bad token is refused with one clear error, leaves the page signed out and is not kept for a reload; a user
without projects is told why nothing can be uploaded (no TypeError, no dead buttons); at phone width nothing
scrolls sideways and keys stay readable; a scene is deleted only after a confirmation; the page links demo.js;
signed in, only "Sign out" is left of the sign-in controls; the .txt gets the server's 415 naming the types.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import pytest
from scenestore.services import Services
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER

from tests.support.browser import (
    TIMEOUT_MS,
    DemoApi,
    artifact_path,
    chromium_context,
    open_demo,
    require_chromium,
    running_api,
)
from tests.support.seed import add_project

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def demo(services: Services) -> Any:
    """The API with the demo page, and a Chromium context: ``(api, context)``."""
    chromium = require_chromium()
    with running_api(services, events=True) as api, chromium_context(chromium) as context:
        yield api, context


def paste_token(page: Any, token: str) -> None:
    page.click("#auth summary")
    page.fill("#token-input", token)
    page.click("#use-token")


def stored_token(page: Any) -> str | None:
    return page.evaluate("sessionStorage.getItem('scenestore-demo-token')")


def assert_signed_out_with_error(page: Any, code: str) -> None:
    page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
    assert code in page.inner_text("#error")
    assert page.inner_text("#who") == "not signed in", "a refused token must not show 'signed in'"
    assert page.evaluate("document.body.dataset.auth") == "signed-out"
    assert page.is_hidden("#pick") and page.is_hidden("#files-box")
    assert stored_token(page) is None, "a refused token was kept for the next reload"


def test_a_garbage_token_is_refused_and_does_not_survive_a_reload(demo: tuple[DemoApi, Any]) -> None:
    api, context = demo
    page = open_demo(context, api.url, sign_in=False)
    paste_token(page, "garbage pasted from the wrong window")
    assert_signed_out_with_error(page, "invalid_token")

    page.reload()
    page.wait_for_load_state("networkidle")
    assert page.is_hidden("#error") and page.inner_text("#who") == "not signed in"
    page.click("#sign-in")
    page.wait_for_selector("body[data-ready=yes]", timeout=TIMEOUT_MS)
    assert page.inner_text("#who") == f"signed in as {DEMO_USER}"
    assert page.page_errors == []


def test_a_garbage_token_kept_by_an_older_page_is_dropped_on_load(demo: tuple[DemoApi, Any]) -> None:
    """The old page saved a token before checking it: such a stored token is checked, refused and forgotten."""
    api, context = demo
    page = open_demo(context, api.url, sign_in=False)
    page.evaluate("sessionStorage.setItem('scenestore-demo-token', 'x.y')")
    page.reload()
    assert_signed_out_with_error(page, "invalid_token")
    page.reload()
    page.wait_for_load_state("networkidle")
    assert page.is_hidden("#error")
    assert page.page_errors == []


def test_a_wrongly_signed_token_shows_unauthorized_and_not_signed_in(demo: tuple[DemoApi, Any]) -> None:
    api, context = demo
    forged = jwt.encode({"sub": DEMO_USER, "exp": int(time.time()) + 600}, "not-the-service-secret-" * 2, "HS256")
    page = open_demo(context, api.url, sign_in=False)
    paste_token(page, forged)
    assert_signed_out_with_error(page, "unauthorized")
    assert page.page_errors == []


def test_a_failed_sign_in_after_a_good_one_signs_out(demo: tuple[DemoApi, Any]) -> None:
    """Signed in, the token field is hidden (only "Sign out" is left): signing out and pasting a bad token leaves
    the page signed out with the error, and the earlier good token is not kept either."""
    api, context = demo
    page = open_demo(context, api.url)
    assert page.is_hidden("#auth summary")
    page.click("#sign-out")
    paste_token(page, "not.a.token")
    assert_signed_out_with_error(page, "invalid_token")


def test_a_user_without_projects_is_told_why_and_gets_no_type_error(demo: tuple[DemoApi, Any]) -> None:
    api, context = demo
    page = open_demo(context, api.url, sign_in=False)
    paste_token(page, api.token_for("nobody-yet"))
    page.wait_for_selector("body[data-ready=yes]", timeout=TIMEOUT_MS)
    assert page.inner_text("#who") == "signed in as nobody-yet"
    assert page.is_visible("#no-projects"), "the page must say why there is nothing to upload to"
    assert page.is_disabled("#new-scene") and page.is_disabled("#upload") and page.is_disabled("#delete-scene")
    assert page.is_hidden("#upload-box")
    page.click("#new-scene", force=True)  # a disabled button: the click must do nothing, and throw nothing
    page.wait_for_timeout(300)
    assert page.is_hidden("#error")
    assert page.page_errors == []


def test_a_project_without_scenes_disables_upload_and_says_why(demo: tuple[DemoApi, Any]) -> None:
    api, context = demo
    add_project(api.services, "empty-project", DEMO_USER, title="Empty")
    page = open_demo(context, api.url)
    page.select_option("#project", "empty-project")
    page.wait_for_function("document.querySelector('#upload').disabled", timeout=TIMEOUT_MS)
    assert page.get_attribute("#upload", "title") == "create a scene first"
    page.click("#new-scene")
    page.wait_for_function("!document.querySelector('#upload').disabled", timeout=TIMEOUT_MS)
    assert api.services.db.scenes.count_documents({"project_id": "empty-project"}) == 1
    assert page.page_errors == []


def test_at_phone_width_nothing_scrolls_sideways_and_keys_stay_readable(demo: tuple[DemoApi, Any]) -> None:
    api, context = demo
    page = open_demo(context, api.url)
    page.set_viewport_size(PHONE)
    page.select_option("#project", DEMO_PROJECT)
    page.wait_for_selector("#files tbody tr", timeout=TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    widths = page.evaluate(
        """() => ({
          page: document.documentElement.scrollWidth,
          body: document.body.scrollWidth,
          viewport: window.innerWidth,
          keys: [...document.querySelectorAll('#files td.key')].map((td) => td.getBoundingClientRect().width),
        })"""
    )
    page.screenshot(path=str(artifact_path("browser-demo-390px.png")), full_page=True)
    assert widths["viewport"] == PHONE["width"]
    assert widths["page"] <= widths["viewport"] and widths["body"] <= widths["viewport"], widths
    assert widths["keys"] and min(widths["keys"]) >= 250, f"a key column narrower than 250 px wraps badly: {widths}"
    assert page.page_errors == []


def test_delete_scene_asks_first_and_keeps_the_scene_when_cancelled(demo: tuple[DemoApi, Any]) -> None:
    api, context = demo
    page = open_demo(context, api.url)
    page.select_option("#project", DEMO_PROJECT)
    page.select_option("#scene", "scene-1")
    questions: list[str] = []

    def answer(accept: bool) -> Any:
        def handle(dialog: Any) -> None:
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.click("#delete-scene")
    page.wait_for_function("document.querySelector('#log').textContent.includes('kept')", timeout=TIMEOUT_MS)
    assert questions and "Delete scene scene-1?" in questions[0], questions
    assert api.services.db.scenes.find_one({"_id": "scene-1"}) is not None, "cancelled, yet the scene was deleted"

    page.once("dialog", answer(True))
    page.click("#delete-scene")
    page.wait_for_function("['done', 'timeout'].includes(document.body.dataset.cleanup)", timeout=70_000)
    assert api.services.db.scenes.find_one({"_id": "scene-1"}) is None
    assert page.page_errors == []


def test_the_page_links_its_own_source(demo: tuple[DemoApi, Any]) -> None:
    api, context = demo
    page = open_demo(context, api.url, sign_in=False)
    href = page.eval_on_selector("#source-link", "a => a.href")
    assert href == f"{api.url}/static/demo.js"
    with urllib.request.urlopen(href, timeout=10) as response:
        assert b"createClient" in response.read()


def test_signed_in_only_sign_out_remains_of_the_sign_in_controls(demo: tuple[DemoApi, Any]) -> None:
    api, context = demo
    page = open_demo(context, api.url)
    assert page.is_visible("#sign-out")
    assert page.is_hidden("#sign-in") and page.is_hidden("#auth details") and page.is_hidden("#token-input")
    page.click("#sign-out")
    assert page.is_visible("#sign-in") and page.is_visible("#auth summary") and page.is_hidden("#sign-out")
    assert page.page_errors == []


def test_a_text_file_gets_the_servers_415_not_the_clients_guess(demo: tuple[DemoApi, Any], tmp_path: Path) -> None:
    """A file of no media type goes to the API (as the slot's kind), whose 415 names the types the slot takes."""
    api, context = demo
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n")
    page = open_demo(context, api.url)
    page.select_option("#project", DEMO_PROJECT)
    page.select_option("#scene", "scene-2")
    page.set_input_files("#file", str(notes))
    page.click("#upload")
    page.wait_for_function("document.body.dataset.upload === 'failed'", timeout=TIMEOUT_MS)
    error = page.inner_text("#error")
    assert error.startswith("unsupported_type: image uploads must be one of image/"), error
    assert "cannot tell the kind" not in error + page.inner_text("#log")
    assert api.services.db.scenes.find_one({"_id": "scene-2"}).get("media") is None
    assert page.page_errors == []
