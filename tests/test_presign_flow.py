"""The browser flow over real HTTP against the local stack: presign -> PUT -> complete -> read back.

Contract section 4: every kind and output; complete records the slot, is idempotent, 404s before an upload,
re-checks limits (413/415 delete the object, slot untouched) and deletes a replaced object only when no
document references it any more; legacy keys stay readable.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests
from scenestore.keys import output_key, scene_key
from scenestore.services import Services, use_services
from scenestore.settings import KindLimits
from scenestore.tokens import issue_media_token

from tests.support.presign import ALICE, SAMPLES, Api, put_presigned
from tests.support.seed import add_project, add_scene

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")


def encode_uri_component(key: str) -> str:
    """What the frontend's ``constructStorageUrl`` does: JavaScript's ``encodeURIComponent``."""
    return quote(key, safe="-_.!~*'()")


@pytest.fixture
def project(services: Services) -> str:
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    return "p1"


@pytest.mark.parametrize("kind", ["image", "video", "audio", "output"])
def test_browser_flow_round_trips_every_kind(api: Api, services: Services, project: str, kind: str) -> None:
    """GIVEN alice's project and scene
    WHEN she presigns, PUTs the bytes with exactly the returned headers, completes, and reads the file back
    THEN the slot holds the key, GET /files and GET /storage both lead to the very bytes uploaded,
    and the listing shows the file with its kind, scene and size."""
    filename, content_type, data = SAMPLES[kind]
    scene_id = None if kind == "output" else "s1"
    presigned = api.presign(project, kind, scene_id=scene_id)
    assert presigned.status_code == 201, presigned.text
    body = presigned.json()
    expected_key = (
        output_key(ALICE, project, filename) if kind == "output" else scene_key(ALICE, project, "s1", kind, filename)
    )
    assert body["key"] == expected_key
    assert body["method"] == "PUT"
    assert body["headers"] == {"Content-Type": content_type, "Content-Length": str(len(data))}
    assert body["max_size"] == services.settings.limits[kind].max_size
    assert body["expires_at"].endswith("Z")

    assert put_presigned(body, data).status_code == 200
    done = api.complete(project, body["key"])
    assert done.status_code == 200, done.text
    slot = {"image": "scene.media", "video": "scene.media", "audio": "scene.audio", "output": "project.output"}[kind]
    assert done.json() == {
        "key": expected_key,
        "slot": slot,
        "size": len(data),
        "content_type": content_type,
        "replaced": False,
        "deleted_previous": False,
    }
    if kind == "output":
        recorded = services.db.projects.find_one({"_id": project})["output"]
    else:
        recorded = services.db.scenes.find_one({"_id": "s1"})["audio" if kind == "audio" else "media"]
    assert recorded["storageKey"] == expected_key
    assert recorded["contentType"] == content_type
    assert recorded["size"] == len(data)
    assert recorded.get("type") == (kind if kind in ("image", "video") else None)

    link = api.get("/files", params={"key": expected_key})
    assert link.status_code == 200, link.text
    assert set(link.json()) == {"key", "url", "expires_at"}
    assert requests.get(link.json()["url"], timeout=30).content == data

    redirect = api.get(f"/storage/{encode_uri_component(expected_key)}")
    assert redirect.status_code == 302, redirect.text
    assert requests.get(redirect.headers["Location"], timeout=30).content == data

    listing = api.get(f"/projects/{project}/files").json()
    assert listing["total_bytes"] == len(data)
    assert listing["cursor"] is None
    [entry] = listing["files"]
    assert entry["key"] == expected_key
    assert entry["size"] == len(data)
    assert entry["kind"] == kind
    assert entry["scene_id"] == scene_id
    assert entry["last_modified"]


def test_storage_route_accepts_a_media_token_in_the_query(api: Api, services: Services, project: str) -> None:
    """<img src> cannot send headers: ?access_token= carries a short-lived media token instead, and that
    token is refused by every other route."""
    done = api.upload(project, "image", scene_id="s1")
    token = issue_media_token(services.settings, ALICE)
    path = f"/storage/{encode_uri_component(done['key'])}"
    redirect = api.get(path, user=None, params={"access_token": token})
    assert redirect.status_code == 302
    assert redirect.headers["Cache-Control"] == "private, no-store"
    assert redirect.headers["Referrer-Policy"] == "no-referrer"
    assert requests.get(redirect.headers["Location"], timeout=30).content == SAMPLES["image"][2]

    listing = api.get(f"/projects/{project}/files", user=None, headers={"Authorization": f"Bearer {token}"})
    assert listing.status_code == 401
    by_query = api.get("/files", user=None, params={"key": done["key"], "access_token": token})
    assert by_query.status_code == 401, "only /storage reads the token from the query string"


def test_complete_is_idempotent(api: Api, services: Services, project: str) -> None:
    done = api.upload(project, "audio", scene_id="s1")
    again = api.complete(project, done["key"])
    assert again.status_code == 200
    assert again.json() == {**done, "replaced": False, "deleted_previous": False}
    assert services.store.exists(done["key"])
    assert services.db.scenes.find_one({"_id": "s1"})["audio"]["storageKey"] == done["key"]


def test_complete_before_upload_is_404_and_records_nothing(api: Api, services: Services, project: str) -> None:
    presigned = api.presign(project, "image", scene_id="s1").json()
    done = api.complete(project, presigned["key"])
    assert done.status_code == 404
    assert done.json()["error"] == "not_found"
    assert "media" not in services.db.scenes.find_one({"_id": "s1"})


def test_replacing_deletes_the_previous_object_when_nothing_references_it(
    api: Api, services: Services, project: str
) -> None:
    first = api.upload(project, "image", scene_id="s1", filename="first.png")
    second = api.upload(project, "video", scene_id="s1")
    assert second["replaced"] is True
    assert second["deleted_previous"] is True
    assert not services.store.exists(first["key"])
    media = services.db.scenes.find_one({"_id": "s1"})["media"]
    assert media["storageKey"] == second["key"]
    assert media["type"] == "video"


def test_replacing_keeps_the_previous_object_another_document_references(
    api: Api, services: Services, project: str
) -> None:
    first = api.upload(project, "image", scene_id="s1", filename="shared.png")
    add_scene(services, "s2", project, media={"storageKey": first["key"], "type": "image"})
    second = api.upload(project, "image", scene_id="s1", filename="second.png")
    assert second["replaced"] is True
    assert second["deleted_previous"] is False
    assert services.store.exists(first["key"])


def test_replacing_a_legacy_object_deletes_it_only_when_unreferenced(api: Api, services: Services) -> None:
    """Legacy keys are replaced like any other: gone when the last reference goes, kept while one remains."""
    add_project(services, "legacy-p", ALICE)
    services.store.put_bytes("media/old.png", b"old", content_type="image/png")
    services.store.put_bytes("shared.png", b"shared", content_type="image/png")
    add_scene(services, "l1", "legacy-p", media={"storageKey": "media/old.png", "type": "image"})
    add_scene(services, "l2", "legacy-p", media={"storageKey": "shared.png", "type": "image"})
    add_scene(services, "l3", "legacy-p", media={"storageKey": "shared.png", "type": "image"})

    one = api.upload("legacy-p", "image", scene_id="l1")
    assert (one["replaced"], one["deleted_previous"]) == (True, True)
    assert not services.store.exists("media/old.png")

    two = api.upload("legacy-p", "image", scene_id="l2")
    assert (two["replaced"], two["deleted_previous"]) == (True, False)
    assert services.store.exists("shared.png"), "scene l3 still references it"


def test_slot_subfields_the_app_keeps_survive_a_replacement(api: Api, services: Services) -> None:
    add_project(services, "p9", ALICE)
    add_scene(services, "s9", "p9", media={"storageKey": "x.png", "type": "image", "prompt": "a fox"})
    api.upload("p9", "image", scene_id="s9")
    media = services.db.scenes.find_one({"_id": "s9"})["media"]
    assert media["prompt"] == "a fox"


def assert_refused_and_deleted(services: Services, done: requests.Response, status: int, error: str, key: str) -> None:
    """``complete`` answered ``status`` with ``error``, deleted the object at ``key`` and left scene s1's media
    slot empty."""
    assert done.status_code == status
    assert done.json()["error"] == error
    assert not services.store.exists(key)
    assert "media" not in services.db.scenes.find_one({"_id": "s1"})


def test_complete_rejects_an_object_of_another_type_and_deletes_it(api: Api, services: Services, project: str) -> None:
    """The signature forbids this on R2; moto does not check signatures, so a client can PUT another type here,
    which is exactly what complete must catch: 415, object deleted, slot untouched."""
    presigned = api.presign(project, "image", scene_id="s1").json()
    data = SAMPLES["image"][2]
    put = requests.put(presigned["url"], data=data, headers={"Content-Type": "text/html"}, timeout=30)
    assert put.status_code == 200
    done = api.complete(project, presigned["key"])
    assert_refused_and_deleted(services, done, 415, "unsupported_type", presigned["key"])


def test_complete_rejects_an_object_over_the_limit_and_deletes_it(api: Api, services: Services, project: str) -> None:
    """A 1 KiB image limit (configured), a presign for 1000 bytes, then 5000 bytes PUT anyway: 413 at complete."""
    small = dict(services.settings.limits)
    small["image"] = KindLimits(small["image"].content_types, 1024)
    limited = Services(services.settings.with_overrides(limits=small), services.s3, services.mongo)
    with use_services(limited):
        presigned = api.presign(project, "image", scene_id="s1", size=1000).json()
        too_big = api.presign(project, "image", scene_id="s1", size=1025)
        assert too_big.status_code == 413
        assert presigned["max_size"] == 1024
        put = requests.put(presigned["url"], data=b"x" * 5000, headers={"Content-Type": "image/png"}, timeout=30)
        assert put.status_code == 200
        done = api.complete(project, presigned["key"])
    assert_refused_and_deleted(services, done, 413, "too_large", presigned["key"])


def test_legacy_keys_stay_readable_for_the_owner_only(api: Api, services: Services) -> None:
    """A legacy key (outside users/) is readable when one of the caller's scenes or projects references it,
    including one whose name needs URL encoding, and 404 otherwise."""
    weird = "media/été photo (1).png"
    for key in ("abc.png", weird, "renders/final.mp4", "loose.png"):
        services.store.put_bytes(key, key.encode(), content_type="image/png")
    add_project(services, "old", ALICE, output={"storageKey": "renders/final.mp4"})
    add_scene(services, "o1", "old", media={"storageKey": "abc.png", "type": "image"})
    add_scene(services, "o2", "old", audio={"storageKey": weird})

    for key in ("abc.png", weird, "renders/final.mp4"):
        link = api.get("/files", params={"key": key})
        assert link.status_code == 200, key
        assert requests.get(link.json()["url"], timeout=30).content == key.encode()
        redirect = api.get(f"/storage/{encode_uri_component(key)}")
        assert redirect.status_code == 302, key
        assert requests.get(redirect.headers["Location"], timeout=30).content == key.encode()
    assert api.get("/files", params={"key": "loose.png"}).status_code == 404

    listing = api.get("/projects/old/files").json()
    assert {f["key"]: (f["kind"], f["scene_id"], f["legacy"]) for f in listing["files"]} == {
        "abc.png": ("image", "o1", True),
        weird: ("audio", "o2", True),
        "renders/final.mp4": ("output", None, True),
    }
    assert listing["total_bytes"] == sum(len(k.encode()) for k in ("abc.png", weird, "renders/final.mp4"))


def test_objectid_projects_work_and_need_their_canonical_id(api: Api, services: Services) -> None:
    """Projects stored with ObjectId _ids (the app's default) are addressed by their lower-case hex; the upper-case
    spelling would build keys outside the prefix deletion cleans, so it is not found."""
    from bson import ObjectId

    oid = ObjectId()
    add_project(services, oid, ALICE)
    add_scene(services, "so", str(oid))
    done = api.upload(str(oid), "image", scene_id="so")
    assert done["key"].startswith(f"users/{ALICE}/projects/{oid}/")
    assert api.presign(str(oid).upper(), "image", scene_id="so").status_code == 404


def test_project_without_user_id_belongs_to_default(api: Api, services: Services) -> None:
    add_project(services, "seeded", None)
    assert api.presign("seeded", "output", user="default").status_code == 201
    assert api.presign("seeded", "output", user=ALICE).status_code == 404


def _listing(api: Api, project: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/projects/{project}/files", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_listing_pages_follow_the_cursor_through_layout_and_legacy_files(services: Services) -> None:
    """Paging (1000 a page over HTTP) exercised with a page of 2 through the shared function itself."""
    from scenestore.files import list_project_files

    add_project(services, "lp", ALICE)
    keys = [scene_key(ALICE, "lp", "s", "image", f"f{i}.png") for i in range(5)]
    for i, key in enumerate(keys):
        services.store.put_bytes(key, b"x" * (i + 1))
    services.store.put_bytes("legacy-a.png", b"aa")
    services.store.put_bytes("legacy-b.png", b"bbb")
    add_scene(services, "s", "lp", media={"storageKey": "legacy-b.png"}, audio={"storageKey": "legacy-a.png"})
    add_scene(services, "gone", "lp", media={"storageKey": "never-uploaded.png"})

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = list_project_files(services, ALICE, "lp", cursor, page_size=2)
        pages += 1
        assert page["total_bytes"] == 15 + 5
        seen += [f["key"] for f in page["files"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == [*keys, "legacy-a.png", "legacy-b.png"]
    assert pages == 4


def test_listing_rejects_a_forged_cursor(api: Api, project: str) -> None:
    response = api.get(f"/projects/{project}/files", params={"cursor": "not-a-cursor!"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
