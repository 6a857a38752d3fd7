"""The drop-in ``R2Storage`` (issue 3, contract section 8): the backend's names, argument orders and return
shapes, on the shared layer, without the seed's bugs. Runs against the real moto server."""

from __future__ import annotations

import asyncio
import inspect
import io
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from scenestore.compat import R2Storage
from scenestore.errors import InvalidFilename, InvalidId, InvalidKey, InvalidRequest
from scenestore.services import Services

from tests.support.s3faults import FaultyS3
from tests.support.seed import keys_in, layout_keys, put_objects, varied


@pytest.fixture
def storage(services: Services) -> R2Storage:
    return R2Storage(services)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the backend's interface -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "leading", "is_async"),
    [
        ("get_file_path", ["user_id", "project_id", "scene_id", "file_type", "filename"], False),
        ("upload_file", ["file_path", "object_name", "user_id", "project_id", "scene_id", "file_type"], True),
        (
            "upload_file_content",
            ["file_content", "object_name", "user_id", "project_id", "scene_id", "file_type"],
            True,
        ),
        ("delete_project_files", ["user_id", "project_id"], True),
        ("delete_scene_files", ["user_id", "project_id", "scene_id"], True),
        ("delete_directory", ["prefix"], True),
        ("download_file", ["object_name", "file_path"], True),
        ("delete_file", ["object_name"], True),
        ("get_file_url", ["object_name", "expiration"], True),
    ],
)
def test_names_argument_orders_and_async_match_the_seed(method: str, leading: list[str], is_async: bool) -> None:
    func = getattr(R2Storage, method)
    names = list(inspect.signature(func).parameters)[1:]
    assert names[: len(leading)] == leading
    assert inspect.iscoroutinefunction(func) is is_async


def test_constructing_connects_to_nothing_and_defaults_to_the_process_services(services: Services) -> None:
    storage = R2Storage()
    assert storage.bucket_name == services.settings.bucket
    assert storage.get_s3_client() is services.s3
    assert R2Storage(client=services.s3, bucket="other-bucket").bucket_name == "other-bucket"


# -- get_file_path ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("u", "p"), "users/u/projects/p/"),
        (("u", "p", None, "output"), "users/u/projects/p/output/"),
        (("u", "p", None, "output", "Final Cut.MP4"), "users/u/projects/p/output/Final-Cut.mp4"),
        (("u", "p", "s"), "users/u/projects/p/scenes/s/"),
        (("u", "p", "s", "image"), "users/u/projects/p/scenes/s/image/"),
        (("u", "p", "s", "image", "bg.JPG"), "users/u/projects/p/scenes/s/image/bg.jpg"),
        (("u", "p", "s", "video", "../clip.mp4"), "users/u/projects/p/scenes/s/video/clip.mp4"),
        (("u", "p", "s", "audio", "narration.mp3"), "users/u/projects/p/scenes/s/audio/narration.mp3"),
    ],
)
def test_get_file_path_layout(storage: R2Storage, args: tuple[Any, ...], expected: str) -> None:
    assert storage.get_file_path(*args) == expected


def test_output_keys_can_be_built_by_keyword_as_the_backend_does(storage: R2Storage) -> None:
    """The seed dropped file_type without a scene, so output/ keys could not be built (section 8)."""
    key = storage.get_file_path("u", "p", file_type="output", filename="final_video.mp4")
    assert key == "users/u/projects/p/output/final_video.mp4"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("../u", "p"), InvalidId),
        (("u", "a/b"), InvalidId),
        (("u", "p", ".s"), InvalidId),
        (("u", "p", "s" * 129), InvalidId),
        (("u", "p", None, None, "x.png"), InvalidKey),
        (("u", "p", "s", None, "x.png"), InvalidKey),
        (("u", "p", None, "image", "x.png"), InvalidKey),
        (("u", "p", "s", "output", "x.mp4"), InvalidKey),
        (("u", "p", "s", "document", "x.pdf"), InvalidKey),
        (("u", "p", "s", "image", "../"), InvalidFilename),
    ],
)
def test_get_file_path_refuses_what_it_cannot_honour(storage: R2Storage, args: tuple[Any, ...], error: type) -> None:
    with pytest.raises(error):
        storage.get_file_path(*args)


