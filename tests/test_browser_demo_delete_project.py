"""Deleting a project from the demo page, in Chromium, with the local event runner doing the cleanup.

GIVEN the demo page over the local API and the event runner (as ``scenestore serve --demo`` runs them), the seeded
projects (one with layout keys, one with legacy keys), a file uploaded through the page and a multipart upload
left in progress in the project
WHEN a person deletes a project (and first cancels once)
THEN nothing happens until they confirm; then the project document and its scenes' documents are gone (as the
app deletes them), the event runner deletes the objects under the project's prefix and aborts its multipart
uploads, the legacy objects only its documents referenced go too, the page says so, and the other project and
its objects are untouched. docs/deletion.md's command (no mongo shell) does the same, run as shown.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from scenestore.keys import project_prefix
from scenestore.services import Services
from scenestore_cli.local.demo import DEMO_PROJECT, DEMO_USER, LEGACY_PROJECT, png_bytes

from tests.support.browser import (
    REPO,
    TIMEOUT_MS,
    artifact_path,
    chromium_context,
    multipart_uploads,
    open_demo,
    require_chromium,
    running_api,
    wait_until,
)
from tests.support.seed import keys_in

pytestmark = pytest.mark.browser

LEGACY_KEYS = {"media/sunset.png", "narration-1.wav", "abc123.png"}
#: Starts a multipart upload in demo-project through the page's client and sends nothing: an upload in progress.
START_UPLOAD_JS = """async () => {
  const { client } = window.scenestoreDemo;
  const handle = await client.createMultipart("demo-project", {
    kind: "video", sceneId: "scene-2", filename: "unfinished.mp4", contentType: "video/mp4", size: 12 * 1024 * 1024,
  });
  return handle.uploadId;
}"""


def delete_selected_project(page: Any, *, confirm: bool) -> list[str]:
    questions: list[str] = []

    def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept() if confirm else dialog.dismiss()

    page.once("dialog", answer)
    page.click("#delete-project")
    return questions


def test_deleting_a_project_deletes_its_documents_then_the_event_runner_its_objects_and_uploads(
    services: Services, tmp_path: Path
) -> None:
    chromium = require_chromium()
    shot = tmp_path / "doomed.png"
    shot.write_bytes(png_bytes(20, 20, seed=4))
    prefix = project_prefix(DEMO_USER, DEMO_PROJECT)
    with running_api(services, events=True) as api, chromium_context(chromium) as context:
        page = open_demo(context, api.url)
        page.select_option("#project", DEMO_PROJECT)
        page.select_option("#scene", "scene-2")
        page.set_input_files("#file", str(shot))
        page.click("#upload")
        page.wait_for_function("document.body.dataset.upload === 'done'", timeout=TIMEOUT_MS)
        upload_id = page.evaluate(START_UPLOAD_JS)
        assert [u["UploadId"] for u in multipart_uploads(services)] == [upload_id]
        before = keys_in(services, prefix)
        assert len(before) == 3, before  # the two seeded scene-1 files and the upload

        # -- cancelled: nothing happens ----------------------------------------------------------------------
        questions = delete_selected_project(page, confirm=False)
        page.wait_for_function("document.querySelector('#log').textContent.includes('kept')", timeout=TIMEOUT_MS)
        assert questions and "Demo project (new layout)" in questions[0] and "3 file(s)" in questions[0], questions
        assert services.db.projects.find_one({"_id": DEMO_PROJECT}) is not None

        # -- confirmed: documents now, objects and uploads by the event runner --------------------------------
        delete_selected_project(page, confirm=True)
        page.wait_for_function("['done', 'timeout'].includes(document.body.dataset.projectCleanup)", timeout=70_000)
        log = page.inner_text("#log")
        assert page.evaluate("document.body.dataset.projectCleanup") == "done", log
        assert f"project {DEMO_PROJECT}: its objects are deleted and no upload is left in progress" in log
        options = page.eval_on_selector_all("#project option", "options => options.map((o) => o.value)")
        assert options == [LEGACY_PROJECT], "the deleted project is still offered"
        page.screenshot(path=str(artifact_path("browser-demo-project-deleted.png")), full_page=True)

        assert services.db.projects.find_one({"_id": DEMO_PROJECT}) is None
        assert services.db.scenes.count_documents({"project_id": DEMO_PROJECT}) == 0
        assert keys_in(services, prefix) == set()
        assert multipart_uploads(services) == [], "the project's upload in progress was left open"
        assert keys_in(services) >= LEGACY_KEYS, "the other project's legacy objects were touched"

        # -- the legacy project: its flat keys were referenced by its scenes only, so they go too -------------
        page.select_option("#project", LEGACY_PROJECT)
        delete_selected_project(page, confirm=True)
        page.wait_for_function("document.body.dataset.projectCleanup === 'waiting'", timeout=TIMEOUT_MS)
        page.wait_for_function("['done', 'timeout'].includes(document.body.dataset.projectCleanup)", timeout=70_000)
        assert page.evaluate("document.body.dataset.projectCleanup") == "done", page.inner_text("#log")
        wait_until(lambda: not (LEGACY_KEYS & keys_in(services)), timeout=10, what="the legacy objects to go")
        assert services.db.projects.count_documents({"user_id": DEMO_USER}) == 0
        assert page.is_visible("#no-projects"), "with no project left the page says why nothing can be uploaded"
        assert page.page_errors == []


def test_the_project_routes_answer_only_the_owner(services: Services) -> None:
    """Another user can neither delete the project nor read anything of its cleanup; a deleted project is 404."""

    def call(url: str, method: str, token: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    with running_api(services) as api:
        project = f"{api.url}/dev/projects/{DEMO_PROJECT}"
        other = api.token_for("someone-else")
        assert call(project, "DELETE", other)[0] == 404
        assert services.db.projects.find_one({"_id": DEMO_PROJECT}) is not None
        # Their leftovers are counted under their own prefix: nothing of demo-user's shows.
        assert call(f"{project}/leftovers", "GET", other) == (200, {"objects": 0, "uploads": 0, "legacy": 0})
        assert call(f"{project}/leftovers", "GET", api.token) == (200, {"objects": 2, "uploads": 0, "legacy": 0})

        status, body = call(project, "DELETE", api.token)
        assert (status, body["scenes"], body["deleted"]) == (200, 2, 1)
        assert call(project, "DELETE", api.token)[0] == 404
        assert call(f"{api.url}/dev/projects/..%2Fx", "DELETE", api.token)[0] == 400


def test_the_deletion_docs_command_deletes_a_project_locally(services: Services, cli_env: dict[str, str]) -> None:
    """docs/deletion.md's command (no mongo shell needed), run as it is shown beside the local event runner: the
    documents go, then the project's objects."""
    text = (REPO / "docs" / "deletion.md").read_text()
    found = re.search(r"```bash\n(\.venv/bin/python -c '.*?' demo-project)\n```", text, re.S)
    assert found, "docs/deletion.md no longer shows the python -c command for deleting a project"
    argv = shlex.split(found.group(1))
    argv[0] = str(REPO / argv[0])
    prefix = project_prefix(DEMO_USER, DEMO_PROJECT)
    with running_api(services, events=True):
        assert keys_in(services, prefix)
        done = subprocess.run(argv, env=cli_env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "1 project and 2 scene documents deleted"
        wait_until(lambda: not keys_in(services, prefix), timeout=20, what="the project's objects to go")
    assert services.db.projects.find_one({"_id": LEGACY_PROJECT}) is not None
    assert keys_in(services) >= LEGACY_KEYS
