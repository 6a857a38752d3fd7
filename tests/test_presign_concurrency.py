"""Concurrent completes for one slot end with exactly one winner and no orphan (contract section 4, issue 4).

The slot is swapped with compare-and-set on its current ``storageKey``; a writer whose read went stale
re-reads and swaps again, and whoever replaces a key deletes it once nothing references it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from scenestore.keys import scene_prefix
from scenestore.services import Services
from scenestore.uploads import complete_upload

from tests.support.presign import ALICE, SAMPLES, Api, put_presigned
from tests.support.seed import add_project, add_scene, keys_in

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")


def _uploaded_but_not_completed(api: Api, names: list[str]) -> list[str]:
    keys = []
    for name in names:
        presigned = api.presign("p1", "image", scene_id="s1", filename=name).json()
        assert put_presigned(presigned, SAMPLES["image"][2]).status_code == 200
        keys.append(presigned["key"])
    return keys


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_completes_over_http_leave_one_winner_and_no_orphan(
    api: Api, services: Services, round_: int
) -> None:
    """GIVEN a scene whose image slot holds P, and four more images uploaded
    WHEN the four completes are sent at the same moment
    THEN all answer 200, the slot holds one of them, and every other object (P included) is gone."""
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    previous = api.upload("p1", "image", scene_id="s1", filename="previous.png")["key"]
    keys = _uploaded_but_not_completed(api, [f"c{round_}-{i}.png" for i in range(4)])
    barrier = threading.Barrier(len(keys))

    def complete(key: str) -> requests.Response:
        token = api.token(ALICE)
        barrier.wait()
        return requests.post(
            f"{api.base_url}/projects/p1/uploads/complete",
            json={"key": key},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    with ThreadPoolExecutor(len(keys)) as pool:
        responses = list(pool.map(complete, keys))
    assert [r.status_code for r in responses] == [200] * len(keys)
    winner = services.db.scenes.find_one({"_id": "s1"})["media"]["storageKey"]
    assert winner in keys
    remaining = keys_in(services, scene_prefix(ALICE, "p1", "s1"))
    assert remaining == {winner}, "no orphan: every replaced object was deleted"
    assert previous not in remaining
    # a chain P -> k1 -> k2 -> k3 -> k4: each complete replaced (and deleted) exactly one predecessor
    assert sum(r.json()["deleted_previous"] for r in responses) == len(keys)


@dataclass
class _Hooked:
    """Wraps a collection so the first ``find_one`` of the slot runs ``before`` first, then reads.

    A stub that forces an interleaving a real race produces only sometimes: another complete lands between
    our read of the slot and our compare-and-set.
    """

    inner: Any
    before: Any
    fired: bool = False

    def find_one(self, *args: Any, **kwargs: Any) -> Any:
        result = self.inner.find_one(*args, **kwargs)
        if not self.fired and len(args) > 1 and "media" in (args[1] or {}):
            self.fired = True
            self.before()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _HookedDb:
    def __init__(self, inner: Any, before: Any) -> None:
        self.inner = inner
        self.scenes = _Hooked(inner["scenes"], before)

    def __getitem__(self, name: str) -> Any:
        return self.scenes if name == "scenes" else self.inner[name]

    def __getattr__(self, name: str) -> Any:
        return self.scenes if name == "scenes" else getattr(self.inner, name)


class _HookedServices(Services):
    def __init__(self, base: Services, hooked_db: Any) -> None:
        super().__init__(base.settings, base.s3, base.mongo)
        self.hooked_db = hooked_db

    @property
    def db(self) -> Any:
        return self.hooked_db


def test_a_complete_whose_read_went_stale_retries_and_cleans_up_the_key_it_replaced(
    api: Api, services: Services
) -> None:
    """GIVEN slot = P; ours (A) reads P, then B's complete lands (P -> B, P deleted)
    THEN our compare-and-set on P fails, we re-read B, swap B -> A and delete B: one winner, no orphan."""
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    previous = api.upload("p1", "image", scene_id="s1", filename="previous.png")["key"]
    ours, theirs = _uploaded_but_not_completed(api, ["ours.png", "theirs.png"])
    competitor: dict[str, Any] = {}

    def competing_complete() -> None:
        competitor.update(complete_upload(services, ALICE, "p1", theirs))

    hooked = _HookedServices(services, _HookedDb(services.db, competing_complete))
    result = complete_upload(hooked, ALICE, "p1", ours)

    assert competitor["deleted_previous"] is True, "the competitor replaced P"
    assert (result["replaced"], result["deleted_previous"]) == (True, True)
    assert services.db.scenes.find_one({"_id": "s1"})["media"]["storageKey"] == ours
    assert keys_in(services, scene_prefix(ALICE, "p1", "s1")) == {ours}
    assert previous != ours


def test_two_completes_of_the_same_key_are_one_write(api: Api, services: Services) -> None:
    add_project(services, "p1", ALICE)
    add_scene(services, "s1", "p1")
    [key] = _uploaded_but_not_completed(api, ["same.png"])
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: api.complete("p1", key), range(2)))
    assert [r.status_code for r in responses] == [200, 200]
    assert services.db.scenes.find_one({"_id": "s1"})["media"]["storageKey"] == key
    assert services.store.exists(key)