# -- uploads -----------------------------------------------------------------------------------------
def test_upload_file_structured(storage: R2Storage, services: Services, tmp_path: Path) -> None:
    local = tmp_path / "Photo Big.PNG"
    local.write_bytes(b"\x89PNG-bytes")
    ok, url = run(storage.upload_file(str(local), user_id="u", project_id="p", scene_id="s", file_type="image"))
    assert ok, url
    key = "users/u/projects/p/scenes/s/image/Photo-Big.png"
    info = services.store.head(key)
    assert info is not None and info.content_type == "image/png"
    assert requests.get(url, timeout=30).content == b"\x89PNG-bytes"
    assert urlsplit(url).path.endswith(key)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(services.settings.download_ttl)]


def test_upload_file_output_and_object_name(storage: R2Storage, services: Services, tmp_path: Path) -> None:
    local = tmp_path / "render-123.mp4"
    local.write_bytes(b"mp4")
    ok, _ = run(storage.upload_file(str(local), "final.mp4", "u", "p", None, "output"))
    assert ok
    assert services.store.get_bytes("users/u/projects/p/output/final.mp4") == b"mp4"
    assert services.store.head("users/u/projects/p/output/final.mp4").content_type == "video/mp4"  # type: ignore[union-attr]


def test_upload_file_without_ids_keeps_the_seed_behaviour(
    storage: R2Storage, services: Services, tmp_path: Path
) -> None:
    local = tmp_path / "n.mp3"
    local.write_bytes(b"id3")
    assert run(storage.upload_file(str(local)))[0]
    assert run(storage.upload_file(str(local), "audio/n2.mp3"))[0]
    assert services.store.get_bytes("n.mp3") == b"id3"
    assert services.store.get_bytes("audio/n2.mp3") == b"id3"


def test_upload_file_failures_are_reported_not_raised(storage: R2Storage, services: Services, tmp_path: Path) -> None:
    ok, message = run(storage.upload_file(str(tmp_path / "missing.png"), user_id="u", project_id="p"))
    assert not ok and "does not exist" in message
    local = tmp_path / "x.png"
    local.write_bytes(b"x")
    ok, message = run(
        storage.upload_file(str(local), user_id="../evil", project_id="p", scene_id="s", file_type="image")
    )
    assert not ok and message.startswith("invalid_id")
    ok, message = run(storage.upload_file(str(local), user_id="u", project_id="p", scene_id="s"))
    assert not ok and "file_type" in message
    assert keys_in(services) == set()


def test_upload_file_content_bytes_and_file_objects(storage: R2Storage, services: Services) -> None:
    ok, url = run(
        storage.upload_file_content(
            b"RIFF-wave",
            user_id="u",
            project_id="p",
            scene_id="s",
            file_type="audio",
            filename="voice over.WAV",
            content_type="audio/wav",
        )
    )
    assert ok
    key = "users/u/projects/p/scenes/s/audio/voice-over.wav"
    info = services.store.head(key)
    assert info is not None and info.content_type == "audio/wav" and info.size == 9
    assert requests.get(url, timeout=30).content == b"RIFF-wave"

    ok, _ = run(storage.upload_file_content(io.BytesIO(b"frames"), "clip.webm", "u", "p", "s", "video"))
    assert ok
    video = services.store.head("users/u/projects/p/scenes/s/video/clip.webm")
    assert video is not None and video.content_type == "video/webm"

    ok, _ = run(storage.upload_file_content(b"legacy", "media/old.jpg"))
    assert ok and services.store.get_bytes("media/old.jpg") == b"legacy"

    ok, message = run(storage.upload_file_content(b"x", None, "u", "p", "s", "image"))
    assert not ok and "filename" in message
    ok, message = run(storage.upload_file_content(b"x", "users/u/projects/p/"))
    assert not ok and "prefix" in message


