"""Tenancy between two users on every route (contract section 4): another user's project, scene or key is
404, with exactly the body a non-existent one gets, so existence is never revealed; and nothing changes.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from scenestore.keys import output_key, scene_key
from scenestore.services import Services

from tests.support.presign import ALICE, BOB, Api, seed_two_tenants
from tests.support.seed import add_project, add_scene, keys_in

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")


@pytest.fixture
def bobs_files(api: Api, services: Services) -> dict[str, str]:
    """alice: project pa/scene sa; bob: project pb/scene sb with an uploaded image, an output and a legacy file."""
    seed_two_tenants(services)
    image = api.upload("pb", "image", scene_id="sb", user=BOB)["key"]
    output = api.upload("pb", "output", user=BOB)["key"]
    services.store.put_bytes("bob-legacy.png", b"legacy", content_type="image/png")
    add_scene(services, "sb2", "pb", media={"storageKey": "bob-legacy.png", "type": "image"})
    return {"image": image, "output": output, "legacy": "bob-legacy.png"}


def assert_hidden(response: object, twin: object) -> None:
    """404 not_found, byte for byte what the non-existent twin got."""
    assert response.status_code == 404, response.text  # type: ignore[attr-defined]
    assert response.json()["error"] == "not_found"  # type: ignore[attr-defined]
    assert response.json() == twin.json()  # type: ignore[attr-defined]
    assert twin.status_code == 404  # type: ignore[attr-defined]


def test_presign_in_another_users_project_or_scene_is_404(api: Api, services: Services, bobs_files: dict) -> None:
    assert_hidden(api.presign("pb", "image", scene_id="sb"), api.presign("nope", "image", scene_id="sb"))
    assert_hidden(api.presign("pb", "output"), api.presign("nope", "output"))
    # bob's scene under alice's own project: the scene does not belong to it
    assert_hidden(api.presign("pa", "image", scene_id="sb"), api.presign("pa", "image", scene_id="nope"))
    assert api.presign("pa", "image", scene_id="sa").status_code == 201, "alice's own scene works"
    assert keys_in(services, "users/alice/") == set()


def test_complete_on_another_users_key_is_404_and_changes_nothing(
    api: Api, services: Services, bobs_files: dict
) -> None:
    before_scene = services.db.scenes.find_one({"_id": "sb"})
    before_project = services.db.projects.find_one({"_id": "pb"})
    twin = api.complete("nope", scene_key(BOB, "nope", "sb", "image", "photo.png"))
    assert_hidden(api.complete("pb", bobs_files["image"]), twin)
    assert_hidden(api.complete("pb", bobs_files["output"]), twin)
    # bob's key submitted under alice's project id
    assert_hidden(api.complete("pa", bobs_files["image"]), twin)
    # a key naming alice's project but bob's scene: answered like a scene that does not exist
    assert_hidden(
        api.complete("pa", scene_key(ALICE, "pa", "sb", "image", "photo.png")),
        api.complete("pa", scene_key(ALICE, "pa", "nope", "image", "photo.png")),
    )
    assert services.db.scenes.find_one({"_id": "sb"}) == before_scene
    assert services.db.projects.find_one({"_id": "pb"}) == before_project
    assert services.store.exists(bobs_files["image"])


@pytest.mark.parametrize("which", ["image", "output", "legacy"])
def test_reading_another_users_key_is_404(api: Api, bobs_files: dict, which: str) -> None:
    key = bobs_files[which]
    twin_key = output_key(BOB, "nope", "x.mp4") if which != "legacy" else "nobody.png"
    assert_hidden(api.get("/files", params={"key": key}), api.get("/files", params={"key": twin_key}))
    assert_hidden(api.get(f"/storage/{quote(key, safe='')}"), api.get(f"/storage/{quote(twin_key, safe='')}"))
    assert api.get("/files", params={"key": key}, user=BOB).status_code == 200, "bob himself may"


def test_a_key_under_alices_prefix_of_a_project_she_does_not_own_is_404(api: Api, services: Services) -> None:
    """A key's path proves nothing: the project it names must exist and be the caller's."""
    seed_two_tenants(services)
    forged = output_key(ALICE, "pb", "final.mp4")
    services.store.put_bytes(forged, b"x")
    assert_hidden(
        api.get("/files", params={"key": forged}), api.get("/files", params={"key": output_key(ALICE, "zz", "f.mp4")})
    )


def test_listing_another_users_project_is_404(api: Api, bobs_files: dict) -> None:
    assert_hidden(api.get("/projects/pb/files"), api.get("/projects/nope/files"))
    mine = api.get("/projects/pa/files")
    assert mine.status_code == 200
    assert mine.json() == {"files": [], "total_bytes": 0, "cursor": None}


def test_legacy_key_referenced_by_both_users_is_readable_by_both(api: Api, services: Services) -> None:
    seed_two_tenants(services)
    services.store.put_bytes("stock.png", b"stock", content_type="image/png")
    add_scene(services, "sa2", "pa", media={"storageKey": "stock.png"})
    add_project(services, "pb2", BOB, output={"storageKey": "stock.png"})
    assert api.get("/files", params={"key": "stock.png"}, user=ALICE).status_code == 200
    assert api.get("/files", params={"key": "stock.png"}, user=BOB).status_code == 200
    assert api.get("/files", params={"key": "stock.png"}, user="carol").status_code == 404