# -- reads ---------------------------------------------------------------------------------------------
def test_download_delete_and_url(storage: R2Storage, services: Services, tmp_path: Path) -> None:
    services.store.put_bytes("media/a.jpg", b"jpeg")
    target = tmp_path / "private" / "a.jpg"
    target.parent.mkdir()
    assert run(storage.download_file("media/a.jpg", str(target))) == (True, f"File downloaded to {target}")
    assert target.read_bytes() == b"jpeg"
    ok, message = run(storage.download_file("media/none.jpg", str(tmp_path / "none.jpg")))
    assert not ok and "not found" in message

    url = run(storage.get_file_url("media/a.jpg", expiration=60))
    assert url and parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["60"]
    assert requests.get(url, timeout=30).content == b"jpeg"
    assert run(storage.check_files_exist("media/")) is True

    assert run(storage.delete_file("media/a.jpg")) == (True, "Deleted media/a.jpg")
    assert services.store.head("media/a.jpg") is None
    assert run(storage.delete_file("media/a.jpg"))[0] is True  # idempotent, as in S3
    assert run(storage.check_files_exist("media/")) is False


# -- deletes -------------------------------------------------------------------------------------------
def test_delete_project_files_is_exact(storage: R2Storage, services: Services) -> None:
    doomed = layout_keys(25, "p1")
    total = put_objects(services, doomed, varied)
    put_objects(services, [*layout_keys(3, "p10"), "users/u/projects/p1.png", "legacy.jpg"], varied)
    result = run(storage.delete_project_files("u", "p1"))
    assert {k: result[k] for k in ("deleted_count", "failed_count", "total_bytes", "errors")} == {
        "deleted_count": 25,
        "failed_count": 0,
        "total_bytes": total,
        "errors": [],
    }
    assert result["success"] is True and result["prefix"] == "users/u/projects/p1/"
    assert sorted(keys_in(services)) == sorted([*layout_keys(3, "p10"), "users/u/projects/p1.png", "legacy.jpg"])


def test_delete_scene_files_is_exact(storage: R2Storage, services: Services) -> None:
    keys = layout_keys(30, "p1")  # scenes s0000, s0001, s0002
    put_objects(services, [*keys, "users/u/projects/p1/scenes/s00010/image/x.png"], varied)
    result = run(storage.delete_scene_files("u", "p1", "s0001"))
    assert (result["deleted_count"], result["failed_count"]) == (10, 0)
    assert len(keys_in(services)) == 21


@pytest.mark.parametrize("prefix", ["", "users/u/projects/p1", "users"])
def test_delete_directory_refuses_the_bucket_and_open_prefixes(
    storage: R2Storage, services: Services, prefix: str
) -> None:
    put_objects(services, ["users/u/projects/p1/x.png", "users/u/projects/p10/x.png", "a.jpg"], varied)
    with pytest.raises(InvalidRequest):
        run(storage.delete_directory(prefix))
    assert len(keys_in(services)) == 3


def test_delete_directory_reports_failed_keys(services: Services) -> None:
    """Fault injection: DeleteObjects fails two keys on every attempt (moto never does)."""
    keys = layout_keys(40, "p1")
    put_objects(services, keys, varied)
    stuck = {keys[5], keys[33]}
    client = FaultyS3(services.s3)
    client.fail_keys(stuck, "InternalError")
    storage = R2Storage(client=client, bucket=services.settings.bucket)  # type: ignore[arg-type]
    result = run(storage.delete_directory("users/u/projects/p1/"))
    assert (result["deleted_count"], result["failed_count"], result["success"]) == (38, 2, False)
    assert sorted(e["key"] for e in result["errors"]) == sorted(stuck)
    assert all(set(e) == {"key", "code", "message"} for e in result["errors"])


def test_deleting_does_not_block_the_event_loop(services: Services) -> None:
    """Fault injection (slowness only): each DeleteObjects takes 0.3 s; the loop keeps ticking meanwhile."""
    put_objects(services, layout_keys(20, "p1"), varied)
    client = FaultyS3(services.s3)
    client.delay("delete_objects", 0.3)
    storage = R2Storage(client=client, bucket=services.settings.bucket)  # type: ignore[arg-type]

    async def scenario() -> tuple[int, dict[str, Any]]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        result = await storage.delete_project_files("u", "p1")
        assert time.monotonic() - started >= 0.3
        done.set()
        await task
        return ticks, result

    ticks, result = run(scenario())
    assert result["deleted_count"] == 20
    assert ticks >= 5
